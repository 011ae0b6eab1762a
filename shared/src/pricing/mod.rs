//! Money: integer micro-USD, computed once per call from integer prices per million tokens.

use crate::domain::{Prices, Usage};

/// Cost of a call in micro-USD, rounded half up once at the end.
///
/// Cached reads and cache writes are billed at their own prices where the model has them; the
/// remaining prompt tokens at the input price.
pub fn cost_micros(prices: &Prices, usage: &Usage) -> u64 {
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
    let plain_input = usage.prompt_tokens - cached - written;
    let micro_usd_times_million: u128 = u128::from(plain_input) * u128::from(prices.input)
        + u128::from(cached) * u128::from(prices.cached_input.unwrap_or(prices.input))
        + u128::from(written) * u128::from(prices.cache_write.unwrap_or(prices.input))
        + u128::from(usage.completion_tokens) * u128::from(prices.output);
    let rounded = (micro_usd_times_million + 500_000) / 1_000_000;
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt_4o_call_costs_exact_micro_usd() {
        // gpt-4o: $2.50 / 1M input, $1.25 cached, $10 output
        let p = Prices { input: 2_500_000, cached_input: Some(1_250_000), cache_write: None, output: 10_000_000 };
        let u = Usage { prompt_tokens: 19, completion_tokens: 10, cached_tokens: 0, cache_write_tokens: 0 };
        // 19 * 2.5 + 10 * 10 = 147.5 micro-USD → 148
        assert_eq!(cost_micros(&p, &u), 148);
    }

    #[test]
    fn anthropic_cache_reads_and_writes_use_their_prices() {
        // claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output; the
        // recorded fixture: 3 input + 1111 read + 418 written, 33 out
        let p =
            Prices { input: 3_000_000, cached_input: Some(300_000), cache_write: Some(3_750_000), output: 15_000_000 };
        let u = Usage {
            prompt_tokens: 3 + 1111 + 418,
            completion_tokens: 33,
            cached_tokens: 1111,
            cache_write_tokens: 418,
        };
        // 3*3 + 1111*0.3 + 418*3.75 + 33*15 = 9 + 333.3 + 1567.5 + 495 = 2404.8 → 2405
        assert_eq!(cost_micros(&p, &u), 2405);
    }

    #[test]
    fn deepseek_cache_hits_are_cheaper() {
        let p = Prices { input: 140_000, cached_input: Some(2_800), cache_write: None, output: 280_000 };
        let u = Usage { prompt_tokens: 563, completion_tokens: 116, cached_tokens: 512, cache_write_tokens: 0 };
        // 51*0.14 + 512*0.0028 + 116*0.28 = 7.14 + 1.4336 + 32.48 = 41.0536 → 41
        assert_eq!(cost_micros(&p, &u), 41);
    }
}
