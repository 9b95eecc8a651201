#!/usr/bin/env bash
# The main job on the embedded default: emulated pmem, no hardware needed.
set -euo pipefail
build=${1:-build}
cli="$build/tools/daxstore"
work=${DAXSTORE_DEMO_DIR:-/var/tmp/daxstore-demo}
mkdir -p "$work"
echo "== a file declared to be pmem (ADR: cache lines must be flushed)"
"$cli" map info "$work/emulated.img" --size 64M --emulate memory_controller
echo "== the same on eADR (stores durable once fenced)"
"$cli" map info "$work/emulated-eadr.img" --size 64M --emulate cpu_cache
echo "== an ordinary file on this machine's disk"
"$cli" map info "$work/plain.img" --size 64M
echo "== durable writes: emulated pmem mapping vs pwrite+fdatasync on disk"
"$cli" bench persist "$work/emulated.img" --emulate memory_controller \
  --compare-file "$work/pagecache.dat"
rm -f "$work"/*.img

bus="$work/bus"
ns=("$cli" --bus emulated --emulated-dir "$bus")
"${ns[@]}" emulate destroy -f 2>/dev/null || true
echo "== an emulated NVDIMM bus: 2 regions of 2 GiB, 2 DIMMs each"
"${ns[@]}" emulate create --regions 2 --dimms-per-region 2 --size 2G \
  --persistence memory_controller
echo "== namespaces in every mode"
"${ns[@]}" create-namespace -r region0 -m fsdax -s 1G -n demo-fsdax
"${ns[@]}" create-namespace -r region0 -m sector -s 512M -n demo-sector
"${ns[@]}" create-namespace -r region1 -m devdax -s 50% -n demo-devdax
"${ns[@]}" create-namespace -r region1 -m raw -s 512M -n demo-raw
echo "== a size that does not fit the interleave: daxstore says what would"
"${ns[@]}" create-namespace -r region0 -m fsdax -s 100M || true
echo "== list, as ndctl would print it, and as a table"
"${ns[@]}" list -RN -u
"${ns[@]}" list -RN --table
echo "== map the devdax namespace's device through the mapping layer"
"$cli" map info "$bus/region1/dax1.0" --emulate memory_controller
echo "== system-ram and back"
"${ns[@]}" reconfigure-device -m system-ram dax1.0
"${ns[@]}" reconfigure-device -f -m devdax dax1.0
"${ns[@]}" emulate destroy -f
