#!/usr/bin/env bash
# Real NBD clients against `daxstore serve nbd`: qemu-img convert/compare,
# qemu-io patterns, fio's nbd engine with verification, nbdinfo --map (holes
# after writes and trim), nbdcopy round trip, read-only export, and the
# serve verb's errors; several connections at once (multi-conn) write and
# verify. Env: DAXSTORE, PLUGIN (set by ctest); NBD_THREADS (serial or
# parallel: serve with --threads NBD_THREADS; unset: the plugin's default).
set -euo pipefail
# tmpfs: memory only, so the image makes no msync (on a disk it would pay
# several per block written); this keeps the test fast without changing
# what it checks.
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

threads=()
[[ -n ${NBD_THREADS:-} ]] && threads=(--threads "$NBD_THREADS")
serve() {  # serve IMAGE [args...]: starts the server, waits for the socket
  "$DAXSTORE" serve nbd "$@" "${threads[@]}" --socket "$sock" \
    2>"$work/serve.log" &
  server=$!
  for _ in $(seq 600); do [[ -S $sock ]] && return 0; sleep 0.05; done
  cat "$work/serve.log" >&2
  fail "server did not start"
}
stop() { kill "$server"; wait "$server" || true; server=; rm -f "$sock"; }

"$DAXSTORE" image create "$work/img" --size 64M >/dev/null
serve "$work/img"
# serve execs nbdkit: its command line carries the thread model asked for.
if [[ -n ${NBD_THREADS:-} ]]; then
  tr '\0' ' ' <"/proc/$server/cmdline" | grep -q "threads=$NBD_THREADS" ||
    fail "serve --threads $NBD_THREADS: not passed to nbdkit"
fi

echo "== qemu-img convert + compare (raw and qcow2 sources)"
head -c 8M /dev/urandom >"$work/src.raw"
truncate -s 64M "$work/src.raw"  # the rest is a hole
qemu-img convert -n -f raw -O raw "$work/src.raw" "$uri"
qemu-img compare -f raw -F raw "$work/src.raw" "$uri"
qemu-img convert -f raw -O qcow2 "$work/src.raw" "$work/src.qcow2"
qemu-io -f qcow2 -c 'write -P 0x5a 16M 4M' "$work/src.qcow2" >/dev/null
qemu-img convert -n -f qcow2 -O raw "$work/src.qcow2" "$uri"
qemu-img compare -f qcow2 -F raw "$work/src.qcow2" "$uri"

echo "== qemu-io patterns"
qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' \
  -c 'write -P 0xcd 1000 3000' -c 'read -P 0xcd 1000 3000' \
  -c 'read -P 0xab 0 1000' -c 'read -P 0xab 4000 96' \
  -c 'write -z 2M 1M' -c 'read -P 0 2M 1M' "$uri" | tee "$work/qemu-io.log"
grep -q -i "pattern verification failed\|error" "$work/qemu-io.log" &&
  fail "qemu-io pattern mismatch"

echo "== nbdinfo --map: holes after writes and trim"
qemu-io -f raw -c 'discard 0 64M' -c 'write -P 0x11 4M 1M' \
  -c 'write -P 0x22 8M 64k' -c 'discard 8M 64k' "$uri" >/dev/null
nbdinfo --map "$uri" | tee "$work/map"
want="0 4194304 3 hole,zero
4194304 1048576 0 data
5242880 61865984 3 hole,zero"
got=$(awk '{print $1, $2, $3, $4}' "$work/map")
[[ $got == "$want" ]] || fail "map: wanted
$want"
qemu-img map -f raw --output=json "$uri" | grep -q '"data": true' ||
  fail "qemu-img map shows no data"

echo "== nbdcopy round trip"
nbdcopy "$uri" "$work/out.raw"
cmp <(head -c 5M "$work/out.raw" | tail -c 1M) \
  <(head -c 1M /dev/zero | tr '\0' '\021') || fail "nbdcopy content"
head -c 3M /dev/urandom >"$work/in.raw"
truncate -s 64M "$work/in.raw"
nbdcopy "$work/in.raw" "$uri"
nbdcopy "$uri" "$work/back.raw"
cmp "$work/in.raw" "$work/back.raw" || fail "nbdcopy round trip"

