//! Domain types: what a chat request is, what the catalog holds, the provider kinds. No I/O here.

pub mod catalog;
pub mod chat;
pub mod kinds;
pub mod routes;

pub use catalog::*;
pub use chat::*;
pub use kinds::{BodyStatus, KINDS, KeyHeader, KindSpec, WireFormat};
pub use routes::{Conditions, Route, RoutePolicy, RouteProblem, RouteRule, Strategy};
