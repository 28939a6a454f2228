#!/usr/bin/env bash
# Builds the image of every deployable from the project's own Dockerfiles (the operator, iris-server, each
# function) and saves each as a docker-archive tar under ~/.cache/mlfunctions/images/, named by a hash of its
# inputs: an image is rebuilt only when one of its inputs changed, so a cached run takes about a second.
#
#   hack/images.sh [build]          build what changed; prints "<name> <tag> <tar>" per image on stdout
#   hack/images.sh load SOCKET      build if needed, then import every tar into the containerd at SOCKET (k8s.io)
#   hack/images.sh daemon-start     start (or find) the docker daemon; prints DOCKER_HOST=... and STARTED=1|
#   hack/images.sh daemon-stop      stop the docker daemon this script started (images stay in its data-root)
#
# No registry is needed: the Python base is made here with debootstrap (Debian's packages) and imported as
# mlfunctions/python-base:3.11-bookworm; every Dockerfile gets it as --build-arg PYTHON_IMAGE. On a machine with
# registry access, the same Dockerfiles build unchanged on their pinned public default (see hack/README.md).
#
# Settings (environment):
#   EXTRA_CA_BUNDLE  PEM file of CA certificates added to the base image's trust store, for TLS-intercepting
#                    proxies (default: $PIP_CERT when set; empty: none). Its content is part of the base's hash.
#   DEBIAN_MIRROR    mirror for debootstrap (default: the first Debian URI of this machine's apt sources).
#   IMAGE_TAG        tag of the images (default: dev).
#   DOCKER_HOST      a docker daemon to use; otherwise this script runs its own dockerd with its data-root in
#                    ~/.cache/mlfunctions/docker, started for the build and stopped after it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MLFUNCTIONS_CACHE:-$HOME/.cache/mlfunctions}
IMAGES_DIR=$CACHE/images
LOG_DIR=$IMAGES_DIR/logs
DOCKER_ROOT=$CACHE/docker
# Socket, pidfile and exec-root of the dockerd this script starts: its own, so it never meets another daemon.
RUN_DIR=/run/mlfunctions-images
OWN_SOCKET=$RUN_DIR/docker.sock
SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
BASE_TAG=mlfunctions/python-base:3.11-$SUITE
TAG=${IMAGE_TAG:-dev}
EXTRA_CA_BUNDLE=${EXTRA_CA_BUNDLE-${PIP_CERT:-}}
KEY_LABEL=org.mlfunctions.build-key
# Bumped when the way images are built changes (flags, context assembly), so old tars are not reused.
RECIPE="v1 legacy-builder network=host"

