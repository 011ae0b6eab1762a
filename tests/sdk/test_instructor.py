"""instructor over the official `openai` SDK against Maestro's `/v1/chat/completions`, for
OpenAI-, Anthropic- and DeepSeek-shaped upstreams. instructor's modes are its structured-output
mechanisms — `Mode.TOOLS` (a forced function call), `Mode.JSON_SCHEMA` (`response_format`
json_schema) and `Mode.JSON` (json_object, the schema in the prompt) — each run whole and
streamed (`create_partial`); with no `response_model` it passes plain calls through."""

from __future__ import annotations

import instructor
import openai
import pytest
from instructor import Mode

from conftest import PERSON, Maestro
from shapes import (
    ANTHROPIC,
    EXTRACT,
    SHAPES,
    Person,
    Sent,
    Shape,
    check_structured_sent,
    one_request,
)

MODES = [pytest.param(m, id=m.name) for m in (Mode.TOOLS, Mode.JSON_SCHEMA, Mode.JSON)]


def client(maestro: Maestro, mode: Mode, sent: Sent | None = None) -> instructor.Instructor:
    sdk = openai.OpenAI(
        base_url=f"{maestro.url}/v1",
        api_key=maestro.token,
        max_retries=0,
        timeout=30,
        http_client=(sent or Sent()).http_client(),
    )
    return instructor.from_openai(sdk, mode=mode)


def extract() -> list[dict]:
    return [{"role": "user", "content": EXTRACT}]


@pytest.mark.parametrize("shape", SHAPES)
def test_plain_call_passes_through(maestro: Maestro, shape: Shape) -> None:
    mark = maestro.upstream.mark()
    completion = client(maestro, Mode.TOOLS).chat.completions.create(
        model=shape.model, response_model=None, messages=[{"role": "user", "content": "Hello!"}]
    )
    assert completion.choices[0].message.content == shape.text
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == shape.usage
    sent = one_request(maestro, mark, shape.key, shape)
    assert "tools" not in sent and "response_format" not in sent


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_response_model(maestro: Maestro, shape: Shape, mode: Mode) -> None:
    mark, sent = maestro.upstream.mark(), Sent()
    person, completion = client(maestro, mode, sent).chat.completions.create_with_completion(
        model=shape.model, response_model=Person, messages=extract(), max_retries=1
    )
    # instructor answers with its own subclass of the response model.
    assert isinstance(person, Person) and person.model_dump() == PERSON
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == shape.structured_usage
    # A forced function comes back as its call; a response_format as the message's JSON text,
    # also from Claude, where Maestro turned it into a forced tool.
    expected_finish = "tool_calls" if mode is Mode.TOOLS else "stop"
    assert completion.choices[0].finish_reason == expected_finish
    caller = sent.only()
    expected_mechanism = {Mode.TOOLS: "tools", Mode.JSON_SCHEMA: "json_schema", Mode.JSON: "json_object"}[mode]
    assert (caller["response_format"]["type"] if "response_format" in caller else "tools") == expected_mechanism
    check_structured_sent(shape, caller, one_request(maestro, mark, shape.key, shape))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_create_partial_streams_the_object(maestro: Maestro, shape: Shape, mode: Mode) -> None:
    mark, sent = maestro.upstream.mark(), Sent()
    partials = list(
        client(maestro, mode, sent).chat.completions.create_partial(
            model=shape.model, response_model=Person, messages=extract(), max_retries=1
        )
    )
    assert partials[-1].model_dump() == PERSON
    # The object arrives piece by piece: the name before the age.
    assert any(p.name and p.age is None for p in partials[:-1]), partials
    caller = sent.only()
    assert caller["stream"] is True
    check_structured_sent(shape, caller, one_request(maestro, mark, shape.key, shape))


def test_tools_mode_through_claude_is_a_forced_tool(maestro: Maestro) -> None:
    """Mode.TOOLS on a Claude model: the function becomes Anthropic's tool and its forced choice."""
    mark = maestro.upstream.mark()
    person = client(maestro, Mode.TOOLS).chat.completions.create(
        model=ANTHROPIC.model, response_model=Person, messages=extract(), max_retries=1
    )
    assert isinstance(person, Person) and person.model_dump() == PERSON
    sent = one_request(maestro, mark, ANTHROPIC.key, ANTHROPIC)
    assert [t["name"] for t in sent["tools"]] == ["Person"]
    assert sent["tool_choice"]["type"] == "tool" and sent["tool_choice"]["name"] == "Person"
    assert sent["messages"] == [{"role": "user", "content": EXTRACT}]
