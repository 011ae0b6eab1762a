"""The Vercel AI SDK (`ai`, with `@ai-sdk/openai-compatible`'s chat-completions model) against
Maestro's `/v1/chat/completions`, for OpenAI-, Anthropic- and DeepSeek-shaped upstreams: plain
and streamed text, tool calls (`tools`, whole and streamed) and structured output with a zod
schema (`Output.object` through `generateText` / `streamText`, and `generateObject` /
`streamObject`).

Each case runs `node tests/sdk/node/ai_sdk.mjs <case> <model>` against this session's runner
and asserts on the JSON it prints, which includes the bodies the SDK posted to Maestro. The node
packages come from `npm ci` in tests/sdk/node (tests/sdk/run.sh runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PERSON, Maestro
from shapes import (
    DEEPSEEK,
    DEEPSEEK_REASONING,
    DEEPSEEK_STREAM_REASONING,
    SHAPES,
    Shape,
    check_structured_sent,
    check_tools_sent,
    one_request,
)

NODE_DIR = Path(__file__).resolve().parent / "node"


def ai_sdk(maestro: Maestro, case: str, model: str) -> dict:
    node = shutil.which("node")
    assert node, "node is needed for the Vercel AI SDK tests"
    assert (NODE_DIR / "node_modules" / "ai").is_dir(), "run `npm ci` in tests/sdk/node first (run.sh does)"
    env = {**os.environ, "MAESTRO_URL": maestro.url, "MAESTRO_TOKEN": maestro.token}
    done = subprocess.run(
        [node, str(NODE_DIR / "ai_sdk.mjs"), case, model],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"node ai_sdk.mjs {case} {model} exited {done.returncode}:\n{done.stderr}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    return result


def usage(result: dict) -> tuple[int, int]:
    return result["usage"]["inputTokens"], result["usage"]["outputTokens"]


def only_sent(result: dict) -> dict:
    assert len(result["sent"]) == 1, result["sent"]
    return result["sent"][0]


@pytest.mark.parametrize("shape", SHAPES)
def test_generate_text(maestro: Maestro, shape: Shape) -> None:
    mark = maestro.upstream.mark()
    result = ai_sdk(maestro, "text", shape.model)
    assert result["text"] == shape.text
    assert result["finishReason"] == "stop"
    assert usage(result) == shape.usage
    # DeepSeek's thinking (`reasoning_content`) is the SDK's reasoning.
    assert result["reasoning"] == (DEEPSEEK_REASONING if shape is DEEPSEEK else None)
    sent = one_request(maestro, mark, shape.key, shape)
    assert sent["messages"] == [{"role": "user", "content": "Hello!"}]


@pytest.mark.parametrize("shape", SHAPES)
def test_stream_text(maestro: Maestro, shape: Shape) -> None:
    mark = maestro.upstream.mark()
    result = ai_sdk(maestro, "stream", shape.model)
    assert "".join(result["deltas"]) == result["text"] == shape.stream_text
    assert result["finishReason"] == "stop"
    assert usage(result) == shape.stream_usage
    assert result["reasoning"] == (DEEPSEEK_STREAM_REASONING if shape is DEEPSEEK else None)
    assert only_sent(result)["stream_options"] == {"include_usage": True}
    assert one_request(maestro, mark, shape.key, shape)["stream"] is True


@pytest.mark.parametrize("case", ["tools", "stream-tools"])
@pytest.mark.parametrize("shape", SHAPES)
def test_tool_calls(maestro: Maestro, shape: Shape, case: str) -> None:
    mark = maestro.upstream.mark()
    result = ai_sdk(maestro, case, shape.tool_model)
    call = shape.tool_call if case == "tools" else shape.stream_tool_call
    assert result["toolCalls"] == [{"id": call.id, "name": call.name, "args": call.args}]
    assert result["finishReason"] == "tool-calls"
    # DeepSeek's recorded call comes with a sentence.
    assert result["text"] == (DEEPSEEK.text if shape is DEEPSEEK and case == "tools" else "")
    check_tools_sent(shape, only_sent(result), one_request(maestro, mark, shape.tool_key, shape))


@pytest.mark.parametrize("case", ["output", "generate-object", "stream-output", "stream-object"])
@pytest.mark.parametrize("shape", SHAPES)
def test_structured_output(maestro: Maestro, shape: Shape, case: str) -> None:
    mark = maestro.upstream.mark()
    result = ai_sdk(maestro, case, shape.model)
    assert result["object"] == PERSON
    assert result["finishReason"] == "stop"
    assert usage(result) == shape.structured_usage
    if case.startswith("stream"):
        # The object arrives piece by piece: the name before the age.
        assert any("name" in p and "age" not in p for p in result["partials"]), result["partials"]
        assert result["partials"][-1] == PERSON
    caller = only_sent(result)
    assert caller["response_format"]["type"] == "json_schema"
    check_structured_sent(shape, caller, one_request(maestro, mark, shape.key, shape))
