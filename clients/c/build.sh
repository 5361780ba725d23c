#!/usr/bin/env bash
# Builds the C status client from proto/ with protoc-c (generated C is not committed).
#   clients/c/build.sh OUTDIR      -> OUTDIR/chorus-status
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(mkdir -p "${1:?usage: clients/c/build.sh OUTDIR}" && cd "$1" && pwd)"
command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install protobuf-c-compiler" >&2; exit 2; }
mkdir -p "$out/gen"
(cd "$root/proto" && protoc-c -I . --c_out="$out/gen" chorus/v1/*.proto)
gcc -O1 -Wall -Werror -o "$out/chorus-status" "$root/clients/c/chorus_status.c" "$out"/gen/chorus/v1/*.pb-c.c \
  -I "$out/gen" -lprotobuf-c -lzmq
echo "$out/chorus-status"
