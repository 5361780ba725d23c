#!/usr/bin/env bash
# Seconds per Lloyd iteration of the `segments` job against scikit-learn and Spark MLlib KMeans (pyspark, local
# mode) on the same feature matrix: the standardized vectors the job clustered (store_vectors=true), exported
# with `chorus profile export`. One run, ratios in the same run (docs/benchmarks.md "Segments").
#
#   bench/segments.sh [USERS]        default 1000000; WORKERS=2 PARTITIONS=16 K=6 ITER=10 SKIP_SPARK=1
#
# Ours: the job's own mean stage time per Lloyd iteration (broadcast of the centroids, every partition's
# partial sums, the merge), on a real cluster. Peers: marginal seconds per iteration, (fit(ITER+1) − fit(1)) / ITER,
# so their start-up, data loading and seeding are left out. Peers go into .cache/peers/venv (scripts/peers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000000}
WORKERS=${WORKERS:-2}
PARTITIONS=${PARTITIONS:-16}
K=${K:-6}
ITER=${ITER:-10}
OUT=${BENCH_DIR:-/tmp/chorus-segments-bench}
BIN=.build-release/release/chorus
scripts/install-deps.sh >/dev/null
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
PEERS=(sklearn); [ -n "${SKIP_SPARK:-}" ] || PEERS+=(spark)
PY=$(scripts/peers.sh "${PEERS[@]}")
mkdir -p "$OUT"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $(nproc) cores, $CPU; $(date -u +%FT%TZ); $USERS users, $WORKERS workers, $PARTITIONS partitions, k=$K"

source bench/lib.sh  # start_cluster, cleanup
start_cluster "$OUT/cluster" "$WORKERS" "$PARTITIONS"

G="$OUT/gen-$USERS"
[ -f "$G/interactions.jsonl" ] || $BIN generate --users "$USERS" --seed 42 --segments 6 --out "$G" > /dev/null
t0=$(date +%s)
$BIN ingest --coordinator "$ADDR" --json --no-progress "$G/users.jsonl" "$G/content.jsonl" "$G/interactions.jsonl" \
  "$G/follows.jsonl" > "$OUT/ingest.json"
echo "ingest: $(python3 -c "import json; r=json.load(open('$OUT/ingest.json')); print(r['stored'], 'records')") in $(( $(date +%s) - t0 )) s"
$BIN job submit features --as-of 1759104000 --coordinator "$ADDR" --wait --json > "$OUT/features.json"
# tolerance 0 keeps iterating (up to max_iterations) so the mean is over ITER stages.
$BIN job submit segments --coordinator "$ADDR" --wait --json --param k="$K" --param max_iterations="$ITER" \
  --param tolerance=0 --param n_init=1 --param store_vectors=true > "$OUT/segments.json"
python3 - "$OUT/segments.json" <<'PY'
import json, sys
# --wait --json prints a JSON object per progress update, then the final one: keep the last.
text, dec, i, j = open(sys.argv[1]).read(), json.JSONDecoder(), 0, None
while True:
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    j, i = dec.raw_decode(text, i)
open(sys.argv[1], "w").write(json.dumps(j))
s = j["summary"]
print("chorus segments: %d users, %d dims, %d iterations, %.4f s per Lloyd iteration, inertia %.1f, job %.1f s"
      % (s["users"], s["dimensions"], s["iterations"], s["seconds_per_iteration"], s["inertia"], j.get("seconds") or 0))
PY
$BIN profile export --coordinator "$ADDR" --out "$OUT/profiles.jsonl" > /dev/null
cleanup
SPARK_FLAG=(); [ -z "${SKIP_SPARK:-}" ] || SPARK_FLAG=(--skip-spark)
$PY bench/segments_peers.py "$OUT/profiles.jsonl" --k "$K" --iterations "$ITER" --ours "$OUT/segments.json" "${SPARK_FLAG[@]}"
