#!/usr/bin/env bash
# Live migration of a running VM whose disk daxstore serves, QEMU to QEMU
# on one host, with the commands of docs/migration.md. MIGRATE_DISK picks
# the disk:
#   vhost-user (default)  one `daxstore serve vhost-user-blk` serves the
#       image on one socket to both QEMUs (the QEMU-upgrade-in-place case:
#       the destination connects while the source runs, its rings run once
#       the source's have stopped).
#   nbd  the source's disk is the NBD export of one image, the destination's
#       the export of a second image served by a second `daxstore serve nbd`
#       (the other "host"); QEMU's own storage migration copies the disk:
#       blockdev-mirror (sync=full) into the destination's export, then
#       migrate with pause-before-switchover, block-job-cancel once the
#       source is paused (the mirror's last writes land), migrate-continue
#       (libvirt's `virsh migrate --live --copy-storage-all` sequence).
#   vhost-user-mirror  two hosts with vhost-user-blk disks: the source's
#       `daxstore serve vhost-user-blk` serves one image, a second `daxstore
#       serve nbd --tcp --vhost-user-blk` serves the destination's image
#       (over NBD for the mirror, over vhost-user-blk for the destination
#       QEMU); `daxstore image mirror --wait` copies the disk, then migrate
#       with pause-before-switchover, `daxstore image mirror-complete` once
#       the source is paused, migrate-continue (docs/migration.md, "Two
#       hosts").
#
# A TCG guest (the kernel tier's kernel and initramfs, no 9p share: QEMU
# refuses to migrate a VM with a mounted 9p export) writes batches of 8
# sequence-stamped 4 KiB blocks to its /dev/vda, batch N at block 8*(N-1),
# each with an fsync, and prints "guest: ack N" on its serial console once
# the fsync has returned. After 10 batches a destination QEMU starts with
# the same arguments plus -incoming, and QMP `migrate` on the source moves
# the VM while the guest writes. Checked: the migration completes
# (downtime and total time printed as query-migrate reports them), the
# source is left paused, the guest goes on acknowledging batches on the
# destination's console; after both QEMUs and the servers have stopped,
# every acknowledged batch is in the image the VM ended on, with its
# stamps byte for byte, and `daxstore image check` exits 0 on each image.
#
# MIGRATE_RAM (default 256M) sizes the guest's RAM and the image
# (bench/migrate.sh). Failures, checked with the same stamps on the
# source's image: MIGRATE_FAIL=kill-destination kills the destination
# QEMU once the migration is under way: the migration fails, the source VM
# runs on (10 more batches acknowledged by the source).
# MIGRATE_FAIL=kill-destination-server (nbd) kills the destination's
# `daxstore serve` while the ready mirror follows the guest's writes: the
# job ends with an error (query-jobs), the source VM runs on.
# Env: DAXSTORE, MKINITRAMFS, KERNEL_CACHE, QMP (tests/e2e/qmp.py);
# DAXSTORE_TEST_KEEP=1 keeps the files.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
ram=${MIGRATE_RAM:-256M}
disk=${MIGRATE_DISK:-vhost-user}
[[ $disk == vhost-user || $disk == nbd || $disk == vhost-user-mirror ]] ||
  fail "MIGRATE_DISK is vhost-user, nbd or vhost-user-mirror"
failure=${MIGRATE_FAIL:-}
batch=8 # blocks of 4 KiB per batch

# Image and sockets in /dev/shm; the folder shipped into the guest not
# (the guest mounts devtmpfs over /dev).
work=$(mktemp -d /dev/shm/daxstore-migrate.XXXXXX)
ship=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-migrate-guest.XXXXXX")
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
pids=()
cleanup() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  [[ -n ${DAXSTORE_TEST_KEEP:-} ]] || rm -rf "$work" "$ship"
}
trap cleanup EXIT

# The kernel tier's kernel and cached base initramfs (the key run-in-guest
# computes; built here if missing), plus this test's writer.
kdir=$KERNEL_CACHE/current
[[ -f $kdir/vmlinux ]] || fail "no kernel in $KERNEL_CACHE: run the kernel.fetch test first"
here=$(dirname "$MKINITRAMFS")
key=$(cat "$MKINITRAMFS" "$here/guest-init" "$kdir/version" |
  cat - <(dpkg-query -W busybox-static ndctl daxctl kmod e2fsprogs xfsprogs 2>&1) |
  sha256sum | cut -c1-16)
base=$kdir/initramfs-base-$key.cpio
if [[ ! -f $base ]]; then
  base=$work/base.cpio
  "$MKINITRAMFS" base "$kdir" "$base" || fail "building the base initramfs failed"
