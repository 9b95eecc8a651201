#!/usr/bin/env bash
# A QEMU guest whose disk is `daxstore serve nbd`: boot 1 makes ext4, writes
# files, syncs, and the power is cut (QEMU killed, nothing flushed on the
# way out); boot 2 finds the files intact and, after the journal replay,
# the file system clean (e2fsck -fn).
# Env: DAXSTORE, RUN_IN_GUEST, BUILD, KERNEL_CACHE.
set -euo pipefail
work=$(mktemp -d /dev/shm/daxstore-guest-nbd.XXXXXX)
# Control sockets of this test's servers in a directory of its own: tests
# run side by side, and two servers of one name would collide.
export XDG_RUNTIME_DIR=$work/run
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
sock=$work/sock
"$DAXSTORE" image create "$work/img" --size 128M >/dev/null
"$DAXSTORE" serve nbd "$work/img" --socket "$sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { cat "$work/serve.log"; exit 1; }

# Boot 1 attaches the disk with -drive; boot 2 with what `daxstore vm-args`
# prints, so its QEMU form is booted too.
drive=(--qemu-arg -drive
  --qemu-arg "file=nbd+unix:///?socket=$sock,format=raw,if=virtio,cache=none")
printed=()
for word in $("$DAXSTORE" vm-args "$work/img" --nbd --socket "$sock" | grep -v '^#'); do
  printed+=(--qemu-arg "$word")
done
guest() {  # guest [harness options...] -- command
  "$RUN_IN_GUEST" --cache "$KERNEL_CACHE" --build "$BUILD" --nvdimm 1 \
    --nvdimm-size 128M --timeout 120 --results "$work/results" "$@"
}

# Boot 1: the checksums go to the results share before the power cut.
guest "${drive[@]}" --power-cut -- sh -c '
  set -e
  mkfs.ext4 -q -F /dev/vda
  mkdir -p /mnt/d && mount /dev/vda /mnt/d
  for i in 1 2 3 4; do
    dd if=/dev/urandom of=/mnt/d/f$i bs=64k count=$((i * 8)) 2>/dev/null
  done
  (cd /mnt/d && md5sum f1 f2 f3 f4) >$DAXSTORE_RESULTS_DIR/sums
  sync'
[[ -s $work/results/sums ]] || { echo "FAIL: boot 1 wrote no checksums"; exit 1; }

# Boot 2: the files match, and once the mount has replayed the journal (a
# power cut after sync leaves committed, not yet checkpointed, metadata in
# it) the file system is clean.
guest "${printed[@]}" -- sh -c '
  set -e
  mkdir -p /mnt/d && mount /dev/vda /mnt/d
  (cd /mnt/d && md5sum -c $DAXSTORE_RESULTS_DIR/sums)
  umount /mnt/d
  e2fsck -fn /dev/vda'
echo PASS
