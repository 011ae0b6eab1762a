//! Orders a target list by a strategy, then moves targets whose circuit is open behind the
//! healthy ones (tried only when every healthy target failed). Every strategy keeps the whole
//! list: the call still falls back down it.

use crate::domain::{Model, Strategy, Target};

use super::target_board::{TargetBoard, Timing};

/// Completion tokens assumed for a target that names no `max_tokens` and has no answers yet.
pub const TYPICAL_COMPLETION_TOKENS: u64 = 500;
/// One call in this many, `fastest` puts another target first, so that one that has recovered
/// is noticed again.
pub const EXPLORE_ONE_IN: u32 = 20;

/// What ordering looks at besides the targets.
#[derive(Debug, Clone, Copy)]
pub struct OrderInputs<'a> {
    pub strategy: Strategy,
    /// One per target with `weighted` (empty: equal weights).
    pub weights: &'a [u32],
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// The caller's `max_tokens`, if it sent one.
    pub max_tokens: Option<u64>,
    pub timing: Timing,
    pub now_ms: i64,
}

/// `provider/model` of a target, as the board knows it.
pub fn target_name(target: &Target<'_>) -> String {
    format!("{}/{}", target.entry.provider.code, target.model.model)
}

/// The targets in the order they will be tried.
pub fn order<'c>(targets: Vec<Target<'c>>, inputs: &OrderInputs<'_>, board: &TargetBoard) -> Vec<Target<'c>> {
    let ordered = match inputs.strategy {
        Strategy::Fallback => targets,
        Strategy::Weighted => weighted(targets, inputs.weights, |total| fastrand::u64(0..total)),
        Strategy::Cheapest => {
            let mut targets = targets;
            // Stable: equal costs keep the order written.
            targets.sort_by_key(|t| expected_cost(t.model, inputs.prompt_tokens, completion_tokens(t, inputs, board)));
            targets
        }
        Strategy::Fastest => {
            let explore = (fastrand::u32(0..EXPLORE_ONE_IN) == 0).then(|| fastrand::usize(1..targets.len().max(2)));
            fastest(targets, inputs.timing, board, explore)
        }
    };
    // Tripped targets last, in the strategy's order.
    let (tripped, healthy): (Vec<Target<'c>>, Vec<Target<'c>>) =
        ordered.into_iter().partition(|t| board.is_tripped(&target_name(t), inputs.now_ms));
    healthy.into_iter().chain(tripped).collect()
}

/// Random order in proportion to the weights (equal without weights): each place drawn from
/// what is left. Targets of weight 0 come last, in the order written. `draw(total)` is uniform
/// in `0..total`.
fn weighted<'c>(targets: Vec<Target<'c>>, weights: &[u32], mut draw: impl FnMut(u64) -> u64) -> Vec<Target<'c>> {
    let mut left: Vec<(Target<'c>, u64)> =
        targets.into_iter().enumerate().map(|(i, t)| (t, weights.get(i).map_or(1, |w| u64::from(*w)))).collect();
    let mut out = Vec::with_capacity(left.len());
    loop {
        let total: u64 = left.iter().map(|(_, w)| w).sum();
        if total == 0 {
            break;
        }
        let mut point = draw(total);
        let at = left
            .iter()
            .position(|(_, w)| {
                if point < *w {
                    return true;
                }
                point -= w;
                false
            })
            .unwrap_or(0);
        out.push(left.remove(at).0);
    }
    out.extend(left.into_iter().map(|(t, _)| t));
    out
}

/// The completion tokens a call to `target` is expected to bill: the caller's `max_tokens`, else
/// the target's recent answers, else [`TYPICAL_COMPLETION_TOKENS`] (capped by the model's own
/// output limit).
fn completion_tokens(target: &Target<'_>, inputs: &OrderInputs<'_>, board: &TargetBoard) -> u64 {
    let typical = || {
        let learnt = board.typical_completion_tokens(&target_name(target)).unwrap_or(TYPICAL_COMPLETION_TOKENS);
        target.model.max_output_tokens.map_or(learnt, |cap| learnt.min(cap))
    };
    inputs.max_tokens.unwrap_or_else(typical)
}

