#!/usr/bin/env bash
# Events per second the machine keeps under a tracer that is not pinned: one syscall workload per
# CPU, run alone, then under Scry and under bpftrace (each unpinned, so it competes with the
# workloads for the CPUs), as issue 13 asks for `raw_syscalls:sys_enter { @[comm] = count(); }`.
#
# usage: scripts/throughput-bench.sh [ROUNDS] [EVENTS_PER_WORKLOAD]   (root; release build)
#        SCRIPT='…' scripts/throughput-bench.sh   another script
set -euo pipefail
rounds=${1:-3}
events=${2:-2000000}
script=${SCRIPT:-'tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }'}
scry=${SCRY_BIN:-$PWD/.build/release/scry}
bench_dir=$(cd "$(dirname "$0")/../Tests/Fixtures" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/workload" "$bench_dir/workload.c"
cpus=$(nproc)

# Events per second of one workload per CPU, summed.
workloads() {
  local c pids=()
  for c in $(seq 0 $((cpus - 1))); do
    "$work/workload" syscall "$events" "$c" >"$work/w.$c" & pids+=($!)
  done
  wait "${pids[@]}"
  cat "$work"/w.* | sed -n 's/.*events_per_s=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }'
}

under() {
  local out="$work/out" pid
  case $1 in
    scry) "$scry" -e "$script" >"$out" 2>&1 & ;;
    bpftrace) bash -c 'ulimit -l unlimited 2>/dev/null; exec bpftrace -e "$0"' "$script" >"$out" 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 300); do grep -q Attaching "$out" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  workloads
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/alone"; : >"$work/scry"; : >"$work/bpftrace"
for _ in $(seq "$rounds"); do
  workloads >>"$work/alone"
  under scry >>"$work/scry"
  under bpftrace >>"$work/bpftrace"
done
alone=$(median <"$work/alone")
echo "script: $script"
echo "  $cpus syscall workloads, one per CPU, $events events each; tracers unpinned; medians of $rounds rounds"
for t in alone scry bpftrace; do
  m=$(median <"$work/$t")
  awk -v t="$t" -v m="$m" -v a="$alone" 'BEGIN { printf "  %-9s %12.0f events/s  %5.1f%% of alone\n", t, m, 100 * m / a }'
done
