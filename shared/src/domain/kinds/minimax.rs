//! MiniMax (the China platform; set `MINIMAX_BASE_URL` to `https://api.minimax.io/v1` for an international
//! key). Every answer carries `base_resp {status_code, status_msg}`, and MiniMax has answered
//! errors with HTTP 200 and a non-zero `status_code`, so a 200 is checked for one. `n` must be 1.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat, BodyStatus};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Minimax,
    id: "minimax",
    label: "MiniMax",
    wire: WireFormat::OpenAi,
    key_header: KeyHeader::Bearer,
    default_base_url: "https://api.minimaxi.com/v1",
    sdk_env: Some(("MINIMAX_API_KEY", "MINIMAX_BASE_URL")),
    creatable: true,
    several_choices: false,
    logprobs: false,
    max_tokens_only: false,
    quota_codes: &["1008", "insufficient_balance_error"],
    overloaded_codes: &[],
    // MiniMax's embeddings API has a format of its own (`texts`, `type`).
    embeddings: false,
    status_in_body: Some(BodyStatus {
        code_field: "base_resp.status_code",
        message_field: "base_resp.status_msg",
        // MiniMax's error codes (platform.minimax.io, "Error codes") as the HTTP status they mean.
        as_http: &[(1000, 500), (1001, 408), (1002, 429), (1004, 401), (1008, 402), (1024, 500), (1026, 400), (1027, 400), (2013, 400)],
    }),
};
