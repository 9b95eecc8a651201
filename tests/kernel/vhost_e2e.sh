#!/usr/bin/env bash
# A QEMU guest whose disk is a vhost-user-blk-pci device served by
# `daxstore serve vhost-user-blk`: boot 1 makes an ext4 file system, writes
# files, syncs and loses power; boot 2 (a new QEMU, the same server, which
# takes the reconnect) mounts it, checks the files' checksums, unmounts and
# runs e2fsck -fn.
#   vhost_e2e.sh RUN_IN_GUEST DAXSTORE_CLI [CACHE_DIR]
set -euo pipefail
rig=$1 cli=$2 cache=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-vhost-e2e.XXXXXX")
# Control sockets of this test's servers in a directory of its own: tests
# run side by side, and two servers of one name would collide.
export XDG_RUNTIME_DIR=$work/run
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
server=''
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "vhost_e2e: $*" >&2; exit 1; }

mkdir -p "$work/build" "$work/results"
# The guest gets only this script (the build folder it ships).
cat >"$work/build/guest.sh" <<'GUEST'
set -e
mkdir -p /mnt/d
case $1 in
  write)
    mkfs.ext4 -q -F /dev/vda
    mount -t ext4 /dev/vda /mnt/d
    mkdir /mnt/d/dir
    for i in 1 2 3 4; do
      dd if=/dev/urandom of=/mnt/d/f$i bs=64k count=$((i * 8)) 2>/dev/null
    done
    cp /mnt/d/f1 /mnt/d/dir/copy
    (cd /mnt/d && md5sum f1 f2 f3 f4 dir/copy) >"$DAXSTORE_RESULTS_DIR/sums"
    sync
    ;;
  verify)
    mount -t ext4 /dev/vda /mnt/d
    (cd /mnt/d && md5sum f1 f2 f3 f4 dir/copy) >"$DAXSTORE_RESULTS_DIR/sums2"
    umount /mnt/d
    e2fsck -fn /dev/vda
    ;;
esac
GUEST
chmod +x "$work/build/guest.sh"
"$cli" image create "$work/disk.img" --size 256M >/dev/null
"$cli" serve vhost-user-blk "$work/disk.img" --socket "$work/vub.sock" \
  --queues 2 --serial e2e-disk &
server=$!
for _ in $(seq 50); do [[ -S $work/vub.sock ]] && break; sleep 0.1; done
[[ -S $work/vub.sock ]] || fail "the server did not create its socket"

opts=(--build "$work/build" --nvdimm 1
  --nvdimm-size 64M --memory 512M --shared-ram --timeout 240
  --results "$work/results"
  --qemu-arg -chardev --qemu-arg "socket,id=vub,path=$work/vub.sock,reconnect=1"
  --qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=vub,num-queues=2")
[[ -n $cache ]] && opts+=(--cache "$cache")
echo "== boot 1: mkfs, write, sync, power cut"
"$rig" "${opts[@]}" --power-cut -- sh "$work/build/guest.sh" write
[[ -s $work/results/sums ]] || fail "boot 1 wrote no checksums"
echo "== boot 2: mount, checksums, e2fsck -fn"
"$rig" "${opts[@]}" -- sh "$work/build/guest.sh" verify ||
  fail "boot 2 failed (e2fsck or mount)"
diff "$work/results/sums" "$work/results/sums2" ||
  fail "file contents changed across the power cut"
kill -0 "$server" || fail "the server died"
echo "vhost_e2e: ext4 on vhost-user-blk survived a power cut; e2fsck clean"
