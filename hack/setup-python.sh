#!/usr/bin/env bash
# Creates .venv with every mlfunctions package installed editable plus the test tools. Reruns are a no-op
# until a pyproject or requirements file changes. pip's own cache (~/.cache/pip) makes a rebuild quick.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
inputs=(iris-server/client/pyproject.toml iris-server/pyproject.toml operator/pyproject.toml
        hack/harness/pyproject.toml local-openfaas/pyproject.toml hack/stack/pyproject.toml
        console/pyproject.toml hack/requirements-test.txt)
stamp=$venv/.mlfunctions-setup
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

echo "[setup] creating the development environment in $venv" >&2
if [[ ! -x $venv/bin/python ]] && ! "$python" -m venv "$venv"; then
  # Debian's system Python ships venv separately.
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv" && "$python" -m venv "$venv"
  else
    echo "[setup] '$python -m venv' failed: install your distribution's venv package (python3-venv)" >&2
    exit 1
  fi
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --progress-bar off \
  -e iris-server/client \
  -e iris-server \
  -e operator \
  -e hack/harness \
  -e local-openfaas \
  -e hack/stack \
  -e console \
  -r hack/requirements-test.txt
echo "$want" > "$stamp"
echo "[setup] done" >&2
