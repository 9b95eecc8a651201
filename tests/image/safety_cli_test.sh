#!/usr/bin/env bash
# No verb loses data by accident. Every destructive verb (image export,
# import, create --force, destroy-namespace, emulate destroy) is given its
# target the same file twice, through a symlink, a hard link, a namespace's
# name and its path on the emulated bus, and an image a server has open: it
# refuses with one line, --force or not, and the sha256 of every file is
# unchanged. Then image check's exit codes (0 clean, 1 cannot run,
# 2 corruption, 3 leaks or a crash to recover) and its repair levels:
# --repair=leaks never changes what the guest reads, --repair=all reports
# exactly the LBAs it drops.
#   safety_cli_test.sh DAXSTORE CRASH_WRITER
set -euo pipefail
cli=$1 crash_writer=$2
work=$(mktemp -d /dev/shm/daxstore-safety.XXXXXX)
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
cd "$work"
export DAXSTORE_EMULATED_DIR=$work/bus
d() { "$cli" --bus emulated "$@"; }
sums() { find "$work" -type f ! -name '*.out' ! -name '*.err' -print0 |
  sort -z | xargs -0 sha256sum; }

# refuse WANT ARGS...: `daxstore --bus emulated ARGS` fails with one line
# holding WANT, and no file changed: every file's sha256 is still what
# `snap` recorded (refusals change nothing, so one snap serves many).
snap() { state=$(sums); }
refuse() {
  local want=$1 err
  shift
  if err=$(d "$@" 2>&1 >/dev/null); then fail "$* succeeded"; fi
  [[ $(wc -l <<<"$err") == 1 && $err == *"$want"* ]] ||
    fail "$*: '$err' (wanted '$want')"
  [[ $(sums) == "$state" ]] || fail "$*: a file changed"
}

d emulate create --size 64M >/dev/null
d create-namespace -s 16M -n vm1 >/dev/null # namespace0.0, pmem0
ns=$work/bus/region0/pmem0
head -c 1M /dev/urandom >src.raw
truncate -s 4M src.raw
d image import src.raw vm1 >/dev/null
d image import src.raw a.img >/dev/null
d image import src.raw b.img >/dev/null
ln -s a.img link.img
ln a.img hard.img
ln -s "$ns" ns-link
mkdir sub && ln -s ../a.img sub/up.img
d image export a.img copy.raw >/dev/null
cmp src.raw copy.raw || fail "round trip"
same="they are the same file"
snap

# --- one file under two names: refused, --force or not ---
while read -r verb src dst; do
  for force in "" --force; do
    refuse "$same" image "$verb" "$src" "$dst" $force
  done
done <<EOF
export a.img a.img
export a.img link.img
export link.img a.img
export a.img hard.img
export a.img ./sub/up.img
export $work/a.img sub/up.img
export vm1 $ns
export pmem0 $ns
export namespace0.0 ns-link
import a.img a.img
import link.img a.img
import a.img link.img
import hard.img sub/up.img
import $ns vm1
import ns-link namespace0.0
import $ns pmem0
EOF
# --force never formats over an image, under any of its names.
for t in a.img link.img hard.img vm1 pmem0 "$ns" ns-link; do
  refuse "already holds a daxstore image" image create "$t" -s 8M --force
done

# --- data that is not an image: the refusal says what --force loses ---
head -c 1M /dev/urandom >data.raw
snap
refuse "holds data that is not a daxstore image; pick a new path, or pass --force to format it (its 1.00 MiB of content is lost)" \
  image create data.raw -s 8M
refuse "exists; export to a new path, or pass --force to replace it (its 4.00 MiB of content is lost)" \
  image export a.img copy.raw
refuse "already holds 1.00 MiB of guest data; import into a new path, or pass --force to replace its first" \
  image import data.raw b.img

# --- an image another process has open ---
"$cli" --bus emulated serve vhost-user-blk vm1 --socket "$work/s" \
  2>"$work/serve.err" &
server=$!
for _ in $(seq 600); do [[ -S $work/s ]] && break; sleep 0.05; done
[[ -S $work/s ]] || { cat "$work/serve.err" >&2; fail "no socket"; }
busy="is open in another process"
snap
for force in "" --force; do
  refuse "$busy" image export a.img "$ns" $force
  refuse "$busy" image export b.img ns-link $force
  refuse "$busy" image import src.raw pmem0 $force
  refuse "$busy" image import src.raw "$ns" $force
  refuse "$busy" image create vm1 -s 8M $force
