#!/usr/bin/env bash
# Regenerates the Swift code for proto/chorus/v1/*.proto into Sources/ChorusWire/Generated, and for the job kinds'
# messages, proto/chorus/v1/jobs/*.proto, into Sources/ChorusJobs/Generated.
#   proto/generate.sh           regenerate (commit the result)
#   proto/generate.sh --check   fail (exit 1) if the committed code differs from what the .proto files give
# protoc-gen-swift: $PROTOC_GEN_SWIFT, else .build/{debug,release}/protoc-gen-swift, else built from the
# swift-protobuf package dependency (`swift build --product protoc-gen-swift`, about 10 s after a build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/Sources/ChorusWire/Generated"
jobs_out="$root/Sources/ChorusJobs/Generated"
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 2; }
plugin="${PROTOC_GEN_SWIFT:-}"
if [ -z "$plugin" ]; then
  for c in "$root/.build/debug/protoc-gen-swift" "$root/.build/release/protoc-gen-swift"; do
    [ -x "$c" ] && plugin="$c" && break
  done
fi
if [ -z "$plugin" ]; then
  (cd "$root" && swift build --product protoc-gen-swift >&2)
  plugin="$root/.build/debug/protoc-gen-swift"
fi
[ -x "$plugin" ] || { echo "protoc-gen-swift not found at $plugin" >&2; exit 2; }

gen() {
  mkdir -p "$1" "$2"
  (cd "$root/proto" && protoc -I . --plugin=protoc-gen-swift="$plugin" \
    --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
    --swift_out="$1" chorus/v1/*.proto)
  (cd "$root/proto" && protoc -I . --plugin=protoc-gen-swift="$plugin" \
    --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
    --swift_out="$2" chorus/v1/jobs/*.proto)
}

if [ "${1:-}" = "--check" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  gen "$tmp/wire" "$tmp/jobs"
  if ! diff -r -q "$tmp/wire" "$out" >/dev/null 2>&1 || ! diff -r -q "$tmp/jobs" "$jobs_out" >/dev/null 2>&1; then
    { diff -r "$tmp/wire" "$out"; diff -r "$tmp/jobs" "$jobs_out"; } | head -20 >&2 || true
    echo "generated code is stale: run proto/generate.sh and commit Sources/ChorusWire/Generated and Sources/ChorusJobs/Generated" >&2
    exit 1
  fi
  echo "generated code is up to date"
else
  rm -rf "$out" "$jobs_out"
  gen "$out" "$jobs_out"
  echo "regenerated $(ls "$out" | wc -l) files in Sources/ChorusWire/Generated, $(ls "$jobs_out" | wc -l) in Sources/ChorusJobs/Generated"
fi
