#!/usr/bin/env bash
# Stops a cluster started by cluster/start.sh (SIGTERM, then SIGKILL after 5 s).
#   cluster/stop.sh [DIR]
set -euo pipefail
DIR=${1:-chorus-data/cluster}
for f in "$DIR"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
done
echo "cluster in $DIR stopped"