# name | Dockerfile | inputs (paths, relative to the repository, whose content makes the image)
IMAGES=(
  "operator|Dockerfile|Dockerfile .dockerignore operator/pyproject.toml operator/mlfunctions_operator"
  "iris-server|iris-server/Dockerfile|iris-server/Dockerfile iris-server/.dockerignore iris-server/pyproject.toml iris-server/iris_server"
  "console|console/Dockerfile|console/Dockerfile console/.dockerignore console/pyproject.toml console/mlfunctions_console"
)
TEMPLATE=functions/template/mlfunctions-python3
for fn_dir in "$ROOT"/functions/*/; do
  fn=$(basename "$fn_dir")
  [[ -f $fn_dir/handler.py && $fn != template ]] || continue
  IMAGES+=("$fn|$TEMPLATE/Dockerfile|$TEMPLATE functions/$fn iris-server/client")
done

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
sha() { sha256sum | cut -c1-64; }

# -- inputs and keys ---------------------------------------------------------------------------------------------

# Hash of the files under the given paths (names and contents), without caches and build leftovers.
content_hash() {
  (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' \
      ! -path '*/build/*' ! -path '*/vendor/*' ! -path '*/.pytest_cache/*' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha
}

base_key() {
  { echo "$SUITE $BASE_PACKAGES"; [[ -z $EXTRA_CA_BUNDLE ]] || cat "$EXTRA_CA_BUNDLE"; } | sha
}

image_key() {  # inputs...
  printf '%s\n' "$RECIPE" "$(base_key)" "$(content_hash "$@")" | sha
}

tar_path() { echo "$IMAGES_DIR/$1-${2:0:16}.tar"; }  # name key

# -- tools and the docker daemon ---------------------------------------------------------------------------------

install_tools() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ ${#missing[@]} -eq 0 ]] && return
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
    || die "missing ${missing[*]}: install them with your package manager, or set DOCKER_HOST"
  log "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  # Other setup scripts may be installing at the same time: wait for apt's lock instead of failing on it.
  apt-get -o DPkg::Lock::Timeout=600 -qq update >&2
  apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends "${missing[@]}" >&2
}

docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

STARTED_DOCKERD=""
ensure_docker() {
  if [[ -n ${DOCKER_HOST:-} ]]; then
    docker_answers || die "DOCKER_HOST=$DOCKER_HOST does not answer"
    return
  fi
  export DOCKER_HOST=unix://$OWN_SOCKET
  docker_answers && return
  install_tools
  mkdir -p "$RUN_DIR" "$DOCKER_ROOT"
  log "starting dockerd (data-root $DOCKER_ROOT, log $CACHE/dockerd.log)"
  # No bridge, no iptables, no forwarding: the daemon leaves the host's network exactly as it was (the node's
  # pods and traffic guard share it); builds use the host's network instead (--network host).
  # 9>&-: the daemon must not inherit the build lock (serialize), or it holds it for as long as it runs and the
  # next build waits forever.
  setsid dockerd --data-root "$DOCKER_ROOT" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid" \
    --host "$DOCKER_HOST" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --log-level=warn </dev/null >>"$CACHE/dockerd.log" 2>&1 9>&- &
  local pid=$! deadline=$((SECONDS + 60))
  until docker_answers; do
    kill -0 "$pid" 2>/dev/null || die "dockerd exited; see $CACHE/dockerd.log"
    ((SECONDS < deadline)) || die "dockerd did not answer within 60 s; see $CACHE/dockerd.log"
    sleep 0.2
  done
  STARTED_DOCKERD=$pid
  log "dockerd $(docker version --format '{{.Server.Version}}') ready"
}

stop_own_dockerd() {
  local pid
  pid=$(cat "$RUN_DIR/dockerd.pid" 2>/dev/null) || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping dockerd ($pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { log "dockerd did not stop in 30 s: killing it"; kill -KILL "$pid"; }
  return 0
}

# -- the base image ------------------------------------------------------------------------------------------

debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  # deb822 sources first, then the one-line format; the first URI of the main archive (not -security).
  local uri
  uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
          /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { print ($2 ~ /^\[/ ? $3 : $2); exit }' \
          /etc/apt/sources.list 2>/dev/null)
  [[ -n $uri ]] || die "no Debian mirror in /etc/apt/sources*: set DEBIAN_MIRROR"
  echo "$uri"
}

# A root filesystem with Debian's Python 3.11, tarred once and kept in the cache.
base_rootfs_tar() {
  local key tar dir
  key=$(base_key)
  tar=$(tar_path "python-base-$SUITE" "$key")
  if [[ ! -f $tar ]]; then
    install_tools
    mkdir -p "$IMAGES_DIR" "$CACHE/tmp"
    dir=$(mktemp -d "$CACHE/tmp/rootfs.XXXXXX")
    log "debootstrap $SUITE with $BASE_PACKAGES (about a minute; log $LOG_DIR/python-base.log)"
    mkdir -p "$LOG_DIR"
    local started=$SECONDS
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$dir" "$(debian_mirror)" \
      >"$LOG_DIR/python-base.log" 2>&1 || { tail -n 20 "$LOG_DIR/python-base.log" >&2; die "debootstrap failed"; }
    if [[ -n $EXTRA_CA_BUNDLE ]]; then
      [[ -f $EXTRA_CA_BUNDLE ]] || die "EXTRA_CA_BUNDLE=$EXTRA_CA_BUNDLE is not a file"
      log "adding the CA bundle $EXTRA_CA_BUNDLE to the base's trust store"
      install -m 0644 "$EXTRA_CA_BUNDLE" "$dir/usr/local/share/ca-certificates/mlfunctions-extra-ca.crt"
      chroot "$dir" update-ca-certificates >>"$LOG_DIR/python-base.log" 2>&1
    fi
    # pip installs into images' own virtualenvs and, in build stages, system-wide as the slim images allow.
    rm -f "$dir"/usr/lib/python3.*/EXTERNALLY-MANAGED
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
      "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/info
    tar --numeric-owner -C "$dir" -cf "$tar.part" .
    mv "$tar.part" "$tar"
    rm -rf "$dir"
    rm -f $(ls "$IMAGES_DIR"/python-base-"$SUITE"-*.tar | grep -vxF "$tar")
    log "base root filesystem ready in $((SECONDS - started)) s: $tar"
  fi
  echo "$tar"
}

