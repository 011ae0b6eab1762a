//! OpenAI's own API.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Openai,
    id: "openai",
    label: "OpenAI",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://api.openai.com/v1",
    sdk_env: Some(("OPENAI_API_KEY", "OPENAI_BASE_URL")),
    creatable: true,
    several_choices: true,
    logprobs: true,
    max_tokens_only: false,
    quota_codes: &[],
    overloaded_codes: &[],
    // `POST {base}/embeddings` (text-embedding-3-small, -large).
    embeddings: true,
    status_in_body: None,
};
