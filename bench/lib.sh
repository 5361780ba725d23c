# Shared by the benchmark scripts (source it after `cd` to the repository and setting BIN):
#   start_cluster DIR WORKERS PARTITIONS   a coordinator (R = 1) and WORKERS workers on loopback, logs and data
#                                          under DIR; returns once every worker is active and every partition
#                                          has an owner, with the coordinator's address in ADDR
#   cleanup                                kills every process started (also on exit)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; { wait; } 2>/dev/null || true; pids=(); }
trap cleanup EXIT

start_cluster() {
  local dir=$1 n=$2 parts=$3
  rm -rf "$dir"; mkdir -p "$dir"
  source scripts/throwaway-keys.sh "$dir/keys"
  $BIN coordinator --bind "tcp://127.0.0.1:*" --data "$dir/coord" --replication 1 --partitions "$parts" \
    --log-level warning > "$dir/coord.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/coord.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(grep -o 'tcp://[0-9.:]*' "$dir/coord.out" | head -1)
  for i in $(seq "$n"); do
    $BIN worker --coordinator "$ADDR" --data "$dir/w$i" --name "w$i" --log-level warning > "$dir/w$i.out" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 300); do
    [ "$($BIN cluster status --coordinator "$ADDR" --json | python3 -c "import json,sys; s=json.load(sys.stdin); print(int(sum(1 for n in s['nodes'] if n['state']=='active')=="$n" and s['unassigned_partitions']==0))")" = 1 ] && return
    sleep 0.1
  done
  echo "cluster did not come up" >&2; exit 1
}
