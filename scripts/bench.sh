#!/usr/bin/env bash
# Total cost per event of a tracer, Scry against bpftrace (and optionally against a second Scry binary), measured
# in the same run with the workload of ../shared/bench (or $BENCH_DIR), the method of ../shared/bench/total-cost.sh:
#   added  = ns/event of the workload under the tracer minus alone (what the traced task pays); for the profile
#            cases, whose per-sample cost drowns in the workload's noise, the tracer's BPF programs' run time per
#            sample from the kernel's BPF statistics (the sampling interrupt around it is the same for both);
#   cpu    = on-CPU ns of all the tracer's threads (/proc/PID/task/*/schedstat, first field) from just before the
#            workload until the tracer has drained what the workload made, divided by the events;
#   total  = added + cpu.
# The workload is pinned to CPU 0, the tracer to CPU 1. Within each round the order of alone, scry, scry-base and
# bpftrace rotates, so drift hits all of them alike; figures are medians over rounds.
# usage: scripts/bench.sh [ROUNDS] [EVENTS]      (run as root, after `make build`)
#        BENCH_ONLY=uprobe scripts/bench.sh     (only the cases matching a regex)
#        SCRY_BIN=...        the Scry binary to measure (default .build/release/scry)
#        SCRY_BASE_BIN=...   also run each case under this binary, labelled scry-base, and print scry/scry-base
#        SCRY_FLAGS=...      options for both Scry binaries, e.g. --no-bpf for the perf-only path
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
events=${2:-5000000}
bench_dir=${BENCH_DIR:-../shared/bench}
work=$(mktemp -d)
# The BPF statistics are on only for the profile cases (they time every program run, which costs each run).
stats_were=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
trap 'rm -rf "$work"; sysctl -q kernel.bpf_stats_enabled="$stats_were" 2>/dev/null || true' EXIT
cc -O2 -o "$work/workload" "$bench_dir/workload.c"
# The open-heavy loop for strings behind pointers.
cc -O2 -o "$work/openloop" Tests/Fixtures/pointer_target.c
# Calls of func_nop5(struct Foo *) for fields read through a pointer at a uprobe.
cc -O0 -o "$work/structloop" Tests/Fixtures/struct_target.c
# N page faults: read one byte of each page of a fresh anonymous mapping (each maps the zero page, allocates nothing).
cat >"$work/faultloop.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]), page = sysconf(_SC_PAGESIZE), chunk = 4096, done = 0; volatile char sink; struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  while (done < n) {
    long k = n - done < chunk ? n - done : chunk;
    char *p = mmap(0, k * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    madvise(p, k * page, MADV_NOHUGEPAGE);
    for (long i = 0; i < k; i++) sink = p[i * page];
    munmap(p, k * page); done += k;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("ns_per_event=%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n); }
EOF
cc -O2 -o "$work/faultloop" "$work/faultloop.c"
# The floor of a uprobe: an empty BPF program on it (see uprobe-floor.c).
cc -O2 -o "$work/uprobe-floor" scripts/uprobe-floor.c
scry=${SCRY_BIN:-$PWD/.build/release/scry}
scry_base=${SCRY_BASE_BIN:-}
tracers=(scry)
[ -n "$scry_base" ] && tracers+=(scry-base)
tracers+=(bpftrace)
profile_hz=999

# ns per event of the workload of $mode making $n events, pinned to CPU 0.
run_workload() {
  case $mode in
    openloop) taskset -c 0 "$work/openloop" loop "$n" ;;
    faultloop) taskset -c 0 "$work/faultloop" "$n" ;;
    structloop) taskset -c 0 "$work/structloop" "$n" 0 bench ;;
    *) taskset -c 0 "$work/workload" "$mode" "$n" 0 ;;
  esac | sed -n 's/.*ns_per_event=\([0-9.]*\).*/\1/p'
}

