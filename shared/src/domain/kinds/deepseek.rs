//! DeepSeek: OpenAI's chat completions, without `n`, with JSON mode instead of JSON schemas (the
//! difference is bridged in `providers/openai.rs`).

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Deepseek,
    id: "deepseek",
    label: "DeepSeek",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://api.deepseek.com",
    sdk_env: Some(("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL")),
    creatable: true,
    // DeepSeek refuses `n`.
    several_choices: false,
    logprobs: true,
    // DeepSeek documents only `max_tokens`.
    max_tokens_only: true,
    quota_codes: &[],
    overloaded_codes: &[],
    // DeepSeek has no embeddings API.
    embeddings: false,
    status_in_body: None,
};
