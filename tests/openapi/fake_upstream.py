"""A stand-in for every provider while schemathesis runs: whatever Maestro asks upstream (a model
list, a chat completion, an Anthropic message, embeddings) gets a well-formed answer from the recorded
fixtures, so a fuzzed request that happens to reach a provider never turns into a 502 for want of
a network. Prints its port on the first line of stdout.

    python3 tests/openapi/fake_upstream.py
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "tests" / "fixtures"
# One embedding in OpenAI's list shape, whatever was asked (the schema is what is checked).
EMBEDDINGS = json.dumps(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}],
        "model": "fake-embedding",
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
)
MODELS = json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}], "has_more": False})


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0].endswith("/models"):
            self._send(200, MODELS.encode())
        else:
            self._send(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            stream = bool(json.loads(body or b"{}").get("stream"))
        except (ValueError, AttributeError):
            stream = False
        path = self.path.split("?")[0]
        if path.endswith("/embeddings"):
            self._send(200, EMBEDDINGS.encode())
            return
        if path.endswith("/v1/messages"):
            name = "anthropic/stream.sse" if stream else "anthropic/message.json"
        elif path.endswith("/chat/completions"):
            name = "openai/chat_stream.sse" if stream else "openai/chat_completion.json"
        else:
            self._send(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
            return
        content_type = "text/event-stream" if stream else "application/json"
        self._send(200, (FIXTURES / name).read_bytes(), content_type)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
