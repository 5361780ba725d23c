#!/usr/bin/env bash
# Re-runnable ALS benchmark (release build, separate processes on loopback), all in one run so the ratios are fair:
#   1. MovieLens 100K (real; scripts/fetch-real-data.sh), the same 80/20 split everywhere:
#      explicit rank 10 and implicit rank 32, 10 iterations:
#      Chorus with 1 worker and with 3 workers, Spark MLlib ALS (pyspark, local[*]) and the `implicit` library;
#   2. the Gram kernel: Swift SIMD against OpenBLAS (`chorus bench-als-kernels`);
#   3. synthetic scaling: `chorus generate` at SIZES users (default 50000 150000 500000 ≈ 1 M, 3 M, 10 M
#      interactions), implicit rank 16, 5 iterations, 3 workers; the `implicit` library on the 1 M set.
#
#   1c. implicit CG (3 steps) at ranks RANKS (default 16 32 64 128) on MovieLens 100K: Chorus with 1 worker
#      against the `implicit` library with 2 threads, ROUNDS (default 3) interleaved rounds, medians and ratios;
#
#   bench/als.sh [SIZES...]          e.g. bench/als.sh 50000      (skip the large sets); `none`: no scaling
#   bench/als.sh ranks               section 1c only (about 3 min)
#   SCALING_RANK=64 bench/als.sh scaling 500000    section 3 only, at rank 64 (the FLOP fraction at 10 M)
#   SKIP_SPARK=1 bench/als.sh        (no pyspark: the 491 MB install is skipped)
#
# Peers go into a git-ignored virtualenv (.cache/peers/venv) from PyPI: pyspark==4.3.0, implicit==0.7.3.
# Results: a table on stdout and JSON lines in $OUT/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(50000 150000 500000)
ONLY_RANKS=; [ "${SIZES[0]}" != ranks ] || { ONLY_RANKS=1; SKIP_SPARK=1; SIZES=(none); }
ONLY_SCALING=; [ "${SIZES[0]}" != scaling ] || { ONLY_SCALING=1; SKIP_SPARK=1; SIZES=("${SIZES[@]:1}"); }
OUT=${BENCH_DIR:-/tmp/chorus-als-bench}
PARTITIONS=${PARTITIONS:-8}
BIN=.build-release/release/chorus
PY=.cache/peers/venv/bin/python
scripts/install-deps.sh >/dev/null
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
DATA=$(scripts/fetch-real-data.sh)
if [ ! -x "$PY" ]; then
  python3 -m venv .cache/peers/venv
fi
$PY -c "import implicit, threadpoolctl, scipy" 2>/dev/null || $PY -m pip install -q implicit==0.7.3 threadpoolctl scipy numpy
if [ -z "${SKIP_SPARK:-}" ]; then $PY -c "import pyspark" 2>/dev/null || $PY -m pip install -q pyspark==4.3.0; fi
if ! ldconfig -p | grep -q libopenblas.so.0; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread >/dev/null 2>&1 || true
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $(nproc) cores, $CPU; $(date -u +%FT%TZ)"

# pids, cleanup (on exit too) and start_cluster DIR WORKERS PARTITIONS.
source bench/lib.sh

# als LABEL PARAMS...: runs the job, appends {"peer":"chorus", ...summary} to results, prints a line.
als() {
  local label=$1; shift
  local args=()
  for p in "$@"; do args+=(--param "$p"); done
  $BIN job submit als --coordinator "$ADDR" --wait --json "${args[@]}" > "$OUT/job.json" 2>/dev/null || true
  python3 - "$label" "$OUT/job.json" >> "$RESULTS" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
j = json.load(open(path))
s = j.get("summary") or {}
s.update(peer="chorus", label=label, state=j.get("state"), job_seconds=j.get("seconds"), error=j.get("error"))
print(json.dumps(s))
PY
  tail -1 "$RESULTS" | python3 -c "
import json,sys; r=json.load(sys.stdin)
q = 'RMSE %.4f' % r['rmse'] if r.get('rmse') else 'P@10 %.4f NDCG@10 %.4f' % (r.get('precision_at_k',0), r.get('ndcg_at_k',0))
print('  %-34s %-9s %.4f s/iteration  %s  (job %.1f s)' % (r['label'], r['state'], r.get('seconds_per_iteration',0), q, r.get('job_seconds') or 0))"
}

