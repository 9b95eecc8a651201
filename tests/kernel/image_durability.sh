#!/usr/bin/env bash
# An image on device-DAX, on an ext4 -o dax file and on a file on ext4
# without dax (page granularity: msync) survives a hard power cut in the
# middle of a write stream: two guest boots on kept backing files.
#   image_durability.sh RUN_IN_GUEST BUILD_DIR GUEST_SH IMAGE_GUEST_SH [CACHE]
set -euo pipefail
rig=$1 build=$2 guest=$3 image_guest=$4 cache=${5:-}
keep=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-image-durability.XXXXXX")
trap 'rm -rf "$keep"' EXIT
mkdir -p "$keep/results"
opts=(--build "$build" --add "$guest" --add "$image_guest" --nvdimm 2
  --nvdimm-size 1G --keep "$keep" --results "$keep/results" --timeout 300)
[[ -n $cache ]] && opts+=(--cache "$cache")
echo "== boot 1: create, import (acknowledged), power cut mid-stream"
"$rig" "${opts[@]}" --init-labels --power-cut -- \
  sh "$guest" run sh "$image_guest" write
echo "== boot 2: recover, check, verify"
"$rig" "${opts[@]}" -- sh "$guest" run sh "$image_guest" verify
