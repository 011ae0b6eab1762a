"""End-to-end harness for the official SDK tests.

Builds and starts the real local runner (`target/debug/maestro serve`) on a free port over a
temporary data directory, with a config whose providers point at a small fake upstream started
here: a stdlib HTTP server that answers OpenAI's `/chat/completions` and Anthropic's
`/v1/messages` with the recorded fixtures in shared/tests/fixtures, streaming and not. Like the
Rust harness, the provider key decides the answer:

    sk-ok-…    the recorded answer (or stream)
    sk-tool-…  the recorded tool call (or tool-call stream)
    sk-400-…   the provider refuses the request (400)
    anything else gets a 401

Caller tokens come from `target/debug/maestro token --data <tmp>`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
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


# (non-streaming body, stream body) per key kind and wire format.
ANSWERS = {
    ("ok", "openai"): ("openai/chat_completion.json", "openai/chat_stream.sse"),
    ("ok", "anthropic"): ("anthropic/message.json", "anthropic/stream.sse"),
    ("tool", "openai"): ("openai/chat_completion_tool_call.json", "openai/chat_stream_tool_call.sse"),
    ("tool", "anthropic"): ("anthropic/message_tool_use.json", "anthropic/stream_tool_use.sse"),
}
REFUSALS = {
    "openai": (400, "openai/error_400_invalid_request.json"),
    "anthropic": (400, "anthropic/error_400.json"),
}
UNAUTHORIZED = {
    "openai": (401, "openai/error_401.json"),
    "anthropic": (401, "anthropic/error_401.json"),
}


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

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?")[0]
            if path.endswith("/chat/completions"):
                wire = "openai"
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
            elif path.endswith("/v1/messages"):
                wire = "anthropic"
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
            streaming = isinstance(body, dict) and body.get("stream") is True
            if (kind, wire) in ANSWERS:
                complete, stream = ANSWERS[(kind, wire)]
                if streaming:
                    self.send(200, "text/event-stream; charset=utf-8", fixture(stream))
                else:
                    self.send(200, "application/json", fixture(complete))
                return
            status, error = REFUSALS[wire] if kind == "400" else UNAUTHORIZED[wire]
            self.send(status, "application/json", fixture(error))

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
