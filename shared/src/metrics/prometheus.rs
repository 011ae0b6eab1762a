//! The Prometheus text exposition format (version 0.0.4), written by hand: a few families of
//! counters, gauges and histograms need no crate, and a crate's registry would build a label set
//! (owned strings) for every call it counts.

use std::fmt::Write;

use super::{DURATION_BUCKETS_MS, Histogram, ModelSeries, REQUEST_TYPES, STATUSES, Snapshot, TOKEN_KINDS};
use crate::domain::{Catalog, KeyStatus};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every key status, as `maestro_key_state`'s `state` label.
const KEY_STATES: [KeyStatus; 4] = [KeyStatus::Normal, KeyStatus::RateLimited, KeyStatus::Invalid, KeyStatus::Error];

/// Reads one counter of a model's series.
type Read = fn(&ModelSeries) -> u64;

/// A label value escaped for the text format: backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds as seconds, exactly (`1500` → `1.5`, `5` → `0.005`).
pub fn seconds(ms: u64) -> String {
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `{a="x",b="y"}` for these pairs (values escaped), or nothing for none.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs.iter().map(|(name, value)| format!("{name}=\"{}\"", escape_label(value))).collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, pairs: &[(&str, &str)], value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{} {value}", labels(pairs));
}

/// A histogram's `_bucket` lines (cumulative, `+Inf` last), `_sum` (seconds) and `_count`.
fn histogram(out: &mut String, name: &str, pairs: &[(&str, &str)], h: &Histogram) {
    let mut cumulative = 0;
    for (i, count) in h.counts.iter().enumerate() {
        cumulative += count;
        let le = DURATION_BUCKETS_MS.get(i).map_or_else(|| "+Inf".to_string(), |ms| seconds(*ms));
        let mut with_le = pairs.to_vec();
        with_le.push(("le", &le));
        sample(out, &format!("{name}_bucket"), &with_le, cumulative);
    }
    sample(out, &format!("{name}_sum"), pairs, seconds(h.sum_ms));
    sample(out, &format!("{name}_count"), pairs, cumulative);
}

/// Whether a model or route of the catalog caches answers.
fn cache_configured(catalog: &Catalog) -> bool {
    catalog.providers.iter().flat_map(|p| &p.models).any(|m| m.cache.ttl_secs.is_some())
        || catalog.routes.iter().any(|r| r.cache_ttl_secs.is_some())
}

