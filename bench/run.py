"""Maestro's benchmark harness: every figure of bench/RESULTS.md from one run.

1. Gateway overhead: each scenario runs against the mock upstream directly and through the
   gateway in the same run (wrk; gateway on core 0, load and upstream on core 1), so the figures
   are what Maestro adds: requests/s, p50/p99 added, gateway CPU per request (from /proc), peak RSS.
2. Streaming time to first byte, direct and through the gateway.
3. Lambda bootstraps: size, init time (process start to the first `next`, against a minimal
   Runtime API, bench/lambda_init.py) and RSS after 1,000 invocations, AWS calls going to moto.
4. AWS requests per chat call, counted at the SDK against moto (shared/tests/aws_cost.rs).
5. Reliability: `kill -9` under load (every answered call must be in the log and the stats after
   a restart) and hostile slow clients (RSS and /health latency while they hold connections).

    python3 bench/run.py            (bench/run.sh builds first; QUICK=1 for 3-second runs)
    python3 bench/run.py --smoke    (CI: a few seconds per part, debug builds, nothing written
                                     to bench/RESULTS.md; fails if any part fails)
"""

import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "--smoke" in sys.argv
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "debug" if SMOKE else "release")
LAMBDA_BIN = os.path.join(TARGET, "debug" if SMOKE else "bench-lambda")
DURATION = "1s" if SMOKE else ("3s" if os.environ.get("QUICK") else "10s")
INVOCATIONS = 20 if SMOKE else 1000
GATEWAY_CORE, LOAD_CORE = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MOTO = "http://127.0.0.1:5599"
JWT_SECRET = "bench-secret-bench-secret-bench-secret"

# The targets of the benchmark issue, checked in RESULTS.md.
TARGETS = {
    "rps_c50": 10_000, "cpu_us_c50": 100, "p50_added_c1_us": 200, "p99_added_c10_us": 1000,
    "ttfb_added_us": 500, "rss_c50_mib": 50, "lambda_size_mb": 10, "lambda_init_ms": 30, "lambda_rss_mib": 40,
}


def wait_port(port, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5)
            return
        except urllib.error.HTTPError:
            return  # something answers
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def to_us(text):
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise RuntimeError(f"unreadable wrk latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1_000_000, "m": 60_000_000}[unit]


def wrk(url, connections, body, token, headers=None):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    )
    script.close()
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{DURATION}", "--latency", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script.name)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses from {url}:\n{out}")
    if requests == 0:
        raise RuntimeError(f"no request completed against {url}:\n{out}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_us": to_us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_us": to_us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "requests": requests,
    }


