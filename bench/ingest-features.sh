#!/usr/bin/env bash
# Re-runnable benchmark: ingest throughput (JSONL into a 3-worker local cluster of separate processes) and the
# features job wall time, with peak memory (VmHWM) per process, plus the raw RocksDB batch-write rate on the same
# machine as the limit.
#
#   [REPLICATION=R] [OLD_BIN=path] [REUSE=1] bench/ingest-features.sh [USERS] [WORKERS]   # USERS=50000 ~1 M interactions, 500000 ~10 M
#
# The features job runs on a freshly restarted cluster (same data), so each process's peak memory is the job's.
# With OLD_BIN (another build of chorus, e.g. the previous release), the job also runs with that build on the same
# data, in the order new, old, new, so the ratio comes from one run.
# Prints a Markdown table row set; figures go into docs/benchmarks.md by hand with the command and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-50000}
WORKERS=${2:-3}
REPLICATION=${REPLICATION:-2}   # copies of every partition (REPLICATION=1 for the figures of the first release)
OUT=${BENCH_DIR:-/tmp/chorus-bench-$USERS}
BIN=.build-release/release/chorus
scripts/install-deps.sh >/dev/null
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
[ -n "${REUSE:-}" ] || rm -rf "$OUT/cluster"
mkdir -p "$OUT/cluster"
source scripts/throwaway-keys.sh "$OUT/keys"
if [ ! -f "$OUT/gen/interactions.jsonl" ]; then
  /usr/bin/time -f "generate: %e s, peak %M KB" $BIN generate --users "$USERS" --seed 42 --out "$OUT/gen"
fi
INTERACTIONS=$(wc -l < "$OUT/gen/interactions.jsonl")
BYTES=$(stat -c %s "$OUT/gen/interactions.jsonl")
echo "data: $USERS users, $INTERACTIONS interactions ($((BYTES / 1048576)) MiB JSONL)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# start_cluster BIN: a coordinator and WORKERS workers on $OUT/cluster (reusing its data when it exists).
start_cluster() {
  local bin=$1
  pids=(); WPIDS=()
  $bin coordinator --bind "tcp://127.0.0.1:*" --data "$OUT/cluster/coord" --replication "$REPLICATION" --log-level warning > "$OUT/cluster/coord.out" 2>&1 &
  pids+=($!)
  COORD_PID=$!
  for _ in $(seq 600); do grep -q "listening on" "$OUT/cluster/coord.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(grep -o 'tcp://[0-9.:]*' "$OUT/cluster/coord.out" | head -1 || true)
  if [ -z "$ADDR" ]; then echo "the coordinator did not start within 60 s:"; cat "$OUT/cluster/coord.out"; exit 1; fi
  for i in $(seq "$WORKERS"); do
    $bin worker --coordinator "$ADDR" --data "$OUT/cluster/w$i" --name "w$i" --log-level warning > "$OUT/cluster/w$i.out" 2>&1 &
    pids+=($!); WPIDS+=($!)
  done
  for _ in $(seq 100); do
    n=$($bin node list --coordinator "$ADDR" --json | grep -c '"state" : "active"' || true)
    [ "$n" -ge "$WORKERS" ] && break; sleep 0.2
  done
  for _ in $(seq 300); do  # let placement settle (replicas of the still-empty partitions)
    $bin cluster status --coordinator "$ADDR" --json | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if not s['moves'] and s['moves_planned']==0 and not s['under_replicated'] else 1)" && break
    sleep 0.2
  done
}
stop_cluster() { cleanup; pids=(); }
# CPU seconds (user + system) used so far by the cluster's processes: the job's cost, less sensitive than its wall
# time to whatever else runs on the machine.
cpu_seconds() {
  local t=0 p
  for p in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done
  echo "$t / $(getconf CLK_TCK)" | bc -l
}
peak_memory() {
  echo "  peak memory (VmHWM): coordinator $(grep VmHWM /proc/$COORD_PID/status | awk '{print $2, $3}')$(for i in "${!WPIDS[@]}"; do echo -n ", w$((i + 1)) $(grep VmHWM /proc/${WPIDS[$i]}/status | awk '{print $2, $3}')"; done)"
}
start_cluster $BIN
echo "replication factor: $REPLICATION"

