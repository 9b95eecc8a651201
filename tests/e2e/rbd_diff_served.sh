#!/usr/bin/env bash
# export-diff of an image a `daxstore serve nbd` has open: the guest's
# writes go in over NBD, the snapshot and both diffs (to stdout and to a
# file) through the control socket; the diffs imported into a second image
# give the snapshot the server exports, byte for byte. Env: DAXSTORE, PLUGIN.
set -euo pipefail
work=$(mktemp -d /var/tmp/daxstore-rbd.XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v nbdcopy >/dev/null || { echo "SKIP: nbdcopy is not installed"; exit 77; }
cd "$work"
img=$work/a.img
ctl=$work/a.ctl
sock=$work/a.nbd
"$DAXSTORE" image create "$img" -s 16M --max-volumes 4 >/dev/null
"$DAXSTORE" image create b.img -s 16M --max-volumes 5 >/dev/null
head -c 2M /dev/urandom >two
"$DAXSTORE" image import two "$img" --force >/dev/null
"$DAXSTORE" image snapshot "$img" s1 >/dev/null
"$DAXSTORE" serve nbd "$img" --socket "$sock" --control "$ctl" \
  2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  [[ -S $ctl ]] && nbdinfo "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "server: $(cat "$work/serve.log")"
  sleep 0.1
done
# The guest rewrites its first 4 MiB.
head -c 4M /dev/urandom >four
truncate -s 16M four
nbdcopy four "nbd+unix:///?socket=$sock"
"$DAXSTORE" image snapshot "$img" s2 --control "$ctl" >/dev/null
"$DAXSTORE" image export-diff "$img" --to-snap s1 --control "$ctl" >full.diff
"$DAXSTORE" image export-diff "$img" inc.diff --from-snap s1 --to-snap s2 \
  --control "$ctl" >inc.json
grep -q '"data_bytes": 4194304' inc.json || fail "inc: $(cat inc.json)"
"$DAXSTORE" image import-diff full.diff b.img >/dev/null
"$DAXSTORE" image import-diff - b.img <inc.diff >/dev/null
# import-diff refuses the served image, saying what to do.
if "$DAXSTORE" image import-diff inc.diff "$img" 2>err; then
  fail "import-diff into a served image succeeded"
fi
grep -q "stop its server" err || fail "served import: $(cat err)"
nbdcopy "nbd+unix:///s2?socket=$sock" served-s2.raw
"$DAXSTORE" image export b.img b-s2.raw --volume s2 >/dev/null
cmp served-s2.raw b-s2.raw || fail "s2 differs"
cmp four b-s2.raw || fail "s2 is not what the guest wrote"
echo "rbd diff served: ok"
