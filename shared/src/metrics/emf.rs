//! CloudWatch Embedded Metric Format: one JSON line per call on the chat Lambda's stdout, from
//! which CloudWatch Logs extracts the metrics itself (no `PutMetricData` call, no extra
//! permission, nothing on the call's path but a line of output).
//!
//! The line is written whole with one `write_all` on its own, not through the tracing formatter
//! (which would nest it in a field of its own JSON object, where CloudWatch does not look).
//! Lambda passes a line that is already JSON through its JSON log format untouched.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::{CallObserver, switch};
use crate::config::{ConfigError, Env};
use crate::logs::{CallStatus, LogEvent, UNKNOWN_MODEL};

/// The CloudWatch namespace of Maestro's metrics.
pub const NAMESPACE: &str = "Maestro";

/// The dimension sets every metric is published under: all calls, per provider, per provider
/// and model. Each set makes its own CloudWatch metrics, so they are kept few.
pub const DIMENSIONS: [&[&str]; 3] = [&[], &["provider"], &["provider", "model"]];

#[derive(Serialize)]
struct Definition {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Unit")]
    unit: &'static str,
}

const fn metric(name: &'static str, unit: &'static str) -> Definition {
    Definition { name, unit }
}

/// The metrics of every call; a streamed call adds [`TTFB`].
const METRICS: [Definition; 8] = [
    metric("Calls", "Count"),
    metric("Errors", "Count"),
    metric("ServerErrors", "Count"),
    metric("Latency", "Milliseconds"),
    metric("PromptTokens", "Count"),
    metric("CompletionTokens", "Count"),
    metric("CostMicroUSD", "None"),
    metric("CacheHits", "Count"),
];
const TTFB: Definition = metric("TTFB", "Milliseconds");

#[derive(Serialize)]
struct Directive {
    #[serde(rename = "Namespace")]
    namespace: &'static str,
    #[serde(rename = "Dimensions")]
    dimensions: [&'static [&'static str]; 3],
    #[serde(rename = "Metrics")]
    metrics: Vec<&'static Definition>,
}

#[derive(Serialize)]
struct Metadata {
    /// When the call ended, unix ms.
    #[serde(rename = "Timestamp")]
    timestamp: i64,
    #[serde(rename = "CloudWatchMetrics")]
    cloudwatch_metrics: [Directive; 1],
}

/// One call's document: the metadata, the dimension and metric members it names, and a few
/// plain members that make the line findable in CloudWatch Logs Insights (never a secret, a
/// prompt, a user id or an error message).
#[derive(Serialize)]
struct Document<'e> {
    #[serde(rename = "_aws")]
    aws: Metadata,
    provider: &'e str,
    model: &'e str,
    #[serde(rename = "Calls")]
    calls: u8,
    #[serde(rename = "Errors")]
    errors: u8,
    #[serde(rename = "ServerErrors")]
    server_errors: u8,
    #[serde(rename = "Latency")]
    latency: u64,
    #[serde(rename = "TTFB", skip_serializing_if = "Option::is_none")]
    ttfb: Option<u64>,
    #[serde(rename = "PromptTokens")]
    prompt_tokens: u64,
    #[serde(rename = "CompletionTokens")]
    completion_tokens: u64,
    #[serde(rename = "CostMicroUSD")]
    cost_micro_usd: u64,
    #[serde(rename = "CacheHits")]
    cache_hits: u8,
    request_id: &'e str,
    request_type: &'e str,
    http_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'e str>,
}

/// A dimension's value: never empty.
fn dimension(value: &str) -> &str {
    if value.is_empty() { UNKNOWN_MODEL } else { value }
}

/// The EMF document of one call, as one line of JSON (no line feed).
pub fn document(e: &LogEvent) -> String {
    let ttfb = e.ttfb_ms.filter(|_| e.stream);
    let mut metrics: Vec<&'static Definition> = METRICS.iter().collect();
    if ttfb.is_some() {
        metrics.push(&TTFB);
    }
    let error = e.status == CallStatus::Error;
    let document = Document {
        aws: Metadata {
            timestamp: e.ts_ms.saturating_add(i64::try_from(e.latency_ms).unwrap_or(i64::MAX)),
            cloudwatch_metrics: [Directive { namespace: NAMESPACE, dimensions: DIMENSIONS, metrics }],
        },
        provider: dimension(&e.provider),
        model: dimension(&e.model),
        calls: 1,
        errors: u8::from(error),
        server_errors: u8::from(error && e.http_status >= 500),
        latency: e.latency_ms,
        ttfb,
        prompt_tokens: e.prompt_tokens,
        completion_tokens: e.completion_tokens,
        cost_micro_usd: e.cost_micros,
        cache_hits: u8::from(e.cache.as_deref() == Some(crate::cache::HIT)),
        request_id: &e.request_id,
        request_type: &e.request_type,
        http_status: e.http_status,
        error_code: e.error_code.as_deref(),
    };
    // Plain structs of strings and integers: serializing cannot fail.
    serde_json::to_string(&document).unwrap_or_default()
}

/// Whether this process prints EMF lines: `MAESTRO_EMF` (`1`/`0`) when set, else on Lambda
/// (`AWS_LAMBDA_FUNCTION_NAME` is set).
pub fn enabled(env: &Env) -> Result<bool, ConfigError> {
    Ok(switch(env, "MAESTRO_EMF")?.unwrap_or_else(|| env.get("AWS_LAMBDA_FUNCTION_NAME").is_some()))
}

