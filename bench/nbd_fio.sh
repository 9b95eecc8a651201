#!/usr/bin/env bash
# fio over NBD on the host: 4 KiB random writes, a flush after each
# (fsync=1, queue depth 1), through nbdkit with the daxstore plugin (an
# image, mapped as the storage allows: msync on a disk file, nothing on
# tmpfs) and with nbdkit's own file plugin (a raw file of the same size),
# on files in the same directory, in many short rounds, the order rotating
# (AB, BA, ...). The same measurement as the guest's
# (bench/nbd_fio_guest_measure.sh), the same report (bench/nbd_fio_report.py:
# the median per-round ratio with a bootstrap interval, IQR, sign test).
#   bench/nbd_fio.sh BUILD_DIR [DIR] [SIZE_MIB] [SECONDS]
# DIR: where the files live (default /dev/shm). SECONDS: fio seconds per
# export per round (default 2). Env: ROUNDS (20), EXPORTS ("daxstore file";
# add "memory" for nbdkit's memory plugin, the transport alone, or
# "daxstore_pmem" for the image declared pmem; "daxstore_serial" and
# "daxstore_parallel" for the plugin's two thread models, each on its own
# image), JOB (the timed fio options, see nbd_fio_guest_measure.sh),
# SERVERS (fresh: a new
# nbdkit per export per round, the default; long: one nbdkit per export
# for the whole run), OUT (output prefix, default
# bench/results/nbd_fio_host_FSTYPE[-long]).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage="usage: bench/nbd_fio.sh BUILD_DIR [DIR] [SIZE_MIB] [SECONDS]"
build=$(cd "${1:?$usage}" && pwd)
dir=${2:-/dev/shm}
export SIZE_MIB=${3:-256} SECS=${4:-2}
rounds=${ROUNDS:-20}
die() { echo "nbd_fio: $*" >&2; exit 1; }
cli=$build/tools/daxstore
plugin=$build/plugins/nbdkit/nbdkit-daxstore-plugin.so
[[ -x $cli && -f $plugin ]] ||
  die "$cli or $plugin is missing; build first (ninja -C $build)"
for t in nbdkit fio python3; do
  command -v $t >/dev/null || die "$t is missing: apt-get install $t"
done
plugindir=$(nbdkit --dump-config | sed -n 's/^plugindir=//p')
file_plugin=$plugindir/nbdkit-file-plugin.so
[[ -f $file_plugin ]] || die "$file_plugin is missing: apt-get install nbdkit"
[[ -d $dir ]] || die "$dir is not a directory"
fstype=$(df --output=fstype "$dir" | tail -1)
suffix=
[[ ${SERVERS:-fresh} == long ]] && suffix=-long
out=${OUT:-$here/results/nbd_fio_host_$fstype$suffix}
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$dir/daxstore-nbd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/files"

sh "$here/nbd_fio_guest_measure.sh" "$work/files" "$work/raw" "$rounds" \
  "$cli" "$plugin" "$file_plugin"
python3 "$here/nbd_fio_report.py" "$work/raw" "$out" \
  "host ({cpus} CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the \
end), $fstype ($dir), ${SIZE_MIB} MiB, ${SECS} s per export per round"
