#!/usr/bin/env bash
# The NBD servers on pmem: fio --ioengine=nbd, 4 KiB random writes
# with a flush after each (fsync=1, queue depth 1), through nbdkit with the
# daxstore plugin and with nbdkit's own file plugin, both on ext4 -o dax on
# an fsdax namespace, in ONE kernel-tier guest (QEMU TCG, 1 vCPU by
# default, an emulated 1 GiB NVDIMM: every figure is TCG-emulated). The
# image is made with `daxstore image create` on that ext4, so it maps with
# MAP_SYNC; the file plugin's flush is an fdatasync on the same file
# system. ROUNDS rounds, alternating which export goes first; the figure
# is the median of the per-round ratios with a bootstrap interval.
#
#   bench/nbd_fio_guest.sh [BUILD_DIR] [OUT_DIR]
# Writes OUT_DIR/nbd_fio_guest.json and .md (default bench/results).
# Env: ROUNDS (3), SIZE_MIB (64), SECS (fio seconds per figure, 3),
# SERVERS (fresh or long, see nbd_fio_guest_measure.sh), SMP
# (guest vCPUs, 1; docs/benchmarks.md says why not 2), KERNEL_CACHE (the kernel
# tier's cache folder).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
out=${2:-$here/results}
rounds=${ROUNDS:-3} smp=${SMP:-1}
die() { echo "nbd_fio_guest: $*" >&2; exit 1; }
cli=$build/tools/daxstore
plugin=$build/plugins/nbdkit/nbdkit-daxstore-plugin.so
[[ -x $cli && -f $plugin ]] ||
  die "$cli or $plugin is missing; build first (ninja -C $build)"
for t in nbdkit fio; do
  command -v $t >/dev/null || die "$t is missing: apt-get install nbdkit fio"
done
nbdkit_bin=$(command -v nbdkit)
plugindir=$(nbdkit --dump-config | sed -n 's/^plugindir=//p')
file_plugin=$plugindir/nbdkit-file-plugin.so
[[ -f $file_plugin ]] || die "$file_plugin is missing: apt-get install nbdkit"
mkdir -p "$out"
measure=$here/nbd_fio_guest_measure.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-nbd-fio-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source=bench/fsdax_guest.sh
. "$here/fsdax_guest.sh"
fsdax_guest "$work" "$smp" 900 'SIZE_MIB SECS EXPORTS SERVERS' \
  "sh $measure /mnt/dax \$DAXSTORE_RESULTS_DIR/raw $rounds $cli $plugin $file_plugin" \
  "$measure" "$cli" "$plugin" "$nbdkit_bin" "$file_plugin" "$(command -v fio)" ||
  die "the guest run failed (exit $?)"
python3 "$here/nbd_fio_report.py" "$work/res/raw" "$out/nbd_fio_guest" \
  "kernel-tier guest (QEMU TCG, {cpus} vCPU(s), TCG-emulated): ext4 -o dax \
on an fsdax namespace of an emulated NVDIMM"