# "BINARY FILE_OFFSET" of the first uprobe:BINARY:FUNCTION in a script: the symbol's address made a
# file offset through the executable LOAD segment that holds it.
uprobe_site() {
  local spec bin fn
  spec=$(grep -o 'uprobe:[^ ]*:[A-Za-z_0-9]*' <<<"$1" | head -1)
  bin=${spec#uprobe:}; fn=${bin##*:}; bin=${bin%:*}
  local address type off va fsz msz flags rest
  address=$(( $(nm "$bin" | awk -v f="$fn" '$3 == f { print "0x" $1; exit }') ))
  while read -r type off va _ fsz msz flags rest; do
    [ "$type" = LOAD ] && [[ "$flags $rest" == *E* ]] || continue
    if (( address >= va && address < va + msz )); then echo "$bin $((address - va + off))"; return; fi
  done < <(readelf -lW "$bin")
}

# "RUN_TIME_NS RUN_COUNT" of PID's BPF programs, summed (the kernel's BPF statistics: kernel.bpf_stats_enabled).
program_stats() {
  local f
  for f in /proc/"$1"/fdinfo/*; do cat "$f" 2>/dev/null; done |
    awk '/^run_time_ns:/ { t += $2 } /^run_cnt:/ { c += $2 } END { printf "%d %d\n", t, c }'
}

# On-CPU ns of every thread of PID, summed (a thread that exits meanwhile is lost, so tracers are read while running).
cpu_ns() {
  local s=0 t f
  for f in /proc/"$1"/task/*/schedstat; do read -r t _ <"$f" 2>/dev/null && s=$((s + t)); done
  echo "$s"
}

# under TRACER SCRIPT -> "WORKLOAD_NS_PER_EVENT TRACER_CPU_NS" for this run, or status 1 and the tracer's error in
# $work/skip.TRACER when it cannot run the script. What it lost goes to $work/lost, printed after the case.
under() {
  local tracer=$1 script=$2 out="$work/out" pid c0 c1 c w attached=0
  case $tracer in
    # shellcheck disable=SC2086 # SCRY_FLAGS is a list of options
    scry) taskset -c 1 "$scry" ${SCRY_FLAGS:-} -e "$script" >"$out" 2>&1 & ;;
    # shellcheck disable=SC2086
    scry-base) taskset -c 1 "$scry_base" ${SCRY_FLAGS:-} -e "$script" >"$out" 2>&1 & ;;
    # taskset and bash both exec, so $! is bpftrace's own pid.
    bpftrace) taskset -c 1 bash -c 'ulimit -l unlimited 2>/dev/null; exec bpftrace -e "$0"' "$script" >"$out" 2>&1 & ;;
    floor) taskset -c 1 "$work/uprobe-floor" $(uprobe_site "$script") >"$out" 2>&1 & ;;
  esac
  pid=$!
  # Wait until the tracer has attached (or has given up).
  for _ in $(seq 300); do
    if grep -q 'Attaching' "$out" 2>/dev/null; then attached=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ $attached = 0 ]; then
    kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    grep -v '^ *$' "$out" | head -3 >"$work/skip.$tracer"; return 1
  fi
  sleep 0.5
  c0=$(cpu_ns "$pid")
  read -r p0 n0 < <(program_stats "$pid")
  w=$(run_workload)
  read -r p1 n1 < <(program_stats "$pid")
  # Until the tracer has drained the workload's events: its CPU time grows by less than 1 ms in 50 ms (at most 20 s).
  c1=$(cpu_ns "$pid")
  for _ in $(seq 400); do
    sleep 0.05; c=$(cpu_ns "$pid")
    [ $((c - c1)) -lt 1000000 ] && { c1=$c; break; }
    c1=$c
  done
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  # One line for the run however many times the tracer reported losses (bpftrace reports each batch).
  grep -i 'lost [0-9]* events' "$out" | awk -v t="$tracer" '{ for (i = 1; i < NF; i++) if (tolower($i) == "lost") n += $(i + 1) }
    END { if (NR) printf "  %s: lost %d events in one run\n", t, n }' >>"$work/lost" || true
  # The programs' mean run time per run (0 when none ran, or the statistics are off).
  echo "$w $((c1 - c0)) $(awk -v t=$((p1 - p0)) -v n=$((n1 - n0)) 'BEGIN { printf "%.1f", (n > 0 ? t / n : 0) }')"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

