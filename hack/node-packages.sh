#!/usr/bin/env bash
# Installs the Debian packages a real node needs: containerd and runc (the container runtime), the CNI plugins
# (pod networking), iptables and conntrack (kube-proxy), socat (kubectl port-forward), iproute2 (the node address),
# busybox-static (the volume provisioner's helper image).
# Idempotent and quiet when everything is there: `apt-get update` runs only when something is missing, once.
# Other setup scripts (the image builder's docker.io) install beside it; apt's lock is waited for, not fought.
set -euo pipefail

PACKAGES=(containerd runc containernetworking-plugins iptables conntrack socat iproute2 busybox-static)
log() { printf '[node-packages %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  log "missing ${missing[*]}: install them with your distribution's package manager (as root)"
  exit 1
fi
apt_options=(-o DPkg::Lock::Timeout=600 -qq)
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get "${apt_options[@]}" update >&2
apt-get "${apt_options[@]}" install -y --no-install-recommends "${missing[@]}" >&2
log "done"
