"""The official `openai` SDK's Responses API (`client.responses.create`, `client.responses.stream`)
against Maestro's `/v1/responses`, with OpenAI-, Anthropic- and DeepSeek-shaped upstreams behind
it: plain answers, streams, function tool round trips, the 400s for state and built-in tools,
and the call log. Every answer and every event is also checked against OpenAI's published
OpenAPI document (`Response`, `ResponseStreamEvent`), and the SDK's own stream accumulator
(`responses.stream`, which checks item identities and order) has to accept the stream.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import published_schemas
from conftest import Maestro

WEATHER_TOOL = {
    "type": "function",
    "name": "get_current_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}

# Per upstream shape: the model, the key prefix of its upstream requests, the recorded answer's
# text (None: just non-empty) and usage (input, output) plain and streamed.
PLAIN = {
    "openai": ("openai/gpt-5.4", "sk-ok-openai", "Hello! How can I assist you today?", (19, 10)),
    "anthropic": ("anthropic/claude-sonnet-4-5", "sk-ok-anthropic", None, (1532, 33)),
    "deepseek": ("deepseek/deepseek-v4-flash", "sk-ok-deepseek", "Let me load the dice rolling capability!", (563, 116)),
}
STREAMED = {
    "openai": ("openai/gpt-5.4", "six", (33, 10)),
    "anthropic": ("anthropic/claude-sonnet-4-5", "[12345,67890]", (135, 10)),
    "deepseek": ("deepseek/deepseek-v4-flash", None, None),
}
# Per upstream shape: the tool model, its key prefix, the recorded call (call_id, name, arguments)
# plain and streamed.
TOOLS = {
    "openai": (
        "gpt-tools/g-tools",
        "sk-tool-gpt",
        ("call_abc123", "get_current_weather", {"location": "Boston, MA"}),
        ("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"}),
    ),
    "anthropic": (
        "claude-tools/c-tools",
        "sk-tool-claude",
        ("toolu_01GHndag5wQmbzNihYmV2UBj", "get_weather", {"location": "San Francisco, CA", "units": "c"}),
        ("toolu_01TJoxvFknVdnV9XpWFPaRmY", "get_weather", {"location": "San Francisco, CA", "units": "f"}),
    ),
}


def client(maestro: Maestro, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{maestro.url}/v1", api_key=api_key or maestro.token, max_retries=0, timeout=30)


def event_schema(event_type: str) -> str:
    """The schema of one event type among `ResponseStreamEvent`'s alternatives (validating the
    union itself would only say that no alternative fits)."""
    spec = published_schemas.openai()
    for ref in spec.schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        if event_type in spec.schemas[name].get("properties", {}).get("type", {}).get("enum", []):
            return name
    raise AssertionError(f"{event_type} is not an event of OpenAI's document")


def conforms_event(event: Any) -> None:
    conforms(event_schema(event.type), event.to_dict())


def conforms(schema: str, instance: Any) -> None:
    errors = published_schemas.openai().errors(schema, instance)
    assert not errors, f"{schema} does not conform to OpenAI's document: {errors}\n{json.dumps(instance)[:2000]}"


@pytest.mark.parametrize("shape", sorted(PLAIN))
def test_responses_create(maestro: Maestro, shape: str) -> None:
    model, key, text, (input_tokens, output_tokens) = PLAIN[shape]
    raw = client(maestro).responses.with_raw_response.create(
        model=model, instructions="Be brief.", input="Hello!", max_output_tokens=300, store=False
    )
    assert raw.headers["x-maestro-model"].startswith(model.split("/")[0])
    request_id = raw.headers["x-request-id"]
    conforms("Response", json.loads(raw.text))
    response = raw.parse()
    assert response.id == "resp_" + request_id.removeprefix("req_")
    assert (response.object, response.status) == ("response", "completed")
    assert response.output_text == text if text else response.output_text
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (input_tokens, output_tokens)
    assert response.usage.total_tokens == input_tokens + output_tokens
    assert response.instructions == "Be brief."
    upstream = maestro.upstream.last(key)
    if shape == "anthropic":
        assert (upstream["system"], upstream["max_tokens"]) == ("Be brief.", 300)
    else:
        assert upstream["messages"][0] == {"role": "system", "content": "Be brief."}
    if shape == "deepseek":
        # DeepSeek's reasoning_content comes back as a reasoning item before the message.
        assert [item.type for item in response.output] == ["reasoning", "message"]
        assert response.output[0].content[0].text.startswith("The user wants to play a dice game.")
        assert response.usage.input_tokens_details.cached_tokens == 512


@pytest.mark.parametrize("shape", sorted(STREAMED))
def test_responses_stream(maestro: Maestro, shape: str) -> None:
    model, text, usage = STREAMED[shape]
    events = list(client(maestro).responses.create(model=model, input="Hello!", stream=True))
    for event in events:
        conforms_event(event)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == text if text else streamed
    done = [e.text for e in events if e.type == "response.output_text.done"]
    assert done == [streamed]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.id == events[0].response.id
    assert completed.response.output_text == streamed
    if usage:
        assert (completed.response.usage.input_tokens, completed.response.usage.output_tokens) == usage


@pytest.mark.parametrize("shape", sorted(STREAMED))
def test_the_sdk_stream_helper_accumulates_the_events(maestro: Maestro, shape: str) -> None:
    model, text, _ = STREAMED[shape]
    with client(maestro).responses.stream(model=model, input="Hello!") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "".join(deltas)
    if text:
        assert final.output_text == text


@pytest.mark.parametrize("shape", sorted(TOOLS))
def test_function_tool_round_trip(maestro: Maestro, shape: str) -> None:
    model, key, (call_id, name, arguments), _ = TOOLS[shape]
    c = client(maestro)
    raw = c.responses.with_raw_response.create(model=model, input="What's the weather?", tools=[WEATHER_TOOL])
    conforms("Response", json.loads(raw.text))
    first = raw.parse()
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(call.call_id, call.name) for call in calls] == [(call_id, name)]
    assert json.loads(calls[0].arguments) == arguments
    assert calls[0].id.startswith("fc_")
    sent_tools = maestro.upstream.last(key)["tools"]
    assert (sent_tools[0].get("name") or sent_tools[0]["function"]["name"]) == "get_current_weather"

    # The caller runs the tool and sends the whole conversation back: the model's output items
    # as the SDK returned them, then the tool's output.
    conversation: list[Any] = [{"role": "user", "content": "What's the weather?"}]
    conversation += first.output
    conversation.append({"type": "function_call_output", "call_id": call_id, "output": "12°C and sunny"})
    second = c.responses.create(model=model, input=conversation, tools=[WEATHER_TOOL])
    assert second.status == "completed"
    sent = maestro.upstream.last(key)["messages"]
    if shape == "anthropic":
        assert sent[1]["content"][-1]["type"] == "tool_use"
        assert sent[1]["content"][-1]["id"] == call_id
        assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": call_id, "content": "12°C and sunny"}
    else:
        assert sent[1]["tool_calls"][0]["id"] == call_id
        assert sent[2] == {"role": "tool", "tool_call_id": call_id, "content": "12°C and sunny"}


@pytest.mark.parametrize("shape", sorted(TOOLS))
def test_streamed_function_call(maestro: Maestro, shape: str) -> None:
    model, _, _, (call_id, name, arguments) = TOOLS[shape]
    events = list(client(maestro).responses.create(model=model, input="Weather?", tools=[WEATHER_TOOL], stream=True))
    for event in events:
        conforms_event(event)
    added = [e.item for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"]
    assert [(item.call_id, item.name) for item in added] == [(call_id, name)]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(deltas) == arguments
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.arguments, e.item_id) for e in done] == [(deltas, added[0].id)]
    completed = events[-1]
    assert completed.type == "response.completed"
    final_calls = [item for item in completed.response.output if item.type == "function_call"]
    assert [(item.call_id, item.arguments) for item in final_calls] == [(call_id, deltas)]
    assert completed.response.usage.output_tokens > 0


def test_state_and_built_in_tools_are_bad_requests(maestro: Maestro) -> None:
    c = client(maestro)
    with pytest.raises(openai.BadRequestError) as caught:
        c.responses.create(model="openai/gpt-5.4", input="Hello!", previous_response_id="resp_123")
    assert caught.value.param == "previous_response_id"
    assert "no conversation state" in caught.value.message
    conforms("ErrorResponse", caught.value.response.json())
    for tool in ({"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}):
        with pytest.raises(openai.BadRequestError) as caught:
            c.responses.create(model="openai/gpt-5.4", input="Hello!", tools=[tool])
        assert caught.value.param == "tools[0].type"
        assert tool["type"] in caught.value.message
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="nope/never", input="Hello!")


def test_every_call_is_logged_as_a_responses_call_with_its_cost(maestro: Maestro) -> None:
    token = maestro.issue_token("responses-sdk-logged")
    c = client(maestro, api_key=token)
    c.responses.create(model="openai/gpt-5.4", input="Hello!")
    list(c.responses.create(model="anthropic/claude-sonnet-4-5", input="Hello!", stream=True))
    with pytest.raises(openai.BadRequestError):
        c.responses.create(model="openai/gpt-5.4", input="Hello!", previous_response_id="resp_1")
    logs = maestro.logs_of("responses-sdk-logged", expected=3)
    assert {log["request_type"] for log in logs} == {"responses"}
    assert sorted((log["status"], log["stream"], log["provider"]) for log in logs) == [
        ("error", False, "none"),
        ("success", False, "openai"),
        ("success", True, "anthropic"),
    ]
    assert all(log["cost_micros"] > 0 for log in logs if log["status"] == "success")
