# Sourced by the benchmark and test scripts (bash): throwaway CurveZMQ keys for the clusters they start, made in
# DIR (the first argument) unless CHORUS_KEYS names a keys directory already. Servers pick their `coordinator`
# and `worker` keys from it, client commands the `admin` key (CHORUS_KEY_NAME). Needs BIN.
export CHORUS_KEYS=${CHORUS_KEYS:-$1}
export CHORUS_KEY_NAME=${CHORUS_KEY_NAME:-admin}
"$BIN" keys init --out "$CHORUS_KEYS" > /dev/null
