#!/usr/bin/env bash
# Wall time of the `best-times` job on a generated set with planted slot effects, and whether the top 3
# recommended slots of every channel contain the planted best slot (docs/benchmarks.md "Best times").
#
#   bench/best-times.sh [USERS]      default 200000; WORKERS=3 PARTITIONS=16 SEGMENTS=0 (K>0: run features and
#                                    segments first, for the per-segment weeks) BIN=... (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-200000}
WORKERS=${WORKERS:-3}
PARTITIONS=${PARTITIONS:-16}
SEGMENTS=${SEGMENTS:-0}
OUT=${BENCH_DIR:-/tmp/chorus-best-times-bench}
if [ -z "${BIN:-}" ]; then
  BIN=.build-release/release/chorus
  scripts/install-deps.sh >/dev/null
  swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
fi
mkdir -p "$OUT"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "machine: $(nproc) cores, $CPU; $(date -u +%FT%TZ); $USERS users, $WORKERS workers, $PARTITIONS partitions, binary $BIN"

source bench/lib.sh  # start_cluster, cleanup
start_cluster "$OUT/cluster" "$WORKERS" "$PARTITIONS"

G="$OUT/gen-$USERS-$SEGMENTS"
[ -f "$G/interactions.jsonl" ] || $BIN generate --users "$USERS" --seed 42 --segments "$SEGMENTS" --content-effects --out "$G" > /dev/null
t0=$(date +%s)
$BIN ingest --coordinator "$ADDR" --json --no-progress "$G/users.jsonl" "$G/content.jsonl" "$G/interactions.jsonl" \
  "$G/follows.jsonl" > "$OUT/ingest.json"
echo "ingest: $(python3 -c "import json; r=json.load(open('$OUT/ingest.json')); print(r['stored'], 'records')") in $(( $(date +%s) - t0 )) s"
echo "interactions: $(wc -l < "$G/interactions.jsonl"), posts: $(wc -l < "$G/content.jsonl")"
if [ "$SEGMENTS" -gt 0 ]; then
  $BIN job submit features --as-of 1759104000 --coordinator "$ADDR" --wait --json > /dev/null
  $BIN job submit segments --param k="$SEGMENTS" --coordinator "$ADDR" --wait --json > /dev/null
fi
t0=$(date +%s.%N)
$BIN job submit best-times --coordinator "$ADDR" --wait --json > "$OUT/best-times.json"
t1=$(date +%s.%N)
$BIN best-times --coordinator "$ADDR" --json > "$OUT/weeks.json"
python3 - "$OUT/best-times.json" "$OUT/weeks.json" "$G/truth/slot_effects.csv" "$t0" "$t1" <<'PY'
import csv, json, sys
text, dec, i, j = open(sys.argv[1]).read(), json.JSONDecoder(), 0, None
while True:
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    j, i = dec.raw_decode(text, i)
s = j["summary"]
best = {r["channel"]: int(r["day"]) * 24 + int(r["hour"]) for r in csv.DictReader(open(sys.argv[3])) if r["best"] == "1"}
weeks = json.load(open(sys.argv[2]))["weeks"]
hits = 0
for w in weeks:
    rec = [r["slot"] for r in w["recommended"]]
    ok = best.get(w["channel"]) in rec
    hits += ok
    print("  %-10s planted %-9s recommended %s %s" % (w["channel"], best.get(w["channel"]), rec, "ok" if ok else "MISSED"))
print("best-times: %d posts, %d timing sections, job %.1f s (driver's own clock %.1f s), planted best in the top 3 on %d/%d channels"
      % (s["posts"], s["timing_sections"], float(sys.argv[5]) - float(sys.argv[4]), s["seconds"], hits, len(weeks)))
PY
