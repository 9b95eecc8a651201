#!/bin/sh
# `daxstore image sharing`: two volumes filled from raw files with known
# duplicates; the report's counts are checked against an independent
# script that hashes the volumes' raw exports in 4 KiB blocks (SHA-256),
# offline and through the control socket of a server holding the image.
# Sharing groups set and cleared through the server change what a dedup
# of group scope frees. The report leaves the image as it was; image dedup
# then frees what it reported, offline and through the server, and every
# volume reads as before. Usage: sharing_cli_test.sh DAXSTORE
set -u
cli=$1
dir=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server"; fi
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
em="--emulate memory_controller"
export XDG_RUNTIME_DIR=$dir/run  # the server's default control socket
mkdir -m 700 run

# serve: serves x.img in the background ($server) until its control
# socket is there.
serve() {
  $cli serve vhost-user-blk x.img --socket "$dir/x.sock" 2>serve.log &
  server=$!
  i=0
  while [ ! -S run/daxstore/x.img.ctl ] && [ $i -lt 100 ]; do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  [ -S run/daxstore/x.img.ctl ] || fail "server: $(cat serve.log)"
}

# a.raw: R0 x3, R1, two zero blocks, R2, R3 x2; b.raw: R1 x2, R4, R2, R5.
# The rest of each 256 KiB disk is zeros.
python3 - <<'PY' || fail "making the raw files"
import os
r = [os.urandom(4096) for _ in range(6)]
z = bytes(4096)
def write(name, blocks):
    with open(name, "wb") as f:
        f.write(b"".join(blocks))
        f.truncate(256 * 1024)
write("a.raw", [r[0], r[0], r[0], r[1], z, z, r[2], r[3], r[3]])
write("b.raw", [r[1], r[1], r[4], r[2], r[5]])
PY

$cli image create x.img --size 256K --max-volumes 8 $em >/dev/null || fail "create"
$cli image snapshot x.img empty $em >/dev/null || fail "snapshot empty"
$cli image clone x.img empty vm2 $em >/dev/null || fail "clone vm2"
$cli image import a.raw x.img --force $em >/dev/null || fail "import a"
# b.raw reaches vm2 as an RBD diff from a second image.
$cli image import b.raw b.img --max-volumes 2 $em >/dev/null || fail "import b"
$cli image snapshot b.img bs $em >/dev/null || fail "snapshot bs"
$cli image export-diff b.img b.diff --to-snap bs $em >/dev/null || fail "export-diff"
$cli image import-diff b.diff x.img --volume vm2 $em >/dev/null || fail "import-diff"
$cli image export x.img base.raw $em >/dev/null || fail "export base"
$cli image export x.img vm2.raw --volume vm2 $em >/dev/null || fail "export vm2"
$cli image info x.img $em >before.json || fail "info"

$cli image sharing x.img --volume base --volume vm2 $em >offline.json ||
  fail "sharing: $(cat offline.json)"

# The independent count: SHA-256 of every 4 KiB block of the raw exports.
check() {
  python3 - "$1" base.raw vm2.raw <<'PY'
import hashlib, json, sys
report = json.load(open(sys.argv[1]))
vols = {v["name"]: v for v in report["volumes"]}
zero = hashlib.sha256(bytes(4096)).digest()
seen = set()
bad = []
def expect(what, got, want):
    if got != want:
        bad.append(f"{what}: report {got}, script {want}")
total = {"self": 0, "inter": 0}
for name, raw in (("base", sys.argv[2]), ("vm2", sys.argv[3])):
    data = open(raw, "rb").read()
    mine = {}
    zeros = 0
    for i in range(0, len(data), 4096):
        h = hashlib.sha256(data[i:i + 4096]).digest()
        if h == zero:
            zeros += 1
        else:
            mine[h] = mine.get(h, 0) + 1
    v = vols[name]
    expect(name + " zeros", v["holes"] + v["zero_blocks"], zeros)
    expect(name + " self", v["self_sharing_blocks"],
           sum(n - 1 for n in mine.values()))
    expect(name + " inter", v["inter_volume_blocks"], len(set(mine) & seen))
    expect(name + " distinct", v["distinct_blocks"], len(set(mine) - seen))
    total["self"] += v["self_sharing_blocks"]
    total["inter"] += v["inter_volume_blocks"]
    seen |= set(mine)
t = report["total"]
expect("total distinct", t["distinct_blocks"], len(seen))
expect("total self", t["self_sharing_blocks"], total["self"])
expect("total inter", t["inter_volume_blocks"], total["inter"])
# The figures of this layout, as the raw files were made.
expect("base self", vols["base"]["self_sharing_blocks"], 3)
expect("vm2 inter", vols["vm2"]["inter_volume_blocks"], 2)
# base's blocks are its own: its duplicates are what a dedup frees. vm2
# shares every block with the snapshot bs (outside the report), so a
# dedup of vm2 alone frees nothing.
expect("base dedup", vols["base"]["dedup_volume_blocks"], 3)
expect("base dedup bytes", vols["base"]["dedup_volume_bytes"], 3 * 4096)
expect("vm2 shared", vols["vm2"]["shared_blocks"], vols["vm2"]["mapped_blocks"])
expect("vm2 dedup", vols["vm2"]["dedup_volume_blocks"], 0)
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
}
check offline.json || fail "offline report"

