#!/bin/bash
# Where a saga's CPU goes: make dev's suite from empty databases under a
# constant open-model load, with CPU seconds per process (and per confirmed
# saga) and a 20 s CPU profile of each service taken mid-run through its
# admin pprof route (docs/performance.md).
#
#   loadtest/profile.sh [RATE] [DURATION]      (default 150 30s)
#
# Run it on a quiet machine, with no make dev running: it drops make dev's
# databases and .dev data. Results: .dev/profile/ (cpu.txt, *.pprof,
# *.top.txt, and *.svg: each profile as a flame graph,
# loadtest/cmd/flamegraph); open one with go tool pprof -http=: .dev/profile/orders.pprof
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-150}; DURATION=${2:-30s}
OUT=.dev/profile; mkdir -p "$OUT"; rm -f "$OUT"/*.pprof
PG=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
TOKEN=dev-admin-token # DEV_MODE's ADMIN_TOKEN
make -s build
go build -o bin/ ./loadtest/cmd/loadrun ./loadtest/cmd/flamegraph
source loadtest/lib.sh

declare -A PROCS=([orders]='bin/orders' [inventory]='bin/inventory' [payments]='bin/payments' [psp]='bin/psp'
  [kafka]='bin/devkafka' [etcd]='bin/devetcd' [sidecars]='bin/sidecar')
declare -A PORTS=([orders]=8081 [inventory-1]=8083 [payments]=8082)
suite profile
declare -A T0
for n in "${!PROCS[@]}"; do T0[$n]=$(ticks "${PROCS[$n]}"); done
PG0=$(ticks_pg)
bin/loadrun -rate "$RATE" -duration "$DURATION" > "$OUT/load.txt" 2>&1 & LOAD=$!
sleep 5
CURLS=()
for n in "${!PORTS[@]}"; do
  curl -sf -H "Authorization: Bearer $TOKEN" -o "$OUT/$n.pprof" \
    "http://127.0.0.1:${PORTS[$n]}/admin/debug/pprof/profile?seconds=20" & CURLS+=($!)
done
wait $LOAD || true
wait "${CURLS[@]}" || true
HZ=$(getconf CLK_TCK)
CONFIRMED=$(sed -n 's/.*confirmed \([0-9.]*\)\/s.*/\1/p' "$OUT/load.txt" | head -1)
SECS=${DURATION%s}
{
  echo "load: $RATE orders/s for $DURATION; confirmed ${CONFIRMED:-?}/s"
  printf "%-10s %10s %14s\n" process "CPU s" "CPU ms/saga"
  for n in postgres "${!PROCS[@]}"; do
    if [ "$n" = postgres ]; then d=$(( $(ticks_pg) - PG0 )); else d=$(( $(ticks "${PROCS[$n]}") - T0[$n] )); fi
    awk -v n="$n" -v d="$d" -v hz="$HZ" -v c="${CONFIRMED:-0}" -v s="$SECS" \
      'BEGIN{printf "%-10s %10.1f %14.2f\n", n, d/hz, (c>0 ? d/hz*1000/(c*s) : 0)}'
  done
} | tee "$OUT/cpu.txt"
stop
for n in "${!PORTS[@]}"; do
  go tool pprof -top -nodecount=40 "$OUT/$n.pprof" > "$OUT/$n.top.txt" 2>/dev/null || true
  bin/flamegraph -title "$n at $RATE orders/s ($(git rev-parse --short HEAD))" "$OUT/$n.pprof" > "$OUT/$n.svg" 2>/dev/null || true
done
grep -E "^(accepted|POST|saga)" "$OUT/load.txt"
