#!/bin/sh
# Run every benchmark and print its tables. Usage: bench/run_all.sh [--quick]
#   --quick: fewer rounds and a 50k-request soak (about 2-3 minutes in all).
# Each script measures its own baselines side by side; see bench/README.md.
set -eu
cd "$(dirname "$0")/.."
PY=${AXON_PORT_PYTHON:-.venv/bin/python}
if [ "${1:-}" = "--quick" ]; then
  PORT_ARGS="--rounds 2 --soak 50000"
  AGENT_ARGS="--rounds 2"
  EXS_ARGS="--n 1500 --calls 12800"
else
  PORT_ARGS=""
  AGENT_ARGS=""
  EXS_ARGS=""
fi
echo "# bench/run_all.sh on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# loadavg: $(cat /proc/loadavg)"
if [ -f bench/bench_codecs.py ]; then
  "$PY" bench/bench_codecs.py
fi
# shellcheck disable=SC2086
"$PY" bench/bench_port.py $PORT_ARGS
# shellcheck disable=SC2086
"$PY" bench/bench_agents.py $AGENT_ARGS
if command -v elixir >/dev/null 2>&1 && command -v taskset >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  elixir bench/port_latency.exs --python "$PY" $EXS_ARGS
else
  echo "(elixir or taskset missing: bench/port_latency.exs skipped)"
fi
