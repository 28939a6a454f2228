# Sourced by control-plane-binaries.sh and node-binaries.sh: builds Kubernetes commands from Go modules.
#
# `go install k8s.io/kubernetes/cmd/...@vX` cannot work: kubernetes' go.mod replaces its staging modules with local
# paths. A wrapper module of our own requires k8s.io/kubernetes and replaces every staging module the tag maps to
# ./staging/src/k8s.io/<name> with its published k8s.io/<name> v0.Y.Z. Both scripts build in the same module and
# build caches, so the second one compiles only what the first did not.
#
# The caller sets LOG_PREFIX and defines nothing else; these functions need bash with `set -euo pipefail`.

wrapper_log() { printf '[%s %s] %s\n' "$LOG_PREFIX" "$(date +%H:%M:%S)" "$*" >&2; }

# kube_wrapper_init <kube-version> [module@version...]: in the current (empty) directory, create the wrapper module
# requiring k8s.io/kubernetes at that version and the extra modules, and set KUBE_GOMOD (the tag's go.mod) and
# KUBE_LDFLAGS (the version stamps /version reports). Resolving downloads through the module proxy.
kube_wrapper_init() {
  local version=$1; shift
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
  go mod init mlfunctions.dev/kube-wrapper >/dev/null 2>&1

  KUBE_GOMOD=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  [[ -f "$KUBE_GOMOD" ]] || { wrapper_log "could not fetch k8s.io/kubernetes@$version's go.mod"; return 1; }

  local staging_version=v0.${version#v1.} m
  local -a staging edits=()
  mapfile -t staging < <(sed -n 's#^\s*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$KUBE_GOMOD")
  [[ ${#staging[@]} -gt 0 ]] || { wrapper_log "no staging modules found in $KUBE_GOMOD"; return 1; }
  wrapper_log "replacing ${#staging[@]} staging modules with their published $staging_version"
  for m in "${staging[@]}"; do edits+=("-replace=$m=$m@$staging_version"); done
  go mod edit "${edits[@]}"  # before any `go get`, or it would try to resolve the local paths

  wrapper_log "resolving modules (downloads through the module proxy)"
  go get "k8s.io/kubernetes@$version" "$@" >&2

  local minor=${version#v1.} pkg
  minor=${minor%%.*}
  KUBE_LDFLAGS="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    KUBE_LDFLAGS+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    KUBE_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
}

# kube_wrapper_pin <package...>: tool directives keep the main packages' modules required. `go get tool` is not
# used, as it would upgrade every tool to its latest release instead of the pinned one.
kube_wrapper_pin() {
  local p
  for p in "$@"; do go mod edit "-tool=$p"; done
}

# kube_build <output-file> <package> [ldflags]: build with upstream's tags; prints a line every 100 packages.
kube_build() {
  local out=$1 pkg=$2 ldflags=${3:-$KUBE_LDFLAGS} name
  name=$(basename "$out")
  wrapper_log "compiling $name ($pkg)"
  go build -v -p "$(nproc)" -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$out" "$pkg" 2>&1 \
    | awk -v p="$LOG_PREFIX" -v n="$name" '/^(#|go: |[^ ]*\.go:)/ {print; next}
        NR % 100 == 0 {printf "[%s] %s: %d packages compiled\n", p, n, NR; fflush()}' >&2
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { wrapper_log "building $name failed"; return 1; }
}
