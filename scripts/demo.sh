#!/usr/bin/env bash
# The main job on the embedded default: emulated pmem, no hardware needed.
# Everything it makes lies in a directory of its own under
# $DAXSTORE_DEMO_DIR (default /var/tmp/daxstore-demo), removed at the end;
# nothing else is touched. Lines starting "ok:" are its checks.
set -euo pipefail
build=${1:-build}
cli=$(realpath "$build/tools/daxstore")
top=${DAXSTORE_DEMO_DIR:-/var/tmp/daxstore-demo}
mkdir -p "$top"
work=$(mktemp -d "$top/run.XXXXXX")
server=
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "demo: FAIL: $*" >&2; exit 1; }
echo "== a file declared to be pmem (ADR: cache lines must be flushed)"
"$cli" map info "$work/emulated.img" --size 64M --emulate memory_controller
echo "== the same on eADR (stores durable once fenced)"
"$cli" map info "$work/emulated-eadr.img" --size 64M --emulate cpu_cache
echo "== an ordinary file on this machine's disk"
"$cli" map info "$work/plain.img" --size 64M
echo "== durable writes: emulated pmem mapping vs pwrite+fdatasync on disk"
"$cli" bench persist "$work/emulated.img" --emulate memory_controller \
  --compare-file "$work/pagecache.dat"
rm -f "$work"/*.img

bus="$work/bus"
ns=("$cli" --bus emulated --emulated-dir "$bus")
echo "== an emulated NVDIMM bus: 2 regions of 2 GiB, 2 DIMMs each"
"${ns[@]}" emulate create --regions 2 --dimms-per-region 2 --size 2G \
  --persistence memory_controller
echo "== namespaces in every mode"
"${ns[@]}" create-namespace -r region0 -m fsdax -s 1G -n demo-fsdax
"${ns[@]}" create-namespace -r region0 -m sector -s 512M -n demo-sector
"${ns[@]}" create-namespace -r region1 -m devdax -s 50% -n demo-devdax
"${ns[@]}" create-namespace -r region1 -m raw -s 512M -n demo-raw
echo "== a size that does not fit the interleave: daxstore says what would"
"${ns[@]}" create-namespace -r region0 -m fsdax -s 100M || true
echo "== list, as ndctl would print it, and as a table"
"${ns[@]}" list -RN -u
"${ns[@]}" list -RN --table
echo "== map the devdax namespace's device through the mapping layer"
"$cli" map info "$bus/region1/dax1.0" --emulate memory_controller
echo "== system-ram and back"
"${ns[@]}" reconfigure-device -m system-ram dax1.0
"${ns[@]}" reconfigure-device -f -m devdax dax1.0
"${ns[@]}" emulate destroy -f

echo "== golden image: one golden disk, three clones, one server for all"
bus="$work/vms-bus"
g=("$cli" --bus emulated --emulated-dir "$bus")
# The server's control socket goes to $XDG_RUNTIME_DIR/daxstore.
export XDG_RUNTIME_DIR="$work/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
"${g[@]}" emulate create --size 512M >/dev/null
"${g[@]}" create-namespace -m devdax -s 256M -n vms >/dev/null
# The golden disk: 4 MiB of content at its start, the rest a hole.
head -c 4M /dev/urandom >"$work/golden.raw"
truncate -s 32M "$work/golden.raw"
"${g[@]}" image import "$work/golden.raw" vms --max-volumes 6
"${g[@]}" image snapshot vms golden >/dev/null
for vm in vm1 vm2 vm3; do "${g[@]}" image clone vms golden "$vm" >/dev/null; done
sock="$work/vms.nbd"
"${g[@]}" serve nbd vms --socket "$sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  nbdinfo "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "the server exited: $(cat "$work/serve.log")"
  sleep 0.1
done
# nbdsh runs `python3 -m nbd`: Debian's python3 has the module
# (python3-libnbd), another python3 first in PATH may not.
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }
url() { echo "nbd+unix:///${1:-}?socket=$sock"; }
echo "== one server, every volume an NBD export (snapshots read-only)"
nbdinfo --list "$(url)" | grep -E '^export=|is_read_only'
echo "== the QEMU arguments for vm1's disk"
"${g[@]}" vm-args vms --volume vm1 --socket "$sock"
echo
echo "== each VM reads the golden disk and writes 1 MiB of its own at 8 MiB"
for vm in vm1 vm2 vm3; do
  nbdcopy "$(url "$vm")" "$work/$vm.read"
  cmp -s "$work/golden.raw" "$work/$vm.read" || fail "$vm does not read the golden disk"
  head -c 1M /dev/urandom >"$work/$vm.data"
  nbdsh -u "$(url "$vm")" -c "h.pwrite(open('$work/$vm.data', 'rb').read(), 8 << 20)"
  # What the VM's disk holds now: the golden disk and its own MiB.
  cp "$work/golden.raw" "$work/$vm.want"
  dd if="$work/$vm.data" of="$work/$vm.want" bs=1M seek=8 conv=notrunc status=none
  echo "ok: $vm read the golden disk and wrote its own data"
done
echo "== a live snapshot of vm2 through the server's control socket"
"${g[@]}" image snapshot vms vm2-backup --volume vm2
# vm2 goes on writing; the snapshot keeps what vm2 held when it was taken.
nbdsh -u "$(url vm2)" -c "h.pwrite(b'\x5a' * (1 << 20), 8 << 20)"
nbdcopy "$(url vm2-backup)" "$work/vm2-backup.raw"
cmp "$work/vm2.want" "$work/vm2-backup.raw" || fail "the snapshot differs from what vm2 wrote"
echo "ok: the snapshot vm2-backup, exported with nbdcopy, holds what vm2 had written"
for vm in vm1 vm3; do
  nbdcopy "$(url "$vm")" "$work/$vm.read"
  cmp "$work/$vm.want" "$work/$vm.read" || fail "$vm lost its data"
done
echo "ok: vm1 and vm3 hold the golden disk and their own data"
echo "== the volumes share the golden blocks (image list, through the server)"
"${g[@]}" image list vms | jq -r \
  '(["volume", "parent", "mapped_blocks", "unique_blocks"] | @tsv),
   (.[] | [.name, .parent, .mapped_blocks, .unique_blocks] | @tsv)'
mapped=$("${g[@]}" image list vms | jq '[.[].mapped_blocks] | add')
stored=$("${g[@]}" image info vms | jq .allocated_blocks)
((stored < mapped)) || fail "no blocks are shared: $stored stored, $mapped mapped"
echo "ok: the volumes map $mapped blocks; the image stores $stored"
echo "== stop the server; the image is clean"
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
server=
((rc == 0)) || fail "the server exited with $rc: $(cat "$work/serve.log")"
"${g[@]}" image check vms >/dev/null 2>&1 || fail "image check: $("${g[@]}" image check vms 2>&1)"
"${g[@]}" image export vms "$work/vm2-backup.export" --volume vm2-backup >/dev/null 2>&1
cmp "$work/vm2.want" "$work/vm2-backup.export" || fail "image export of vm2-backup differs"
echo "ok: clean shutdown; image check is clean; image export of vm2-backup matches"
"${g[@]}" emulate destroy -f >/dev/null
echo "demo: done"