ensure_base_image() {
  local key tar
  key=$(base_key)
  [[ $(docker image inspect --format "{{index .Config.Labels \"$KEY_LABEL\"}}" "$BASE_TAG" 2>/dev/null) == "$key" ]] \
    && return
  tar=$(base_rootfs_tar)
  log "importing $BASE_TAG"
  docker import --change "LABEL $KEY_LABEL=$key" --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["python3"]' "$tar" "$BASE_TAG" >/dev/null
}

# -- the images --------------------------------------------------------------------------------------------------

# faas-cli's build context, assembled the way `faas-cli build` does: the template, the handler folder as
# function/, and configuration.copy (./vendor, the iris-client wheel) inside it.
function_context() {  # name dir
  local fn=$1 ctx=$2
  cp -r "$ROOT/$TEMPLATE/." "$ctx/"
  rm -rf "$ctx/function"
  mkdir -p "$ctx/function/vendor"
  tar -C "$ROOT/functions/$fn" --exclude=__pycache__ -c . | tar -C "$ctx/function" -x
  local python=$ROOT/.venv/bin/python
  [[ -x $python ]] || python=python3
  "$python" -m pip wheel --quiet --no-deps --wheel-dir "$ctx/function/vendor" "$ROOT/iris-server/client" >&2
}