$cli image sharing x.img --volume base --output=human $em >human.txt ||
  fail "human"
grep -q "self sharing blocks: 3" human.txt || fail "human: $(cat human.txt)"
if $cli image sharing x.img --volume nope $em 2>err >/dev/null; then
  fail "sharing of a missing volume succeeded"
fi
grep -q "no volume 'nope'" err || fail "missing volume: $(cat err)"

# While served: the same report through the control socket.
serve
$cli image sharing x.img --volume base --volume vm2 $em >served.json ||
  fail "served sharing: $(cat served.json)"
cmp -s offline.json served.json || fail "served report differs"
check served.json || fail "served report"
# Sharing groups, set through the server: base and vm2 in one group may
# share base's copies of R1 and R2 with vm2 (whose blocks the snapshot bs
# keeps anyway) on top of base's own duplicates.
$cli image set-group x.img base t1 >/dev/null || fail "set-group base"
$cli image set-group x.img vm2 t1 >vm2.json || fail "set-group vm2"
grep -q '"group": "t1"' vm2.json || fail "set-group: $(cat vm2.json)"
$cli image sharing x.img --volume base --volume vm2 >grouped.json ||
  fail "grouped sharing"
python3 - <<'PY' || fail "grouped report: $(cat grouped.json)"
import json
r = json.load(open("grouped.json"))
v = {x["name"]: x for x in r["volumes"]}
assert v["base"]["group"] == "t1" and v["vm2"]["group"] == "t1"
assert v["base"]["dedup_volume_blocks"] == 3
assert v["base"]["dedup_group_blocks"] == 5
assert v["vm2"]["dedup_group_blocks"] == 0
assert r["total"]["dedup_group_blocks"] == 5
PY
if $cli image set-group x.img vm2 2>err >/dev/null; then
  fail "set-group without a group succeeded"
fi
grep -q "\-\-none" err || fail "set-group without a group: $(cat err)"
$cli image set-group x.img vm2 --none >/dev/null || fail "set-group --none"
kill "$server" && wait "$server"
server=
# The groups are on the image.
$cli image list x.img $em >list.json || fail "list"
[ "$(grep -c '"group": "t1"' list.json)" -eq 1 ] || fail "groups: $(cat list.json)"
$cli image clone x.img empty vm3 --group t1 $em >vm3.json || fail "clone --group"
grep -q '"group": "t1"' vm3.json || fail "clone --group: $(cat vm3.json)"
$cli image delete x.img vm3 $em >/dev/null || fail "delete vm3"

$cli image info x.img $em >after.json || fail "info after"
cmp -s before.json after.json || fail "sharing changed the image"
$cli image export x.img base2.raw $em >/dev/null && cmp -s base.raw base2.raw ||
  fail "base changed"

# Dedup offline frees what the report said, and base reads as before.
want=$(python3 -c 'import json; print(json.load(open("offline.json"))["volumes"][0]["dedup_volume_bytes"])')
$cli image dedup x.img --volume base $em >dedup.json || fail "dedup: $(cat dedup.json)"
grep -q "\"freed_bytes\": $want," dedup.json || fail "dedup freed: $(cat dedup.json), want $want"
$cli image export x.img base3.raw $em >/dev/null && cmp -s base.raw base3.raw ||
  fail "dedup changed base"
if $cli image dedup x.img --scope nope $em 2>err >/dev/null; then
  fail "dedup --scope nope succeeded"
fi
# Through the server, group scope over every volume: base's R1 and R2 go
# onto vm2's blocks; vm2's second R1 goes onto its first, and so does the
# second R1 of the snapshot bs (in no group: deduped alone), which frees
# the block the two shared. 3 blocks.
$cli image set-group x.img base t1 $em >/dev/null || fail "set-group base"
$cli image set-group x.img vm2 t1 $em >/dev/null || fail "set-group vm2"
serve
for bad in 0 fast; do
  if $cli image dedup x.img --scope group --speed $bad 2>err >/dev/null; then
    fail "dedup --speed $bad succeeded"
  fi
  grep -q "is no rate" err || fail "dedup --speed $bad: $(cat err)"
done
$cli image dedup x.img --scope group --speed 64m >dedup2.json ||
  fail "served dedup: $(cat dedup2.json)"
grep -q '"freed_blocks": 3,' dedup2.json || fail "served dedup: $(cat dedup2.json)"
kill "$server" && wait "$server"
server=
$cli image export x.img base4.raw $em >/dev/null && cmp -s base.raw base4.raw ||
  fail "group dedup changed base"
$cli image export x.img vm2b.raw --volume vm2 $em >/dev/null &&
  cmp -s vm2.raw vm2b.raw || fail "group dedup changed vm2"
$cli image check x.img $em >check.json || fail "check after dedup: $(cat check.json)"

[ "$fails" -eq 0 ] || exit 1
echo "image sharing cli: ok"
