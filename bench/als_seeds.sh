#!/usr/bin/env bash
# ALS hold-out splits per seed, on MovieLens 100K (release build, separate processes on loopback).
# Each seed must give its own 80/20 split: this prints, per seed, the held-out count and the explicit RMSE with
# the tuned settings (rank 20, λ 0.5·n^0.75, 15 iterations; with neighbours=30 the summary also gives the RMSE
# with the residual neighbourhood correction), and the Jaccard overlap of each pair of splits,
# recomputed independently in Python (bench/als_peers.py's copy of the split hash).
#
#   bench/als_seeds.sh [SEEDS...]        default: 1 2 3 42 43
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2 3 42 43)
OUT=${BENCH_DIR:-/tmp/chorus-als-seeds}
BIN=.build-release/release/chorus
scripts/install-deps.sh >/dev/null
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
DATA=$(scripts/fetch-real-data.sh)
ML="$DATA/movielens"
rm -rf "$OUT"; mkdir -p "$OUT"
source scripts/throwaway-keys.sh "$OUT/keys"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
$BIN coordinator --bind "tcp://127.0.0.1:*" --data "$OUT/coord" --replication 1 --partitions 8 --log-level warning \
  > "$OUT/coord.out" 2>&1 &
pids=($!)
trap 'kill -9 "${pids[@]}" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$OUT/coord.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'tcp://[0-9.:]*' "$OUT/coord.out" | head -1)
$BIN worker --coordinator "$ADDR" --data "$OUT/w1" --name w1 --log-level warning > "$OUT/w1.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
  $BIN cluster status --coordinator "$ADDR" --json 2>/dev/null | python3 -c \
    "import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['unassigned_partitions']==0 and s['nodes'] else 1)" && break
  sleep 0.1
done
$BIN ingest --coordinator "$ADDR" --json --no-progress --mapping data/mappings/movielens-100k.json \
  --rejects "$OUT/rejects.jsonl" "$ML/users-movielens.csv" "$ML/content-movies.csv" "$ML/interactions-ratings.csv" \
  > /dev/null
echo "seed  held_out  RMSE    MAE     RMSE+neighbours"
for S in "${SEEDS[@]}"; do
  $BIN job submit als --coordinator "$ADDR" --wait --json --param mode=explicit --param rank=20 --param lambda=0.5 \
    --param lambda_exponent=0.75 --param iterations=15 --param neighbours=30 --param seed="$S" \
    > "$OUT/job-$S.json" 2>/dev/null
  python3 -c "
import json,sys; s=json.load(open('$OUT/job-$S.json'))['summary']
print('%-5s %-9d %.4f  %.4f  %.4f' % ('$S', s['held_out'], s['rmse'], s['mae'], s['rmse_with_neighbours']))"
done
python3 - "$ML/interactions-ratings.csv" "${SEEDS[@]}" <<'PY'
import csv, itertools, sys
sys.path.insert(0, "bench")
from als_peers import derived_id, held_out
path, seeds = sys.argv[1], sys.argv[2:]
ids = []
with open(path) as f:
    for r in csv.DictReader(f):
        ids.append(derived_id(r["user_id"], r["item_id"], int(float(r["timestamp"]))))
splits = {s: {i for i in ids if held_out(i, s, 0.2)} for s in seeds}
print("held out per seed (Python's copy of the split hash; must equal Chorus's held_out above):")
print("  " + ", ".join("%s: %d" % (s, len(splits[s])) for s in seeds))
print("Jaccard of the held-out sets (independent 20% splits give 0.2^2 / (0.4 - 0.2^2) = 0.111):")
for a, b in itertools.combinations(seeds, 2):
    x, y = splits[a], splits[b]
    print("  seeds %-3s %-3s  %.3f" % (a, b, len(x & y) / len(x | y)))
PY
