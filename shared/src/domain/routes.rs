//! Routes: a name callers send as `model`, the targets it serves from, the rules that send some
//! requests to other targets, and the strategy that orders a target list. Plain data and its
//! checks; choosing and ordering at call time is `routing`'s.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cache::{CachePolicy, CacheScope};

/// Most targets a route or a rule lists.
pub const MAX_ROUTE_TARGETS: usize = 20;
/// Most rules a route has.
pub const MAX_ROUTE_RULES: usize = 20;
/// Longest `tag` or `user` pattern of a condition.
const MAX_CONDITION_TEXT: usize = 128;

/// How a target list is ordered; every strategy still falls back to the next target on failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// In the order written.
    #[default]
    Fallback,
    /// Random in proportion to `weights`.
    Weighted,
    /// Lowest expected cost from the price table first.
    Cheapest,
    /// Lowest recent latency (time to first byte for streams) first.
    Fastest,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fallback => "fallback",
            Self::Weighted => "weighted",
            Self::Cheapest => "cheapest",
            Self::Fastest => "fastest",
        }
    }
}

/// What a request must look like for a rule to apply; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Share (0–1) of the prompt's letters that are Chinese, Japanese or Korean, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cjk_share_at_least: Option<f64>,
    /// Whether a message carries an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_images: Option<bool>,
    /// Whether the request declares tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_tools: Option<bool>,
    /// Estimated prompt tokens (o200k), more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_over: Option<u64>,
    /// One of the tags the caller sends in `x-maestro-tags` (comma-separated), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The caller's user id; `*` matches any run of characters (`vip-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Conditions {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the conditions need the prompt's token count.
    pub fn uses_prompt_tokens(&self) -> bool {
        self.prompt_tokens_over.is_some()
    }
}

/// Targets for the requests that meet `when`, with their own strategy if they name one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    pub when: Conditions,
    /// `provider/model` targets.
    pub targets: Vec<String>,
    /// The route's strategy when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// One per target, with `weighted`; equal weights when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// `provider/model` targets for requests no rule matches.
    pub targets: Vec<String>,
    /// Calls through this route drop parameters a target cannot honour instead of being refused
    /// (see [`super::Model::drop_params`]).
    #[serde(default)]
    pub drop_params: bool,
    #[serde(default)]
    pub strategy: Strategy,
    /// One per target, with `weighted`; equal weights when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<u32>,
    /// Evaluated in order; the first that matches chooses the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RouteRule>,
    /// The response cache for calls through this route (see `crate::cache`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_secs: Option<u64>,
    #[serde(default)]
    pub cache_scope: CacheScope,
    #[serde(default)]
    pub cache_sampled: bool,
}

/// How a route chooses and orders its targets (everything of a route but its name, targets and
/// `drop_params`): what the stores keep as one JSON value, `None` for a plain fallback chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutePolicy {
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RouteRule>,
    #[serde(default, flatten)]
    pub cache: CachePolicy,
}

/// A route that cannot be saved: the field at fault and what is wrong, for a 400 or a config error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProblem {
    pub field: String,
    pub message: String,
}

impl RouteProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl Route {
    /// A plain fallback chain.
    pub fn fallback(name: impl Into<String>, targets: Vec<String>) -> Self {
        Self {
            name: name.into(),
            targets,
            drop_params: false,
            strategy: Strategy::Fallback,
            weights: Vec::new(),
            rules: Vec::new(),
            cache_ttl_secs: None,
            cache_scope: CacheScope::User,
            cache_sampled: false,
        }
    }

    /// The route's response-cache settings.
    pub fn cache(&self) -> CachePolicy {
        CachePolicy { ttl_secs: self.cache_ttl_secs, scope: self.cache_scope, sampled: self.cache_sampled }
    }

    /// The route with these response-cache settings.
    pub fn with_cache(self, cache: CachePolicy) -> Self {
        Self { cache_ttl_secs: cache.ttl_secs, cache_scope: cache.scope, cache_sampled: cache.sampled, ..self }
    }

    /// The route's policy, `None` when it is a plain fallback chain.
    pub fn policy(&self) -> Option<RoutePolicy> {
        let policy = RoutePolicy {
            strategy: self.strategy,
            weights: self.weights.clone(),
            rules: self.rules.clone(),
            cache: self.cache(),
        };
        (policy != RoutePolicy::default()).then_some(policy)
    }

    /// The route with `policy` (a stored one; `None`: a plain fallback chain).
    pub fn with_policy(mut self, policy: Option<RoutePolicy>) -> Self {
        let policy = policy.unwrap_or_default();
        (self.strategy, self.weights, self.rules) = (policy.strategy, policy.weights, policy.rules);
        self.with_cache(policy.cache)
    }

    /// Every `provider/model` the route may send to, its rules' included, each once.
    pub fn all_targets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in self.targets.iter().chain(self.rules.iter().flat_map(|r| r.targets.iter())) {
            if !out.contains(&t.as_str()) {
                out.push(t);
            }
        }
        out
    }

    /// Checks the route's shape (not whether its targets exist: that is the catalog's).
    pub fn check(&self) -> Result<(), RouteProblem> {
        check_targets("targets", &self.targets)?;
        check_weights("weights", self.strategy, &self.weights, self.targets.len())?;
        if self.rules.len() > MAX_ROUTE_RULES {
            return Err(RouteProblem::new("rules", format!("A route has at most {MAX_ROUTE_RULES} rules.")));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            check_conditions(&at("when"), &rule.when)?;
            check_targets(&at("targets"), &rule.targets)?;
            check_weights(&at("weights"), rule.strategy.unwrap_or(self.strategy), &rule.weights, rule.targets.len())?;
        }
        if let Some((field, message)) = self.cache().problem() {
            return Err(RouteProblem::new(field, message));
        }
        Ok(())
    }
}

