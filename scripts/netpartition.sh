#!/usr/bin/env bash
# Network partitions between real hosts (issue 22 part 2). Every "host" is a Linux network namespace on a private
# bridge (10.77.0.0/24): the coordinator, 4 workers (R = 2), a client that runs a continuous ingest (as
# ContinuousIngest in Tests/ChorusIntegrationTests/ChaosTests.swift: small files of new unique user ids, one
# `chorus ingest` per file, the ids of every file acknowledged with exit 0 recorded) and a second client used on
# the minority side of a split. Each scenario gets a fresh cluster, cuts links while the ingest runs, heals,
# waits until the cluster settled (every worker active, nothing under-replicated, no move) and then checks that
# every acknowledged id is present exactly once (a `features` job, then `profile export`, counted per user_id),
# that a stale primary refuses a write (`chorus debug write` with the map version it had before the cut), and
# records the recovery time. A `features` job slowed down with debug_task_delay_ms runs across every cut and must
# succeed, and give every user of the base data (300 generated users with their content, follows and interactions,
# ingested first) the same profile as an undisturbed run of the same job on the same data. Columns: acknowledged
# ids, lost (acknowledged, not exported), duplicated (exported more than once), recovery (heal -> settled);
# notes: the longest time without an acknowledged file around the cut, the time from the heal to the first
# acknowledgement, the stale-write probe, the job, failed ingest attempts and `fenced` counts.
# Exit 1 when an id was lost or duplicated, the job across a cut did not finish or gave other profiles, or a
# cluster did not come up. About 2 min with --short, 5-6 min in full.
#
#   sudo scripts/netpartition.sh [--short] [--bin PATH] [--out DIR] [--scenarios "1 2 3 4 5"] [--hold SECONDS]
#
#   --short   scenarios 1, 2 and 3 with a 10 s cut (< 3 min; for CI)
#   default   scenarios 1-5 with a 20 s cut
# Scenarios:
#   1 one worker (w1) isolated from everyone (its veth on the bridge down), then healed
#   2 the coordinator isolated from the workers (nft drop both ways) but reachable by the clients
#   3 a worker (w1) that reaches the coordinator and the clients but not the other workers (its replica partners)
#   4 split: {w3, w4, client b} | {coordinator, w1, w2, client}
#   5 one-way loss: packets from the coordinator to w1 dropped (w1 -> coordinator still delivered)
# Needs root, iproute2 and nft (installed with apt-get when missing). Leaves nothing behind: namespaces named
# cnp-* and their processes are removed on exit, also those of an earlier run that was killed.
# Results: a table on stdout, details in OUT/results.jsonl and OUT/sN/ (logs, status snapshots, ingest log).
set -uo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
PY="python3 $HERE/scripts/netpartition.py"
BIN=${BIN:-.build/debug/chorus}
OUT=/tmp/chorus-netpartition
SHORT=0
SCENARIOS=""
HOLD=""
while [ $# -gt 0 ]; do
  case $1 in
    --short) SHORT=1 ;;
    --bin) BIN=$2; shift ;;
    --out) OUT=$2; shift ;;
    --scenarios) SCENARIOS=$2; shift ;;
    --hold) HOLD=$2; shift ;;
    -h|--help) sed -n 2,28p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done
BIN=$(readlink -f "$BIN")
[ -x "$BIN" ] || { echo "no chorus binary at $BIN (build it, or pass --bin)" >&2; exit 66; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 77; }
if ! command -v nft >/dev/null; then
  apt-get install -y -qq nftables >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq nftables >/dev/null 2>&1; }
fi
command -v nft >/dev/null || { echo "nft is not installed and could not be installed" >&2; exit 69; }
if [ "$SHORT" = 1 ]; then
  SCENARIOS=${SCENARIOS:-"1 2 3"}; HOLD=${HOLD:-10}; BASE=3; AFTER=3; SETTLE_MAX=60
else
  SCENARIOS=${SCENARIOS:-"1 2 3 4 5"}; HOLD=${HOLD:-20}; BASE=5; AFTER=5; SETTLE_MAX=120
