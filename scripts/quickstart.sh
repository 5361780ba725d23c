#!/usr/bin/env bash
# One command from a fresh Debian machine: install what is missing, build (release), run the embedded local
# cluster on the sample data. Extra arguments go to `chorus local` (e.g. --workers 5 --keep-running).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "quickstart: building chorus (release)..."
swift build -c release --scratch-path .build-release --product chorus 2>&1 | { grep -v "prohibited flag" || true; }
test -x .build-release/release/chorus || { echo "quickstart: build failed" >&2; exit 1; }
exec .build-release/release/chorus local "$@"
