"""The three upstream shapes the client-library tests run against, and the checks they share.

Each shape is a pair of Maestro models whose providers speak one upstream format — OpenAI's
chat completions, Anthropic's messages, DeepSeek's chat completions (no `/v1`, json_object only)
— with the key prefixes that pick their upstream requests out of the fake's record and the
values of the recorded answers the fake gives (see conftest). Every client talks to Maestro's
OpenAI-compatible `/v1/chat/completions`; Maestro translates for the shape behind it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx2
import pytest
from pydantic import BaseModel

from conftest import PERSON


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    args: dict


@dataclass(frozen=True)
class Shape:
    name: str
    # Plain answers and structured output; its requests carry a `key` key.
    model: str
    key: str
    # The recorded tool calls; its requests carry a `tool_key` key.
    tool_model: str
    tool_key: str
    # The path Maestro posts to upstream.
    path: str
    text: str
    # (prompt, completion) tokens as Maestro reports them in OpenAI's shape.
    usage: tuple[int, int]
    stream_text: str
    stream_usage: tuple[int, int]
    tool_call: ToolCall
    stream_tool_call: ToolCall
    # Of the canned structured answers (conftest.STRUCTURED_USAGE / STRUCTURED_ANTHROPIC_USAGE).
    structured_usage: tuple[int, int]


OPENAI = Shape(
    name="openai",
    model="openai/gpt-5.4",
    key="sk-ok-openai",
    tool_model="gpt-tools/g-tools",
    tool_key="sk-tool-gpt",
    path="/v1/chat/completions",
    text="Hello! How can I assist you today?",
    usage=(19, 10),
    stream_text="six",
    stream_usage=(33, 10),
    tool_call=ToolCall("call_abc123", "get_current_weather", {"location": "Boston, MA"}),
    stream_tool_call=ToolCall("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"}),
    structured_usage=(42, 12),
)
ANTHROPIC = Shape(
    name="anthropic",
    model="anthropic/claude-sonnet-4-5",
    key="sk-ok-anthropic",
    tool_model="claude-tools/c-tools",
    tool_key="sk-tool-claude",
    path="/v1/messages",
    text=(
        "Python is a beginner-friendly, versatile programming language widely used for web development, "
        "data science, machine learning, automation, and scientific computing."
    ),
    # 3 input tokens + 418 cache writes + 1111 cache reads.
    usage=(1532, 33),
    stream_text="[12345,67890]",
    stream_usage=(135, 10),
    tool_call=ToolCall(
        "toolu_01GHndag5wQmbzNihYmV2UBj", "get_weather", {"location": "San Francisco, CA", "units": "c"}
    ),
    stream_tool_call=ToolCall(
        "toolu_01TJoxvFknVdnV9XpWFPaRmY", "get_weather", {"location": "San Francisco, CA", "units": "f"}
    ),
    structured_usage=(420, 21),
)
DEEPSEEK = Shape(
    name="deepseek",
    model="deepseek/deepseek-v4-flash",
    key="sk-ok-deepseek",
    tool_model="deepseek-tools/ds-tools",
    tool_key="sk-tool-deepseek",
    path="/chat/completions",
    text="Let me load the dice rolling capability!",
    usage=(563, 116),
    stream_text="Hello there! 😊 How can I help you today?",
    stream_usage=(6, 212),
    tool_call=ToolCall("call_00_sXqYgMESDht75NCLLZtt9804", "load_capability", {"id": "DICE_ROLL"}),
    stream_tool_call=ToolCall("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"}),
    structured_usage=(42, 12),
)
SHAPES = [pytest.param(s, id=s.name) for s in (OPENAI, ANTHROPIC, DEEPSEEK)]

# DeepSeek's recorded answers come with thinking text.
DEEPSEEK_REASONING = (
    "The user wants to play a dice game. I need to roll a die and compare it to the user's guess of 4. "
    "But the DICE_ROLL capability is deferred - I need to load it first using the `load_capability` tool."
    "\n\nLet me load the capability first."
)
DEEPSEEK_STREAM_REASONING = "Hmm, the user."


def function(name: str, description: str, properties: dict) -> dict:
    parameters = {"type": "object", "properties": properties, "required": list(properties)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


# Every tool the recorded answers call, offered together so any shape's call is of a known tool.
TOOLS = [
    function("get_current_weather", "Current weather in a city", {"location": {"type": "string"}}),
    function(
        "get_weather",
        "Current weather in a city, in the given units",
        {"location": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
    ),
    function("get_capital", "The capital of a country", {"country": {"type": "string"}}),
    function("load_capability", "Load a deferred capability by id", {"id": {"type": "string"}}),
]


class Person(BaseModel):
    """A person named in the text."""

    name: str
    age: int


EXPECTED_PERSON = Person(**PERSON)
# The prompts: a structured request whose mechanism carries no schema (json_object) must say
# JSON itself (DeepSeek requires it); one with a schema must not need to.
EXTRACT = "Extract the person: Ada Lovelace, who died at 36."
EXTRACT_JSON = "Extract the person as a JSON object with `name` and `age`: Ada Lovelace, who died at 36."


class Sent:
    """The JSON bodies a client posted to Maestro, caught by an httpx2 event hook."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def _hook(self, request: httpx2.Request) -> None:
        if request.method == "POST":
            self.bodies.append(json.loads(request.content))

    def http_client(self) -> httpx2.Client:
        return httpx2.Client(event_hooks={"request": [self._hook]}, timeout=30)

    def only(self) -> dict:
        assert len(self.bodies) == 1, f"the client made {len(self.bodies)} requests: {self.bodies}"
        return self.bodies[0]


