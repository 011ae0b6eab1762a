"""Maestro overhead benchmark: each scenario runs against the mock upstream directly and through
the gateway in the same run, so the figures are what Maestro adds. Results go to bench/RESULTS.md."""

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
DURATION = "3s" if os.environ.get("QUICK") else "10s"
GATEWAY_CORE, LOAD_CORE = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def wrk(url, connections, body, token):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
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


def main():
    results = []
    body = lambda model: {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello!"}]}
    for delay in (0, 50):
        port = 9100 + delay
        upstream = start([f"{BIN}/mock-upstream", "--listen", f"127.0.0.1:{port}", "--delay-ms", str(delay)], LOAD_CORE)
        data = tempfile.mkdtemp(prefix="maestro-bench-")
        cfg = os.path.join(data, "bench.toml")
        with open(cfg, "w") as f:
            f.write(config(port))
        env = dict(os.environ, MAESTRO_LOG="warn", MAESTRO_JWT_SECRET="bench-secret-bench-secret-bench-secret")
        for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"):
            env.pop(var, None)
        gateway = start([f"{BIN}/maestro", "serve", "--listen", "127.0.0.1:8787", "--data", data, "--config", cfg], GATEWAY_CORE, env)
        try:
            wait_port(8787)
            time.sleep(0.3)
            token = subprocess.run([f"{BIN}/maestro", "token", "--data", data], env=env, capture_output=True, text=True, check=True).stdout.strip()
            scenarios = [("openai, non-streaming", "mock/gpt-4o-mini", f"http://127.0.0.1:{port}/chat/completions")]
            scenarios.append(("anthropic translation", "mock-claude/claude-sonnet-4-5", f"http://127.0.0.1:{port}/v1/messages"))
            for name, model, direct_url in scenarios:
                for c in ((1, 10, 50) if name.startswith("openai") else (50,)):
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
    write_results(results, ttfb)


def write_results(results, ttfb):
    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.+)", cpu)
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with `bash bench/run.sh` ({DURATION} per run) on "
        f"{model.group(1) if model else platform.processor()}, {os.cpu_count()} cores, Linux {platform.release()}.",
        "Gateway (`maestro serve`, embedded backend, 4 keys per provider with rpm/tpm/rpd limits on) pinned to core 0;",
        "wrk and the mock upstream pinned to core 1. Every figure is measured against direct-to-upstream in the same run.",
        "",
        "| scenario | upstream delay | concurrency | direct req/s | via Maestro req/s | p50 added | p99 added | gateway CPU / request | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['delay_ms']} ms | {r['concurrency']} | {r['direct_rps']:,.0f} | {r['gateway_rps']:,.0f} | "
            f"{r['p50_added_us']:.0f} µs | {r['p99_added_us']:.0f} µs | {r['cpu_us_per_request']:.1f} µs | {r['peak_rss_mib']:.1f} MiB |"
        )
    lines += ["", f"Streaming time to first byte (sequential requests): direct p50 {ttfb['direct_p50_us']} µs, via Maestro p50 "
              f"{ttfb['gateway_p50_us']} µs: **{ttfb['added_p50_us']} µs added at p50**, {ttfb['added_p99_us']} µs at p99.", ""]
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
