//! The gateway's chat SSE body (`data: {chunk}` … `data: [DONE]`) as the Responses event
//! stream, each event with an `event:` line naming its `type` and a `sequence_number` counting
//! from 0, as OpenAI sends them:
//!
//! ```text
//! response.created, response.in_progress          the response, in_progress, no output yet
//! response.output_item.added                      per item: a message, a reasoning item or a function_call
//!   message:   response.content_part.added, response.output_text.delta…, response.output_text.done, response.content_part.done
//!   reasoning: response.content_part.added, response.reasoning_text.delta…, response.reasoning_text.done, response.content_part.done
//!   call:      response.function_call_arguments.delta…, response.function_call_arguments.done
//! response.output_item.done                       the finished item
//! response.completed (response.incomplete)        the whole response with usage
//! ```
//!
//! One item is open at a time, in the order the provider streams them (a change of kind closes
//! the item before). A refusal streamed by the provider arrives as output text. A failure the
//! gateway reports in-band after the first byte (`data: {"error":…}`), or a body that ends
//! before `[DONE]`, becomes an `error` event followed by `response.failed`. The adapter reads
//! the inner body to its end before ending its own, so the gateway records the call before the
//! caller's stream closes, and a caller who hangs up drops the inner body with it (the gateway
//! records that too).

use axum::body::Body;
use bytes::Bytes;
use serde_json::{Value, json};

use super::response::{function_call_item, message_item, output_text, reasoning_item};
use super::{ChatUsage, Echo, State, ending, item_id, now_secs, response_object};
use crate::providers::sse::SseEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reasoning,
    Message,
    Call,
}

/// One output item as it is streamed.
#[derive(Debug)]
struct Item {
    kind: Kind,
    id: String,
    /// The message's or reasoning's text, or the call's arguments.
    text: String,
    /// A call's `call_id` and `name`, and the chat tool-call index it comes from.
    call_id: String,
    name: String,
    tool_index: u64,
    /// Final status once closed (`completed` / `incomplete`); `None` while open.
    closed: Option<&'static str>,
}

impl Item {
    fn json(&self, status: &str) -> Value {
        match self.kind {
            Kind::Reasoning => reasoning_item(&self.id, &self.text, status),
            Kind::Message => message_item(&self.id, vec![output_text(&self.text)], status),
            Kind::Call => function_call_item(&self.id, &self.call_id, &self.name, &self.text, status),
        }
    }
}

/// The state of one translated stream.
pub struct EventTranslator {
    response_id: String,
    echo: Echo,
    fallback_model: String,
    model: Option<String>,
    input_estimate: u64,
    created_at: u64,
    sequence: u64,
    started: bool,
    finished: bool,
    /// The output items so far; only the last reasoning or message item can be open, calls stay
    /// open until another kind starts.
    items: Vec<Item>,
    finish_reason: Option<String>,
    usage: Option<ChatUsage>,
    chars: u64,
}

