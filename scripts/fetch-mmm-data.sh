#!/usr/bin/env bash
# Fetches the marketing-mix example datasets used by the response-curve real-data tests
# (Tests/ChorusUnitTests/MarketingMixRealDataTests.swift, docs/campaigns.md "Response curves and the budget split")
# from the PyMC-Marketing source archive on PyPI (Apache-2.0) into .cache/real-data/pymc-marketing (git-ignored).
# Never commit these files.
#
#   scripts/fetch-mmm-data.sh [DIR]      # idempotent; prints the directory; exit 1 when PyPI cannot be reached
#
# Files are copied as they are in the archive: mmm_example.csv (date_week, y, x1, x2, event_1, event_2, t),
# case_study_data.csv (sales, mdsp_* spend, ...), mmm_roas_data.csv and cdnow_transactions.csv (_id, id, date as
# YYYYMMDD, cds_bought, spent: the CDNOW purchases, used by the retention test in CampaignMeasurementTests).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/.cache/real-data/pymc-marketing}"
version=0.19.2
sdist="pymc_marketing-$version.tar.gz"
files=(mmm_example.csv case_study_data.csv mmm_roas_data.csv cdnow_transactions.csv)
mkdir -p "$dir/dl"
cd "$dir"

missing=0
for f in "${files[@]}"; do [ -s "$f" ] || missing=1; done
if [ "$missing" = 1 ]; then
  if [ ! -s "dl/$sdist" ]; then
    if ! python3 -m pip download --quiet --no-deps --no-binary :all: "pymc-marketing==$version" -d dl >&2; then
      echo "fetch-mmm-data: could not download pymc-marketing==$version from PyPI (no network or no index?)" >&2
      exit 1
    fi
  fi
  [ -s "dl/$sdist" ] || { echo "fetch-mmm-data: pip did not leave dl/$sdist" >&2; exit 1; }
  python3 - "$dir" "$sdist" "${files[@]}" <<'PY'
import sys, os, tarfile
d, sdist, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with tarfile.open(os.path.join(d, "dl", sdist)) as t:
    members = {m.name: m for m in t.getmembers() if m.isfile()}
    for name in names:
        hits = [n for n in members if n.endswith("/data/" + name)]
        if not hits:
            sys.exit("fetch-mmm-data: %s has no data/%s" % (sdist, name))
        hits.sort(key=len)
        tmp = os.path.join(d, name + ".part")
        with t.extractfile(members[hits[0]]) as src, open(tmp, "wb") as out:
            out.write(src.read())
        os.replace(tmp, os.path.join(d, name))
PY
fi
echo "$dir"
