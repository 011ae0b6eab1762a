//! The aggregator's integration tests, one binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod busy_store;
mod lambda_events;
mod process;
mod sqs_moto;