/// The whole scrape: the call metrics of `snapshot`, the key states of `catalog` (when it could
/// be read) at `now_ms`, and the process's version and uptime. The cache's families appear once
/// a model or route caches answers or a call used the cache.
pub fn render(snapshot: &Snapshot, catalog: Option<&Catalog>, now_ms: i64) -> String {
    let mut out = String::with_capacity(4096 + snapshot.models.len() * 4096);
    let models = &snapshot.models;

    family(&mut out, "maestro_calls_total", "counter", "Calls ended, by provider, model, API and outcome.");
    for s in models {
        for (request_type, by_status) in REQUEST_TYPES.iter().zip(&s.calls) {
            for (status, n) in STATUSES.iter().zip(by_status).filter(|(_, n)| **n > 0) {
                let pairs = [
                    ("provider", &*s.provider),
                    ("model", &*s.model),
                    ("request_type", request_type),
                    ("status", status),
                ];
                sample(&mut out, "maestro_calls_total", &pairs, n);
            }
        }
    }

    family(
        &mut out,
        "maestro_call_errors_total",
        "counter",
        "Failed calls, by provider, error code and the HTTP status they were answered with.",
    );
    for e in &snapshot.errors {
        for (status, n) in &e.by_status {
            let status = status.to_string();
            let pairs = [("provider", &*e.provider), ("error_code", &*e.code), ("http_status", &*status)];
            sample(&mut out, "maestro_call_errors_total", &pairs, n);
        }
    }

    family(
        &mut out,
        "maestro_call_duration_seconds",
        "histogram",
        "Call durations from request to the last byte, failures included.",
    );
    for s in models {
        histogram(
            &mut out,
            "maestro_call_duration_seconds",
            &[("provider", &s.provider), ("model", &s.model)],
            &s.duration,
        );
    }

    family(&mut out, "maestro_time_to_first_byte_seconds", "histogram", "Time to the first byte of streamed calls.");
    for s in models.iter().filter(|s| s.ttfb.count() > 0) {
        let pairs = [("provider", &*s.provider), ("model", &*s.model)];
        histogram(&mut out, "maestro_time_to_first_byte_seconds", &pairs, &s.ttfb);
    }

    family(
        &mut out,
        "maestro_tokens_total",
        "counter",
        "Tokens billed: prompt, completion, cached (prompt-cache reads, part of prompt) and cache_write.",
    );
    for s in models {
        for (kind, n) in TOKEN_KINDS.iter().zip(&s.tokens) {
            sample(
                &mut out,
                "maestro_tokens_total",
                &[("provider", &s.provider), ("model", &s.model), ("kind", kind)],
                n,
            );
        }
    }

    family(&mut out, "maestro_cost_micro_usd_total", "counter", "What the calls cost, in micro-USD.");
    for s in models {
        let pairs = [("provider", &*s.provider), ("model", &*s.model)];
        sample(&mut out, "maestro_cost_micro_usd_total", &pairs, s.cost_micros);
    }

    if snapshot.cache_used || catalog.is_some_and(cache_configured) {
        let cached: Vec<_> = models.iter().filter(|s| s.cache_hits + s.cache_misses > 0).collect();
        let families: [(&str, &str, Read); 3] = [
            ("maestro_cache_hits_total", "Calls answered from the response cache.", |s| s.cache_hits),
            ("maestro_cache_misses_total", "Cacheable calls a provider answered.", |s| s.cache_misses),
            (
                "maestro_cache_saved_micro_usd_total",
                "What cache hits saved: the cost of the calls whose answers they reused, in micro-USD.",
                |s| s.saved_micros,
            ),
        ];
        for (name, help, value) in families {
            family(&mut out, name, "counter", help);
            for s in &cached {
                sample(&mut out, name, &[("provider", &s.provider), ("model", &s.model)], value(s));
            }
        }
    }

    if let Some(catalog) = catalog {
        let mut keys: Vec<_> = catalog.providers.iter().flat_map(|p| &p.keys).collect();
        keys.sort_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
        family(
            &mut out,
            "maestro_key_state",
            "gauge",
            "Each provider key's status in the catalog: 1 for its current state, 0 for the others.",
        );
        for key in &keys {
            for state in KEY_STATES {
                let pairs = [("provider", &*key.provider), ("key_id", &*key.id), ("state", state.as_str())];
                sample(&mut out, "maestro_key_state", &pairs, u8::from(key.status == state));
            }
        }
        family(
            &mut out,
            "maestro_key_usable",
            "gauge",
            "Whether calls may use the key now: active, not invalid, not cooling down.",
        );
        for key in &keys {
            let pairs = [("provider", &*key.provider), ("key_id", &*key.id)];
            sample(&mut out, "maestro_key_usable", &pairs, u8::from(key.is_usable(now_ms)));
        }
    }

    family(&mut out, "maestro_build_info", "gauge", "The running Maestro's version (always 1).");
    sample(&mut out, "maestro_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    family(&mut out, "maestro_uptime_seconds", "gauge", "Seconds since the process started counting.");
    sample(&mut out, "maestro_uptime_seconds", &[], seconds(snapshot.uptime_ms));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{CallStatus, LogEvent};
    use crate::metrics::{CallMetrics, CallObserver};

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("line\nnext"), "line\\nnext");
        assert_eq!(escape_label("plain/model-1.5 ü"), "plain/model-1.5 ü");
        assert_eq!(labels(&[("model", "say \"hi\"\\\n")]), r#"{model="say \"hi\"\\\n"}"#);
    }

    #[test]
    fn milliseconds_print_as_exact_seconds() {
        let cases =
            [(0, "0"), (5, "0.005"), (10, "0.01"), (250, "0.25"), (1_000, "1"), (1_500, "1.5"), (61_234, "61.234")];
        for (ms, text) in cases {
            assert_eq!(seconds(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn a_scrape_renders_every_family_with_escaped_labels_and_cumulative_buckets() {
        let metrics = CallMetrics::new();
        let odd = "we\"ird\\model\n";
        metrics.observe(&LogEvent { model: odd.to_string(), latency_ms: 7, ..LogEvent::sample("r-1", 0) });
        metrics.observe(&LogEvent {
            model: odd.to_string(),
            latency_ms: 1_500,
            status: CallStatus::Error,
            http_status: 502,
            error_code: Some("upstream_error".into()),
            stream: true,
            ttfb_ms: Some(900),
            ..LogEvent::sample("r-2", 0)
        });
        let snapshot = crate::metrics::Snapshot { uptime_ms: 2_500, ..metrics.snapshot() };
        let text = render(&snapshot, None, 0);
        let m = r#"provider="openai",model="we\"ird\\model\n""#;
        for line in [
            "# HELP maestro_calls_total Calls ended, by provider, model, API and outcome.".to_string(),
            "# TYPE maestro_calls_total counter".to_string(),
            format!("maestro_calls_total{{{m},request_type=\"chat\",status=\"success\"}} 1"),
            format!("maestro_calls_total{{{m},request_type=\"chat\",status=\"error\"}} 1"),
            "# TYPE maestro_call_errors_total counter".to_string(),
            r#"maestro_call_errors_total{provider="openai",error_code="upstream_error",http_status="502"} 1"#
                .to_string(),
            "# TYPE maestro_call_duration_seconds histogram".to_string(),
            format!("maestro_call_duration_seconds_bucket{{{m},le=\"0.005\"}} 0"),
            format!("maestro_call_duration_seconds_bucket{{{m},le=\"0.01\"}} 1"),
            format!("maestro_call_duration_seconds_bucket{{{m},le=\"1\"}} 1"),
            format!("maestro_call_duration_seconds_bucket{{{m},le=\"2\"}} 2"),
            format!("maestro_call_duration_seconds_bucket{{{m},le=\"300\"}} 2"),
            format!("maestro_call_duration_seconds_bucket{{{m},le=\"+Inf\"}} 2"),
            format!("maestro_call_duration_seconds_sum{{{m}}} 1.507"),
            format!("maestro_call_duration_seconds_count{{{m}}} 2"),
            format!("maestro_time_to_first_byte_seconds_bucket{{{m},le=\"0.5\"}} 0"),
            format!("maestro_time_to_first_byte_seconds_bucket{{{m},le=\"1\"}} 1"),
            format!("maestro_time_to_first_byte_seconds_count{{{m}}} 1"),
            format!("maestro_tokens_total{{{m},kind=\"prompt\"}} 240"),
            format!("maestro_tokens_total{{{m},kind=\"completion\"}} 60"),
            format!("maestro_tokens_total{{{m},kind=\"cached\"}} 40"),
            format!("maestro_tokens_total{{{m},kind=\"cache_write\"}} 0"),
            format!("maestro_cost_micro_usd_total{{{m}}} 9000"),
            format!("maestro_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
            "maestro_uptime_seconds 2.5".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        let buckets = text.lines().filter(|l| l.starts_with("maestro_call_duration_seconds_bucket")).count();
        assert_eq!(buckets, DURATION_BUCKETS_MS.len() + 1);
        assert!(!text.contains("maestro_cache_"), "no cache in use or configured");
        assert!(!text.contains("maestro_key_state"), "no catalog, no key states");
        // Every line is a comment or `name{labels} value`, and the file ends with a line feed.
        assert!(text.ends_with('\n'));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn key_states_come_from_the_catalog_and_the_cache_families_from_its_settings() {
        use crate::domain::{ApiKey, KeyLimits, Model, Prices, Provider, ProviderEntry, ProviderKind};
        let key = |id: &str, status: KeyStatus, cooldown_until: Option<i64>| ApiKey {
            id: id.into(),
            provider: "p".into(),
            name: id.into(),
            secret_ref: "ref".into(),
            masked: "sk-…".into(),
            priority: 0,
            is_active: true,
            status,
            cooldown_until,
            limits: KeyLimits::default(),
        };
        let model = Model {
            provider: "p".into(),
            model: "m".into(),
            model_type: "chat".into(),
            context_window: None,
            max_output_tokens: None,
            supports_streaming: true,
            supports_tools: false,
            supports_vision: false,
            prices: Prices::default(),
            is_active: true,
            is_default: true,
            drop_params: false,
            created: 0,
            cache: crate::cache::CachePolicy { ttl_secs: Some(60), ..Default::default() },
        };
        let catalog = Catalog {
            providers: vec![ProviderEntry {
                provider: Provider {
                    code: "p".into(),
                    kind: ProviderKind::Openai,
                    name: "P".into(),
                    base_url: "http://x".into(),
                    headers: Default::default(),
                    is_active: true,
                    sort_order: 0,
                },
                models: vec![model],
                keys: vec![key("p-b", KeyStatus::Invalid, None), key("p-a", KeyStatus::RateLimited, Some(2_000))],
            }],
            routes: Vec::new(),
        };
        let text = render(&crate::metrics::Snapshot::default(), Some(&catalog), 1_000);
        let states: Vec<&str> = text.lines().filter(|l| l.starts_with("maestro_key_")).collect();
        assert_eq!(
            states,
            [
                r#"maestro_key_state{provider="p",key_id="p-a",state="normal"} 0"#,
                r#"maestro_key_state{provider="p",key_id="p-a",state="rate_limited"} 1"#,
                r#"maestro_key_state{provider="p",key_id="p-a",state="invalid"} 0"#,
                r#"maestro_key_state{provider="p",key_id="p-a",state="error"} 0"#,
                r#"maestro_key_state{provider="p",key_id="p-b",state="normal"} 0"#,
                r#"maestro_key_state{provider="p",key_id="p-b",state="rate_limited"} 0"#,
                r#"maestro_key_state{provider="p",key_id="p-b",state="invalid"} 1"#,
                r#"maestro_key_state{provider="p",key_id="p-b",state="error"} 0"#,
                r#"maestro_key_usable{provider="p",key_id="p-a"} 0"#,
                r#"maestro_key_usable{provider="p",key_id="p-b"} 0"#,
            ]
        );
        // Cooled down by 3 s: usable again, though still `rate_limited` until the roll-up.
        let later = render(&crate::metrics::Snapshot::default(), Some(&catalog), 3_000);
        assert!(later.contains("maestro_key_usable{provider=\"p\",key_id=\"p-a\"} 1\n"), "{later}");
        // A model caches answers: the cache's families are there, with no series yet.
        assert!(text.contains("# TYPE maestro_cache_hits_total counter\n"), "{text}");
        assert!(text.contains("# TYPE maestro_cache_saved_micro_usd_total counter\n"));
        assert!(!text.lines().any(|l| l.starts_with("maestro_cache_hits_total")));
    }

    #[test]
    fn cache_series_appear_for_the_models_that_used_the_cache() {
        let snapshot = crate::metrics::Snapshot {
            models: vec![
                ModelSeries {
                    provider: "p".into(),
                    model: "cached".into(),
                    cache_hits: 2,
                    cache_misses: 1,
                    saved_micros: 78,
                    ..Default::default()
                },
                ModelSeries { provider: "p".into(), model: "plain".into(), ..Default::default() },
            ],
            errors: Vec::new(),
            cache_used: true,
            uptime_ms: 0,
        };
        let text = render(&snapshot, None, 0);
        let cache: Vec<&str> = text.lines().filter(|l| l.starts_with("maestro_cache_")).collect();
        assert_eq!(
            cache,
            [
                r#"maestro_cache_hits_total{provider="p",model="cached"} 2"#,
                r#"maestro_cache_misses_total{provider="p",model="cached"} 1"#,
                r#"maestro_cache_saved_micro_usd_total{provider="p",model="cached"} 78"#,
            ]
        );
    }
}
