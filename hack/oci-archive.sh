#!/usr/bin/env bash
# Writes a one-layer OCI image archive (an OCI image layout in a tar) from a directory, without any image builder:
#
#   oci-archive.sh <rootfs-dir> <image-name> <out.tar> <user> <entrypoint> [args...]
#
# `ctr images import` loads it under <image-name> (the io.containerd.image.name annotation). The node uses it for
# images that are part of the node itself (the pod sandbox's pause, the volume provisioner's helper), which must
# exist before any registry or docker daemon is there. The layer is reproducible: same files, same digest.
set -euo pipefail

[[ $# -ge 5 ]] || { echo "usage: $0 <rootfs-dir> <image-name> <out.tar> <user> <entrypoint> [args...]" >&2; exit 2; }
rootfs=$1 name=$2 out=$3 user=$4
shift 4

layout=$(mktemp -d)
trap 'rm -rf "$layout"' EXIT
mkdir -p "$layout/blobs/sha256"

# blob <file>: moves a file into the content store by digest and prints "<digest> <size>".
blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$layout/blobs/sha256/$digest"
  echo "$digest $size"
}

json_array() {  # json_array a b c -> ["a","b","c"] (arguments without quotes or backslashes)
  local first=1 item
  printf '['
  for item in "$@"; do
    [[ $first == 1 ]] || printf ','
    printf '"%s"' "$item"
    first=0
  done
  printf ']'
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$layout/layer.tar" .
read -r layer_digest layer_size < <(blob "$layout/layer.tar")

printf '{"architecture":"amd64","os":"linux","config":{"User":"%s","Entrypoint":%s,"WorkingDir":"/"},' \
  "$user" "$(json_array "$@")" >"$layout/config.json"
printf '"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer_digest" >>"$layout/config.json"
read -r config_digest config_size < <(blob "$layout/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",%s,%s}' \
  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$config_size}" \
  "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$layer_digest\",\"size\":$layer_size}]" \
  >"$layout/manifest.json"
read -r manifest_digest manifest_size < <(blob "$layout/manifest.json")

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",%s,%s}]}' \
  "\"digest\":\"sha256:$manifest_digest\",\"size\":$manifest_size,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}" \
  "\"annotations\":{\"io.containerd.image.name\":\"$name\"}" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$layout" -cf "$out.partial" oci-layout index.json blobs
mv "$out.partial" "$out"
