#!/bin/sh
# Rounds of fio over NBD on the file system that holds DIR: 4 KiB random
# writes with a flush after each (fsync=1, queue depth 1), through nbdkit
# with the daxstore plugin (an image) and with nbdkit's own file plugin (a
# raw file of the same size), alternating which goes first. Plain POSIX sh:
# it runs in the kernel-tier guest (busybox). Raw outputs only;
# bench/nbd_fio_guest.sh turns them into figures.
#   nbd_fio_guest_measure.sh DIR OUT_DIR ROUNDS DAXSTORE_CLI PLUGIN FILE_PLUGIN
# PLUGIN and FILE_PLUGIN are paths: nbdkit loads a plugin by path.
# Env: SIZE_MIB (64), SECS (fio seconds per figure, 3).
set -eu
dir=$1 out=$2 rounds=$3 cli=$4 plugin=$5 file_plugin=$6
size=${SIZE_MIB:-64} secs=${SECS:-3}
mkdir -p "$out"
grep -c ^processor /proc/cpuinfo >"$out/cpus"

# What the mapping layer makes of this storage (MAP_SYNC, msync, emulated).
"$cli" map info "$dir/probe" --size 4M >"$out/map-info.json"
rm -f "$dir/probe"
"$cli" image create "$dir/image.img" --size "${size}M" >/dev/null
truncate -s "${size}M" "$dir/file.raw"

# fio_nbd EXPORT OUT_FILE FIO_OPTIONS: nbdkit serves EXPORT on a private
# socket and runs fio against it ($uri is set by nbdkit --run).
fio_nbd() {
  case $1 in
    daxstore) export_args="$plugin image=$dir/image.img" ;;
    file) export_args="$file_plugin file=$dir/file.raw" ;;
  esac
  # shellcheck disable=SC2086
  nbdkit -U - $export_args --run "fio --name=$1 --ioengine=nbd \
    --uri=\"\$uri\" --size=${size}M $3 --output-format=json" >"$2"
}

# Write every block once, so the timed writes overwrite allocated space in
# both (the image's blocks and the raw file's ext4 extents).
for e in daxstore file; do
  fio_nbd "$e" "$out/fill-$e.json" "--rw=write --bs=1M --end_fsync=1"
done

r=1
while [ "$r" -le "$rounds" ]; do
  rd=$out/round$r
  mkdir -p "$rd"
  order='daxstore file'
  [ $((r % 2)) -eq 1 ] || order='file daxstore'
  echo "nbd_fio_guest: round $r of $rounds ($order) in $dir"
  for e in $order; do
    fio_nbd "$e" "$rd/$e.json" "--rw=randwrite --bs=4k --fsync=1 --iodepth=1 \
      --time_based --runtime=$secs"
  done
  r=$((r + 1))
done
