//! Alibaba Cloud Model Studio (DashScope) in its OpenAI-compatible mode. The default is the China (Beijing)
//! endpoint; keys are region-scoped, so set `QWEN_BASE_URL` to `https://dashscope-intl.aliyuncs.com/compatible-mode/v1`
//! for a Singapore key. An overdue account answers **400** `Arrearage`: that is the key's account
//! out of money, not the caller's mistake.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Qwen,
    id: "qwen",
    label: "Qwen (Alibaba Cloud Model Studio)",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://dashscope.aliyuncs.com/compatible-mode/v1",
    sdk_env: Some(("QWEN_API_KEY", "QWEN_BASE_URL")),
    creatable: true,
    several_choices: false,
    logprobs: true,
    max_tokens_only: true,
    quota_codes: &["Arrearage"],
    overloaded_codes: &[],
    // DashScope's compatible mode serves `embeddings` (text-embedding-v3, v4).
    embeddings: true,
    status_in_body: None,
};
