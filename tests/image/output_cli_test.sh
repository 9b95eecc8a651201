#!/usr/bin/env bash
# Output conventions an ndctl or qemu-img user expects: `list -u` sizes and
# hex ids, -v/-vv/-vvv, `--table`; the image verbs' --output=json|human
# (one view of the same fields), -p (a bar that ends its line), -q
# (nothing but errors) and SIGUSR1 (one progress line).
#   output_cli_test.sh DAXSTORE
set -euo pipefail
cli=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-output-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$work"
py() { /usr/bin/python3 -c "$@"; }
ns=("$cli" --bus emulated --emulated-dir "$work/bus")

# list -u: ndctl's units (binary, then decimal), small sizes as numbers.
"${ns[@]}" emulate create --regions 1 --dimms-per-region 2 --size 2G >/dev/null
"${ns[@]}" create-namespace -m fsdax -s 1G -n big >/dev/null
"${ns[@]}" create-namespace -m devdax -s 64M -n small >/dev/null
out=$("${ns[@]}" list -u -n namespace0.0)
[[ $out == *'"size":"1006.00 MiB (1054.87 MB)"'* || $out == *'"size": "1006.00 MiB (1054.87 MB)"'* ]] ||
  fail "list -u size: $out"
out=$("${ns[@]}" list -R -u)
py 'import json,sys
r=json.load(sys.stdin)
assert r["size"]=="2.00 GiB (2.15 GB)", r
assert r["available_size"]=="960.00 MiB (1006.63 MB)", r
assert r["align"]==16777216, r  # ndctl prints align as a number
' <<<"$out" ||
  fail "list -R -u region size: $out"
out=$("${ns[@]}" list -D -u)
py 'import json,sys
d=json.load(sys.stdin)
import re
for x in d:  # "%#x": 0 is "0"
  assert re.fullmatch("0|0x[0-9a-f]+", x["handle"]), x
  assert re.fullmatch("0|0x[0-9a-f]+", x["phys_id"]), x
assert d[1]["handle"]=="0x1", d' <<<"$out" ||
  fail "list -D -u ids: $out"
out=$("${ns[@]}" list -D)
py 'import json,sys
for x in json.load(sys.stdin): assert isinstance(x["handle"], int), x' <<<"$out" ||
  fail "list -D ids are numbers without -u: $out"
# -v: more fields; -vv: buses, DIMMs, regions, namespaces; -vvv: idle too.
"${ns[@]}" disable-namespace namespace0.1 >/dev/null
[[ $("${ns[@]}" list) == *'"dev":"namespace0.0"'* || $("${ns[@]}" list) == *'"dev": "namespace0.0"'* ]] || fail "list"
[[ $("${ns[@]}" list -n namespace0.0) != *raw_size* ]] || fail "raw_size without -v"
[[ $("${ns[@]}" list -v -n namespace0.0) == *raw_size* ]] || fail "-v: no raw_size"
out=$("${ns[@]}" list -vv)
py 'import json,sys
b=json.load(sys.stdin)
b=b[0] if isinstance(b,list) else b
assert b["provider"] and b["dimms"] and b["regions"], b
ns=[n["dev"] for r in b["regions"] for n in r.get("namespaces",[])]
assert "namespace0.0" in ns and "namespace0.1" not in ns, ns' <<<"$out" || fail "-vv: $out"
out=$("${ns[@]}" list -vvv)
py 'import json,sys
b=json.load(sys.stdin)
b=b[0] if isinstance(b,list) else b
ns=[n["dev"] for r in b["regions"] for n in r.get("namespaces",[])]
assert "namespace0.1" in ns, ns' <<<"$out" || fail "-vvv lists the idle namespace: $out"
[[ $("${ns[@]}" list -R --table) == REGION* ]] || fail "--table"

# --output: JSON by default, the same fields for people with human.
"$cli" image create disk.img --size 64M --emulate memory_controller >/dev/null
json=$("$cli" image info disk.img)
human=$("$cli" image info disk.img --output=human)
py 'import json,sys; json.loads(sys.argv[1])' "$json" || fail "info is not JSON"
[[ $human == *"virtual size: 64.00 MiB (67108864 bytes)"* &&
  $human == *"max volumes: 2"* && $human == *"  granularity: page"* &&
  $human != *"{"* ]] || fail "info --output=human: $human"
# Every top-level JSON field has its line.
for k in $(py 'import json,sys; print(" ".join(k for k,v in json.loads(sys.argv[1]).items() if not k.endswith("_human")))' "$json"); do
  [[ $human == *"${k//_/ }:"* ]] || fail "--output=human lacks $k"
done
[[ $("$cli" image list disk.img --output human) == *"name: base"* ]] || fail "list --output human"
if "$cli" image info disk.img --output=yaml 2>err.txt; then fail "--output=yaml accepted"; fi
grep -q "output" err.txt || fail "--output=yaml: $(cat err.txt)"

# -q: nothing but errors; -p: a bar on stderr whose line is ended.
head -c 64M <(yes daxstore) >src.raw
[[ -z $("$cli" image import src.raw disk.img -q --emulate memory_controller) ]] || fail "import -q printed"
"$cli" image export disk.img out.raw -p --emulate memory_controller >out.json 2>bar.txt
cmp src.raw out.raw || fail "export changed the data"
[[ $(tr '\r' '\n' <bar.txt | tail -n 1) == "export 100% ["*"]" ]] ||
  fail "export -p bar: $(od -c bar.txt | tail -3)"
[[ $(tail -c 1 bar.txt | od -An -c | tr -d ' ') == '\n' ]] || fail "the bar's line is not ended"
py 'import json,sys; json.load(open("out.json"))' || fail "export -p stdout is not JSON"
if "$cli" image export disk.img out.raw -q 2>err.txt; then fail "export over a file without --force"; fi
[[ -s err.txt ]] || fail "-q hid an error"

# SIGUSR1: one progress line per signal, even with -q.
head -c 256M <(yes daxstore) >big.raw
"$cli" image import big.raw big.img -q --emulate memory_controller 2>usr1.txt &
pid=$!
# The handler is in place once /proc says SIGUSR1 (10) is caught by the
# CLI itself: until its exec, the forked child is still this shell, whose
# SigCgt has SIGUSR1 (bash catches it for the EXIT trap); a signal sent
# then ends the import.
caught() {
  [[ /proc/$pid/exe -ef $cli ]] &&
    (( 0x$(awk '/^SigCgt/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0) & 0x200 ))
}
until caught || ! kill -0 "$pid" 2>/dev/null; do sleep 0.001; done
while kill -0 "$pid" 2>/dev/null; do kill -USR1 "$pid" 2>/dev/null || true; sleep 0.01; done
wait "$pid" || fail "import under SIGUSR1 failed: $(cat usr1.txt)"
grep -Eq '^import: [0-9]+ of 268435456 bytes \([0-9]+%\)$' usr1.txt ||
  fail "no progress line on SIGUSR1: $(head -3 usr1.txt)"
"$cli" image export big.img big.out -q --emulate memory_controller
cmp big.raw big.out || fail "the import under SIGUSR1 changed the data"
echo "image output cli: ok"
