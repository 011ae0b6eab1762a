//! Call logs as CSV, for the export of the stats API: one header line, then one line per log,
//! newest first, as RFC 4180 writes them (CRLF line ends, a field with a comma, quote or line
//! break in double quotes, quotes doubled).
//!
//! A spreadsheet runs a cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return
//! before one) as a formula, and user ids, model names, routes and error messages come from
//! callers and providers: such a text field is written with a `'` in front, so it opens as text.
//! Numbers are Maestro's own and written as they are. A log holds no secret and no prompt or
//! answer text, so neither can the export.

use crate::logs::{CallStatus, LogEvent};

/// Most calls one export may hold.
pub const MAX_EXPORT_ROWS: usize = 100_000;

/// The columns, in order.
pub const COLUMNS: [&str; 26] = [
    "request_id",
    "time_utc",
    "ts_ms",
    "user_id",
    "provider",
    "model",
    "key_id",
    "route",
    "route_rule",
    "request_type",
    "stream",
    "status",
    "http_status",
    "error_code",
    "error_message",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "cost_micros",
    "cost_usd",
    "latency_ms",
    "ttfb_ms",
    "attempts",
    "cache",
    "saved_micros",
];

/// The header line.
pub fn header() -> String {
    let mut line = COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

/// A text field: guarded against formulas, then quoted when it must be.
pub fn text_cell(value: &str) -> String {
    let guarded =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    if guarded.contains([',', '"', '\n', '\r']) { format!("\"{}\"", guarded.replace('"', "\"\"")) } else { guarded }
}

fn opt_text(value: Option<&str>) -> String {
    value.map(text_cell).unwrap_or_default()
}

/// Micro-USD as exact dollars with 6 decimals (`1281` → `0.001281`).
fn dollars(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// One log as a CSV line (ending in CRLF).
pub fn row(e: &LogEvent) -> String {
    let time = chrono::DateTime::from_timestamp_millis(e.ts_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let status = match e.status {
        CallStatus::Success => "success",
        CallStatus::Error => "error",
    };
    let cells = [
        text_cell(&e.request_id),
        time,
        e.ts_ms.to_string(),
        opt_text(e.user_id.as_deref()),
        text_cell(&e.provider),
        text_cell(&e.model),
        opt_text(e.key_id.as_deref()),
        opt_text(e.route.as_deref()),
        opt_text(e.route_rule.as_deref()),
        text_cell(&e.request_type),
        e.stream.to_string(),
        status.to_string(),
        e.http_status.to_string(),
        opt_text(e.error_code.as_deref()),
        opt_text(e.error_message.as_deref()),
        e.prompt_tokens.to_string(),
        e.cached_tokens.to_string(),
        e.cache_write_tokens.to_string(),
        e.completion_tokens.to_string(),
        e.cost_micros.to_string(),
        dollars(e.cost_micros),
        e.latency_ms.to_string(),
        e.ttfb_ms.map(|t| t.to_string()).unwrap_or_default(),
        e.attempts.to_string(),
        opt_text(e.cache.as_deref()),
        e.saved_micros.to_string(),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cells_are_quoted_when_they_must_be_and_never_start_a_formula() {
        assert_eq!(text_cell("demo/echo"), "demo/echo");
        assert_eq!(text_cell("a,b"), "\"a,b\"");
        assert_eq!(text_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text_cell("+1"), "'+1");
        assert_eq!(text_cell("-2"), "'-2");
        assert_eq!(text_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_cell("\tx"), "'\tx");
        assert_eq!(text_cell("a=b"), "a=b");
        assert_eq!(text_cell(""), "");
    }

    #[test]
    fn a_row_has_every_column_in_order() {
        let e = LogEvent {
            v: 1,
            request_id: "req_1".into(),
            ts_ms: 1_764_158_707_123,
            user_id: Some("=cmd".into()),
            caller_key_id: None,
            provider: "demo".into(),
            model: "echo".into(),
            key_id: None,
            route: Some("smart".into()),
            route_rule: Some("default".into()),
            request_type: "chat".into(),
            stream: false,
            status: CallStatus::Error,
            http_status: 400,
            error_code: Some("bad".into()),
            error_message: Some("no, \"never\"".into()),
            prompt_tokens: 6,
            completion_tokens: 11,
            cached_tokens: 2,
            cost_micros: 1_281,
            latency_ms: 12,
            ttfb_ms: None,
            attempts: 1,
            cache_write_tokens: 0,
            key_attempts: Vec::new(),
            cache: None,
            saved_micros: 0,
            attempt_log: Vec::new(),
        };
        assert_eq!(
            row(&e),
            "req_1,2025-11-26T12:05:07.123Z,1764158707123,'=cmd,demo,echo,,smart,default,chat,false,error,400,bad,\
             \"no, \"\"never\"\"\",6,2,0,11,1281,0.001281,12,,1,,0\r\n"
        );
        assert_eq!(
            header().trim_end().split(',').count(),
            row(&e).trim_end().split(',').count() - 1,
            "one comma inside quotes"
        );
        assert!(header().starts_with("request_id,time_utc,"));
    }
}
