#!/usr/bin/env bash
# Provides the real SeaweedFS server (`weed`: master, volume, filer and the S3 gateway in one binary) for one
# pinned module version and prints the directory holding it. The model store's S3 artifact backend is tested
# against it (hack/harness/mlfunctions_harness/seaweedfs.py starts it).
#
# Built from the Go module github.com/seaweedfs/seaweedfs through the Go module proxy, once, cached under
# ~/.cache/mlfunctions/seaweedfs/<version>/ (release tarballs are never downloaded). The proxy serves exactly one
# version of the module (a pseudo-version: SeaweedFS tags its releases in a way the proxy does not list).
#
# Why a throwaway wrapper module: SeaweedFS's go.mod has a `replace` directive (go-bip39, deleted upstream, by an
# API-compatible fork), and `go install pkg@version` refuses modules with replaces. The wrapper requires the
# module and repeats that one replace, so the build uses exactly the versions SeaweedFS's go.mod selects.
#
# Build tags: none. Every heavy optional part of SeaweedFS (filer stores for elastic, ydb, tikv, rocksdb,
# foundationdb, tarantool, gocdk, sqlite; rclone remote storage; Azure KMS) is opt-in behind its own tag, so a
# plain build already leaves them out. The default filer store (leveldb, pure Go) is what the tests use.
#
# Progress goes to stderr; the directory is the only thing printed on stdout.
set -euo pipefail

SEAWEEDFS_MODULE_VERSION=${SEAWEEDFS_MODULE_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
MODULE=github.com/seaweedfs/seaweedfs

log() { printf '[seaweedfs %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/seaweedfs
out=$cache_root/$SEAWEEDFS_MODULE_VERSION
mkdir -p "$cache_root"

# Two callers at once (tests and `make test`'s setup) must not build twice into the same place.
exec 9>"$cache_root/.lock"
flock 9

if [[ -x "$out/weed" ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { log "Go is needed to build SeaweedFS"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false"
started=$(date +%s)
log "building SeaweedFS $SEAWEEDFS_MODULE_VERSION from Go modules (minutes on 2 cores; cached afterwards)"
go mod init mlfunctions.local/seaweedfs-build >/dev/null 2>&1
go mod edit -replace github.com/tyler-smith/go-bip39=github.com/cosmos/go-bip39@v1.0.0
go get "$MODULE/weed@$SEAWEEDFS_MODULE_VERSION" >&2

staging_dir="$out.partial"
rm -rf "$staging_dir"; mkdir -p "$staging_dir"
go build -p "$(nproc)" -trimpath -ldflags "-s -w" -o "$staging_dir/weed" "$MODULE/weed" >&2

rm -rf "$out"; mv "$staging_dir" "$out"
log "done in $(( $(date +%s) - started ))s: $out"
echo "$out"
