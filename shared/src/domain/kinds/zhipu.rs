//! Zhipu's GLM on the BigModel open platform (set `ZHIPU_BASE_URL` to `https://api.z.ai/api/paas/v4` for a
//! Z.ai key). `error.code` is a business code: `1113` (no balance) arrives as a 429 and is the
//! account, not a rate limit; `1305` is an overloaded model. The API takes no `n` or `logprobs`.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Zhipu,
    id: "zhipu",
    label: "Zhipu GLM (BigModel)",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://open.bigmodel.cn/api/paas/v4",
    sdk_env: Some(("ZHIPU_API_KEY", "ZHIPU_BASE_URL")),
    creatable: true,
    several_choices: false,
    logprobs: false,
    max_tokens_only: true,
    quota_codes: &["1113"],
    overloaded_codes: &["1305"],
    // BigModel's `POST /api/paas/v4/embeddings` (embedding-3) answers in OpenAI's shape.
    embeddings: true,
    status_in_body: None,
};
