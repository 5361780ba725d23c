#!/usr/bin/env bash
# Makes sure the peer tools that benchmarks and comparison tests run against are installed in the git-ignored
# virtualenv .cache/peers/venv (from PyPI), and prints that virtualenv's python. Idempotent: a package that
# imports already is not installed again.
#
#   scripts/peers.sh sklearn [networkx] [spark] [statsforecast] [statsmodels]     # exit 1, with pip's message, when PyPI cannot be reached
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/peers/venv"
py="$venv/bin/python"
[ -x "$py" ] || python3 -m venv "$venv" >&2
for want in "$@"; do
  case "$want" in
    sklearn) module=sklearn; spec="scikit-learn==1.7.2 numpy scipy" ;;
    networkx) module=networkx; spec="networkx==3.4.2 numpy scipy" ;;
    spark) module=pyspark; spec="pyspark==4.3.0" ;;
    statsforecast) module=statsforecast; spec="statsforecast==2.1.1 pandas numpy" ;;
    statsmodels) module=statsmodels; spec="statsmodels==0.14.5 numpy scipy pandas" ;;
    *) echo "peers.sh: unknown peer '$want' (sklearn, networkx, spark, statsforecast, statsmodels)" >&2; exit 2 ;;
  esac
  "$py" -c "import $module" 2>/dev/null || "$py" -m pip install -q $spec >&2
done
echo "$py"
