#!/usr/bin/env bash
# Snapshots taken through the CLI while guests write to the volumes:
#   - a golden ext4 disk is imported, snapshotted and cloned as vm1 and
#     vm2; one `daxstore serve nbd` serves vm1 over NBD and vm2 over
#     vhost-user-blk; two guests boot at once with what `vm-args --volume
#     vmN` prints, and each, on its mounted ext4, writes stamp files 1, 2,
#     3, ... (stamp N: 256 KiB of "stamp N" lines, then sync), and after
#     each sync names N in its results share;
#   - meanwhile the host takes three snapshots of each volume, `daxstore
#     image snapshot IMAGE vmN-liveI --volume vmN` (through the server's
#     control socket), a few stamps apart, reading the last stamp done
#     just before each request (B) and just after its reply (A), and lets
#     the guests write a few more before they stop;
#   - each snapshot, copied out over NBD, is what a crash at one moment
#     leaves: an ext4 marked as mounted whose journal replays
#     (e2fsck -E journal_only), after which e2fsck -fn is clean; it holds
#     stamps 1..H-1 whole and stamp H whole or a prefix of itself, with
#     B <= H <= A+1 (stamp A+2 begins after the reply); each clone itself
#     holds every stamp its guest wrote; `image check` is clean.
# Env: DAXSTORE, RUN_IN_GUEST, KERNEL_CACHE.
set -euo pipefail
work=$(mktemp -d /dev/shm/daxstore-guest-live.XXXXXX)
ship=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-guest-live.XXXXXX")
server='' guests=()
cleanup() {
  for p in ${guests[@]+"${guests[@]}"}; do kill "$p" 2>/dev/null || true; done
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work" "$ship"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
vms=(vm1 vm2)
ram=256M

mkdir -p "$work/golden"
echo "golden image" >"$work/golden/motd"
truncate -s 64M "$work/golden.raw"
mkfs.ext4 -q -F -b 4096 -d "$work/golden" "$work/golden.raw"
img=$work/vms.img
# base, golden, two clones and three snapshots of each.
"$DAXSTORE" image import "$work/golden.raw" "$img" --max-volumes 10 \
  --emulate memory_controller >/dev/null
"$DAXSTORE" image snapshot "$img" golden >/dev/null
for vm in "${vms[@]}"; do "$DAXSTORE" image clone "$img" golden "$vm" >/dev/null; done

sock=$work/vms.nbd
"$DAXSTORE" serve nbd "$img" --socket "$sock" \
  --vhost-user-blk "vm2=$work/vm2.sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do
  grep -q '^daxstore: serving' "$work/serve.log" && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.05
done
grep -q '^daxstore: serving' "$work/serve.log" ||
  fail "the server did not start: $(cat "$work/serve.log")"
"$DAXSTORE" vm-args "$img" --volume vm1 --socket "$sock" >"$work/vm1.args"
"$DAXSTORE" vm-args "$img" --volume vm2 --vhost-user --guest-ram "$ram" \
  >"$work/vm2.args"

# stamp N: what a guest writes as stamps/N.
stamp() { yes "stamp $1" | head -c 262144; }
cat >"$ship/guest.sh" <<'GUEST'
set -e
r=$DAXSTORE_RESULTS_DIR
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d
mkdir /mnt/d/stamps
sync
n=0
# Until the host says stop (the harness's timeout ends a runaway loop).
while [ ! -e "$r/stop" ]; do
  n=$((n + 1))
  yes "stamp $n" | head -c 262144 >"/mnt/d/stamps/$n"
  sync
  # Stamp n is durable before the host may read n here.
  echo "$n" >"$r/done.tmp" && mv "$r/done.tmp" "$r/done"
done
umount /mnt/d
e2fsck -fn /dev/vda >/dev/null 2>&1 || { echo "guest: e2fsck found errors"; exit 1; }
echo "guest: wrote stamps 1..$n; e2fsck clean"
GUEST
chmod +x "$ship/guest.sh"

declare -A pid
for vm in "${vms[@]}"; do
  mkdir -p "$work/results-$vm"
  "$RUN_IN_GUEST" --cache "$KERNEL_CACHE" --build "$ship" --nvdimm 0 \
    --memory "$ram" --timeout 150 --results "$work/results-$vm" \
    --vm-args "$work/$vm.args" -- sh "$ship/guest.sh" >"$work/$vm.log" 2>&1 &
  guests+=($!)
  pid[$vm]=$!
done
done_n() { cat "$work/results-$1/done" 2>/dev/null || echo 0; }
# wait_for VM N: until VM's guest has written stamp N.
wait_for() {
  for _ in $(seq 1200); do
    (($(done_n "$1") >= $2)) && return 0
    kill -0 "${pid[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/$1.log" >&2
  fail "the $1 guest did not get to stamp $2"
}
# Three snapshots of each volume, a few stamps apart. requested[VM.I]: the
# last stamp done before the request; replied[VM.I]: the last one done by
# the reply.
declare -A requested replied
for vm in "${vms[@]}"; do replied[$vm.0]=0; done
for i in 1 2 3; do
  for vm in "${vms[@]}"; do
    wait_for "$vm" $((${replied[$vm.$((i - 1))]} + 3))
    requested[$vm.$i]=$(done_n "$vm")
    "$DAXSTORE" image snapshot "$img" "$vm-live$i" --volume "$vm" >/dev/null
    replied[$vm.$i]=$(done_n "$vm")
  done
done
for vm in "${vms[@]}"; do
  wait_for "$vm" $((${replied[$vm.3]} + 3))
  touch "$work/results-$vm/stop"
done
for i in "${!vms[@]}"; do
  vm=${vms[i]} rc=0
  wait "${guests[i]}" || rc=$?
  grep -q '^guest: wrote stamps' "$work/$vm.log" && [[ $rc == 0 ]] ||
    { cat "$work/$vm.log" >&2; fail "the $vm guest failed (status $rc)"; }
  echo "$vm $(grep '^guest:' "$work/$vm.log")"
done
guests=()

for vm in "${vms[@]}"; do
  for i in 1 2 3; do
    nbdcopy "nbd+unix:///$vm-live$i?socket=$sock" "$work/$vm-live$i.raw"
  done
  nbdcopy "nbd+unix:///$vm?socket=$sock" "$work/$vm.raw"
done
kill "$server" && wait "$server" || true
server=

# dump DISK N OUT: stamps/N of DISK into OUT; fails when there is none.
dump() {
  rm -f "$3"
  debugfs -R "dump /stamps/$2 $3" "$1" >/dev/null 2>&1
  [[ -f $3 ]]
}
for vm in "${vms[@]}"; do
  for i in 1 2 3; do
    snap=$vm-live$i disk=$work/$vm-live$i.raw
    b=${requested[$vm.$i]} a=${replied[$vm.$i]}
    # What a crash at that moment leaves: the guest had the file system
    # mounted (its journal is marked for recovery); after the replay it is
    # clean. (e2fsck exits 1 when it changed the file system: the replay.)
    dumpe2fs -h "$disk" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery' ||
      fail "$snap: the ext4 is not marked as mounted (needs_recovery)"
    rc=0
    e2fsck -E journal_only -y "$disk" >"$work/replay.log" 2>&1 || rc=$?
    ((rc <= 1)) ||
      { cat "$work/replay.log" >&2; fail "$snap: replaying the journal failed ($rc)"; }
    e2fsck -fn "$disk" >"$work/fsck.log" 2>&1 ||
      { cat "$work/fsck.log" >&2; fail "$snap: the ext4 is not consistent"; }
    # Stamp N+1 is begun only after stamp N is synced, so a point in time
    # holds stamps 1..H-1 whole and stamp H whole or in part: H at least B
    # (done before the request), at most A+1 (A: done by the reply).
    held=$(debugfs -R 'ls -p /stamps' "$disk" 2>/dev/null |
      awk -F/ 'NF > 5 && $6 ~ /^[0-9]+$/ {print $6}' | sort -n | tail -n1)
    held=${held:-0} size=0
    ((held >= b)) || fail "$snap holds stamps up to $held, but $b was done before the request"
    ((held <= a + 1)) ||
      fail "$snap holds stamp $held, begun after the reply (stamp $a was done by then)"
    for ((n = 1; n <= held; n++)); do
      dump "$disk" "$n" "$work/s" || fail "$snap lacks stamp $n but holds $held"
      size=$(stat -c %s "$work/s")
      if ((n < held || n <= b)); then
        cmp -s "$work/s" <(stamp "$n") || fail "$snap: stamp $n is not whole"
      else
        cmp -s "$work/s" <(stamp "$n" | head -c "$size") ||
          fail "$snap: stamp $n (in flight) holds other data"
      fi
    done
    echo "$snap: requested after stamp $b, stamp $a done by the reply; holds 1..$held (stamp $held: $size bytes); ext4 clean after the journal replay"
  done
  # The clone went on: it holds every stamp.
  last=$(done_n "$vm")
  for ((n = 1; n <= last; n++)); do
    dump "$work/$vm.raw" "$n" "$work/s" && cmp -s "$work/s" <(stamp "$n") ||
      fail "$vm lacks stamp $n"
  done
  echo "$vm: stamps 1..$last"
done
"$DAXSTORE" image check "$img" >"$work/check.json" ||
  fail "image check: status $?: $(cat "$work/check.json")"
echo "guest live snapshot: ok"
