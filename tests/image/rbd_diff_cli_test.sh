#!/bin/sh
# `daxstore image export-diff | import-diff`: a full then an incremental
# RBD diff from one image into a second, each snapshot compared byte for
# byte through `image export --volume`; a truncated stream leaves the
# second image as it was. Usage: rbd_diff_cli_test.sh DAXSTORE
set -u
cli=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
em="--emulate memory_controller"

$cli image create a.img --size 16M --max-volumes 4 $em >/dev/null || fail "create a"
$cli image create b.img --size 16M --max-volumes 5 $em >/dev/null || fail "create b"
# Data at 1 MiB and 5 MiB, the rest holes.
head -c 1048576 /dev/urandom >one
dd if=one of=raw bs=1M seek=1 conv=notrunc status=none
dd if=one of=raw bs=1M seek=5 conv=notrunc status=none
truncate -s 16M raw
$cli image import raw a.img --force $em >/dev/null || fail "import"
$cli image snapshot a.img s1 $em >/dev/null || fail "snapshot s1"
# Change: rewrite 4 KiB at 1 MiB, drop the block at 5 MiB, add 8 MiB.
head -c 4096 /dev/urandom >four
dd if=four of=raw bs=4096 seek=256 conv=notrunc status=none
dd if=/dev/zero of=raw bs=4096 seek=1280 count=1 conv=notrunc status=none
dd if=one of=raw bs=1M seek=8 conv=notrunc status=none
$cli image import raw a.img --force $em >/dev/null || fail "import 2"
$cli image snapshot a.img s2 $em >/dev/null || fail "snapshot s2"

$cli image export-diff a.img --to-snap s1 $em >full.diff || fail "export full"
head -c 12 full.diff | grep -q "rbd diff v1" || fail "header"
$cli image export-diff a.img --from-snap s1 --to-snap s2 - $em |
  cat >inc.diff || fail "export incremental"
# import --force rewrote every data block (new blocks in the map), so the
# incremental diff sends them all: 3 MiB minus the dropped block, which
# goes as a zero record.
$cli image export-diff a.img inc2.diff --from-snap s1 --to-snap s2 $em \
  >inc.json || fail "export to a file"
grep -q '"data_bytes": 3141632' inc.json || fail "data: $(cat inc.json)"
grep -q '"zero_bytes": 4096' inc.json || fail "zeros: $(cat inc.json)"
cmp -s inc.diff inc2.diff || fail "stdout and file streams differ"
if $cli image export-diff a.img inc2.diff --to-snap s2 $em 2>err; then
  fail "export-diff replaced a file"
fi
grep -q "exists" err || fail "existing file: $(cat err)"
# --force replaces the file only once the new stream is whole: a failed
# export (no such snapshot) leaves it as it was, and no partial file.
if $cli image export-diff a.img inc2.diff --to-snap nope --force $em 2>err; then
  fail "export-diff of a missing snapshot succeeded"
fi
cmp -s inc.diff inc2.diff || fail "a failed export-diff --force changed the file"
if ls inc2.diff.partial-* >/dev/null 2>&1; then fail "a partial stream was left"; fi
$cli image export-diff a.img inc2.diff --to-snap s1 --force $em >/dev/null ||
  fail "export-diff --force"
$cli image export-diff a.img - --to-snap s1 $em | cmp -s - inc2.diff ||
  fail "export-diff --force did not replace the file"

# Incremental before its base: refused, b.img unchanged.
if $cli image import-diff inc.diff b.img $em >/dev/null 2>err; then
  fail "import without s1 succeeded"
fi
grep -q "does not have" err || fail "missing s1: $(cat err)"
$cli image import-diff - b.img $em <full.diff >/dev/null || fail "import full"
# A truncated incremental stream: refused, nothing changes.
$cli image export b.img before.raw $em >/dev/null || fail "export before"
head -c 2000000 inc.diff >cut.diff
if $cli image import-diff cut.diff b.img $em >/dev/null 2>err; then
  fail "truncated stream applied"
fi
grep -q "truncated" err || fail "truncated: $(cat err)"
$cli image export b.img after.raw $em >/dev/null || fail "export after"
cmp -s before.raw after.raw || fail "a truncated stream changed b.img"
$cli image list b.img $em | grep -q "rbd-import" && fail "staging volume left"
$cli image import-diff inc.diff b.img $em >/dev/null || fail "import inc"

for s in s1 s2; do
  $cli image export a.img a-$s.raw --volume $s $em >/dev/null || fail "export a $s"
  $cli image export b.img b-$s.raw --volume $s $em >/dev/null || fail "export b $s"
  cmp a-$s.raw b-$s.raw || fail "$s differs"
done
$cli image export b.img b-base.raw $em >/dev/null || fail "export b base"
cmp raw b-base.raw || fail "b's base is not s2"
$cli image check b.img $em >/dev/null || fail "check b"

[ $fails -eq 0 ] && echo "rbd diff cli: ok"
exit $fails
