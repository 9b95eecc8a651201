#!/usr/bin/env bash
# `daxstore vm-args` without a guest: the numbers --guest-ram fills in, the
# ids, pmem=off on a file without DAX, an image a server holds open, and
# bad input (one line naming the fix; the target left as it was).
#   vm_args_cli.sh DAXSTORE
set -euo pipefail
cli=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-vm-args-cli.XXXXXX")
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
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$work"

truncate -s 65M a.raw  # rounds down to 64M (2M alignment)
truncate -s 32M b.raw
out=$("$cli" vm-args a.raw --nvdimm --guest-ram 1G | grep -v '^#')
[[ $out == *"size=67108864,share=on,align=2097152,pmem=off "* ]] ||
  fail "nvdimm size/align/pmem: $out"
[[ $out == *"-machine nvdimm=on -m 1024M,slots=1,maxmem=1088M"* ]] ||
  fail "nvdimm -m: $out"
out=$("$cli" vm-args b.raw --virtio-pmem --guest-ram 2G | grep -v '^#')
[[ $out == *"-device virtio-pmem-pci,memdev=daxstore-b.raw,"*"-m 2048M,maxmem=2080M"* ]] ||
  fail "virtio-pmem: $out"
out=$("$cli" vm-args b.raw --virtio-pmem)
[[ $out == *"-m GUEST_RAM,maxmem=MAXMEM"* && $out == *"GUEST_RAM + 32M"* ]] ||
  fail "virtio-pmem placeholders: $out"
out=$("$cli" vm-args a.raw --nvdimm --libvirt --guest-ram 1G)
[[ $out == *'<maxMemory slots="1" unit="KiB">1114112</maxMemory>'* &&
  $out == *'<size unit="KiB">65536</size>'* && $out != *"<pmem/>"* ]] ||
  fail "libvirt nvdimm: $out"
# libvirt puts an NVDIMM in a NUMA node and refuses one for virtio-pmem;
# both want a NUMA cell, which the note gives with the RAM in KiB.
[[ $out == *$'<node>0</node>\n  </target>'* &&
  $out == *"<cell id='0' cpus='0-N' memory='1048576' unit='KiB'/>"* &&
  $out == *"<features><acpi/></features>"* ]] || fail "libvirt nvdimm node/NUMA: $out"
out=$("$cli" vm-args b.raw --virtio-pmem --libvirt)
[[ $out != *"<node>"* && $out == *"memory='RAM_KIB'"* && $out != *"<acpi/>"* &&
  $out == *"libvirt 9.0 (Debian 12) starts QEMU, then fails"* ]] ||
  fail "libvirt virtio-pmem node/NUMA: $out"

# Paths a shell or QEMU's option syntax would split: QEMU gets ",," for
# ',', a shell word with a space or '&' comes out single-quoted, and libvirt
# XML escapes what XML needs (the path reads back whole).
odd="$work/a b&c,d.raw"
truncate -s 32M "$odd"
line=$("$cli" vm-args "$odd" --nvdimm --guest-ram 1G | grep -v '^#')
eval "set -- $line"
[[ $# == 8 && $1 == -object &&
  $2 == "memory-backend-file,id=daxstore-a_b_c_d.raw,mem-path=$work/a b&c,,d.raw,size=33554432,"* ]] ||
  fail "QEMU words for an odd path: $line"
"$cli" vm-args "$odd" --nvdimm --libvirt --guest-ram 1G |
  awk '/^<memory /,/^<\/memory>/' >odd.xml
[[ $(xmllint --xpath 'string(/memory/source/path)' odd.xml) == "$odd" ]] ||
  fail "libvirt XML for an odd path: $(cat odd.xml)"
"$cli" image create "odd&disk.img" --size 16M >/dev/null
"$cli" vm-args "odd&disk.img" --libvirt --socket "$work/n&b.sock" |
  awk '/^<disk /,/^<\/disk>/' >nbd.xml
