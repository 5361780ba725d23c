#!/usr/bin/env bash
# Re-runnable benchmark of the elastic cluster (separate processes on loopback, release build):
#   1. ingest throughput with R=1 against R=2, same data, same run (ratio);
#   2. drain time of one worker of a loaded 3-worker R=2 cluster (throttled at --move-rate-mib, default 32);
#   3. join: time for a new worker to receive its share;
#   4. kill -9 of a worker: time to declare it dead, and time until every partition has R live copies again.
#
#   bench/elastic.sh [USERS] [MOVE_RATE_MIB]     # USERS=50000 gives ~1 M interactions; MOVE_RATE_MIB 0 = unthrottled
#   MOVES_ONLY=1 bench/elastic.sh …               # skip 1 (one R=2 cluster is loaded instead): moves only
#   BIN=/path/to/older/chorus bench/elastic.sh …  # the same run with another build (for example the release before)
#   COORD_ARGS="--max-moves 8" bench/elastic.sh … # extra coordinator flags
# The drain is compared with the disk's sequential write rate (dd, 1 GiB, fdatasync) measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-50000}
RATE_MIB=${2:-32}
OUT=${BENCH_DIR:-/tmp/chorus-elastic-$USERS}
if [ -n "${BIN:-}" ]; then
  echo "binary: $BIN (given; not built)"
else
  BIN=.build-release/release/chorus
  scripts/install-deps.sh >/dev/null
  swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
fi
mkdir -p "$OUT"
source scripts/throwaway-keys.sh "$OUT/keys"
if [ ! -f "$OUT/gen/interactions.jsonl" ]; then
  $BIN generate --users "$USERS" --seed 42 --out "$OUT/gen" >/dev/null
