#!/usr/bin/env bash
# Time to first output and peak memory of a trivial program, Scry against bpftrace, in the same run.
# usage: scripts/startup-bench.sh [ROUNDS]   (needs a release build: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
scry=.build/release/scry
prog='BEGIN { printf("hi\n"); exit(); }'
[ -x "$scry" ] || { echo "build first: make build" >&2; exit 2; }

# Median wall time of a command, in ms, over $rounds runs.
median_ms() {
  local times=()
  for _ in $(seq "$rounds"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

# Peak resident set size in MiB.
peak_mib() {
  /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'
}

scry_ms=$(median_ms "$scry" -e "$prog")
scry_mib=$(peak_mib "$scry" -e "$prog")
echo "scry:     first output ${scry_ms} ms (median of $rounds), peak ${scry_mib} MiB"
if command -v bpftrace >/dev/null; then
  bt() { bash -c 'ulimit -l unlimited 2>/dev/null; exec bpftrace "$@"' bpftrace "$@"; }
  bt_ms=$(median_ms bt -e "$prog")
  bt_mib=$(peak_mib bash -c 'ulimit -l unlimited 2>/dev/null; exec bpftrace -e "$0"' "$prog")
  echo "bpftrace: first output ${bt_ms} ms (median of $rounds), peak ${bt_mib} MiB"
  awk -v a="$scry_ms" -v b="$bt_ms" -v c="$scry_mib" -v d="$bt_mib" \
    'BEGIN {printf "ratio scry/bpftrace: time %.3f, memory %.3f\n", a/b, c/d}'
fi