# Ingest the interactions file alone (the headline figure), then the rest. REUSE=1 keeps the previous run's loaded
# cluster in $OUT/cluster (same REPLICATION) and measures only the features job.
if [ -z "${REUSE:-}" ]; then
START=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$OUT/ingest.rss" \
  $BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/gen/interactions.jsonl" > "$OUT/ingest.json"
END=$(date +%s.%N)
SECS=$(echo "$END - $START" | bc -l)
RATE=$(echo "$INTERACTIONS / $SECS" | bc -l)
printf "ingest interactions: %d in %.2f s = %.0f interactions/s (client wall time, 2 puts each)\n" "$INTERACTIONS" "$SECS" "$RATE"
python3 -c "import json; r=json.load(open('$OUT/ingest.json')); print('  of which the scan for superseded versions: %.2f s; superseded %d; client peak RSS %s KB' % (r['scan_seconds'], r['superseded'], open('$OUT/ingest.rss').read().split()[-1]))"
$BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/gen/users.jsonl" "$OUT/gen/content.jsonl" "$OUT/gen/follows.jsonl" > "$OUT/ingest-rest.json"
echo "after ingest:"; peak_memory
fi

# features_run LABEL BIN: restart the cluster with BIN on the same data, run the job, report time and memory.
features_run() {
  stop_cluster
  start_cluster "$2"
  local start end cpu0 cpu1
  cpu0=$(cpu_seconds)
  start=$(date +%s.%N)
  "$2" job submit features --coordinator "$ADDR" --as-of 2025-09-29T00:00:00Z --wait --json > "$OUT/job-$1.json" 2>/dev/null
  end=$(date +%s.%N)
  cpu1=$(cpu_seconds)
  local secs cpu
  secs=$(echo "$end - $start" | bc -l)
  cpu=$(echo "$cpu1 - $cpu0" | bc -l)
  printf "features job (%s): %.2f s wall (submit to done) = %.2f µs per interaction; CPU of all processes %.2f s = %.2f µs per interaction\n" \
    "$1" "$secs" "$(echo "$secs * 1000000 / $INTERACTIONS" | bc -l)" "$cpu" "$(echo "$cpu * 1000000 / $INTERACTIONS" | bc -l)"
  grep -E '"state"' "$OUT/job-$1.json" | tail -1 | tr -d ' ,'
  peak_memory
}
features_run new "$BIN"
if [ -n "${OLD_BIN:-}" ]; then
  features_run old "$OLD_BIN"
  features_run new-again "$BIN"
fi
# Incremental features (operations.md): 1000 new interactions of 100 users after the full run, then
# mode=incremental with the same as_of; it recomputes those users and the content they touched, not everyone.
python3 - "$OUT/gen/interactions.jsonl" "$OUT/interactions-late.jsonl" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
first = [json.loads(l) for _, l in zip(range(5000), open(src))]
users = sorted({r["user_id"] for r in first})[:100]
contents = sorted({r["content_id"] for r in first})
with open(dst, "w") as f:
    for n in range(1000):
        f.write(json.dumps({"interaction_id": "late-%d" % n, "user_id": users[n % len(users)],
                            "content_id": contents[n % len(contents)], "type": "like", "channel": "instagram",
                            "ts": "2025-09-28T12:00:00Z"}) + "\n")
PY
$BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/interactions-late.jsonl" > /dev/null
start=$(date +%s.%N)
$BIN job submit features --coordinator "$ADDR" --as-of 2025-09-29T00:00:00Z --param mode=incremental --wait --json > "$OUT/job-incremental.json" 2>/dev/null
end=$(date +%s.%N)
printf "features job (incremental, after 1000 new interactions of 100 users): %.2f s wall (submit to done); " "$(echo "$end - $start" | bc -l)"
python3 -c "import json; s=json.load(open('$OUT/job-incremental.json'))['summary']; print('recomputed %d users and %d content items (%d interactions read)' % (s['users_recomputed'], s['contents_recomputed'], s['interactions_read']))"
stop_cluster

if [ -z "${REUSE:-}" ]; then  # the ingest's limit: skipped when only the job is measured
  echo "raw RocksDB batch-write limit on this machine (same key/value sizes, one process, WAL on):"
  $BIN bench-store --records "$((INTERACTIONS * 2))" --data "$OUT/rawstore"
fi
