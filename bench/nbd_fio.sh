#!/usr/bin/env bash
# fio over NBD: 4 KiB random writes, a flush after each (fsync=1), through
# the daxstore plugin and through nbdkit's own file plugin, on files in the
# same directory, in the same run. Prints a Markdown table.
#   bench/nbd_fio.sh BUILD_DIR [DIR] [SIZE_MIB] [SECONDS]
set -euo pipefail
build=${1:?usage: bench/nbd_fio.sh BUILD_DIR [DIR] [SIZE_MIB] [SECONDS]}
dir=${2:-/dev/shm}
size=${3:-256}
secs=${4:-10}
plugin=$build/plugins/nbdkit/nbdkit-daxstore-plugin.so
work=$(mktemp -d "$dir/daxstore-nbd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$build/tools/daxstore" image create "$work/img" --size "${size}M" >/dev/null
truncate -s "${size}M" "$work/raw"

run() {  # run NAME PLUGIN ARGS...: prints "NAME iops p99_usec"
  local name=$1
  shift
  nbdkit -U - "$@" --run "fio --name=$name --ioengine=nbd --uri=\"\$uri\" \
    --rw=randwrite --bs=4k --fsync=1 --iodepth=1 --size=${size}M \
    --time_based --runtime=$secs --output-format=json" >"$work/$name.json"
  python3 - "$name" "$work/$name.json" <<'PY'
import json, sys
text = open(sys.argv[2]).read()
j = json.loads(text[text.index("{"):])["jobs"][0]["write"]
p99 = j["clat_ns"]["percentile"]["99.000000"] / 1000
print(f"| {sys.argv[1]} | {j['iops']:.0f} | {j['bw'] / 1024:.1f} | {p99:.1f} |")
PY
}

echo "fio nbd, 4k randwrite, fsync=1, iodepth 1, ${size} MiB, ${secs} s, in $dir"
echo "| plugin | IOPS | MiB/s | p99 write latency (us) |"
echo "| --- | --- | --- | --- |"
# A file on tmpfs or disk stands in for pmem here: the image is declared
# emulated pmem (flushed by cache line, as on a DAX file with MAP_SYNC);
# daxstore_msync shows the same image through the page cache (msync per
# write), what an ordinary file gets.
run daxstore "$plugin" image="$work/img" emulate=memory_controller
run daxstore_msync "$plugin" image="$work/img"
run file file "$work/raw"
