#!/usr/bin/env bash
# Provides what a real node runs beside the control plane, for one pinned Kubernetes release, and prints the
# directory that holds it:
#
#   kubelet, kube-scheduler, kube-proxy   the control plane's wrapper module (kube-wrapper.sh)
#   coredns                               github.com/coredns/coredns, Service names resolve in pods
#   local-path-provisioner                github.com/rancher/local-path-provisioner, PersistentVolumeClaims bind
#   images/pause.tar                      the pod sandbox image, pause.c from k8s.io/kubernetes, gcc -static
#   images/busybox.tar                    the provisioner's helper pod image, Debian's static busybox
#
# Built once through the Go module proxy and cached under ~/.cache/mlfunctions/node/<version>/ (no image registry
# is needed: the two images are OCI archives written by oci-archive.sh). Progress goes to stderr; the directory is
# the only thing printed on stdout.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-v0.0.30}
PAUSE_VERSION=3.10.1  # build/pause/Makefile's TAG in 1.34
COREDNS_PLUGINS=(bind ready errors cache kubernetes)  # what node_config.corefile() uses
BUILD_RECIPE=2        # part of the cache key: bump it when what this script produces changes
LOG_PREFIX=node
hack=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=kube-wrapper.sh
source "$hack/kube-wrapper.sh"

FILES=(kubelet kube-scheduler kube-proxy coredns local-path-provisioner images/pause.tar images/busybox.tar)
have_all() {
  local f
  for f in "${FILES[@]}"; do [[ -s "$1/$f" ]] || return 1; done
}

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/node
out=$cache_root/$KUBE_VERSION-$BUILD_RECIPE
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"  # tests and `make up` at once must not build twice into the same place
flock 9

if have_all "$out"; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { wrapper_log "Go is needed to build the node"; exit 1; }
command -v gcc >/dev/null || { wrapper_log "gcc is needed to build the pause image"; exit 1; }
[[ -x /bin/busybox ]] || { wrapper_log "no /bin/busybox: run hack/node-packages.sh (busybox-static)"; exit 1; }

began=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
partial="$out.partial"
rm -rf "$partial"; mkdir -p "$partial/images"

wrapper_log "building the node for Kubernetes $KUBE_VERSION (minutes on 2 cores the first time; cached afterwards)"
mkdir "$work/kube" && cd "$work/kube"
kube_wrapper_init "$KUBE_VERSION"
packages=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy)
kube_wrapper_pin "${packages[@]}"
for p in "${packages[@]}"; do kube_build "$partial/$(basename "$p")" "$p"; done

# CoreDNS with only the plugins the node's Corefile uses, the way CoreDNS documents external builds: a main
# package that imports them and sets the directive list (in plugin.cfg's order, which is the plugin chain's).
# The full build brings every cloud provider's SDK and takes minutes longer.
wrapper_log "compiling coredns $COREDNS_VERSION (plugins: ${COREDNS_PLUGINS[*]})"
mkdir "$work/coredns" && cd "$work/coredns"
go mod init mlfunctions.dev/coredns >/dev/null 2>&1
go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2
coredns_dir=$(go list -m -f '{{.Dir}}' github.com/coredns/coredns)
{
  printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/core/dnsserver"\n\t"github.com/coredns/coredns/coremain"\n'
  directives=""
  while IFS=: read -r name path; do
    [[ " ${COREDNS_PLUGINS[*]} " == *" $name "* ]] || continue
    [[ $path == */* ]] || path=github.com/coredns/coredns/plugin/$path
    printf '\t_ "%s"\n' "$path"
    directives+="\"$name\", "
  done < <(grep -E '^[a-z0-9_]+:' "$coredns_dir/plugin.cfg")
  printf ')\n\nfunc init() { dnsserver.Directives = []string{%s} }\n\nfunc main() { coremain.Run() }\n' "$directives"
} >main.go
go mod tidy >&2
go build -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$partial/coredns" .
"$partial/coredns" -plugins | grep -qx 'kubernetes' || { wrapper_log "coredns has no kubernetes plugin"; exit 1; }

# The provisioner is an ordinary module with its own pinned dependencies: `go install` builds it.
wrapper_log "compiling local-path-provisioner $LOCAL_PATH_VERSION"
GOBIN="$partial" go install -ldflags "-s -w" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" >&2

wrapper_log "building the pause image $PAUSE_VERSION from k8s.io/kubernetes@$KUBE_VERSION's pause.c"
kube_dir=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
mkdir -p "$work/pause"
gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_VERSION" -o "$work/pause/pause" "$kube_dir/build/pause/linux/pause.c"
"$hack/oci-archive.sh" "$work/pause" "mlfunctions.local/pause:$PAUSE_VERSION" "$partial/images/pause.tar" \
  65535:65535 /pause

# local-path-provisioner creates and removes volume directories on the node with a helper pod running `sh`.
wrapper_log "building the provisioner's helper image from Debian's static busybox"
mkdir -p "$work/busybox/bin" "$work/busybox/tmp"
cp /bin/busybox "$work/busybox/bin/busybox"
for applet in sh mkdir rm rmdir chmod ls; do ln -s busybox "$work/busybox/bin/$applet"; done
busybox_version=$(dpkg-query -W -f='${Version}' busybox-static | sed 's/^[0-9]*://; s/-.*//')
"$hack/oci-archive.sh" "$work/busybox" "mlfunctions.local/busybox:$busybox_version" "$partial/images/busybox.tar" \
  0:0 /bin/sh

rm -rf "$out"; mv "$partial" "$out"
wrapper_log "done in $(( $(date +%s) - began ))s: $out"
echo "$out"
