//! The shared test support (one fake provider, the recorded fixtures, catalog builders); the
//! fault proxy for DynamoDB lives beside it (`fault_proxy.rs`).

pub use maestro_test_support::*;
