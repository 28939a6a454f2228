#!/usr/bin/env bash
# Provides a real PostgreSQL server from Debian's packages (for the model store's catalog tests) and prints the
# directory holding its programs (initdb, postgres, pg_ctl), e.g. /usr/lib/postgresql/15/bin.
#
# Idempotent and quick when installed: `apt-get update` runs only when the package is missing. Only the programs
# are used: tests start throwaway clusters of their own (hack/harness/mlfunctions_harness/postgres.py); the
# package's default cluster is left alone (it is not needed and not started).
# Progress goes to stderr; the directory is the only thing printed on stdout.
set -euo pipefail

PACKAGES=(postgresql)
log() { printf '[postgres %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bindir() {
  # The newest installed major version (Debian installs each under /usr/lib/postgresql/<major>/bin).
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n $dir && -x $dir/initdb && -x $dir/postgres ]] && echo "$dir"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    log "missing ${missing[*]}: install them with your distribution's package manager (as root)"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_options=(-o DPkg::Lock::Timeout=600 -qq)  # other setup scripts may be installing: wait for apt's lock
  apt-get "${apt_options[@]}" update >&2
  apt-get "${apt_options[@]}" install -y --no-install-recommends "${missing[@]}" >&2
  log "done"
fi

dir=$(bindir) || { log "no PostgreSQL programs under /usr/lib/postgresql/*/bin after installing"; exit 1; }
echo "$dir"
