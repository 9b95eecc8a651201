#!/usr/bin/env bash
# Boots, in one guest, the QEMU forms of `daxstore vm-args` as printed
# (run-in-guest --vm-args fills in GUEST_RAM and MAXMEM and merges -machine
# and -m with its own):
#   --nvdimm       a namespace made with `daxstore create-namespace` on the
#                  emulated bus (the guest's /dev/pmem0 is that namespace)
#   --virtio-pmem  a plain file
#   --vhost-user   an image served by `daxstore serve vhost-user-blk`
#                  (printed with --guest-ram, the concrete form)
# The guest writes a random 1 MiB pattern at 1 MiB into each device, with an fsync,
# and reads it back; after the guest has exited, the host finds the pattern
# in the namespace's device file, in the file and in the image.
# Env: DAXSTORE, RUN_IN_GUEST, KERNEL_CACHE.
set -euo pipefail
# The files live in /dev/shm (on a disk every image write would be a few
# msyncs); the folder shipped into the guest does not, since the guest
# mounts devtmpfs over /dev.
work=$(mktemp -d /dev/shm/daxstore-guest-vm-args.XXXXXX)
# Control sockets of this test's servers in a directory of its own: tests
# run side by side, and two servers of one name would collide.
export XDG_RUNTIME_DIR=$work/run
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
guest=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-guest-vm-args.XXXXXX")
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work" "$guest"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/emulated_ns.sh"

mkdir -p "$work/results"
make_emulated_namespace "$work"
truncate -s 32M "$work/vpmem.raw"
"$DAXSTORE" image create "$work/disk.img" --size 64M >/dev/null
sock=$work/vub.sock
"$DAXSTORE" serve vhost-user-blk "$work/disk.img" --socket "$sock" &
server=$!
for _ in $(seq 600); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || fail "the vhost-user-blk server made no socket"

"$DAXSTORE" --bus emulated vm-args "$name" --nvdimm >"$work/nvdimm.args"
"$DAXSTORE" vm-args "$work/vpmem.raw" --virtio-pmem >"$work/vpmem.args"
"$DAXSTORE" vm-args "$work/disk.img" --vhost-user --socket "$sock" \
  --guest-ram 512M >"$work/vhost.args"
head -c 1M /dev/urandom >"$work/results/pattern"

cat >"$guest/check.sh" <<'GUEST'
set -e
r=$DAXSTORE_RESULTS_DIR nv= vp=
# The NFIT's DIMM sits under ACPI0012, a virtio-pmem device under virtioN.
for b in /sys/block/pmem*; do
  case $(readlink -f "$b") in
    */ACPI0012*) nv=/dev/${b##*/} ;;
    */virtio*) vp=/dev/${b##*/} ;;
  esac
done
[ -n "$nv" ] && [ -n "$vp" ] && [ -b /dev/vda ] ||
  { echo "guest: missing a device: nvdimm '$nv' virtio-pmem '$vp'"; ls /sys/block; exit 1; }
echo "nvdimm $(blockdev --getsize64 "$nv")" >"$r/sizes"
echo "virtio-pmem $(blockdev --getsize64 "$vp")" >>"$r/sizes"
want=$(md5sum <"$r/pattern")
for d in "$nv" "$vp" /dev/vda; do
  dd if="$r/pattern" of="$d" bs=1M seek=1 conv=fsync 2>/dev/null
  echo 3 >/proc/sys/vm/drop_caches
  got=$(dd if="$d" bs=1M skip=1 count=1 2>/dev/null | md5sum)
  [ "$got" = "$want" ] || { echo "guest: $d reads back other data"; exit 1; }
  echo "guest: $d holds the pattern"
done
GUEST
chmod +x "$guest/check.sh"

# The harness owns the guest's RAM: a printed -m that disagrees with
# --memory is refused before anything boots.
rc=0
"$RUN_IN_GUEST" --cache "$KERNEL_CACHE" --build "$guest" --memory 256M \
  --vm-args "$work/vhost.args" -- true 2>"$work/refused.log" || rc=$?
[[ $rc == 125 ]] && grep -q 'pass --memory 512M' "$work/refused.log" ||
  fail "run-in-guest took -m 512M with --memory 256M (status $rc): $(cat "$work/refused.log")"

"$RUN_IN_GUEST" --cache "$KERNEL_CACHE" --build "$guest" --nvdimm 0 \
  --memory 512M --timeout 180 --results "$work/results" \
  --vm-args "$work/nvdimm.args" --vm-args "$work/vpmem.args" \
  --vm-args "$work/vhost.args" -- sh "$guest/check.sh"

# The guest saw each device at the size printed.
printed_size() { sed -n 's/.*memory-backend-file,[^ ]*size=\([0-9]*\).*/\1/p' "$1"; }
grep -qx "nvdimm $(printed_size "$work/nvdimm.args")" "$work/results/sizes" ||
  fail "the guest's NVDIMM size differs from the printed one: $(cat "$work/results/sizes")"
grep -qx "virtio-pmem $(printed_size "$work/vpmem.args")" "$work/results/sizes" ||
  fail "the guest's virtio-pmem size differs from the printed one"

# After the guest: the data is in the namespace, the file and the image.
at_1m() { dd if="$1" bs=1M skip=1 count=1 2>/dev/null | cmp -s - "$work/results/pattern"; }
at_1m "$work/bus/region0/$dev" ||
  fail "the namespace's device file lacks what the guest wrote to /dev/pmem0"
at_1m "$work/vpmem.raw" || fail "the virtio-pmem file lacks the guest's data"
kill "$server" && wait "$server" || true
server=
"$DAXSTORE" image export "$work/disk.img" "$work/disk.raw" >/dev/null
at_1m "$work/disk.raw" || fail "the image lacks what the guest wrote to /dev/vda"
echo PASS
