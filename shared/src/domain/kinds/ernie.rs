//! Baidu's ERNIE through Qianfan's OpenAI-compatible v2 API (a `bce-v3/…` API key as a bearer token).
//! Rate limits are 429 `rpm_rate_limit_exceeded` / `tpm_rate_limit_exceeded`.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Ernie,
    id: "ernie",
    label: "Baidu ERNIE (Qianfan)",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://qianfan.baidubce.com/v2",
    sdk_env: Some(("ERNIE_API_KEY", "ERNIE_BASE_URL")),
    creatable: true,
    several_choices: false,
    logprobs: false,
    max_tokens_only: true,
    quota_codes: &[],
    overloaded_codes: &[],
    // Qianfan v2's embeddings endpoint is not confirmed to speak OpenAI's shape.
    embeddings: false,
    status_in_body: None,
};