fi
PARTITIONS=${PARTITIONS:-16}
AS_OF=1759104000
P=cnp                       # prefix of every namespace and interface
NET=10.77.0
declare -A IP=([coord]=$NET.10 [w1]=$NET.11 [w2]=$NET.12 [w3]=$NET.13 [w4]=$NET.14 [cl]=$NET.20 [clb]=$NET.21)
HOSTS=(coord w1 w2 w3 w4 cl clb)
WORKERS=(w1 w2 w3 w4)
ADDR="tcp://${IP[coord]}:7100"
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"
now() { date +%s.%N; }
log() { echo "[$(date +%T)] $*" >&2; }

# --- namespaces ------------------------------------------------------------------------------------------------
teardown() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  sleep 0.2
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns" 2>/dev/null; done
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$P-"); do
    ip link del "$l" 2>/dev/null
  done
}

make_net() {
  teardown
  ip netns add $P-br
  ip -n $P-br link set lo up
  ip -n $P-br link add br0 type bridge
  ip -n $P-br link set br0 up
  local h
  for h in "${HOSTS[@]}"; do
    ip netns add "$P-$h"
    ip -n "$P-$h" link set lo up
    ip link add "$P-$h-e" type veth peer name "$P-$h-b"
    ip link set "$P-$h-e" netns "$P-$h"
    ip link set "$P-$h-b" netns $P-br
    ip -n "$P-$h" link set "$P-$h-e" name eth0
    ip -n "$P-$h" addr add "${IP[$h]}/24" dev eth0
    ip -n "$P-$h" link set eth0 up
    ip -n $P-br link set "$P-$h-b" master br0
    ip -n $P-br link set "$P-$h-b" up
  done
  # the network works: a TCP connection from the client namespace to a listener in w4's
  on w4 python3 -c "import socket,time; s=socket.socket(); s.bind(('${IP[w4]}',7199)); s.listen(); c,_=s.accept()" &
  local lp=$! ok=0
  for _ in $(seq 20); do
    on cl python3 -c "import socket; socket.create_connection(('${IP[w4]}',7199),1)" 2>/dev/null && { ok=1; break; }
    sleep 0.1
  done
  kill $lp 2>/dev/null; wait $lp 2>/dev/null
  [ $ok = 1 ] || { echo "the test network does not work" >&2; exit 70; }
}

on() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }   # on HOST CMD...: run CMD in HOST's namespace

# block HOST PEER...: HOST drops everything to and from each PEER (both directions, at HOST)
# block_out HOST PEER...: HOST drops only what it sends to each PEER
nft_table() {
  on "$1" nft list table inet $P >/dev/null 2>&1 && return
  on "$1" nft add table inet $P
  on "$1" nft add chain inet $P in '{ type filter hook input priority 0; }'
  on "$1" nft add chain inet $P out '{ type filter hook output priority 0; }'
}
block() { local h=$1 p; shift; nft_table "$h"
  for p in "$@"; do on "$h" nft add rule inet $P in ip saddr "${IP[$p]}" drop
                    on "$h" nft add rule inet $P out ip daddr "${IP[$p]}" drop; done; }
block_out() { local h=$1 p; shift; nft_table "$h"
  for p in "$@"; do on "$h" nft add rule inet $P out ip daddr "${IP[$p]}" drop; done; }
heal_all() { local h; for h in "${HOSTS[@]}"; do on "$h" nft delete table inet $P 2>/dev/null; ip -n $P-br link set "$P-$h-b" up; done; }

