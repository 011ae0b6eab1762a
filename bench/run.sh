#!/usr/bin/env bash
# Runs Maestro's overhead benchmark and writes bench/RESULTS.md. One command:
#   bash bench/run.sh            (QUICK=1 for 3-second runs)
# Gateway on core 0; load generator and mock upstream on core 1; everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
cargo build --release -q -p maestro -p maestro-bench
python3 bench/run.py "$@"
