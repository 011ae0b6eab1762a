//! ByteDance's Doubao models on Volcano Engine Ark. `model` is a model id or an endpoint id (`ep-…`). An
//! overdue account answers **403** `AccountOverdueError`: the account, not a bad key.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Doubao,
    id: "doubao",
    label: "ByteDance Doubao (Volcano Engine Ark)",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://ark.cn-beijing.volces.com/api/v3",
    sdk_env: Some(("DOUBAO_API_KEY", "DOUBAO_BASE_URL")),
    creatable: true,
    several_choices: true,
    logprobs: true,
    max_tokens_only: true,
    quota_codes: &["AccountOverdueError"],
    overloaded_codes: &["ServerOverloaded"],
    // Ark's `POST /api/v3/embeddings` (doubao-embedding…) answers in OpenAI's shape.
    embeddings: true,
    status_in_body: None,
};
