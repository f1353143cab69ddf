#!/usr/bin/env bash
# The Elixir-driven bench, end to end from a fresh clone: sets up .venv (with the
# `bench` extra for the charts), compiles the client, runs bench/elixir/bench.exs
# (JSON to bench/results/elixir.json) and renders docs/performance/*.png plus the
# tables in docs/performance.md with bench/charts.py.
#   bench/run_elixir.sh [--quick] [--rounds R] [--only seq,concurrent,history,streams,pool,calls]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup >/dev/null
if ! .venv/bin/python -c "import matplotlib" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
fi
out="${BENCH_OUT:-$PWD/bench/results/elixir.json}"
(cd mix_fixture && MIX_ENV=bench mix run ../bench/elixir/bench.exs -- --out "$out" "$@")
.venv/bin/python bench/charts.py "$out" ${BENCH_DOCS:+--docs "$BENCH_DOCS"}
