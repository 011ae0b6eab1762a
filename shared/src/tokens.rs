//! Token counting. Exact (tiktoken) for OpenAI models; a documented estimate elsewhere.
//!
//! Two uses: the count-tokens endpoints ([`count_prompt_tokens`]), and the bound a call reserves
//! against key and caller limits before it runs ([`PromptCount`]). Counting a large prompt takes
//! real CPU time (a 4 MB prompt, seconds), so both run on a blocking thread when the prompt is
//! large, never on the async workers that serve other requests.

use std::sync::OnceLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

use crate::domain::{ChatRequest, EmbeddingInput, MessageContent, ProviderKind};

/// Prompts up to this many bytes are counted in place; larger ones on a blocking thread.
const COUNT_IN_PLACE_BYTES: usize = 16 * 1024;
/// Prompts up to this many bytes are bounded by their byte count alone when reserving: the
/// tokenizer would save a few dozen tokens of reservation at a cost on every call.
const BYTES_ARE_CLOSE_ENOUGH: usize = 2 * 1024;

/// Tokens an image may take: OpenAI's high detail tops out at 1,445 (gpt-4o, 2048×768), Claude at
/// about 1,600 (1.15 megapixels); a reservation takes the larger for every image.
pub const IMAGE_TOKENS_BOUND: u64 = 1_600;

/// Tokens OpenAI adds around each message and to prime the reply.
const TOKENS_PER_MESSAGE: u64 = 3;
const TOKENS_PRIMING_REPLY: u64 = 3;
/// Per tool definition, for the framing the provider wraps around its schema.
const TOKENS_PER_TOOL: u64 = 10;

/// A token count and whether it is an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TokenCount {
    pub tokens: u64,
    pub estimated: bool,
}

/// The tokenizers, built on first use: building one takes a few hundred milliseconds and tens
/// of MB, so they are built only when a large prompt or a count-tokens call needs them, and on a
/// blocking thread (see [`PromptCount::of`]).
static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();

fn o200k() -> Option<&'static CoreBPE> {
    O200K.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

fn cl100k() -> Option<&'static CoreBPE> {
    CL100K.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

/// Whether the tokenizers a count needs are built, so counting in place cannot block on
/// building one.
fn tokenizers_ready(with_cl100k: bool) -> bool {
    O200K.get().is_some() && (!with_cl100k || CL100K.get().is_some())
}

/// The tokenizer OpenAI uses for a model: cl100k for gpt-4/gpt-3.5 (not gpt-4o/4.1), o200k else.
fn openai_bpe(model: &str) -> Option<&'static CoreBPE> {
    if is_cl100k_model(model) { cl100k() } else { o200k() }
}

/// Counts the prompt tokens of a chat request for a provider kind and model.
///
/// OpenAI: tiktoken with OpenAI's chat framing (3 tokens per message, 3 to prime the reply):
/// exact for text. Tool definitions, tool calls and response formats (OpenAI renders them in a
/// format of its own) are counted as their JSON text, and each image as half of
/// [`IMAGE_TOKENS_BOUND`] (its real count depends on its size): such a count is flagged
/// `estimated`.
/// Others: ⌈chars / 4⌉ + the same framing, flagged `estimated` (Anthropic's exact count needs a
/// call to its count_tokens endpoint; DeepSeek publishes no tokenizer for Rust).
pub fn count_prompt_tokens(kind: ProviderKind, model: &str, request: &ChatRequest) -> TokenCount {
    let framing = 3 * request.messages.len() as u64 + 3;
    if kind == ProviderKind::Openai
        && let Some(bpe) = openai_bpe(model)
    {
        let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
        let (mut tokens, mut estimated) = (framing, false);
        for m in &request.messages {
            tokens += count(&m.role);
            if let Some(content) = &m.content {
                tokens += count(&content.text());
                if let MessageContent::Parts(parts) = content {
                    let images = parts.iter().filter(|p| is_image(p)).count() as u64;
                    tokens += images * (IMAGE_TOKENS_BOUND / 2);
                    estimated |= images > 0;
                }
            }
            if let Some(name) = &m.name {
                tokens += count(name) + 1;
            }
            if !m.extra.is_empty() {
                tokens += count(&Value::Object(m.extra.clone()).to_string());
                estimated = true;
            }
        }
        for (field, value) in &request.extra {
            if matches!(field.as_str(), "tools" | "functions" | "tool_choice" | "response_format") {
                tokens += count(&value.to_string());
                estimated = true;
            }
        }
        return TokenCount { tokens, estimated };
    }
    let chars: u64 =
        request.messages.iter().map(|m| m.content.as_ref().map_or(0, |c| c.text().chars().count() as u64)).sum();
    TokenCount { tokens: chars.div_ceil(4) + framing, estimated: true }
}

