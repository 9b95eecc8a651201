#!/usr/bin/env bash
# A media error under `daxstore serve nbd`: the image file loses its last
# data block under the server's mapping, so reading it raises SIGBUS, as
# poisoned pmem does. A client's read of that block fails with EIO; the
# server lives on and answers every other read. Env: DAXSTORE, PLUGIN (set
# by ctest).
set -euo pipefail
work=$(mktemp -d /dev/shm/daxstore-e2e.XXXXXX)
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
sock=$work/sock
uri="nbd+unix:///?socket=$sock"

"$DAXSTORE" image create "$work/img" --size 4M >/dev/null
"$DAXSTORE" serve nbd "$work/img" --socket "$sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { cat "$work/serve.log" >&2; fail "server did not start"; }

# One request, one lane: virtual block i lands in data block i.
qemu-io -f raw -c 'write -P 0x5a 0 4M' "$uri" >/dev/null
# The superblock's data_offset, 8 bytes at byte 88 (lib/image/format.h).
data_offset=$(od -An -t u8 -j 88 -N 8 "$work/img" | tr -d ' ')
truncate -s $((data_offset + 1023 * 4096)) "$work/img"

echo "== the lost block: EIO"
qemu-io -f raw -c 'read -P 0x5a 4190208 4096' "$uri" >"$work/bad.log" 2>&1 ||
  true
cat "$work/bad.log"
grep -qi "input/output error" "$work/bad.log" || fail "no EIO for the lost block"

echo "== every other block: as written, from the same server"
kill -0 "$server" 2>/dev/null || fail "the server died"
qemu-io -f raw -c 'read -P 0x5a 0 4190208' "$uri" | tee "$work/good.log"
grep -qi "verification failed\|error" "$work/good.log" && fail "good blocks"
kill -0 "$server" 2>/dev/null || fail "the server died"
grep -q "bad block of the media" "$work/serve.log" ||
  fail "the server log does not name the media error"

echo "== image check lists the guest range on a listed bad block"
head -c 1M /dev/urandom >"$work/src.raw"
"$DAXSTORE" image import "$work/src.raw" "$work/e.img" \
  --emulate memory_controller >/dev/null
data_offset=$(od -An -t u8 -j 88 -N 8 "$work/e.img" | tr -d ' ')
# Virtual block 3's data block, as an emulated namespace lists bad ranges.
echo "$((data_offset + 3 * 4096 + 512)) 512" >"$work/e.img.badblocks"
rc=0
"$DAXSTORE" image check "$work/e.img" --emulate memory_controller \
  >"$work/check.json" 2>"$work/check.err" || rc=$?
if [ "$rc" -ne 2 ]; then
  fail "check over a bad block exited $rc, not 2 (corruption)"
fi
cat "$work/check.json" "$work/check.err"
grep -q '"media_errors"' "$work/check.json" || fail "no media_errors"
tr -d ' \n' <"$work/check.json" |
  grep -q '"media_errors":\[{"length":4096,"offset":12288,"volume":"base"}\]' ||
  fail "media_errors does not list guest bytes 12288+4096"
grep -q "bad blocks of the media" "$work/check.err" || fail "check message"
echo "nbd media error: ok"