fi
cat >"$ship/writer.sh" <<GUEST
dev=/dev/vda
n=0
last=\$((\$(blockdev --getsize64 \$dev) / 4096 / $batch))
echo "guest: writing batches to \$dev"
while [ \$n -lt \$last ]; do
  n=\$((n + 1))
  set --
  i=0
  while [ \$i -lt $batch ]; do
    set -- "\$@" "daxstore-migrate batch \$n block \$i"
    i=\$((i + 1))
  done
  printf '%-4095s\n' "\$@" | dd of=\$dev bs=4096 seek=\$(((n - 1) * $batch)) \\
    iflag=fullblock conv=notrunc,fsync 2>/dev/null ||
    { echo "guest: writing batch \$n failed"; exit 1; }
  # Batch n is durable (its fsync returned) before this line goes out.
  echo "guest: ack \$n"
done
echo "guest: the disk is full of batches"
while :; do sleep 60; done
GUEST
chmod +x "$ship/writer.sh" # mkinitramfs ships a folder's executables
cat >"$work/guest.conf" <<CONF
TOPOLOGY=nvdimm INIT_LABELS=0 POWER_CUT=0
WORKDIR=$ship
guest_command() {
  sh $ship/writer.sh
}
CONF
"$MKINITRAMFS" run "$work/run.cpio" "$work/guest.conf" "$ship" ||
  fail "packing the guest's part of the initramfs failed"
cat "$base" "$work/run.cpio" >"$work/initrd"

# serve NAME ARG...: starts `daxstore serve ARG...` (log NAME.log) and
# waits until it serves.
serve() {
  local name=$1 pid
  shift
  : >"$work/$name.log"
  "$DAXSTORE" serve "$@" 2>"$work/$name.log" &
  pid=$!
  pids+=("$pid")
  eval "${name}_pid=$pid"
  for _ in $(seq 600); do
    grep -q '^daxstore: serving' "$work/$name.log" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "the server $name did not start: $(cat "$work/$name.log")"
}
img=$work/vm.img
"$DAXSTORE" image create "$img" --size "$ram" --emulate memory_controller >/dev/null
if [[ $disk == vhost-user ]]; then
  sock=$work/vm.sock
  serve server vhost-user-blk "$img" --socket "$sock"
  servers=(server)
  disk_args() {
    echo "-chardev socket,id=disk0,path=$sock"
    echo "-device vhost-user-blk-pci,chardev=disk0,num-queues=1"
  }
elif [[ $disk == vhost-user-mirror ]]; then
  # The destination's image: as large, empty, on the other "host", served
  # over NBD on TCP (the mirror's target) and over vhost-user-blk.
  dst_img=$work/vm-dst.img
  "$DAXSTORE" image create "$dst_img" --size "$ram" --emulate memory_controller >/dev/null
  serve server vhost-user-blk "$img" --socket "$work/vm.sock"
  dst_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  serve dst_server nbd "$dst_img" --tcp "127.0.0.1:$dst_port" \
    --vhost-user-blk "base=$work/vm-dst.sock"
  servers=(server dst_server)
  disk_args() {
    local sock=$work/vm.sock
    [[ $1 == dst ]] && sock=$work/vm-dst.sock
    echo "-chardev socket,id=disk0,path=$sock"
    echo "-device vhost-user-blk-pci,chardev=disk0,num-queues=1"
  }
else
  # The destination's image: as large, empty, on the other "host".
  dst_img=$work/vm-dst.img
  "$DAXSTORE" image create "$dst_img" --size "$ram" --emulate memory_controller >/dev/null
  serve server nbd "$img" --socket "$work/src.nbd"
  serve dst_server nbd "$dst_img" --socket "$work/dst.nbd"
  servers=(server dst_server)
  # disk_args NAME: the source's disk is its own export, the destination's
  # the destination image's.
  disk_args() {
    local nbd=$work/src.nbd
    [[ $1 == dst ]] && nbd=$work/dst.nbd
    echo "-blockdev driver=nbd,node-name=disk0,server.type=unix,server.path=$nbd"
    echo "-device virtio-blk-pci,drive=disk0,id=vd0"
  }
fi

