#!/usr/bin/env bash
# Are small jobs overhead-bound? (issue 12, "one task message per worker per stage")
#   MovieLens 100K explicit ALS, rank 10, 10 iterations, 3 workers on this machine, R=1: seconds per iteration
#   at 8 and at 64 partitions, and the wall time of `chorus local` (2000 users) at 8 and 64 partitions.
#   Each configuration runs ROUNDS times (default 3) interleaved, and the median is reported.
#
#   bench/partitions.sh                 the release build of this checkout
#   OLD_BIN=/path/to/chorus bench/partitions.sh   also the same runs with another build (e.g. before the SDK),
#                                       interleaved with this one, so the ratios come from the same minutes
# Results: a table on stdout and JSON lines in $OUT/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-/tmp/chorus-partitions-bench}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-.build-release/release/chorus}
scripts/install-deps.sh >/dev/null
if [ "$BIN" = .build-release/release/chorus ]; then
  swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
fi
DATA=$(scripts/fetch-real-data.sh)
ML="$DATA/movielens"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; { wait; } 2>/dev/null || true; pids=(); }
trap cleanup EXIT

start_cluster() {  # start_cluster BIN DIR PARTITIONS
  local bin=$1 dir=$2 parts=$3
  rm -rf "$dir"; mkdir -p "$dir"
  BIN=$bin source scripts/throwaway-keys.sh "$dir/keys"
  $bin coordinator --bind "tcp://127.0.0.1:*" --data "$dir/coord" --replication 1 --partitions "$parts" \
    --log-level warning > "$dir/coord.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/coord.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(grep -o 'tcp://[0-9.:]*' "$dir/coord.out" | head -1)
  for i in 1 2 3; do
    $bin worker --coordinator "$ADDR" --data "$dir/w$i" --name "w$i" --log-level warning > "$dir/w$i.out" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 300); do
    [ "$($bin cluster status --coordinator "$ADDR" --json | python3 -c "import json,sys; s=json.load(sys.stdin); print(int(sum(1 for n in s['nodes'] if n['state']=='active')==3 and s['unassigned_partitions']==0))")" = 1 ] && return
    sleep 0.1
  done
  echo "cluster did not come up" >&2; exit 1
}

run() {  # run LABEL BIN PARTITIONS ROUND
  local label=$1 bin=$2 parts=$3 round=$4
  start_cluster "$bin" "$OUT/c" "$parts"
  $bin ingest --coordinator "$ADDR" --json --no-progress --mapping data/mappings/movielens-100k.json \
    --rejects "$OUT/c/rejects.jsonl" "$ML/users-movielens.csv" "$ML/content-movies.csv" \
    "$ML/interactions-ratings.csv" > /dev/null
  $bin job submit als --coordinator "$ADDR" --wait --json --param mode=explicit --param rank=10 \
    --param iterations=10 --param seed=42 --param lambda=0.5 --param lambda_exponent=0.75 > "$OUT/job.json"
  cleanup
  rm -rf "$OUT/local"
  local t0 t1
  t0=$(date +%s.%N)
  $bin local --users 2000 --partitions "$parts" --data "$OUT/local" --json > /dev/null
  t1=$(date +%s.%N)
  python3 - "$label" "$parts" "$round" "$OUT/job.json" "$(echo "$t1 - $t0" | bc -l)" >> "$RESULTS" <<'PY'
import json, sys
label, parts, rnd, path, local = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
s = json.load(open(path)).get("summary") or {}
print(json.dumps(dict(build=label, partitions=parts, round=rnd, seconds_per_iteration=s.get("seconds_per_iteration"),
                      rmse=s.get("rmse"), local_seconds=local)))
PY
  tail -1 "$RESULTS"
}

BUILDS=("new:$BIN")
[ -z "${OLD_BIN:-}" ] || BUILDS+=("old:$OLD_BIN")
for r in $(seq "$ROUNDS"); do
  for b in "${BUILDS[@]}"; do
    for p in 8 64; do run "${b%%:*}" "${b#*:}" "$p" "$r"; done
  done
done

python3 - "$RESULTS" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print("%-5s %10s %14s %14s %10s" % ("build", "partitions", "s/iteration", "local wall s", "RMSE"))
med = {}
for b in sorted({r["build"] for r in rows}):
    for p in (8, 64):
        rs = [r for r in rows if r["build"] == b and r["partitions"] == p]
        it = statistics.median(r["seconds_per_iteration"] for r in rs)
        lo = statistics.median(r["local_seconds"] for r in rs)
        med[(b, p)] = (it, lo)
        print("%-5s %10d %14.4f %14.1f %10.4f" % (b, p, it, lo, rs[0]["rmse"]))
for b in sorted({r["build"] for r in rows}):
    it8, lo8 = med[(b, 8)]; it64, lo64 = med[(b, 64)]
    print("%s: 64 / 8 partitions: %.2fx per iteration, %.2fx `chorus local` wall time" % (b, it64 / it8, lo64 / lo8))
PY
