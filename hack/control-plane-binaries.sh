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

log() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

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

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

log "building Kubernetes $KUBE_VERSION from Go modules (several minutes on 2 cores; cached afterwards)"
go mod init mlfunctions.dev/kube-wrapper >/dev/null 2>&1

kube_gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
[[ -f "$kube_gomod" ]] || { log "could not fetch k8s.io/kubernetes@$KUBE_VERSION's go.mod"; exit 1; }

# Every staging module the tag maps to ./staging/src/k8s.io/<name> is published as k8s.io/<name> v0.Y.Z.
staging_version=v0.${KUBE_VERSION#v1.}
mapfile -t staging < <(sed -n 's#^\s*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$kube_gomod")
[[ ${#staging[@]} -gt 0 ]] || { log "no staging modules found in $kube_gomod"; exit 1; }
log "replacing ${#staging[@]} staging modules with their published $staging_version"
edits=()
for m in "${staging[@]}"; do edits+=("-replace=$m=$m@$staging_version"); done
go mod edit "${edits[@]}"

etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$kube_gomod")
[[ -n "$etcd_version" ]] || { log "the tag pins no go.etcd.io/etcd/server/v3"; exit 1; }
log "etcd pinned by $KUBE_VERSION: $etcd_version"

packages=(
  k8s.io/kubernetes/cmd/kube-apiserver
  k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kubectl
)
log "resolving modules (downloads through the module proxy)"
go get "k8s.io/kubernetes@$KUBE_VERSION" "go.etcd.io/etcd/server/v3@$etcd_version" >&2
# Tool directives keep the main packages' modules required; `go get tool` is not used, as it would
# upgrade every tool to its latest release instead of the pinned one.
for p in "${packages[@]}" go.etcd.io/etcd/server/v3; do go mod edit "-tool=$p"; done

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

staging_dir="$out.partial"
rm -rf "$staging_dir"; mkdir -p "$staging_dir"

build() {  # build <output-name> <package>; prints a line every 100 compiled packages
  local name=$1 pkg=$2
  log "compiling $name ($pkg)"
  go build -v -p "$(nproc)" -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$staging_dir/$name" "$pkg" 2>&1 \
    | awk -v n="$name" '/^(#|go: |[^ ]*\.go:)/ {print; next} NR % 100 == 0 {printf "[control-plane] %s: %d packages compiled\n", n, NR; fflush()}' >&2
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { log "building $name failed"; exit 1; }
}
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubectl k8s.io/kubernetes/cmd/kubectl

rm -rf "$out"; mv "$staging_dir" "$out"
log "done: $out"
echo "$out"
