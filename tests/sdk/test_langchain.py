"""LangChain (`langchain-openai`'s `ChatOpenAI`) against Maestro's `/v1/chat/completions`, for
OpenAI-, Anthropic- and DeepSeek-shaped upstreams: plain, streamed, tool calls (`bind_tools`)
and structured output (`with_structured_output`, each method, invoked and streamed)."""

from __future__ import annotations

import json
from functools import reduce
from operator import add

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from conftest import Maestro
from shapes import (
    ANTHROPIC,
    DEEPSEEK,
    EXPECTED_PERSON,
    EXTRACT,
    EXTRACT_JSON,
    OPENAI,
    SHAPES,
    TOOLS,
    Person,
    Sent,
    Shape,
    check_structured_sent,
    check_tools_sent,
    one_request,
)

# LangChain streams a json_schema answer through the openai SDK's parsed-completion types, whose
# `parsed` field pydantic then warns about: the library's noise, not Maestro's.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


def chat(maestro: Maestro, model: str, sent: Sent | None = None, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=f"{maestro.url}/v1",
        api_key=maestro.token,
        max_retries=0,
        timeout=30,
        http_client=(sent or Sent()).http_client(),
        **kwargs,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_invoke(maestro: Maestro, shape: Shape) -> None:
    mark, caller = maestro.upstream.mark(), Sent()
    message = chat(maestro, shape.model, caller, max_tokens=64).invoke("Hello!")
    assert message.content == shape.text
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata is not None
    assert (message.usage_metadata["input_tokens"], message.usage_metadata["output_tokens"]) == shape.usage
    sent = one_request(maestro, mark, shape.key, shape)
    assert sent["messages"] == [{"role": "user", "content": "Hello!"}]
    assert sent["model"] == shape.model.split("/")[1]
    # LangChain sends OpenAI's newer max_completion_tokens; DeepSeek and Anthropic take max_tokens.
    assert caller.only()["max_completion_tokens"] == 64
    if shape is OPENAI:
        assert sent["max_completion_tokens"] == 64
    else:
        assert sent["max_tokens"] == 64 and "max_completion_tokens" not in sent


@pytest.mark.parametrize("shape", SHAPES)
def test_stream(maestro: Maestro, shape: Shape) -> None:
    mark = maestro.upstream.mark()
    chunks = list(chat(maestro, shape.model, stream_usage=True).stream("Hello!"))
    assert len(chunks) > 1
    assert "".join(c.content for c in chunks) == shape.stream_text
    full = reduce(add, chunks)
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.usage_metadata is not None
    assert (full.usage_metadata["input_tokens"], full.usage_metadata["output_tokens"]) == shape.stream_usage
    assert one_request(maestro, mark, shape.key, shape)["stream"] is True


@pytest.mark.parametrize("shape", SHAPES)
def test_bind_tools_round_trip(maestro: Maestro, shape: Shape) -> None:
    mark, sent = maestro.upstream.mark(), Sent()
    llm = chat(maestro, shape.tool_model, sent).bind_tools(TOOLS)
    question = HumanMessage("What's the weather?")
    message = llm.invoke([question])
    call = shape.tool_call
    assert message.tool_calls == [{"name": call.name, "args": call.args, "id": call.id, "type": "tool_call"}]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    # DeepSeek says something as it calls.
    assert message.content == (DEEPSEEK.text if shape is DEEPSEEK else "")
    check_tools_sent(shape, sent.only(), one_request(maestro, mark, shape.tool_key, shape))

    # The tool's result goes back, as the provider's own tool-result turn.
    mark = maestro.upstream.mark()
    llm.invoke([question, message, ToolMessage("12°C and sunny", tool_call_id=call.id)])
    turns = one_request(maestro, mark, shape.tool_key, shape)["messages"]
    if shape is ANTHROPIC:
        assert [b["type"] for b in turns[1]["content"]] == ["tool_use"]
        assert (turns[1]["content"][0]["id"], turns[1]["content"][0]["input"]) == (call.id, call.args)
        assert turns[2] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "12°C and sunny"}],
        }
    else:
        [sent_call] = turns[1]["tool_calls"]
        assert (sent_call["id"], sent_call["function"]["name"]) == (call.id, call.name)
        assert json.loads(sent_call["function"]["arguments"]) == call.args
        assert turns[2] == {"role": "tool", "tool_call_id": call.id, "content": "12°C and sunny"}


