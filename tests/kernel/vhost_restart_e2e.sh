#!/usr/bin/env bash
# A backend restart under a running guest, one boot: the guest writes 4 MiB
# to its vhost-user-blk disk with dd oflag=direct; `daxstore serve
# vhost-user-blk --stall-after N` takes request N and stops, is killed -9
# with it in flight, and a new server starts on the same socket. QEMU
# (chardev reconnect=1) reconnects and hands back the inflight region; the
# new server resubmits the request, dd finishes, and the guest reads the
# disk back (iflag=direct). Checked: the new server resubmitted something,
# the guest's read-back and `daxstore image export` on the host both hold
# exactly what the guest wrote.
#   vhost_restart_e2e.sh RUN_IN_GUEST DAXSTORE_CLI [CACHE_DIR]
set -euo pipefail
rig=$1 cli=$2 cache=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-vhost-restart.XXXXXX")
# Control sockets of this test's servers in a directory of its own: tests
# run side by side, and two servers of one name would collide.
export XDG_RUNTIME_DIR=$work/run
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
server='' guest='' shm=''
cleanup() {
  [[ -n $guest ]] && kill "$guest" 2>/dev/null || true
  [[ -n $server ]] && kill -9 "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work" ${shm:+"$shm"}
}
trap cleanup EXIT
fail() {
  echo "vhost_restart_e2e: $*" >&2
  for f in "$work"/server*.log; do [[ -f $f ]] && sed "s|^|$(basename "$f"): |" "$f" >&2; done
  exit 1
}

mkdir -p "$work/build" "$work/results"
cat >"$work/build/guest.sh" <<'GUEST'
set -e
mkdir -p /tmp
dd if=/dev/urandom of=/tmp/data bs=64k count=64 2>/dev/null
dd if=/tmp/data of=/dev/vda bs=64k oflag=direct 2>/dev/null
dd if=/dev/vda of=/tmp/back bs=64k count=64 iflag=direct 2>/dev/null
md5sum </tmp/data | cut -d' ' -f1 >"$DAXSTORE_RESULTS_DIR/wrote"
md5sum </tmp/back | cut -d' ' -f1 >"$DAXSTORE_RESULTS_DIR/read"
GUEST
chmod +x "$work/build/guest.sh"
# The image on tmpfs when there is one: on a disk file every durable write
# pays for msync, which makes dd's writes ~10x slower here.
img=$work/disk.img
if [[ -d /dev/shm && -w /dev/shm ]]; then
  shm=$(mktemp -d /dev/shm/daxstore-vhost-restart.XXXXXX)
  img=$shm/disk.img
fi
"$cli" image create "$img" --size 64M >/dev/null

start_server() {  # LOG [ARGS...]
  local log=$1
  shift
  "$cli" serve vhost-user-blk "$img" --socket "$work/vub.sock" \
    "$@" 2>"$log" &
  server=$!
  for _ in $(seq 600); do
    grep -q "serving" "$log" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "the server did not start"
}

# The guest's kernel reads the partition table first (a few requests);
# request 30 falls in the middle of dd's 64 writes.
start_server "$work/server1.log" --stall-after 30
opts=(--build "$work/build" --nvdimm 1 --nvdimm-size 64M --memory 512M
  --shared-ram --timeout 120 --results "$work/results"
  --qemu-arg -chardev --qemu-arg "socket,id=vub,path=$work/vub.sock,reconnect=1"
  --qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=vub")
[[ -n $cache ]] && opts+=(--cache "$cache")
"$rig" "${opts[@]}" -- sh "$work/build/guest.sh" &
guest=$!
for _ in $(seq 1200); do
  grep -q "stalled at request" "$work/server1.log" && break
  kill -0 "$guest" 2>/dev/null || fail "the guest ended before the stall"
  sleep 0.1
done
grep -q "stalled at request" "$work/server1.log" || fail "no stall"
echo "== server stalled with a request in flight; kill -9, restart"
kill -9 "$server"
wait "$server" 2>/dev/null || true
start_server "$work/server2.log"
rc=0
wait "$guest" || rc=$?
guest=''
[[ $rc == 0 ]] || fail "the guest failed (status $rc)"
grep -q "resubmitting" "$work/server2.log" ||
  fail "the restarted server resubmitted nothing"
wrote=$(cat "$work/results/wrote")
[[ $(cat "$work/results/read") == "$wrote" ]] ||
  fail "the guest read back other data than it wrote"
kill "$server"
wait "$server" || fail "the second server did not stop cleanly"
server=''
"$cli" image export "$img" "$work/back.raw" >/dev/null
host=$(head -c 4M "$work/back.raw" | md5sum | cut -d' ' -f1)
[[ $host == "$wrote" ]] || fail "the exported image differs from the guest's data"
echo "vhost_restart_e2e: $(grep -o 'resubmitting [0-9]* requests' "$work/server2.log")" \
  "after kill -9; guest and export match what the guest wrote"
