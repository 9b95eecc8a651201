#!/usr/bin/env bash
# `serve` and `vm-args` on a namespace of the emulated bus, named by -n
# name, device, block or dax device: what they print, the errors for a
# namespace with no image, a busy one and an unknown one (one line each,
# the namespace's bytes left as they were), and, when nbdkit and the
# plugin are here (PLUGIN), data written over NBD landing in the
# namespace's image.   serve_namespace_cli.sh DAXSTORE [PLUGIN]
set -euo pipefail
cli=$1 plugin=${2:-}
work=$(mktemp -d /dev/shm/daxstore-serve-ns.XXXXXX)
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

d emulate create --size 256M >/dev/null
d create-namespace -s 64M -n vm1 >/dev/null   # namespace0.0, pmem0
d create-namespace -s 64M -m devdax >/dev/null # namespace0.1, dax0.1
d create-namespace -s 32M -n twin >/dev/null
d create-namespace -s 32M -n twin >/dev/null
dev0=$(d list -n namespace0.0 -v | python3 -c 'import json,sys; print(json.load(sys.stdin)["blockdev"])')
[[ $dev0 == pmem0 ]] || fail "namespace0.0 is not pmem0: $dev0"

bad() {  # bad EXPECTED ARGS...: fails with one line holding EXPECTED
  local want=$1 err
  shift
  if err=$("$cli" --bus emulated "$@" 2>&1 >/dev/null); then
    fail "$* succeeded"
  fi
  [[ $(wc -l <<<"$err") == 1 && $err == *"$want"* ]] ||
    fail "$*: '$err' (wanted '$want')"
}

# No image yet: vm-args attaches the namespace as memory; a disk form, or a
# server, says to create an image first.
out=$(d vm-args vm1 --guest-ram 1G)
[[ $out == *"mem-path=$work/bus/"*"size=65011712,"* && $out == *"-device nvdimm,"* ]] ||
  fail "vm-args of an empty namespace: $out"