/// A cheap guess at the prompt tokens, for display only (the `input_tokens` an Anthropic-shaped
/// stream announces before the provider has counted); reservations use [`PromptCount`].
pub fn quick_prompt_estimate(request: &ChatRequest) -> u64 {
    (request.prompt_chars() as u64).div_ceil(4)
}

/// The prompt's o200k tokens, counted (on a blocking thread when large): what routing rules and
/// context-window checks compare against, the same for every target.
pub async fn o200k_prompt_tokens(request: &ChatRequest) -> u64 {
    count_prompt_tokens_off_thread(ProviderKind::Openai, "gpt-4o", request).await.tokens
}

/// [`count_prompt_tokens`] on a blocking thread when the prompt is large.
pub async fn count_prompt_tokens_off_thread(kind: ProviderKind, model: &str, request: &ChatRequest) -> TokenCount {
    if request.prompt_chars() <= COUNT_IN_PLACE_BYTES && tokenizers_ready(is_cl100k_model(model)) {
        return count_prompt_tokens(kind, model, request);
    }
    // If the count's thread panicked (a bug), the answer is a rough estimate, flagged as one.
    let fallback = TokenCount { tokens: (request.prompt_chars() as u64).div_ceil(4), estimated: true };
    let (model, request) = (model.to_string(), request.clone());
    tokio::task::spawn_blocking(move || count_prompt_tokens(kind, &model, &request)).await.unwrap_or(fallback)
}

/// What a request's prompt holds, counted once before the call. [`PromptCount::bound`] turns it
/// into the tokens a target may bill for it at most, which key tpm windows and caller budgets
/// reserve (the real usage replaces the reservation afterwards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptCount {
    /// o200k tokens of everything the provider reads as text (roles, contents, names, tool
    /// calls and results, tool schemas and response formats); its bytes when `by_bytes`.
    o200k: u64,
    /// The same with cl100k, for OpenAI's older models; counted only when a target needs it.
    cl100k: Option<u64>,
    messages: u64,
    tools: u64,
    images: u64,
    /// Counted in bytes (no tokenizer at hand): every token is at least one byte, so the count
    /// is a bound for every tokenizer as it is, without a margin.
    by_bytes: bool,
    /// Tokens the caller sent as ids (an embeddings input): exact for every tokenizer.
    given: u64,
    /// No chat framing (an embeddings input is read as it is, without roles or a reply to prime).
    unframed: bool,
}

impl PromptCount {
    /// Counts `request` (on a blocking thread when it is large). `with_cl100k`: a target is one
    /// of OpenAI's cl100k models.
    pub async fn of(request: &ChatRequest, with_cl100k: bool) -> Self {
        if request.prompt_chars() <= BYTES_ARE_CLOSE_ENOUGH {
            // One token per byte is a bound too: for a short prompt it over-reserves a few dozen
            // tokens (next to `max_tokens`, nothing) and costs no tokenizer on the hot path.
            return Self::count_with(request, with_cl100k, false);
        }
        if request.prompt_chars() <= COUNT_IN_PLACE_BYTES && tokenizers_ready(with_cl100k) {
            return Self::count(request, with_cl100k);
        }
        // Large, or the tokenizers are not built yet (they are built on first need, on the
        // blocking thread, never on an async worker).
        // If the count's thread panicked (a bug), one token per byte is still a bound.
        let bytes = request.prompt_chars() as u64;
        let request = request.clone();
        tokio::task::spawn_blocking(move || Self::count(&request, with_cl100k)).await.unwrap_or_else(|_| {
            tracing::error!("token count failed; reserving one token per byte");
            Self { o200k: bytes, ..Self::default() }
        })
    }

    fn count(request: &ChatRequest, with_cl100k: bool) -> Self {
        Self::count_with(request, with_cl100k, true)
    }

