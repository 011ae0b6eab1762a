//! Anthropic's Messages API (translated from and to chat completions by `providers/anthropic.rs`).

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Anthropic,
    id: "anthropic",
    label: "Anthropic",
    wire: WireFormat::Anthropic,
    key_header: KeyHeader::Named("x-api-key"),
    default_base_url: "https://api.anthropic.com",
    sdk_env: Some(("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")),
    creatable: true,
    several_choices: false,
    logprobs: false,
    max_tokens_only: false,
    quota_codes: &[],
    overloaded_codes: &[],
    // Anthropic has no embeddings API.
    embeddings: false,
    status_in_body: None,
};
