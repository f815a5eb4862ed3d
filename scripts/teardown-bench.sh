#!/usr/bin/env bash
# Start-to-exit time of a wide tracepoint script ended by SIGINT, Scry against bpftrace: the time from
# launch to exit, and from SIGINT to exit (closing each tracepoint's last perf event waits in the kernel,
# so a script with hundreds of tracepoints can take seconds to end). Runs each tracer RUNS times.
# usage: scripts/teardown-bench.sh [RUNS] [SECONDS] [SCRIPT]   (run as root, after `make build`)
#        SCRY_BIN=...    the Scry binary (default .build/release/scry)
#        SCRY_FLAGS=...  options for Scry, e.g. --no-bpf for the tracepoints attached one by one
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
seconds=${2:-3}
script=${3:-'tracepoint:syscalls:sys_enter_* { @[probe] = count(); }'}
scry=${SCRY_BIN:-$PWD/.build/release/scry}
now() { date +%s.%N; }
measure() {
  local label=$1; shift
  for _ in $(seq "$runs"); do
    local start sent end
    start=$(now)
    "$@" -e "$script" >/dev/null 2>&1 &
    local pid=$!
    sleep "$seconds"
    sent=$(now)
    kill -INT "$pid"
    wait "$pid" || true
    end=$(now)
    printf '%-10s start-to-exit %6.2f s  SIGINT-to-exit %6.2f s\n' "$label" \
      "$(echo "$end - $start" | bc)" "$(echo "$end - $sent" | bc)"
  done
}
echo "script: $script (SIGINT after ${seconds} s)"
# shellcheck disable=SC2086
measure scry "$scry" ${SCRY_FLAGS:-}
if command -v bpftrace >/dev/null; then measure bpftrace bpftrace; fi
