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

/// What credits charge for a call: its cost times a markup, per model (`provider/model`) or the
/// default, in parts per million (1,000,000 = the cost as it is), rounded up to whole micro-USD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditMarkup {
    default_ppm: u64,
    per_model: std::collections::HashMap<String, u64>,
}

impl Default for CreditMarkup {
    fn default() -> Self {
        Self { default_ppm: PPM, per_model: std::collections::HashMap::new() }
    }
}

const PPM: u64 = 1_000_000;
/// The largest markup accepted (100×): beyond it a typo is likelier than a price.
const MAX_MARKUP: f64 = 100.0;

impl CreditMarkup {
    /// From multipliers (`1.2` = cost + 20 %): the default and per `provider/model`. Each must be
    /// at least 0 and at most 100, with at most 6 decimals.
    pub fn new(default: f64, per_model: &[(String, f64)]) -> Result<Self, String> {
        let ppm = |name: &str, m: f64| -> Result<u64, String> {
            if !m.is_finite() || !(0.0..=MAX_MARKUP).contains(&m) {
                return Err(format!("the markup of {name} must be a number from 0 to {MAX_MARKUP}, not {m}"));
            }
            Ok((m * PPM as f64).round() as u64)
        };
        let mut out = Self { default_ppm: ppm("every model", default)?, per_model: Default::default() };
        for (model, m) in per_model {
            if !model.contains('/') {
                return Err(format!("a markup names a model as `provider/model`, not `{model}`"));
            }
            out.per_model.insert(model.clone(), ppm(model, *m)?);
        }
        Ok(out)
    }

    /// The credits `cost_micros` of a call to `provider/model` takes.
    pub fn charge(&self, provider: &str, model: &str, cost_micros: u64) -> u64 {
        let ppm = self.per_model.get(&format!("{provider}/{model}")).copied().unwrap_or(self.default_ppm);
        let scaled = u128::from(cost_micros) * u128::from(ppm);
        u64::try_from(scaled.div_ceil(u128::from(PPM))).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod markup_tests {
    use super::*;

    #[test]
    fn markups_scale_costs_exactly_and_round_up_to_whole_micro_usd() {
        let m = CreditMarkup::new(1.2, &[("openai/gpt-4o".into(), 1.5), ("demo/echo".into(), 0.0)]).expect("valid");
        assert_eq!(m.charge("anthropic", "claude", 1_000), 1_200);
        assert_eq!(m.charge("openai", "gpt-4o", 1_000), 1_500);
        assert_eq!(m.charge("demo", "echo", 1_000), 0);
        assert_eq!(m.charge("anthropic", "claude", 1), 2, "1.2 µUSD is charged as 2");
        assert_eq!(CreditMarkup::default().charge("x", "y", 12_345), 12_345);
        assert_eq!(m.charge("x", "y", u64::MAX), u64::MAX, "no overflow");
        assert!(CreditMarkup::new(-1.0, &[]).is_err());
        assert!(CreditMarkup::new(f64::NAN, &[]).is_err());
        assert!(CreditMarkup::new(1.0, &[("gpt-4o".into(), 2.0)]).is_err());
    }
}
