//! Which of a route's rules applies to a request: the request's traits, and the conditions held
//! against them in order, first match wins.

use crate::domain::{ChatRequest, Conditions, MessageContent, Route, Strategy};

/// Most tags a caller's `x-maestro-tags` carries that are looked at.
pub const MAX_TAGS: usize = 16;
/// Longest tag kept.
const MAX_TAG_CHARS: usize = 64;

/// What the rules look at in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTraits {
    /// Share (0–1) of the prompt's letters that are Chinese, Japanese or Korean.
    pub cjk_share: f64,
    pub has_images: bool,
    pub has_tools: bool,
    /// Estimated prompt tokens (`None` when no rule needs them: they are not counted).
    pub prompt_tokens: Option<u64>,
    pub tags: Vec<String>,
    pub user: String,
}

impl RequestTraits {
    /// The traits of `request` from `user`, with the caller's tags; `prompt_tokens` is filled in
    /// by the caller when a rule needs it.
    pub fn of(request: &ChatRequest, user: &str, tags: &[String]) -> Self {
        Self {
            cjk_share: cjk_share(request),
            has_images: request.uses_images(),
            has_tools: request.uses_tools(),
            prompt_tokens: None,
            tags: tags.to_vec(),
            user: user.to_string(),
        }
    }

    /// The traits of an embeddings request's `texts` (no images, no tools) from `user`.
    pub fn of_texts<'t>(texts: impl Iterator<Item = &'t str>, user: &str, tags: &[String]) -> Self {
        Self {
            cjk_share: cjk_share_of(texts),
            has_images: false,
            has_tools: false,
            prompt_tokens: None,
            tags: tags.to_vec(),
            user: user.to_string(),
        }
    }
}

/// The tags of an `x-maestro-tags` header: comma-separated, trimmed, empty ones dropped, at most
/// [`MAX_TAGS`] of at most 64 characters each.
pub fn parse_tags(header: &str) -> Vec<String> {
    header
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS)
        .take(MAX_TAGS)
        .map(str::to_string)
        .collect()
}

/// What a route chose for a request: the targets, how to order them, and which rule chose them.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice<'r> {
    /// The matched rule's index, `None` for the route's own targets.
    pub rule: Option<usize>,
    pub targets: &'r [String],
    pub strategy: Strategy,
    pub weights: &'r [u32],
}

impl Choice<'_> {
    /// The rule as logged and sent in `x-maestro-route-rule`: its index, or `default`.
    pub fn label(&self) -> String {
        self.rule.map_or_else(|| "default".to_string(), |i| i.to_string())
    }
}

/// The first rule of `route` whose conditions all hold (skipping rules `usable` refuses, e.g.
/// those without an active target), else the route's own targets.
pub fn choose<'r>(route: &'r Route, traits: &RequestTraits, usable: impl Fn(&[String]) -> bool) -> Choice<'r> {
    for (i, rule) in route.rules.iter().enumerate() {
        if matches(&rule.when, traits) && usable(&rule.targets) {
            return Choice {
                rule: Some(i),
                targets: &rule.targets,
                strategy: rule.strategy.unwrap_or(route.strategy),
                weights: &rule.weights,
            };
        }
    }
    Choice { rule: None, targets: &route.targets, strategy: route.strategy, weights: &route.weights }
}

/// Whether every condition set in `when` holds for `traits`.
pub fn matches(when: &Conditions, traits: &RequestTraits) -> bool {
    when.cjk_share_at_least.is_none_or(|at_least| traits.cjk_share >= at_least)
        && when.has_images.is_none_or(|want| traits.has_images == want)
        && when.has_tools.is_none_or(|want| traits.has_tools == want)
        && when.prompt_tokens_over.is_none_or(|over| traits.prompt_tokens.is_some_and(|n| n > over))
        && when.tag.as_ref().is_none_or(|tag| traits.tags.iter().any(|t| t == tag))
        && when.user.as_ref().is_none_or(|pattern| wildcard_match(pattern, &traits.user))
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none too).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The share of the prompt's letters (every message's text) that are Chinese, Japanese or
/// Korean; 0 without letters. Digits, spaces and punctuation are not letters.
pub fn cjk_share(request: &ChatRequest) -> f64 {
    let texts = request.messages.iter().flat_map(|message| -> Vec<&str> {
        match &message.content {
            Some(MessageContent::Text(text)) => vec![text.as_str()],
            Some(MessageContent::Parts(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(|t| t.as_str())).collect()
            }
            None => Vec::new(),
        }
    });
    cjk_share_of(texts)
}

/// The CJK share of the letters of `texts` (see [`cjk_share`]).
pub fn cjk_share_of<'t>(texts: impl Iterator<Item = &'t str>) -> f64 {
    let (mut letters, mut cjk) = (0u64, 0u64);
    for text in texts {
        for c in text.chars().filter(|c| c.is_alphabetic()) {
            letters += 1;
            cjk += u64::from(is_cjk(c));
        }
    }
    if letters == 0 { 0.0 } else { cjk as f64 / letters as f64 }
}

