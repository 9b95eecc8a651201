#!/usr/bin/env bash
# Durable 4 KiB random writes (a flush after every write) and 4 KiB reads,
# queue depth 1, measured side by side ON ONE FILE SYSTEM: qemu-img bench
# on a qcow2 and a raw file, the daxstore image through the C ABI (1 and 2
# threads) and fio --ioengine=libpmem. Each round runs every engine once;
# ROUNDS rounds give the spread.
#
#   bench/same_storage.sh guest|shm|disk [BUILD_DIR] [OUT_DIR]
#     guest  a kernel-tier guest (QEMU TCG, 2 vCPUs): an emulated NVDIMM
#            with an fsdax namespace and ext4 -o dax; the image maps with
#            MAP_SYNC, qemu-img's flush is an fdatasync on that ext4
#     shm    files on /dev/shm (DRAM) declared emulated pmem; fdatasync is
#            free there
#     disk   files in /var/tmp on the VM's disk, nothing declared: the
#            image msyncs, qemu-img fdatasyncs, libpmem msyncs
#
# Writes OUT_DIR/same_storage_WHERE.json and .md (default bench/results).
# Env: ROUNDS (3), SIZE_MIB (64), COUNT (qemu-img requests, 2000), SECS (1),
# KERNEL_CACHE (the kernel tier's cache folder).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
where=${1:-}
build=$(cd "${2:-$here/../build}" && pwd)
out=${3:-$here/results}
rounds=${ROUNDS:-3}
die() { echo "same_storage: $*" >&2; exit 1; }
case $where in
  guest | shm | disk) ;;
  *) die "say where to measure: guest, shm or disk (see the head of $0)" ;;
esac
bench=$build/bench/image_storage_bench
cli=$build/tools/daxstore
[[ -x $bench && -x $cli ]] ||
  die "$bench or $cli is missing; build first (ninja -C $build)"
for t in qemu-img fio; do
  command -v $t >/dev/null || die "$t is missing: apt-get install qemu-utils fio"
done
mkdir -p "$out"
measure=$here/same_storage_measure.sh
work=''
cleanup() { [[ -z $work ]] || rm -rf "$work"; }
trap cleanup EXIT

case $where in
  shm | disk)
    base=/dev/shm emulate=emulate
    [[ $where == disk ]] && base=/var/tmp emulate=''
    work=$(mktemp -d "$base/daxstore-same-storage.XXXXXX")
    mkdir -p "$work/raw"
    sh "$measure" "$work" "$work/raw" "$rounds" "$bench" "$cli" $emulate
    raw=$work/raw
    ;;
  guest)
    work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-same-storage.XXXXXX")
    # shellcheck source=bench/fsdax_guest.sh
    . "$here/fsdax_guest.sh"
    fsdax_guest "$work" 2 1200 'SIZE_MIB COUNT SECS' \
      "sh $measure /mnt/dax \$DAXSTORE_RESULTS_DIR/raw $rounds $bench $cli" \
      "$measure" "$bench" "$cli" "$(command -v qemu-img)" "$(command -v fio)" ||
      die "the guest run failed (exit $?)"
    raw=$work/res/raw
    ;;
esac
python3 "$here/same_storage_report.py" "$raw" "$where" \
  "$out/same_storage_$where"
