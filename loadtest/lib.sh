# Shell helpers of the load scripts (bench.sh, profile.sh, overhead.sh):
# source it from the repository root with OUT and PG set.

# suite NAME [ENV=VALUE ...]: make dev's processes from empty databases, in
# the background ($PID), logging to $OUT/dev-NAME.log; returns once every
# process is ready and 10 s of warm-up have passed.
suite() {
  for db in orders payments inventory; do psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf .dev/kafka .dev/etcd
  resume "$@"
}

# resume NAME [ENV=VALUE ...]: as suite, on the databases and .dev data as
# they are.
resume() {
  local name=$1; shift
  env DEV_MODE=1 LOG_LEVEL=info "$@" bin/devrun dev.procfile > "$OUT/dev-$name.log" 2>&1 & PID=$!
  for _ in $(seq 1 120); do grep -q "the suite is ready" "$OUT/dev-$name.log" && break; sleep 0.5; done
  grep -q "the suite is ready" "$OUT/dev-$name.log" || { echo "the suite did not start, see $OUT/dev-$name.log" >&2; kill -INT $PID; exit 1; }
  sleep "${WARMUP:-10}" # past the warm-up (WARMUP=0: none)
}

# stop: Ctrl-C to the suite, and wait for it.
stop() { kill -INT $PID; wait $PID || true; }

# sum_ticks PID...: user+system CPU (clock ticks) of those processes.
sum_ticks() {
  local t=0 p f
  for p in "$@"; do
    f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
    set -- $f; t=$((t + ${1:-0} + ${2:-0}))
  done
  echo $t
}

# ticks [PATTERN]: CPU ticks of the suite's processes matching PATTERN
# (default: all of them, and PostgreSQL's).
ticks() {
  if [ $# -gt 0 ]; then sum_ticks $(pgrep -f "$1" || true)
  else sum_ticks $(pgrep -f 'bin/(devkafka|devetcd|psp|inventory|payments|orders|sidecar)') $(pgrep -x postgres); fi
}

# ticks_pg: CPU ticks of PostgreSQL's processes.
ticks_pg() { sum_ticks $(pgrep -x postgres); }

# ticks_split: "POSTGRES SERVICES REST", the CPU ticks so far of
# PostgreSQL, of the three services (every replica), and of the processes
# make dev adds around them (broker, etcd, the PSP simulator, sidecars).
ticks_split() {
  echo "$(ticks_pg) $(ticks 'bin/(orders|payments|inventory)') $(ticks 'bin/(devkafka|devetcd|psp|sidecar)')"
}

# busy_ticks: CPU ticks the whole machine has spent busy (/proc/stat:
# user, nice, system, irq, softirq), whoever spent them.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# cost: "TRANSACTIONS STATEMENTS" the suite's databases ran so far:
# PostgreSQL's own count of committed and rolled-back transactions
# (pg_stat_database), and the statements other than BEGIN and COMMIT the
# services say they sent (db.client.statements on each /metrics; a batch
# counts each of its statements). Backends report their counts when idle
# for a moment, so take it with the suite quiet.
cost() {
  local tx st
  tx=$(psql "$PG" -Atc "SELECT coalesce(sum(xact_commit + xact_rollback), 0) FROM pg_stat_database WHERE datname IN ('orders', 'payments', 'inventory')")
  st=$(for port in ${COST_PORTS:-8081 8082 8083 8084}; do curl -sf "http://127.0.0.1:$port/metrics" || true; done |
    awk '/^db_client_statements_total\{/ && !/db_operation_name="(BEGIN|COMMIT)"/ { s += $NF } END { printf "%d", s }')
  echo "$tx $st"
}