if [ -z "$ONLY_RANKS$ONLY_SCALING" ]; then
echo
echo "== 1. MovieLens 100K: 80/20 split by interaction (seed 42), 10 iterations; $PARTITIONS partitions, R=1"
ML="$DATA/movielens"
EXPLICIT=(mode=explicit rank=10 iterations=10 seed=42 lambda=0.5 lambda_exponent=0.75)
IMPLICIT=(mode=implicit rank=32 iterations=10 seed=42 lambda=0.1 alpha=1)
for W in 1 3; do
  start_cluster "$OUT/ml-$W" "$W" "$PARTITIONS"
  $BIN ingest --coordinator "$ADDR" --json --no-progress --mapping data/mappings/movielens-100k.json \
    --rejects "$OUT/ml-$W/rejects.jsonl" "$ML/users-movielens.csv" "$ML/content-movies.csv" \
    "$ML/interactions-ratings.csv" > /dev/null
  als "chorus $W worker(s) explicit r10" "${EXPLICIT[@]}"
  als "chorus $W worker(s) implicit r32 chol" "${IMPLICIT[@]}" solver=cholesky
  als "chorus $W worker(s) implicit r32 cg3" "${IMPLICIT[@]}" solver=cg
  cleanup
done
echo "  peers (same split; seconds per iteration are marginal: (fit(11) − fit(1)) / 10):"
SPARK_FLAG=(); [ -z "${SKIP_SPARK:-}" ] || SPARK_FLAG=(--skip-spark)
$PY bench/als_peers.py "$ML/interactions-ratings.csv" --rank 10 --iterations 10 --seed 42 --holdout 0.2 \
  --explicit-lambda 0.1 --implicit-rank 32 --implicit-lambda 0.1 --alpha 1 "${SPARK_FLAG[@]}" 2>"$OUT/peers.err" \
  | tee -a "$RESULTS" | python3 -c "
import json,sys
for line in sys.stdin:
    r=json.loads(line)
    if 'peer' not in r: print('  split: %(train_pairs)d training pairs, %(held_out)d held out' % r); continue
    q = 'RMSE %.4f' % r['rmse'] if 'rmse' in r else 'P@10 %.4f NDCG@10 %.4f' % (r['precision_at_k'], r['ndcg_at_k'])
    name = '%s %s r%d' % (r['peer'], r['mode'], r['rank']) + (' %s %dt' % (r['solver'], r['threads']) if r['peer']=='implicit' else '')
    print('  %-34s %-9s %.4f s/iteration  %s' % (name, 'ok', r['seconds_per_iteration'], q))"

fi  # ONLY_RANKS

if [ -z "$ONLY_SCALING" ]; then
echo
echo "== 1c. Implicit CG (3 steps) by rank, MovieLens 100K, the same split, 10 iterations, λ 0.1, α 1:"
echo "       Chorus 1 worker ($PARTITIONS partitions) against implicit with 2 threads; medians of ${ROUNDS:-3} interleaved rounds"
RANKS=(${RANKS:-16 32 64 128})
ML="$DATA/movielens"
start_cluster "$OUT/ml-ranks" 1 "$PARTITIONS"
$BIN ingest --coordinator "$ADDR" --json --no-progress --mapping data/mappings/movielens-100k.json \
  --rejects "$OUT/ml-ranks/rejects.jsonl" "$ML/users-movielens.csv" "$ML/content-movies.csv" \
  "$ML/interactions-ratings.csv" > /dev/null
