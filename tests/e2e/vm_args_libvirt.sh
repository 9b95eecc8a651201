#!/usr/bin/env bash
# Validates every libvirt form `daxstore vm-args --libvirt` prints (nbd,
# vhost-user, nvdimm, virtio-pmem) against libvirt's domain schema with
# virt-xml-validate: each printed fragment goes where its comment says, in
# a complete direct-kernel-boot <domain>. A broken copy of one form must be
# rejected, so the check itself is shown to bite.
# Env: DAXSTORE.
set -euo pipefail
command -v virt-xml-validate >/dev/null ||
  { echo "FAIL: virt-xml-validate is missing: apt-get install libvirt-clients libxml2-utils" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-vm-args-libvirt.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$DAXSTORE" image create "$work/disk.img" --size 16M >/dev/null
truncate -s 64M "$work/pmem.raw"

# domain PRINTED OUT: PRINTED's "under <domain>" and "under <devices>"
# parts placed in a domain with 1 GiB of RAM.
domain() {
  awk -v out="$2" '
    /^<!-- under <domain>/ { part = "domain"; next }
    /^<!-- under <devices>/ { part = "devices"; next }
    /^#/ || /^<!--/ { next }
    { if (part == "domain") d = d $0 "\n"; else v = v $0 "\n" }
    END {
      printf "<domain type=\"qemu\">\n  <name>vm-args</name>\n" > out
      printf "  <memory unit=\"KiB\">1048576</memory>\n%s", d > out
      printf "  <vcpu>1</vcpu>\n  <os><type arch=\"x86_64\" machine=\"pc\">hvm</type>\n" > out
      printf "    <kernel>/boot/vmlinuz</kernel></os>\n" > out
      printf "  <cpu><numa><cell id=\"0\" cpus=\"0\" memory=\"1048576\" unit=\"KiB\"/></numa></cpu>\n" > out
      printf "  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n%s  </devices>\n</domain>\n", v > out
    }' "$1"
}

forms=(nbd:disk.img vhost-user:disk.img nvdimm:pmem.raw virtio-pmem:pmem.raw)
for f in "${forms[@]}"; do
  flag=${f%%:*} target=$work/${f#*:}
  "$DAXSTORE" vm-args "$target" --"$flag" --libvirt --guest-ram 1G \
    --socket "$work/sock" >"$work/$flag.txt"
  grep -q '<disk\|<memory' "$work/$flag.txt" || fail "--$flag printed no device"
  domain "$work/$flag.txt" "$work/$flag.xml"
  virt-xml-validate "$work/$flag.xml" domain >"$work/$flag.log" 2>&1 ||
    { cat "$work/$flag.xml" "$work/$flag.log"; fail "--$flag --libvirt does not validate"; }
  echo "ok: --$flag --libvirt validates"
done
# Placeholders stay invalid until filled in: the schema wants numbers.
"$DAXSTORE" vm-args "$work/pmem.raw" --nvdimm --libvirt >"$work/ph.txt"
grep -q MAXMEM_KIB "$work/ph.txt" || fail "no MAXMEM_KIB placeholder without --guest-ram"
domain "$work/ph.txt" "$work/ph.xml"
! virt-xml-validate "$work/ph.xml" domain >/dev/null 2>&1 ||
  fail "the schema check accepted a placeholder; it checks nothing"
echo PASS