done
for lvl in leaks all; do
  refuse "$busy" image check --repair=$lvl namespace0.0
done
refuse "is held by an open image or mapping" destroy-namespace namespace0.0
refuse "is held by an open image or mapping" destroy-namespace -f namespace0.0
refuse "is held by an open image or mapping" emulate destroy -f
kill "$server"
wait "$server" || true
server=

# --- emulate destroy without -f: namespaces enabled or holding data ---
d create-namespace -s 16M >/dev/null # namespace0.1, enabled, all hole
d create-namespace -s 16M -n cold >/dev/null
d disable-namespace namespace0.2 >/dev/null 2>&1 # disabled, all hole
snap
refuse "namespace0.0 'vm1' (16M, enabled, holds data), namespace0.1 (16M, enabled); 'daxstore emulate destroy -f' destroys them and all their data" \
  emulate destroy
d destroy-namespace -f namespace0.1 >/dev/null 2>&1
d destroy-namespace -f namespace0.0 >/dev/null 2>&1
d emulate destroy >/dev/null 2>&1 || fail "emulate destroy of an idle bus"
[[ ! -e bus/bus.json ]] || fail "the bus is still there"

# --- permission denied is said as such, and no format is suggested ---
chmod 755 "$work"
cp data.raw ro.raw
cp a.img ro.img
as_user() { "$@"; }
chmod 444 ro.raw ro.img
if [[ $(id -u) == 0 ]]; then # root writes anything: run as nobody
  as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  chmod 644 ro.raw ro.img
fi
if [[ $(as_user id -u 2>/dev/null) != 0 ]]; then
  for args in "image import --force src.raw ro.raw" \
    "image import --force src.raw ro.img" \
    "image create ro.raw -s 8M --force" \
    "image check --repair=leaks ro.img"; do
    before=$(sha256sum ro.raw ro.img)
    # shellcheck disable=SC2086
    if err=$(as_user "$cli" $args 2>&1 >/dev/null); then
      fail "$args succeeded"
    fi
    [[ $err == *"permission denied: "*"ro."* && $err != *"--force"* ]] ||
      fail "$args: '$err'"
    [[ $(sha256sum ro.raw ro.img) == "$before" ]] || fail "$args changed a file"
  done
fi

# --- image check: exit codes and repair levels ---
# check_exit CODE ARGS...: `daxstore image check ARGS` exits CODE; its
# stdout is in check.out, its stderr in check.err.
check_exit() {
  local want=$1 got=0
  shift
  "$cli" image check "$@" >check.out 2>check.err || got=$?
  [[ $got == "$want" ]] ||
    fail "check $*: exit $got, wanted $want: $(cat check.err check.out)"
}
# Superblock fields (lib/image/format.h) and pokes into the image.
field() { python3 -c 'import struct,sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2]))
print(struct.unpack("<Q", f.read(8))[0])' "$1" "$2"; }
poke() { python3 -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2]))
f.write(struct.pack("<"+sys.argv[3], int(sys.argv[4], 0) % 2**64))' "$@"; }
entry() { echo $(($(field "$1" 72) + 8 * $2)); }  # map_offset + 8 x block
ref() { echo $(($(field "$1" 80) + 4 * $2)); }    # ref_offset + 4 x block

check_exit 0 a.img
check_exit 1 nothing.img
check_exit 1 data.raw
check_exit 1 a.img --repair
grep -q -- "--repair needs a level: --repair=leaks (fixes what loses no data" check.err &&
  grep -q -- "--repair=all (also makes damaged map entries holes" check.err ||
  fail "bare --repair: $(cat check.err)"
check_exit 1 --repair a.img
grep -q -- "is not a repair level" check.err || fail "--repair a.img: $(cat check.err)"
check_exit 1 --repair=some a.img

# Leaks: a free block's refcount set to 1. --repair=leaks frees it and the
# guest reads the same bytes.
cp a.img leak.img
last=$(($(field leak.img 40) - 1)) # data_blocks - 1: free
poke leak.img "$(ref leak.img $last)" I 1
check_exit 3 leak.img
grep -q "1 leaked blocks); run 'daxstore image check --repair=leaks leak.img'" check.err ||
  fail "leaks message: $(cat check.err)"
