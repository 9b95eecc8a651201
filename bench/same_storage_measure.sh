#!/bin/sh
# One side-by-side round of durable 4 KiB I/O on the file system that holds
# DIR: qemu-img bench on a qcow2 and a raw file (a flush after every write),
# the daxstore image through the C ABI (image_storage_bench) and fio's
# libpmem engine. Plain POSIX sh: it also runs in the kernel-tier guest,
# which has busybox, not bash. Raw outputs only; bench/same_storage.sh
# turns them into figures.
#   same_storage_measure.sh DIR OUT_DIR ROUNDS BENCH DAXSTORE_CLI [emulate]
# Env: SIZE_MIB (64), COUNT (qemu-img requests, 2000), SECS (fio and
# Google Benchmark seconds per figure, 1).
set -eu
dir=$1 out=$2 rounds=$3 bench=$4 cli=$5 emulate=${6:-}
size=${SIZE_MIB:-64} count=${COUNT:-2000} secs=${SECS:-1}
ms=$(awk -v s="$secs" 'BEGIN {printf "%d", s * 1000}')
# qemu-img bench only steps through the disk; a stride of 7919 blocks (a
# prime, so every block of a power-of-two disk is visited before a repeat)
# wraps around the disk and scatters the offsets like random I/O.
step=$((4096 * 7919))
mkdir -p "$out"

map_opts=''
[ -z "$emulate" ] || map_opts='--emulate memory_controller'
# What the mapping layer makes of this storage (MAP_SYNC, msync, emulated).
# shellcheck disable=SC2086
"$cli" map info "$dir/probe" --size 4M $map_opts >"$out/map-info.json"
rm -f "$dir/probe"

qemu_round() {  # qemu_round FMT ROUND_DIR
  f=$dir/qemu.$1
  qemu-img create -q -f "$1" "$f" "${size}M"
  # Fill every block first, so the timed writes overwrite allocated space
  # (the daxstore image is filled the same way).
  qemu-img bench -w -f "$1" -c "$size" -s 1M -t writeback --pattern=1 \
    "$f" >/dev/null
  qemu-img bench -w -f "$1" -c "$count" -d 1 -s 4096 -S "$step" \
    -t writeback --flush-interval=1 --pattern=2 "$f" >"$2/qemu-$1-write.txt"
  qemu-img bench -f "$1" -c "$count" -d 1 -s 4096 -S "$step" \
    -t writeback "$f" >"$2/qemu-$1-read.txt"
  rm -f "$f"
}

fio_round() {  # fio_round RW ROUND_DIR
  # libpmem decides pmem itself: true on a MAP_SYNC mapping of a DAX file;
  # a file declared emulated pmem gets the same promise from
  # PMEM_IS_PMEM_FORCE. On other files the engine refuses to run; the
  # report then says n/a.
  if [ -n "$emulate" ]; then export PMEM_IS_PMEM_FORCE=1; fi
  fio --name="$1" --ioengine=libpmem --filename="$dir/fio.file" \
    --size="${size}M" --rw="$1" --bs=4k --direct=1 --sync=1 --time_based \
    --runtime="${ms}ms" --output-format=json >"$2/fio-$1.json" 2>"$2/fio-$1.err" ||
    echo "same_storage: fio $1 failed: $(head -n1 "$2/fio-$1.err")" >&2
  unset PMEM_IS_PMEM_FORCE
}

r=1
while [ "$r" -le "$rounds" ]; do
  rd=$out/round$r
  mkdir -p "$rd"
  echo "same_storage: round $r of $rounds in $dir"
  qemu_round qcow2 "$rd"
  qemu_round raw "$rd"
  # shellcheck disable=SC2086
  "$bench" --dir="$dir" --size_mib="$size" ${emulate:+--emulate} \
    --benchmark_min_time="$secs" --benchmark_format=json \
    --benchmark_out="$rd/daxstore.json" >/dev/null
  fio_round randwrite "$rd"
  fio_round randread "$rd"
  rm -f "$dir/fio.file"
  r=$((r + 1))
done
