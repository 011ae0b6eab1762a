#!/usr/bin/env bash
# Runs the official-SDK end-to-end tests: a Python venv with the pinned SDKs, the local runner
# built with cargo, then pytest (the conftest starts the runner and a fake upstream).
#
#   bash tests/sdk/run.sh [pytest args…]
#
# The venv lives in target/sdk-venv (override with MAESTRO_SDK_VENV); where `python3 -m venv`
# is unavailable, the requirements are installed with `pip install --user` instead.
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

echo "== cargo build -p maestro"
cargo build -p maestro ${CI:+--locked}

echo "== SDK tests"
export MAESTRO_SKIP_BUILD=1 PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest "$here" -p no:cacheprovider "$@"
