"""The official `openai` SDK against Maestro's `/v1/chat/completions`."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import Maestro

# A 1×1 PNG.
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def client(maestro: Maestro, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{maestro.url}/v1", api_key=api_key or maestro.token, max_retries=0, timeout=30)


def hello() -> list[dict]:
    return [{"role": "user", "content": "Hello!"}]


def test_chat_completion_through_openai(maestro: Maestro) -> None:
    raw = client(maestro).chat.completions.with_raw_response.create(model="openai/gpt-5.4", messages=hello())
    assert raw.headers["x-maestro-provider"] == "openai"
    assert raw.headers["x-request-id"].startswith("req_")
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello! How can I assist you today?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (19, 10)
    assert maestro.upstream.last("sk-ok-openai")["model"] == "gpt-5.4"


def test_chat_completion_through_claude(maestro: Maestro) -> None:
    completion = client(maestro).chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "system", "content": "Be brief."}, *hello()],
        max_tokens=300,
    )
    assert completion.choices[0].message.content.startswith("Python is a beginner-friendly")
    assert completion.model == "claude-sonnet-4-5-20250929"
    upstream = maestro.upstream.last("sk-ok-anthropic")
    assert upstream["system"] == "Be brief."
    assert upstream["max_tokens"] == 300


def test_streaming_chat(maestro: Maestro) -> None:
    stream = client(maestro).chat.completions.create(
        model="openai/gpt-5.4", messages=hello(), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "six"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (33, 10)


def test_streaming_chat_from_claude(maestro: Maestro) -> None:
    stream = client(maestro).chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=hello(), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "[12345,67890]"


def test_tool_call_round_trip(maestro: Maestro) -> None:
    c = client(maestro)
    messages: list[dict] = [{"role": "user", "content": "What's the weather in Boston?"}]
    first = c.chat.completions.create(model="gpt-tools/g-tools", messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == {"location": "Boston, MA"}
    upstream = maestro.upstream.last("sk-tool-gpt")
    assert upstream["tools"] == [WEATHER_TOOL]

    # The caller runs the tool and sends its result back.
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12°C and sunny"})
    c.chat.completions.create(model="gpt-tools/g-tools", messages=messages, tools=[WEATHER_TOOL])
    sent = maestro.upstream.last("sk-tool-gpt")["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_abc123"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_abc123", "content": "12°C and sunny"}


def test_tool_call_round_trip_through_claude(maestro: Maestro) -> None:
    c = client(maestro)
    messages: list[dict] = [{"role": "user", "content": "What's the weather in San Francisco?"}]
    first = c.chat.completions.create(
        model="claude-tools/c-tools", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name) == ("toolu_01GHndag5wQmbzNihYmV2UBj", "get_weather")
    assert json.loads(call.function.arguments) == {"location": "San Francisco, CA", "units": "c"}
    assert maestro.upstream.last("sk-tool-claude")["tool_choice"] == {"type": "any"}

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "15°C"})
    c.chat.completions.create(model="claude-tools/c-tools", messages=messages, tools=[WEATHER_TOOL])
    sent = maestro.upstream.last("sk-tool-claude")["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id, "content": "15°C"}


def test_image_input(maestro: Maestro) -> None:
    parts = [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
        {"type": "image_url", "image_url": {"url": "https://www.gstatic.com/webp/gallery3/1.png"}},
    ]
    completion = client(maestro).chat.completions.create(
        model="openai/gpt-5.4", messages=[{"role": "user", "content": parts}]
    )
    assert completion.choices[0].message.content
    assert maestro.upstream.last("sk-ok-openai")["messages"][0]["content"] == parts

    # Through Claude the images become Anthropic image blocks.
    client(maestro).chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": parts}]
    )
    blocks = maestro.upstream.last("sk-ok-anthropic")["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://www.gstatic.com/webp/gallery3/1.png"}}


def test_demo_model(maestro: Maestro) -> None:
    c = client(maestro)
    completion = c.chat.completions.create(model="demo/echo", messages=hello())
    assert completion.choices[0].message.content == "Echo from Maestro's demo model: Hello!"
    stream = c.chat.completions.create(model="demo/echo", messages=hello(), stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices) == (
        "Echo from Maestro's demo model: Hello!"
    )


def test_bad_request_is_a_bad_request_error(maestro: Maestro) -> None:
    c = client(maestro)
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model="openai/gpt-5.4", messages=hello(), temperature=5)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "temperature"
    # A provider's own 400 comes through as one too, with its message.
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model="picky/p1", messages=hello())
    assert "does not support 'developer'" in caught.value.message


def test_bad_token_is_an_authentication_error(maestro: Maestro) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(maestro, api_key="not-a-maestro-token").chat.completions.create(
            model="openai/gpt-5.4", messages=hello()
        )
    assert caught.value.status_code == 401


def test_unknown_model_is_not_found(maestro: Maestro) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(maestro).chat.completions.create(model="nope/never", messages=hello())
    assert caught.value.body["code"] == "model_not_found"


def test_a_full_key_is_a_rate_limit_error(maestro: Maestro) -> None:
    c = client(maestro)
    c.chat.completions.create(model="limited-openai/slow-lane", messages=hello())
    with pytest.raises(openai.RateLimitError) as caught:
        c.chat.completions.create(model="limited-openai/slow-lane", messages=hello())
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_every_call_is_logged_once(maestro: Maestro) -> None:
    token = maestro.issue_token("openai-sdk-logged")
    c = client(maestro, api_key=token)
    c.chat.completions.create(model="openai/gpt-5.4", messages=hello())
    list(c.chat.completions.create(model="openai/gpt-5.4", messages=hello(), stream=True))
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="nope/never", messages=hello())
    logs = maestro.logs_of("openai-sdk-logged", expected=3)
    assert sorted((log["status"], log["stream"]) for log in logs) == [
        ("error", False),
        ("success", False),
        ("success", True),
    ]
