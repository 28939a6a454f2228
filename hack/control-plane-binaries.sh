#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager and kubectl for one pinned Kubernetes release and
# prints the directory that holds them (the layout setup-envtest's KUBEBUILDER_ASSETS uses).
#
#   KUBEBUILDER_ASSETS set  -> use those binaries as they are (people who brought downloaded ones).
#   otherwise               -> build them from Go modules through the Go module proxy, once, cached under
#                              ~/.cache/mlfunctions/kube/<version>/. Release tarballs are never downloaded.
#
# Progress goes to stderr; the directory is the only thing printed on stdout.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl)

LOG_PREFIX=control-plane
# shellcheck source=kube-wrapper.sh
source "$(dirname "$0")/kube-wrapper.sh"
log() { wrapper_log "$@"; }

have_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  # setup-envtest ships no kubectl: the harness falls back to the one on PATH for that.
  for b in etcd kube-apiserver kube-controller-manager; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"; exit 1; }
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/kube
out=$cache_root/$KUBE_VERSION
mkdir -p "$cache_root"

# Two callers at once (tests and `make up`) must not build twice into the same place.
exec 9>"$cache_root/.lock"
flock 9

if have_all "$out"; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { log "Go is needed to build the control plane (or set KUBEBUILDER_ASSETS)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

log "building Kubernetes $KUBE_VERSION from Go modules (several minutes on 2 cores; cached afterwards)"
kube_wrapper_init "$KUBE_VERSION"
# etcd's server `package main` is the root of its module; its own go.mod has relative replaces, so `go install`
# of it fails, but inside the wrapper the replaces of a dependency are ignored.
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$KUBE_GOMOD")
[[ -n "$etcd_version" ]] || { log "the tag pins no go.etcd.io/etcd/server/v3"; exit 1; }
log "etcd pinned by $KUBE_VERSION: $etcd_version"
go get "go.etcd.io/etcd/server/v3@$etcd_version" >&2

packages=(
  k8s.io/kubernetes/cmd/kube-apiserver
  k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kubectl
)
kube_wrapper_pin "${packages[@]}" go.etcd.io/etcd/server/v3

staging_dir="$out.partial"
rm -rf "$staging_dir"; mkdir -p "$staging_dir"
kube_build "$staging_dir/etcd" go.etcd.io/etcd/server/v3
for p in "${packages[@]}"; do kube_build "$staging_dir/$(basename "$p")" "$p"; done

rm -rf "$out"; mv "$staging_dir" "$out"
log "done: $out"
echo "$out"
