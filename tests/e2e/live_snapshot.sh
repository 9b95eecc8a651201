#!/usr/bin/env bash
# Live snapshots through `daxstore image snapshot` while NBD writers stamp a
# clone's blocks (tests/e2e/live_snapshot.py has the checks). Env:
# DAXSTORE, PLUGIN (set by ctest).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# tmpfs: memory only, no msync per write; what is checked is the same.
work=$(mktemp -d /dev/shm/daxstore-live.XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Debian's python3 has the nbd module (python3-libnbd).
py=/usr/bin/python3
$py -c 'import nbd' 2>/dev/null ||
  fail "python3-libnbd is not installed: apt-get install python3-libnbd"
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
blocks=4096
# The golden disk: every block stamped with sequence 0.
$py - "$work/golden.raw" "$blocks" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as f:
    for b in range(int(sys.argv[2])):
        f.write(struct.pack("<8sQQQ", b"DXSTAMP1", b, 0, 0xFFFFFFFFFFFFFFFF) * 128)
PY
img=$work/vms.img
"$DAXSTORE" image import "$work/golden.raw" "$img" --max-volumes 6 >/dev/null
"$DAXSTORE" image snapshot "$img" golden >/dev/null
"$DAXSTORE" image clone "$img" golden vm1 >/dev/null
sock=$work/vms.nbd
"$DAXSTORE" serve nbd "$img" --socket "$sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  nbdinfo "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "server: $(cat "$work/serve.log")"
  sleep 0.1
done
$py "$here/live_snapshot.py" "$DAXSTORE" "$img" "$sock" vm1 "$blocks" 5
kill "$server"
wait "$server" || true
server=
"$DAXSTORE" image check "$img" >"$work/check.json" ||
  fail "image check: $(cat "$work/check.json")"
echo "live snapshot e2e: ok"
