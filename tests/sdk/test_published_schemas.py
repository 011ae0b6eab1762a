"""Every answer Maestro gives, checked against the providers' published OpenAPI documents.

OpenAI's document for the OpenAI-shaped routes (`/v1/chat/completions`, `/v1/models`): plain
answers, streams (each chunk, with and without `include_usage`), tool calls, structured output,
errors and model lists, through every kind of upstream (OpenAI's passed through, Claude's
translated, the demo model built by Maestro). Anthropic's document for the Anthropic-shaped
routes' errors, model lists and token counts. See `published_schemas.py` for where the documents
come from.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

import published_schemas
from conftest import ANSWERS, Maestro

HELLO = [{"role": "user", "content": "Hello!"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
}

# (case, request body) for the chat route; each is sent plain and streamed.
CHAT_CASES = {
    "openai": {"model": "openai/gpt-5.4", "messages": HELLO},
    "claude": {"model": "anthropic/claude-sonnet-4-5", "messages": HELLO, "max_tokens": 300},
    "demo": {"model": "demo/echo", "messages": HELLO},
    "openai-tools": {"model": "gpt-tools/g-tools", "messages": HELLO, "tools": [WEATHER_TOOL]},
    "claude-tools": {"model": "claude-tools/c-tools", "messages": HELLO, "tools": [WEATHER_TOOL]},
    "claude-structured": {"model": "anthropic/claude-sonnet-4-5", "messages": HELLO, "response_format": PERSON},
    "deepseek": {"model": "deepseek/deepseek-v4-flash", "messages": HELLO},
    "deepseek-tools": {"model": "deepseek-tools/ds-tools", "messages": HELLO, "tools": [WEATHER_TOOL]},
    "deepseek-structured": {"model": "deepseek/deepseek-v4-flash", "messages": HELLO, "response_format": PERSON},
}


# Cases whose answer is the upstream's own, passed through: (key kind, wire format) of the fake's
# answer. The recorded answers do not all conform themselves (OpenAI sends `system_fingerprint:
# null` where its document says string; the docs' tool-call example has no `refusal`); what is
# checked there is that Maestro adds no deviation of its own.
PASSED_THROUGH = {
    "openai": ("ok", "openai"),
    "openai-tools": ("tool", "openai"),
    "deepseek": ("ok", "deepseek"),
    "deepseek-tools": ("tool", "deepseek"),
    # The fake's JSON answer, shaped like DeepSeek's recorded one (no `refusal`).
    "deepseek-structured": ("ok", "deepseek"),
}


def upstream_deviations(spec: published_schemas.Spec, case: str, schema: str, stream: bool) -> set[str]:
    if case not in PASSED_THROUGH:
        return set()
    complete, streamed = ANSWERS[PASSED_THROUGH[case]]
    if not stream:
        return set(spec.errors(schema, json.loads(complete)))
    data = [line.removeprefix("data:").strip() for line in streamed.decode().splitlines()]
    chunks = [json.loads(d) for d in data if d.startswith("{")]
    return {e for chunk in chunks for e in spec.errors(schema, chunk)}


def conforms(spec: published_schemas.Spec, schema: str, instance: Any, tolerated: set[str] = frozenset()) -> None:
    errors = [e for e in spec.errors(schema, instance) if e not in tolerated]
    assert not errors, f"{schema} ({spec.path.name}):\n" + "\n".join(errors) + f"\n{json.dumps(instance)[:1500]}"


@dataclass
class Answer:
    status_code: int
    headers: Any
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """Just enough HTTP (the standard library's) to see Maestro's answers as they are."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers

    def request(self, method: str, path: str, json_body: Any = None, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        data = content if content is not None else (None if json_body is None else json.dumps(json_body).encode())
        sent = {**self.headers, **({"content-type": "application/json"} if data is not None else {}), **(headers or {})}
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    def post(self, path: str, json: Any = None, content: bytes | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, json, content, headers)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)


def http(maestro: Maestro) -> Client:
    return Client(maestro.url, {"authorization": f"Bearer {maestro.token}"})


def sse_data(answer: Answer) -> Iterator[tuple[str | None, str]]:
    """(event name, data) of each server-sent event."""
    event: str | None = None
    for line in answer.text.splitlines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield event, line.removeprefix("data:").strip()
            event = None


@pytest.mark.parametrize("case", CHAT_CASES)
def test_chat_completions_conform(maestro: Maestro, case: str) -> None:
    spec = published_schemas.openai()
    response = http(maestro).post("/v1/chat/completions", json=CHAT_CASES[case])
    assert response.status_code == 200, response.text
    body = response.json()
    schema = "CreateChatCompletionResponse"
    conforms(spec, schema, body, upstream_deviations(spec, case, schema, stream=False))
    if case not in PASSED_THROUGH:
        assert body["choices"][0]["message"]["refusal"] is None, "required by the spec, null when none"


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include_usage"])
@pytest.mark.parametrize("case", CHAT_CASES)
def test_chat_streams_conform(maestro: Maestro, case: str, include_usage: bool) -> None:
    spec = published_schemas.openai()
    body = {**CHAT_CASES[case], "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    response = http(maestro).post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    data = [d for _, d in sse_data(response)]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks
    schema = "CreateChatCompletionStreamResponse"
    tolerated = upstream_deviations(spec, case, schema, stream=True)
    for chunk in chunks:
        conforms(spec, schema, chunk, tolerated)
    # "When present, it contains a null value except for the last chunk which contains the
    # token usage statistics for the entire request" — and it is present only when asked for.
    # A stream passed through keeps the provider's own framing (DeepSeek's usage rides on its
    # last choice chunk, with no `usage: null` before it): there, only the usage asked for is.
    if case in PASSED_THROUGH:
        assert not include_usage or chunks[-1]["usage"]["total_tokens"] > 0, chunks[-1]
    elif include_usage:
        assert all("usage" in c and c["usage"] is None for c in chunks[:-1]), chunks
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0, chunks[-1]
    else:
        assert all("usage" not in c for c in chunks), chunks


def error_cases(client: Client) -> Iterator[tuple[str, int, Answer]]:
    chat = "/v1/chat/completions"
    yield "bad token", 401, client.post(chat, json=CHAT_CASES["openai"], headers={"authorization": "Bearer nope"})
    yield "bad json", 400, client.post(chat, content=b"{", headers={"content-type": "application/json"})
    yield "bad param", 400, client.post(chat, json={**CHAT_CASES["openai"], "temperature": 5})
    yield "unknown model", 404, client.post(chat, json={"model": "nope/never", "messages": HELLO})
    yield "provider refusal", 400, client.post(chat, json={"model": "picky/p1", "messages": HELLO})
    yield "n for claude", 400, client.post(chat, json={**CHAT_CASES["claude"], "n": 2})
    yield "wrong method", 405, client.get(chat)
    yield "no route", 404, client.get("/v1/nope")
    yield "unknown model id", 404, client.get("/v1/models/nope%2Fnever")
    limited = {"model": "limited-openai/slow-lane", "messages": HELLO}
    client.post(chat, json=limited)  # the key's one request this minute (or already spent)
    yield "key full", 429, client.post(chat, json=limited)


def test_errors_conform(maestro: Maestro) -> None:
    spec = published_schemas.openai()
    for name, status, response in error_cases(http(maestro)):
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        body = response.json()
        conforms(spec, "ErrorResponse", body)
        assert body["error"]["message"], name


def test_model_lists_conform(maestro: Maestro) -> None:
    spec = published_schemas.openai()
    client = http(maestro)
    listed = client.get("/v1/models").json()
    conforms(spec, "ListModelsResponse", listed)
    assert all(m["created"] > 0 for m in listed["data"]), "created is when the model entered the catalog"
    one = client.get("/v1/models/openai/gpt-5.4")
    assert one.status_code == 200, one.text
    conforms(spec, "Model", one.json())


# ---- Anthropic's shapes ---------------------------------------------------------------------

# Anthropic's document (2026) lists as required fields its own API adds only lately (`container`,
# `stop_details`, a text block's `citations`, `usage.service_tier`, …): the recorded Claude answers
# do not conform either, so Messages bodies and stream events are not checked against it here;
# errors, model lists and token counts are.


def anthropic_http(maestro: Maestro) -> Client:
    return Client(maestro.url, {"x-api-key": maestro.token, "anthropic-version": "2023-06-01"})


def test_anthropic_errors_and_models_conform(maestro: Maestro) -> None:
    spec = published_schemas.anthropic()
    client = anthropic_http(maestro)
    claude = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 300, "messages": HELLO}
    cases = [
        (401, client.post("/v1/messages", json=claude, headers={"x-api-key": "nope"})),
        (400, client.post("/v1/messages", json={"model": "anthropic/claude-sonnet-4-5", "messages": HELLO})),
        (404, client.post("/v1/messages", json={**claude, "model": "nope/never"})),
        (400, client.post("/v1/messages", json={**claude, "model": "picky/p1"})),
    ]
    for status, response in cases:
        assert response.status_code == status, response.text
        conforms(spec, "ErrorResponse", response.json())
    listed = client.get("/v1/models")
    assert listed.status_code == 200, listed.text
    conforms(spec, "ListResponse_ModelInfo_", listed.json())
    assert all(not m["created_at"].startswith("1970") for m in listed.json()["data"])
    one = client.get("/v1/models/anthropic%2Fclaude-sonnet-4-5")
    assert one.status_code == 200, one.text
    conforms(spec, "ModelInfo", one.json())
    counted = client.post("/v1/messages/count_tokens", json={"model": "openai/gpt-5.4", "messages": HELLO})
    assert counted.status_code == 200, counted.text
    conforms(spec, "CountMessageTokensResponse", counted.json())
