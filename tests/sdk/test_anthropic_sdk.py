"""The official `anthropic` SDK against Maestro's `/v1/messages` and `/v1/messages/count_tokens`,
for Claude and for the other providers behind the same gateway."""

from __future__ import annotations

import json

import anthropic
import pytest

from conftest import FIXTURES, Maestro

PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


def client(maestro: Maestro, api_key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=maestro.url, api_key=api_key or maestro.token, max_retries=0, timeout=30)


def hello() -> list[dict]:
    return [{"role": "user", "content": "Hello!"}]


def test_messages_create_through_claude(maestro: Maestro) -> None:
    raw = client(maestro).messages.with_raw_response.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=256,
        system="Be brief.",
        messages=hello(),
        metadata={"user_id": "end-user-1"},
    )
    assert raw.headers["x-maestro-provider"] == "anthropic"
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()
    assert message.id == "msg_01KPaKTJSqAKoZri7Ujrny58"
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Python is a beginner-friendly")
    assert message.stop_reason == "end_turn"
    # 3 input tokens + 418 cache writes; the 1111 cache reads apart.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (421, 33)
    assert message.usage.cache_read_input_tokens == 1111
    upstream = maestro.upstream.last("sk-ok-anthropic")
    assert upstream["system"] == "Be brief."
    assert upstream["max_tokens"] == 256
    assert upstream["metadata"] == {"user_id": "end-user-1"}


def test_messages_create_through_openai(maestro: Maestro) -> None:
    message = client(maestro).messages.create(
        model="openai/gpt-5.4", max_tokens=100, system=[{"type": "text", "text": "Be brief."}], messages=hello()
    )
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello! How can I assist you today?"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (19, 10)
    upstream = maestro.upstream.last("sk-ok-openai")
    assert upstream["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
    assert upstream["max_tokens"] == 100


def test_messages_stream_from_claude(maestro: Maestro) -> None:
    with client(maestro).messages.stream(
        model="anthropic/claude-sonnet-4-5", max_tokens=256, messages=hello()
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "[12345,67890]"
    assert final.content[0].text == "[12345,67890]"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (135, 10)


def test_messages_stream_from_openai(maestro: Maestro) -> None:
    with client(maestro).messages.stream(model="openai/gpt-5.4", max_tokens=64, messages=hello()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "six"
    assert final.id.startswith("msg_")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (33, 10)


def test_raw_event_stream(maestro: Maestro) -> None:
    events = list(
        client(maestro).messages.create(
            model="anthropic/claude-sonnet-4-5", max_tokens=64, messages=hello(), stream=True
        )
    )
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def tool_round_trip(maestro: Maestro, model: str, key: str, expected_call: tuple[str, str, dict]) -> None:
    c = client(maestro)
    messages: list[dict] = [{"role": "user", "content": "What's the weather?"}]
    first = c.messages.create(
        model=model, max_tokens=256, tools=[WEATHER_TOOL], tool_choice={"type": "auto"}, messages=messages
    )
    assert first.stop_reason == "tool_use"
    tool_use = next(b for b in first.content if b.type == "tool_use")
    assert (tool_use.id, tool_use.name, tool_use.input) == expected_call

    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    messages.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "12°C and sunny"}]}
    )
    c.messages.create(model=model, max_tokens=256, tools=[WEATHER_TOOL], messages=messages)
    assert maestro.upstream.last(key)


def test_tool_use_round_trip_through_claude(maestro: Maestro) -> None:
    tool_round_trip(
        maestro,
        "claude-tools/c-tools",
        "sk-tool-claude",
        ("toolu_01GHndag5wQmbzNihYmV2UBj", "get_weather", {"location": "San Francisco, CA", "units": "c"}),
    )
    sent = maestro.upstream.last("sk-tool-claude")
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01GHndag5wQmbzNihYmV2UBj", "content": "12°C and sunny"}
    ]


def test_tool_use_round_trip_through_openai(maestro: Maestro) -> None:
    tool_round_trip(
        maestro, "gpt-tools/g-tools", "sk-tool-gpt", ("call_abc123", "get_current_weather", {"location": "Boston, MA"})
    )
    sent = maestro.upstream.last("sk-tool-gpt")
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_abc123"
    assert json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {"location": "Boston, MA"}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_abc123", "content": "12°C and sunny"}


