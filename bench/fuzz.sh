#!/usr/bin/env bash
# Long structure-aware fuzz run (issue 21): a coordinator and three workers as separate processes on loopback,
# loaded with a little data, then `chorus bench-fuzz` sends MESSAGES random well-formed requests (plus truncated,
# corrupted and multi-frame ones) spread over all four. Records how many processes died (must be 0), whether
# each still answers, the BAD_REQUEST rate, and whether an ingest and a `features` job still succeed afterwards.
#
#   bench/fuzz.sh [MESSAGES] [SEED]      # default 100000 messages, seed 1
#   CHORUS_BIN=.build/debug/chorus bench/fuzz.sh 20000   # use another build
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-100000}
SEED=${2:-1}
OUT=${BENCH_DIR:-/tmp/chorus-fuzz-$SEED}
BIN=${CHORUS_BIN:-.build-release/release/chorus}
if [ -z "${CHORUS_BIN:-}" ]; then
  scripts/install-deps.sh >/dev/null
  swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
fi
rm -rf "$OUT"; mkdir -p "$OUT"
echo "fuzz: $MESSAGES messages, seed $SEED, $BIN; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

mkdir -p "$OUT"
source scripts/throwaway-keys.sh "$OUT/keys"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
status() { $BIN cluster status --coordinator "$ADDR" --json; }
py() { status | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

$BIN coordinator --bind "tcp://127.0.0.1:*" --data "$OUT/coord" --partitions 16 --replication 2 > "$OUT/coord.out" 2> "$OUT/coord.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$OUT/coord.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'tcp://[0-9.:]*' "$OUT/coord.out" | head -1)
for w in w1 w2 w3; do
  $BIN worker --coordinator "$ADDR" --bind "tcp://127.0.0.1:*" --data "$OUT/$w" --name "$w" > "$OUT/$w.out" 2> "$OUT/$w.log" &
  pids+=($!)
done
for _ in $(seq 600); do
  [ "$(py "int(sum(1 for n in s['nodes'] if n['state']=='active') == 3 and s['unassigned_partitions'] == 0 and not s['moves'] and s['moves_planned'] == 0)")" = 1 ] && break
  sleep 0.1
done
$BIN generate --users 200 --seed 3 --out "$OUT/gen" >/dev/null
$BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/gen/users.jsonl" "$OUT/gen/content.jsonl" \
  "$OUT/gen/interactions.jsonl" > "$OUT/ingest-before.json"

set +e
$BIN bench-fuzz --coordinator "$ADDR" --messages "$MESSAGES" --seed "$SEED" --seconds 3600 > "$OUT/report.json"
FUZZ_RC=$?
set -e
dead=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || dead=$((dead + 1)); done
echo '{"user_id":"after-fuzz","channel":"x"}' > "$OUT/users-after.jsonl"
INGEST=$($BIN ingest --coordinator "$ADDR" --json --no-progress "$OUT/users-after.jsonl" | python3 -c "import json,sys; print(json.load(sys.stdin).get('stored'))" || echo failed)
JOB=$($BIN job submit features --coordinator "$ADDR" --wait --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin).get('state'))" || echo failed)
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || dead=$((dead + 1)); done
python3 - "$OUT/report.json" "$dead" "$FUZZ_RC" "$INGEST" "$JOB" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
dead, rc, ingest, job = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
print(f"messages {r['messages']} in {r['seconds']:.1f} s ({r['messages'] / max(r['seconds'], 1e-9):.0f}/s): "
      f"{r['whole']} awaited, {r['truncated']} truncated, {r['flipped']} flipped, {r['extra_frames']} extra frames")
print("replies: " + ", ".join(f"{k} {v}" for k, v in sorted(r['replies'].items(), key=lambda kv: -kv[1])))
print(f"BAD_REQUEST rate {100 * r['bad_request_rate']:.1f}% of awaited requests")
print(f"crashed processes: {dead}; unresponsive: {r['unresponsive'] or 'none'}; bench-fuzz exit {rc}")
print(f"after the fuzz: ingest stored {ingest}, features job {job}")
sys.exit(0 if dead == 0 and not r['unresponsive'] and ingest == '1' and job == 'succeeded' else 1)
PY
