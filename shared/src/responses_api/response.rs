//! The gateway's `chat.completion` as a Responses `response` object.
//!
//! Output items come in this order: a `reasoning` item (from `reasoning_content`, DeepSeek's and
//! Maestro's Anthropic provider's name for thinking text, as `reasoning_text` content), an
//! assistant `message` (its text as `output_text`, or a `refusal`), then one `function_call` per
//! tool call. `finish_reason` `length` makes the response `incomplete`
//! (`max_output_tokens`), `content_filter` too (`content_filter`); anything else `completed`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChatUsage, Echo, State, ending, item_id, now_secs, response_object};
use crate::error::ApiError;

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<OutMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct OutMessage {
    /// A string, or (rarely) text parts.
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<String>,
    /// The name some OpenAI-compatible servers (vLLM, OpenRouter) use instead.
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<Function>,
}

#[derive(Deserialize, Default)]
struct Function {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// An `output_text` part.
pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `reasoning` output item holding reasoning text.
pub(crate) fn reasoning_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [], "content": [{"type": "reasoning_text", "text": text}], "status": status})
}

/// An assistant `message` output item.
pub(crate) fn message_item(id: &str, content: Vec<Value>, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

/// A `function_call` output item.
pub(crate) fn function_call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

/// Rewrites a `chat.completion` body as a `response` object with id `response_id`.
/// `fallback_model` names the model when the completion does not.
pub fn to_response(completion: &[u8], response_id: &str, fallback_model: &str, echo: &Echo) -> Result<Value, ApiError> {
    let completion: Completion = serde_json::from_slice(completion).map_err(|e| {
        tracing::error!(error = %e, "the gateway's completion could not be read for the Responses endpoint");
        ApiError::bad_gateway("upstream_malformed_response", "The provider's answer could not be translated.")
    })?;
    let choice = completion.choices.into_iter().next();
    let finish_reason = choice.as_ref().and_then(|c| c.finish_reason.clone());
    let (status, incomplete_details) = ending(finish_reason.as_deref());
    let item_status = if status == "completed" { "completed" } else { "incomplete" };
    let mut output = Vec::new();
    if let Some(message) = choice.and_then(|c| c.message) {
        if let Some(thinking) = message.reasoning_content.or(message.reasoning).filter(|t| !t.is_empty()) {
            output.push(reasoning_item(&item_id("rs", response_id, output.len()), &thinking, item_status));
        }
        let text = match message.content {
            Some(Value::String(text)) => text,
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        };
        let refusal = message.refusal.filter(|r| !r.is_empty());
        let content = match (text.is_empty(), refusal) {
            (false, _) => vec![output_text(&text)],
            (true, Some(refusal)) => vec![json!({"type": "refusal", "refusal": refusal})],
            (true, None) => Vec::new(),
        };
        if !content.is_empty() {
            output.push(message_item(&item_id("msg", response_id, output.len()), content, item_status));
        }
        for (i, call) in message.tool_calls.unwrap_or_default().into_iter().enumerate() {
            let function = call.function.unwrap_or_default();
            let call_id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_maestro_{i}"));
            output.push(function_call_item(
                &item_id("fc", response_id, output.len()),
                &call_id,
                function.name.as_deref().unwrap_or(""),
                function.arguments.as_deref().unwrap_or(""),
                "completed",
            ));
        }
    }
    let usage = ChatUsage::of(completion.usage.as_ref()).map_or(Value::Null, |u| u.responses());
    let model = completion.model.filter(|m| !m.is_empty());
    let state = State {
        id: response_id,
        created_at: completion.created.unwrap_or_else(now_secs),
        model: model.as_deref().unwrap_or(fallback_model),
        status,
        incomplete_details,
        error: Value::Null,
        output,
        usage,
    };
    Ok(response_object(state, echo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(fixture: &str) -> Value {
        to_response(fixture.as_bytes(), "resp_abc", "fallback", &Echo::default()).unwrap()
    }

    #[test]
    fn the_recorded_openai_completion_becomes_a_message_output() {
        let r = translate(include_str!("../../tests/fixtures/openai/chat_completion.json"));
        assert_eq!(
            (r["id"].as_str(), r["object"].as_str(), r["status"].as_str()),
            (Some("resp_abc"), Some("response"), Some("completed"))
        );
        assert_eq!(r["model"], "gpt-5.4");
        assert_eq!(
            r["output"],
            json!([{"type": "message", "id": "msg_abc_0", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello! How can I assist you today?", "annotations": [], "logprobs": []}]}])
        );
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 19, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 10,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 29})
        );
        assert!(r["error"].is_null() && r["incomplete_details"].is_null() && r["previous_response_id"].is_null());
        assert!(r["created_at"].as_u64().unwrap() > 1_700_000_000);
        assert!(r["completed_at"].as_i64().unwrap() > 1_700_000_000);
        assert_eq!(r["store"], false);
    }

    #[test]
    fn the_recorded_tool_call_becomes_a_function_call_item() {
        let r = translate(include_str!("../../tests/fixtures/openai/chat_completion_tool_call.json"));
        assert_eq!(
            r["output"],
            json!([{"type": "function_call", "id": "fc_abc_0", "call_id": "call_abc123", "name": "get_current_weather",
                "arguments": "{\n\"location\": \"Boston, MA\"\n}", "status": "completed"}])
        );
        assert_eq!(r["status"], "completed");
    }

    #[test]
    fn deepseek_reasoning_text_and_a_call_are_three_items() {
        let r = translate(include_str!("../../tests/fixtures/deepseek/chat_completion.json"));
        let types: Vec<&str> = r["output"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["reasoning", "message", "function_call"]);
        assert!(
            r["output"][0]["content"][0]["text"].as_str().unwrap().starts_with("The user wants to play a dice game.")
        );
        assert_eq!(r["output"][0]["summary"], json!([]));
        assert_eq!(r["output"][1]["content"][0]["text"], "Let me load the dice rolling capability!");
        assert_eq!(r["output"][2]["id"], "fc_abc_2");
        assert_eq!(
            serde_json::from_str::<Value>(r["output"][2]["arguments"].as_str().unwrap()).unwrap(),
            json!({"id": "DICE_ROLL"})
        );
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 512);
    }

    #[test]
    fn a_cut_answer_is_incomplete_and_echoes_the_request() {
        let echo = Echo {
            instructions: Some("Be brief.".into()),
            max_output_tokens: Some(5),
            temperature: Some(0.2),
            tool_choice: json!("auto"),
            parallel_tool_calls: true,
            text: json!({"format": {"type": "text"}}),
            metadata: json!({"k": "v"}),
            ..Echo::default()
        };
        let body = json!({"choices": [{"message": {"content": "abc"}, "finish_reason": "length"}]});
        let r = to_response(body.to_string().as_bytes(), "resp_x", "asked", &echo).unwrap();
        assert_eq!((r["status"].as_str(), r["model"].as_str()), (Some("incomplete"), Some("asked")));
        assert_eq!(r["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(r["output"][0]["status"], "incomplete");
        assert!(r["completed_at"].is_null() && r["usage"].is_null());
        assert_eq!((r["instructions"].as_str(), r["max_output_tokens"].as_u64()), (Some("Be brief."), Some(5)));
        assert_eq!((r["temperature"].as_f64(), r["metadata"]["k"].as_str()), (Some(0.2), Some("v")));
        let refused = json!({"choices": [{"message": {"content": null, "refusal": "No."}, "finish_reason": "stop"}]});
        let r = to_response(refused.to_string().as_bytes(), "resp_x", "m", &echo).unwrap();
        assert_eq!(r["output"][0]["content"], json!([{"type": "refusal", "refusal": "No."}]));
        assert_eq!(to_response(b"<html>", "resp_x", "m", &echo).unwrap_err().status(), 502);
    }
}
