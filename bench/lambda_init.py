"""Lambda cost figures without AWS: runs a function's bootstrap against a minimal Lambda Runtime
API served here, and reports (1) init time, from process start to its first `next` request, with
the SDK clients built; (2) RSS after N invocations of a sample event from events/.

    python3 bench/lambda_init.py target/release/maestro-aggregator events/aggregator-sqs-batch.json [N]

AWS calls go to AWS_ENDPOINT_URL (moto, started by infra/moto.sh), with dummy credentials."""

import http.server
import json
import os
import subprocess
import sys
import threading
import time

binary, event_file = sys.argv[1], sys.argv[2]
invocations = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
event = open(event_file, "rb").read()
state = {"first_next": None, "served": 0, "responses": 0, "errors": 0, "done": threading.Event()}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if state["first_next"] is None:
            state["first_next"] = time.perf_counter()
        if state["served"] >= invocations:
            state["done"].set()
            time.sleep(3600)  # park the runtime's long poll, as the real API does between events
            return
        state["served"] += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(event)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", f"req-{state['served']}")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(event)

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # A streamed response (the chat function): read chunk by chunk to the last one.
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        else:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/error"):
            state["errors"] += 1
        else:
            state["responses"] += 1
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(
    os.environ,
    AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
    AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
    AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/bench", AWS_LAMBDA_LOG_STREAM_NAME="bench",
    AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
    MAESTRO_LOG="error",
)
env.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:5599")
env.setdefault("MAESTRO_LOG_QUEUE_URL", "http://127.0.0.1:5599/000000000000/maestro-logs")
env.setdefault("MAESTRO_JWT_SECRET", "bench-secret-bench-secret-bench-secret")
started = time.perf_counter()
child = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
while not state["done"].wait(timeout=0.2):
    if child.poll() is not None:
        sys.exit(f"{binary} exited with {child.returncode}: {child.stderr.read().decode()[-2000:]}")
rss_kib = 0
with open(f"/proc/{child.pid}/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
child.kill()
init_ms = (state["first_next"] - started) * 1000 if state["first_next"] else None
print(json.dumps({
    "binary": os.path.basename(binary), "size_mib": round(os.path.getsize(binary) / 2**20, 1),
    "init_ms": round(init_ms, 1) if init_ms else None, "invocations": state["served"],
    "responses": state["responses"], "errors": state["errors"], "rss_mib_after": round(rss_kib / 1024, 1),
}))