sum=$(md5sum bus/region0/*)
bad "namespace vm1 holds no daxstore image: create one with 'daxstore image create vm1 -s SIZE'" \
  vm-args vm1 --nbd
bad "namespace vm1 (namespace0.0) holds no daxstore image" \
  serve vhost-user-blk vm1 --socket "$work/s"
bad "no namespace namespace0.9 on the emulated bus" \
  serve vhost-user-blk namespace0.9 --socket "$work/s"
bad "2 namespaces are named twin (namespace0.2, namespace0.3)" vm-args twin
[[ $(md5sum bus/region0/*) == "$sum" ]] || fail "an error changed a namespace"

# An image on the namespace by its -n name (a new namespace is all hole, so
# no --force), its virtual size 4x the namespace: promising more than the
# medium holds needs --overcommit, says so, and the namespace keeps its
# size. Every name finds it.
size=$(stat -c %s bus/region0/pmem0)
bad "pick a size of at most" image create vm1 -s 256M
err=$(d image create vm1 -s 256M --overcommit 2>&1 >/dev/null) ||
  fail "image create --overcommit: $err"
[[ $err == *"promises 256.00 MiB but its data blocks hold"*"ENOSPC"* ]] ||
  fail "image create --overcommit said: '$err'"
[[ $(stat -c %s bus/region0/pmem0) == "$size" ]] ||
  fail "image create grew the namespace's backing file"
bad "namespace namespace0.0 ($work/bus/region0/pmem0) already holds a daxstore image" \
  image create pmem0 -s 16M
for name in vm1 namespace0.0 pmem0; do
  out=$(d vm-args "$name" --vhost-user --socket "$work/s" --guest-ram 512M)
  [[ $out == *"# first: daxstore serve vhost-user-blk $name --socket $work/s"* &&
    $out == *"-chardev socket,id=daxstore-namespace0.0,path=$work/s "* ]] ||
    fail "vm-args $name --vhost-user: $out"
done
out=$(XDG_RUNTIME_DIR=$work/run d vm-args vm1)  # an image: NBD by default
[[ $out == *"# first: daxstore serve nbd vm1 --socket $work/run/daxstore/namespace0.0.nbd"* ]] ||
  fail "vm-args vm1 (NBD socket): $out"

# Served by name; a second server on the same namespace is refused.
"$cli" --bus emulated serve vhost-user-blk vm1 --socket "$work/s" \
  2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do [[ -S $work/s ]] && break; sleep 0.05; done
[[ -S $work/s ]] || { cat "$work/serve.log" >&2; fail "no socket"; }
# The line comes once every socket is there: wait for it too.
for _ in $(seq 600); do
  grep -q "serving namespace0.0 ($work/bus/" "$work/serve.log" && break
  sleep 0.05
done
grep -q "serving namespace0.0 ($work/bus/" "$work/serve.log" ||
  fail "serve log: $(cat "$work/serve.log")"
bad "namespace pmem0 (namespace0.0) is busy" \
  serve vhost-user-blk pmem0 --socket "$work/s2"
out=$(d vm-args vm1 --vhost-user --socket "$work/s")  # busy: served, fine
[[ $out == *"path=$work/s "* ]] || fail "vm-args while served: $out"
if [[ -n $plugin ]] && command -v nbdkit >/dev/null; then
  bad "namespace vm1 (namespace0.0) is busy" serve nbd vm1 --socket "$work/n"
fi
kill "$server"
wait "$server" || true
server=

# Import onto a new namespace (no image yet, all hole): the image is made
# at the namespace's size (thin under a bigger virtual size), sized to the
# source, and holds its bytes.
head -c 1M /dev/urandom >src.raw
truncate -s 256M src.raw  # 4x the namespace: thin
size=$(stat -c %s bus/region0/dax0.1)
bad "pick a size of at most" image import src.raw dax0.1
d image import src.raw dax0.1 --overcommit >/dev/null 2>&1
[[ $(stat -c %s bus/region0/dax0.1) == "$size" ]] ||
  fail "image import grew the namespace's backing file"
d image export dax0.1 back.raw >/dev/null
cmp src.raw back.raw || fail "import onto a namespace: data differs"
bad "namespace namespace0.1 ($work/bus/region0/dax0.1) already holds a daxstore image" \
  image create dax0.1 -s 16M

# A bare word that names no namespace is a new file in the working
# directory, but one shaped like a namespace name (no '.') not without a
# word: a namespace whose create failed would otherwise quietly become a
# (thin, huge) file here.
err=$(cd "$work" && d image create vm9 -s 16M 2>&1 >/dev/null) ||
  fail "image create vm9: $err"
[[ -f $work/vm9 && $err == *"no namespace on the emulated bus is named 'vm9'; taking it as a file"*"./vm9"* ]] ||
  fail "image create of an unknown bare name: '$err'"
for f in ./vm8 fresh.img; do  # said to be a file, or shaped like one
  err=$(cd "$work" && d image create "$f" -s 1M 2>&1 >/dev/null) ||
    fail "image create $f: $err"
  [[ -f $work/$f && -z $err ]] || fail "image create $f said: '$err'"
done

if [[ -z $plugin ]] || ! command -v nbdkit >/dev/null ||
  ! command -v qemu-io >/dev/null; then
  echo "serve namespace cli: ok (NBD part skipped: no plugin, nbdkit or qemu-io)"
  exit 0
fi
# Over NBD by name: the write lands in the namespace's image.
DAXSTORE_NBDKIT_PLUGIN=$plugin "$cli" --bus emulated serve nbd vm1 \
  --socket "$work/n" 2>"$work/nbd.log" &
server=$!
for _ in $(seq 600); do [[ -S $work/n ]] && break; sleep 0.05; done
[[ -S $work/n ]] || { cat "$work/nbd.log" >&2; fail "no NBD socket"; }
qemu-io -f raw -c 'write -P 0x6b 1M 64k' "nbd+unix:///?socket=$work/n" >/dev/null
kill "$server"
wait "$server" || true
server=
d image export vm1 out.raw >/dev/null
cmp <(head -c 64k /dev/zero | tr '\0' 'k') <(tail -c +$((1048576 + 1)) out.raw | head -c 64k) ||
  fail "the NBD write is not in the namespace's image"
echo "serve namespace cli: ok"
