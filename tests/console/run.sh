#!/usr/bin/env bash
# Browser tests of the admin console (/admin/): Debian's headless Chromium, driven by
# playwright-core (pinned in package-lock.json) from Node's built-in test runner, against the
# real local runner.
#
#   bash tests/console/run.sh [node --test args…]
#
# Installs chromium with apt-get when /usr/bin/chromium is missing, `npm ci` into
# tests/console/node_modules, builds the runner (`cargo build -p maestro`), starts one per
# console language (en, zh-CN: the same scenario runs in each, from a fresh state) on free ports
# with temp data dirs and a fixed MAESTRO_JWT_SECRET, runs the tests, and stops them on exit.
# Screenshots land in target/console-artifacts/ (`<page>-<width>-<language>.png`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

chromium="${MAESTRO_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    echo "== installing chromium (apt-get)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
"$chromium" --version 2>/dev/null | grep -v '^/' || true

echo "== npm ci (playwright-core)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo build -p maestro"
cargo build -p maestro ${CI:+--locked}
binary="${CARGO_TARGET_DIR:-$repo/target}/debug/maestro"

work="$(mktemp -d)"
runners=()
cleanup() {
    for runner in ${runners[@]+"${runners[@]}"}; do
        if kill -0 "$runner" 2>/dev/null; then
            kill "$runner" 2>/dev/null || true
            wait "$runner" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A fixed secret: the tokens below and the runner agree whatever the environment holds.
export MAESTRO_JWT_SECRET="console-tests-only-secret-0123456789abcdef"
unset MAESTRO_JWKS_URL MAESTRO_JWT_ISSUER MAESTRO_JWT_AUDIENCE OPENAI_API_KEY ANTHROPIC_API_KEY DEEPSEEK_API_KEY
healthy() {
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1/health"
}
# One runner per language, each with its own data dir ($work/<lang>) and log ($work/<lang>.log).
urls=""
for lang in en zh-CN; do
    port="$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
    url="http://127.0.0.1:$port"
    echo "== maestro serve on $url ($lang)"
    # Alert rules evaluated every second, so a rule added in a test fires within it.
    printf '[alerting]\ninterval_secs = 1\n' >"$work/$lang.toml"
    MAESTRO_LOG=warn "$binary" serve --listen "127.0.0.1:$port" --data "$work/$lang" --config "$work/$lang.toml" >"$work/$lang.log" 2>&1 &
    runner=$!
    runners+=("$runner")
    for _ in $(seq 1 100); do
        healthy "$url" && break
        kill -0 "$runner" 2>/dev/null || break
        sleep 0.1
    done
    if ! healthy "$url"; then
        echo "the runner ($lang) did not start:" >&2
        cat "$work/$lang.log" >&2
        exit 1
    fi
    urls="$urls $lang=$url"
done

artifacts="${CARGO_TARGET_DIR:-$repo/target}/console-artifacts"
mkdir -p "$artifacts"
rm -f "$artifacts"/*.png

echo "== browser tests"
status=0
# The tokens hold for both runners: they share the fixed secret.
MAESTRO_URLS="${urls# }" \
MAESTRO_ADMIN_TOKEN="$("$binary" token --admin --sub console-admin --data "$work/en")" \
MAESTRO_CALLER_TOKEN="$("$binary" token --sub console-caller --data "$work/en")" \
MAESTRO_CHROMIUM="$chromium" \
MAESTRO_CONSOLE_ARTIFACTS="$artifacts" \
    node --test --test-concurrency=1 --test-reporter=spec "$@" "$here/console.test.mjs" 2>&1 | tee "$work/node-test.log" \
    || status=$?

if [ "$status" -ne 0 ]; then
    for lang in en zh-CN; do
        echo "== runner log, $lang (last 40 lines)" >&2
        tail -n 40 "$work/$lang.log" >&2
    done
fi
echo "screenshots: $artifacts"
# The closing line: "console: <passed> passed, <failed> failed".
passed="$(grep -E '^[^ ]+ pass [0-9]+$' "$work/node-test.log" | grep -Eo '[0-9]+$' | tail -n 1 || true)"
failed="$(grep -E '^[^ ]+ fail [0-9]+$' "$work/node-test.log" | grep -Eo '[0-9]+$' | tail -n 1 || true)"
if [ "$status" -eq 0 ] && [ "${failed:-1}" -eq 0 ] && [ "${passed:-0}" -gt 0 ]; then
    echo "console: ${passed} passed, 0 failed"
else
    echo "console: ${passed:-0} passed, ${failed:-?} failed"
    [ "$status" -ne 0 ] || status=1
fi
exit "$status"
