#!/usr/bin/env bash
# Runs every `$ ` command of README.md's "Quick start 2" as written, in a
# fresh directory holding a small golden.raw, with `daxstore` on PATH, and
# checks each output the README shows. The guest is a stand-in:
# `qemu-system-x86_64` here opens the disk its -blockdev names with
# qemu-io, as QEMU would, and writes 1 MiB of 0x5a at 1 MiB. Then the
# snapshot taken live holds the golden disk plus that write, and the
# volumes share the golden blocks.
# Without --ceph it goes on with "Moving a running VM's disk to another
# host" (mirror_section below).
# With --ceph it goes on with "Backups of a running VM into Ceph RBD"
# against a single-node Ceph cluster it starts (tests/e2e/ceph_cluster.sh;
# skipped, saying why, without Ceph): every `$ ` command as written, vm1
# written over NBD between the two backups; then each RBD snapshot, vm1's
# snapshot and the restored image hold what vm1 held, byte for byte.
# Args: README DAXSTORE_BINARY [--ceph].
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readme=$(realpath "$1")
daxstore=$(realpath "$2")
ceph=${3:-}
source "$here/../e2e/ceph_cluster.sh"
dir=$(mktemp -d /var/tmp/daxstore-readme.XXXXXX)
jobs_=()
cleanup() {
  for p in "${jobs_[@]}"; do kill "$p" 2>/dev/null || true; done
  ceph_cluster_stop
  wait || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$dir"
if [[ $ceph == --ceph ]]; then
  ceph_cluster_start "$dir" || exit $?
fi
mkdir bin run
ln -s "$daxstore" bin/daxstore
cat >bin/qemu-system-x86_64 <<'STUB'
#!/usr/bin/env bash
set -euo pipefail
bd=
while (($#)); do
  [[ $1 == -blockdev ]] && { bd=$2; shift; }
  shift
done
[[ -n $bd ]] || { echo "qemu stand-in: no -blockdev" >&2; exit 1; }
qemu-io --image-opts -c 'write -P 0x5a 1M 1M' "$bd"
STUB
chmod +x bin/qemu-system-x86_64
export PATH=$dir/bin:$PATH
# The server's control socket: a directory of this test's own. The
# README sets DAXSTORE_EMULATED_DIR; until then, a bus of this test's own.
export XDG_RUNTIME_DIR=$dir/run DAXSTORE_EMULATED_DIR=$dir/no-bus
head -c 4M /dev/urandom >golden.raw
truncate -s 64M golden.raw

# section TITLE: the README's section whose heading starts with TITLE.
section() {
  awk -v t="## $1" 'index($0, t) == 1 {on = 1; next} /^## / {on = 0} on' "$readme"
}
# parse BLOCK: its `$ ` commands into cmds, what each prints into outs.
parse() {
  cmds=()
  outs=()
  while IFS= read -r line; do
    if [[ $line == '$ '* ]]; then
      cmds+=("${line#\$ }")
      outs+=("")
    else
      ((${#cmds[@]})) || fail "output before any command: $line"
      outs[-1]+="$line"$'\n'
    fi
  done <<<"$1"
}
block=$(section "Quick start 2" | sed -n '/^```console$/,/^```$/p' | sed '1d;$d')
[[ -n $block ]] || fail "no console block in README's Quick start 2"
parse "$block"
((${#cmds[@]} >= 10)) || fail "only ${#cmds[@]} commands found"

# live URI WHERE: the NBD server at URI answers (WHERE names it if not).
live() {
  for _ in $(seq 100); do
    nbdinfo "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "no server on $2"
}
# run: every command of cmds, in this shell, checking what each prints.
run() {
for i in "${!cmds[@]}"; do
  cmd=${cmds[$i]}
  echo "\$ $cmd"
  if [[ $cmd == *'&' ]]; then
    eval "$cmd"
    jobs_+=($!)
    if [[ $cmd == qemu-system* ]]; then
      # The stand-in guest writes and exits.
      wait "$!" || fail "the guest's disk: $cmd"
    elif [[ $cmd =~ --socket\ ([^ ]+) ]]; then
      live "nbd+unix:///?socket=${BASH_REMATCH[1]}" "${BASH_REMATCH[1]}"
    elif [[ $cmd =~ --tcp\ [^:]+:([0-9]+) ]]; then
      live "nbd://127.0.0.1:${BASH_REMATCH[1]}/" "TCP port ${BASH_REMATCH[1]}"
    fi
    continue
  fi
  # In this shell, not a subshell: the README's `export` must hold.
  eval "$cmd" >"$dir/out" || fail "exit $?: $cmd"
  out=$(<"$dir/out")
  [[ -n $out ]] && echo "$out"
  if [[ -n ${outs[$i]} && $out != "${outs[$i]%$'\n'}" ]]; then
    fail "the README shows
${outs[$i]}but the command printed
$out"
  fi
done
}
# mirror_section: README's "Moving a running VM's disk to another host",
# both hosts this one ($DEST 127.0.0.1, a free port for 10809): vm1 is
# written over NBD while the mirror runs (the guest), the writes stop (the
# pause), the mirror completes; then the destination's export is vm1 byte
# for byte, and vm1 refuses writes on the source.
mirror_section() {
  echo "== Moving a running VM's disk to another host"
  local title="Moving a running VM's disk to another host" port n
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mapfile -t starts < <(section "$title" | grep -n '^```console$' | cut -d: -f1)
  ((${#starts[@]} == 3)) || fail "wanted 3 console blocks in the README's mirror section, found ${#starts[@]}"
  mblock() {
    section "$title" | sed "s/:10809/:$port/" |
      awk -v n="$1" '/^```console$/ {k++; on = (k == n); next} /^```$/ {on = 0} on'
  }
  SIZE=$(daxstore image info vms 2>/dev/null | jq .virtual_size)
  DEST=127.0.0.1
  parse "$(mblock 1)"
  run
  (for n in $(seq 20); do
    qemu-io -f raw -c "write -P $n $((n * 2))M 256k" \
      "nbd+unix:///vm1?socket=vms.nbd" >/dev/null || exit 1
    sleep 0.05
  done) &
  local writer=$!
  parse "$(mblock 2)"
  run
  wait "$writer" || fail "vm1's writes failed while the mirror ran"
  parse "$(mblock 3)"
  run
  nbdcopy "nbd+unix:///vm1?socket=vms.nbd" vm1-src.raw
  nbdcopy "nbd://127.0.0.1:$port/" vm1-moved.raw
  cmp vm1-src.raw vm1-moved.raw || fail "moved.img is not vm1 byte for byte"
  if qemu-io -f raw -c "write -P 1 0 4k" "nbd+unix:///vm1?socket=vms.nbd" >/dev/null 2>&1; then
    fail "vm1 took a write on the source after mirror-complete"
  fi
  echo "readme mirror: ok"
}

run

echo "== checks"
want=$dir/want.raw
cp golden.raw "$want"
head -c 1M /dev/zero | tr '\0' '\132' |
  dd of="$want" bs=1M seek=1 conv=notrunc status=none
cmp "$want" vm1-backup.raw || fail "vm1-backup.raw is not the golden disk plus vm1's write"
# The golden 1024 blocks and vm1's 256, stored once; the six volumes map
# 1024 each (vm1 wrote inside the golden content).
stored=$(daxstore image info vms 2>/dev/null | jq .allocated_blocks)
mapped=$(daxstore image list vms 2>/dev/null | jq '[.[].mapped_blocks] | add')
[[ $stored == 1280 && $mapped == 6144 ]] ||
  fail "the image stores $stored blocks for $mapped mapped: wanted 1280, 6144"
echo "readme quick start: ok"
[[ $ceph == --ceph ]] || mirror_section
[[ $ceph == --ceph ]] || exit 0

echo "== Backups of a running VM into Ceph RBD"
mapfile -t starts < <(section "Backups of a running VM into Ceph RBD" |
  grep -n '^```console$' | cut -d: -f1)
((${#starts[@]} == 3)) || fail "wanted 3 console blocks in the README's Ceph section, found ${#starts[@]}"
# block N: the Nth console block of the section.
block() {
  section "Backups of a running VM into Ceph RBD" |
    awk -v n="$1" '/^```console$/ {k++; on = (k == n); next} /^```$/ {on = 0} on'
}
want1=$dir/want1.raw
want2=$dir/want2.raw
cp "$want" "$want1"
parse "$(block 1)"
run
# vm1 writes on: an overwrite, a discard, a region golden.raw left empty.
qemu-io -f raw -c 'write -P 0x61 2M 1M' -c 'discard 3M 1M' \
  -c 'write -P 0x62 40M 1M' "nbd+unix:///vm1?socket=vms.nbd" >/dev/null
cp "$want1" "$want2"
head -c 1M /dev/zero | tr '\0' '\141' |
  dd of="$want2" bs=1M seek=2 conv=notrunc status=none
dd if=/dev/zero of="$want2" bs=1M seek=3 count=1 conv=notrunc status=none
head -c 1M /dev/zero | tr '\0' '\142' |
  dd of="$want2" bs=1M seek=40 conv=notrunc status=none
parse "$(block 2)"
run
parse "$(block 3)"
run
echo "== checks"
rbd export --no-progress rbd/vm1@b1 rbd-b1.raw
rbd export --no-progress rbd/vm1@b2 rbd-b2.raw
cmp "$want1" rbd-b1.raw || fail "rbd/vm1@b1 is not vm1 at b1"
cmp "$want2" rbd-b2.raw || fail "rbd/vm1@b2 is not vm1 at b2"
nbdcopy "nbd+unix:///b2?socket=vms.nbd" vms-b2.raw
cmp "$want2" vms-b2.raw || fail "vms's b2 is not vm1 at b2"
daxstore image list vms 2>/dev/null | jq -e 'all(.[]; .name != "b1")' >/dev/null ||
  fail "b1 is still in vms"
nbdcopy "nbd+unix:///?socket=vm1.nbd" restored.raw
nbdcopy "nbd+unix:///b2?socket=vm1.nbd" restored-b2.raw
cmp "$want2" restored.raw || fail "the restored image is not vm1 at b2"
cmp "$want2" restored-b2.raw || fail "the restored image's b2 is not vm1 at b2"
echo "readme ceph backup: ok"
