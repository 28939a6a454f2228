#!/usr/bin/env bash
# Provides the real Prometheus server (and promtool) for one pinned release and prints the directory holding them.
#
# Built from the Go module github.com/prometheus/prometheus through the Go module proxy, once, cached under
# ~/.cache/mlfunctions/prometheus/<version>/ (release tarballs are never downloaded). The module's go.mod has no
# replace directives, so `go install pkg@version` builds it without a wrapper module.
#
# Build tags, and why:
#   remove_all_sd  only static, file and HTTP service discovery are compiled in (plugins/minimum.go); the cloud
#                  SDKs (AWS, Azure, GCE, Kubernetes, ...) would multiply the compile time and are not used here.
#   (no builtinassets) the React web UI is not embedded: it needs a Node build. The HTTP API (/api/v1/...),
#                  /-/ready and /metrics work the same; the UI pages answer 404 / an error page.
#
# Progress goes to stderr; the directory is the only thing printed on stdout.
set -euo pipefail

PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0}
BINARIES=(prometheus promtool)

log() { printf '[prometheus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

have_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/prometheus
out=$cache_root/$PROMETHEUS_MODULE_VERSION
mkdir -p "$cache_root"

# Two callers at once (tests and `make up`) must not build twice into the same place.
exec 9>"$cache_root/.lock"
flock 9

if have_all "$out"; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { log "Go is needed to build Prometheus"; exit 1; }

staging_dir="$out.partial"
rm -rf "$staging_dir"; mkdir -p "$staging_dir"

# Module v0.X.Y is Prometheus 3.X.Y; stamp that so /api/v1/status/buildinfo and prometheus_build_info say it.
release=$(sed -E 's/^v0\.([0-9])([0-9]{2})\.([0-9]+)$/\1.\2.\3/; s/\.0([0-9])\./.\1./' <<<"$PROMETHEUS_MODULE_VERSION")
ldflags="-s -w -X github.com/prometheus/common/version.Version=$release"
ldflags+=" -X github.com/prometheus/common/version.Revision=module-$PROMETHEUS_MODULE_VERSION"
ldflags+=" -X github.com/prometheus/common/version.Branch=module"
ldflags+=" -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"

log "building Prometheus $release (module $PROMETHEUS_MODULE_VERSION) from Go modules (minutes on 2 cores; cached afterwards)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$staging_dir" GOFLAGS="-buildvcs=false"
for cmd in "${BINARIES[@]}"; do
  log "compiling $cmd"
  go install -p "$(nproc)" -tags remove_all_sd,netgo -ldflags "$ldflags" \
    "github.com/prometheus/prometheus/cmd/$cmd@$PROMETHEUS_MODULE_VERSION" >&2
done

rm -rf "$out"; mv "$staging_dir" "$out"
log "done: $out"
echo "$out"
