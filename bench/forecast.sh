#!/usr/bin/env bash
# Forecast benchmarks (docs/benchmarks.md "Forecasts"):
#   bench/forecast.sh election        the 2016 election tweets: our models vs statsforecast AutoETS and SeasonalNaive
#                                     on the same daily series, horizon (7 days) and 28 origins, scored by one script
#   bench/forecast.sh job [USERS]     the `forecast` job's wall time on generated data (default 500000 users,
#                                     about 10 M interactions) on a 3-worker cluster, with its backtest figures
# BIN (default .build-release/release/chorus) is built when missing. Peers come from scripts/peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build-release/release/chorus}
[ -x "$BIN" ] || swift build -c release --scratch-path .build-release --product chorus
what=${1:-election}
out=${OUT:-/tmp/chorus-bench-forecast}
mkdir -p "$out"
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
case "$what" in
election)
  data=$(scripts/fetch-real-data.sh)
  python3 bench/election_series.py "$data/election/election-tweets-2016.tab" "$out/series.csv"
  py=$(scripts/peers.sh statsforecast)
  echo "== chorus forecast eval (8 series, horizon 7 days, 28 origins)"
  /usr/bin/time -f "chorus: %e s wall" "$BIN" forecast eval --series "$out/series.csv" --interval day --horizon 7 --windows 28 \
    --out "$out/chorus.csv" --json > "$out/chorus.json"
  python3 -c "import json; d=json.load(open('$out/chorus.json')); print('chorus seconds per series: %.4f' % d['seconds_per_series'])"
  echo "== statsforecast AutoETS and SeasonalNaive (same series, horizon and origins; refit at every origin)"
  "$py" bench/forecast_statsforecast.py "$out/series.csv" --interval day --horizon 7 --windows 28 --out "$out/sf"
  echo "== scores (bench/forecast_score.py, one formula for all)"
  python3 bench/forecast_score.py "$out/series.csv" --interval day "$out/chorus.csv" "$out/sf-autoets.csv" "$out/sf-snaive.csv"
  ;;
job)
  users=${2:-500000}
  source bench/lib.sh
  gen="$out/gen-$users"
  [ -s "$gen/interactions.jsonl" ] || "$BIN" generate --users "$users" --seed 7 --out "$gen" --segments 6 --content-effects
  start_cluster "$out/cluster" 3 24
  "$BIN" ingest --coordinator "$ADDR" "$gen"/users.jsonl "$gen"/content.jsonl "$gen"/interactions.jsonl | tail -2
  /usr/bin/time -f "forecast job: %e s wall" "$BIN" job submit forecast --coordinator "$ADDR" --wait \
    --param as_of=2025-09-29T00:00:00Z > "$out/job.txt"
  tail -n 20 "$out/job.txt"
  ;;
*) echo "usage: bench/forecast.sh election | job [USERS]" >&2; exit 2 ;;
esac
