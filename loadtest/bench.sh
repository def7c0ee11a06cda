#!/bin/bash
# make bench: the suite's throughput on this machine, beside PostgreSQL's
# commit ceiling measured in the same run (docs/performance.md).
#
#   loadtest/bench.sh [FROM:TO:STEP]      (default 50:1300:50)
#
# 1. pgbench: one-row jsonb transactions, 8 clients, 15 s, on a scratch
#    database: the ceiling; a saga makes about 6 such commits.
# 2. The suite from empty databases (make dev's processes), 100 orders/s
#    for 30 s: saga and POST latency.
# 3. The suite from empty databases again, the open-model search: each rate
#    held 15 s, 5 s apart, until one is not sustained (every order
#    CONFIRMED within 5 s).
# Run it on a quiet machine, with no make dev running: it drops make dev's
# databases and .dev data. Results: .dev/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-50:1300:50}
OUT=.dev/bench; mkdir -p "$OUT"
PG=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
make -s build
go build -o bin/ ./loadtest/cmd/loadrun

psql "$PG" -qc "DROP DATABASE IF EXISTS bench_pgbench" -c "CREATE DATABASE bench_pgbench" >/dev/null 2>&1
psql "${PG/\/postgres\?//bench_pgbench?}" -qc "CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload jsonb NOT NULL)" >/dev/null
pgbench -n -c 8 -j 2 -T 15 -f loadtest/pgbench/tx_insert_jsonb.sql "${PG/\/postgres\?//bench_pgbench?}" > "$OUT/pgbench.txt" 2>&1
psql "$PG" -qc "DROP DATABASE bench_pgbench" >/dev/null
TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench.txt" | head -1)

source loadtest/lib.sh

suite latency
bin/loadrun -rate 100 -duration 30s > "$OUT/latency.txt" 2>&1 || true
stop
suite search
bin/loadrun -search "$RATES" > "$OUT/search.txt" 2>&1 || true
stop

SAGAS=$(sed -n 's/^sustained: \([0-9.]*\).*/\1/p' "$OUT/search.txt")
echo "PostgreSQL ceiling   ${TPS} tps (pgbench, 8 clients); naive saga ceiling (6 commits each): $(awk "BEGIN{printf \"%.0f\", ${TPS}/6}") sagas/s"
echo "sustained            ${SAGAS:-0} sagas/s = $(awk "BEGIN{printf \"%.2f\", ${SAGAS:-0}/(${TPS}/6)}") of the naive ceiling"
echo "at 100 orders/s:"
grep -E "^(accepted|POST|saga)" "$OUT/latency.txt" | sed 's/^/  /'
echo "search steps:"
grep -E "^  [✓✗]" "$OUT/search.txt" || true