for round in $(seq "${ROUNDS:-3}"); do
  for K in "${RANKS[@]}"; do
    als "ranks chorus r$K cg3 round $round" mode=implicit rank="$K" iterations=10 seed=42 lambda=0.1 alpha=1 solver=cg
  done
  $PY bench/als_peers.py "$ML/interactions-ratings.csv" --iterations 10 --seed 42 --holdout 0.2 --implicit-lambda 0.1 \
    --alpha 1 --skip-spark --cg-ranks "$(IFS=,; echo "${RANKS[*]}")" --threads 2 2>>"$OUT/peers.err" \
    | python3 -c "
import json,sys
for line in sys.stdin:
    r=json.loads(line)
    if 'peer' not in r: continue
    r['label']='ranks implicit r%d cg 2t round $round' % r['rank']; print(json.dumps(r))
    print('  %-34s %-9s %.4f s/iteration  P@10 %.4f NDCG@10 %.4f' % (r['label'], 'ok', r['seconds_per_iteration'], r['precision_at_k'], r['ndcg_at_k']), file=sys.stderr)
" 2>&1 >> "$RESULTS"
done
# Quality with λ chosen on a development split carved from the training data (bench/als_dev.sh: the highest
# P@10 there was λ = 30, plain), against the `implicit` library with the same λ; and Spark's scaling (λ·n, e = 1)
# at the best λ of that family on the development split.
echo "  rank 32 with λ chosen on the development split (bench/als_dev.sh), 10 iterations:"
als "dev-λ chorus r32 cg3 λ30" mode=implicit rank=32 iterations=10 seed=42 lambda=30 alpha=1 solver=cg
als "dev-λ chorus r32 chol λ30" mode=implicit rank=32 iterations=10 seed=42 lambda=30 alpha=1 solver=cholesky
als "dev-λ chorus r32 cg3 λ0.3·n" mode=implicit rank=32 iterations=10 seed=42 lambda=0.3 lambda_exponent=1 alpha=1 solver=cg
# implicit_rank32 LABEL LAMBDA ALPHA: the `implicit` library, CG, 2 threads, rank 32, on the test split.
implicit_rank32() {
  $PY bench/als_peers.py "$ML/interactions-ratings.csv" --iterations 10 --seed 42 --holdout 0.2 --implicit-lambda "$2" \
    --alpha "$3" --skip-spark --cg-ranks 32 --threads 2 2>>"$OUT/peers.err" | python3 -c "
import json,sys
for line in sys.stdin:
    r=json.loads(line)
    if 'peer' not in r: continue
    r['label']='$1'; print(json.dumps(r))
    print('  %-34s %-9s %.4f s/iteration  P@10 %.4f NDCG@10 %.4f' % (r['label'], 'ok', r['seconds_per_iteration'], r['precision_at_k'], r['ndcg_at_k']), file=sys.stderr)
" 2>&1 >> "$RESULTS"
}
implicit_rank32 "dev-λ implicit r32 cg 2t λ30" 30 1
# The confidence function too, chosen the same way (bench/als_dev.sh with CONFIDENCE and ALPHA; the `implicit`
# library's own grid with PEER=implicit): both picked c = α·w with α 2 and λ 50 on the development split
# (for `implicit` by the NDCG tie-break against α 1, λ 30, the dev-λ line above).
als "dev chorus r32 cg3 linear α2 λ50" mode=implicit rank=32 iterations=10 seed=42 lambda=50 alpha=2 confidence=linear solver=cg
implicit_rank32 "dev implicit r32 cg 2t α2 λ50" 50 2
cleanup
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"ranks ' in l]
by = {}
for r in rows:
    peer = "chorus" if r["label"].startswith("ranks chorus") else "implicit"
    by.setdefault((r["rank"], peer), []).append(r)
print("  %-5s %-18s %-18s %-22s %-14s %s" % ("rank", "Chorus CG s/iter", "implicit s/iter", "Chorus / implicit time",
                                             "P@10 Chorus", "P@10 implicit"))
