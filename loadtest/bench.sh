#!/bin/bash
# make bench: the suite's throughput and cost per saga on this machine,
# beside two PostgreSQL ceilings measured in the same run, and optionally
# beside an earlier commit and the Watermill peer (docs/performance.md).
#
#   loadtest/bench.sh [FROM:TO:STEP]      (default 100:1300:50)
#   BASE=8e41cef ROUNDS=2 loadtest/bench.sh    the suite at BASE too, alternately
#   PEER_DIR=<a checkout of the Watermill peer> loadtest/bench.sh
#
# 1. The naive ceiling: pgbench, one-row jsonb transactions (BEGIN, INSERT,
#    COMMIT), 8 clients, 15 s; a saga makes about 6 such commits.
# 2. The pattern-faithful ceiling: pgbench running
#    loadtest/pgbench/saga_essential.sql (the SQL four sagas need to keep
#    every pattern, batched as the consumers batch), 8 clients, 15 s, and
#    PostgreSQL's CPU a saga on it (the machine's busy CPU less pgbench's).
# 3. Per variant (this checkout, and BASE's), ROUNDS times, alternately:
#    a. the suite from empty databases, at once (no warm-up): 50 orders/s
#       for 15 s (the first 15 s), 50/s for 30 s more (steady), 100/s for
#       30 s (latency, and CPU a saga: PostgreSQL, the services, the rest of
#       make dev's processes, the load generator), 200/s for 30 s with
#       PostgreSQL's transactions
#       (pg_stat_database) and the services' statements
#       (db.client.statements, BEGIN and COMMIT aside) counted per saga;
#    b. the suite from empty databases again, the open-model search: each
#       rate held 15 s, 5 s apart, until one is not sustained (every order
#       CONFIRMED within 5 s).
# 4. With PEER_DIR: the peer's saga step (one message in, one out, through
#    its inbox, a stock update and its outbox) in msg/s; a saga here is
#    five such steps.
# 5. The budget a saga at each of round 3's goals (0.6 of the pattern-faithful
#    ceiling, twice BASE, the peer): the machine's cores over the goal's
#    rate, and what is left of it once PostgreSQL has run the essential SQL,
#    beside what the other processes take now.
# Run it on a quiet machine, with no make dev running: it drops make dev's
# databases and .dev data. Results: .dev/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=${1:-100:1300:50}
ROUNDS=${ROUNDS:-1}
OUT=$ROOT/.dev/bench; mkdir -p "$OUT"
PG=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
export PG OUT
HZ=$(getconf CLK_TCK); CORES=$(nproc)
source loadtest/lib.sh
make -s build
go build -o bin/ ./loadtest/cmd/loadrun
LOADRUN=$ROOT/bin/loadrun