/// Han ideographs (with their extensions and compatibility forms), kana and hangul.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F // Han
        | 0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9D // kana
        | 0x1100..=0x11FF | 0x3130..=0x318F | 0xA960..=0xA97F | 0xAC00..=0xD7AF | 0xD7B0..=0xD7FF // hangul
        | 0x3005..=0x3007 // 々 〆 〇
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RouteRule;

    fn request(json: serde_json::Value) -> ChatRequest {
        serde_json::from_value(json).expect("request")
    }

    fn text(content: &str) -> ChatRequest {
        request(serde_json::json!({"model": "m", "messages": [{"role": "user", "content": content}]}))
    }

    fn traits() -> RequestTraits {
        RequestTraits {
            cjk_share: 0.0,
            has_images: false,
            has_tools: false,
            prompt_tokens: Some(10),
            tags: vec![],
            user: "u".into(),
        }
    }

    #[test]
    fn cjk_share_counts_letters_only() {
        assert_eq!(cjk_share(&text("写一首关于夏天的歌")), 1.0);
        assert_eq!(cjk_share(&text("hello")), 0.0);
        // 4 Han letters and 4 Latin ones; digits, spaces and punctuation do not count.
        assert_eq!(cjk_share(&text("夏天的歌 song, 2026!!")), 0.5);
        assert_eq!(cjk_share(&text("ひらがな カタカナ 한국어 abcd")), 11.0 / 15.0);
        assert_eq!(cjk_share(&text("1234 ...")), 0.0);
        let parts = request(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "歌词歌词歌词歌词"}, {"type": "image_url", "image_url": {"url": "data:x"}}]}
        ]}));
        assert_eq!(cjk_share(&parts), 8.0 / 15.0);
    }

    #[test]
    fn wildcards_match_any_run() {
        assert!(wildcard_match("vip-*", "vip-42"));
        assert!(wildcard_match("vip-*", "vip-"));
        assert!(!wildcard_match("vip-*", "xvip-42"));
        assert!(wildcard_match("*-beta", "team-a-beta"));
        assert!(wildcard_match("a*b*c", "a-x-b-y-c"));
        assert!(!wildcard_match("a*b*c", "a-x-c-y-b"));
        assert!(!wildcard_match("ab*ba", "aba"), "the prefix and suffix may not overlap");
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn tags_are_trimmed_and_bounded() {
        assert_eq!(parse_tags(" lyrics, draft ,,"), vec!["lyrics", "draft"]);
        assert_eq!(parse_tags(&"t,".repeat(40)).len(), MAX_TAGS);
        assert!(parse_tags(&"x".repeat(65)).is_empty());
    }

    #[test]
    fn every_condition_must_hold_and_the_first_matching_rule_wins() {
        let rule = |when: Conditions, target: &str| RouteRule {
            when,
            targets: vec![target.to_string()],
            strategy: None,
            weights: vec![],
        };
        let route = Route {
            strategy: Strategy::Cheapest,
            rules: vec![
                rule(
                    Conditions { cjk_share_at_least: Some(0.3), tag: Some("lyrics".into()), ..Default::default() },
                    "a/cn-lyrics",
                ),
                rule(Conditions { cjk_share_at_least: Some(0.3), ..Default::default() }, "a/cn"),
                rule(Conditions { has_images: Some(true), ..Default::default() }, "a/vision"),
                rule(Conditions { has_tools: Some(true), ..Default::default() }, "a/tools"),
                rule(Conditions { prompt_tokens_over: Some(100), ..Default::default() }, "a/long"),
                rule(Conditions { user: Some("vip-*".into()), ..Default::default() }, "a/vip"),
            ],
            ..Route::fallback("r", vec!["a/default".into()])
        };
        let pick = |t: RequestTraits| {
            let choice = choose(&route, &t, |_| true);
            (choice.targets[0].clone(), choice.label())
        };
        let chinese = RequestTraits { cjk_share: 0.3, ..traits() };
        assert_eq!(
            pick(RequestTraits { tags: vec!["draft".into(), "lyrics".into()], ..chinese.clone() }),
            ("a/cn-lyrics".into(), "0".into())
        );
        assert_eq!(pick(chinese.clone()), ("a/cn".into(), "1".into()), "0.3 is at least 0.3");
        assert_eq!(pick(RequestTraits { cjk_share: 0.29, ..traits() }), ("a/default".into(), "default".into()));
        assert_eq!(pick(RequestTraits { has_images: true, ..traits() }).0, "a/vision");
        assert_eq!(pick(RequestTraits { has_tools: true, ..traits() }).0, "a/tools");
        assert_eq!(pick(RequestTraits { prompt_tokens: Some(101), ..traits() }).0, "a/long");
        assert_eq!(pick(RequestTraits { prompt_tokens: Some(100), ..traits() }).0, "a/default", "over, not at");
        assert_eq!(pick(RequestTraits { user: "vip-7".into(), ..traits() }).0, "a/vip");
        // A rule whose targets cannot serve is passed over.
        let choice = choose(&route, &chinese, |targets| targets[0] != "a/cn");
        assert_eq!((choice.targets[0].as_str(), choice.rule), ("a/default", None));
        assert_eq!(choice.strategy, Strategy::Cheapest, "a rule without a strategy takes the route's");
    }
}
