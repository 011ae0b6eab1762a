#!/usr/bin/env bash
# Maestro's benchmark harness: builds what it measures, then bench/run.py writes bench/RESULTS.md
# (gateway overhead against direct-to-upstream, streaming TTFB, Lambda bootstraps, AWS requests
# per call). One command:
#   bash bench/run.sh             (QUICK=1 for 3-second runs; about 10 minutes plus the builds)
#   bash bench/run.sh --smoke     (CI: debug builds, a few seconds per part, RESULTS.md untouched)
# Gateway on core 0; load generator and mock upstream on core 1; everything on 127.0.0.1. moto
# server is started (infra/moto.sh) unless one answers on 127.0.0.1:5599.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  ($sudo apt-get update -qq && $sudo apt-get install -y -qq wrk) >/dev/null
fi
functions=(-p maestro-chat -p maestro-admin -p maestro-stats -p maestro-aggregator -p maestro-rollup)
if [ "${1:-}" = "--smoke" ]; then
  cargo build -q ${CI:+--locked} -p maestro -p maestro-bench -p maestro-aggregator
else
  cargo build --release -q -p maestro -p maestro-bench
  # The Lambda bootstraps as `sam build` makes them: the release profile plus what cargo-lambda
  # adds (panic=abort); one package at a time, so each gets only its own features.
  for f in chat admin stats aggregator rollup; do
    CARGO_PROFILE_RELEASE_PANIC=abort cargo build --release -q -p "maestro-$f" --target-dir target/lambda-build
  done
  mkdir -p target/bench-lambda
  for f in chat admin stats aggregator rollup; do cp "target/lambda-build/release/maestro-$f" target/bench-lambda/; done
fi
exec python3 bench/run.py "$@"
