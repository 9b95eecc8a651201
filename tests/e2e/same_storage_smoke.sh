#!/usr/bin/env bash
# bench/same_storage.sh still runs and yields every figure: one tiny round on
# /dev/shm (qemu-img bench, the daxstore image through the C ABI, fio
# libpmem), then checks the JSON. No timing is asserted; figures live in
# bench/results.   same_storage_smoke.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
out=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-same-storage-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
ROUNDS=1 COUNT=200 SECS=0.05 SIZE_MIB=8 \
  "$src/bench/same_storage.sh" shm "$build" "$out" >"$out/log" 2>&1 ||
  { cat "$out/log"; exit 1; }
python3 - "$out/same_storage_shm.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = {f"{e}_{op}" for e in ("qcow2", "raw", "fio_libpmem") for op in ("write", "read")}
want |= {f"daxstore_{op}_{t}" for op in ("write", "read") for t in ("1t", "2t")}
got = r["rounds"][0]
assert set(got) == want, f"figures {sorted(got)} != {sorted(want)}"
bad = [k for k, v in got.items() if not v > 0]
assert not bad, f"no I/O measured for {bad}"
assert r["mapping"]["granularity"] == "cache-line", r["mapping"]
print("same_storage_smoke: ok,", len(got), "figures")
PY