/// One SSE event.
fn frame(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl EventTranslator {
    /// `response_id` names the response (see [`super::response_id`]); `fallback_model` names the
    /// model until a chunk does; `input_estimate` is the input usage when the provider reports
    /// none.
    pub fn new(response_id: &str, echo: Echo, fallback_model: &str, input_estimate: u64) -> Self {
        Self {
            response_id: response_id.to_string(),
            echo,
            fallback_model: fallback_model.to_string(),
            model: None,
            input_estimate,
            created_at: now_secs(),
            sequence: 0,
            started: false,
            finished: false,
            items: Vec::new(),
            finish_reason: None,
            usage: None,
            chars: 0,
        }
    }

    /// Whether the final event (`response.completed`, `response.incomplete` or
    /// `response.failed`) has been sent.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The Responses events for one event of the chat stream.
    pub fn on_event(&mut self, sse: &SseEvent) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        let data = sse.data.trim();
        if data.is_empty() {
            return out;
        }
        if data == "[DONE]" {
            self.finish(&mut out);
            return out;
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(error = %e, "a chunk of the gateway's stream is not JSON");
                self.fail("upstream_malformed_response", "The provider's stream could not be translated.", &mut out);
                return out;
            }
        };
        if let Some(error) = chunk.get("error").filter(|e| e.is_object()) {
            let code = error.get("code").and_then(Value::as_str).unwrap_or("upstream_error");
            let message = error.get("message").and_then(Value::as_str).unwrap_or("The provider's stream failed.");
            self.fail(code, message, &mut out);
            return out;
        }
        self.on_chunk(&chunk, &mut out);
        out
    }

    /// The events to send when the gateway's body ended: nothing after a finished stream, a
    /// failure for one that stopped short.
    pub fn on_end(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if !self.finished {
            self.fail("stream_incomplete", "The stream ended before it was complete.", &mut out);
        }
        out
    }

    fn emit(&mut self, mut data: Value, out: &mut Vec<Bytes>) {
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let name = data.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        out.push(frame(&name, &data));
    }

    fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.fallback_model)
    }

    /// The response object as it stands.
    fn response(&self, status: &str, incomplete_details: Value, error: Value, usage: Value) -> Value {
        let output = self.items.iter().map(|item| item.json(item.closed.unwrap_or("incomplete"))).collect();
        let state = State {
            id: &self.response_id,
            created_at: self.created_at,
            model: self.model(),
            status,
            incomplete_details,
            error,
            output,
            usage,
        };
        response_object(state, &self.echo)
    }

    fn start(&mut self, chunk: Option<&Value>, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(model) = chunk.and_then(|c| c.get("model")).and_then(Value::as_str).filter(|m| !m.is_empty()) {
            self.model = Some(model.to_string());
        }
        let response = self.response("in_progress", Value::Null, Value::Null, Value::Null);
        self.emit(json!({"type": "response.created", "response": response}), out);
        let response = self.response("in_progress", Value::Null, Value::Null, Value::Null);
        self.emit(json!({"type": "response.in_progress", "response": response}), out);
    }

    fn on_chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.start(Some(chunk), out);
        if let Some(usage) = ChatUsage::of(chunk.get("usage")) {
            self.usage = Some(usage);
        }
        // Maestro asks for one choice.
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else { return };
        if let Some(delta) = choice.get("delta") {
            let text = |name: &str| delta.get(name).and_then(Value::as_str).filter(|t| !t.is_empty());
            if let Some(thinking) = text("reasoning_content").or_else(|| text("reasoning")) {
                self.text_delta(Kind::Reasoning, thinking, out);
            }
            for piece in [text("content"), text("refusal")].into_iter().flatten() {
                self.text_delta(Kind::Message, piece, out);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    self.on_tool_call(call, position as u64, out);
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    /// Index of the open item of `kind`, if the last item is one.
    fn open_of(&self, kind: Kind) -> Option<usize> {
        let last = self.items.len().checked_sub(1)?;
        (self.items[last].kind == kind && self.items[last].closed.is_none()).then_some(last)
    }

    fn text_delta(&mut self, kind: Kind, piece: &str, out: &mut Vec<Bytes>) {
        self.chars += piece.chars().count() as u64;
        let index = match self.open_of(kind) {
            Some(index) => index,
            None => self.open(kind, String::new(), String::new(), 0, out),
        };
        self.items[index].text.push_str(piece);
        let item_id = self.items[index].id.clone();
        let kind = match kind {
            Kind::Reasoning => "response.reasoning_text.delta",
            _ => "response.output_text.delta",
        };
        let mut delta =
            json!({"type": kind, "item_id": item_id, "output_index": index, "content_index": 0, "delta": piece});
        if kind == "response.output_text.delta" {
            delta["logprobs"] = json!([]);
        }
        self.emit(delta, out);
    }

    /// A tool-call delta: the first for a chat index adds a `function_call` item, its argument
    /// pieces are `response.function_call_arguments.delta`s.
    fn on_tool_call(&mut self, call: &Value, position: u64, out: &mut Vec<Bytes>) {
        let tool_index = call.get("index").and_then(Value::as_u64).unwrap_or(position);
        let field = |path: &[&str]| path.iter().try_fold(call, |v, k| v.get(*k)).and_then(Value::as_str);
        let known = self.items.iter().position(|i| i.kind == Kind::Call && i.tool_index == tool_index);
        let index = match known {
            Some(index) => index,
            None => {
                let call_id = field(&["id"])
                    .filter(|id| !id.is_empty())
                    .map_or_else(|| format!("call_maestro_{tool_index}"), str::to_string);
                let name = field(&["function", "name"]).unwrap_or("").to_string();
                self.open(Kind::Call, call_id, name, tool_index, out)
            }
        };
        let Some(arguments) = field(&["function", "arguments"]).filter(|a| !a.is_empty()) else { return };
        self.chars += arguments.chars().count() as u64;
        self.items[index].text.push_str(arguments);
        if self.items[index].closed.is_some() {
            // Arguments for a call already closed by text after it: kept in the final
            // response; an event after its `output_item.done` would break the stream's order.
            tracing::warn!("tool-call arguments arrived after their item was closed");
            return;
        }
        let item_id = self.items[index].id.clone();
        self.emit(
            json!({"type": "response.function_call_arguments.delta", "item_id": item_id, "output_index": index, "delta": arguments}),
            out,
        );
    }

    /// Adds an item (closing what is open unless both are calls) and returns its index.
    fn open(&mut self, kind: Kind, call_id: String, name: String, tool_index: u64, out: &mut Vec<Bytes>) -> usize {
        self.close_open(kind == Kind::Call, "completed", out);
        let index = self.items.len();
        let prefix = match kind {
            Kind::Reasoning => "rs",
            Kind::Message => "msg",
            Kind::Call => "fc",
        };
        let item = Item {
            kind,
            id: item_id(prefix, &self.response_id, index),
            text: String::new(),
            call_id,
            name,
            tool_index,
            closed: None,
        };
        let added = match kind {
            Kind::Reasoning => {
                json!({"type": "reasoning", "id": item.id, "summary": [], "content": [], "status": "in_progress"})
            }
            Kind::Message => message_item(&item.id, Vec::new(), "in_progress"),
            Kind::Call => item.json("in_progress"),
        };
        let item_id = item.id.clone();
        self.items.push(item);
        self.emit(json!({"type": "response.output_item.added", "output_index": index, "item": added}), out);
        let part = match kind {
            Kind::Reasoning => Some(json!({"type": "reasoning_text", "text": ""})),
            Kind::Message => Some(output_text("")),
            Kind::Call => None,
        };
        if let Some(part) = part {
            self.emit(
                json!({"type": "response.content_part.added", "item_id": item_id, "output_index": index, "content_index": 0, "part": part}),
                out,
            );
        }
        index
    }

    /// Closes every open item, or only the open text and reasoning when `keep_calls`.
    fn close_open(&mut self, keep_calls: bool, status: &'static str, out: &mut Vec<Bytes>) {
        for index in 0..self.items.len() {
            let item = &self.items[index];
            if item.closed.is_some() || (keep_calls && item.kind == Kind::Call) {
                continue;
            }
            let (kind, id, text, name) = (item.kind, item.id.clone(), item.text.clone(), item.name.clone());
            match kind {
                Kind::Message => {
                    self.emit(
                        json!({"type": "response.output_text.done", "item_id": id, "output_index": index,
                        "content_index": 0, "text": text, "logprobs": []}),
                        out,
                    );
                    self.emit(
                        json!({"type": "response.content_part.done", "item_id": id, "output_index": index,
                        "content_index": 0, "part": output_text(&text)}),
                        out,
                    );
                }
                Kind::Reasoning => {
                    self.emit(
                        json!({"type": "response.reasoning_text.done", "item_id": id, "output_index": index,
                        "content_index": 0, "text": text}),
                        out,
                    );
                    self.emit(
                        json!({"type": "response.content_part.done", "item_id": id, "output_index": index,
                        "content_index": 0, "part": {"type": "reasoning_text", "text": text}}),
                        out,
                    );
                }
                Kind::Call => {
                    self.emit(
                        json!({"type": "response.function_call_arguments.done", "item_id": id,
                        "output_index": index, "name": name, "arguments": text}),
                        out,
                    );
                }
            }
            // A call is complete once its arguments are; text cut short is not.
            let status = if kind == Kind::Call { "completed" } else { status };
            self.items[index].closed = Some(status);
            let item = self.items[index].json(status);
            self.emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}), out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.start(None, out);
        let (status, incomplete_details) = ending(self.finish_reason.as_deref());
        let item_status = if status == "completed" { "completed" } else { "incomplete" };
        self.close_open(false, item_status, out);
        // A provider that reported no usage: the gateway's own estimate rule, ⌈chars / 4⌉.
        let usage = self.usage.unwrap_or_else(|| ChatUsage::estimated(self.input_estimate, self.chars.div_ceil(4)));
        let response = self.response(status, incomplete_details, Value::Null, usage.responses());
        let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.emit(json!({"type": kind, "response": response}), out);
        self.finished = true;
    }

    /// An `error` event with Maestro's code, then `response.failed` with the output so far.
    fn fail(&mut self, code: &str, message: &str, out: &mut Vec<Bytes>) {
        self.start(None, out);
        self.emit(json!({"type": "error", "code": code, "message": message, "param": null}), out);
        // The response object's error codes are OpenAI's own list.
        let failed_code = if code == "upstream_rate_limited" { "rate_limit_exceeded" } else { "server_error" };
        let usage = self.usage.map_or(Value::Null, |u| u.responses());
        let response = self.response("failed", Value::Null, json!({"code": failed_code, "message": message}), usage);
        self.emit(json!({"type": "response.failed", "response": response}), out);
        self.finished = true;
    }
}