# --- cluster ---------------------------------------------------------------------------------------------------
declare -A PID
status_json() { on cl timeout 10 "$BIN" cluster status --coordinator "$ADDR" --json 2>/dev/null; }
settled() { status_json | $PY settled ${#WORKERS[@]}; }
brief() { status_json | $PY brief; }

start_cluster() {  # start_cluster DIR
  DIR=$1; rm -rf "$DIR"; mkdir -p "$DIR"
  source scripts/throwaway-keys.sh "$DIR/keys"
  # (ip netns exec and nice exec the program, so $! is its pid; the `on` function would run it in a subshell)
  ip netns exec $P-coord nice -n 10 "$BIN" coordinator --bind "$ADDR" --data "$DIR/coord" --replication 2 \
    --partitions "$PARTITIONS" --log-level info > "$DIR/coord.out" 2>&1 &
  PID[coord]=$!
  for _ in $(seq 100); do grep -q "listening on" "$DIR/coord.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "listening on" "$DIR/coord.out" || { echo "the coordinator did not start: $(tail -3 "$DIR/coord.out")" >&2; return 1; }
  local w
  for w in "${WORKERS[@]}"; do
    ip netns exec "$P-$w" nice -n 10 "$BIN" worker --coordinator "$ADDR" --bind "tcp://${IP[$w]}:7101" --data "$DIR/$w" \
      --name "$w" --log-level info > "$DIR/$w.out" 2>&1 &
    PID[$w]=$!
  done
  for _ in $(seq 600); do [ "$(settled)" = 1 ] && return 0; sleep 0.2; done
  echo "cluster did not come up: $(brief)" >&2; return 1
}

stop_cluster() {
  local k pid
  for k in "${!PID[@]}"; do kill -9 "${PID[$k]}" 2>/dev/null; done
  # anything else still running in the hosts' namespaces was started by this script (an ingest, a probe)
  for k in "${HOSTS[@]}"; do for pid in $(ip netns pids "$P-$k" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done; done
  for k in "${!PID[@]}"; do wait "${PID[$k]}" 2>/dev/null; done
  PID=()
}

# The continuous ingest (ContinuousIngest): files of 40 new users, one `chorus ingest` each, run from the client
# namespace; a failed file is retried up to 4 times. Log lines: END_TIME BATCH ATTEMPT EXIT SECONDS.
ingest_loop() {  # ingest_loop DIR TAG
  local dir=$1 tag=$2 batch=0 a rc t0 t1 f
  mkdir -p "$dir/stream"; : > "$dir/acked.txt"; : > "$dir/ingest.log"
  while [ ! -e "$dir/stop" ]; do
    batch=$((batch + 1)); f=$dir/stream/users-$batch.jsonl
    for i in $(seq 0 39); do
      printf '{"user_id":"%s-%d-%d","channel":"weibo","country":"CN","language":"zh","age_band":"25-34","created_at":"2025-01-01T00:00:00Z"}\n' "$tag" "$batch" "$i"
    done > "$f"
    for a in 1 2 3 4; do
      t0=$(now)
      on cl timeout 150 "$BIN" ingest --coordinator "$ADDR" --json --no-progress --rejects "$dir/stream/rejects.jsonl" \
        "$f" > "$dir/stream/out-$batch-$a.json" 2> "$dir/stream/err-$batch-$a.txt"
      rc=$?; t1=$(now)
      awk -v a="$t0" -v b="$t1" -v n="$batch" -v k="$a" -v r="$rc" 'BEGIN { printf "%.3f %d %d %d %.2f\n", b, n, k, r, b - a }' >> "$dir/ingest.log"
      if [ $rc = 0 ]; then
        for i in $(seq 0 39); do echo "$tag-$batch-$i"; done >> "$dir/acked.txt"
        rm -f "$dir/stream/err-$batch-$a.txt"
        break
      fi
      sleep 0.3
    done
  done
}

# --- scenarios -------------------------------------------------------------------------------------------------
# apply_cut N applies the partition of scenario N; PROBE_FROM/PROBE_WORKER name where a stale-primary write is tried from and which
# worker it goes to (empty: none); heal_all heals every scenario.
describe() {
  case $1 in
    1) echo "w1 isolated (link down)" ;;
    2) echo "coordinator cut from workers, clients reach it" ;;
    3) echo "w1 cut from its replica partners only" ;;
    4) echo "split {w3,w4,clb} | {coord,w1,w2,cl}" ;;
    5) echo "one-way: coord -> w1 dropped" ;;
  esac
}
apply_cut() {
  case $1 in
    1) ip -n $P-br link set $P-w1-b down; PROBE_FROM=w1; PROBE_WORKER=w1 ;;
    2) block coord w1 w2 w3 w4; PROBE_FROM=cl; PROBE_WORKER=w1 ;;
    3) block w1 w2 w3 w4; PROBE_FROM=""; PROBE_WORKER="" ;;
    4) block w3 coord w1 w2 cl; block w4 coord w1 w2 cl; block clb coord w1 w2 cl
       PROBE_FROM=clb; PROBE_WORKER=w3 ;;
    5) block_out coord w1; PROBE_FROM=cl; PROBE_WORKER=w1 ;;
  esac
}