def test_streamed_tool_use_is_accumulated_by_the_sdk(maestro: Maestro) -> None:
    with client(maestro).messages.stream(
        model="claude-tools/c-tools", max_tokens=256, tools=[WEATHER_TOOL], messages=hello()
    ) as stream:
        final = stream.get_final_message()
    tool_use = final.content[0]
    assert tool_use.type == "tool_use"
    assert tool_use.input == {"location": "San Francisco, CA", "units": "f"}
    assert final.stop_reason == "tool_use"


def test_image_input(maestro: Maestro) -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        {"type": "image", "source": {"type": "url", "url": "https://www.gstatic.com/webp/gallery3/1.png"}},
        {"type": "text", "text": "What is in these images?"},
    ]
    client(maestro).messages.create(
        model="openai/gpt-5.4", max_tokens=64, messages=[{"role": "user", "content": content}]
    )
    parts = maestro.upstream.last("sk-ok-openai")["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://www.gstatic.com/webp/gallery3/1.png"}}


def test_count_tokens(maestro: Maestro) -> None:
    c = client(maestro)
    # OpenAI models are counted exactly (tiktoken): 19 for this system + user pair.
    counted = c.messages.count_tokens(
        model="openai/gpt-4o", system="You are a helpful assistant.", messages=hello()
    )
    assert counted.input_tokens == 19
    # The recorded count_tokens request (tools, tool_choice, thinking), on a Claude model here.
    recorded = json.loads((FIXTURES / "anthropic" / "count_tokens_request.json").read_text())
    recorded["model"] = "anthropic/claude-sonnet-4-5"
    counted = c.messages.count_tokens(**recorded)
    assert counted.input_tokens > 0


def test_demo_model(maestro: Maestro) -> None:
    c = client(maestro)
    message = c.messages.create(model="demo/echo", max_tokens=64, messages=hello())
    assert message.content[0].text == "Echo from Maestro's demo model: Hello!"
    with c.messages.stream(model="demo/echo", max_tokens=64, messages=hello()) as stream:
        assert "".join(stream.text_stream) == "Echo from Maestro's demo model: Hello!"


def test_a_bearer_token_works_too(maestro: Maestro) -> None:
    c = anthropic.Anthropic(base_url=maestro.url, api_key=None, auth_token=maestro.token, max_retries=0)
    assert c.messages.create(model="demo/echo", max_tokens=16, messages=hello()).content[0].text


def test_bad_request_is_a_bad_request_error(maestro: Maestro) -> None:
    c = client(maestro)
    with pytest.raises(anthropic.BadRequestError) as caught:
        c.messages.create(model="openai/gpt-5.4", max_tokens=0, messages=hello())
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith("max_tokens:")
    # A provider's own 400, passed on.
    with pytest.raises(anthropic.BadRequestError) as caught:
        c.messages.create(model="picky/p1", max_tokens=16, messages=hello())
    assert "does not support 'developer'" in caught.value.body["error"]["message"]
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


def test_bad_token_is_an_authentication_error(maestro: Maestro) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(maestro, api_key="not-a-maestro-token").messages.create(
            model="demo/echo", max_tokens=16, messages=hello()
        )
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_unknown_model_is_not_found(maestro: Maestro) -> None:
    c = client(maestro)
    with pytest.raises(anthropic.NotFoundError) as caught:
        c.messages.create(model="nope/never", max_tokens=16, messages=hello())
    assert caught.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        c.messages.count_tokens(model="nope/never", messages=hello())


def test_a_full_key_is_a_rate_limit_error(maestro: Maestro) -> None:
    c = client(maestro)
    c.messages.create(model="limited-anthropic/slow-lane", max_tokens=16, messages=hello())
    with pytest.raises(anthropic.RateLimitError) as caught:
        c.messages.create(model="limited-anthropic/slow-lane", max_tokens=16, messages=hello())
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_every_call_is_logged_once(maestro: Maestro) -> None:
    token = maestro.issue_token("anthropic-sdk-logged")
    c = client(maestro, api_key=token)
    c.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=16, messages=hello())
    with c.messages.stream(model="openai/gpt-5.4", max_tokens=16, messages=hello()) as stream:
        stream.until_done()
    with pytest.raises(anthropic.NotFoundError):
        c.messages.create(model="nope/never", max_tokens=16, messages=hello())
    c.messages.count_tokens(model="openai/gpt-4o", messages=hello())  # no provider call, no log
    logs = maestro.logs_of("anthropic-sdk-logged", expected=3)
    assert sorted((log["provider"], log["status"], log["stream"]) for log in logs) == [
        ("anthropic", "success", False),
        ("none", "error", False),
        ("openai", "success", True),
    ]