/// Expected cost in micro-USD × 1,000,000 (prices are per million tokens; kept exact in integers).
fn expected_cost(model: &Model, prompt_tokens: u64, completion_tokens: u64) -> u128 {
    u128::from(prompt_tokens) * u128::from(model.prices.input)
        + u128::from(completion_tokens) * u128::from(model.prices.output)
}

/// Lowest recent latency first; targets never timed (here or in the stats) first of all, so each
/// is timed once. `explore`: the place of a target to put first instead.
fn fastest<'c>(
    targets: Vec<Target<'c>>,
    timing: Timing,
    board: &TargetBoard,
    explore: Option<usize>,
) -> Vec<Target<'c>> {
    let mut timed: Vec<(Option<f64>, Target<'c>)> =
        targets.into_iter().map(|t| (board.latency_ms(&target_name(&t), timing), t)).collect();
    timed.sort_by(|(a, _), (b, _)| match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => a.total_cmp(b),
    });
    let mut out: Vec<Target<'c>> = timed.into_iter().map(|(_, t)| t).collect();
    if let Some(at) = explore.filter(|at| *at < out.len()) {
        let explored = out.remove(at);
        out.insert(0, explored);
    }
    out
}

/// Whether `model`'s context window holds the prompt plus the caller's `max_tokens` (a model
/// without a known window always does).
pub fn fits_context(model: &Model, prompt_tokens: u64, max_tokens: Option<u64>) -> bool {
    model.context_window.is_none_or(|window| prompt_tokens.saturating_add(max_tokens.unwrap_or(0)) <= window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Catalog, Prices, ProviderEntry};

    fn catalog() -> Catalog {
        let entry = |code: &str, models: &[(&str, u64, u64, Option<u64>)]| {
            let provider = crate::domain::Provider {
                code: code.into(),
                kind: crate::domain::ProviderKind::Openai,
                name: code.into(),
                base_url: String::new(),
                headers: Default::default(),
                is_active: true,
                sort_order: 0,
            };
            let models = models
                .iter()
                .map(|(m, input, output, window)| Model {
                    provider: code.into(),
                    model: (*m).into(),
                    model_type: "chat".into(),
                    context_window: *window,
                    max_output_tokens: None,
                    supports_streaming: true,
                    supports_tools: true,
                    supports_vision: true,
                    prices: Prices { input: *input, cached_input: None, cache_write: None, output: *output },
                    is_active: true,
                    is_default: false,
                    drop_params: false,
                    created: 0,
                    cache: Default::default(),
                })
                .collect();
            ProviderEntry { provider, models, keys: vec![] }
        };
        Catalog {
            providers: vec![
                entry("a", &[("dear", 2_500_000, 10_000_000, Some(128_000)), ("long-out", 150_000, 600_000, None)]),
                entry("b", &[("cheap", 270_000, 1_100_000, Some(64_000))]),
            ],
            routes: vec![],
        }
    }

    fn targets(catalog: &Catalog) -> Vec<Target<'_>> {
        catalog.providers.iter().flat_map(|e| e.models.iter().map(move |model| Target { entry: e, model })).collect()
    }

    fn names(targets: &[Target<'_>]) -> Vec<String> {
        targets.iter().map(target_name).collect()
    }

    fn inputs(strategy: Strategy) -> OrderInputs<'static> {
        OrderInputs {
            strategy,
            weights: &[],
            prompt_tokens: 1_000,
            max_tokens: None,
            timing: Timing::Complete,
            now_ms: 0,
        }
    }

    #[test]
    fn cheapest_weighs_prompt_and_expected_completion() {
        let catalog = catalog();
        let board = TargetBoard::default();
        let ordered = order(targets(&catalog), &inputs(Strategy::Cheapest), &board);
        // 1,000 in + 500 out: long-out 450 µUSD, cheap 820, dear 7,500.
        assert_eq!(names(&ordered), ["a/long-out", "b/cheap", "a/dear"]);
        // A long answer makes the dearer output price count: 100 in + 20,000 out.
        let long = OrderInputs { prompt_tokens: 100, max_tokens: Some(20_000), ..inputs(Strategy::Cheapest) };
        assert_eq!(names(&order(targets(&catalog), &long, &board)), ["a/long-out", "b/cheap", "a/dear"]);
        // Without `max_tokens`, a target whose answers run long is expected to cost more.
        board.note_success("a/long-out", 0, Timing::Complete, 10, Some(50_000));
        let learnt = order(targets(&catalog), &inputs(Strategy::Cheapest), &board);
        assert_eq!(names(&learnt), ["b/cheap", "a/dear", "a/long-out"], "long-out: 30,150 µUSD a call now");
    }

    #[test]
    fn weighted_draws_in_proportion_and_puts_zero_weights_last() {
        let catalog = catalog();
        let draws = |point: u64| {
            let mut once = Some(point);
            names(&weighted(targets(&catalog), &[3, 0, 1], move |total| once.take().unwrap_or(0) % total))
        };
        assert_eq!(draws(0), ["a/dear", "b/cheap", "a/long-out"]);
        assert_eq!(draws(2), ["a/dear", "b/cheap", "a/long-out"]);
        assert_eq!(draws(3), ["b/cheap", "a/dear", "a/long-out"], "the fourth quarter is b's");
        // Over many random draws the first place follows the weights 3:1.
        let mut first_dear = 0;
        for _ in 0..4_000 {
            let ordered = order(
                targets(&catalog),
                &OrderInputs { weights: &[3, 0, 1], ..inputs(Strategy::Weighted) },
                &TargetBoard::default(),
            );
            first_dear += usize::from(target_name(&ordered[0]) == "a/dear");
            assert_eq!(target_name(&ordered[2]), "a/long-out");
        }
        assert!((2_800..=3_200).contains(&first_dear), "{first_dear} of 4,000 (expected 3,000)");
    }

    #[test]
    fn fastest_times_unknown_targets_first_then_prefers_the_quickest() {
        let catalog = catalog();
        let board = TargetBoard::default();
        board.note_success("a/dear", 0, Timing::Complete, 300, None);
        board.note_success("b/cheap", 0, Timing::Complete, 100, None);
        let ordered = fastest(targets(&catalog), Timing::Complete, &board, None);
        assert_eq!(names(&ordered), ["a/long-out", "b/cheap", "a/dear"]);
        board.note_success("a/long-out", 0, Timing::Complete, 200, None);
        assert_eq!(
            names(&fastest(targets(&catalog), Timing::Complete, &board, None)),
            ["b/cheap", "a/long-out", "a/dear"]
        );
        assert_eq!(
            names(&fastest(targets(&catalog), Timing::Complete, &board, Some(2))),
            ["a/dear", "b/cheap", "a/long-out"],
            "exploring puts another target first"
        );
    }

    #[test]
    fn tripped_targets_go_last_under_every_strategy() {
        let catalog = catalog();
        let board = TargetBoard::default();
        for i in 0..5 {
            board.note_failure("b/cheap", i);
        }
        for strategy in [Strategy::Fallback, Strategy::Cheapest, Strategy::Fastest, Strategy::Weighted] {
            let ordered = order(targets(&catalog), &OrderInputs { now_ms: 10, ..inputs(strategy) }, &board);
            assert_eq!(target_name(&ordered[2]), "b/cheap", "{strategy:?}");
        }
    }

    #[test]
    fn the_context_window_holds_prompt_and_max_tokens() {
        let catalog = catalog();
        let cheap = &catalog.providers[1].models[0];
        assert!(fits_context(cheap, 60_000, Some(4_000)));
        assert!(!fits_context(cheap, 60_000, Some(4_001)));
        assert!(!fits_context(cheap, 64_001, None));
        assert!(fits_context(&catalog.providers[0].models[1], u64::MAX, Some(u64::MAX)), "no known window");
    }
}
