#!/usr/bin/env bash
# A snapshot taken through the CLI while a guest writes to the volume:
#   - a golden ext4 disk is imported, snapshotted and cloned as vm1; one
#     `daxstore serve nbd` serves it; a guest boots with what `vm-args
#     --volume vm1` prints and, on the mounted ext4, writes stamp files
#     1, 2, 3, ... (stamp N: 256 KiB of "stamp N" lines, then sync), and
#     after each sync names N in its results share;
#   - meanwhile the host takes three snapshots, `daxstore image snapshot
#     IMAGE liveI --volume vm1` (through the server's control socket), a
#     few stamps apart, reading the last stamp done just before each
#     request (B) and just after its reply (A), and lets the guest write a
#     few more before it stops;
#   - each snapshot, copied out over NBD, is what a crash at one moment
#     leaves: an ext4 marked as mounted whose journal replays
#     (e2fsck -E journal_only), after which e2fsck -fn is clean; it holds
#     stamps 1..H-1 whole and stamp H whole or a prefix of itself, with
#     B <= H <= A+1 (stamp A+2 begins after the reply); vm1 itself holds
#     every stamp the guest wrote; `image check` is clean.
# Env: DAXSTORE, RUN_IN_GUEST, KERNEL_CACHE.
set -euo pipefail
work=$(mktemp -d /dev/shm/daxstore-guest-live.XXXXXX)
ship=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-guest-live.XXXXXX")
server='' guest=''
cleanup() {
  [[ -n $guest ]] && kill "$guest" 2>/dev/null || true
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work" "$ship"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"

mkdir -p "$work/golden"
echo "golden image" >"$work/golden/motd"
truncate -s 64M "$work/golden.raw"
mkfs.ext4 -q -F -b 4096 -d "$work/golden" "$work/golden.raw"
img=$work/vms.img
"$DAXSTORE" image import "$work/golden.raw" "$img" --max-volumes 6 \
  --emulate memory_controller >/dev/null
"$DAXSTORE" image snapshot "$img" golden >/dev/null
"$DAXSTORE" image clone "$img" golden vm1 >/dev/null

sock=$work/vms.nbd
"$DAXSTORE" serve nbd "$img" --socket "$sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do
  grep -q '^daxstore: serving' "$work/serve.log" && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.05
done
grep -q '^daxstore: serving' "$work/serve.log" ||
  fail "the server did not start: $(cat "$work/serve.log")"
"$DAXSTORE" vm-args "$img" --volume vm1 --socket "$sock" >"$work/vm1.args"

# stamp N: what the guest writes as stamps/N.
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

mkdir -p "$work/results"
"$RUN_IN_GUEST" --cache "$KERNEL_CACHE" --build "$ship" --nvdimm 0 \
  --memory 256M --timeout 150 --results "$work/results" \
  --vm-args "$work/vm1.args" -- sh "$ship/guest.sh" >"$work/guest.log" 2>&1 &
guest=$!
done_n() { cat "$work/results/done" 2>/dev/null || echo 0; }
# wait_for N: until the guest has written stamp N.
wait_for() {
  for _ in $(seq 1200); do
    (($(done_n) >= $1)) && return 0
    kill -0 "$guest" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/guest.log" >&2
  fail "the guest did not get to stamp $1"
}
# Three snapshots, a few stamps apart.
# requested[i]: the last stamp done before snapshot i was asked for;
# replied[i]: the last one done once it had been taken.
requested=() replied=(0)
for i in 1 2 3; do
  wait_for $((replied[i - 1] + 3))
  requested[i]=$(done_n)
  "$DAXSTORE" image snapshot "$img" "live$i" --volume vm1 >/dev/null
  replied[i]=$(done_n)
done
wait_for $((replied[3] + 3))
touch "$work/results/stop"
rc=0
wait "$guest" || rc=$?
guest=
grep -q '^guest: wrote stamps' "$work/guest.log" && [[ $rc == 0 ]] ||
  { cat "$work/guest.log" >&2; fail "the guest failed (status $rc)"; }
grep '^guest:' "$work/guest.log"
last=$(done_n)

for i in 1 2 3; do
  nbdcopy "nbd+unix:///live$i?socket=$sock" "$work/live$i.raw"
done
nbdcopy "nbd+unix:///vm1?socket=$sock" "$work/vm1.raw"
kill "$server" && wait "$server" || true
server=

# dump DISK N OUT: stamps/N of DISK into OUT; fails when there is none.
dump() {
  rm -f "$3"
  debugfs -R "dump /stamps/$2 $3" "$1" >/dev/null 2>&1
  [[ -f $3 ]]
}
for i in 1 2 3; do
  disk=$work/live$i.raw b=${requested[i]} a=${replied[i]}
  # What a crash at that moment leaves: the guest had the file system
  # mounted (its journal is marked for recovery); after the replay it is
  # clean. (e2fsck exits 1 when it changed the file system: the replay.)
  dumpe2fs -h "$disk" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery' ||
    fail "live$i: the ext4 is not marked as mounted (needs_recovery)"
  rc=0
  e2fsck -E journal_only -y "$disk" >"$work/replay.log" 2>&1 || rc=$?
  ((rc <= 1)) ||
    { cat "$work/replay.log" >&2; fail "live$i: replaying the journal failed ($rc)"; }
  e2fsck -fn "$disk" >"$work/fsck.log" 2>&1 ||
    { cat "$work/fsck.log" >&2; fail "live$i: the ext4 is not consistent"; }
  # Stamp N+1 is begun only after stamp N is synced, so a point in time
  # holds stamps 1..H-1 whole and stamp H whole or in part: H at least B
  # (done before the request), at most A+1 (A: done by the reply).
  held=$(debugfs -R 'ls -p /stamps' "$disk" 2>/dev/null |
    awk -F/ 'NF > 5 && $6 ~ /^[0-9]+$/ {print $6}' | sort -n | tail -n1)
  held=${held:-0}
  ((held >= b)) || fail "live$i holds stamps up to $held, but $b was done before the request"
  ((held <= a + 1)) ||
    fail "live$i holds stamp $held, begun after the reply (stamp $a was done by then)"
  for ((n = 1; n <= held; n++)); do
    dump "$disk" "$n" "$work/s" || fail "live$i lacks stamp $n but holds $held"
    size=$(stat -c %s "$work/s")
    if ((n < held || n <= b)); then
      cmp -s "$work/s" <(stamp "$n") || fail "live$i: stamp $n is not whole"
    else
      cmp -s "$work/s" <(stamp "$n" | head -c "$size") ||
        fail "live$i: stamp $n (in flight) holds other data"
    fi
  done
  echo "live$i: requested after stamp $b, stamp $a done by the reply; holds 1..$held (stamp $held: $size bytes); ext4 clean after the journal replay"
done
# vm1 went on: it holds every stamp.
for ((n = 1; n <= last; n++)); do
  dump "$work/vm1.raw" "$n" "$work/s" && cmp -s "$work/s" <(stamp "$n") ||
    fail "vm1 lacks stamp $n"
done
"$DAXSTORE" image check "$img" >"$work/check.json" ||
  fail "image check: status $?: $(cat "$work/check.json")"
echo "vm1: stamps 1..$last"
echo "guest live snapshot: ok"
