#!/usr/bin/env bash
# scripts/demo.sh (the main job) runs to the end against this build, prints
# each of its checks, and leaves its demo directory as it found it: a file
# of the user's there is kept, and the demo's own directory is gone.
# Args: SOURCE_DIR BUILD_DIR.
set -euo pipefail
src=$1
build=$2
dir=$(mktemp -d /var/tmp/daxstore-demo-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
echo "the user's" >"$dir/keep.img"
rc=0
DAXSTORE_DEMO_DIR=$dir "$src/scripts/demo.sh" "$build" >"$dir/out" 2>&1 || rc=$?
((rc == 0)) || { cat "$dir/out"; fail "demo.sh exited $rc"; }
cat "$dir/out"
for want in "ok: vm1 read the golden disk and wrote its own data" \
  "ok: vm2 read the golden disk and wrote its own data" \
  "ok: vm3 read the golden disk and wrote its own data" \
  "ok: the snapshot vm2-backup, exported with nbdcopy, holds what vm2 had written" \
  "ok: vm1 and vm3 hold the golden disk and their own data" \
  "ok: the volumes map 7168 blocks; the image stores 2048" \
  "ok: clean shutdown; image check is clean; image export of vm2-backup matches" \
  "demo: done"; do
  grep -qxF "$want" "$dir/out" || fail "no line '$want'"
done
[[ $(cat "$dir/keep.img") == "the user's" ]] || fail "the demo changed keep.img"
left=$(ls "$dir")
[[ $left == $'keep.img\nout' ]] || fail "the demo left: $left"
echo "demo: ok"
