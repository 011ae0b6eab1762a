//! `POST /api/ai/chat/batch`: up to [`MAX_BATCH_ITEMS`] chat requests in one call, in the line
//! shape of OpenAI's batch files, answered together in their order. Each item is one ordinary
//! call of the gateway (keys, limits, retries, fallback, routes, budgets, log and cost), so an
//! item costs and counts exactly what it would alone; at most [`BATCH_CONCURRENCY`] run at once,
//! so one batch cannot take every key's whole minute from the other callers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Caller, Gateway};
use crate::domain::ChatRequest;
use crate::error::ApiError;

/// Items in one batch, at most (OpenAI's batch files take many more, but they answer in a day;
/// this answers in one HTTP call).
pub const MAX_BATCH_ITEMS: usize = 100;
/// Items of one batch running at once.
pub const BATCH_CONCURRENCY: usize = 8;
/// A `custom_id` is the caller's own reference: bounded so it cannot bloat the answer.
const MAX_CUSTOM_ID_CHARS: usize = 512;
/// The only endpoint an item may name (`url`), in either of its spellings.
const ITEM_URLS: [&str; 2] = ["/v1/chat/completions", "/api/ai/chat/completions"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub requests: Vec<BatchItem>,
}

/// One line of an OpenAI batch file: `method` and `url` may be left out; when present they must
/// be a chat completion's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub custom_id: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    pub body: Value,
}

/// One item's answer: `body` (the chat completion, as a single call returns it) when `status`
/// is 200, else `error` (OpenAI's error object). `request_id` finds the call in the log.
#[derive(Debug, Serialize)]
pub struct BatchResult {
    pub custom_id: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
}

impl BatchRequest {
    /// The batch's own shape: 1–100 items with distinct, non-empty `custom_id`s, each a POST to
    /// chat completions. An item whose `body` is not a chat request is that item's 400, not the
    /// batch's.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.requests.is_empty() || self.requests.len() > MAX_BATCH_ITEMS {
            return Err(ApiError::invalid_param(
                "requests",
                format!("`requests` must hold 1–{MAX_BATCH_ITEMS} items; it has {}.", self.requests.len()),
            ));
        }
        let mut seen = HashSet::with_capacity(self.requests.len());
        for (i, item) in self.requests.iter().enumerate() {
            let id = item.custom_id.trim();
            if id.is_empty() || item.custom_id.chars().count() > MAX_CUSTOM_ID_CHARS {
                let param = format!("requests[{i}].custom_id");
                return Err(ApiError::invalid_param(
                    &param,
                    format!("`{param}` must be 1–{MAX_CUSTOM_ID_CHARS} characters."),
                ));
            }
            if !seen.insert(item.custom_id.as_str()) {
                let param = format!("requests[{i}].custom_id");
                return Err(ApiError::invalid_param(
                    &param,
                    format!("`{param}`: `{}` is used by an earlier item; custom ids must be distinct.", item.custom_id),
                ));
            }
            if item.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("POST")) {
                let param = format!("requests[{i}].method");
                return Err(ApiError::invalid_param(&param, format!("`{param}` must be `POST`.")));
            }
            if item.url.as_deref().is_some_and(|u| !ITEM_URLS.contains(&u)) {
                let param = format!("requests[{i}].url");
                return Err(ApiError::invalid_param(
                    &param,
                    format!("`{param}` must be `/v1/chat/completions`: a batch runs chat completions only."),
                ));
            }
            if !item.body.is_object() {
                let param = format!("requests[{i}].body");
                return Err(ApiError::invalid_param(&param, format!("`{param}` must be a chat request (an object).")));
            }
        }
        Ok(())
    }
}

