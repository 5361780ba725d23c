#!/usr/bin/env bash
# Starts a real cluster on this machine: one coordinator and N workers, each a separate process, in the
# background, with logs and pid files under DIR. Returns once every worker it started is active and every
# partition has an owner (`ready` in `chorus cluster status --json`); fails (exit 1, with the reason and the
# log lines) when one of its processes exits or cannot bind its port, stopping the others.
#
#   cluster/start.sh [N] [DIR]        defaults: 3 workers, chorus-data/cluster in the repository
#   CHORUS_PORT_BASE=7100             coordinator on BASE, workers on BASE+1..BASE+N
#   CHORUS_BIN=path/to/chorus         default: .build-release/release/chorus, else .build/debug/chorus
#   CHORUS_KEYS=DIR                   the cluster's CurveZMQ keys; default DIR/keys, made by `chorus keys init`
#
# Stop it with cluster/stop.sh DIR.
set -euo pipefail
caller=$(pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
abs() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$caller/$1" ;; esac; }
# Do not hand descriptors inherited from our caller (pipes of a test runner, say) to long-lived daemons.
for fd in $(ls /proc/$$/fd); do
  if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
N=${1:-3}
if [ -n "${2:-}" ]; then DIR=$(abs "$2"); else DIR="$root/chorus-data/cluster"; fi
BASE=${CHORUS_PORT_BASE:-7100}
BIN=${CHORUS_BIN:-}
if [ -n "$BIN" ]; then BIN=$(abs "$BIN")
elif [ -x "$root/.build-release/release/chorus" ]; then BIN="$root/.build-release/release/chorus"
elif [ -x "$root/.build/debug/chorus" ]; then BIN="$root/.build/debug/chorus"
else echo "no chorus binary: run $root/scripts/quickstart.sh or swift build in $root first" >&2; exit 1; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
for f in "$DIR"/*.pid; do
  [ -f "$f" ] || continue
  if kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "a cluster started from $DIR is still running ($(basename "$f" .pid), pid $(cat "$f"))" >&2
    echo "hint: stop it with $root/cluster/stop.sh $DIR" >&2
    exit 1
  fi
done
COORD="tcp://127.0.0.1:$BASE"
# Security is on: throwaway keys unless CHORUS_KEYS names the cluster's keys directory (docs/security.md).
export CHORUS_KEYS=${CHORUS_KEYS:-$DIR/keys}
"$BIN" keys init --out "$CHORUS_KEYS" > /dev/null
export CHORUS_KEY_NAME=${CHORUS_KEY_NAME:-admin}
names=(coordinator)
"$BIN" coordinator --bind "$COORD" --data "$DIR/coordinator" > "$DIR/coordinator.log" 2>&1 &
echo $! > "$DIR/coordinator.pid"
for i in $(seq "$N"); do
  names+=("worker-$i")
  "$BIN" worker --coordinator "$COORD" --bind "tcp://127.0.0.1:$((BASE + i))" --data "$DIR/worker-$i" \
    --name "worker-$i" > "$DIR/worker-$i.log" 2>&1 &
  echo $! > "$DIR/worker-$i.pid"
done

fail() {
  echo "cluster did not start: $1" >&2
  if [ -n "${2:-}" ] && [ -f "$DIR/$2.log" ]; then tail -n 5 "$DIR/$2.log" | sed 's/^/  | /' >&2; fi
  echo "hint: ${3:-see the logs in $DIR}" >&2
  "$root/cluster/stop.sh" "$DIR" > /dev/null 2>&1 || true
  exit 1
}

# Wait until every process we started runs, every worker we started is active, and the cluster is ready. The
# workers are recognised by the node ids in their data dirs, so another cluster on the same ports never counts.
active=0
for _ in $(seq 150); do
  for name in "${names[@]}"; do
    if grep -q "cannot bind" "$DIR/$name.log" 2>/dev/null; then
      fail "$name $(grep -m1 -o 'cannot bind.*' "$DIR/$name.log")" "$name" \
        "another process (another cluster?) holds that port: stop it, or pick free ports with CHORUS_PORT_BASE"
    fi
    if ! kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
      fail "$name exited" "$name" "see $DIR/$name.log"
    fi
  done
  ids=()
  for i in $(seq "$N"); do
    [ -s "$DIR/worker-$i/node-id" ] && ids+=("$(cat "$DIR/worker-$i/node-id")")
  done
  states=$("$BIN" node list --coordinator "$COORD" --json 2>/dev/null \
    | awk -F'"' '/"id" :/ { id = $4 } /"state" :/ { print id, $4 }' || true)
  active=0
  for id in ${ids[@]+"${ids[@]}"}; do
    if printf '%s\n' "$states" | grep -qx "$id active"; then active=$((active + 1)); fi
  done
  if [ "$active" -eq "$N" ] && "$BIN" cluster status --coordinator "$COORD" --json 2>/dev/null \
       | grep -q '"ready" : true'; then
    echo "cluster up: coordinator $COORD, $N of $N workers active, every partition has an owner (logs and pids in $DIR)"
    echo "try: export CHORUS_COORDINATOR=$COORD CHORUS_KEYS=$CHORUS_KEYS CHORUS_KEY_NAME=admin; $BIN node list"
    echo "stop: $root/cluster/stop.sh $DIR"
    exit 0
  fi
  sleep 0.2
done
fail "after 30 s, $active of $N workers active or the cluster not ready" "" \
  "see the logs in $DIR, and $BIN cluster status --coordinator $COORD"
