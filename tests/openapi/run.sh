#!/usr/bin/env bash
# Fuzzes the local runner's own OpenAPI document with schemathesis: every operation of the chat,
# admin and stats routers, authenticated with an admin token, a bounded number of generated
# requests each, checking that nothing answers 5xx (`not_a_server_error`) and that every answer
# matches the schema documented for its status (`response_schema_conformance`).
#
#   bash tests/openapi/run.sh [extra schemathesis args…]
#
# The runner (`target/debug/maestro serve`) gets a free port, a temp data dir and, for every
# provider, a local fake upstream (tests/openapi/fake_upstream.py) instead of the network. The
# venv lives in target/openapi-venv (override with MAESTRO_OPENAPI_VENV); where `python3 -m venv`
# is unavailable the pinned requirements are installed with `pip install --user`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

python="${PYTHON:-python3}"
venv="${MAESTRO_OPENAPI_VENV:-$repo/target/openapi-venv}"
examples="${MAESTRO_OPENAPI_EXAMPLES:-20}"

if [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >/dev/null 2>&1; then
    py="$venv/bin/python"
else
    echo "== python3 -m venv is unavailable; installing with pip --user"
    rm -rf "$venv"
    py="$python"
    pip_user=(--user)
fi

echo "== schemathesis"
"$py" -m pip install --quiet --disable-pip-version-check ${pip_user[@]+"${pip_user[@]}"} -r "$here/requirements.txt"

echo "== cargo build -p maestro"
cargo build -p maestro ${CI:+--locked}

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

echo "== fake upstream"
"$python" "$here/fake_upstream.py" >"$work/upstream.port" 2>"$work/upstream.log" &
pids+=("$!")
for _ in $(seq 1 50); do
    [ -s "$work/upstream.port" ] && break
    sleep 0.1
done
upstream="http://127.0.0.1:$(head -n1 "$work/upstream.port")"

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
echo "== maestro serve on $url (providers at $upstream)"
env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u DEEPSEEK_API_KEY -u MAESTRO_JWT_SECRET -u MAESTRO_JWKS_URL \
    OPENAI_BASE_URL="$upstream/v1" ANTHROPIC_BASE_URL="$upstream" DEEPSEEK_BASE_URL="$upstream" MAESTRO_LOG=warn \
    target/debug/maestro serve --listen "127.0.0.1:$port" --data "$work/data" >"$work/serve.log" 2>&1 &
pids+=("$!")
healthy() {
    "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url/health" \
        >/dev/null 2>&1
}
for _ in $(seq 1 100); do
    healthy && break
    sleep 0.1
done
if ! healthy; then
    echo "the runner did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
fi
token="$(env -u MAESTRO_JWT_SECRET -u MAESTRO_JWKS_URL target/debug/maestro token --admin --data "$work/data")"

echo "== schemathesis run ($examples examples per operation)"
status=0
# No stateful phase: a chain that creates a provider with a made-up URL and then syncs it would
# test the made-up host, not Maestro. Each request gets 20 s; the whole run at most 15 minutes.
# Run from the temp dir: schemathesis keeps a cache in `.schemathesis/` of its working directory.
# `filter_too_much` is schemathesis' own check on its generator: ids such as `/v1/models/{id}`'s
# (`provider/model`) are strings it often cannot put into one path segment and throws away; the
# cases it does send are checked all the same.
cd "$work"
timeout 900 "$py" -m schemathesis.cli run "$url/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" \
    --request-timeout 20 \
    --generation-database none \
    --seed "${MAESTRO_OPENAPI_SEED:-1}" \
    --suppress-health-check=filter_too_much \
    --no-color \
    "$@" 2>&1 | tee "$work/schemathesis.log" || status=$?
cd "$repo"
# One closing line in the form CI reads: "<passed> passed, <failed> failed".
cases="$(grep -Eo '[0-9]+ generated, [0-9]+ passed(, [0-9]+ failed)?' "$work/schemathesis.log" | tail -n 1)"
if [ -n "$cases" ]; then
    generated="$(echo "$cases" | awk '{print $1}')"; passed="$(echo "$cases" | awk '{print $3}')"
    echo "schemathesis: ${passed} passed, $((generated - passed)) failed"
fi
if [ "$status" -ne 0 ]; then
    echo "== runner log (last 50 lines)" >&2
    tail -n 50 "$work/serve.log" >&2
fi
exit "$status"