fi
INTERACTIONS=$(wc -l < "$OUT/gen/interactions.jsonl")
echo "data: $USERS users, $INTERACTIONS interactions; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
now() { date +%s.%N; }
status() { $BIN cluster status --coordinator "$ADDR" --json; }
# py EXPR: evaluates EXPR with `s` = the cluster status JSON.
py() { status | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
declare -A WPID
# CPU seconds (user + system) used so far by the cluster's processes (those still running).
cpu_total() {
  local t=0 p
  for p in "${pids[@]}"; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t / $(getconf CLK_TCK)" | bc -l
}

start_worker() {  # start_worker NAME
  $BIN worker --coordinator "$ADDR" --data "$DIR/$1" --name "$1" --log-level warning > "$DIR/$1.out" 2>&1 &
  pids+=($!); WPID[$1]=$!
}

settled() { py "int(not s['under_replicated'] and not s['moves'] and s['moves_planned'] == 0 and s['unassigned_partitions'] == 0)"; }

wait_settled() {
  for _ in $(seq 6000); do [ "$(settled)" = 1 ] && return; sleep 0.1; done
  echo "cluster did not settle" >&2; exit 1
}

start_cluster() {  # start_cluster NAME R
  DIR="$OUT/$1"; rm -rf "$DIR"; mkdir -p "$DIR"
  # shellcheck disable=SC2086  # COORD_ARGS: extra coordinator flags, split on spaces (e.g. "--max-moves 8")
  $BIN coordinator --bind "tcp://127.0.0.1:*" --data "$DIR/coord" --replication "$2" --move-rate-mib "$RATE_MIB" \
    ${COORD_ARGS:-} --log-level warning > "$DIR/coord.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$DIR/coord.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(grep -o 'tcp://[0-9.:]*' "$DIR/coord.out" | head -1)
  for w in w1 w2 w3; do start_worker $w; done
  for _ in $(seq 200); do [ "$(py "sum(1 for n in s['nodes'] if n['state']=='active')")" = 3 ] && break; sleep 0.1; done
  wait_settled
}

ingest_rate() {
  local t0 t1
  t0=$(now)
  $BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/gen/interactions.jsonl" > "$DIR/ingest.json"
  t1=$(now)
  echo "$INTERACTIONS / ($t1 - $t0)" | bc -l
}

if [ "${MOVES_ONLY:-0}" = 1 ]; then
  echo "== 1. skipped (MOVES_ONLY=1): one R=2 cluster, all four files ingested"
  start_cluster r2 2
  $BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/gen/interactions.jsonl" > /dev/null
else
  echo "== 1. ingest throughput, R=1 vs R=2 (3 workers, interactions file, client wall time; alternated twice)"
  for round in 1 2; do
    start_cluster r1 1
    R1=$(ingest_rate)
    cleanup; pids=()
    start_cluster r2 2
    R2=$(ingest_rate)
    printf "round %d: R=1: %.0f interactions/s   R=2: %.0f interactions/s   R=2/R=1 = %.2f\n" "$round" "$R1" "$R2" "$(echo "$R2 / $R1" | bc -l)"
    if [ "$round" = 1 ]; then cleanup; pids=(); fi
  done
fi
$BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/gen/users.jsonl" "$OUT/gen/content.jsonl" "$OUT/gen/follows.jsonl" > /dev/null
# The disk's sequential write bound, on the file system that holds the workers' data, in the same run: 1 GiB
# written and fdatasync'ed (dd), before the moves.
t0=$(now)
dd if=/dev/zero of="$OUT/dd.tmp" bs=4M count=256 conv=fdatasync status=none
t1=$(now)
rm -f "$OUT/dd.tmp"
DISK=$(echo "1024 / ($t1 - $t0)" | bc -l)
printf "disk: sequential write %.0f MiB/s (dd, 1 GiB, fdatasync, %s)\n" "$DISK" "$(df --output=fstype "$OUT" | tail -1)"
sleep 3  # heartbeats report bytes held
echo "holdings before the drain:"
$BIN node list --coordinator "$ADDR"

echo "== 2. drain w3 (move throttle $RATE_MIB MiB/s per move, 4 moves in flight at most)"
BYTES=$(py "[n['bytes_held'] for n in s['nodes'] if n['name']=='w3'][0]")
PARTS=$(py "[n['partitions'] for n in s['nodes'] if n['name']=='w3'][0]")
c0=$(cpu_total)
t0=$(now)
$BIN node drain w3 --wait --coordinator "$ADDR" 2>/dev/null
t1=$(now)
c1=$(cpu_total)
D=$(echo "$t1 - $t0" | bc -l)
printf "drain CPU: %.1f s of the cluster's processes over %.1f s (%.0f%% of %d cores)\n" "$(echo "$c1 - $c0" | bc -l)" "$D" \
  "$(echo "100 * ($c1 - $c0) / $D / $(nproc)" | bc -l)" "$(nproc)"
printf "drain: %d partition copies, %.1f MiB held, drained in %.1f s (%.1f MiB/s, %.0f%% of the disk's sequential write rate)\n" \
  "$PARTS" "$(echo "$BYTES / 1048576" | bc -l)" "$D" "$(echo "$BYTES / 1048576 / $D" | bc -l)" "$(echo "100 * $BYTES / 1048576 / $D / $DISK" | bc -l)"

echo "== 3. join: w4 starts and receives its share"
t0=$(now)
start_worker w4
for _ in $(seq 200); do [ "$(py "sum(1 for n in s['nodes'] if n['name']=='w4' and n['state'] in ('active','joining'))")" = 1 ] && break; sleep 0.1; done
sleep 1
wait_settled
t1=$(now)
sleep 2  # heartbeats report bytes held
JB=$(py "[n['bytes_held'] for n in s['nodes'] if n['name']=='w4'][0]")
printf "join: w4 holds %s partition copies (%.1f MiB) after %.1f s\n" "$(py "[n['partitions'] for n in s['nodes'] if n['name']=='w4'][0]")" \
  "$(echo "$JB / 1048576" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"

echo "== 4. kill -9 w1: detection and re-replication"
t0=$(now)
kill -9 "${WPID[w1]}"
for _ in $(seq 600); do [ "$(py "[n['state'] for n in s['nodes'] if n['name']=='w1'][0]")" = dead ] && break; sleep 0.1; done
t1=$(now)
wait_settled
t2=$(now)
printf "dead worker: declared dead after %.1f s, R restored after %.1f s (%.1f s of copying)\n" \
  "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t0" | bc -l)" "$(echo "$t2 - $t1" | bc -l)"
$BIN node list --coordinator "$ADDR"
