#!/usr/bin/env bash
# Soak of `scry --serve` (not CI): 10,000 series kept updated by a steady getppid workload while the
# endpoint is scraped every second; reports the scrape latency (median, worst), RSS at start and end,
# and the events lost. Loopback only; stops by itself after MINUTES.
# usage: scripts/export-soak.sh [MINUTES] [CALLS_PER_SECOND]   (run as root, after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
rate=${2:-20000}
scry=${SCRY_BIN:-.build/release/scry}
[ -x "$scry" ] || { echo "build first: make build" >&2; exit 2; }
work=$(mktemp -d)
cc -O2 -o "$work/soakload" Tests/Fixtures/workload.c
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$scry" -q --serve "$port" -e \
  'tracepoint:syscalls:sys_enter_getppid /comm == "soakload"/ { @series[nsecs % 10000] = count(); @lat = hist(nsecs % 65536); }' \
  >"$work/scry.log" 2>&1 &
scry_pid=$!
trap 'kill -INT $scry_pid 2>/dev/null; wait $scry_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$scry_pid/status"; }
# Fill the 10,000 series before the first reading.
"$work/soakload" syscall 200000 >/dev/null
rss_start=$(rss)
end=$(( $(date +%s) + minutes * 60 ))
: >"$work/latencies"
while [ "$(date +%s)" -lt "$end" ]; do
  "$work/soakload" syscall "$rate" >/dev/null
  curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >>"$work/latencies"
  sleep 1
done
rss_end=$(rss)
lost=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^scry_lost_events_total/ {print $2}')
series=$(curl -s "http://127.0.0.1:$port/metrics" | grep -c '^scry_series_total')
sort -n "$work/latencies" | awk -v s="$series" -v a="$rss_start" -v b="$rss_end" -v l="$lost" '
  {v[NR]=$1} END {printf "scrapes %d of %d series: median %.1f ms, worst %.1f ms; RSS %.1f -> %.1f MiB; lost events %s\n",
  NR, s, v[int((NR+1)/2)]*1000, v[NR]*1000, a/1024, b/1024, l}'