    fn count_with(request: &ChatRequest, with_cl100k: bool, tokenize: bool) -> Self {
        let text = prompt_text(request);
        let images = request
            .messages
            .iter()
            .map(|m| match &m.content {
                Some(MessageContent::Parts(parts)) => parts.iter().filter(|p| is_image(p)).count() as u64,
                _ => 0,
            })
            .sum();
        let tools = request.extra.get("tools").and_then(Value::as_array).map_or(0, |t| t.len() as u64);
        let tokens = |bpe: Option<&CoreBPE>| bpe.map(|b| b.encode_ordinary(&text).len() as u64);
        let (o200k, cl100k): (Option<u64>, Option<u64>) = match tokenize {
            true => (tokens(o200k()), if with_cl100k { tokens(cl100k()) } else { None }),
            false => (None, None),
        };
        Self {
            // Without a tokenizer (not built yet, or failed), one token per byte is still a bound.
            o200k: o200k.unwrap_or(text.len() as u64),
            cl100k: cl100k.or((o200k.is_none() && with_cl100k).then_some(text.len() as u64)),
            messages: request.messages.len() as u64,
            tools,
            images,
            by_bytes: o200k.is_none(),
            given: 0,
            unframed: false,
        }
    }

    /// Counts an embeddings input (on a blocking thread when it is large): its texts as a chat
    /// prompt's text is counted, without framing, plus the token ids it gives, which are exact.
    /// `exact`: tokenize even a short input (a route's rules compare the o200k count).
    pub async fn of_embeddings(input: &EmbeddingInput, with_cl100k: bool, exact: bool) -> Self {
        let bytes = input.text_bytes();
        if bytes <= BYTES_ARE_CLOSE_ENOUGH && !exact {
            return Self::count_embeddings(input, with_cl100k, false);
        }
        if bytes <= COUNT_IN_PLACE_BYTES && tokenizers_ready(with_cl100k) {
            return Self::count_embeddings(input, with_cl100k, true);
        }
        let (given, owned) = (input.given_tokens(), input.clone());
        tokio::task::spawn_blocking(move || Self::count_embeddings(&owned, with_cl100k, true)).await.unwrap_or_else(
            |_| {
                tracing::error!("token count failed; reserving one token per byte");
                Self { o200k: bytes as u64, by_bytes: true, given, unframed: true, ..Self::default() }
            },
        )
    }

    fn count_embeddings(input: &EmbeddingInput, with_cl100k: bool, tokenize: bool) -> Self {
        let sum = |bpe: Option<&CoreBPE>| {
            bpe.map(|b| input.texts().map(|text| b.encode_ordinary(text).len() as u64).sum::<u64>())
        };
        let (o200k, cl100k): (Option<u64>, Option<u64>) = match tokenize {
            true => (sum(o200k()), if with_cl100k { sum(cl100k()) } else { None }),
            false => (None, None),
        };
        let bytes = input.text_bytes() as u64;
        Self {
            o200k: o200k.unwrap_or(bytes),
            cl100k: cl100k.or((o200k.is_none() && with_cl100k).then_some(bytes)),
            by_bytes: o200k.is_none(),
            given: input.given_tokens(),
            unframed: true,
            ..Self::default()
        }
    }

    /// The most prompt tokens `kind`'s `model` may bill for the request: exact text for OpenAI's
    /// models, the o200k count with a 50 % margin for other tokenizers (Claude's counts about
    /// 1.2× o200k for English text, more for Chinese), plus framing, tool definitions and
    /// [`IMAGE_TOKENS_BOUND`] per image.
    pub fn bound(&self, kind: ProviderKind, model: &str) -> u64 {
        let text = match kind {
            _ if self.by_bytes => self.o200k,
            ProviderKind::Openai if is_cl100k_model(model) => self.cl100k.unwrap_or_else(|| with_margin(self.o200k)),
            ProviderKind::Openai => self.o200k,
            _ => with_margin(self.o200k),
        };
        self.framing()
            .saturating_add(text)
            .saturating_add(self.images.saturating_mul(IMAGE_TOKENS_BOUND))
            .saturating_add(self.given)
    }