summary=()
# Each case is MODE|SCALE|SCRIPT: the workload mode that fires the script's probe and the events it makes, as a
# multiple of EVENTS (an int3 uprobe hit costs microseconds; a loop iteration of the profile case under 1 ns,
# so 5000 makes about two seconds of samples: fewer leave the traced side's noise larger than either tracer).
for case in 'syscall|1|tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }' \
            'syscall|1|tracepoint:syscalls:sys_enter_getppid { printf("%d\n", pid); }' \
            'syscall|1|tracepoint:syscalls:sys_enter_getppid { @c = count(); }' \
            'syscall|1|tracepoint:syscalls:sys_enter_* { @[probe] = count(); }' \
            "uprobe_nop5|1|uprobe:$work/workload:probe_target_nop5 { @c = count(); }" \
            "uprobe_nop5|1|uprobe:$work/workload:probe_target_nop5 { @[tid] = count(); }" \
            'openloop|1|tracepoint:syscalls:sys_enter_openat { @[str(args->filename)] = count(); }' \
            "uprobe|0.05|uprobe:$work/workload:probe_target { @[arg0 % 8] = count(); }" \
            "structloop|1|struct Foo { int m; int n; }; uprobe:$work/structloop:func_nop5 { \$f = (struct Foo *)arg0; @[\$f->m] = count(); }" \
            'faultloop|0.5|software:page-faults:1 { @[comm] = count(); }' \
            "loop|5000|profile:hz:$profile_hz { @[comm] = count(); }" \
            "loop|5000|profile:hz:$profile_hz { @[kstack, ustack] = count(); }"; do
  mode=${case%%|*} rest=${case#*|}
  scale=${rest%%|*} script=${rest#*|}
  # BENCH_ONLY=REGEX runs only the cases it matches.
  if [ -n "${BENCH_ONLY:-}" ] && ! [[ $case =~ $BENCH_ONLY ]]; then continue; fi
  n=$(awk -v e="$events" -v s="$scale" 'BEGIN { printf "%d", e * s }')
  if [ "$mode" = loop ]; then stats=1; else stats=$stats_were; fi
  sysctl -q kernel.bpf_stats_enabled="$stats"
  # A uprobe case also runs its floor: the kernel's uprobe with an empty program.
  base_tracers=("${tracers[@]}")
  case $mode in uprobe*|structloop) tracers+=(floor) ;; esac
  : >"$work/alone"; : >"$work/lost"
  for t in "${tracers[@]}"; do
    for f in added cpu total aps cps; do : >"$work/$t.$f"; done
    rm -f "$work/skip.$t"
  done
  for r in $(seq 0 $((rounds - 1))); do
    # Rotate the order each round; each traced run is set against the alone run of its own round.
    order=(alone "${tracers[@]}")
    k=$((r % ${#order[@]}))
    declare -A got=()
    for t in "${order[@]:k}" "${order[@]:0:k}"; do
      if [ "$t" = alone ]; then got[alone]=$(run_workload); echo "${got[alone]}" >>"$work/alone"; continue; fi
      [ -e "$work/skip.$t" ] && continue
      got[$t]=$(under "$t" "$script") || unset 'got[$t]'
    done
    for t in "${tracers[@]}"; do
      [ -n "${got[$t]:-}" ] || continue
      # added and cpu per event; for profile the events are the samples taken on the workload's CPU during the
      # traced run, $profile_hz a second (an idle CPU is barely sampled), and the per-second figures are kept too.
      # The profile case's added is its programs' own run time per sample (the kernel's BPF statistics): what a
      # sample adds to the task is a microsecond or two, the loop's run-to-run noise tens of milliseconds a second,
      # and the sampling interrupt around the program is the same perf event for both tracers.
      read -r added cpu aps cps < <(awk -v a="${got[alone]}" -v g="${got[$t]}" -v n="$n" -v m="$mode" \
        -v hz="$profile_hz" 'BEGIN { split(g, x, " "); w = x[1]; c = x[2]; secs = w * n / 1e9
          ev = m == "loop" ? hz * secs : n
          added = m == "loop" ? x[3] : (w - a) * n / ev
          printf "%.3f %.3f %.3f %.3f\n", added, c / ev, (w - a) * n / secs / 1e3, c / secs / 1e3 }')
      echo "$added" >>"$work/$t.added"; echo "$cpu" >>"$work/$t.cpu"; echo "$aps" >>"$work/$t.aps"; echo "$cps" >>"$work/$t.cps"
      awk -v a="$added" -v c="$cpu" 'BEGIN { print a + c }' >>"$work/$t.total"
    done
    unset got
  done
  alone=$(median <"$work/alone")
  echo "script: $script"
  if [ "$mode" = loop ]; then
    echo "  workload $mode, $n iterations, alone $alone ns each; events are its CPU's samples, $profile_hz/s;"
    echo "  added is the BPF programs' run time per sample (kernel.bpf_stats_enabled)"
  else
    echo "  workload $mode, $n events, alone $alone ns/event"
  fi
  # Each column is its own median over rounds; total is the median of the rounds' added + cpu.
  printf '  %-10s %14s %17s %14s\n' tracer 'added ns/ev' 'tracer cpu ns/ev' 'total ns/ev'
  declare -A tot=()
  for t in "${tracers[@]}"; do
    if [ -e "$work/skip.$t" ]; then
      printf '  %-10s skipped: %s cannot run this script here: %s\n' "$t" "$t" "$(tr '\n' ' ' <"$work/skip.$t")"
      tot[$t]=; continue
    fi
    a=$(median <"$work/$t.added"); c=$(median <"$work/$t.cpu"); tot[$t]=$(median <"$work/$t.total")
    printf '  %-10s %14.1f %17.1f %14.1f\n' "$t" "$a" "$c" "${tot[$t]}"
    if [ "$mode" = loop ]; then
      awk -v a="$(median <"$work/$t.aps")" -v c="$(median <"$work/$t.cps")" 'BEGIN {
        printf "  %-10s by the clock, per second: task +%.0f us (noise), tracer cpu %.0f us\n", "", a, c }'
    fi
  done
  ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (x == "" || y == "" || y + 0 == 0) print "n/a"; else printf "%.3f", x / y }'; }
  sb=$(ratio "${tot[scry]}" "${tot[bpftrace]}")
  line="  total scry/bpftrace $sb"
  if [ -n "$scry_base" ]; then
    ss=$(ratio "${tot[scry]}" "${tot[scry-base]}")
    # Both ran in every round, next to each other: the median of the rounds' own ratios shrugs off a noisy round.
    pr=$(paste "$work/scry.total" "$work/scry-base.total" | awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | median)
    line+="; scry/scry-base $ss (median of the rounds' ratios ${pr:-n/a})"
  fi
  echo "$line"
  cat "$work/lost"
  if [ -n "${tot[floor]:-}" ]; then
    # 0.8 x bpftrace is out of reach when it is below what an empty program costs.
    echo "  floor (empty program) / bpftrace $(ratio "${tot[floor]}" "${tot[bpftrace]}")"
  fi
  summary+=("$(printf '%-8s %-6s %-11s %s' "$sb" "${ss:-}" "$mode" "$script")")
  unset tot
  tracers=("${base_tracers[@]}")
done

echo
if [ -n "$scry_base" ]; then
  echo "summary: total ns/event ratios (medians over $rounds rounds)"
  printf '%-8s %-6s %-11s %s\n' s/bpft s/base mode script
else
  echo "summary: total ns/event, scry/bpftrace (medians over $rounds rounds)"
  printf '%-8s %-6s %-11s %s\n' s/bpft '' mode script
fi
printf '%s\n' "${summary[@]}"
