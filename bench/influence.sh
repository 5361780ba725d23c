#!/usr/bin/env bash
# Re-runnable PageRank benchmark for the `influence` job (release build, separate processes on loopback), all in
# one run so the ratios are fair. Every implementation runs exactly K iterations from the uniform vector (damping
# 0.85, dangling mass spread uniformly), so seconds per iteration compare one to one:
#   1. wiki-Vote (real; scripts/fetch-real-data.sh): Chorus with 1 and 3 workers, networkx (scipy), pyspark RDDs;
#      plus the converged run (tolerance 1e-6) and its L1 distance from networkx.pagerank;
#   2. a generated follower graph of EDGES follows (default 10000000; bench/influence_gen.py), 3 workers:
#      ingest time, Chorus, networkx, pyspark.
#
#   bench/influence.sh [EDGES]          e.g. bench/influence.sh 2000000;  `none`: wiki-Vote only
#   SKIP_SPARK=1 bench/influence.sh     (no pyspark: the 491 MB install is skipped)
#   K=20 SPARK_K=5 bench/influence.sh   iterations (pyspark on the large graph runs SPARK_K, default 5)
#
# Peers go into a git-ignored virtualenv (.cache/peers/venv) from PyPI: networkx==3.4.2, scipy, pyspark==4.3.0.
# Results: a table on stdout and JSON lines in $OUT/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGES=${1:-10000000}
K=${K:-20}
SPARK_K=${SPARK_K:-5}
OUT=${BENCH_DIR:-/tmp/chorus-influence-bench}
PARTITIONS=${PARTITIONS:-8}
BIN=.build-release/release/chorus
PY=.cache/peers/venv/bin/python
scripts/install-deps.sh >/dev/null
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
DATA=$(scripts/fetch-real-data.sh)
[ -x "$PY" ] || python3 -m venv .cache/peers/venv
$PY -c "import networkx, scipy" 2>/dev/null || $PY -m pip install -q networkx==3.4.2 scipy numpy
if [ -z "${SKIP_SPARK:-}" ]; then $PY -c "import pyspark" 2>/dev/null || $PY -m pip install -q pyspark==4.3.0; fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $(nproc) cores, $CPU, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%FT%TZ)"

# pids, cleanup (on exit too) and start_cluster DIR WORKERS PARTITIONS.
source bench/lib.sh

# influence LABEL PARAMS...: runs the job, appends {"peer":"chorus", ...summary} to results, prints a line.
influence() {
  local label=$1; shift
  local args=()
  for p in "$@"; do args+=(--param "$p"); done
  $BIN job submit influence --coordinator "$ADDR" --wait --json "${args[@]}" > "$OUT/job.json" 2>/dev/null || true
  python3 - "$label" "$OUT/job.json" >> "$RESULTS" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
j = json.load(open(path))
s = j.get("summary") or {}
s.pop("top", None)
s.update(peer="chorus", label=label, state=j.get("state"), job_seconds=j.get("seconds"), error=j.get("error"))
print(json.dumps(s))
PY
  tail -1 "$RESULTS" | python3 -c "
import json,sys; r=json.load(sys.stdin)
print('  %-36s %-9s %.4f s/iteration  %d iterations, L1 change %.3g  (job %.1f s)' % (r['label'], r['state'], r.get('seconds_per_iteration',0), r.get('iterations',0), r.get('final_l1_delta',0), r.get('job_seconds') or 0))"
}

peers() {  # peers LABEL EDGES.csv ARGS...
  local label=$1 edges=$2; shift 2
  SPARK_FLAG=(); [ -z "${SKIP_SPARK:-}" ] || SPARK_FLAG=(--skip-spark)
  $PY bench/influence_peers.py "$edges" "$@" "${SPARK_FLAG[@]}" 2>>"$OUT/peers.err" \
    | python3 -c "
import json,sys
for line in sys.stdin:
    r=json.loads(line); r['label']='$label'
    print(json.dumps(r), file=open('$RESULTS','a'))
    print('  %-36s %-9s %.4f s/iteration  (load %.1f s)' % (r['peer'] + ' ' + r.get('version',''), 'ok', r['seconds_per_iteration'], r['load_seconds']))"
}

echo
echo "== 1. wiki-Vote (7,115 users, 103,688 follows): $K iterations each; $PARTITIONS partitions, R=1"
WV="$DATA/wikivote/follows-wikivote.csv"
for W in 1 3; do
  start_cluster "$OUT/wv-$W" "$W" "$PARTITIONS"
  t0=$(date +%s.%N)
  $BIN ingest --coordinator "$ADDR" --json --no-progress --mapping data/mappings/wikivote.json \
    --rejects "$OUT/wv-$W/rejects.jsonl" "$WV" > /dev/null
  t1=$(date +%s.%N)
  printf "  ingest with %d worker(s): %.1f s\n" "$W" "$(echo "$t1 - $t0" | bc -l)"
  influence "chorus $W worker(s) wiki-Vote" topics=0 tolerance=1e-15 max_iterations="$K"
  if [ "$W" = 3 ]; then
    influence "chorus 3 workers wiki-Vote converged" topics=0 tolerance=1e-6
    $BIN job submit features --coordinator "$ADDR" --wait > /dev/null 2>&1
    influence "chorus 3 workers wiki-Vote tol 1e-12" topics=0 tolerance=1e-12 max_iterations=1000
    $BIN profile export --coordinator "$ADDR" --timeout 60 --out "$OUT/wv-profiles.jsonl" > /dev/null
  fi
  cleanup
done
sed '1s/.*/follower,followee/' "$WV" > "$OUT/wv-edges.csv"
peers "wiki-Vote" "$OUT/wv-edges.csv" --iterations "$K" --scores "$OUT/wv-networkx.csv"
python3 - "$OUT/wv-profiles.jsonl" "$OUT/wv-networkx.csv" <<'PY' | tee -a "$RESULTS"
import json, sys
ours = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    ours[o["user_id"]] = o["influence"]["pagerank"]
nx = dict((a, float(b)) for a, b in (l.strip().split(",") for l in open(sys.argv[2])))
print(json.dumps({"check": "wiki-Vote L1 distance from networkx.pagerank (tol 1e-12 both)",
                  "l1": sum(abs(ours[k] - v) for k, v in nx.items()), "nodes": len(nx)}))
PY

if [ "$EDGES" != none ]; then
  echo
  echo "== 2. generated follower graph, about $EDGES follows: 3 workers, $PARTITIONS partitions, R=1"
  G="$OUT/gen-$EDGES"
  [ -f "$G/edges.csv" ] || echo "  generated $($PY bench/influence_gen.py "$EDGES" "$G") follows"
  start_cluster "$OUT/gen-cluster" 3 "$PARTITIONS"
  t0=$(date +%s.%N)
  $BIN ingest --coordinator "$ADDR" --json --no-progress --timeout 60 "$G/follows-gen.jsonl" > "$OUT/gen-ingest.json"
  t1=$(date +%s.%N)
  printf "  ingest: %.1f s (%s)\n" "$(echo "$t1 - $t0" | bc -l)" "$(python3 -c "import json; j=json.load(open('$OUT/gen-ingest.json')); print('%d read, %d stored' % (j['read'], j['stored']))")"
  echo "{\"ingest_seconds\": $(echo "$t1 - $t0" | bc -l), \"label\": \"generated $EDGES\"}" >> "$RESULTS"
  influence "chorus 3 workers generated" topics=0 tolerance=1e-15 max_iterations="$K"
  cleanup
  peers "generated $EDGES" "$G/edges.csv" --iterations "$K" --spark-iterations "$SPARK_K"
fi
echo