# qemu NAME [ARG...]: starts a QEMU for the VM (console NAME.console, QMP
# NAME.qmp); both ends get the same arguments, as a migration needs.
qemu() {
  local name=$1
  shift
  qemu-system-x86_64 -accel tcg -cpu max -smp 1 -nodefaults -display none \
    -machine pc,memory-backend=ram -m "$ram" \
    -object "memory-backend-memfd,id=ram,size=$ram,share=on" \
    -kernel "$kdir/vmlinux" -initrd "$work/initrd" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3" \
    -serial "file:$work/$name.console" \
    -qmp "unix:$work/$name.qmp,server=on,wait=off" \
    $(disk_args "$name") "$@" </dev/null >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$!"
}
qmp() { "$QMP" "$work/$1.qmp" "${@:2}"; }
acks() {
  [[ -f $work/$1.console ]] || return 0
  tr -d '\r' <"$work/$1.console" | sed -n 's/^guest: ack \([0-9]*\)$/\1/p'
}
last_ack() { acks "$1" | tail -n1 | grep . || echo 0; }
# wait_ack NAME N SECONDS: until NAME's console acknowledges batch N.
wait_ack() {
  local end=$((SECONDS + $3)) pid_var=${1}_pid
  while (($(last_ack "$1") < $2)); do
    kill -0 "${!pid_var}" 2>/dev/null || fail "the $1 QEMU ended: $(cat "$work/$1.log")"
    ((SECONDS < end)) || {
      tr -d '\r' <"$work/$1.console" | tail -n 20 >&2
      fail "the guest on $1 did not acknowledge batch $2 in $3 s"
    }
    sleep 0.2
  done
}
wait_qmp() {
  for _ in $(seq 300); do
    [[ -S $work/$1.qmp ]] && qmp "$1" query-status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "no QMP on the $1 QEMU: $(cat "$work/$1.log")"
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)" 2>/dev/null; }

start=$SECONDS
qemu src
wait_qmp src
wait_ack src 10 120
echo "the guest acknowledged 10 batches on the source after $((SECONDS - start)) s"

# The destination: the same VM, waiting for the migration stream; it
# connects to the same vhost-user socket while the source still uses it.
qemu dst -incoming "unix:$work/migrate.sock"
wait_qmp dst
[[ $(qmp dst query-status | json '["status"]') == inmigrate ]] ||
  fail "the destination is not waiting for a migration"
if [[ $disk == nbd ]]; then
  # The disk first: a full mirror into the destination's export, followed
  # until ready; the migration then stops before the switchover.
  qmp src blockdev-add "{\"driver\": \"nbd\", \"node-name\": \"target\",
    \"server\": {\"type\": \"unix\", \"path\": \"$work/dst.nbd\"}}" >/dev/null
  mirror_start=$(date +%s%N)
  # A failed job stays listed (query-jobs) only without auto-dismiss.
  keep=true
  [[ $failure == kill-destination-server ]] && keep=false
  qmp src blockdev-mirror "{\"job-id\": \"mirror0\", \"device\": \"disk0\",
    \"target\": \"target\", \"sync\": \"full\", \"auto-dismiss\": $keep}" >/dev/null
  qmp src --until query-block-jobs 'r and r[0]["ready"]' >/dev/null ||
    fail "the mirror did not get ready: $(qmp src query-block-jobs)"
  echo "the mirror is ready after $((($(date +%s%N) - mirror_start) / 1000000)) ms, at batch $(last_ack src)"
  if [[ $failure == kill-destination-server ]]; then
    # The destination's server dies while the mirror follows the guest's
    # writes: the job fails, the source VM runs on.
    kill -9 "$dst_server_pid"
    wait "$dst_server_pid" 2>/dev/null || true
    servers=(server)
    qmp src --until query-jobs 'r and r[0]["status"] == "concluded"' \
      -- --check 'r[0].get("error")' >"$work/job.json" ||
      fail "the mirror did not fail: $(qmp src query-jobs)"
    echo "the mirror failed: $(json '[0]["error"]' <"$work/job.json")"
    at_kill=$(last_ack src)
    wait_ack src $((at_kill + 10)) 120
    [[ $(qmp src query-status | json '["status"]') == running ]] ||
      fail "the source VM is not running after the mirror failed"
    echo "the source VM went on to batch $(last_ack src)"
    final=src
  fi
  qmp src migrate-set-capabilities \
    '{"capabilities": [{"capability": "pause-before-switchover", "state": true}]}' >/dev/null
fi
if [[ $disk == vhost-user-mirror ]]; then
  # The disk first: daxstore's mirror into the destination's image, ready
  # when it follows the guest's writes.
  mirror_start=$(date +%s%N)
  "$DAXSTORE" image mirror "$img" --to "nbd://127.0.0.1:$dst_port/" --wait \
    >"$work/mirror.json" || fail "image mirror: $(cat "$work/mirror.json")"
  echo "the mirror is ready after $((($(date +%s%N) - mirror_start) / 1000000)) ms, at batch $(last_ack src)"
  qmp src migrate-set-capabilities \
    '{"capabilities": [{"capability": "pause-before-switchover", "state": true}]}' >/dev/null
