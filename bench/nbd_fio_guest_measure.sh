#!/bin/sh
# Rounds of fio over NBD on the file system that holds DIR: 4 KiB random
# writes with a flush after each (fsync=1, queue depth 1), through nbdkit
# with the daxstore plugin (an image) and with nbdkit's own file plugin (a
# raw file of the same size), the order rotating every round (two exports:
# AB, BA, AB, ...). Every export runs under the same nbdkit options (none
# beyond -U - and --run) and the same fio job. Plain POSIX sh: it runs on
# the host (bench/nbd_fio.sh) and in the kernel-tier guest (busybox). Raw
# outputs only; bench/nbd_fio_report.py turns them into figures.
#   nbd_fio_guest_measure.sh DIR OUT_DIR ROUNDS DAXSTORE_CLI PLUGIN FILE_PLUGIN
# PLUGIN and FILE_PLUGIN are paths: nbdkit loads a plugin by path.
# Env: SIZE_MIB (64), SECS (fio seconds per figure, 3), EXPORTS (the
# exports to rotate, default "daxstore file"; also "memory": nbdkit's
# memory plugin, no file and no flush, the transport alone; and
# "daxstore_pmem": the same image declared pmem, emulate=memory_controller).
set -eu
dir=$1 out=$2 rounds=$3 cli=$4 plugin=$5 file_plugin=$6
size=${SIZE_MIB:-64} secs=${SECS:-3} exports=${EXPORTS:-daxstore file}
mkdir -p "$out"
grep -c ^processor /proc/cpuinfo >"$out/cpus"
echo "$exports" >"$out/exports"

# What the mapping layer makes of this storage (MAP_SYNC, msync, memory
# only, emulated).
"$cli" map info "$dir/probe" --size 4M >"$out/map-info.json"
rm -f "$dir/probe"
"$cli" image create "$dir/image.img" --size "${size}M" >/dev/null
truncate -s "${size}M" "$dir/file.raw"

# fio_nbd EXPORT OUT_FILE FIO_OPTIONS: nbdkit serves EXPORT on a private
# socket and runs fio against it ($uri is set by nbdkit --run). Then the
# --run shell saves the server's /proc stat as OUT_FILE.stat: its own CPU
# time (fio's is not in it), less sensitive than IOPS to what else the
# machine runs. (nbdkit --run forks: the parent runs the command, the
# child serves; the server is the shell's sibling named nbdkit.)
fio_nbd() {
  case $1 in
    daxstore) export_args="$plugin image=$dir/image.img" ;;
    daxstore_pmem)
      export_args="$plugin image=$dir/image.img emulate=memory_controller" ;;
    file) export_args="$file_plugin file=$dir/file.raw" ;;
    memory) export_args="memory size=${size}M" ;;
    *) echo "nbd_fio_guest_measure: unknown export $1" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  nbdkit -U - $export_args --run "fio --name=$1 --ioengine=nbd \
    --uri=\"\$uri\" --size=${size}M $3 --output-format=json >'$2' &&
    for c in \$(cat /proc/\$PPID/task/*/children); do
      if [ \"\$(cat /proc/\$c/comm)\" = nbdkit ]; then cat /proc/\$c/stat; fi
    done >'$2.stat'"
}

# Write every block once, so the timed writes overwrite allocated space in
# both (the image's blocks and the raw file's pages or extents).
for e in daxstore file; do
  fio_nbd "$e" "$out/fill-$e.json" "--rw=write --bs=1M --end_fsync=1"
done

r=1
order=$exports
while [ "$r" -le "$rounds" ]; do
  rd=$out/round$r
  mkdir -p "$rd"
  echo "nbd_fio_guest: round $r of $rounds ($order) in $dir"
  for e in $order; do
    fio_nbd "$e" "$rd/$e.json" "--rw=randwrite --bs=4k --fsync=1 --iodepth=1 \
      --time_based --runtime=$secs"
  done
  # Rotate: the first export goes last next round.
  case $order in *" "*) order="${order#* } ${order%% *}" ;; esac
  r=$((r + 1))
done
