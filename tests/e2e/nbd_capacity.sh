#!/usr/bin/env bash
# An overcommitted image on a small namespace of the emulated bus, filled
# through NBD: the write that finds no free block fails with ENOSPC (no
# hang, no crash); the server goes on serving reads; every write goes out
# of place, so an overwrite of an allocated block fails as well until a
# block is free; a zero write, a discard (trim) free blocks and writes
# succeed again; `image info` counts free_blocks at each step. Env:
# DAXSTORE, PLUGIN (set by ctest).
set -euo pipefail
work=$(mktemp -d /var/tmp/daxstore-capacity.XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
d=("$DAXSTORE" --bus emulated --emulated-dir "$work/bus")
"${d[@]}" emulate create --size 256M >/dev/null
"${d[@]}" create-namespace -m devdax -s 32M -n small >/dev/null

echo "== 64M on a 32M namespace: refused without --overcommit"
if out=$("${d[@]}" image create small -s 64M 2>&1); then
  fail "a 64M image on a 32M namespace was made without --overcommit"
fi
grep -q "allow overcommit" <<<"$out" || fail "no overcommit hint: $out"
"${d[@]}" image create small -s 64M --overcommit >"$work/info" 2>"$work/err"
grep -q "fail with ENOSPC" "$work/err" || fail "--overcommit said nothing: $(cat "$work/err")"
[[ $(jq .overcommitted "$work/info") == true ]] || fail "not overcommitted"
data=$(jq .data_blocks "$work/info")
((data > 1024 && data < 8192)) || fail "data_blocks $data"
echo "data_blocks: $data (virtual $(jq .virtual_blocks "$work/info"))"

sock=$work/small.nbd
uri="nbd+unix:///?socket=$sock"
"${d[@]}" serve nbd small --socket "$sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  nbdinfo "$uri" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "server: $(cat "$work/serve.log")"
  sleep 0.1
done
# blocks ALLOCATED FREE: what `image info` (through the server) counts.
blocks() {
  local info
  info=$("${d[@]}" image info small)
  local a f
  a=$(jq .allocated_blocks <<<"$info")
  f=$(jq .free_blocks <<<"$info")
  [[ $a == "$1" && $f == "$2" ]] ||
    fail "image info: $a allocated, $f free; wanted $1, $2"
  echo "image info: $a allocated, $f free"
}
# io EXPECT CMD...: qemu-io commands on the export; EXPECT ok or ENOSPC.
io() {
  local want=$1 out rc=0
  shift
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  out=$(timeout 60 qemu-io -f raw "${args[@]}" "$uri" 2>&1) || rc=$?
  ((rc != 124)) || fail "qemu-io $*: no answer in 60 s"
  kill -0 "$server" 2>/dev/null || fail "the server died: $(cat "$work/serve.log")"
  case $want in
    ok) [[ $rc == 0 && $out != *failed* ]] || fail "qemu-io $*: $out" ;;
    ENOSPC) [[ $out == *"No space left on device"* ]] ||
      fail "qemu-io $*: wanted ENOSPC, got: $out" ;;
  esac
}

echo "== fill: 64M of 0x11 until the blocks run out"
io ENOSPC "write -P 0x11 0 64M"
blocks "$data" 0
bytes=$((data * 4096))
echo "== full: reads are served"
io ok "read -P 0x11 0 $bytes" "read -P 0 $bytes 1M"
echo "== full: an overwrite needs a new block too (out of place): ENOSPC"
io ENOSPC "write -P 0x22 4k 4k"
io ok "read -P 0x11 4k 4k"
echo "== a zero write frees its block; overwrites go on from there"
io ok "write -z 0 4k" "read -P 0 0 4k"
blocks $((data - 1)) 1
io ok "write -P 0x22 4k 4k" "write -P 0x23 4k 4k" "write -P 0x24 8k 4k" \
  "read -P 0x23 4k 4k" "read -P 0x24 8k 4k"
blocks $((data - 1)) 1
# The free block goes to the next write into a hole; then none is left.
io ok "write -P 0x25 $bytes 4k"
blocks "$data" 0
io ENOSPC "write -P 0x26 $((bytes + 4096)) 4k"
echo "== discard 4M: those blocks are free again and new writes succeed"
io ok "discard 0 4M" "read -P 0 0 4M"
blocks $((data - 1023)) 1023
io ok "write -P 0x33 40M 2M" "read -P 0x33 40M 2M"
blocks $((data - 1023 + 512)) 511
io ok "read -P 0x11 4M $((bytes - 4 * 1048576))"
kill "$server"
wait "$server" || true
server=
"${d[@]}" image check small >"$work/check.json" 2>&1 ||
  fail "image check: $(cat "$work/check.json")"
echo "nbd capacity: ok"