check_exit 0 leak.img --repair=leaks
grep -q '"repaired": true' check.out || fail "leaks not repaired"
check_exit 0 leak.img
d image export leak.img leak.raw >/dev/null
cmp src.raw leak.raw || fail "--repair=leaks changed guest data"

# Corruption: map entries of blocks 1 and 2 (LBAs 8-23) and 1000 (8000-
# 8007; a hole, so 0 | reserved bit) damaged. --repair=leaks changes
# nothing at all; --repair=all drops exactly those LBAs, nothing else.
cp a.img bad.img
for b in 1 2; do
  e=$(field bad.img "$(entry bad.img $b)")
  poke bad.img "$(entry bad.img $b)" Q $((e | (1 << 50)))
done
poke bad.img "$(entry bad.img 1000)" Q $((1 << 50))
check_exit 2 bad.img
grep -q "'daxstore image check --repair=all bad.img' fixes it (the guest data of the damaged map entries is lost: volume 'base' LBA 8-23, volume 'base' LBA 8000-8007" check.err ||
  fail "corruption message: $(cat check.err)"
before=$(sha256sum bad.img)
check_exit 2 bad.img --repair=leaks
[[ $(sha256sum bad.img) == "$before" ]] || fail "--repair=leaks wrote to a corrupt image"
check_exit 0 bad.img --repair=all
python3 - check.out <<'EOF' || fail "dropped: $(cat check.out)"
import json, sys
j = json.load(open(sys.argv[1]))
want = [{"volume": "base", "lba": 8, "lba_count": 16, "offset": 4096, "length": 8192},
        {"volume": "base", "lba": 8000, "lba_count": 8, "offset": 4096000, "length": 4096}]
assert j["dropped"] == want, j["dropped"]
assert j["repair"] == "all" and j["repaired"], j
EOF
[[ $(grep -c "repair dropped guest data it could not keep" check.err) == 2 ]] &&
  grep -q "volume 'base' LBA 8-23 (bytes 4096-12287 now read as zeros)" check.err ||
  fail "dropped on stderr: $(cat check.err)"
check_exit 0 bad.img
d image export bad.img bad.raw >/dev/null
cp src.raw want.raw
dd if=/dev/zero of=want.raw bs=4096 seek=1 count=2 conv=notrunc 2>/dev/null
cmp want.raw bad.raw || fail "--repair=all changed more than the dropped LBAs"

# A crashed image: a read-only check lists what recovery will do, writes
# nothing and names the command that recovers.
cp a.img crash.img
"$crash_writer" crash.img
before=$(sha256sum crash.img)
check_exit 3 crash.img
grep -q "crash.img needs crash recovery: 1 interrupted write(s) to replay (volume 'base' LBA 0-7); run 'daxstore image check --repair=leaks crash.img'" check.err ||
  fail "crash message: $(cat check.err)"
python3 - check.out <<'EOF' || fail "pending: $(cat check.out)"
import json, sys
j = json.load(open(sys.argv[1]))
p = j["pending_records"]
assert len(p) == 1 and p[0]["lba"] == 0 and p[0]["lba_count"] == 8, p
assert p[0]["recovery"] == "redo", p
EOF
[[ $(sha256sum crash.img) == "$before" ]] || fail "a read-only check wrote"
# The record is applied already (the writer died after its write
# returned): read-only verbs work without replaying it and write nothing.
d image info crash.img >/dev/null || fail "info of a crashed image"
d image export crash.img crash-ro.raw >/dev/null || fail "read-only export of a crashed image"
cmp <(head -c 4096 /dev/zero | tr '\0' '\262') <(head -c 4096 crash-ro.raw) ||
  fail "a read-only open of a crashed image does not read the last write"
[[ $(sha256sum crash.img) == "$before" ]] || fail "read-only verbs wrote"
check_exit 0 crash.img --repair=leaks
grep -q '"recovered_records": 1' check.out || fail "no recovery: $(cat check.out)"
check_exit 0 crash.img
d image export crash.img crash.raw >/dev/null
cmp <(head -c 4096 /dev/zero | tr '\0' '\262') <(head -c 4096 crash.raw) ||
  fail "the second write is not what the guest reads"
cmp <(tail -c +4097 src.raw) <(tail -c +4097 crash.raw) ||
  fail "recovery changed other blocks"

echo "image safety cli: ok"
