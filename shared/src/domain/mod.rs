//! Domain types: what a chat (or embeddings) request is, what the catalog holds, the provider kinds. No I/O here.

pub mod catalog;
pub mod chat;
pub mod embeddings;
pub mod kinds;
pub mod routes;

pub use catalog::*;
pub use chat::*;
pub use embeddings::{EmbeddingInput, EmbeddingsBody, EmbeddingsRequest, EncodingFormat, MAX_EMBEDDING_INPUTS};
pub use kinds::{BodyStatus, KINDS, KeyHeader, KindSpec, WireFormat};
pub use routes::{Conditions, Route, RoutePolicy, RouteProblem, RouteRule, Strategy};