def one_request(maestro, mark: int, key: str, shape: Shape) -> dict:  # noqa: ANN001 - conftest.Maestro
    """The one upstream request a test made with a `key` key: at `shape`'s path; its body."""
    requests = maestro.upstream.since(mark, key)
    assert len(requests) == 1, f"expected one upstream request with a {key} key, got {len(requests)}"
    assert requests[0]["path"] == shape.path
    return requests[0]["body"]


def system_texts(body: dict) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "system" and isinstance(m["content"], str)]


def without_system(body: dict) -> list[dict]:
    return [m for m in body["messages"] if m["role"] != "system"]


def schema_in(text: str) -> dict:
    """The JSON object a system message carries (the first `{…}` in it)."""
    assert "{" in text, f"no JSON schema in {text!r}"
    value, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
    return value


def check_tools_sent(shape: Shape, caller: dict, sent: dict) -> None:
    """The caller's tools reached the upstream, translated for its shape."""
    if shape is ANTHROPIC:
        offered = [{"name": t["name"], "input_schema": t["input_schema"]} for t in sent["tools"]]
        assert offered == [
            {"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in caller["tools"]
        ]
    else:
        assert sent["tools"] == caller["tools"]


def check_structured_sent(shape: Shape, caller: dict, sent: dict) -> None:
    """The caller's structured-output request as the upstream received it: OpenAI's as sent;
    Claude's as one forced tool whose input schema is the caller's; DeepSeek's as json_object
    with the schema in a system message (DeepSeek has no json_schema)."""
    assert sent.get("stream", False) is caller.get("stream", False)
    response_format = caller.get("response_format")
    forced = caller.get("tool_choice") if isinstance(caller.get("tool_choice"), dict) else None
    if response_format is not None:
        assert response_format["type"] in ("json_schema", "json_object")
        spec = response_format.get("json_schema") or {}
        if shape is OPENAI:
            assert sent["response_format"] == response_format
            assert sent["messages"] == caller["messages"]
        elif shape is ANTHROPIC:
            assert "response_format" not in sent
            name = spec.get("name", "json_output")
            [tool] = sent["tools"]
            assert tool["name"] == name
            if response_format["type"] == "json_schema":
                assert tool["input_schema"] == spec["schema"]
            else:
                assert tool["input_schema"] == {"type": "object", "additionalProperties": True}
            assert sent["tool_choice"] == {"type": "tool", "name": name}
        else:
            assert sent["response_format"] == {"type": "json_object"}
            if response_format["type"] == "json_schema":
                # The schema travels in a system message, which says JSON (DeepSeek insists).
                carried = [schema_in(t) for t in system_texts(sent) if "json" in t.lower() and "{" in t]
                assert carried == [spec["schema"]], system_texts(sent)
                assert without_system(sent) == without_system(caller)
            elif "json" in json.dumps(caller["messages"]).lower():
                assert sent["messages"] == caller["messages"]
            else:
                # A prompt that never says JSON gets a system line that does.
                assert any("json" in t.lower() for t in system_texts(sent)), system_texts(sent)
                assert without_system(sent) == without_system(caller)
    else:
        assert forced is not None and forced["type"] == "function", caller
        name = forced["function"]["name"]
        if shape is ANTHROPIC:
            [tool] = sent["tools"]
            [caller_tool] = caller["tools"]
            assert (tool["name"], tool["input_schema"]) == (name, caller_tool["function"]["parameters"])
            assert sent["tool_choice"]["type"] == "tool" and sent["tool_choice"]["name"] == name
        else:
            assert sent["tools"] == caller["tools"]
            assert sent["tool_choice"] == forced
