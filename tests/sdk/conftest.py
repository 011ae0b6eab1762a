"""End-to-end harness for the SDK and client-library tests.

Builds and starts the real local runner (`target/debug/maestro serve`) on a free port over a
temporary data directory, with a config whose providers point at a small fake upstream started
here: a stdlib HTTP server that answers OpenAI's `/v1/chat/completions`, DeepSeek's
`/chat/completions` (no `/v1`) and Anthropic's `/v1/messages` with the recorded fixtures in
shared/tests/fixtures, streaming and not, and OpenAI's `/v1/embeddings` with deterministic
vectors (`embedding_list`, as the Rust fake provider makes them). Like the Rust harness, the provider key decides the
answer:

    sk-ok-…    the recorded answer (or stream)
    sk-tool-…  the recorded tool call (or tool-call stream)
    sk-400-…   the provider refuses the request (400)
    anything else gets a 401

except for structured output, which is answered with the canned object `PERSON` whatever the
(valid) key:

    OpenAI/DeepSeek format, `response_format` json_schema or json_object
               `message.content` is PERSON's JSON text (streamed: split over several chunks)
    OpenAI/DeepSeek format, `tool_choice` forcing one function
               a call of that function whose arguments are PERSON
    Anthropic format, `tool_choice` `{"type": "tool", "name": X}`
               a `tool_use` block named X whose input is PERSON (streamed: `input_json_delta`s)

and, as DeepSeek does, a DeepSeek json_object request whose messages never say "json" is refused.
Every request is recorded (path, key, body) so tests can assert what Maestro sent.

Caller tokens come from `target/debug/maestro token --data <tmp>`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "shared" / "tests" / "fixtures"

# Environment the runner must not see: a real key or base URL would join the fake providers.
SCRUBBED_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "DEEPSEEK_API_KEY",
    "DEEPSEEK_BASE_URL",
    "MAESTRO_JWT_SECRET",
)


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def deepseek_plain_answer() -> bytes:
    """DeepSeek's recorded answer (text, `reasoning_content` and a tool call) without the tool
    call: what a DeepSeek model answers when it only talks."""
    completion = json.loads(fixture("deepseek/chat_completion.json"))
    del completion["choices"][0]["message"]["tool_calls"]
    completion["choices"][0]["finish_reason"] = "stop"
    return json.dumps(completion).encode()


# (non-streaming body, stream body) per key kind and upstream shape. DeepSeek's tool call is its
# recorded one; it has no recorded tool-call stream, so OpenAI's stands in (the same format).
ANSWERS = {
    ("ok", "openai"): (fixture("openai/chat_completion.json"), fixture("openai/chat_stream.sse")),
    ("ok", "deepseek"): (deepseek_plain_answer(), fixture("deepseek/stream.sse")),
    ("ok", "anthropic"): (fixture("anthropic/message.json"), fixture("anthropic/stream.sse")),
    ("tool", "openai"): (
        fixture("openai/chat_completion_tool_call.json"),
        fixture("openai/chat_stream_tool_call.sse"),
    ),
    ("tool", "deepseek"): (fixture("deepseek/chat_completion.json"), fixture("openai/chat_stream_tool_call.sse")),
    ("tool", "anthropic"): (fixture("anthropic/message_tool_use.json"), fixture("anthropic/stream_tool_use.sse")),
}
REFUSALS = {
    "openai": (400, "openai/error_400_invalid_request.json"),
    "deepseek": (400, "openai/error_400_invalid_request.json"),
    "anthropic": (400, "anthropic/error_400.json"),
}
UNAUTHORIZED = {
    "openai": (401, "openai/error_401.json"),
    "deepseek": (401, "deepseek/error_401.json"),
    "anthropic": (401, "anthropic/error_401.json"),
}

# The structured answer: it satisfies the tests' `Person` schema (a name and an integer age).
PERSON = {"name": "Ada Lovelace", "age": 36}
PERSON_JSON = json.dumps(PERSON)
# PERSON_JSON in the pieces a stream carries it in.
PERSON_PIECES = ['{"name": "Ada', ' Lovelace",', ' "age": ', "36}"]
assert "".join(PERSON_PIECES) == PERSON_JSON
# The usage the structured answers report (OpenAI's names, then Anthropic's).
STRUCTURED_USAGE = {"prompt_tokens": 42, "completion_tokens": 12, "total_tokens": 54}
STRUCTURED_ANTHROPIC_USAGE = {"input_tokens": 420, "output_tokens": 21}
# DeepSeek's refusal of a json_object request that never mentions JSON (its documented rule).
DEEPSEEK_JSON_WORD = "Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'."


def sse(events: list[dict], named: bool = False) -> bytes:
    """An event stream: `data:` lines (with `event:` lines, Anthropic's way, when `named`)."""
    out = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        out.append(f"{head}data: {json.dumps(event)}\n\n")
    if not named:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-structured-0001",
        "object": "chat.completion.chunk",
        "created": 1784592271,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(model: str) -> dict:
    return {**chunk(model, {}), "choices": [], "usage": STRUCTURED_USAGE}


def openai_structured(body: dict, streaming: bool) -> bytes:
    """`response_format` answered: PERSON as the message's JSON text."""
    model = body.get("model", "")
    if streaming:
        events = [chunk(model, {"role": "assistant", "content": ""})]
        events += [chunk(model, {"content": piece}) for piece in PERSON_PIECES]
        events += [chunk(model, {}, "stop"), usage_chunk(model)]
        return sse(events)
    message = {"role": "assistant", "content": PERSON_JSON}
    return json.dumps(completion(model, message, "stop")).encode()


def openai_forced_call(body: dict, name: str, streaming: bool) -> bytes:
    """A `tool_choice` forcing function `name` answered: its call with PERSON as arguments."""
    model = body.get("model", "")
    call_id = "call_structured_0001"
    if streaming:
        start = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        events = [chunk(model, {"role": "assistant", "content": None, "tool_calls": [start]})]
        events += [
            chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in PERSON_PIECES
        ]
        events += [chunk(model, {}, "tool_calls"), usage_chunk(model)]
        return sse(events)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": PERSON_JSON}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return json.dumps(completion(model, message, "tool_calls")).encode()


def completion(model: str, message: dict, finish: str) -> dict:
    return {
        "id": "chatcmpl-structured-0001",
        "object": "chat.completion",
        "created": 1784592271,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": STRUCTURED_USAGE,
    }


def anthropic_forced_tool(body: dict, name: str, streaming: bool) -> bytes:
    """A forced `tool_choice` answered: a `tool_use` of that tool whose input is PERSON."""
    model = body.get("model", "")
    tool_use = {"type": "tool_use", "id": "toolu_structured_0001", "name": name}
    if streaming:
        message = {
            "id": "msg_structured_0001",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": STRUCTURED_ANTHROPIC_USAGE["input_tokens"], "output_tokens": 1},
        }
        events = [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {**tool_use, "input": {}}},
            {"type": "ping"},
        ]
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}
            for piece in ["", *PERSON_PIECES]
        ]
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": STRUCTURED_ANTHROPIC_USAGE["output_tokens"]},
            },
            {"type": "message_stop"},
        ]
        return sse(events, named=True)
    message = {
        "id": "msg_structured_0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{**tool_use, "input": PERSON}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": STRUCTURED_ANTHROPIC_USAGE,
    }
    return json.dumps(message).encode()