def start(args, core, env=None):
    return subprocess.Popen(["taskset", "-c", core] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def config(upstream_port):
    keys = "".join(
        f'\n[[keys]]\nprovider = "{p}"\nname = "k{i}"\nsecret = "sk-bench-{p}-{i:04d}"\nrpm = 100000000\ntpm = 100000000000\nrpd = 1000000000\n'
        for p in ("mock", "mock-claude") for i in range(4)
    )
    return f"""
[retry]
attempt_timeout_ms = 10000
[[providers]]
code = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:{upstream_port}"
[[providers]]
code = "mock-claude"
kind = "anthropic"
base_url = "http://127.0.0.1:{upstream_port}"
[[models]]
provider = "mock"
model = "gpt-4o-mini"
max_output_tokens = 16384
input_price = 150000
output_price = 600000
[[models]]
provider = "mock-claude"
model = "claude-sonnet-4-5"
max_output_tokens = 64000
input_price = 3000000
output_price = 15000000
{keys}"""


def gateway_figures():
    """Parts 1 and 2: wrk scenarios and streaming TTFB, each against direct-to-upstream; and the
    response cache: the same request answered by the upstream (a miss each time, cache off) and
    from the cache (a hit each time, after the first)."""
    results, ttfb, cache = [], None, []
    body = lambda model: {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello!"}]}
    for delay in ((0,) if SMOKE else (0, 50)):
        port = 9100 + delay
        upstream = start([f"{BIN}/mock-upstream", "--listen", f"127.0.0.1:{port}", "--delay-ms", str(delay)], LOAD_CORE)
        data = tempfile.mkdtemp(prefix="maestro-bench-")
        cfg = os.path.join(data, "bench.toml")
        with open(cfg, "w") as f:
            f.write(config(port))
        env = dict(os.environ, MAESTRO_LOG="warn", MAESTRO_JWT_SECRET=JWT_SECRET)
        for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"):
            env.pop(var, None)
        gateway = start([f"{BIN}/maestro", "serve", "--listen", "127.0.0.1:8787", "--data", data, "--config", cfg], GATEWAY_CORE, env)
        try:
            wait_port(8787)
            wait_port(port)
            time.sleep(0.3)
            token = subprocess.run([f"{BIN}/maestro", "token", "--data", data], env=env, capture_output=True, text=True, check=True).stdout.strip()
            scenarios = [("openai, non-streaming", "mock/gpt-4o-mini", f"http://127.0.0.1:{port}/chat/completions")]
            scenarios.append(("anthropic translation", "mock-claude/claude-sonnet-4-5", f"http://127.0.0.1:{port}/v1/messages"))
            for name, model, direct_url in scenarios:
                levels = (1, 10, 50) if name.startswith("openai") else (50,)
                for c in ((1, 10) if SMOKE else levels):
                    direct = wrk(direct_url, c, body(model.split("/")[1]), token)
                    before = cpu_ticks(gateway.pid)
                    via = wrk("http://127.0.0.1:8787/v1/chat/completions", c, body(model), token)
                    cpu_s = (cpu_ticks(gateway.pid) - before) / CLK_TCK
                    results.append({
                        "scenario": name, "delay_ms": delay, "concurrency": c,
                        "direct_rps": direct["rps"], "gateway_rps": via["rps"],
                        "p50_added_us": via["p50_us"] - direct["p50_us"], "p99_added_us": via["p99_us"] - direct["p99_us"],
                        "cpu_us_per_request": cpu_s * 1e6 / max(via["requests"], 1),
                        "peak_rss_mib": peak_rss_kib(gateway.pid) / 1024,
                    })
                    print(json.dumps(results[-1]), flush=True)
            for c in ((1,) if SMOKE else (1, 10)):
                model = "mock/gpt-4o-mini"
                direct = wrk(f"http://127.0.0.1:{port}/chat/completions", c, body("gpt-4o-mini"), token)
                gateway_url = "http://127.0.0.1:8787/v1/chat/completions"
                miss = wrk(gateway_url, c, body(model), token, {"x-maestro-cache": "off"})
                hit = wrk(gateway_url, c, body(model), token, {"x-maestro-cache": "on"})
                cache.append({
                    "delay_ms": delay, "concurrency": c,
                    "direct_p50_us": direct["p50_us"], "miss_p50_us": miss["p50_us"], "hit_p50_us": hit["p50_us"],
                    "direct_p99_us": direct["p99_us"], "miss_p99_us": miss["p99_us"], "hit_p99_us": hit["p99_us"],
                    "direct_rps": direct["rps"], "miss_rps": miss["rps"], "hit_rps": hit["rps"],
                })
                print(json.dumps({"cache": cache[-1]}), flush=True)
            if delay == 0:
                probe = lambda url, model: json.loads(subprocess.run(
                    ["taskset", "-c", LOAD_CORE, f"{BIN}/ttfb", "--url", url, "--token", token, "--model", model],
                    capture_output=True, text=True, check=True).stdout)
                direct = probe(f"http://127.0.0.1:{port}/chat/completions", "gpt-4o-mini")
                via = probe("http://127.0.0.1:8787/v1/chat/completions", "mock/gpt-4o-mini")
                ttfb = {"direct_p50_us": direct["p50_us"], "gateway_p50_us": via["p50_us"], "added_p50_us": via["p50_us"] - direct["p50_us"],
                        "added_p99_us": via["p99_us"] - direct["p99_us"]}
                print(json.dumps({"ttfb": ttfb}), flush=True)
        finally:
            gateway.send_signal(signal.SIGINT)
            gateway.wait(timeout=15)
            upstream.kill()
            shutil.rmtree(data, ignore_errors=True)
    return results, ttfb, cache


def moto_running():
    try:
        urllib.request.urlopen(f"{MOTO}/moto-api/", timeout=1)
        return True
    except Exception:
        return False


# Each function's bootstrap and the sample event it is invoked with (from events/).
LAMBDAS = [
    ("maestro-chat", "chat-function-url-models.json", "catalog from DynamoDB, response streaming"),
    ("maestro-admin", "admin-http-api-list-providers.json", "catalog listing from DynamoDB"),
    ("maestro-stats", "stats-http-api-usage-by-provider.json", "a stats query on DynamoDB"),
    ("maestro-aggregator", "aggregator-sqs-batch.json", "real transactions on moto"),
    ("maestro-rollup", "rollup-eventbridge-scheduled.json", "key cool-down recovery on DynamoDB"),
]


def lambda_figures():
    """Part 3: each function's bootstrap against a minimal Runtime API, AWS on moto."""
    env = dict(os.environ, AWS_ENDPOINT_URL=MOTO, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", MAESTRO_TABLE=f"maestro-bench-{os.getpid()}", MAESTRO_ADMIN_AUTH="authorizer",
               MAESTRO_JWT_SECRET=JWT_SECRET)
    # The table and queues the functions use, as a deploy creates them.
    init = subprocess.run([f"{BIN}/maestro", "init-aws", "--queue", f"maestro-bench-{os.getpid()}"], env=env,
                          capture_output=True, text=True, check=True).stdout
    for line in init.splitlines():
        match = re.match(r"export (\w+)=(.*)", line)
        if match:
            env[match.group(1)] = match.group(2)
    figures = []
    for name, event, what in (LAMBDAS[3:4] if SMOKE else LAMBDAS):
        binary = os.path.join(LAMBDA_BIN, name)
        runs = []
        for i in range(1 if SMOKE else 3):
            out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "lambda_init.py"), binary,
                                  os.path.join(ROOT, "events", event), str(INVOCATIONS if i == 0 else 1)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        first = runs[0]
        if first["responses"] + first["errors"] != INVOCATIONS:
            raise RuntimeError(f"{name}: {first}")
        figures.append({"function": name, "event": event, "what": what, "size_mb": round(os.path.getsize(binary) / 1e6, 1),
                        "init_ms": [r["init_ms"] for r in runs], "invocations": first["invocations"],
                        "errors": first["errors"], "rss_mib_after": first["rss_mib_after"]})
        print(json.dumps(figures[-1]), flush=True)
    return figures


def aws_cost():
    """Part 4: AWS requests per chat call, counted by shared/tests/aws_cost.rs against moto."""
    env = dict(os.environ, MAESTRO_TEST_AWS_ENDPOINT=MOTO)
    out = subprocess.run(["cargo", "test", "-q", "-p", "maestro-shared", "--test", "integration", "aws_cost", "--", "--nocapture"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    match = re.search(r"^BENCH_AWS_COST (.*)$", out.stderr + out.stdout, re.M)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"aws_cost failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    cost = json.loads(match.group(1))
    units = re.search(r"^BENCH_AWS_UNITS (.*)$", out.stderr + out.stdout, re.M)
    if not units:
        raise RuntimeError(f"aws_cost printed no write units:\n{out.stderr[-3000:]}")
    cost["units"] = json.loads(units.group(1))
    print(json.dumps({"aws_cost": cost}), flush=True)
    return cost


# Write units per call before the write-unit work (commit 6729585, the same test), for the
# before/after table; the "after" row is measured in every run.
UNITS_BEFORE = {"write_units_per_call": 13.0, "hottest_partition": "USE#<key>#M#<minute>",
                "hottest_partition_units_per_call": 3.0,
                "by_item": "minute 3.0, day 3.0, REQ# 2.0, LOG# 2.0, STAT# 2.0, key item 1.0"}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def chat_once(port, token, i):
    """One chat call; the request id when the whole answer arrived with a 200, else None."""
    body = json.dumps({"model": "mock/gpt-4o-mini", "max_tokens": 16, "stream": i % 3 == 0,
                       "messages": [{"role": "user", "content": f"call {i}"}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            r.read()
            return r.headers.get("x-request-id") if r.status == 200 else None
    except Exception:
        return None


def health_ms(port):
    started = time.perf_counter()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read()
    except Exception:
        return None
    return (time.perf_counter() - started) * 1000


def reliability_figures():
    """Part 5: the crash test and the slow-client test behind the README's reliability section."""
    port, gw = 9200, 8788
    upstream = start([f"{BIN}/mock-upstream", "--listen", f"127.0.0.1:{port}", "--delay-ms", "0"], LOAD_CORE)
    data = tempfile.mkdtemp(prefix="maestro-bench-reliability-")
    cfg = os.path.join(data, "bench.toml")
    with open(cfg, "w") as f:
        f.write(("[server]\nheader_timeout_secs = 1\n" if SMOKE else "") + config(port))
    env = dict(os.environ, MAESTRO_LOG="error", MAESTRO_JWT_SECRET=JWT_SECRET)
    serve = lambda: start([f"{BIN}/maestro", "serve", "--listen", f"127.0.0.1:{gw}", "--data", data, "--config", cfg], GATEWAY_CORE, env)
    gateway = serve()
    figures = {}
    try:
        wait_port(gw)
        wait_port(port)
        token = subprocess.run([f"{BIN}/maestro", "token", "--data", data], env=env, capture_output=True, text=True, check=True).stdout.strip()

        # Crash: 16 callers in a loop, then SIGKILL mid-load; restart; compare.
        answered, stop = [], threading.Event()
        def caller(n):
            i = n
            while not stop.is_set():
                rid = chat_once(gw, token, i)
                if rid:
                    answered.append(rid)
                i += 16
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        time.sleep(1 if SMOKE else 3)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait()
        stop.set()
        for t in threads:
            t.join()
        gateway = serve()
        wait_port(gw)
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
        db = sqlite3.connect(os.path.join(data, "maestro.db"))
        logged = {row[0] for row in db.execute("SELECT request_id FROM api_logs")}
        stats = db.execute("SELECT COALESCE(SUM(requests), 0) FROM usage_stats").fetchone()[0]
        db.close()
        missing = [r for r in answered if r not in logged]
        figures["crash"] = {"answered_200": len(answered), "logged": len(logged), "missing": len(missing), "stats_requests": stats}
        if missing or stats != len(logged) or not answered:
            raise RuntimeError(f"crash test failed: {figures['crash']}")

        # Slow clients: idle connections and unauthenticated bodies trickling in, while /health is timed.
        gateway = serve()
        wait_port(gw)
        idle_n, trickle_n = (200, 100) if SMOKE else (2000, 1000)
        rss_before = rss_kib(gateway.pid)
        baseline = sorted(h for h in (health_ms(gw) for _ in range(20)) if h is not None)
        idle, trickle = [], []
        for _ in range(idle_n):
            s = socket.create_connection(("127.0.0.1", gw))
            idle.append(s)
        head = ("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                "content-length: 1000000\r\n\r\n{").encode()
        for _ in range(trickle_n):
            s = socket.create_connection(("127.0.0.1", gw))
            s.sendall(head)
            s.setblocking(False)
            trickle.append(s)
        during, refused_early = [], 0
        for _ in range(10):
            for s in trickle:
                try:
                    s.send(b" ")
                except OSError:
                    pass
            h = health_ms(gw)
            if h is not None:
                during.append(h)
            time.sleep(0.1)
        for s in trickle:
            try:
                s.setblocking(True)
                s.settimeout(0.5)
                if s.recv(64).startswith(b"HTTP/1.1 401"):
                    refused_early += 1
            except OSError:
                pass
        rss_during = rss_kib(gateway.pid)
        time.sleep(1.5 if SMOKE else 11)  # past the header timeout: idle connections are closed
        closed = 0
        for s in idle:
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except OSError:
                closed += 1
        for s in idle + trickle:
            s.close()
        during.sort()
        figures["slow_clients"] = {
            "idle_connections": idle_n, "trickling_unauthenticated": trickle_n,
            "trickle_refused_401_before_body": refused_early, "idle_closed_after_timeout": closed,
            "health_p50_ms_before": round(baseline[len(baseline) // 2], 2) if baseline else None,
            "health_max_ms_during": round(during[-1], 2) if during else None,
            "health_answered_during": len(during),
            "rss_mib_before": round(rss_before / 1024, 1), "rss_mib_during": round(rss_during / 1024, 1),
        }
        if len(during) < 10 or closed < idle_n:
            raise RuntimeError(f"slow-client test failed: {figures['slow_clients']}")
    finally:
        for proc in (gateway, upstream):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(figures), flush=True)
    return figures


def main():
    started_moto = False
    if not moto_running():
        subprocess.run(["bash", os.path.join(ROOT, "infra", "moto.sh")], check=True)
        started_moto = True
    try:
        results, ttfb, cache = gateway_figures()
        reliability = reliability_figures()
        lambdas = lambda_figures()
        cost = None if SMOKE else aws_cost()
    finally:
        if started_moto:
            pid_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), "maestro-moto", "moto.pid")
            try:
                os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    text = render(results, ttfb, lambdas, cost, reliability, cache)
    if SMOKE:
        print("bench smoke: every part ran (figures from debug builds, not written to bench/RESULTS.md)")
        return 0
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


def met(ok):
    return "yes" if ok else "**no**"


def render(results, ttfb, lambdas, cost, reliability, cache):
    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.+)", cpu)
    at = lambda scenario, delay, c: next((r for r in results if r["scenario"] == scenario and r["delay_ms"] == delay and r["concurrency"] == c), None)
    c50, c1, c10 = at("openai, non-streaming", 0, 50), at("openai, non-streaming", 0, 1), at("openai, non-streaming", 0, 10)
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with `bash bench/run.sh` ({DURATION} per run) on "
        f"{model.group(1) if model else platform.processor()}, {os.cpu_count()} cores, Linux {platform.release()}.",
        "Every figure below comes from this one run.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    if c50 and c1 and c10:
        lines += [
            f"| ≥ 10,000 requests/s at concurrency 50 | {c50['gateway_rps']:,.0f} | {met(c50['gateway_rps'] >= TARGETS['rps_c50'])} |",
            f"| ≤ 100 µs gateway CPU per request (c=50) | {c50['cpu_us_per_request']:.1f} µs | {met(c50['cpu_us_per_request'] <= TARGETS['cpu_us_c50'])} |",
            f"| p50 added ≤ 0.2 ms at concurrency 1 | {c1['p50_added_us']:.0f} µs | {met(c1['p50_added_us'] <= TARGETS['p50_added_c1_us'])} |",
            f"| p99 added ≤ 1 ms at concurrency 10 | {c10['p99_added_us']:.0f} µs | {met(c10['p99_added_us'] <= TARGETS['p99_added_c10_us'])} |",
            f"| streaming TTFB added ≤ 0.5 ms | {ttfb['added_p50_us']} µs (p50) | {met(ttfb['added_p50_us'] <= TARGETS['ttfb_added_us'])} |",
            f"| peak RSS ≤ 50 MB under the c=50 run | {c50['peak_rss_mib']:.1f} MiB | {met(c50['peak_rss_mib'] <= TARGETS['rss_c50_mib'])} |",
        ]
    for l in lambdas:
        lines.append(f"| `{l['function']}` bootstrap ≤ 10 MB, init ≤ 30 ms, RSS ≤ 40 MB after {l['invocations']:,} | "
                     f"{l['size_mb']} MB, {max(l['init_ms'])} ms worst of {len(l['init_ms'])}, {l['rss_mib_after']} MiB | "
                     f"{met(l['size_mb'] <= TARGETS['lambda_size_mb'] and max(l['init_ms']) <= TARGETS['lambda_init_ms'] and l['rss_mib_after'] <= TARGETS['lambda_rss_mib'])} |")
    if cost:
        warm = cost["warm"]
        reads = sum(v for k, v in warm.items() if any(op in k for op in ("GetItem", "Query", "Scan", "BatchGetItem", "GetSecretValue")))
        writes = sum(v for k, v in warm.items() if k.startswith("DynamoDB") and any(op in k for op in ("Put", "Update", "TransactWrite", "Delete")))
        sends = sum(v for k, v in warm.items() if k.startswith("SQS Send"))
        lines.append(f"| warm chat call: 0 reads, ≤ 3 writes, ≤ 1 SQS send | {reads} reads, {writes} writes, {sends} sends | "
                     f"{met(reads == 0 and writes <= 3 and sends <= 1)} |")
    lines += [
        "",
        "## Gateway overhead",
        "",
        "Gateway (`maestro serve`, embedded backend, data dir on the machine's disk, 4 keys per provider with rpm/tpm/rpd",
        "limits on) pinned to core 0; wrk and the mock upstream pinned to core 1. Each row is measured against",
        "direct-to-upstream in the same run.",
        "",
        "| scenario | upstream delay | concurrency | direct req/s | via Maestro req/s | p50 added | p99 added | gateway CPU / request | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['delay_ms']} ms | {r['concurrency']} | {r['direct_rps']:,.0f} | {r['gateway_rps']:,.0f} | "
            f"{r['p50_added_us']:.0f} µs | {r['p99_added_us']:.0f} µs | {r['cpu_us_per_request']:.1f} µs | {r['peak_rss_mib']:.1f} MiB |"
        )
    if ttfb:
        lines += ["", f"Streaming time to first byte (sequential requests): direct p50 {ttfb['direct_p50_us']} µs, via Maestro p50 "
                  f"{ttfb['gateway_p50_us']} µs: **{ttfb['added_p50_us']} µs added at p50**, {ttfb['added_p99_us']} µs at p99."]
    if cache:
        lines += [
            "",
            "## Response cache",
            "",
            "The same request, over and over, as in the rows above: straight to the mock upstream; through Maestro with",
            "`x-maestro-cache: off` (the upstream answers every call, a miss's path without the store); and through Maestro",
            "with `x-maestro-cache: on` (after the first call every one is a hit: one SQLite read, no key, no upstream).",
            "",
            "| upstream delay | concurrency | direct p50 / p99 | miss p50 / p99 | hit p50 / p99 | direct / miss / hit req/s |",
            "|---|---|---|---|---|---|",
        ]
        for r in cache:
            lines.append(
                f"| {r['delay_ms']} ms | {r['concurrency']} | {r['direct_p50_us']:.0f} / {r['direct_p99_us']:.0f} µs | "
                f"{r['miss_p50_us']:.0f} / {r['miss_p99_us']:.0f} µs | **{r['hit_p50_us']:.0f}** / {r['hit_p99_us']:.0f} µs | "
                f"{r['direct_rps']:,.0f} / {r['miss_rps']:,.0f} / {r['hit_rps']:,.0f} |"
            )
    crash, slow = reliability["crash"], reliability["slow_clients"]
    lines += [
        "",
        "## Reliability",
        "",
        "Crash: 16 callers in a loop (a third of the calls streamed), the gateway killed with SIGKILL mid-load, restarted",
        "on the same data dir; every call a caller saw answered 200 in full is looked up in `api_logs`, and the daily stats",
        f"are compared with the log: **{crash['answered_200']:,} answered, {crash['missing']} missing**, {crash['logged']:,} logged",
        f"(calls in flight at the kill are logged too), stats count {crash['stats_requests']:,} = the log.",
        "",
        f"Slow clients: {slow['idle_connections']:,} idle connections and {slow['trickling_unauthenticated']:,} unauthenticated",
        "requests announcing a 1 MB body and trickling it a byte per 100 ms, against the default limits:",
        f"{slow['trickle_refused_401_before_body']:,} of the trickling requests got their 401 before any body was read;",
        f"/health answered {slow['health_answered_during']} of 10 probes during the attack, the slowest in",
        f"{slow['health_max_ms_during']} ms (p50 before: {slow['health_p50_ms_before']} ms); RSS {slow['rss_mib_before']} MiB",
        f"before, {slow['rss_mib_during']} MiB during; {slow['idle_closed_after_timeout']:,} of the idle connections were",
        "closed by the server after the header timeout.",
    ]
    lines += [
        "",
        "## Lambda bootstraps",
        "",
        "Built as `sam build` builds them: the release profile plus panic=abort (what `cargo lambda build` adds), one package",
        "at a time, x86_64; sizes in MB (10^6 bytes). `bench/lambda_init.py` serves a minimal Lambda Runtime API on 127.0.0.1",
        "and runs the bootstrap against it, AWS calls going to moto (table and queues created by `maestro init-aws`). Init is",
        "the time from process start to the first `next` request, so the SDK clients are built by then; the first run also",
        "serves the invocations, and RSS is read from `/proc` after them.",
        "",
        "| function | event | size | init (3 runs) | invocations | errors | RSS after |",
        "|---|---|---|---|---|---|---|",
    ]
    for l in lambdas:
        lines.append(f"| {l['function']} | `events/{l['event']}` ({l['what']}) | {l['size_mb']} MB | "
                     f"{' / '.join(str(t) for t in l['init_ms'])} ms | {l['invocations']:,} | {l['errors']} | {l['rss_mib_after']} MiB |")
    if cost:
        fmt = lambda counts: ", ".join(f"{k} × {v}" for k, v in sorted(counts.items())) or "none"
        lines += [
            "",
            "## AWS requests per chat call",
            "",
            "Counted at the SDK by `shared/tests/aws_cost.rs` (an interceptor sees every request on the wire, retries included)",
            "against moto server:",
            "",
            f"- cold container (first call): {fmt(cost['cold'])}",
            f"- warm container: {fmt(cost['warm'])}",
            f"- warm container, a key without limits: {fmt(cost.get('warm_without_limits', {}))}",
            f"- aggregator, 2 events of one hour: {fmt(cost['aggregator_2_events'])}",
        ]
        u, b = cost["units"], UNITS_BEFORE
        items = ", ".join(f"{k} {v}" for k, v in sorted(u["units_per_call_by_item"].items()))
        hottest = ", ".join(f"{k} {v}" for k, v in sorted(u.get("hottest_partition_units_per_call_by_item", {}).items()))
        lines += [
            "",
            "## DynamoDB write units per call and the hottest partition's units per call, before and after",
            "",
            f"`shared/tests/aws_cost.rs` (line `BENCH_AWS_UNITS`): {u['calls']} warm chat calls at concurrency {u['concurrency']}",
            "through one key with rpm and tpm limits, then the aggregator in batches of 10; base table only, items priced by",
            "size (1 KB = 1 unit, rounded up), a transaction item twice, every request on the wire counted.",
            "",
            "| | write units per call | hottest partition, units per call | by item (units per call) |",
            "|---|---|---|---|",
            f"| before (commit 6729585) | {b['write_units_per_call']} | {b['hottest_partition_units_per_call']} (`{b['hottest_partition']}`) | {b['by_item']} |",
            f"| this run | {u['write_units_per_call']} | {u['hottest_partition_units_per_call']} (`{u['hottest_partition']}`) | {items} |",
            "",
            f"The busiest single partition of each kind of item (windows and logs are sharded), units per call: {hottest}.",
            "",
            f"Targets: ≤ 6 units per call ({met(u['write_units_per_call'] <= 6)}), ≤ 0.25 per partition key "
            f"({met(u['hottest_partition_units_per_call'] <= 0.25)}).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
