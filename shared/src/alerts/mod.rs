//! Alerting: where notifications go ([`channels`]).

pub mod channels;
