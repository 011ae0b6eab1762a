//! Any endpoint that speaks OpenAI's chat completions at a `base_url` the admin names.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::OpenaiCompatible,
    id: "openai_compatible",
    label: "OpenAI-compatible",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "",
    sdk_env: None,
    creatable: true,
    several_choices: true,
    logprobs: true,
    max_tokens_only: false,
    quota_codes: &[],
    overloaded_codes: &[],
    // vLLM, Ollama, OpenRouter and the like serve `POST {base}/embeddings`; a server that does
    // not answers 404, which the caller sees.
    embeddings: true,
    status_in_body: None,
};
