#!/bin/bash
# The telemetry overhead A/B of docs/observability.md: the same make dev
# suite and the same loadrun load under three settings, interleaved, with
# CPU per saga summed over the suite's processes and PostgreSQL.
#
#   loadtest/overhead.sh [ROUNDS] [RATE] [DURATION]      (default 3 40 90s)
#
# Each run starts from empty databases (the suite creates and migrates
# them), so runs do not inherit each other's tables; the order of the
# settings rotates from round to round, so no setting always runs last.
# Telemetry goes to loadtest/cmd/sink, which discards it. Run it on a quiet
# machine, with no make dev running: it drops make dev's databases and
# its .dev Kafka and etcd data. Results: .dev/overhead/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; RATE=${2:-40}; DURATION=${3:-90s}
OUT=.dev/overhead; mkdir -p "$OUT"
PG=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
make -s build
go build -o bin/ ./loadtest/cmd/loadrun ./loadtest/cmd/sink
bin/sink > "$OUT/sink.log" 2>&1 & SINK=$!
trap 'kill $SINK 2>/dev/null' EXIT

settings=(off traces all)
envs_off="OTEL_TRACES_SAMPLER=always_off OTEL_EXPORTER_OTLP_ENDPOINT= PYROSCOPE_SERVER_ADDRESS="
envs_traces="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318 OTEL_LOGS_EXPORTER=none PYROSCOPE_SERVER_ADDRESS="
envs_all="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318 PYROSCOPE_SERVER_ADDRESS=http://127.0.0.1:14040"

source loadtest/lib.sh # ticks

one() { # one SETTING ROUND
  local s=$1 r=$2 envs log pid t0 t1
  envs=envs_$s
  for db in orders payments inventory; do psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done
  rm -rf .dev/kafka .dev/etcd
  log="$OUT/dev-$s-$r.log"
  env DEV_MODE=1 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf LOG_LEVEL=info ${!envs} \
    bin/devrun \
    dev.procfile > "$log" 2>&1 & pid=$!
  for _ in $(seq 1 120); do grep -q "the suite is ready" "$log" && break; sleep 0.5; done
  grep -q "the suite is ready" "$log" || { echo "overhead: the suite did not start, see $log" >&2; kill -INT $pid; exit 1; }
  sleep 20 # past the warm-up
  t0=$(ticks)
  bin/loadrun -rate "$RATE" -duration "$DURATION" > "$OUT/load-$s-$r.log" 2>&1 || true
  t1=$(ticks)
  kill -INT $pid; wait $pid || true
  echo "$s $r ticks=$((t1 - t0)) $(tr '\n' ' ' < "$OUT/load-$s-$r.log")" >> "$OUT/results.txt"
}

: > "$OUT/results.txt"
for r in $(seq 1 "$ROUNDS"); do
  for i in 0 1 2; do one "${settings[$(((i + r - 1) % 3))]}" "$r"; done
done
# CPU per saga and saga latency, and each setting against "off" of its round.
awk '{
  s=$1; r=$2; sub("ticks=","",$3); n=0
  for (i=4; i<=NF; i++) { if ($i=="orders:") n=$(i+1); if ($i=="completion") { p50=$(i+2); p99=$(i+6) } }
  sub("ms","",p50); sub("ms","",p99)
  cpu[s,r]=$3*10/n; q50[s,r]=p50; q99[s,r]=p99; rounds[r]=1
} END {
  printf "%-7s %5s %14s %10s %10s %10s %8s\n", "setting", "round", "CPU/saga (ms)", "thr vs off", "p50 (ms)", "p99 (ms)", "p99 vs off"
  split("off traces all", names, " ")
  for (r in rounds) for (k=1; k<=3; k++) { s=names[k]
    printf "%-7s %5s %14.1f %10.2f %10s %10s %8.2f\n", s, r, cpu[s,r], cpu["off",r]/cpu[s,r], q50[s,r], q99[s,r], q99[s,r]/q99["off",r] }
}' "$OUT/results.txt"