# pgbench_tps NAME SCHEMA SCRIPT: pgbench's tps on a scratch database.
pgbench_tps() {
  local db="bench_$1" url
  url=${PG/\/postgres\?//$db?}
  psql "$PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
  psql "$url" -q -v ON_ERROR_STOP=1 -f "$2" >/dev/null
  psql "$url" -qc CHECKPOINT >/dev/null
  local b0 b1 TIMEFORMAT='%U %S'
  b0=$(busy_ticks)
  { time pgbench -n -c 8 -j 2 -T 15 -f "$3" "$url" > "$OUT/pgbench-$1.txt" 2>&1; } 2> "$OUT/pgbench-$1.time"
  b1=$(busy_ticks)
  # the machine's busy CPU seconds during the run, and pgbench's own
  echo "$(( b1 - b0 )) $HZ $(cat "$OUT/pgbench-$1.time")" | awk '{ printf "%.2f %.2f\n", $1 / $2, $3 + $4 }' > "$OUT/pgbench-$1.cpu"
  psql "$PG" -qc "DROP DATABASE $db" >/dev/null
  sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench-$1.txt" | head -1
}
echo "CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload jsonb NOT NULL);" > "$OUT/naive_schema.sql"
NAIVE=$(pgbench_tps naive "$OUT/naive_schema.sql" loadtest/pgbench/tx_insert_jsonb.sql)
CEILING=$(awk "BEGIN{printf \"%.0f\", 4 * $(pgbench_tps essential loadtest/pgbench/saga_essential_schema.sql loadtest/pgbench/saga_essential.sql)}")
# PostgreSQL's CPU a saga on the essential SQL: the machine's busy CPU
# during that run less pgbench's own, over the sagas it ran (15 s of them).
read -r ESS_BUSY ESS_PGBENCH < "$OUT/pgbench-essential.cpu"
ESSENTIAL_MS=$(awk "BEGIN{printf \"%.2f\", ($ESS_BUSY - $ESS_PGBENCH) * 1000 / ($CEILING * 15)}")

# field FILE KEY: a percentile of loadrun's saga completion line, in ms.
field() { sed -n "s/^saga completion .* $2 \([0-9.]*\)\(m\?s\).*/\1 \2/p" "$1" | awk '{ v = $1; if ($2 == "s") v *= 1000; printf "%.1f", v }'; }

# measure LABEL DIR: one round of step 3 for the checkout in DIR.
measure() {
  local label=$1 dir=$2 o="$OUT/$1" c0 c1 n
  mkdir -p "$o"
  (
    cd "$dir"
    OUT=$o
    WARMUP=0 suite first
    "$LOADRUN" -rate 50 -duration 15s > "$o/first.txt" 2>&1 || true
    "$LOADRUN" -rate 50 -duration 30s > "$o/steady.txt" 2>&1 || true
    local s0 s1 TIMEFORMAT='%U %S'
    s0=$(ticks_split)
    { time "$LOADRUN" -rate 100 -duration 30s > "$o/latency.txt" 2>&1 || true; } 2> "$o/latency.time"
    s1=$(ticks_split)
    n=$(sed -n 's/.*CONFIRMED:\([0-9]*\).*/\1/p' "$o/latency.txt")
    # CPU a saga at 100/s, in ms: PostgreSQL, the services, the rest of
    # make dev's processes, the load generator, all of them
    echo "$s0 $s1 $HZ ${n:-0} $(cat "$o/latency.time")" | awk '{ n = $8 > 0 ? $8 : 1; k = 1000 / $7 / n
      pg = ($4 - $1) * k; sv = ($5 - $2) * k; rest = ($6 - $3) * k; lg = ($9 + $10) * 1000 / n
      printf "%.2f %.2f %.2f %.2f %.2f\n", pg, sv, rest, lg, pg + sv + rest + lg }' > "$o/cpu.txt"
    sleep 2; c0=$(cost)
    "$LOADRUN" -rate 200 -duration 30s > "$o/cost.txt" 2>&1 || true
    sleep 11 # every backend reports its counts once idle for a moment
    c1=$(cost)
    stop
    n=$(sed -n 's/.*CONFIRMED:\([0-9]*\).*/\1/p' "$o/cost.txt")
    echo "$c0 $c1 ${n:-0}" | awk '{ n = $5 > 0 ? $5 : 1; printf "%.1f %.1f\n", ($3 - $1) / n, ($4 - $2) / n }' > "$o/per-saga.txt"
    suite search
    "$LOADRUN" -search "$RATES" > "$o/search.txt" 2>&1 || true
    stop
  )
  local sagas tx st pg sv rest lg all
  sagas=$(sed -n 's/^sustained: \([0-9.]*\).*/\1/p' "$o/search.txt"); sagas=${sagas:-0}
  read -r tx st < "$o/per-saga.txt"
  read -r pg sv rest lg all < "$o/cpu.txt"
  echo "$label $sv $rest $lg" >> "$OUT/cpu.txt"
  [ "$st" = "0.0" ] && st="n/a (no db.client.statements at this commit)"
  echo "$label $sagas" >> "$OUT/sustained.txt"
  {
    echo "== $label"
    echo "sustained                 $sagas sagas/s = $(awk "BEGIN{printf \"%.2f\", $sagas/$CEILING}") of the pattern-faithful ceiling, $(awk "BEGIN{printf \"%.2f\", $sagas/($NAIVE/6)}") of the naive one"
    echo "at 200 orders/s           $tx PostgreSQL transactions and $st statements per saga"
    echo "at 100 orders/s           saga p50 $(field "$o/latency.txt" p50) ms, p99 $(field "$o/latency.txt" p99) ms"
    echo "CPU a saga at 100/s       $all ms: PostgreSQL $pg, the services $sv, broker, etcd, PSP and sidecars $rest, the load generator $lg"
    echo "at 50 orders/s            saga p99 $(field "$o/first.txt" p99) ms in the first 15 s, $(field "$o/steady.txt" p99) ms steady"
    echo "search steps:"; grep -E "^  [✓✗]" "$o/search.txt" || true
  } | tee "$o/summary.txt"
}

