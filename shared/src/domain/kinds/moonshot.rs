//! Moonshot's Kimi (platform.moonshot.cn; set `MOONSHOT_BASE_URL` to `https://api.moonshot.ai/v1` for an
//! international key). Errors carry only `type`; insufficient balance is a **429**
//! `exceeded_current_quota_error`, an overloaded engine a 429 `engine_overloaded_error`. Usage
//! reports cache reads both as `usage.cached_tokens` and in `prompt_tokens_details`.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Moonshot,
    id: "moonshot",
    label: "Moonshot Kimi",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://api.moonshot.cn/v1",
    sdk_env: Some(("MOONSHOT_API_KEY", "MOONSHOT_BASE_URL")),
    creatable: true,
    several_choices: true,
    logprobs: false,
    max_tokens_only: true,
    quota_codes: &["exceeded_current_quota_error"],
    overloaded_codes: &["engine_overloaded_error"],
    // Kimi has no embeddings API.
    embeddings: false,
    status_in_body: None,
};
