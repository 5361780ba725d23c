#!/usr/bin/env bash
# Starts a real cluster on this machine: one coordinator and N workers, each a separate process, in the
# background, with logs and pid files under DIR.
#
#   cluster/start.sh [N] [DIR]        defaults: 3 workers, ./chorus-data/cluster
#   CHORUS_PORT_BASE=7100             coordinator on BASE, workers on BASE+1..BASE+N
#   CHORUS_BIN=path/to/chorus         default: .build-release/release/chorus, else .build/debug/chorus
#
# Stop it with cluster/stop.sh DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
# Do not hand descriptors inherited from our caller (pipes of a test runner, say) to long-lived daemons.
for fd in $(ls /proc/$$/fd); do
  if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
N=${1:-3}
DIR=${2:-chorus-data/cluster}
BASE=${CHORUS_PORT_BASE:-7100}
BIN=${CHORUS_BIN:-}
if [ -z "$BIN" ]; then
  if [ -x .build-release/release/chorus ]; then BIN=.build-release/release/chorus
  elif [ -x .build/debug/chorus ]; then BIN=.build/debug/chorus
  else echo "no chorus binary: run scripts/quickstart.sh or swift build first" >&2; exit 1; fi
fi
mkdir -p "$DIR"
COORD="tcp://127.0.0.1:$BASE"
"$BIN" coordinator --bind "$COORD" --data "$DIR/coordinator" > "$DIR/coordinator.log" 2>&1 &
echo $! > "$DIR/coordinator.pid"
for i in $(seq "$N"); do
  "$BIN" worker --coordinator "$COORD" --bind "tcp://127.0.0.1:$((BASE + i))" --data "$DIR/worker-$i" \
    --name "worker-$i" > "$DIR/worker-$i.log" 2>&1 &
  echo $! > "$DIR/worker-$i.pid"
done
# Wait until every worker is active.
for _ in $(seq 100); do
  active=$("$BIN" node list --coordinator "$COORD" --json 2>/dev/null | grep -c '"state" : "active"' || true)
  [ "$active" -ge "$N" ] && break
  sleep 0.2
done
echo "cluster up: coordinator $COORD, $active of $N workers active (logs and pids in $DIR)"
echo "try: export CHORUS_COORDINATOR=$COORD; $BIN node list"
[ "$active" -ge "$N" ]
