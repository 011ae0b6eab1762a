//! Alerts: rules over the minute and daily stats and the keys' health, evaluated on a schedule
//! by one process at a time, notifying channels ([`channels`]) once when a rule fires, while it
//! keeps firing and when it resolves.

pub mod channels;
pub mod engine;
pub mod evaluate;
pub mod rules;
pub mod setup;
