#!/usr/bin/env bash
# Runs the end-to-end tests of the official SDKs (openai, anthropic) and the client libraries
# (LangChain, instructor, the Vercel AI SDK): a Python venv with the pinned packages, the AI SDK's
# node packages (`npm ci` in tests/sdk/node), the local runner built with cargo, then pytest (the
# conftest starts the runner and a fake upstream; the AI SDK cases run node from pytest).
#
#   bash tests/sdk/run.sh [pytest args…]
#
# The venv lives in target/sdk-venv (override with MAESTRO_SDK_VENV); where `python3 -m venv`
# is unavailable, the requirements are installed with `pip install --user` instead. Node.js 20
# or later with npm is required. MAESTRO_SKIP_BUILD=1 skips the build and uses the runner already
# in ${CARGO_TARGET_DIR:-target}/debug.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

python="${PYTHON:-python3}"
venv="${MAESTRO_SDK_VENV:-$repo/target/sdk-venv}"

if [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >/dev/null 2>&1; then
    py="$venv/bin/python"
else
    echo "== python3 -m venv is unavailable; installing with pip --user"
    rm -rf "$venv"
    py="$python"
    pip_user=(--user)
fi

echo "== SDK requirements"
pip=("$py" -m pip install --quiet --disable-pip-version-check ${pip_user[@]+"${pip_user[@]}"})
"${pip[@]}" -r "$here/requirements.txt"
# instructor's jiter cap conflicts with the pinned openai: see requirements-nodeps.txt.
"${pip[@]}" --no-deps -r "$here/requirements-nodeps.txt"

echo "== Vercel AI SDK (npm ci in tests/sdk/node)"
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: \`$tool\` is not installed; the Vercel AI SDK tests need Node.js 20 or later with npm" >&2
        exit 1
    fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "error: Node.js $(node --version) is too old; the Vercel AI SDK tests need 20 or later" >&2
    exit 1
fi
(cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)

if [ "${MAESTRO_SKIP_BUILD:-}" = 1 ]; then
    echo "== cargo build skipped (MAESTRO_SKIP_BUILD=1)"
else
    echo "== cargo build -p maestro"
    cargo build -p maestro ${CI:+--locked}
fi

echo "== SDK tests"
export MAESTRO_SKIP_BUILD=1 PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest "$here" -p no:cacheprovider "$@"
