//! maestro-shared's integration tests, one binary: the store conformance suite (embedded and, with
//! moto, AWS), provider clients and streams against local servers, AWS costs and faults.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[macro_use]
mod conformance;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;
mod support;

mod aws_conformance;
mod aws_cost;
mod aws_credit_events;
mod aws_faults;
mod cn_providers;
mod providers;
mod store_conformance;
mod streams;
