#!/usr/bin/env bash
# image dedup of an image a `daxstore serve nbd` has open, while an NBD
# client rewrites the disk: passes through the control socket race the
# writes; afterwards the disk is byte for byte the last file written, the
# last pass frees the duplicates, and image check finds the refcounts
# exact. Env: DAXSTORE, PLUGIN.
set -euo pipefail
work=$(mktemp -d /var/tmp/daxstore-dedup.XXXXXX)
server=
writer=
cleanup() {
  [[ -n $writer ]] && kill "$writer" 2>/dev/null && wait "$writer" || true
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v nbdcopy >/dev/null || { echo "SKIP: nbdcopy is not installed"; exit 77; }
cd "$work"
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 run
img=$work/d.img
sock=$work/d.nbd
# Four 4 MiB disks, each made of 16 distinct 4 KiB blocks (a different
# 16 per disk) and zero blocks in a different order.
python3 - <<'PY'
import os, random
for n in range(4):
    rnd = random.Random(n)
    blocks = [os.urandom(4096) for _ in range(16)] + [bytes(4096)] * 4
    with open(f"d{n}.raw", "wb") as f:
        f.write(b"".join(rnd.choice(blocks) for _ in range(1024)))
PY
"$DAXSTORE" image create "$img" -s 4M >/dev/null
"$DAXSTORE" serve nbd "$img" --socket "$sock" 2>serve.log &
server=$!
for _ in $(seq 100); do
  [[ -S run/daxstore/d.img.ctl ]] &&
    nbdinfo "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "server: $(cat serve.log)"
  sleep 0.1
done
nbdcopy d0.raw "nbd+unix:///?socket=$sock"
# The writer rewrites the whole disk with each file in turn, twice.
(for _ in 1 2; do
  for n in 1 2 3 0; do nbdcopy d$n.raw "nbd+unix:///?socket=$sock"; done
done) &
writer=$!
passes=0
while kill -0 "$writer" 2>/dev/null; do
  "$DAXSTORE" image dedup "$img" >pass.json || fail "dedup pass: $(cat pass.json)"
  passes=$((passes + 1))
done
wait "$writer" || fail "the writer failed"
writer=
[[ $passes -gt 0 ]] || fail "no dedup pass ran"
"$DAXSTORE" image dedup "$img" >last.json || fail "last pass"
nbdcopy "nbd+unix:///?socket=$sock" out.raw
cmp out.raw d0.raw || fail "the disk is not the last file written"
"$DAXSTORE" image info "$img" >info.json
# 16 distinct blocks remain, whatever the passes met.
grep -q '"allocated_blocks": 16,' info.json || fail "allocated: $(cat info.json)"
kill "$server" && wait "$server" || true
server=
"$DAXSTORE" image check "$img" >check.json || fail "check: $(cat check.json)"
echo "dedup served: ok ($passes passes raced the writer)"
