#!/usr/bin/env bash
# Cost a tracer adds to each traced event, Scry against bpftrace, measured in the same run
# with the workload of ../shared/bench (or $BENCH_DIR): the workload pinned to CPU 0, the tracer to CPU 1,
# alternating rounds, medians. Prints one line per (script, tracer) and the ratios.
# usage: scripts/bench.sh [ROUNDS] [EVENTS]      (run as root, after `make build`)
#        BENCH_ONLY=uprobe scripts/bench.sh     (only the cases matching a regex; SCRY_BIN picks the binary,
#                                                SCRY_FLAGS adds options, e.g. --no-bpf for the perf-only path)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
events=${2:-5000000}
bench_dir=${BENCH_DIR:-../shared/bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/workload" "$bench_dir/workload.c"
# The open-heavy loop for strings behind pointers.
cc -O2 -o "$work/openloop" Tests/Fixtures/pointer_target.c
scry=${SCRY_BIN:-$PWD/.build/release/scry}

# ns per event of `workload $mode $events 0`, optionally under a tracer started first.
run_workload() {
  if [ "$mode" = openloop ]; then
    taskset -c 0 "$work/openloop" loop "$events"
  else
    taskset -c 0 "$work/workload" "$mode" "$events" 0
  fi | sed -n 's/.*ns_per_event=\([0-9.]*\).*/\1/p'
}

under() { # under TRACER SCRIPT -> ns per event, and the tracer's lost line on stderr
  local tracer=$1 script=$2 out="$work/out.$$" pid
  if [ "$tracer" = scry ]; then
    # shellcheck disable=SC2086 # SCRY_FLAGS is a list of options
    taskset -c 1 "$scry" ${SCRY_FLAGS:-} -e "$script" >"$out" 2>&1 &
  else
    taskset -c 1 bash -c 'ulimit -l unlimited 2>/dev/null; exec bpftrace -e "$0"' "$script" >"$out" 2>&1 &
  fi
  pid=$!
  # Wait until the tracer has attached.
  for _ in $(seq 100); do grep -q 'Attaching' "$out" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  run_workload
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  grep -i 'lost' "$out" >&2 || true
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Each case is MODE|SCRIPT: the workload mode that fires the script's probe.
for case in 'syscall|tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }' \
            'syscall|tracepoint:syscalls:sys_enter_getppid { printf("%d\n", pid); }' \
            'syscall|tracepoint:syscalls:sys_enter_getppid { @c = count(); }' \
            "uprobe_nop5|uprobe:$work/workload:probe_target_nop5 { @c = count(); }" \
            "uprobe_nop5|uprobe:$work/workload:probe_target_nop5 { @[tid] = count(); }" \
            'openloop|tracepoint:syscalls:sys_enter_openat { @[str(args->filename)] = count(); }'; do
  mode=${case%%|*} script=${case#*|}
  # BENCH_ONLY=REGEX runs only the cases it matches.
  if [ -n "${BENCH_ONLY:-}" ] && ! [[ $case =~ $BENCH_ONLY ]]; then continue; fi
  : >"$work/alone"; : >"$work/scry"; : >"$work/bpftrace"
  for _ in $(seq "$rounds"); do
    run_workload >>"$work/alone"
    under scry "$script" >>"$work/scry"
    under bpftrace "$script" >>"$work/bpftrace"
  done
  alone=$(median <"$work/alone"); s=$(median <"$work/scry"); b=$(median <"$work/bpftrace")
  echo "script: $script (workload $mode)"
  awk -v a="$alone" -v s="$s" -v b="$b" 'BEGIN {
    printf "  alone %.1f ns/event; scry +%.1f ns; bpftrace +%.1f ns; scry/bpftrace %.3f\n", a, s-a, b-a, (s-a)/(b-a) }'
done