: > "$OUT/sustained.txt"; : > "$OUT/cpu.txt"
if [ -n "${BASE:-}" ]; then
  BASE_DIR=$ROOT/.dev/bench-base
  if [ ! -d "$BASE_DIR" ] || [ "$(git -C "$BASE_DIR" rev-parse HEAD)" != "$(git rev-parse "$BASE^{commit}")" ]; then
    git worktree remove --force "$BASE_DIR" 2>/dev/null || rm -rf "$BASE_DIR"
    git worktree add --detach "$BASE_DIR" "$BASE" >/dev/null
  fi
  (cd "$BASE_DIR" && make -s build)
fi
for round in $(seq "$ROUNDS"); do
  [ -n "${BASE:-}" ] && measure "base-$round" "$BASE_DIR"
  measure "head-$round" "$ROOT"
done

PEER=""
if [ -n "${PEER_DIR:-}" ]; then
  (cd "$PEER_DIR" && RUNS=1 ONLY=saga-poll10ms ./run.sh) > "$OUT/peer.txt" 2>&1 || true
  PEER=$(grep -o '"saga_msgs_per_s":[0-9.]*' "$PEER_DIR/results/results.jsonl" | tail -1 | cut -d: -f2)
fi

echo; echo "== summary"
echo "naive ceiling             $NAIVE tps (pgbench, one-row commits, 8 clients) / 6 = $(awk "BEGIN{printf \"%.0f\", $NAIVE/6}") sagas/s"
echo "pattern-faithful ceiling  $CEILING sagas/s (pgbench, loadtest/pgbench/saga_essential.sql, 8 clients)"
for f in "$OUT"/*/summary.txt; do [ -f "$f" ] && cat "$f"; done
if [ -n "${BASE:-}" ]; then
  # A round that sustained none of the search's steps (0) would halve
  # its variant's mean, and the ratio would say more about the first step
  # than about the code: no ratio then.
  awk -v first="${RATES%%:*}" '$2 == 0 { zero = zero " " $1 } /^head/ { h += $2; nh++ } /^base/ { b += $2; nb++ }
    END {
      if (zero != "") printf "this checkout / %s       not computed: %s sustained not even the first step (%s/s); search lower (BENCH_RATES)\n", "'"$BASE"'", substr(zero, 2), first
      else if (nb && b) printf "this checkout / %s       %.2f× sustained sagas/s (%d alternated rounds)\n", "'"$BASE"'", (h/nh)/(b/nb), nh
    }' "$OUT/sustained.txt"
fi
if [ -n "$PEER" ]; then
  awk '/^head/ { h += $2; n++ } END { printf "Watermill peer            %s saga-step msg/s; 5 × sagas/s / that = %.2f\n", "'"$PEER"'", 5*(h/n)/'"$PEER"' }' "$OUT/sustained.txt"
fi

# What a saga may cost at each goal: the machine's CPU over the goal's
# rate, less what PostgreSQL needs for the essential SQL alone; what is
# left must carry every other process. Beside it, what they take now.
base_mean=$(awk '/^base/ { b += $2; n++ } END { if (n && b) printf "%.0f", b / n }' "$OUT/sustained.txt")
peer_rate=$([ -n "$PEER" ] && awk "BEGIN{printf \"%.0f\", $PEER / 5}" || true)
awk -v cores="$CORES" -v ess="$ESSENTIAL_MS" -v ceiling="$CEILING" -v base="$base_mean" -v peer="$peer_rate" '
  /^head/ { sv += $2; rest += $3; lg += $4; n++ }
  function goal(name, rate) {
    if (rate <= 0) return
    printf "  %-38s %4.0f sagas/s: %5.2f ms a saga, %5.2f after PostgreSQL\n", name, rate, cores * 1000 / rate, cores * 1000 / rate - ess
  }
  END {
    printf "budget a saga at the goals (%d cores; PostgreSQL on the essential SQL alone: %.2f ms a saga)\n", cores, ess
    goal("0.6 of the pattern-faithful ceiling", 0.6 * ceiling)
    goal("2x the sustained rate of BASE", 2 * base)
    goal("the Watermill peer (its msg/s / 5)", peer)
    if (n) printf "  this checkout at 100/s: the services %.2f ms, broker, etcd, PSP and sidecars %.2f, the load generator %.2f\n", sv / n, rest / n, lg / n
  }' "$OUT/cpu.txt"
