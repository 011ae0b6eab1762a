//! The local runner's integration tests, one binary: the runner driven over HTTP against fake
//! providers in the real wire formats (see each module).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "../../../shared/tests/support/fault_proxy.rs"]
mod fault_proxy;
mod support;

mod admin_api;
mod alerts;
mod attempts;
mod aws_faults;
mod batch;
mod budgets;
mod cache;
mod caller_auth;
mod crash;
mod credits;
mod e2e;
mod edges;
mod embeddings;
mod hangups;
mod ledger;
mod messages;
mod metrics;
mod responses;
mod routing;
mod stats_api;
mod streaming;
