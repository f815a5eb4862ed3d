#!/usr/bin/env bash
# The cost of naming user addresses: a workload passes N distinct addresses in libc's code to a
# probed function; one run keys a map by usym(arg0) (N names printed at exit), the other by
# (arg0, 1) (the same N keys through the same ring, printed as numbers; a bare arg0 would be counted
# in the kernel instead). The difference in CPU time (Scry and its -c workload) is what naming cost.
# bpftrace runs the usym script in the same rounds for reference (it names addresses at print time,
# after the workload has exited, so it prints most of them as addresses).
# usage: scripts/symbolize-bench.sh [ROUNDS] [ADDRESSES]   (needs a release build: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} n=${2:-100000}
scry=${SCRY_BIN:-$PWD/.build/release/scry}
[ -x "$scry" ] || { echo "build first: make build" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/symbolize_target" Tests/Fixtures/symbolize_target.c

# "wall_s cpu_s lines named" of one traced run.
run() {
  local tracer=$1 key=$2 t0 t1
  local script="uprobe:$work/symbolize_target:probe_address { @[$key] = count(); }"
  t0=$(date +%s%N)
  if [ "$tracer" = scry ]; then
    /usr/bin/time -f '%U %S' -o "$work/cpu" "$scry" -c "$work/symbolize_target $n" -e "$script" >"$work/out" 2>/dev/null
  else
    BPFTRACE_MAP_KEYS_MAX=$((n * 2)) /usr/bin/time -f '%U %S' -o "$work/cpu" \
      bpftrace -c "$work/symbolize_target $n" -e "$script" >"$work/out" 2>/dev/null
  fi
  t1=$(date +%s%N)
  awk -v w=$(((t1 - t0) / 1000000)) -v lines="$(grep -c '^@\[' "$work/out")" -v named="$(grep -c '^@\[[^0-9]' "$work/out")" \
    '{ printf "%.3f %.3f %d %d\n", w / 1000, $1 + $2, lines, named }' "$work/cpu"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for variant in "scry usym(arg0)" "scry arg0,1" "bpftrace usym(arg0)"; do
  read -r tracer key <<<"$variant"
  command -v "$tracer" >/dev/null || [ "$tracer" = scry ] || continue
  : >"$work/wall"; : >"$work/cpus"
  for _ in $(seq "$rounds"); do
    read -r wall cpu lines named < <(run "$tracer" "$key")
    echo "$wall" >>"$work/wall"; echo "$cpu" >>"$work/cpus"
  done
  w=$(median <"$work/wall") c=$(median <"$work/cpus")
  printf '%-9s @[%-11s wall %6.2f s, cpu %5.2f s; %d keys printed, %d by name\n' \
    "$tracer" "$key]" "$w" "$c" "$lines" "$named"
  echo "$c" >"$work/cpu.$tracer.$key"
done
awk -v a="$(cat "$work/cpu.scry.usym(arg0)")" -v b="$(cat "$work/cpu.scry.arg0,1")" -v n="$n" \
  'BEGIN { printf "naming %d addresses cost Scry %.3f s of CPU (the usym run less the (arg0, 1) run)\n", n, a - b }'
