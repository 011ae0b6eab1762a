//! The chat function's integration tests, one binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod emf;
mod invocation_deadline;
mod lambda_events;
