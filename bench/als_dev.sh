#!/usr/bin/env bash
# Chooses implicit ALS settings on a development split carved from the training data only, so the test split of
# bench/als.sh (MovieLens 100K, 20% held out with seed 42) is never used for tuning:
#   1. the training part of the seed-42 split is written to a CSV (the held-out 20% is dropped; the same hash as
#      the job, re-implemented in bench/als_peers.py);
#   2. that CSV is ingested, and each setting is fitted with seed 7, which holds out 20% of the training data as
#      the development split, and ranked by P@10 on it.
#
#   bench/als_dev.sh                 rank 32, 10 iterations, CG 3 steps, α 1; the grid below
#   GRID="0:0.1 1:0.05" bench/als_dev.sh     exponent:λ pairs
#   PEER=implicit ALPHA=1 GRID="0:10 0:30" bench/als_dev.sh   the `implicit` library (CG, 2 threads) on the same
#                                                 development split instead of Chorus (plain λ only)
#   CONFIDENCE=linear ALPHA=1 bench/als_dev.sh   the confidence function (one_plus: c = 1 + α·w, the default;
#                                                 linear: c = α·w, as the `implicit` library) and α
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-/tmp/chorus-als-dev}
BIN=.build-release/release/chorus
PARTITIONS=${PARTITIONS:-8}
CONFIDENCE=${CONFIDENCE:-one_plus}
ALPHA=${ALPHA:-1}
GRID=(${GRID:-0:0.1 0:1 0:10 0:30 0:100 0:300 1:0.03 1:0.1 1:0.3 1:1 1:3 0.5:1 0.5:3 0.5:10})
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
DATA=$(scripts/fetch-real-data.sh)
ML="$DATA/movielens"
mkdir -p "$OUT/train"
python3 - "$ML/interactions-ratings.csv" "$OUT/train/interactions-ratings.csv" <<'PY'
import csv, sys
sys.path.insert(0, "bench")
from als_peers import derived_id, held_out
src, dst = sys.argv[1], sys.argv[2]
with open(src) as f, open(dst, "w", newline="") as g:
    r = csv.DictReader(f)
    w = csv.DictWriter(g, fieldnames=r.fieldnames)
    w.writeheader()
    kept = dropped = 0
    for row in r:
        if held_out(derived_id(row["user_id"], row["item_id"], int(float(row["timestamp"]))), 42, 0.2):
            dropped += 1
        else:
            w.writerow(row); kept += 1
print("training part of the seed-42 split: %d ratings kept, %d (the test split) dropped" % (kept, dropped))
PY
if [ "${PEER:-}" = implicit ]; then
  echo "development split: seed 7, 20% of the training ratings; the implicit library, rank 32, 10 iterations, CG, α $ALPHA"
  printf "  %-10s %-8s %-8s %-8s %s\n" exponent lambda P@10 NDCG@10 held_out
  for g in "${GRID[@]}"; do
    e=${g%%:*}; l=${g##*:}
    [ "$e" = 0 ] || { echo "  $g: the implicit library has a plain λ only (exponent 0)"; continue; }
    .cache/peers/venv/bin/python bench/als_peers.py "$OUT/train/interactions-ratings.csv" --iterations 10 --seed 7 \
      --holdout 0.2 --implicit-lambda "$l" --alpha "$ALPHA" --skip-spark --cg-ranks 32 --threads 2 2>/dev/null |
      python3 -c "
import json, sys
held = 0
for line in sys.stdin:
    r = json.loads(line)
    held = r.get('held_out', held)
    if 'peer' in r: print('  %-10s %-8s %.4f   %.4f   %d' % ('0', '$l', r['precision_at_k'], r['ndcg_at_k'], held))"
  done
  exit 0
fi
source bench/lib.sh
start_cluster "$OUT/cluster" 1 "$PARTITIONS"
$BIN ingest --coordinator "$ADDR" --json --no-progress --mapping data/mappings/movielens-100k.json \
  --rejects "$OUT/rejects.jsonl" "$ML/users-movielens.csv" "$ML/content-movies.csv" \
  "$OUT/train/interactions-ratings.csv" > /dev/null
echo "development split: seed 7, 20% of the training ratings; rank 32, 10 iterations, CG 3 steps, α $ALPHA, confidence $CONFIDENCE"
printf "  %-10s %-8s %-8s %-8s %s\n" exponent lambda P@10 NDCG@10 held_out
for g in "${GRID[@]}"; do
  e=${g%%:*}; l=${g##*:}
  $BIN job submit als --coordinator "$ADDR" --wait --json --param mode=implicit --param rank=32 --param iterations=10 \
    --param seed=7 --param lambda="$l" --param lambda_exponent="$e" --param alpha="$ALPHA" --param confidence="$CONFIDENCE" --param solver=cg \
    --param store_top_n=0 > "$OUT/job.json" 2>/dev/null
  python3 -c "
import json; s = json.load(open('$OUT/job.json'))['summary']
print('  %-10s %-8s %.4f   %.4f   %d' % ('$e', '$l', s['precision_at_k'], s['ndcg_at_k'], s['held_out']))"
done
cleanup
