#!/bin/sh
# `daxstore image` end to end on plain files: create/info, import/export
# round trip with holes kept, check, progress output, and bad input (one
# line, non-zero exit, nothing overwritten). Usage: cli_test.sh DAXSTORE
set -u
cli=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_error WHAT PATTERN CMD...: non-zero exit, one stderr line matching.
expect_error() {
  what=$1 pat=$2
  shift 2
  if "$@" >out.txt 2>err.txt; then fail "$what: succeeded"; return; fi
  [ "$(wc -l <err.txt)" -eq 1 ] || fail "$what: not one line: $(cat err.txt)"
  grep -q -- "$pat" err.txt || fail "$what: got: $(cat err.txt)"
}
em="--emulate memory_controller"

# create + info
$cli image create a.img --size 64M --logical-block-size 4096 $em >c.json ||
  fail "create"
grep -q '"virtual_size": 67108864' c.json || fail "create json: $(cat c.json)"
grep -q '"logical_block_size": 4096' c.json || fail "lbs"
$cli image info a.img $em >i.json || fail "info"
grep -q '"granularity": "cache-line"' i.json || fail "info granularity"
grep -q '"allocated_bytes": 0' i.json || fail "info allocated"

# bad input
expect_error "existing image" "already holds a daxstore image" \
  $cli image create a.img --size 1M
expect_error "bad size" "invalid size" $cli image create b.img --size 12Q
[ -e b.img ] && fail "bad size created a file"
echo precious >t.txt
expect_error "non-image file" "holds data that is not a daxstore image" \
  $cli image create t.txt --size 1M
grep -qx precious t.txt || fail "t.txt was overwritten"
# A file that is all hole (a new emulated namespace is one) holds nothing to
# lose; one with data anywhere in it does.
truncate -s 8M hole.img
$cli image create hole.img --size 4M $em >/dev/null || fail "create on a hole"
truncate -s 8M mid.img
printf precious | dd of=mid.img bs=1 seek=5000000 conv=notrunc 2>/dev/null
expect_error "data past the start" "holds data that is not a daxstore image" \
  $cli image create mid.img --size 1M
[ "$(dd if=mid.img bs=1 skip=5000000 count=8 2>/dev/null)" = precious ] ||
  fail "mid.img was overwritten"
expect_error "info of non-image" "daxstore image" $cli image info t.txt
expect_error "missing image" "" $cli image info nope.img

# import: 2 MiB of data at 0 and 5 MiB in a 8 MiB sparse raw file
head -c 1048576 /dev/urandom >r.raw
truncate -s 8M r.raw
head -c 1048576 /dev/urandom | dd of=r.raw bs=1M seek=5 conv=notrunc \
  2>/dev/null
$cli image import r.raw c.img $em >imp.json 2>imp.err || fail "import"
[ -s imp.err ] && fail "import wrote to a non-terminal stderr: $(cat imp.err)"
grep -q '"allocated_bytes": 2097152' imp.json ||
  fail "import allocated: $(cat imp.json)"
expect_error "import into used image" "already holds 2.00 MiB of guest data" \
  $cli image import r.raw c.img
# Into a file holding other data: refused, the file kept; into one that is
# all hole (as a new namespace is): an image sized to the source.
expect_error "import into non-image" "cannot import into t.txt" \
  $cli image import r.raw t.txt
grep -qx precious t.txt || fail "import overwrote t.txt"
truncate -s 16M hole2.img
$cli image import r.raw hole2.img $em >imp2.json || fail "import into a hole"
grep -q '"allocated_bytes": 2097152' imp2.json ||
  fail "import into a hole: $(cat imp2.json)"
head -c 16M /dev/zero >big.raw
$cli image create small.img --size 4M >/dev/null || fail "create small"
expect_error "source too big" "does not fit" \
  $cli image import big.raw small.img

# export: same bytes, holes stay holes
$cli image export c.img out.raw $em >exp.json 2>exp.err || fail "export"
[ -s exp.err ] && fail "export wrote to stderr"
cmp -s r.raw out.raw || fail "export differs from the source"
[ "$(du -k out.raw | cut -f1)" -le 2200 ] || fail "export is not sparse"
expect_error "export over existing" "exists" $cli image export c.img out.raw
cmp -s r.raw out.raw || fail "refused export changed out.raw"

# check
$cli image check c.img >chk.json 2>chk.err || fail "check"
grep -q '"clean": true' chk.json || fail "check json"
[ -s chk.err ] && fail "check wrote to a non-terminal stderr: $(cat chk.err)"
# On a terminal, check draws a progress bar on stderr that reaches 100%.
if command -v script >/dev/null; then
  script -qec "$cli image check c.img >chk2.json" /dev/null >tty.out ||
    fail "check on a terminal"
  grep -q 'check 100% \[#' tty.out || fail "check bar: $(cat tty.out)"
  grep -q '"clean": true' chk2.json || fail "check json on a terminal"
fi

# a corrupt image: both superblock copies wiped of their magic
cp c.img bad.img
dd if=/dev/zero of=bad.img bs=4096 count=1 conv=notrunc 2>/dev/null
size=$(stat -c %s bad.img)
dd if=/dev/zero of=bad.img bs=4096 count=1 seek=$((size / 4096 - 1)) \
  conv=notrunc 2>/dev/null
expect_error "corrupt image" "bad.img" $cli image check bad.img

# progress bar on a terminal (script gives the command a pty)
if command -v script >/dev/null 2>&1; then
  script -qec "$cli image export c.img tty.raw" /dev/null >tty.out 2>&1 ||
    fail "export under script"
  grep -q "export 100% \[####" tty.out || fail "no progress bar on a tty"
fi

[ "$fails" -eq 0 ] && echo "image cli: ok"
exit "$fails"