/// Wraps the gateway's chat SSE body as a Responses event-stream body.
pub fn responses_events(inner: Body, translator: EventTranslator) -> Body {
    crate::reframe::reframed(inner, translator)
}

impl crate::reframe::Reframer for EventTranslator {
    fn on_event(&mut self, sse: &SseEvent) -> Vec<Bytes> {
        EventTranslator::on_event(self, sse)
    }

    fn on_end(&mut self) -> Vec<Bytes> {
        EventTranslator::on_end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::sse::SseDecoder;
    use std::convert::Infallible;

    fn translator() -> EventTranslator {
        EventTranslator::new("resp_abc", Echo::default(), "asked", 7)
    }

    /// Runs a chat SSE text through the translator; returns the events' data.
    fn translate(sse: &str) -> Vec<Value> {
        let mut decoder = SseDecoder::default();
        decoder.push(sse.as_bytes());
        let mut t = translator();
        let mut frames = Vec::new();
        while let Some(event) = decoder.next_event() {
            frames.extend(t.on_event(&event));
        }
        frames.extend(t.on_end());
        parse(&frames.concat())
    }

    /// The events of a Responses stream: every `event:` line names its data's type, and the
    /// sequence numbers count from 0.
    fn parse(bytes: &[u8]) -> Vec<Value> {
        let mut decoder = SseDecoder::default();
        decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(e) = decoder.next_event() {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(data["type"], e.event.unwrap().as_str(), "the event line names the data's type");
            assert_eq!(data["sequence_number"], out.len());
            out.push(data);
        }
        out
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    fn chunk(delta: Value, finish: Value) -> String {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "model": "m-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    }

    #[test]
    fn the_recorded_openai_stream_becomes_the_responses_events() {
        let events = translate(include_str!("../../tests/fixtures/openai/chat_stream.sse"));
        assert_eq!(
            types(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let created = &events[0]["response"];
        assert_eq!((created["id"].as_str(), created["status"].as_str()), (Some("resp_abc"), Some("in_progress")));
        assert_eq!(created["model"], "gpt-5.1-2025-11-13");
        assert_eq!(created["output"], json!([]));
        assert_eq!(
            events[2]["item"],
            json!({"type": "message", "id": "msg_abc_0", "status": "in_progress", "role": "assistant", "content": []})
        );
        assert_eq!(events[3]["part"], json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []}));
        assert_eq!(
            events[4],
            json!({"type": "response.output_text.delta", "item_id": "msg_abc_0", "output_index": 0, "content_index": 0,
                "delta": "six", "logprobs": [], "sequence_number": 4})
        );
        assert_eq!(events[5]["text"], "six");
        assert_eq!(events[7]["item"]["status"], "completed");
        assert_eq!(events[7]["item"]["content"][0]["text"], "six");
        let done = &events[8]["response"];
        assert_eq!((done["id"].as_str(), done["status"].as_str()), (Some("resp_abc"), Some("completed")));
        assert_eq!(done["output"], json!([events[7]["item"]]));
        assert_eq!(
            done["usage"],
            json!({"input_tokens": 33, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 10,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 43})
        );
    }

    #[test]
    fn the_recorded_tool_call_stream_becomes_argument_deltas() {
        let events = translate(include_str!("../../tests/fixtures/openai/chat_stream_tool_call.sse"));
        let added = events.iter().find(|e| e["type"] == "response.output_item.added").unwrap();
        assert_eq!(
            added["item"],
            json!({"type": "function_call", "id": "fc_abc_0", "call_id": "call_ZR5UUuTt3pf61kjwAJIYdVMj",
                "name": "get_capital", "arguments": "", "status": "in_progress"})
        );
        let arguments: String = events
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .inspect(|e| assert_eq!((e["item_id"].as_str(), e["output_index"].as_u64()), (Some("fc_abc_0"), Some(0))))
            .map(|e| e["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"country": "UK"}));
        let done = events.iter().find(|e| e["type"] == "response.function_call_arguments.done").unwrap();
        assert_eq!(
            (done["arguments"].as_str(), done["name"].as_str()),
            (Some(arguments.as_str()), Some("get_capital"))
        );
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.completed");
        assert_eq!(last["response"]["output"][0]["arguments"], arguments);
        assert_eq!(last["response"]["output"][0]["status"], "completed");
        assert_eq!(last["response"]["usage"]["output_tokens"], 15);
        assert_eq!(last["response"]["usage"]["total_tokens"], 68);
        assert!(!types(&events).contains(&"response.content_part.added"));
    }

    #[test]
    fn deepseek_reasoning_then_text_are_two_items() {
        let events = translate(include_str!("../../tests/fixtures/deepseek/stream.sse"));
        let added: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.output_item.added").collect();
        assert_eq!(added.len(), 2);
        assert_eq!(
            (added[0]["item"]["type"].as_str(), added[0]["output_index"].as_u64()),
            (Some("reasoning"), Some(0))
        );
        assert_eq!((added[1]["item"]["type"].as_str(), added[1]["output_index"].as_u64()), (Some("message"), Some(1)));
        assert!(types(&events).contains(&"response.reasoning_text.delta"));
        assert!(types(&events).contains(&"response.reasoning_text.done"));
        let output = &events.last().unwrap()["response"]["output"];
        assert_eq!((output[0]["type"].as_str(), output[1]["type"].as_str()), (Some("reasoning"), Some("message")));
        assert!(!output[0]["content"][0]["text"].as_str().unwrap().is_empty());
    }

    #[test]
    fn text_then_parallel_calls_then_a_cut_is_incomplete_with_estimated_usage() {
        let sse = [
            chunk(json!({"role": "assistant", "content": "Two calls."}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}), Value::Null),
            chunk(json!({}), json!("length")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let events = translate(&sse);
        let done: Vec<(u64, &str)> = events
            .iter()
            .filter(|e| e["type"] == "response.output_item.done")
            .map(|e| (e["output_index"].as_u64().unwrap(), e["item"]["type"].as_str().unwrap()))
            .collect();
        assert_eq!(done, [(0, "message"), (1, "function_call"), (2, "function_call")]);
        let deltas: Vec<(u64, &str)> = events
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .map(|e| (e["output_index"].as_u64().unwrap(), e["delta"].as_str().unwrap()))
            .collect();
        assert_eq!(deltas, [(1, "{\"x\":1}"), (2, "{}")]);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(last["response"]["model"], "m-1");
        assert_eq!(last["response"]["usage"]["input_tokens"], 7);
        assert_eq!(last["response"]["usage"]["output_tokens"], 5, "⌈(10 + 7 + 2) / 4⌉ without reported usage");
    }

    #[test]
    fn an_in_band_error_or_a_cut_body_fails_the_response() {
        let sse = [
            chunk(json!({"content": "Hi"}), Value::Null),
            "data: {\"error\":{\"message\":\"The provider's stream failed: upstream_overloaded\",\"type\":\"upstream_error\",\"code\":\"upstream_overloaded\",\"param\":null}}\n\n".to_string(),
        ]
        .concat();
        let events = translate(&sse);
        assert_eq!(
            types(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "error",
                "response.failed"
            ]
        );
        assert_eq!(events[5]["code"], "upstream_overloaded");
        let failed = &events[6]["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"]["code"], "server_error");
        assert_eq!(failed["output"][0]["status"], "incomplete");
        assert_eq!(failed["output"][0]["content"][0]["text"], "Hi");
        let cut = translate(&chunk(json!({"content": "Hi"}), Value::Null));
        assert_eq!(cut.last().unwrap()["type"], "response.failed");
        assert_eq!(cut[cut.len() - 2]["code"], "stream_incomplete");
    }

    #[tokio::test]
    async fn the_body_adapter_translates_chunks_split_anywhere() {
        let recorded = include_str!("../../tests/fixtures/openai/chat_stream.sse");
        let pieces: Vec<Result<Bytes, Infallible>> =
            recorded.as_bytes().chunks(37).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let inner = Body::from_stream(futures_util::stream::iter(pieces));
        let body = responses_events(inner, translator());
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let events = parse(&bytes);
        assert_eq!(types(&events).first(), Some(&"response.created"));
        assert_eq!(types(&events).last(), Some(&"response.completed"));
        let text: String = events.iter().filter_map(|e| e["delta"].as_str()).collect();
        assert_eq!(text, "six");
    }
}
