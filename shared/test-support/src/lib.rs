//! What the integration tests of every crate share: one fake provider that speaks the real wire
//! formats ([`FakeProvider`]), the recorded provider answers it serves ([`fixture`] and the
//! constants below, sources in `shared/tests/fixtures/SOURCES.md`), and builders for catalog
//! values and provider calls ([`provider`], [`model`], [`Setup`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test support: a failure is the test's")]

mod builders;
mod fake_provider;

pub use builders::{Setup, model, provider};
pub use fake_provider::{
    EMBEDDING_DIMENSIONS, FakeProvider, Reply, Seen, closed_port, embedding, embedding_tokens, hang_up_server, serve,
};

/// A recorded fixture, by its path under `shared/tests/fixtures/`.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

macro_rules! recorded {
    ($($(#[$doc:meta])* $name:ident = $path:literal;)+) => {
        $($(#[$doc])* pub const $name: &str = include_str!(concat!("../../tests/fixtures/", $path));)+
    };
}

recorded! {
    /// OpenAI's completion (usage 19 prompt / 10 completion tokens).
    OPENAI_COMPLETION = "openai/chat_completion.json";
    OPENAI_429 = "openai/error_429_rate_limit.json";
    /// OpenAI's 401, which names the key it got (`DEADBEEF` in the recording).
    OPENAI_401 = "openai/error_401.json";
    OPENAI_QUOTA = "openai/error_429_insufficient_quota.json";
    /// A provider's 400 about the request.
    OPENAI_400 = "openai/error_400_invalid_request.json";
    OPENAI_STREAM = "openai/chat_stream.sse";
    /// OpenAI's tool call (`get_current_weather`; the stream calls `get_capital`).
    OPENAI_TOOL_CALL = "openai/chat_completion_tool_call.json";
    OPENAI_TOOL_STREAM = "openai/chat_stream_tool_call.sse";
    OPENAI_MODELS = "openai/models_list.json";
    ANTHROPIC_MESSAGE = "anthropic/message.json";
    ANTHROPIC_529 = "anthropic/error_529_overloaded.json";
    ANTHROPIC_STREAM = "anthropic/stream.sse";
    /// Anthropic's tool use (`get_weather`).
    ANTHROPIC_TOOL_USE = "anthropic/message_tool_use.json";
    ANTHROPIC_TOOL_STREAM = "anthropic/stream_tool_use.sse";
    ANTHROPIC_MODELS = "anthropic/models_list.json";
    DEEPSEEK_MODELS = "deepseek/models_list_extended_2026-09.json";
}
