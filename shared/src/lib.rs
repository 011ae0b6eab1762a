//! Maestro's shared crate: everything the Lambda functions and the local runner have in common.
//!
//! Handlers in `functions/` parse a request, call into this crate and turn the result into a
//! response; the rules (which key, which retry, what it costs, what gets counted) live here.

pub mod admin;
pub mod alerts;
pub mod anthropic_api;
pub mod auth;
pub mod aws;
pub mod bootstrap;
pub mod cache;
pub mod config;
pub mod credits;
pub mod domain;
pub mod edges;
pub mod error;
pub mod gateway;
pub mod http;
pub mod keys;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod pricing;
pub mod providers;
pub mod reframe;
pub mod responses_api;
pub mod routing;
pub mod secret;
pub mod stats;
pub mod store;
pub mod time;
pub mod tokens;