build_one() {  # name dockerfile key
  local name=$1 dockerfile=$2 key=$3 tar context tag=mlfunctions/$1:$TAG started=$SECONDS
  tar=$(tar_path "$name" "$key")
  local build_args=(--build-arg "PYTHON_IMAGE=$BASE_TAG" --label "$KEY_LABEL=$key" --network host -t "$tag")
  case $name in
    operator) context=$ROOT; build_args+=(-f "$ROOT/$dockerfile") ;;
    iris-server) context=$ROOT/iris-server ;;
    console) context=$ROOT/console ;;
    *) context=$(mktemp -d "$CACHE/tmp/context-$name.XXXXXX"); function_context "$name" "$context" ;;
  esac
  log "$name: building $tag (log $LOG_DIR/$name.log)"
  mkdir -p "$LOG_DIR"
  if ! DOCKER_BUILDKIT=0 docker build "${build_args[@]}" "$context" >"$LOG_DIR/$name.log" 2>&1; then
    tail -n 30 "$LOG_DIR/$name.log" >&2
    die "$name: docker build failed"
  fi
  [[ $context == "$CACHE"/tmp/* ]] && rm -rf "$context"
  local built=$SECONDS
  docker save -o "$tar.part" "$tag"
  mv "$tar.part" "$tar"
  rm -f $(ls "$IMAGES_DIR/$name"-*.tar | grep -vxF "$tar")
  log "$name: built in $((built - started)) s, saved in $((SECONDS - built)) s ($(du -h "$tar" | cut -f1))"
}

BUILT=()  # "<name> <tag> <tar>" of every image, filled by build_all
build_all() {
  local entry name dockerfile inputs key tar started=$SECONDS rebuilt=0
  mkdir -p "$IMAGES_DIR" "$CACHE/tmp"
  for entry in "${IMAGES[@]}"; do
    IFS='|' read -r name dockerfile inputs <<<"$entry"
    # shellcheck disable=SC2086  # inputs is a list of paths
    key=$(image_key $inputs)
    tar=$(tar_path "$name" "$key")
    if [[ -f $tar ]]; then
      log "$name: cached ($tar)"
    else
      ensure_docker
      ensure_base_image
      build_one "$name" "$dockerfile" "$key"
      rebuilt=$((rebuilt + 1))
    fi
    BUILT+=("$name mlfunctions/$name:$TAG $tar")
  done
  # Images a tag moved away from (and their build layers) would pile up in the data-root with every change.
  ((rebuilt == 0)) || docker image prune --force >/dev/null
  log "$rebuilt of ${#IMAGES[@]} images built, in $((SECONDS - started)) s"
}

# The image config digest (= docker's image id) a docker-archive tar holds, and the one containerd has under a name.
tar_config() { tar -xOf "$1" manifest.json | grep -o '"Config":"[0-9a-f]*' | cut -d'"' -f4; }
containerd_config() {  # socket ref
  local manifest
  manifest=$(ctr --address "$1" --namespace k8s.io images ls "name==$2" | awk 'NR == 2 { print $3 }')
  [[ -n $manifest ]] || return 0
  ctr --address "$1" --namespace k8s.io content get "$manifest" | grep -o '"config":{[^}]*' \
    | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2
}

# Every image into a containerd (the node's), in the namespace the kubelet uses; names become docker.io/...
# An image containerd already holds with the same content is not imported again (that takes seconds each).
load_into_containerd() {  # socket
  local socket=$1 entry name tag tar started
  [[ -S $socket ]] || die "no containerd socket at $socket"
  command -v ctr >/dev/null || die "ctr is needed to load images (Debian's containerd package)"
  build_all
  for entry in "${BUILT[@]}"; do
    read -r name tag tar <<<"$entry"
    if [[ $(containerd_config "$socket" "docker.io/$tag") == "$(tar_config "$tar")" ]]; then
      log "$name: docker.io/$tag already in $socket"
    else
      started=$SECONDS
      ctr --address "$socket" --namespace k8s.io images import "$tar" >/dev/null
      log "$name: imported docker.io/$tag into $socket in $((SECONDS - started)) s"
    fi
    echo "$name docker.io/$tag $tar"
  done
}

# One build at a time on this machine (the node harness and tests may ask together): the second waits.
serialize() { mkdir -p "$CACHE"; exec 9>"$CACHE/images.lock"; flock 9; }
# On Ctrl-C or SIGTERM too: the EXIT trap stops the dockerd this run started.
trap 'exit 130' INT TERM
case ${1:-build} in
  build) serialize; trap '[[ -z $STARTED_DOCKERD ]] || stop_own_dockerd' EXIT
         build_all; printf '%s\n' "${BUILT[@]}" ;;
  load) [[ $# == 2 ]] || die "usage: $0 load CONTAINERD_SOCKET"
        serialize; trap '[[ -z $STARTED_DOCKERD ]] || stop_own_dockerd' EXIT; load_into_containerd "$2" ;;
  daemon-start) serialize; ensure_docker; echo "DOCKER_HOST=$DOCKER_HOST"; echo "STARTED=${STARTED_DOCKERD:+1}" ;;
  daemon-stop) serialize; stop_own_dockerd ;;
  *) die "unknown command $1 (build, load SOCKET, daemon-start, daemon-stop)" ;;
esac