/// Writes each call's [`document`] as a line.
pub struct EmfWriter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl EmfWriter {
    /// To the process's stdout (Lambda sends it to the function's log group).
    pub fn stdout() -> Self {
        Self::to(std::io::stdout())
    }

    /// To any writer (tests capture the lines).
    pub fn to(out: impl Write + Send + 'static) -> Self {
        Self { out: Mutex::new(Box::new(out)) }
    }
}

impl CallObserver for EmfWriter {
    fn observe(&self, event: &LogEvent) {
        let mut line = document(event);
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // One write of the whole line: lines of concurrent calls never interleave.
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(request_id = %event.request_id, error = %e, "could not write the call's metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;

    /// A writer tests read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default()
        }
    }

    fn directive(metrics: &[(&str, &str)]) -> Value {
        let metrics: Vec<Value> = metrics.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit})).collect();
        json!([{"Namespace": "Maestro", "Dimensions": [[], ["provider"], ["provider", "model"]], "Metrics": metrics}])
    }

    const EVERY_CALL: [(&str, &str); 8] = [
        ("Calls", "Count"),
        ("Errors", "Count"),
        ("ServerErrors", "Count"),
        ("Latency", "Milliseconds"),
        ("PromptTokens", "Count"),
        ("CompletionTokens", "Count"),
        ("CostMicroUSD", "None"),
        ("CacheHits", "Count"),
    ];

    #[test]
    fn a_call_is_one_line_of_the_embedded_metric_format() {
        let captured = Captured::default();
        let writer = EmfWriter::to(captured.clone());
        writer.observe(&LogEvent::sample("req_1", 1_700_000_000_000));
        let text = captured.text();
        let expected = concat!(
            r#"{"_aws":{"Timestamp":1700000000420,"CloudWatchMetrics":[{"Namespace":"Maestro","#,
            r#""Dimensions":[[],["provider"],["provider","model"]],"Metrics":["#,
            r#"{"Name":"Calls","Unit":"Count"},{"Name":"Errors","Unit":"Count"},"#,
            r#"{"Name":"ServerErrors","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"},"#,
            r#"{"Name":"PromptTokens","Unit":"Count"},{"Name":"CompletionTokens","Unit":"Count"},"#,
            r#"{"Name":"CostMicroUSD","Unit":"None"},{"Name":"CacheHits","Unit":"Count"}]}]},"#,
            r#""provider":"openai","model":"gpt-4o-mini","Calls":1,"Errors":0,"ServerErrors":0,"#,
            r#""Latency":420,"PromptTokens":120,"CompletionTokens":30,"CostMicroUSD":4500,"CacheHits":0,"#,
            r#""request_id":"req_1","request_type":"chat","http_status":200}"#,
            "\n"
        );
        assert_eq!(text, expected);
        // The same document, read as JSON: the metadata the specification asks for.
        let line: Value = serde_json::from_str(text.trim_end()).unwrap_or_default();
        assert_eq!(line["_aws"]["CloudWatchMetrics"], directive(&EVERY_CALL));
    }

    #[test]
    fn a_failed_stream_adds_its_first_byte_and_counts_as_a_server_error() {
        let event = LogEvent {
            stream: true,
            ttfb_ms: Some(180),
            status: CallStatus::Error,
            http_status: 502,
            error_code: Some("upstream_error".into()),
            error_message: Some("the provider said no".into()),
            user_id: Some("someone".into()),
            ..LogEvent::sample("req_2", 1_000)
        };
        let line: Value = serde_json::from_str(&document(&event)).unwrap_or_default();
        let mut metrics = EVERY_CALL.to_vec();
        metrics.push(("TTFB", "Milliseconds"));
        assert_eq!(line["_aws"]["CloudWatchMetrics"], directive(&metrics));
        assert_eq!((line["Errors"].as_u64(), line["ServerErrors"].as_u64()), (Some(1), Some(1)));
        assert_eq!((line["TTFB"].as_u64(), line["error_code"].as_str()), (Some(180), Some("upstream_error")));
        // Neither the user nor the provider's message leaves the log event.
        let text = document(&event);
        assert!(!text.contains("someone") && !text.contains("said no"), "{text}");
        // A caller's own mistake is an error, not a server error.
        let client = LogEvent { http_status: 400, ..event };
        let line: Value = serde_json::from_str(&document(&client)).unwrap_or_default();
        assert_eq!((line["Errors"].as_u64(), line["ServerErrors"].as_u64()), (Some(1), Some(0)));
    }

    #[test]
    fn a_cache_hit_counts_and_every_dimension_has_a_value() {
        let event = LogEvent { cache: Some("hit".into()), model: String::new(), ..LogEvent::sample("r", 0) };
        let line: Value = serde_json::from_str(&document(&event)).unwrap_or_default();
        assert_eq!((line["CacheHits"].as_u64(), line["model"].as_str()), (Some(1), Some("unknown")));
    }

    #[test]
    fn lines_are_printed_on_lambda_or_when_asked() {
        let on = |pairs: &[(&str, &str)]| enabled(&Env::from_pairs(pairs)).ok();
        assert_eq!(on(&[]), Some(false));
        assert_eq!(on(&[("AWS_LAMBDA_FUNCTION_NAME", "maestro-chat")]), Some(true));
        assert_eq!(on(&[("AWS_LAMBDA_FUNCTION_NAME", "maestro-chat"), ("MAESTRO_EMF", "0")]), Some(false));
        assert_eq!(on(&[("MAESTRO_EMF", "1")]), Some(true));
        assert_eq!(on(&[("MAESTRO_EMF", "maybe")]), None);
    }
}
