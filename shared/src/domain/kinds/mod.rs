//! Provider kinds: the wire format and conventions Maestro speaks to each kind of provider.
//! Everything Maestro knows of a kind is one file here holding its [`KindSpec`]; the admin API's
//! validation, the console's list, the SDK variables read at start and the default endpoints all
//! come from [`KINDS`].
//!
//! Adding a kind (say, an OpenAI-compatible API with its own auth header) is one new file with
//! its `SPEC` and one line in the [`provider_kinds!`] list below (docs/ARCHITECTURE.md §9).

/// The request and answer format a kind speaks (which client in `providers/` serves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// OpenAI's chat completions.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// The local runner's in-process echo.
    Demo,
}

/// How the provider key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key as the whole value of this header (`x-api-key`, `api-key`, …).
    Named(&'static str),
}

/// What Maestro knows of one provider kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    pub kind: ProviderKind,
    /// The name in configs, the API and the stores (the variant's serde name).
    pub id: &'static str,
    /// The name people read (the console).
    pub label: &'static str,
    pub wire: WireFormat,
    pub key_header: KeyHeader,
    /// The public endpoint, as the official SDKs default it; empty when each provider must name
    /// its own `base_url`.
    pub default_base_url: &'static str,
    /// The official SDK's key and base-URL variables, read at start for the built-in provider
    /// whose code is [`Self::id`].
    pub sdk_env: Option<(&'static str, &'static str)>,
    /// Whether admins may create providers of this kind (the demo is built in).
    pub creatable: bool,
    /// Whether the API answers `n` > 1 with that many choices.
    pub several_choices: bool,
    /// Whether the API returns token log probabilities.
    pub logprobs: bool,
    /// Whether the output limit must be sent as `max_tokens` (the API does not know
    /// `max_completion_tokens`).
    pub max_tokens_only: bool,
    /// Error codes (`error.code`, else `error.type`) that mean the key's account is out of
    /// balance or quota, whatever the HTTP status (Qwen's 400 `Arrearage`, Kimi's 429
    /// `exceeded_current_quota_error`): the key cools down long, the call moves to another key.
    /// OpenAI's `insufficient_quota` counts for every kind.
    pub quota_codes: &'static [&'static str],
    /// Error codes that mean the provider is overloaded (retry, without blaming the key).
    pub overloaded_codes: &'static [&'static str],
    /// Whether the API serves OpenAI's embeddings (`POST {base}/embeddings`, the same request and
    /// answer): `POST /v1/embeddings` is refused with a 400 for a kind without them.
    pub embeddings: bool,
    /// Where a provider that answers errors with HTTP 200 puts its status, if it does.
    pub status_in_body: Option<BodyStatus>,
}

/// An error status carried in a 2xx body (MiniMax's `base_resp`): the dotted paths of the code
/// (0 = success) and its message, and the HTTP status each known code stands for (others: 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyStatus {
    pub code_field: &'static str,
    pub message_field: &'static str,
    pub as_http: &'static [(i64, u16)],
}

/// Declares [`ProviderKind`] and [`KINDS`] from one list, so a variant and its row cannot drift
/// apart: `Variant => module` where `module::SPEC` is the kind's row.
macro_rules! provider_kinds {
    ($($(#[$doc:meta])* $variant:ident => $module:ident),+ $(,)?) => {
        /// A provider kind; its row of [`KINDS`] says everything Maestro knows of it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ProviderKind {
            $($(#[$doc])* $variant),+
        }

        /// Every provider kind, in the order of [`ProviderKind`]'s variants (and the order people
        /// see them).
        pub const KINDS: &[KindSpec] = &[$($module::SPEC),+];

        $(mod $module;)+
    };
}

provider_kinds! {
    Openai => openai,
    Anthropic => anthropic,
    Deepseek => deepseek,
    /// Any endpoint that speaks OpenAI's chat completions (vLLM, Ollama, OpenRouter, …).
    OpenaiCompatible => openai_compatible,
    /// The in-process echo model of the local runner; never enabled in AWS.
    Demo => demo,
    Qwen => qwen,
    Moonshot => moonshot,
    Zhipu => zhipu,
    Ernie => ernie,
    Doubao => doubao,
    Minimax => minimax,
    Gemini => gemini,
}

impl ProviderKind {
    /// This kind's row of [`KINDS`] (listed in variant order by [`provider_kinds!`]).
    pub fn spec(self) -> &'static KindSpec {
        &KINDS[self as usize]
    }

    /// Whether the provider's API answers `n` > 1 with that many choices (Anthropic's and the
    /// demo model's answer one; DeepSeek's refuses `n`).
    pub fn supports_several_choices(self) -> bool {
        self.spec().several_choices
    }

    /// Whether the provider's API returns token log probabilities.
    pub fn supports_logprobs(self) -> bool {
        self.spec().logprobs
    }

    /// Whether the provider's API serves OpenAI's embeddings ([`KindSpec::embeddings`]).
    pub fn supports_embeddings(self) -> bool {
        self.spec().embeddings
    }

    pub fn as_str(self) -> &'static str {
        self.spec().id
    }

    pub fn parse(s: &str) -> Option<Self> {
        KINDS.iter().find(|spec| spec.id == s).map(|spec| spec.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_sits_at_its_variant_and_is_named_as_serde_names_it() {
        for (index, spec) in KINDS.iter().enumerate() {
            assert_eq!(spec.kind as usize, index, "{} is listed out of order", spec.id);
            let serde_name: ProviderKind = serde_json::from_value(serde_json::json!(spec.id)).expect(spec.id);
            assert_eq!(serde_name, spec.kind, "{}", spec.id);
            assert_eq!(ProviderKind::parse(spec.id), Some(spec.kind));
            assert!(!spec.label.is_empty() && !spec.id.is_empty());
            if let Some((key_var, url_var)) = spec.sdk_env {
                let prefix = spec.id.to_ascii_uppercase();
                assert_eq!((key_var, url_var), (&*format!("{prefix}_API_KEY"), &*format!("{prefix}_BASE_URL")));
                assert!(spec.default_base_url.starts_with("https://"), "{}", spec.id);
            }
        }
        let ids: std::collections::HashSet<_> = KINDS.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), KINDS.len(), "ids are unique");
        assert_eq!(ProviderKind::parse("nope"), None);
    }

    #[test]
    fn embeddings_are_served_only_by_kinds_that_speak_openai_s_format() {
        for spec in KINDS {
            if spec.embeddings {
                assert_eq!(spec.wire, WireFormat::OpenAi, "{} would be sent an OpenAI request", spec.id);
            }
        }
        assert!(ProviderKind::Openai.supports_embeddings());
        assert!(ProviderKind::OpenaiCompatible.supports_embeddings());
        assert!(!ProviderKind::Anthropic.supports_embeddings());
        assert!(!ProviderKind::Deepseek.supports_embeddings());
    }
}
