#!/usr/bin/env bash
# Re-runnable benchmark of replicated ingest (issue 20, part 1): the interactions file into a fresh 3-worker
# cluster with R=1 and with R=2, alternated, with the CPU each process used. With OLD_BIN set, the same rounds
# also run that build, in the same run, so the two builds' ratios can be compared.
#
#   bench/replicated-ingest.sh [USERS] [ROUNDS]        # USERS=50000 gives ~1 M interactions; ROUNDS=2
#   BIN=/path/to/chorus bench/replicated-ingest.sh …   # a given build instead of building this tree
#   OLD_BIN=/path/to/older/chorus bench/replicated-ingest.sh …
#   COMPARE_INSECURE=1 bench/replicated-ingest.sh …    # also BIN with --insecure: the cost of CurveZMQ
# Prints one line per ingest (wall time, interactions/s, CPU seconds of the workers and of the client) and the
# R=2/R=1 ratio of each round.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-50000}
ROUNDS=${2:-2}
OUT=${BENCH_DIR:-/tmp/chorus-elastic-$USERS}
if [ -z "${BIN:-}" ]; then
  BIN=.build-release/release/chorus
  scripts/install-deps.sh >/dev/null
  swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; } | tail -1
fi
mkdir -p "$OUT"
source scripts/throwaway-keys.sh "$OUT/keys"
[ -f "$OUT/gen/interactions.jsonl" ] || "$BIN" generate --users "$USERS" --seed 42 --out "$OUT/gen" >/dev/null
DATA="$OUT/gen/interactions.jsonl"
N=$(wc -l < "$DATA")
echo "data: $N interactions; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap cleanup EXIT
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # clock ticks, user + system

run() {  # run BIN R → prints "RATE WORKER_CPU CLIENT_CPU WALL"
  local bin=$1 r=$2 dir="$OUT/ingest-r$2" addr c0=() i t0 t1 w=0 client sec=()
  [ "${3:-curve}" = plaintext ] && sec=(--insecure)
  rm -rf "$dir"; mkdir -p "$dir"
  "$bin" coordinator --bind "tcp://127.0.0.1:*" --data "$dir/coord" --replication "$r" --log-level warning "${sec[@]}" > "$dir/coord.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/coord.out" 2>/dev/null && break; sleep 0.1; done
  addr=$(grep -o 'tcp://[0-9.:]*' "$dir/coord.out" | head -1)
  for n in w1 w2 w3; do
    "$bin" worker --coordinator "$addr" --data "$dir/$n" --name "$n" --log-level warning "${sec[@]}" > "$dir/$n.out" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 600); do
    [ "$("$bin" cluster status --coordinator "$addr" --json "${sec[@]}" 2>/dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); print(int(sum(1 for n in s['nodes'] if n['state']=='active')==3 and not s['under_replicated'] and not s['moves'] and s['moves_planned']==0 and s['unassigned_partitions']==0))")" = 1 ] && break
    sleep 0.1
  done
  for i in 1 2 3; do c0[$i]=$(cpu "${pids[$i]}"); done
  t0=$(date +%s.%N)
  client=$( { /usr/bin/time -f "%U %S" "$bin" ingest --coordinator "$addr" --json --no-progress "${sec[@]}" "$DATA" > "$dir/ingest.json"; } 2>&1 | tail -1)
  t1=$(date +%s.%N)
  for i in 1 2 3; do w=$((w + $(cpu "${pids[$i]}") - c0[i])); done
  cleanup
  stored=$(python3 -c "import json; print(json.load(open('$dir/ingest.json')).get('stored', -1))" 2>/dev/null || echo -1)
  [ "$stored" = "$N" ] || { echo "FAILED: ingest with R=$r stored $stored of $N records ($dir)"; return; }
  echo "$(echo "$N / ($t1 - $t0)" | bc -l) $(echo "$w / $(getconf CLK_TCK)" | bc -l) $(echo "$client" | awk '{print $1 + $2}') $(echo "$t1 - $t0" | bc -l)"
}

rm -f "$OUT/replicated-ingest.err"
builds=("$BIN")
[ -n "${OLD_BIN:-}" ] && builds+=("$OLD_BIN")
# COMPARE_INSECURE=1 also runs BIN with --insecure (plaintext), for the cost of CurveZMQ in the same run.
modes=(curve)
[ -n "${COMPARE_INSECURE:-}" ] && modes+=(plaintext)
for round in $(seq "$ROUNDS"); do
  for b in "${builds[@]}"; do
   for mode in "${modes[@]}"; do
    [ "$b" != "$BIN" ] && [ "$mode" = plaintext ] && continue
    # (stderr to a file: bash reports every process the run kills at its end)
    read -r r1 w1 c1 s1 <<< "$(run "$b" 1 "$mode" 2>>"$OUT/replicated-ingest.err")"
    read -r r2 w2 c2 s2 <<< "$(run "$b" 2 "$mode" 2>>"$OUT/replicated-ingest.err")"
    if [ "$r1" = FAILED: ] || [ "$r2" = FAILED: ]; then
      echo "an ingest failed (R=1: $r1 $w1 $c1 $s1; R=2: $r2 $w2 $c2 $s2); see $OUT/replicated-ingest.err" >&2
      exit 1
    fi
    printf "round %d %s (%s)\n  R=1: %6.1f s %7.0f interactions/s, workers %5.1f s CPU, client %5.1f s CPU\n" "$round" "$b" "$mode" "$s1" "$r1" "$w1" "$c1"
    printf "  R=2: %6.1f s %7.0f interactions/s, workers %5.1f s CPU, client %5.1f s CPU\n" "$s2" "$r2" "$w2" "$c2"
    printf "  R=2/R=1 = %.2f\n" "$(echo "$r2 / $r1" | bc -l)"
   done
  done
done