fn check_targets(field: &str, targets: &[String]) -> Result<(), RouteProblem> {
    if targets.is_empty() || targets.len() > MAX_ROUTE_TARGETS {
        return Err(RouteProblem::new(
            field,
            format!("`{field}` must list 1–{MAX_ROUTE_TARGETS} `provider/model` names."),
        ));
    }
    for (i, target) in targets.iter().enumerate() {
        let ok = target.split_once('/').is_some_and(|(p, m)| !p.is_empty() && !m.is_empty());
        if !ok {
            return Err(RouteProblem::new(
                format!("{field}[{i}]"),
                format!("`{field}[{i}]` must be `provider/model`."),
            ));
        }
        if targets[..i].contains(target) {
            return Err(RouteProblem::new(
                format!("{field}[{i}]"),
                format!("`{field}[{i}]`: `{target}` is listed twice."),
            ));
        }
    }
    Ok(())
}

fn check_weights(field: &str, strategy: Strategy, weights: &[u32], targets: usize) -> Result<(), RouteProblem> {
    if weights.is_empty() {
        return Ok(());
    }
    if strategy != Strategy::Weighted {
        return Err(RouteProblem::new(field, format!("`{field}` is only for the `weighted` strategy.")));
    }
    if weights.len() != targets {
        return Err(RouteProblem::new(
            field,
            format!("`{field}` needs one weight per target: {targets} targets, {} weights.", weights.len()),
        ));
    }
    if weights.iter().all(|w| *w == 0) {
        return Err(RouteProblem::new(field, format!("`{field}` needs at least one weight above 0.")));
    }
    Ok(())
}

fn check_conditions(field: &str, when: &Conditions) -> Result<(), RouteProblem> {
    if when.is_empty() {
        return Err(RouteProblem::new(
            field,
            format!(
                "`{field}` needs at least one condition (a rule without one would always match: use the route's own targets)."
            ),
        ));
    }
    if let Some(share) = when.cjk_share_at_least
        && !(0.0..=1.0).contains(&share)
    {
        return Err(RouteProblem::new(
            format!("{field}.cjk_share_at_least"),
            format!("`{field}.cjk_share_at_least` is a share between 0 and 1 (0.3 = 30 %), not {share}."),
        ));
    }
    for (name, value) in [("tag", &when.tag), ("user", &when.user)] {
        if let Some(text) = value
            && (text.trim().is_empty() || text.chars().count() > MAX_CONDITION_TEXT)
        {
            return Err(RouteProblem::new(
                format!("{field}.{name}"),
                format!("`{field}.{name}` must be 1–{MAX_CONDITION_TEXT} characters."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(toml_text: &str) -> Route {
        toml::from_str(toml_text).expect("parses")
    }

    #[test]
    fn a_route_reads_its_rules_and_strategy_from_toml() {
        let r = route(
            r#"
            name = "compose"
            strategy = "weighted"
            targets = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
            weights = [3, 1]
            [[rules]]
            when = { cjk_share_at_least = 0.3, tag = "lyrics" }
            targets = ["deepseek/deepseek-chat", "openai/gpt-4o-mini"]
            strategy = "cheapest"
            "#,
        );
        assert_eq!(r.strategy, Strategy::Weighted);
        assert_eq!(r.weights, vec![3, 1]);
        assert_eq!(r.rules[0].when.cjk_share_at_least, Some(0.3));
        assert_eq!(r.rules[0].when.tag.as_deref(), Some("lyrics"));
        assert_eq!(r.rules[0].strategy, Some(Strategy::Cheapest));
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.all_targets(), vec!["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "deepseek/deepseek-chat"]);
    }

    #[test]
    fn a_route_without_new_fields_is_a_fallback_chain() {
        let r = route(
            r#"name = "r"
targets = ["a/x"]"#,
        );
        assert_eq!(r, Route::fallback("r", vec!["a/x".into()]));
    }

    #[test]
    fn bad_routes_name_the_field_at_fault() {
        let problem = |text: &str| route(text).check().expect_err("refused").field;
        let base = "name = \"r\"\ntargets = [\"a/x\", \"b/y\"]\n";
        assert_eq!(problem(&format!("{base}weights = [1, 1]")), "weights", "weights without weighted");
        assert_eq!(problem(&format!("{base}strategy = \"weighted\"\nweights = [1]")), "weights");
        assert_eq!(problem(&format!("{base}strategy = \"weighted\"\nweights = [0, 0]")), "weights");
        assert_eq!(problem(&format!("{base}[[rules]]\nwhen = {{}}\ntargets = [\"a/x\"]")), "rules[0].when");
        assert_eq!(
            problem(&format!("{base}[[rules]]\nwhen = {{ cjk_share_at_least = 30 }}\ntargets = [\"a/x\"]")),
            "rules[0].when.cjk_share_at_least"
        );
        assert_eq!(
            problem(&format!("{base}[[rules]]\nwhen = {{ tag = \" \" }}\ntargets = [\"a/x\"]")),
            "rules[0].when.tag"
        );
        assert_eq!(
            problem(&format!("{base}[[rules]]\nwhen = {{ has_tools = true }}\ntargets = [\"ax\"]")),
            "rules[0].targets[0]"
        );
        assert_eq!(problem("name = \"r\"\ntargets = [\"a/x\", \"a/x\"]"), "targets[1]");
        assert!(
            toml::from_str::<Route>(&format!("{base}[[rules]]\nwhen = {{ langauge = \"zh\" }}\ntargets = [\"a/x\"]"))
                .is_err()
        );
    }
}