for k in sorted({k for k, _ in by}):
    c, i = by.get((k, "chorus"), []), by.get((k, "implicit"), [])
    if not c or not i: continue
    cs = statistics.median(r.get("seconds_per_iteration", 0) for r in c)
    is_ = statistics.median(r["seconds_per_iteration"] for r in i)
    ratios = ", ".join("%.2f" % (a.get("seconds_per_iteration", 0) / b["seconds_per_iteration"]) for a, b in zip(c, i))
    print("  %-5d %-18.4f %-18.4f %-22s %-14.4f %.4f" % (k, cs, is_, "%.2f× (rounds %s)" % (cs / is_, ratios),
                                                        c[0].get("precision_at_k", 0), i[0]["precision_at_k"]))
PY
[ -z "$ONLY_RANKS" ] || { echo; echo "results: $RESULTS"; exit 0; }

echo
echo "== 2. Gram kernel (ZᵀWZ, n = 100 observations per row, one thread): Swift SIMD vs OpenBLAS ssyrk"
$BIN bench-als-kernels --rows 20000 --ranks 16,32,64,128 | sed 's/^/  /'
fi  # ONLY_SCALING

echo
SRANK=${SCALING_RANK:-16}
echo "== 3. Synthetic scaling: implicit rank $SRANK, 5 iterations, cg and cholesky, 3 workers, 64 partitions, R=1"
for U in "${SIZES[@]}"; do
  [ "$U" != none ] || continue
  G="$OUT/gen-$U"
  [ -f "$G/interactions.jsonl" ] || $BIN generate --users "$U" --seed 42 --out "$G" > /dev/null
  N=$(wc -l < "$G/interactions.jsonl")
  start_cluster "$OUT/syn-$U" 3 64
  t0=$(date +%s.%N)
  $BIN ingest --coordinator "$ADDR" --json --no-progress "$G/interactions.jsonl" > /dev/null
  t1=$(date +%s.%N)
  printf "  %d users, %d interactions: ingest %.1f s\n" "$U" "$N" "$(echo "$t1 - $t0" | bc -l)"
  als "synthetic $N interactions" mode=implicit rank="$SRANK" iterations=5 seed=42 lambda=0.1 alpha=1 solver=cg
  als "synthetic $N interactions chol" mode=implicit rank="$SRANK" iterations=5 seed=42 lambda=0.1 alpha=1 solver=cholesky
  # The fraction of the machine's single-precision FMA limit (cores × GHz × 32 flops per cycle; GHZ, default 2.6),
  # counting 2·nnz·k² + (users + items)·k³/3 flops per iteration for the exact solves.
  tail -1 "$RESULTS" | python3 -c "
import json, os, sys
r = json.load(sys.stdin); k = r['rank']; s = r.get('seconds_per_iteration') or 0
flops = 2 * r['observations'] * k * k + (r['users'] + r['items']) * k ** 3 / 3
limit = os.cpu_count() * float(os.environ.get('GHZ', '2.6')) * 1e9 * 32
if s > 0: print('  cholesky rank %d: %.1f GFLOP/s counted, %.1f%% of the %.0f GFLOP/s limit' % (k, flops / s / 1e9, 100 * flops / s / limit, limit / 1e9))"
  cleanup
  if [ "$U" = "${SIZES[0]}" ] && [ -z "$ONLY_SCALING" ]; then
    echo "  the implicit library on the same $N interactions (same weights and hold-out):"
    $PY bench/als_peers.py "$G/interactions.jsonl" --iterations 5 --seed 42 --holdout 0.2 --implicit-rank 16 \
      --implicit-lambda 0.1 --alpha 1 --skip-spark --speed-only 2>>"$OUT/peers.err" | tee -a "$RESULTS" | python3 -c "
import json,sys
for line in sys.stdin:
    r=json.loads(line)
    if 'peer' in r: print('  %-34s %.4f s/iteration' % ('implicit r16 %s %dt' % (r['solver'], r['threads']), r['seconds_per_iteration']))"
  fi
done
echo
echo "results: $RESULTS"