fi
if [[ $failure != kill-destination-server ]]; then
  qmp src migrate "{\"uri\": \"unix:$work/migrate.sock\"}" >/dev/null
  if [[ $disk == nbd && $failure != kill-destination ]]; then
    # Paused before the switchover: the source VM is stopped, the mirror's
    # last writes go over as the job ends, then the destination may run.
    # One QMP connection for the window: the VM stays paused only as long
    # as the mirror takes to end.
    qmp src --until query-migrate 'r.get("status") in ("pre-switchover", "failed")' \
      -- --check 'r["status"] == "pre-switchover"' \
      -- block-job-cancel '{"device": "mirror0"}' \
      -- --until query-block-jobs 'r == []' \
      -- migrate-continue '{"state": "pre-switchover"}' >/dev/null ||
      fail "the switchover failed: $(qmp src query-migrate)"
  fi
  if [[ $disk == vhost-user-mirror ]]; then
    # 1. the source VM pauses; 2. the last dirty blocks go over; 3. the
    # destination runs (4. the source quits, below).
    qmp src --until query-migrate 'r.get("status") in ("pre-switchover", "failed")' \
      -- --check 'r["status"] == "pre-switchover"' >/dev/null ||
      fail "the migration did not pause before the switchover: $(qmp src query-migrate)"
    "$DAXSTORE" image mirror-complete "$img" >"$work/complete.json" ||
      fail "mirror-complete: $(cat "$work/complete.json")"
    qmp src migrate-continue '{"state": "pre-switchover"}' >/dev/null
  fi
  st=none
  if [[ $failure == kill-destination ]]; then
    # The destination dies while the stream is under way.
    st=$(qmp src --until query-migrate 'r.get("status") != "setup"' 10 |
      json '.get("status", "none")')
    [[ $st == active ]] || fail "the migration did not get under way ($st)"
    kill -9 "$dst_pid"
    wait "$dst_pid" 2>/dev/null || true
  fi
  qmp src --until query-migrate \
    'r.get("status") in ("completed", "failed", "cancelled")' >"$work/migrate.json" || true
  st=$(json '.get("status", "none")' <"$work/migrate.json")
  at_switch=$(last_ack src)
  if [[ $failure == kill-destination ]]; then
    [[ $st == failed ]] || fail "the migration to a killed destination ended '$st'"
    [[ $(qmp src query-status | json '["status"]') == running ]] ||
      fail "the source VM is not running after the failed migration"
    wait_ack src $((at_switch + 10)) 120
    echo "the migration failed; the source VM went on to batch $(last_ack src)"
    final=src
  else
    [[ $st == completed ]] ||
      fail "the migration ended '$st': $(cat "$work/migrate.json" "$work/src.log" "$work/dst.log")"
    downtime=$(json '["downtime"]' <"$work/migrate.json")
    total=$(json '["total-time"]' <"$work/migrate.json")
    echo "migration completed: guest RAM $ram, downtime ${downtime} ms, total ${total} ms (TCG)"
    [[ $(qmp src query-status | json '["status"]') == postmigrate ]] ||
      fail "the source is not paused after the migration"
    [[ $(qmp dst query-status | json '["status"]') == running ]] ||
      fail "the destination is not running after the migration"
    # The guest goes on on the destination: batches after the switchover.
    wait_ack dst $((at_switch + 10)) 120
    echo "the guest acknowledged batches $((at_switch + 1))..$(last_ack dst) on the destination"
    qmp src quit >/dev/null || true
    final=dst
  fi
fi
qmp "$final" quit >/dev/null || true
[[ $final == src ]] && { qmp dst quit >/dev/null 2>&1 || true; }
for p in "$src_pid" "$dst_pid"; do wait "$p" 2>/dev/null || true; done
for name in "${servers[@]}"; do
  pid_var=${name}_pid
  kill "${!pid_var}"
  wait "${!pid_var}" || fail "the server $name exited with an error: $(cat "$work/$name.log")"
done
pids=()

# Every batch either console acknowledged, byte for byte.
{
  acks src
  acks dst
} | sort -nu >"$work/acked"
n_acked=$(wc -l <"$work/acked")
((n_acked >= 20)) || fail "only $n_acked batches were acknowledged"
final_img=$img
[[ $disk != vhost-user && $final == dst ]] && final_img=$dst_img
"$DAXSTORE" image export "$final_img" "$work/vm.raw" >/dev/null
python3 - "$work/vm.raw" "$work/acked" "$batch" <<'PY' ||
import sys
raw, acked, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
bad = 0
with open(raw, "rb") as f:
    for n in map(int, open(acked)):
        f.seek((n - 1) * k * 4096)
        got = f.read(k * 4096)
        want = b"".join(
            f"daxstore-migrate batch {n} block {i}".ljust(4095).encode() + b"\n"
            for i in range(k))
        if got != want:
            bad += 1
            if bad <= 5:
                print(f"batch {n}: the image holds other bytes", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  fail "acknowledged batches are missing from the image"
echo "all $n_acked acknowledged batches are in ${final_img##*/}, stamps intact"
for i in "$img" ${dst_img:+"$dst_img"}; do
  "$DAXSTORE" image check "$i" >"$work/check.json" ||
    fail "image check ${i##*/}: $(cat "$work/check.json")"
done
echo "guest migrate $disk: ok"