    /// The prompt tokens to record for a call cut short before the provider reported usage: the
    /// count itself (exact for OpenAI's models), without the reservation's margin.
    pub fn recorded(&self, kind: ProviderKind, model: &str) -> u64 {
        let text = match kind {
            ProviderKind::Openai if is_cl100k_model(model) => self.cl100k.unwrap_or(self.o200k),
            _ => self.o200k,
        };
        self.framing()
            .saturating_add(text)
            .saturating_add(self.images.saturating_mul(IMAGE_TOKENS_BOUND / 2))
            .saturating_add(self.given)
    }

    /// At least the prompt's o200k tokens (exact when counted, one per byte for a short prompt):
    /// when even this fits a context window, the prompt does.
    pub fn o200k_bound(&self) -> u64 {
        self.framing()
            .saturating_add(self.o200k)
            .saturating_add(self.images.saturating_mul(IMAGE_TOKENS_BOUND))
            .saturating_add(self.given)
    }

    fn framing(&self) -> u64 {
        if self.unframed {
            return 0;
        }
        TOKENS_PER_MESSAGE
            .saturating_mul(self.messages)
            .saturating_add(TOKENS_PRIMING_REPLY)
            .saturating_add(TOKENS_PER_TOOL.saturating_mul(self.tools))
    }
}

/// The most output tokens a call may bill: `n` choices of up to `max_output` tokens each.
pub fn output_bound(request: &ChatRequest, max_output: u64) -> u64 {
    let choices = request.extra.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
    choices.saturating_mul(max_output)
}

fn with_margin(tokens: u64) -> u64 {
    tokens.saturating_add(tokens.div_ceil(2))
}

fn is_image(part: &Value) -> bool {
    matches!(part.get("type").and_then(Value::as_str), Some("image_url" | "image" | "input_image"))
}

/// Every text of the request a provider reads as prompt tokens, image data left out (images are
/// bounded per image, not per byte of their base64).
fn prompt_text(request: &ChatRequest) -> String {
    let mut text = String::with_capacity(request.prompt_chars());
    for m in &request.messages {
        text.push_str(&m.role);
        text.push('\n');
        match &m.content {
            Some(MessageContent::Text(t)) => text.push_str(t),
            Some(MessageContent::Parts(parts)) => {
                for part in parts.iter().filter(|p| !is_image(p)) {
                    match part.get("text").and_then(Value::as_str) {
                        Some(t) => text.push_str(t),
                        None => text.push_str(&part.to_string()),
                    }
                    text.push('\n');
                }
            }
            None => {}
        }
        if let Some(name) = &m.name {
            text.push_str(name);
        }
        if !m.extra.is_empty() {
            // tool_calls, tool_call_id, function_call: the provider reads them as text.
            text.push_str(&Value::Object(m.extra.clone()).to_string());
        }
        text.push('\n');
    }
    for (field, value) in &request.extra {
        if matches!(field.as_str(), "tools" | "functions" | "tool_choice" | "response_format") {
            text.push_str(&value.to_string());
        }
    }
    text
}

/// Whether a target needs the cl100k count: one of OpenAI's older models.
pub fn needs_cl100k(kind: ProviderKind, model: &str) -> bool {
    kind == ProviderKind::Openai && is_cl100k_model(model)
}

