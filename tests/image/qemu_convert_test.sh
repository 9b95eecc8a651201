#!/bin/sh
# The route for other formats (docs/images.md): a qcow2 made by qemu-img is
# converted to raw, imported, exported, and compared with qemu-img compare.
# Usage: qemu_convert_test.sh DAXSTORE. Skips (77) without qemu-img.
set -eu
cli=$1
command -v qemu-img >/dev/null 2>&1 || {
  echo "skipped: qemu-img not found (apt-get install qemu-utils)"
  exit 77
}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
qemu-img create -q -f qcow2 disk.qcow2 32M
qemu-io -f qcow2 -c "write -P 0xab 0 1M" -c "write -P 0x5c 20M 64k" \
  -c "write -P 0x01 31M 512" disk.qcow2 >/dev/null
qemu-img convert -O raw disk.qcow2 disk.raw
"$cli" image import disk.raw disk.img --emulate memory_controller >/dev/null
"$cli" image export disk.img back.raw >/dev/null
qemu-img compare -q -f qcow2 -F raw disk.qcow2 back.raw
"$cli" image check disk.img >/dev/null
echo "qemu convert: ok"
