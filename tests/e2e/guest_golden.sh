#!/usr/bin/env bash
# Golden image, three clones, three guests at once, one server
# (docs/golden-images.md, as a user runs it):
#   - a raw golden disk holding ext4 with files of known checksums is
#     imported; `image snapshot` golden; `image clone` vm1, vm2, vm3;
#   - ONE `daxstore serve nbd` serves vm1 and vm2 as NBD exports and vm3
#     over vhost-user-blk (`--vhost-user-blk vm3=SOCK`);
#   - each guest boots with what `daxstore vm-args IMAGE --volume vmN`
#     prints, all three at the same time (TCG, one CPU each); each mounts
#     the ext4, checks the golden files, writes a file of its own, syncs,
#     unmounts and runs e2fsck -fn;
#   - the host then copies each clone out (nbdcopy, from the running
#     server) and finds in it the golden files and its own VM's file and no
#     other VM's; the golden snapshot is byte for byte golden.raw; `image
#     list` shows each clone still sharing blocks; after the server, `image
#     export --volume vmN` equals what NBD served and `image check` is
#     clean.
# Env: DAXSTORE, RUN_IN_GUEST, KERNEL_CACHE.
set -euo pipefail
# Images live in /dev/shm (on a disk every write would be msyncs); the
# folder shipped into the guests does not, since a guest mounts devtmpfs
# over /dev.
work=$(mktemp -d /dev/shm/daxstore-guest-golden.XXXXXX)
ship=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-guest-golden.XXXXXX")
server='' guests=()
cleanup() {
  for p in ${guests[@]+"${guests[@]}"}; do kill "$p" 2>/dev/null || true; done
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work" "$ship"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The server's control socket, which `image` and `vm-args` find on their
# own, goes in this test's folder.
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
vms=(vm1 vm2 vm3)
ram=256M  # per guest; the busybox initramfs is ~22 MiB

# The golden disk: 48 MiB of ext4 made from a folder of known files.
mkdir -p "$work/golden/etc"
head -c 3M /dev/urandom >"$work/golden/base.bin"
head -c 300K /dev/urandom >"$work/golden/etc/app.conf"
echo "golden image" >"$work/golden/etc/motd"
(cd "$work/golden" && md5sum base.bin etc/app.conf etc/motd) >"$work/golden.md5"
truncate -s 48M "$work/golden.raw"
mkfs.ext4 -q -F -b 4096 -d "$work/golden" "$work/golden.raw"

img=$work/vms.img
"$DAXSTORE" image import "$work/golden.raw" "$img" --max-volumes 5 \
  --emulate memory_controller >/dev/null
"$DAXSTORE" image snapshot "$img" golden >/dev/null
for vm in "${vms[@]}"; do "$DAXSTORE" image clone "$img" golden "$vm" >/dev/null; done

sock=$work/vms.nbd
"$DAXSTORE" serve nbd "$img" --socket "$sock" \
  --vhost-user-blk "vm3=$work/vm3.sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do
  grep -q '^daxstore: serving' "$work/serve.log" && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.05
done
grep -q '^daxstore: serving' "$work/serve.log" ||
  fail "the server did not start: $(cat "$work/serve.log")"

# Each guest's QEMU arguments, as the user gets them.
"$DAXSTORE" vm-args "$img" --volume vm1 --socket "$sock" >"$work/vm1.args"
"$DAXSTORE" vm-args "$img" --volume vm2 --socket "$sock" >"$work/vm2.args"
"$DAXSTORE" vm-args "$img" --volume vm3 --vhost-user --guest-ram "$ram" \
  >"$work/vm3.args"
grep -q "export=vm1" "$work/vm1.args" || fail "vm-args --volume vm1: $(cat "$work/vm1.args")"
grep -q "path=$work/vm3.sock" "$work/vm3.args" ||
  fail "vm-args --volume vm3 --vhost-user does not name the served socket: $(cat "$work/vm3.args")"

# Each VM's own file (made here, so the host knows every byte).
for vm in "${vms[@]}"; do
  mkdir -p "$work/results-$vm"
  cp "$work/golden.md5" "$work/results-$vm/golden.md5"
  head -c 4M /dev/urandom >"$work/results-$vm/$vm.dat"
done

cat >"$ship/guest.sh" <<'GUEST'
set -e
vm=$1 r=$DAXSTORE_RESULTS_DIR
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d
(cd /mnt/d && md5sum -c "$r/golden.md5") >/dev/null ||
  { echo "guest $vm: the golden files differ"; exit 1; }
cp "$r/$vm.dat" /mnt/d/
sync
umount /mnt/d
e2fsck -fn /dev/vda >/dev/null 2>&1 || { echo "guest $vm: e2fsck found errors"; exit 1; }
echo "guest $vm: golden files ok; wrote $vm.dat; e2fsck clean"
GUEST
chmod +x "$ship/guest.sh"

# Three guests at once.
start=$(date +%s)
for vm in "${vms[@]}"; do
  "$RUN_IN_GUEST" --cache "$KERNEL_CACHE" --build "$ship" --nvdimm 0 \
    --memory "$ram" --timeout 150 --results "$work/results-$vm" \
    --vm-args "$work/$vm.args" -- sh "$ship/guest.sh" "$vm" \
    >"$work/$vm.log" 2>&1 &
  guests+=($!)
done
rcs=()
for i in "${!vms[@]}"; do
  rc=0
  wait "${guests[i]}" || rc=$?
  rcs+=("$rc")
done
guests=()
echo "three guests ran in $(($(date +%s) - start)) s"
for i in "${!vms[@]}"; do
  vm=${vms[i]}
  if [[ ${rcs[i]} != 0 ]] ||
    ! grep -q "^guest $vm: golden files ok; wrote $vm.dat; e2fsck clean" "$work/$vm.log"; then
    sed "s/^/  $vm: /" "$work/$vm.log" >&2
    fail "guest $vm exited with status ${rcs[i]}"
  fi
  grep -e "^guest $vm:" -e "ran the command in" "$work/$vm.log"
done
kill -0 "$server" || fail "the server died: $(cat "$work/serve.log")"

# While the server runs: each clone copied out over NBD; the volumes
# through the control socket.
nbdcopy "nbd+unix:///golden?socket=$sock" "$work/golden.raw.snap"
for vm in "${vms[@]}"; do
  nbdcopy "nbd+unix:///$vm?socket=$sock" "$work/$vm.raw"
done
cmp "$work/golden.raw" "$work/golden.raw.snap" ||
  fail "the golden snapshot differs from golden.raw"
"$DAXSTORE" image list "$img" >"$work/list.json"

# Each clone holds the golden files and its own file, and no other VM's.
extract() {  # extract DISK PATH OUT
  debugfs -R "dump -p /$2 $3" "$1" >/dev/null 2>&1
  [[ -f $3 ]]
}
for vm in "${vms[@]}"; do
  disk=$work/$vm.raw
  e2fsck -fn "$disk" >/dev/null 2>&1 || fail "$vm: e2fsck finds errors in the copy"
  mkdir -p "$work/out-$vm/etc"
  for f in base.bin etc/app.conf etc/motd; do
    extract "$disk" "$f" "$work/out-$vm/$f" || fail "$vm: no golden file $f"
  done
  (cd "$work/out-$vm" && md5sum -c --quiet "$work/golden.md5") ||
    fail "$vm: the golden files differ"
  extract "$disk" "$vm.dat" "$work/out-$vm/$vm.dat" || fail "$vm: no $vm.dat"
  cmp "$work/out-$vm/$vm.dat" "$work/results-$vm/$vm.dat" ||
    fail "$vm: $vm.dat differs from what its guest wrote"
  files=$(debugfs -R 'ls -p /' "$disk" 2>/dev/null | awk -F/ 'NF > 5 {print $6}' |
    grep -v '^\.\{1,2\}$' | LC_ALL=C sort | tr '\n' ' ')
  [[ $files == "base.bin etc lost+found $vm.dat " ]] ||
    fail "$vm holds the files '$files', not the golden ones and $vm.dat alone"
  echo "$vm: golden files, $vm.dat, no other VM's file"
done

# Each clone still shares blocks with golden: it owns only what its guest
# wrote.
python3 - "$work/list.json" <<'PY' || fail "image list: $(cat "$work/list.json")"
import json, sys
vols = {v["name"]: v for v in json.load(open(sys.argv[1]))}
golden = vols["golden"]
assert golden["snapshot"], "golden is not a snapshot"
for vm in ("vm1", "vm2", "vm3"):
    v = vols[vm]
    shared = v["mapped_blocks"] - v["unique_blocks"]
    assert v["parent"] == "golden", f"{vm}'s parent is {v['parent']}"
    # Shared: blocks golden holds too (a clone's writes are its own).
    assert 0 < shared <= golden["mapped_blocks"], \
        f"{vm} shares {shared} blocks; golden holds {golden['mapped_blocks']}"
    # 4 MiB of its own file, plus the journal and metadata ext4 touched.
    assert v["unique_bytes"] >= 4 << 20, f"{vm} owns only {v['unique_bytes']} bytes"
    print(f"{vm}: {shared} blocks shared, {v['unique_blocks']} its own")
PY

# After the server: the snapshot, exported, is still golden.raw; each
# clone exports as NBD served it; the image checks clean.
kill "$server" && wait "$server" || true
server=
"$DAXSTORE" image export "$img" "$work/golden-export.raw" --volume golden >/dev/null
cmp "$work/golden.raw" "$work/golden-export.raw" ||
  fail "image export --volume golden differs from golden.raw"
for vm in "${vms[@]}"; do
  "$DAXSTORE" image export "$img" "$work/$vm-export.raw" --volume "$vm" >/dev/null
  cmp "$work/$vm.raw" "$work/$vm-export.raw" ||
    fail "image export --volume $vm differs from what NBD served"
done
"$DAXSTORE" image check "$img" >"$work/check.json" ||
  fail "image check: status $?: $(cat "$work/check.json")"
echo "guest golden: ok"