echo "== fio nbd engine, verify=crc32c"
if fio --enghelp 2>/dev/null | grep -qw nbd; then
  fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
    --size=8M --iodepth=8 --numjobs=1 --verify=crc32c --do_verify=1 \
    --verify_state_save=0 \
    --output="$work/fio.log" || { cat "$work/fio.log"; fail "fio verify"; }
  grep -q "err= 0" "$work/fio.log" || fail "fio reported errors"
  echo "== multi-conn: 4 connections write at once, then verify on new ones"
  nbdinfo --can multi-conn "$uri" || fail "multi-conn not advertised"
  # Each fio job is a connection of its own, with a 2 MiB region of its own
  # (so the verify headers of one job are not overwritten by another).
  mc=(--ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --size=2M
    --offset=16M --offset_increment=2M --numjobs=4 --iodepth=4
    --verify=crc32c --randseed=7 --group_reporting --verify_state_save=0)
  fio --name=mc "${mc[@]}" --do_verify=1 --output="$work/mc.log" ||
    { cat "$work/mc.log"; fail "multi-conn fio"; }
  grep -q "err= 0" "$work/mc.log" || fail "multi-conn fio reported errors"
  fio --name=mc "${mc[@]}" --verify_only --output="$work/mc2.log" ||
    { cat "$work/mc2.log"; fail "multi-conn verify on new connections"; }
  grep -q "err= 0" "$work/mc2.log" || fail "multi-conn verify errors"
else
  fail "this fio has no nbd engine"
fi
nbdcopy "$uri" "$work/before-ro.raw"
stop

echo "== read-only export"
serve "$work/img" --read-only
nbdinfo "$uri" | grep -q "is_read_only: true" || fail "not read-only"
if qemu-io -f raw -c 'write 0 4k' "$uri" 2>&1 | grep -q "wrote"; then
  fail "wrote to a read-only export"
fi
nbdcopy "$uri" "$work/ro.raw"
cmp "$work/before-ro.raw" "$work/ro.raw" || fail "read-only export differs"

"$DAXSTORE" image create "$work/img2" --size 1M >/dev/null
echo "== plugin parameters"
# Declared pmem: the same data through an export with no msync per write.
nbdkit -U - "$PLUGIN" image="$work/img2" emulate=memory_controller \
  --run 'qemu-io -f raw -c "write -P 0x5c 0 64k" -c "read -P 0x5c 0 64k" "$uri"' \
  >"$work/emu.log" 2>&1 || fail "emulate=memory_controller export: $(cat "$work/emu.log")"
grep -q "read 65536/65536" "$work/emu.log" || fail "emulated export read back: $(cat "$work/emu.log")"
out=$(nbdkit -U - "$PLUGIN" image="$work/img2" emulate=bogus --run true 2>&1) &&
  fail "emulate=bogus accepted"
grep -q "use emulate=memory_controller" <<<"$out" || fail "no emulate error: $out"
# threads=: nbdkit runs a connection's requests on its own thread (serial)
# or on worker threads (parallel); its debug log says which.
for t in serial parallel; do
  nbdkit -v -U - "$PLUGIN" image="$work/img2" threads=$t \
    --run 'qemu-io -f raw -c "write -P 0x5d 0 4k" -c "read -P 0x5d 0 4k" "$uri"' \
    >"$work/threads.log" 2>&1 || fail "threads=$t export: $(cat "$work/threads.log")"
  grep -q "read 4096/4096" "$work/threads.log" || fail "threads=$t read back"
  case $t in
    serial) want="processing requests serially" ;;
    parallel) want="processing requests with [0-9]* threads" ;;
  esac
  grep -q "$want" "$work/threads.log" || fail "threads=$t: no '$want' in nbdkit's log"
done
out=$(nbdkit -U - "$PLUGIN" image="$work/img2" threads=bogus --run true 2>&1) &&
  fail "threads=bogus accepted"
grep -q "use threads=parallel or threads=serial" <<<"$out" || fail "no threads error: $out"

echo "== serve errors"
# The image itself is locked by the running server...
out=$("$DAXSTORE" serve nbd "$work/img" --socket "$sock.2" 2>&1) && fail "served twice"
grep -q "open in another process" <<<"$out" || fail "no lock error: $out"
# ...and another image cannot take over its live socket.
out=$("$DAXSTORE" serve nbd "$work/img2" --socket "$sock" 2>&1) && fail "socket taken over"
grep -q "in use" <<<"$out" || fail "no 'in use' error: $out"
stop
out=$("$DAXSTORE" serve nbd "$work/missing" --socket "$sock" 2>&1) &&
  fail "served a missing image"
grep -q "cannot serve" <<<"$out" || fail "unclear error: $out"
head -c 1M /dev/urandom >"$work/junk"
out=$("$DAXSTORE" serve nbd "$work/junk" --socket "$sock" 2>&1) &&
  fail "served garbage"
grep -q "cannot serve" <<<"$out" || fail "unclear error: $out"
out=$("$DAXSTORE" serve nbd "$work/img" --threads 3 --socket "$sock" 2>&1) &&
  fail "served with --threads 3"
grep -q "use --threads serial or --threads parallel" <<<"$out" ||
  fail "unclear error: $out"
out=$(PATH=/nonexistent "$DAXSTORE" serve nbd "$work/img" 2>&1) &&
  fail "served without nbdkit"
grep -q "apt-get install nbdkit" <<<"$out" || fail "unclear error: $out"
echo "PASS"