[[ $(xmllint --xpath 'string(/disk/source/host/@socket)' nbd.xml) == "$work/n&b.sock" ]] ||
  fail "libvirt NBD XML for an odd socket: $(cat nbd.xml)"
line=$("$cli" vm-args "odd&disk.img" --vhost-user --socket "$work/v b,x.sock" | grep -v '^#')
eval "set -- $line"
[[ $8 == "socket,id=daxstore-odd_disk.img,path=$work/v b,,x.sock" ]] ||
  fail "vhost-user chardev for an odd socket: $line"

# cloud-hypervisor: vhost-user-blk disks with shared guest RAM, pmem as
# virtio-pmem; it has no NBD client and no escape for ','.
out=$("$cli" vm-args "odd&disk.img" --vhost-user --cloud-hypervisor \
  --socket "$work/ch.sock" --guest-ram 1G | grep -v '^#')
[[ $out == "--memory size=1024M,shared=on --disk vhost_user=true,socket=$work/ch.sock,num_queues=1" ]] ||
  fail "cloud-hypervisor vhost-user: $out"
out=$("$cli" vm-args b.raw --cloud-hypervisor | grep -v '^#')
[[ $out == "--pmem file=$work/b.raw,size=33554432,discard_writes=off" ]] ||
  fail "cloud-hypervisor pmem: $out"

# Two targets on one command line get two ids.
ids=$({ "$cli" vm-args a.raw; "$cli" vm-args b.raw; } | grep -o 'memory-backend-file,id=[^,]*' | sort -u | wc -l)
[[ $ids == 2 ]] || fail "the two targets share an id"

# An image a server holds open is still recognised.
"$cli" image create disk.img --size 16M >/dev/null
"$cli" serve vhost-user-blk disk.img --socket "$work/s" 2>/dev/null &
server=$!
for _ in $(seq 600); do [[ -S $work/s ]] && break; sleep 0.05; done
[[ -S $work/s ]] || fail "the server made no socket"
out=$("$cli" vm-args disk.img --vhost-user --socket "$work/s" --guest-ram 512M)
[[ $out == *"memory-backend-memfd,id=daxstore-ram,size=512M,share=on -machine memory-backend=daxstore-ram -m 512M "* &&
  $out == *"-chardev socket,id=daxstore-disk.img,path=$work/s "* ]] ||
  fail "vhost-user while served: $out"

# Bad input: one line that says what to do; nothing written.
sum=$(md5sum a.raw disk.img)
bad() {  # bad EXPECTED ARGS...
  local want=$1 err
  shift
  if err=$("$cli" vm-args "$@" 2>&1 >/dev/null); then
    fail "vm-args $* succeeded"
  fi
  [[ $(wc -l <<<"$err") == 1 && $err == *"$want"* ]] ||
    fail "vm-args $*: '$err' (wanted '$want')"
}
bad "whole number of MiB; try e.g. --guest-ram 2G" a.raw --guest-ram 1.5M
bad "pick one of --nbd, --vhost-user" disk.img --nbd --nvdimm
bad "pick one of --qemu, --libvirt and --cloud-hypervisor" a.raw --qemu --libvirt
bad "cloud-hypervisor has no NBD client: attach the volume with --vhost-user" disk.img --cloud-hypervisor
bad "cloud-hypervisor attaches pmem as virtio-pmem" a.raw --cloud-hypervisor --nvdimm
bad "cannot carry: use a path without one" "$odd" --cloud-hypervisor
bad "has no volume 'nope'" "odd&disk.img" --volume nope
bad "drop --nvdimm and --virtio-pmem" disk.img --volume nope --nvdimm
bad "is not a daxstore image" a.raw --nbd
truncate -s 1M tiny.raw
bad "less than one 2 MiB alignment unit" tiny.raw --nvdimm
[[ $(md5sum a.raw disk.img) == "$sum" ]] || fail "vm-args changed its target"
echo "vm-args cli: ok"
