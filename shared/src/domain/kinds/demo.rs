//! The local runner's in-process echo model: a full round trip offline, no tokens spent.

use super::{KeyHeader, KindSpec, ProviderKind, WireFormat};

pub(super) const SPEC: KindSpec = KindSpec {
    kind: ProviderKind::Demo,
    id: "demo",
    label: "Demo (built in)",
    wire: WireFormat::Demo,
    key_header: KeyHeader::Bearer,
    default_base_url: "in-process",
    sdk_env: None,
    creatable: false,
    several_choices: false,
    logprobs: false,
    max_tokens_only: false,
    quota_codes: &[],
    overloaded_codes: &[],
    embeddings: false,
    status_in_body: None,
};
