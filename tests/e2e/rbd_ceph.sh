#!/usr/bin/env bash
# RBD diff streams exchanged with a real `rbd` on a single-node Ceph
# cluster (tests/e2e/ceph_cluster.sh), in both directions:
# - a served daxstore image (3 volumes) written over NBD, snapshotted s1,
#   partly overwritten, discarded and written past its old data, snapshotted
#   s2; export-diff through the control socket piped into `rbd import-diff`
#   (s1, then s1 to s2); `rbd export` of each snapshot is byte for byte the
#   daxstore snapshot and the data the client wrote;
# - an RBD image written by `rbd import` and by qemu-io through QEMU's rbd
#   driver, snapshotted r1 and r2; `rbd export-diff` piped into
#   `daxstore image import-diff`; the same checks;
# - an s1-to-s2 stream applied to an image without s1 fails in both tools,
#   and a truncated stream fails (daxstore: the image unchanged; rbd: no
#   to-snapshot), after which the whole stream applies;
# - a full copy into RBD by `qemu-img convert` from the NBD export.
# Env: DAXSTORE, PLUGIN (set by ctest).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/ceph_cluster.sh"
# On /dev/shm the images are memory-only (no msync): the test is about the
# streams, not durability.
work=$(mktemp -d /dev/shm/daxstore-ceph.XXXXXX)
server=
stop_server() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}
cleanup() {
  stop_server
  ceph_cluster_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
t_start=$SECONDS
for tool in nbdcopy qemu-io qemu-img; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
compgen -G '/usr/lib/*/qemu/block-rbd.so' >/dev/null || {
  echo "SKIP: QEMU's rbd driver is not installed (Debian: qemu-block-extra)"
  exit 77
}
cd "$work"
export XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR"
ceph_cluster_start "$work" || exit $?

D=$DAXSTORE
size=32M
sock=$work/a.nbd
nbd="nbd+unix:///?socket=$sock"
# qemu_nbd COMMANDS...: qemu-io commands on the served base volume.
qemu_nbd() {
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io -f raw "${args[@]}" "$nbd" >/dev/null
}
# edit FILE OFFSET_MiB LENGTH_MiB BYTE|zero: what a write or discard did.
edit() {
  if [[ $4 == zero ]]; then
    dd if=/dev/zero of="$1" bs=1M seek="$2" count="$3" conv=notrunc status=none
  else
    head -c "$(($3 << 20))" /dev/zero | tr '\0' "\\$(printf %03o "$4")" |
      dd of="$1" bs=1M seek="$2" conv=notrunc status=none
  fi
}
# The changes after the first snapshot, the same in both directions: an
# overwrite, a discard (whole and partial RBD objects), a region that held
# nothing, and 3000 bytes inside two 4 KiB blocks.
changes=('write -P 0x5a 2M 4M' 'discard 12M 6M' 'write -P 0xc3 28M 2M'
  'write -P 0x33 5000 3000')
expect_changes() {
  edit "$1" 2 4 0x5a
  edit "$1" 12 6 zero
  edit "$1" 28 2 0xc3
  head -c 3000 /dev/zero | tr '\0' '\063' |
    dd of="$1" bs=1 seek=5000 conv=notrunc status=none
}

echo "== daxstore to rbd (a served image, through its control socket)"
"$D" image create a.img -s $size --max-volumes 3 >/dev/null
"$D" serve nbd a.img --socket "$sock" 2>serve.log &
server=$!
for _ in $(seq 100); do
  nbdinfo "$nbd" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "server: $(cat serve.log)"
  sleep 0.1
done
# Pattern A: 24 MiB of random data, the rest never written.
head -c 24M /dev/urandom >A
truncate -s $size A
nbdcopy A "$nbd"
"$D" image snapshot a.img s1 >/dev/null
qemu_nbd "${changes[@]}"
"$D" image snapshot a.img s2 >/dev/null
cp A want-s2
expect_changes want-s2
rbd create rbd/img --size $size
"$D" image export-diff a.img --to-snap s1 >full.diff
"$D" image export-diff a.img --from-snap s1 --to-snap s2 >inc.diff
# A truncated stream: rbd fails and takes no snapshot (it has applied the
# records before the cut); the whole stream applies afterwards.
rbd import-diff --no-progress full.diff rbd/img
head -c $(($(stat -c %s inc.diff) - 1000)) inc.diff >inc-cut.diff
if rbd import-diff --no-progress inc-cut.diff rbd/img 2>err; then
  fail "rbd import-diff of a truncated stream succeeded"
fi
echo "rbd on a truncated stream: $(tail -n 1 err)"
rbd snap ls rbd/img --format json | grep -q '"name":"s2"' &&
  fail "rbd took s2 from a truncated stream"
# The README's form: export-diff piped into rbd.
"$D" image export-diff a.img --from-snap s1 --to-snap s2 |
  rbd import-diff --no-progress - rbd/img
rbd export --no-progress rbd/img@s1 rbd-s1.raw
rbd export --no-progress rbd/img@s2 rbd-s2.raw
rbd export --no-progress rbd/img rbd-head.raw
nbdcopy "nbd+unix:///s1?socket=$sock" served-s1.raw
cmp A rbd-s1.raw || fail "rbd's s1 is not pattern A"
cmp served-s1.raw rbd-s1.raw || fail "rbd's s1 differs from the served s1"
cmp want-s2 rbd-s2.raw || fail "rbd's s2 is not what the client wrote"
cmp want-s2 rbd-head.raw || fail "rbd's image is not s2"

echo "== qemu-img convert from the NBD export into RBD"
qemu-img convert -f raw -O raw "nbd+unix:///s2?socket=$sock" rbd:rbd/full
rbd export --no-progress rbd/full rbd-full.raw
cmp want-s2 rbd-full.raw || fail "qemu-img convert's copy is not s2"
stop_server
for v in s1 s2; do
  "$D" image export a.img "dax-$v.raw" --volume "$v" >/dev/null
  cmp "dax-$v.raw" "rbd-$v.raw" || fail "daxstore image export --volume $v differs from rbd export @$v"
done

echo "== rbd to daxstore"
# r1: pattern A through `rbd import`; r2: the same changes, by qemu-io
# through QEMU's rbd driver.
rbd import --no-progress A rbd/rev
rbd snap create --no-progress rbd/rev@r1
args=()
for c in "${changes[@]}"; do args+=(-c "$c"); done
qemu-io -f raw "${args[@]}" rbd:rbd/rev >/dev/null
rbd snap create --no-progress rbd/rev@r2
rbd export-diff --no-progress rbd/rev@r1 rfull.diff
rbd export-diff --no-progress --from-snap r1 rbd/rev@r2 rinc.diff
"$D" image create b.img -s $size --max-volumes 4 >/dev/null
rbd export-diff --no-progress rbd/rev@r1 - | "$D" image import-diff - b.img >/dev/null
# A truncated stream: refused, the image unchanged.
"$D" image list b.img >list-before
"$D" image export b.img b-before.raw >/dev/null
head -c $(($(stat -c %s rinc.diff) - 1000)) rinc.diff >rinc-cut.diff
if "$D" image import-diff rinc-cut.diff b.img 2>err >/dev/null; then
  fail "daxstore import-diff of a truncated stream succeeded"
fi
echo "daxstore on a truncated stream: $(tail -n 1 err)"
"$D" image list b.img >list-after
cmp list-before list-after || fail "a truncated stream changed the volumes"
"$D" image export b.img b-after.raw >/dev/null
cmp b-before.raw b-after.raw || fail "a truncated stream changed the image"
rbd export-diff --no-progress --from-snap r1 rbd/rev@r2 - |
  "$D" image import-diff - b.img >/dev/null
for v in r1 r2; do
  rbd export --no-progress "rbd/rev@$v" "rbd-$v.raw"
  "$D" image export b.img "dax-$v.raw" --volume "$v" >/dev/null
  cmp "rbd-$v.raw" "dax-$v.raw" || fail "daxstore's $v differs from rbd export @$v"
done
"$D" image export b.img dax-head.raw >/dev/null
cmp A dax-r1.raw || fail "r1 is not pattern A"
cmp want-s2 dax-r2.raw || fail "r2 is not what qemu-io wrote"
cmp want-s2 dax-head.raw || fail "the image is not r2"
"$D" image check b.img >/dev/null || fail "image check b.img"

echo "== a delta applied to an image without its from-snapshot"
# daxstore: refused before anything changes.
"$D" image create c.img -s $size --max-volumes 4 >/dev/null
"$D" image import A c.img --force >/dev/null
"$D" image list c.img >list-before
for s in inc.diff rinc.diff; do
  if "$D" image import-diff "$s" c.img 2>err >/dev/null; then
    fail "daxstore import-diff of $s without its from-snapshot succeeded"
  fi
  grep -q 'snapshot' err || fail "daxstore's error does not name the snapshot: $(cat err)"
  echo "daxstore without the from-snapshot: $(tail -n 1 err)"
done
"$D" image list c.img >list-after
cmp list-before list-after || fail "a refused stream changed c.img's volumes"
"$D" image export c.img c.raw >/dev/null
cmp A c.raw || fail "a refused stream changed c.img"
# rbd: refused too (exit status), no snapshot taken, no data written.
rbd import --no-progress A rbd/none
for s in inc.diff rinc.diff; do
  rc=0
  rbd import-diff --no-progress "$s" rbd/none 2>err || rc=$?
  ((rc != 0)) || fail "rbd import-diff of $s without its from-snapshot exited 0"
  echo "rbd without the from-snapshot (exit $rc): $(tail -n 1 err)"
done
[[ $(rbd snap ls rbd/none --format json) == '[]' ]] ||
  fail "rbd took a snapshot: $(rbd snap ls rbd/none)"
rbd export --no-progress rbd/none none.raw
cmp A none.raw || fail "a refused stream changed rbd/none"
echo "rbd ceph: done in $((SECONDS - t_start)) s"
echo "rbd ceph: ok"
