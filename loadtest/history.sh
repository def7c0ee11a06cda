#!/bin/bash
# make bench-history: does a saga slow down as history grows? The suite's
# latency at 100 orders/s from empty databases, then again after adding a
# million events (200,000 orders' streams, projected: their read-model rows
# are there and the projection's checkpoint is past them) and a million
# inbox rows in each service's database, vacuumed and checkpointed
# (docs/performance.md). Issue 11 allows p50 and p99 to grow 1.5× at most.
#
#   loadtest/history.sh [RATE] [DURATION]      (default 100 30s)
#
# Run it on a quiet machine, with no make dev running: it drops make dev's
# databases and .dev data. Results: .dev/history/.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100}; DURATION=${2:-30s}
OUT=.dev/history; mkdir -p "$OUT"
PG=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
db() { psql "${PG/\/postgres\?//$1?}" -v ON_ERROR_STOP=1 -qAt "${@:2}"; }
make -s build
go build -o bin/ ./loadtest/cmd/loadrun
source loadtest/lib.sh

suite empty
bin/loadrun -rate "$RATE" -duration "$DURATION" > "$OUT/empty.txt" 2>&1 || true
stop

echo "adding history (a minute or two)…"
db orders -c "INSERT INTO events (stream_id, version, type, schema_version, data, metadata, occurred_at)
  SELECT 'order-history-' || (g / 5), g % 5 + 1, (ARRAY['OrderPlaced','OrderNoted','OrderNoted','OrderNoted','OrderConfirmed'])[g % 5 + 1],
    1, '{}', '{}', now() - make_interval(secs => 1000000 - g)
  FROM generate_series(0, 999999) g" \
  -c "INSERT INTO order_summaries (order_id, customer_id, status, items, total_cents, currency, version, created_at, updated_at)
  SELECT 'history-' || g, 'c-' || (g % 1000), 'CONFIRMED', '[]', 1000, 'USD', 5, now() - make_interval(secs => 1000000 - 5 * g), now()
  FROM generate_series(0, 199999) g" \
  -c "UPDATE projection_checkpoints SET transaction_id = (SELECT max(transaction_id)::text::bigint FROM events),
    position = (SELECT max(position) FROM events)"
for d in orders payments inventory; do
  consumer=$(db "$d" -c "SELECT consumer FROM inbox LIMIT 1")
  db "$d" -c "INSERT INTO inbox (consumer, event_id) SELECT '$consumer', 'history-' || g FROM generate_series(1, 1000000) g"
done
# History is old: vacuumed, analyzed and checkpointed, as autovacuum and
# the checkpointer leave it; not still being written out during the run.
for d in orders payments inventory; do db "$d" -c "VACUUM ANALYZE"; done
db orders -c "CHECKPOINT"
db orders -c "SELECT count(*) || ' events, ' || (SELECT count(*) FROM order_summaries) || ' orders in the read model' FROM events"

resume history
bin/loadrun -rate "$RATE" -duration "$DURATION" > "$OUT/history.txt" 2>&1 || true
stop

for run in empty history; do
  echo "$run:"
  grep -E "^(accepted|POST|saga)" "$OUT/$run.txt" | sed 's/^/  /'
done
