//! Google's Gemini through its OpenAI-compatible endpoint (a Gemini API key as a bearer token). Error
//! bodies are a JSON array of Google RPC errors (`[{"error": {"code": 429, "status":
//! "RESOURCE_EXHAUSTED"}}]`), unwrapped before they are read; thinking tokens are counted in
//! `total_tokens` but not in `completion_tokens`, and are billed as output.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Gemini,
    id: "gemini",
    label: "Google Gemini",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://generativelanguage.googleapis.com/v1beta/openai",
    sdk_env: Some(("GEMINI_API_KEY", "GEMINI_BASE_URL")),
    creatable: true,
    several_choices: false,
    logprobs: false,
    max_tokens_only: true,
    quota_codes: &[],
    overloaded_codes: &[],
    // The compatible endpoint serves `embeddings` (gemini-embedding-001).
    embeddings: true,
    status_in_body: None,
};
