#!/usr/bin/env bash
# Provides helm (pinned) and prints its path: the one on PATH if it is the pinned version, otherwise built once
# from Go modules through the module proxy and cached under ~/.cache/mlfunctions/helm/<version>/.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
log() { printf '[helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if command -v helm >/dev/null && [[ "$(helm version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
  command -v helm
  exit 0
fi

out=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/helm/$HELM_VERSION
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ ! -x "$out/helm" ]]; then
  command -v go >/dev/null || { log "Go is needed to build helm (or put helm $HELM_VERSION on PATH)"; exit 1; }
  log "building helm $HELM_VERSION from Go modules (a few minutes; cached afterwards)"
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$out" GOFLAGS=-buildvcs=false go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  log "done: $out/helm"
fi
echo "$out/helm"