@pytest.mark.parametrize("shape", SHAPES)
def test_bind_tools_streamed(maestro: Maestro, shape: Shape) -> None:
    mark, sent = maestro.upstream.mark(), Sent()
    chunks = list(chat(maestro, shape.tool_model, sent).bind_tools(TOOLS).stream("What's the weather?"))
    full = reduce(add, chunks)
    assert isinstance(full, AIMessageChunk)
    call = shape.stream_tool_call
    assert full.tool_calls == [{"name": call.name, "args": call.args, "id": call.id, "type": "tool_call"}]
    assert full.response_metadata["finish_reason"] == "tool_calls"
    check_tools_sent(shape, sent.only(), one_request(maestro, mark, shape.tool_key, shape))


# ChatOpenAI's default method is json_schema (response_format); function_calling forces a tool;
# json_mode asks for json_object with the schema left to the prompt.
METHODS = ["default", "json_schema", "function_calling", "json_mode"]


def structured(maestro: Maestro, shape: Shape, method: str, sent: Sent):  # noqa: ANN201 - a Runnable
    llm = chat(maestro, shape.model, sent)
    if method == "default":
        return llm.with_structured_output(Person)
    return llm.with_structured_output(Person, method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
def test_with_structured_output(maestro: Maestro, shape: Shape, method: str) -> None:
    mark, sent = maestro.upstream.mark(), Sent()
    prompt = EXTRACT_JSON if method == "json_mode" else EXTRACT
    person = structured(maestro, shape, method, sent).invoke(prompt)
    assert person == EXPECTED_PERSON
    caller = sent.only()
    if method in ("default", "json_schema"):
        assert caller["response_format"]["type"] == "json_schema"
    check_structured_sent(shape, caller, one_request(maestro, mark, shape.key, shape))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
def test_with_structured_output_streamed(maestro: Maestro, shape: Shape, method: str) -> None:
    mark, sent = maestro.upstream.mark(), Sent()
    prompt = EXTRACT_JSON if method == "json_mode" else EXTRACT
    outputs = list(structured(maestro, shape, method, sent).stream(prompt))
    assert outputs, "the stream gave nothing"
    assert outputs[-1] == EXPECTED_PERSON
    caller = sent.only()
    assert caller["stream"] is True
    check_structured_sent(shape, caller, one_request(maestro, mark, shape.key, shape))


@pytest.mark.parametrize("shape", SHAPES)
def test_structured_output_with_raw_message_and_usage(maestro: Maestro, shape: Shape) -> None:
    result = chat(maestro, shape.model).with_structured_output(Person, include_raw=True).invoke(EXTRACT)
    assert result["parsing_error"] is None
    assert result["parsed"] == EXPECTED_PERSON
    raw = result["raw"]
    assert raw.response_metadata["finish_reason"] == "stop"
    assert (raw.usage_metadata["input_tokens"], raw.usage_metadata["output_tokens"]) == shape.structured_usage


def test_json_mode_on_deepseek_without_the_word_json(maestro: Maestro) -> None:
    """DeepSeek refuses json_object unless the prompt says JSON (the fake too): Maestro says it
    when the caller did not."""
    mark, sent = maestro.upstream.mark(), Sent()
    person = chat(maestro, DEEPSEEK.model, sent).with_structured_output(Person, method="json_mode").invoke(EXTRACT)
    assert person == EXPECTED_PERSON
    upstream = one_request(maestro, mark, DEEPSEEK.key, DEEPSEEK)
    assert upstream["response_format"] == {"type": "json_object"}
    check_structured_sent(DEEPSEEK, sent.only(), upstream)
