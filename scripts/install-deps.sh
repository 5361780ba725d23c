#!/usr/bin/env bash
# Installs the Debian packages Chorus needs, only those that are missing (idempotent).
set -euo pipefail
packages=(libzmq3-dev librocksdb-dev libprotobuf-c-dev protobuf-compiler protobuf-c-compiler pkg-config gcc g++ python3 python3-pip python3-venv chromium fonts-wqy-microhei iproute2 nftables)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present (${packages[*]})"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing ${missing[*]} and not root; install them with apt-get as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
if ! command -v swift >/dev/null 2>&1; then
  echo "install-deps: the Swift 6 toolchain (swift) is not on PATH; install it from swift.org" >&2
  exit 1
fi
