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

# Upstream's release build sets the Kubernetes version helm assumes without a cluster (`helm template`, `helm
# lint`) from its client-go; without it helm assumes 1.20. The build recipe is part of the cache key.
BUILD_RECIPE=2
out=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/helm/$HELM_VERSION-$BUILD_RECIPE
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ ! -x "$out/helm" ]]; then
  command -v go >/dev/null || { log "Go is needed to build helm (or put helm $HELM_VERSION on PATH)"; exit 1; }
  log "building helm $HELM_VERSION from Go modules (a few minutes; cached afterwards)"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  helm_gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  client_go=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$helm_gomod")  # e.g. v0.37.0 -> Kubernetes 1.37
  kube_minor=$(cut -d. -f2 <<<"$client_go")
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
  done
  GOBIN="$out" go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  log "done: $out/helm"
fi
echo "$out/helm"