# Vectors are this long unless the request names `dimensions`.
EMBEDDING_DIMENSIONS = 8


def embedding(item: object, dimensions: int) -> list[float]:
    """The fake's vector for one input item: multiples of 1/8 in [-1, 1), exact in float32, from
    the item's bytes (a text) or ids (a token array), as the Rust fake provider computes them."""
    if isinstance(item, str):
        seed = sum(item.encode())
    elif isinstance(item, list):
        seed = sum(i for i in item if isinstance(i, int))
    else:
        seed = len(json.dumps(item))
    return [((seed + 3 * j) % 16) / 8 - 1 for j in range(dimensions)]


def embedding_tokens(item: object) -> int:
    """Tokens billed for one item: a text's words (at least 1), a token array's length."""
    if isinstance(item, str):
        return max(1, len(item.split()))
    if isinstance(item, list):
        return len(item)
    return 1


def embedding_list(body: dict) -> bytes:
    """OpenAI's embedding list for `body`: `dimensions` honoured, `base64` as little-endian
    float32s, usage by `embedding_tokens`."""
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
    given = body.get("input")
    items = [given] if not isinstance(given, list) or (given and isinstance(given[0], int)) else given
    data = []
    for index, item in enumerate(items):
        vector = embedding(item, dimensions)
        if body.get("encoding_format") == "base64":
            encoded: object = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        else:
            encoded = vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(embedding_tokens(item) for item in items)
    answer = {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return json.dumps(answer).encode()


def forced_function(body: dict) -> str | None:
    """The function an OpenAI-format `tool_choice` forces, if it forces one."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        return (choice.get("function") or {}).get("name")
    return None


def mentions_json(body: dict) -> bool:
    return "json" in json.dumps(body.get("messages") or []).lower()


@dataclass
class Upstream:
    """The fake provider: its URL and every request it received."""

    url: str
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, key_prefix: str) -> list[dict]:
        with self.lock:
            return [r["body"] for r in self.requests if r["key"].startswith(key_prefix)]

    def last(self, key_prefix: str) -> dict:
        bodies = self.bodies(key_prefix)
        assert bodies, f"no upstream request with a {key_prefix} key"
        return bodies[-1]

    def mark(self) -> int:
        """Where the record stands now, for `since`."""
        with self.lock:
            return len(self.requests)

    def since(self, mark: int, key_prefix: str) -> list[dict]:
        """The requests (`path`, `key`, `body`) with a `key_prefix` key received after `mark`."""
        with self.lock:
            return [r for r in self.requests[mark:] if r["key"].startswith(key_prefix)]


def start_upstream() -> tuple[ThreadingHTTPServer, Upstream]:
    upstream = Upstream(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass

        def send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def answer(self, streaming: bool, body: bytes) -> None:
            if streaming:
                self.send(200, "text/event-stream; charset=utf-8", body)
            else:
                self.send(200, "application/json", body)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?")[0]
            if path.endswith("/embeddings"):
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                with upstream.lock:
                    upstream.requests.append({"path": path, "key": key, "body": body})
                kind = key.split("-")[1] if key.count("-") >= 2 else ""
                if kind != "ok" or not isinstance(body, dict):
                    status, error = REFUSALS["openai"] if kind == "400" else UNAUTHORIZED["openai"]
                    self.send(status, "application/json", fixture(error))
                    return
                self.send(200, "application/json", embedding_list(body))
                return
            if path.endswith("/chat/completions"):
                # DeepSeek's base URL has no /v1; OpenAI's (and the compatible providers' here) has.
                shape = "deepseek" if path == "/chat/completions" else "openai"
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
            elif path.endswith("/v1/messages"):
                shape = "anthropic"
                key = (self.headers.get("x-api-key") or "").strip()
            else:
                self.send(404, "application/json", b'{"error":{"message":"no such path","type":"not_found"}}')
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            with upstream.lock:
                upstream.requests.append({"path": path, "key": key, "body": body})
            kind = key.split("-")[1] if key.count("-") >= 2 else ""
            if (kind, shape) not in ANSWERS or not isinstance(body, dict):
                status, error = REFUSALS[shape] if kind == "400" else UNAUTHORIZED[shape]
                self.send(status, "application/json", fixture(error))
                return
            streaming = body.get("stream") is True
            if shape == "anthropic":
                choice = body.get("tool_choice")
                if isinstance(choice, dict) and choice.get("type") == "tool":
                    self.answer(streaming, anthropic_forced_tool(body, choice.get("name", ""), streaming))
                    return
            else:
                format_type = (body.get("response_format") or {}).get("type")
                if format_type in ("json_schema", "json_object"):
                    if shape == "deepseek" and format_type == "json_object" and not mentions_json(body):
                        error = {"error": {"message": DEEPSEEK_JSON_WORD, "type": "invalid_request_error"}}
                        self.send(400, "application/json", json.dumps(error).encode())
                        return
                    self.answer(streaming, openai_structured(body, streaming))
                    return
                forced = forced_function(body)
                if forced:
                    self.answer(streaming, openai_forced_call(body, forced, streaming))
                    return
            complete, stream = ANSWERS[(kind, shape)]
            self.answer(streaming, stream if streaming else complete)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, upstream


def runner_config(upstream: str) -> str:
    """Real providers redirected to the fake, plus small providers for tools, limits and refusals."""
    return f"""
[retry]
max_retries = 1
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 5000
deadline_ms = 20000

# The built-in providers (and their seeded models: gpt-5.4, gpt-4o, claude-sonnet-4-5, …).
[[providers]]
code = "openai"
kind = "openai"
base_url = "{upstream}/v1"
[[providers]]
code = "anthropic"
kind = "anthropic"
base_url = "{upstream}"
[[keys]]
provider = "openai"
name = "fake"
secret = "sk-ok-openai-fake-0001"
[[keys]]
provider = "anthropic"
name = "fake"
secret = "sk-ok-anthropic-fake-0001"

# DeepSeek (its seeded models: deepseek-v4-flash, deepseek-v4-pro), whose API has no /v1.
[[providers]]
code = "deepseek"
kind = "deepseek"
base_url = "{upstream}"
[[keys]]
provider = "deepseek"
name = "fake"
secret = "sk-ok-deepseek-fake-0001"

# Tool calls, one provider per format.
[[providers]]
code = "gpt-tools"
kind = "openai_compatible"
base_url = "{upstream}/v1"
[[models]]
provider = "gpt-tools"
model = "g-tools"
supports_tools = true
supports_vision = true
[[keys]]
provider = "gpt-tools"
name = "fake"
secret = "sk-tool-gpt-0001"
[[providers]]
code = "claude-tools"
kind = "anthropic"
base_url = "{upstream}"
[[models]]
provider = "claude-tools"
model = "c-tools"
supports_tools = true
supports_vision = true
[[keys]]
provider = "claude-tools"
name = "fake"
secret = "sk-tool-claude-0001"

[[providers]]
code = "deepseek-tools"
kind = "deepseek"
base_url = "{upstream}"
[[models]]
provider = "deepseek-tools"
model = "ds-tools"
supports_tools = true
[[keys]]
provider = "deepseek-tools"
name = "fake"
secret = "sk-tool-deepseek-0001"

# One request a minute, one provider per SDK, so each SDK sees its own 429.
[[providers]]
code = "limited-openai"
kind = "openai_compatible"
base_url = "{upstream}/v1"
[[models]]
provider = "limited-openai"
model = "slow-lane"
[[keys]]
provider = "limited-openai"
name = "one-a-minute"
secret = "sk-ok-limited-openai-01"
rpm = 1
[[providers]]
code = "limited-anthropic"
kind = "anthropic"
base_url = "{upstream}"
[[models]]
provider = "limited-anthropic"
model = "slow-lane"
[[keys]]
provider = "limited-anthropic"
name = "one-a-minute"
secret = "sk-ok-limited-anthropic-01"
rpm = 1

# A provider that refuses every request with a 400.
[[providers]]
code = "picky"
kind = "openai_compatible"
base_url = "{upstream}/v1"
[[models]]
provider = "picky"
model = "p1"
[[keys]]
provider = "picky"
name = "fake"
secret = "sk-400-picky-0001"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


@dataclass
class Maestro:
    """A running local runner."""

    url: str
    binary: Path
    data: Path
    token: str
    admin_token: str
    upstream: Upstream
    log: Path

    def issue_token(self, sub: str, admin: bool = False) -> str:
        args = [str(self.binary), "token", "--data", str(self.data), "--sub", sub]
        if admin:
            args.append("--admin")
        out = subprocess.run(args, check=True, capture_output=True, text=True, env=runner_env(), timeout=60)
        return out.stdout.strip()

    def admin_get(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.admin_token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def logs_of(self, user_id: str, expected: int, timeout: float = 10.0) -> list[dict]:
        """The call logs of one caller, once `expected` of them are recorded (or the time is up)."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.admin_get(f"/api/admin/ai-stats/logs?user_id={user_id}&limit=100")["data"]
            if len(logs) >= expected or time.monotonic() > deadline:
                return logs
            time.sleep(0.05)


def runner_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.setdefault("MAESTRO_LOG", "info")
    return env


def build_binary() -> Path:
    binary = target_dir() / "debug" / "maestro"
    if os.environ.get("MAESTRO_SKIP_BUILD") != "1":
        cargo = shutil.which("cargo")
        assert cargo, "cargo is needed to build the runner (or set MAESTRO_SKIP_BUILD=1 with a built binary)"
        subprocess.run([cargo, "build", "-p", "maestro"], cwd=REPO, check=True, timeout=3000)
    assert binary.exists(), f"{binary} was not built"
    return binary


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"maestro serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"maestro serve did not become healthy in {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def maestro() -> Iterator[Maestro]:
    binary = build_binary()
    server, upstream = start_upstream()
    workdir = Path(tempfile.mkdtemp(prefix="maestro-sdk-"))
    data = workdir / "data"
    config = workdir / "maestro.toml"
    config.write_text(runner_config(upstream.url))
    log = workdir / "maestro.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [str(binary), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}", "--config", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=runner_env(),
        )
    try:
        wait_healthy(url, process, log)
        running = Maestro(url=url, binary=binary, data=data, token="", admin_token="", upstream=upstream, log=log)
        running.token = running.issue_token("sdk-tests")
        running.admin_token = running.issue_token("sdk-admin", admin=True)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.shutdown()
        server.server_close()
        if process.returncode not in (0, -signal.SIGINT):
            print(f"maestro serve exited with {process.returncode}; its log:\n{log.read_text()}")
        shutil.rmtree(workdir, ignore_errors=True)