impl Gateway {
    /// Runs every item of a checked batch as its own call, [`BATCH_CONCURRENCY`] at a time, and
    /// answers in the items' order. The batch as a whole ends by `deadline` (the caller's) or
    /// `retry.deadline_ms` from now, whichever comes first: items still waiting then are 504s,
    /// recorded like any call that ran out of time. A caller who hangs up stops the items not yet
    /// started; those already running finish and are recorded, as single calls are.
    pub async fn chat_batch(
        self: &Arc<Self>,
        caller: &Caller,
        batch: BatchRequest,
        deadline: Option<Instant>,
    ) -> BatchAnswer {
        let own = Instant::now() + self.options.policy.deadline();
        let deadline = Some(deadline.map_or(own, |d| d.min(own)));
        let results = futures_util::stream::iter(batch.requests)
            .map(|item| self.batch_item(caller, item, deadline))
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
        BatchAnswer { results }
    }

    async fn batch_item(self: &Arc<Self>, caller: &Caller, item: BatchItem, deadline: Option<Instant>) -> BatchResult {
        let BatchItem { custom_id, body, .. } = item;
        let request = serde_json::from_value::<ChatRequest>(body)
            .map_err(|e| ApiError::invalid_param("body", format!("`body` is not a chat request: {e}.")))
            .and_then(|r| match r.is_stream() {
                true => Err(ApiError::invalid_param(
                    "body.stream",
                    "A batch answers in one JSON document: leave out `stream` or set it to false.",
                )),
                false => Ok(r),
            });
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                let request_id = self.record_rejection(caller, false, &e).await;
                return BatchResult::failed(custom_id, &e, Some(request_id));
            }
        };
        let outcome = self.chat_until(caller, request, deadline).await;
        let request_id = Some(outcome.facts.request_id);
        match outcome.result {
            Ok(bytes) => match String::from_utf8(bytes.to_vec()).ok().and_then(|s| RawValue::from_string(s).ok()) {
                Some(raw) => BatchResult { custom_id, status: 200, body: Some(raw), error: None, request_id },
                // The gateway only answers JSON it built; were it ever not, the item says so.
                None => {
                    tracing::error!(request_id = ?request_id, "a batch item's answer is not JSON");
                    BatchResult::failed(custom_id, &ApiError::internal(), request_id)
                }
            },
            Err(e) => BatchResult::failed(custom_id, &e, request_id),
        }
    }
}

impl BatchResult {
    fn failed(custom_id: String, e: &ApiError, request_id: Option<String>) -> Self {
        let error = e.body().get("error").cloned();
        Self { custom_id, status: e.status(), body: None, error, request_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batch(value: Value) -> Result<(), ApiError> {
        serde_json::from_value::<BatchRequest>(value).map_err(|e| ApiError::invalid_request(e.to_string()))?.check()
    }

    fn item(id: &str) -> Value {
        json!({"custom_id": id, "body": {"model": "m", "messages": []}})
    }

    #[test]
    fn the_batch_shape_is_checked_and_names_the_field() {
        assert!(batch(json!({"requests": [item("a"), item("b")]})).is_ok());
        let line = json!({"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {}});
        assert!(batch(json!({"requests": [line]})).is_ok(), "an OpenAI batch-file line as it is");
        let param = |v: Value| batch(v).err().and_then(|e| e.param().map(str::to_string));
        assert_eq!(param(json!({"requests": []})).as_deref(), Some("requests"));
        let many: Vec<Value> = (0..=MAX_BATCH_ITEMS).map(|i| item(&i.to_string())).collect();
        assert_eq!(param(json!({"requests": many})).as_deref(), Some("requests"));
        assert_eq!(param(json!({"requests": [item("a"), item("a")]})).as_deref(), Some("requests[1].custom_id"));
        assert_eq!(param(json!({"requests": [item(" ")]})).as_deref(), Some("requests[0].custom_id"));
        let get = json!({"custom_id": "g", "method": "GET", "body": {}});
        assert_eq!(param(json!({"requests": [get]})).as_deref(), Some("requests[0].method"));
        let embeddings = json!({"custom_id": "e", "url": "/v1/embeddings", "body": {}});
        assert_eq!(param(json!({"requests": [embeddings]})).as_deref(), Some("requests[0].url"));
        let text = json!({"custom_id": "t", "body": "hello"});
        assert_eq!(param(json!({"requests": [text]})).as_deref(), Some("requests[0].body"));
        assert!(batch(json!({"requests": [item("a")], "extra": 1})).is_err(), "unknown fields are refused");
    }
}
