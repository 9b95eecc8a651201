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
# "daxstore_pmem": the same image declared pmem, emulate=memory_controller;
# "daxstore_serial" and "daxstore_parallel": the plugin with threads=serial
# or threads=parallel, each on an image of its own), SERVERS (fresh: a new
# nbdkit per run, the default; long: one nbdkit per export for the whole
# run; see fio_nbd), JOB (the timed fio options, default the 4 KiB
# randwrite, fsync=1, iodepth 1 job below; e.g. add --iodepth=16, or
# --numjobs=4 --group_reporting: each fio job is a connection of its own).
set -eu
dir=$1 out=$2 rounds=$3 cli=$4 plugin=$5 file_plugin=$6
size=${SIZE_MIB:-64} secs=${SECS:-3} exports=${EXPORTS:-daxstore file}
servers=${SERVERS:-fresh}
job=${JOB:---rw=randwrite --bs=4k --fsync=1 --iodepth=1}
mkdir -p "$out"
grep -c ^processor /proc/cpuinfo >"$out/cpus"
echo "$exports" >"$out/exports"
echo "$servers" >"$out/servers"
echo "$job" >"$out/job"

# What the mapping layer makes of this storage (MAP_SYNC, msync, memory
# only, emulated).
"$cli" map info "$dir/probe" --size 4M >"$out/map-info.json"
rm -f "$dir/probe"
"$cli" image create "$dir/image.img" --size "${size}M" >/dev/null
truncate -s "${size}M" "$dir/file.raw"
for e in $exports; do
  case $e in
    daxstore_serial | daxstore_parallel)
      "$cli" image create "$dir/$e.img" --size "${size}M" >/dev/null ;;
  esac
done

# export_args EXPORT: the nbdkit plugin and parameters that serve EXPORT.
export_args() {
  case $1 in
    daxstore) echo "$plugin image=$dir/image.img" ;;
    daxstore_pmem) echo "$plugin image=$dir/image.img emulate=memory_controller" ;;
    daxstore_serial) echo "$plugin image=$dir/$1.img threads=serial" ;;
    daxstore_parallel) echo "$plugin image=$dir/$1.img threads=parallel" ;;
    file) echo "$file_plugin file=$dir/file.raw" ;;
    memory) echo "memory size=${size}M" ;;
    *) echo "nbd_fio_guest_measure: unknown export $1" >&2; exit 2 ;;
  esac
}

# fio_nbd EXPORT OUT_FILE FIO_OPTIONS: fio against EXPORT; the server's
# /proc stat goes to OUT_FILE.stat (and, for a long-lived server, the one
# from before fio to OUT_FILE.stat0): its own CPU time and page faults
# (fio's are not in them), less sensitive than IOPS to what else the
# machine runs.
#  SERVERS=fresh (default): a new nbdkit per run, on a private socket, fio
#   under nbdkit --run. (--run forks: the parent runs the command, the
#   child serves; the server is the shell's sibling named nbdkit.)
#  SERVERS=long: one nbdkit per export for the whole run (as a VM's
#   server lives), started before the fill; fio connects to its socket.
fio_nbd() {
  if [ "$servers" = long ]; then
    pid=$(cat "$dir/$1.pid")
    cat "/proc/$pid/stat" >"$2.stat0"
    fio --name="$1" --ioengine=nbd --uri="nbd+unix:///?socket=$dir/$1.sock" \
      --size="${size}M" $3 --output-format=json >"$2"
    cat "/proc/$pid/stat" >"$2.stat"
    return
  fi
  # shellcheck disable=SC2046,SC2086
  nbdkit -U - $(export_args "$1") --run "fio --name=$1 --ioengine=nbd \
    --uri=\"\$uri\" --size=${size}M $3 --output-format=json >'$2' &&
    for c in \$(cat /proc/\$PPID/task/*/children); do
      if [ \"\$(cat /proc/\$c/comm)\" = nbdkit ]; then cat /proc/\$c/stat; fi
    done >'$2.stat'"
}

if [ "$servers" = long ]; then
  for e in $exports; do
    # shellcheck disable=SC2046
    # Sockets beside the files: OUT_DIR may be a 9p share (the guest's).
    nbdkit -f -U "$dir/$e.sock" -P "$dir/$e.pid" $(export_args "$e") &
  done
  trap 'for e in $exports; do kill "$(cat "$dir/$e.pid")"; done; wait' EXIT
  for e in $exports; do
    n=0
    until [ -S "$dir/$e.sock" ] && [ -s "$dir/$e.pid" ]; do
      n=$((n + 1))
      [ "$n" -lt 300 ] || { echo "nbdkit for $e did not start" >&2; exit 1; }
      sleep 0.1 2>/dev/null || sleep 1
    done
  done
fi

# Write every block once, so the timed writes overwrite allocated space in
# each (the images' blocks and the raw file's pages or extents).
for e in $exports; do
  [ "$e" = memory ] || [ "$e" = daxstore_pmem ] ||
    fio_nbd "$e" "$out/fill-$e.json" "--rw=write --bs=1M --end_fsync=1"
done

r=1
order=$exports
while [ "$r" -le "$rounds" ]; do
  rd=$out/round$r
  mkdir -p "$rd"
  echo "nbd_fio_guest: round $r of $rounds ($order) in $dir"
  for e in $order; do
    fio_nbd "$e" "$rd/$e.json" "$job --time_based --runtime=$secs"
  done
  # Rotate: the first export goes last next round.
  case $order in *" "*) order="${order#* } ${order%% *}" ;; esac
  r=$((r + 1))
done
