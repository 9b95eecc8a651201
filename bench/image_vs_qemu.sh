#!/usr/bin/env bash
# Durable 4 KiB writes (a flush after every write, queue depth 1): qemu-img
# bench on a qcow2 and a raw file vs the daxstore image through the C ABI,
# all in the same directory (default /dev/shm: DRAM, no pmem). Also
# fio --ioengine=libpmem on a file there. Writes JSON and a Markdown table.
#   bench/image_vs_qemu.sh [BUILD_DIR] [OUT_DIR] [DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../build}
out=${2:-$here/results}
dir=${3:-/dev/shm}
count=${COUNT:-50000}
mkdir -p "$out"
work=$(mktemp -d "$dir/daxstore-vs-qemu.XXXXXX")
trap 'rm -rf "$work"' EXIT

# qemu-img bench: IOPS = count / seconds. Sequential 4 KiB steps over 1 GiB
# (-S 4096 wraps), pattern written each time, flush after every write.
qemu_iops() {
  local fmt=$1 f=$work/disk.$1
  qemu-img create -q -f "$fmt" "$f" 1G
  qemu-img bench -q -f "$fmt" -w -c "$count" -d 1 -s 4096 -S 4096 \
    -t writeback --pattern=90 --flush-interval=1 "$f" >/dev/null
  local start end
  start=$(date +%s.%N)
  qemu-img bench -f "$fmt" -w -c "$count" -d 1 -s 4096 -S 4096 \
    -t writeback --pattern=91 --flush-interval=1 "$f" >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(int($count / ($end - $start)))"
}
qcow2=$(qemu_iops qcow2)
raw=$(qemu_iops raw)

# daxstore through the C ABI: pwrite + flush per 4 KiB, 1 thread.
"$build/bench/capi_bench" --pmem_dir="$work" \
  --benchmark_filter='BM_CapiWrite4KFlush/real_time/threads:1$' \
  --benchmark_min_time=0.5 --benchmark_format=json >"$work/capi.json"
dax=$(python3 -c "import json;b=json.load(open('$work/capi.json'))['benchmarks'][0];print(int(1e9/b['real_time']))")

# fio with the libpmem engine on a file in the same directory; libpmem is
# told the DRAM file is pmem (the same emulation as DAXSTORE_EMULATED_PMEM).
fio_iops=$(PMEM_IS_PMEM_FORCE=1 fio --name=pmem --ioengine=libpmem --filename="$work/fio.raw" \
  --size=256M --rw=randwrite --bs=4k --direct=1 --sync=1 --time_based \
  --runtime=3 --output-format=json 2>/dev/null |
  python3 -c "import json,sys;print(int(json.load(sys.stdin)['jobs'][0]['write']['iops']))")

python3 - "$out" "$qcow2" "$raw" "$dax" "$fio_iops" "$dir" <<'PY'
import json, sys
out, qcow2, raw, dax, fio, d = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
rows = [("qemu-img bench, qcow2 (flush every write)", qcow2),
        ("qemu-img bench, raw (flush every write)", raw),
        ("daxstore image, C ABI (pwrite + flush)", dax),
        ("fio libpmem randwrite 4k (sync)", fio)]
json.dump({"dir": d, "iops": dict(rows), "daxstore_vs_qcow2": dax / qcow2,
           "daxstore_vs_raw": dax / raw}, open(out + "/image_vs_qemu.json", "w"), indent=2)
with open(out + "/image_vs_qemu.md", "w") as f:
    f.write("| durable 4 KiB writes, QD1 | IOPS | daxstore is |\n|---|---:|---:|\n")
    for name, v in rows:
        f.write(f"| {name} | {v} | {dax / v:.1f}x |\n")
print(open(out + "/image_vs_qemu.md").read())
PY