run_scenario() {
  local n=$1; local d=$OUT/s$n tag="np$1-$(date +%s)" desc notes=""
  desc=$(describe "$n")
  log "scenario $n: $desc"
  start_cluster "$d" || { echo "{\"scenario\":$n,\"error\":\"cluster did not come up\"}" >> "$RESULTS"; stop_cluster; return; }
  # base data with interactions and follows (the same in every scenario), and the undisturbed features result
  # on it, once: the job across the cut must give every base user the same profile
  on cl "$BIN" ingest --coordinator "$ADDR" --json --no-progress "$GEN/users.jsonl" "$GEN/content.jsonl" \
    "$GEN/follows.jsonl" "$GEN/interactions.jsonl" > "$d/base-ingest.json" 2>&1 || notes+="BASE INGEST FAILED; "
  if [ ! -s "$OUT/reference.jsonl" ]; then
    on cl timeout 180 "$BIN" job submit features --coordinator "$ADDR" --as-of "$AS_OF" --wait --json \
      > "$d/reference-job.json" 2>&1
    on cl timeout 120 "$BIN" profile export --coordinator "$ADDR" --timeout 20 --out "$OUT/reference.jsonl" \
      > /dev/null 2>&1 || notes+="REFERENCE EXPORT FAILED; "
  fi
  on cl "$BIN" cluster map --coordinator "$ADDR" --json > "$d/map-before.json"
  $PY holders < "$d/map-before.json" > "$d/holders-before.txt"
  ingest_loop "$d" "$tag" & local ipid=$!
  sleep "$BASE"
  local t_cut t_heal t_settled probe_rc="" probe_out="" probe_id="" part mv
  PROBE_FROM=""; PROBE_WORKER=""
  # a job that runs across the cut (tasks slowed down so that it is still running when the cut comes)
  on cl timeout 20 "$BIN" job submit features --coordinator "$ADDR" --as-of "$AS_OF" --param debug_task_delay_ms=700 \
    --json > "$d/cutjob-submit.json" 2>&1
  local cutjob; cutjob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("id",""))' "$d/cutjob-submit.json" 2>/dev/null)
  sleep 1
  t_cut=$(now); apply_cut "$n"
  log "  cut applied; holding ${HOLD}s"
  # status snapshots every 2 s while cut
  local end; end=$(echo "$t_cut + $HOLD" | bc -l)
  local probed=0
  while (( $(echo "$(now) < $end" | bc -l) )); do
    echo "$(date +%T) $(brief)" >> "$d/status-during.txt"
    if [ -n "$PROBE_WORKER" ] && [ $probed = 0 ] && (( $(echo "$(now) - $t_cut > 8" | bc -l) )); then
      # a stale primary: a partition PROBE_WORKER led before the cut, with the map version of before the cut
      read -r part mv < <($PY primary_of "$PROBE_WORKER" < "$d/map-before.json")
      probe_id="fence-$tag"
      if [ -n "$part" ]; then
        probe_out=$(on "$PROBE_FROM" timeout 30 "$BIN" debug write --worker "tcp://${IP[$PROBE_WORKER]}:7101" \
          --partition "$part" --map-version "$mv" --user-id "$probe_id" 2>&1); probe_rc=$?
        echo "probe: $PROBE_FROM -> $PROBE_WORKER partition $part map v$mv: exit $probe_rc: $probe_out" > "$d/probe.txt"
      fi
      probed=1
    fi
    sleep 2
  done
  on cl "$BIN" node list --coordinator "$ADDR" --json > "$d/nodes-during.json" 2>/dev/null
  # the TCP connections between the hosts just before the heal (a SYN-SENT socket's timer says when it retries)
  for h in "${HOSTS[@]}"; do echo "== $h"; on "$h" ss -tnoH 2>/dev/null; on "$h" ss -tnoH state syn-sent 2>/dev/null; done > "$d/ss-before-heal.txt"
  t_heal=$(now); heal_all
  log "  healed; waiting until settled (max ${SETTLE_MAX}s)"
  t_settled=""
  for _ in $(seq $((SETTLE_MAX * 4))); do
    if [ "$(settled)" = 1 ]; then t_settled=$(now); break; fi
    echo "$(date +%T) $(brief)" >> "$d/status-after.txt"
    sleep 0.25
  done
  local recovery
  if [ -n "$t_settled" ]; then recovery=$(printf %.1f "$(echo "$t_settled - $t_heal" | bc -l)")
  else recovery="> $SETTLE_MAX"; notes+="DID NOT SETTLE: $(brief); "; fi
  sleep "$AFTER"
  touch "$d/stop"
  # the ingest in flight finishes (each has a 150 s timeout)
  local waited=0
  while kill -0 $ipid 2>/dev/null && [ $waited -lt 170 ]; do sleep 1; waited=$((waited + 1)); done
  kill -0 $ipid 2>/dev/null && { notes+="ingest loop did not stop; "; pkill -P $ipid 2>/dev/null; kill $ipid 2>/dev/null; }
  wait $ipid 2>/dev/null
  # the job that ran across the cut ends, and succeeds
  local jrc jnote
  if [ -n "$cutjob" ]; then
    on cl timeout 300 "$BIN" job watch "$cutjob" --coordinator "$ADDR" --timeout 20 --json > "$d/cutjob.json" 2> "$d/cutjob.err"; jrc=$?
    jnote=$(python3 -c '
import json, sys
try: j = json.load(open(sys.argv[1]))
except Exception: j = {}
print("%s (task_retries %s, fenced_results %s)" % (j.get("state", "?"), j.get("task_retries"), j.get("fenced_results")))' "$d/cutjob.json")
    [ $jrc = 124 ] && jnote="DID NOT FINISH within 300 s"
    notes+="job across the cut: $jnote; "
    # its result against the undisturbed run (before the verification job below rewrites the profiles)
    on cl timeout 120 "$BIN" profile export --coordinator "$ADDR" --timeout 20 --out "$d/cutjob-export.jsonl" \
      > /dev/null 2>&1
    local same total
    read -r same total <<< "$($PY same "$OUT/reference.jsonl" "$d/cutjob-export.jsonl" 2>/dev/null || echo "0 0")"
    if [ "${total:-0}" -gt 0 ] && [ "$same" = "$total" ]; then notes+="its profiles equal the undisturbed run ($same/$total); "
    else notes+="PROFILES DIFFER FROM THE UNDISTURBED RUN ($same/$total); "; fi
  else
    notes+="JOB SUBMIT FAILED: $(head -c 200 "$d/cutjob-submit.json"); "
  fi
  echo "$(brief)" > "$d/status-final.txt"
  on cl "$BIN" cluster map --coordinator "$ADDR" --json > "$d/map-after.json"
  $PY holders < "$d/map-after.json" > "$d/holders-after.txt"
  on cl "$BIN" node list --coordinator "$ADDR" --json > "$d/nodes-after.json"
  # read every user back: a features job writes each user's profile, then the export (primaries) is counted
  local job_rc exp_rc check
  on cl timeout 180 "$BIN" job submit features --coordinator "$ADDR" --as-of "$AS_OF" --wait --json \
    > "$d/job.json" 2> "$d/job.err"; job_rc=$?
  [ $job_rc = 0 ] || notes+="features job exit $job_rc; "
  on cl timeout 120 "$BIN" profile export --coordinator "$ADDR" --timeout 20 --out "$d/export.jsonl" \
    > /dev/null 2> "$d/export.err"; exp_rc=$?
  [ $exp_rc = 0 ] || notes+="export exit $exp_rc; "
  check=$($PY check "$d/acked.txt" "$d/export.jsonl" ${probe_id:+"$probe_id"})
  echo "$check" > "$d/check.json"
  # write outage and ingest failures
  local gaps attempts fails hangs
  gaps=$($PY gaps "$d/ingest.log" "$t_cut" "$t_heal")
  attempts=$(wc -l < "$d/ingest.log"); fails=$(awk '$4 != 0' "$d/ingest.log" | wc -l)
  hangs=$(awk '$4 == 124' "$d/ingest.log" | wc -l)
  [ "$hangs" = 0 ] || notes+="$hangs ingest(s) hit the 150 s timeout; "
  # fencing: the probe must be refused and leave no trace
  if [ -n "$probe_id" ]; then
    if [ "$probe_rc" = 0 ]; then notes+="STALE PRIMARY ACCEPTED A WRITE ($PROBE_WORKER); "
    else notes+="stale write refused (exit $probe_rc); "; fi
    echo "$check" | grep -q "\"probes_present\": \[\]" || notes+="PROBE WRITE PRESENT AFTER HEAL; "
  fi
  # crashes: every process still running?
  local k
  for k in coord "${WORKERS[@]}"; do kill -0 "${PID[$k]}" 2>/dev/null || notes+="$k PROCESS EXITED; "; done
  grep -l -i -E "fatal error|panic|Segmentation|crash" "$d"/*.out > /dev/null 2>&1 && notes+="crash text in logs; "
  local fenced; fenced=$($PY fenced < "$d/nodes-after.json" 2>/dev/null)
  read -r outage first_ack acked_during <<< "$gaps"
  notes+="longest gap between acks ${outage}s, first ack ${first_ack}s after heal, $acked_during acked while cut, $fails/$attempts ingest attempts failed; fenced: $fenced"
  python3 - "$n" "$desc" "$check" "$recovery" "$notes" >> "$RESULTS" <<'PY'
import json, sys
n, desc, check, rec, notes = sys.argv[1:]
c = json.loads(check)
print(json.dumps(dict(scenario=int(n), description=desc, acknowledged=c["acknowledged"], lost=c["lost"],
                      duplicated=c["duplicated"], recovery_seconds=rec, notes=notes, check=c)))
PY
  log "  $(tail -1 "$RESULTS" | cut -c1-400)"
  stop_cluster
}

trap 'stop_cluster; teardown' EXIT
trap 'exit 130' INT TERM
log "chorus: $BIN; out: $OUT; scenarios: $SCENARIOS; cut held ${HOLD}s; nft $(nft --version | awk '{print $2}')"
GEN=$OUT/gen
rm -f "$OUT/reference.jsonl"
[ -s "$GEN/interactions.jsonl" ] || "$BIN" generate --users 300 --seed 21 --out "$GEN" > /dev/null
make_net
for s in $SCENARIOS; do run_scenario "$s"; done

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'scenario':<46} {'acked':>6} {'lost':>5} {'dup':>4} {'recovery s':>10}  notes")
for r in rows:
    if "error" in r:
        print(f"{r['scenario']:<46} {r['error']}"); continue
    name = f"{r['scenario']} {r['description']}"
    print(f"{name:<46} {r['acknowledged']:>6} {r['lost']:>5} {r['duplicated']:>4} {r['recovery_seconds']:>10}  {r['notes']}")
bad = [r for r in rows if "error" in r or r.get("lost") or r.get("duplicated") or r.get("acknowledged") == 0
       or "PROFILES DIFFER" in r.get("notes", "") or "DID NOT FINISH" in r.get("notes", "")]
sys.exit(1 if bad else 0)
PY
