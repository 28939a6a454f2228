#!/usr/bin/env bash
# Builds (once per source change) the kstatus checker in this folder and prints the binary's path. Cached under
# ~/.cache/mlfunctions/kstatus/<hash of the sources>/ ; dependencies come through the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")"

command -v go >/dev/null || { echo "kstatus: Go is needed to build hack/kstatus" >&2; exit 1; }
key=$(cat go.mod go.sum main.go | sha256sum | cut -c1-16)
out=${XDG_CACHE_HOME:-$HOME/.cache}/mlfunctions/kstatus/$key
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ ! -x $out/kstatus ]]; then
  # Build to a temporary name and rename: an interrupted build never leaves a broken binary in the cache.
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$out/kstatus.tmp" . >&2
  mv "$out/kstatus.tmp" "$out/kstatus"
fi
echo "$out/kstatus"
