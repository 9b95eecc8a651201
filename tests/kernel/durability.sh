#!/usr/bin/env bash
# Durability across a power cut, in two guest boots on the same backing
# files: write + persist, kill QEMU without a sync, boot again, verify.
#   durability.sh RUN_IN_GUEST BUILD_DIR GUEST_SH [RESULTS_DIR [CACHE_DIR]]
set -euo pipefail
rig=$1 build=$2 guest=$3 results=${4:-} cache=${5:-}
keep=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-durability.XXXXXX")
trap 'rm -rf "$keep"' EXIT
opts=(--build "$build" --add "$guest" --nvdimm 2 --nvdimm-size 1G
  --keep "$keep" --timeout 300)
[[ -n $results ]] && opts+=(--results "$results")
[[ -n $cache ]] && opts+=(--cache "$cache")
echo "== boot 1: write, persist, power cut"
"$rig" "${opts[@]}" --init-labels --power-cut -- sh "$guest" durability-write
echo "== boot 2: verify"
"$rig" "${opts[@]}" -- sh "$guest" durability-verify
