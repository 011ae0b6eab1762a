//! The cache key: a SHA-256 of the request in a canonical form, and of the user unless the
//! entry is global.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::CacheScope;
use crate::domain::ChatRequest;

/// Fields that change how an answer is delivered, not what it says: a streamed and a plain call
/// share an entry.
const DELIVERY_FIELDS: [&str; 2] = ["stream", "stream_options"];

/// The key of `request` for `user_id` under `scope`: hex SHA-256 over a version tag, the scope's
/// user, and the request (model as named, messages, tools, every sampling parameter) with object
/// keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one entry. `None` (do not cache)
/// if the request cannot be written out.
pub fn key(request: &ChatRequest, scope: CacheScope, user_id: &str) -> Option<String> {
    let mut body = serde_json::to_value(request).ok()?;
    if let Some(object) = body.as_object_mut() {
        for field in DELIVERY_FIELDS {
            object.remove(field);
        }
    }
    let mut canonical = String::with_capacity(1024);
    write_canonical(&body, &mut canonical);
    let mut hash = Sha256::new();
    hash.update(b"maestro-cache-v1\n");
    match scope {
        // The length first, so no user id and request can run into another's.
        CacheScope::User => hash.update(format!("user:{}:{user_id}\n", user_id.len())),
        CacheScope::Global => hash.update(b"global\n"),
    }
    hash.update(canonical.as_bytes());
    Some(hex::encode(hash.finalize()))
}

/// JSON with object keys sorted at every level, whatever order the map kept.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> ChatRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_key_ignores_order_and_delivery_and_splits_users_models_and_parameters() {
        let base = json!({"model": "compose", "messages": [{"role": "user", "content": "歌词"}],
            "temperature": 0, "response_format": {"type": "json_object", "schema": {"a": 1, "b": 2}}});
        let reordered = json!({"response_format": {"schema": {"b": 2, "a": 1}, "type": "json_object"},
            "temperature": 0, "messages": [{"content": "歌词", "role": "user"}], "model": "compose",
            "stream": true, "stream_options": {"include_usage": true}});
        let k = |v: &Value, scope, user| key(&request(v.clone()), scope, user).unwrap();
        let first = k(&base, CacheScope::User, "u1");
        assert_eq!(first.len(), 64);
        assert_eq!(first, k(&reordered, CacheScope::User, "u1"), "order and stream do not matter");
        assert_ne!(first, k(&base, CacheScope::User, "u2"), "another user");
        assert_eq!(k(&base, CacheScope::Global, "u1"), k(&base, CacheScope::Global, "u2"), "global is shared");
        assert_ne!(first, k(&base, CacheScope::Global, "u1"));
        let mut other = base.clone();
        other["model"] = json!("openai/gpt-4o");
        assert_ne!(first, k(&other, CacheScope::User, "u1"), "another model");
        let mut other = base.clone();
        other["max_tokens"] = json!(10);
        assert_ne!(first, k(&other, CacheScope::User, "u1"), "another parameter");
        let mut other = base;
        other["tools"] = json!([{"type": "function", "function": {"name": "rhyme"}}]);
        assert_ne!(first, k(&other, CacheScope::User, "u1"), "tools");
    }
}