fn is_cl100k_model(model: &str) -> bool {
    // OpenAI's embedding models (text-embedding-3-small, -large, ada-002) use cl100k too.
    model.starts_with("text-embedding-")
        || model.starts_with("gpt-3.5")
        || (model.starts_with("gpt-4") && !model.starts_with("gpt-4o") && !model.starts_with("gpt-4.1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_embeddings_input_is_bounded_without_framing_and_token_ids_count_exactly() {
        let short = EmbeddingInput::Texts(vec!["hello".into(), "world".into()]);
        let count = PromptCount::of_embeddings(&short, true, false).await;
        // Short: one token per byte, no framing.
        assert_eq!(count.bound(ProviderKind::Openai, "text-embedding-3-small"), 10);
        assert_eq!(count.bound(ProviderKind::OpenaiCompatible, "e5"), 10);
        let ids = EmbeddingInput::TokenArrays(vec![vec![1, 2, 3], vec![4]]);
        let count = PromptCount::of_embeddings(&ids, false, false).await;
        assert_eq!(
            (count.bound(ProviderKind::Qwen, "text-embedding-v4"), count.recorded(ProviderKind::Openai, "x")),
            (4, 4)
        );
        // Long: tokenized (cl100k for OpenAI's embedding models), far below one per byte.
        let long = EmbeddingInput::Text("hello world ".repeat(400));
        let count = PromptCount::of_embeddings(&long, true, false).await;
        let exact = cl100k().map(|b| b.encode_ordinary(&"hello world ".repeat(400)).len() as u64);
        assert_eq!(Some(count.bound(ProviderKind::Openai, "text-embedding-3-large")), exact);
        assert!(count.bound(ProviderKind::Gemini, "gemini-embedding-001") < 4800);
    }

    #[test]
    fn openai_count_matches_the_official_example() {
        // OpenAI's cookbook: this 2-message conversation is 19 prompt tokens on gpt-4o-class models
        // (and the recorded chat_completion.json fixture reports prompt_tokens 19 for the same).
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"}
            ]
        }))
        .expect("request");
        let count = count_prompt_tokens(ProviderKind::Openai, "gpt-4o", &req);
        assert!(!count.estimated);
        assert_eq!(count.tokens, 19);
        let est = count_prompt_tokens(ProviderKind::Anthropic, "claude-sonnet-4-5", &req);
        assert!(est.estimated);
        assert!(est.tokens > 0);
    }

    #[test]
    fn openai_counts_with_tools_or_images_are_estimates_that_include_them() {
        let plain = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]});
        let base = count_prompt_tokens(ProviderKind::Openai, "gpt-4o", &request(plain.clone()));
        assert!(!base.estimated);

        let mut with_tools = plain.clone();
        with_tools["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let tools = count_prompt_tokens(ProviderKind::Openai, "gpt-4o", &request(with_tools));
        assert!(tools.estimated && tools.tokens > base.tokens + 10, "{tools:?} vs {base:?}");

        let image = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Hello!"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]});
        let images = count_prompt_tokens(ProviderKind::Openai, "gpt-4o", &request(image));
        assert!(images.estimated);
        assert_eq!(images.tokens, base.tokens + IMAGE_TOKENS_BOUND / 2);
    }

    fn request(v: serde_json::Value) -> ChatRequest {
        serde_json::from_value(v).expect("request")
    }

    #[test]
    fn the_bound_covers_framing_tools_images_and_n() {
        let plain = request(json!({"model": "gpt-4o", "messages": [
            {"role": "developer", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"}]}));
        let count = PromptCount::count(&plain, false);
        // At least OpenAI's own count of the same conversation (19, see above).
        assert!(count.bound(ProviderKind::Openai, "gpt-4o") >= 19);
        assert!(count.bound(ProviderKind::Anthropic, "claude") > count.bound(ProviderKind::Openai, "gpt-4o"));

        let with_image = request(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", "A".repeat(100_000))}}]}]}));
        let count = PromptCount::count(&with_image, false);
        let bound = count.bound(ProviderKind::Openai, "gpt-4o");
        assert!(bound >= IMAGE_TOKENS_BOUND, "an image counts as a whole image: {bound}");
        assert!(bound < IMAGE_TOKENS_BOUND + 100, "its base64 does not count per byte: {bound}");

        let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let with_tools =
            request(json!({"model": "m", "messages": [{"role": "user", "content": "Hello!"}], "tools": tools}));
        let without = request(json!({"model": "m", "messages": [{"role": "user", "content": "Hello!"}]}));
        let (a, b) = (PromptCount::count(&with_tools, false), PromptCount::count(&without, false));
        assert!(a.bound(ProviderKind::Openai, "gpt-4o") >= b.bound(ProviderKind::Openai, "gpt-4o") + 20);

        let n3 = request(json!({"model": "m", "n": 3, "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(output_bound(&n3, 100), 300);
        assert_eq!(output_bound(&n3, u64::MAX - 3), u64::MAX, "saturates, never wraps");
    }

    #[tokio::test]
    async fn a_large_prompt_is_counted_off_the_async_threads_with_the_same_result() {
        let big =
            request(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "lyrics ".repeat(10_000)}]}));
        let here = PromptCount::count(&big, true);
        let there = PromptCount::of(&big, true).await;
        assert_eq!(here, there);
        assert!(here.bound(ProviderKind::Openai, "gpt-4") >= 10_000);
    }
}
