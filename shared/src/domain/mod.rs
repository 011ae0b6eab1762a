//! Domain types: what a chat request is, what the catalog holds. No I/O here.

pub mod catalog;
pub mod chat;

pub use catalog::*;
pub use chat::*;
