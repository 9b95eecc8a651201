#!/usr/bin/env bash
# Downtime and total time of a live migration, QEMU to QEMU on this host,
# of a TCG guest that writes (fsync'd 32 KiB batches) all the while: the
# test tests/e2e/guest_migrate.sh, run ROUNDS times for each disk
# (vhost-user, nbd, vhost-user-mirror: two hosts) and each guest size
# (the guest's RAM and its disk image: 256M, 1G), every run checked as the test checks it (each
# acknowledged batch in the image the VM ended on). The figures are what
# QEMU's query-migrate reports: downtime (source paused to destination
# running) and total-time, in ms; for nbd also the time from
# blockdev-mirror to the mirror's "ready" (before the migrate command, so
# not in total-time).
#
#   bench/migrate.sh [BUILD_DIR]
#
# Prints a Markdown table of the median and the range of each figure.
# Env: ROUNDS (3), SIZES ("256M 1G"), DISKS ("vhost-user nbd vhost-user-mirror"),
# KERNEL_CACHE (the kernel tier's cache, /var/cache/daxstore-kernel).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
rounds=${ROUNDS:-3}
die() { echo "migrate: $*" >&2; exit 1; }
[[ -x $build/tools/daxstore ]] || die "no $build/tools/daxstore; build first"
[[ -f $build/plugins/nbdkit/nbdkit-daxstore-plugin.so ]] ||
  die "no nbdkit plugin in $build; build the nbdkit_daxstore_plugin target"
export DAXSTORE=$build/tools/daxstore
export MKINITRAMFS=$here/../emulation/kernel/mkinitramfs
export QMP=$here/../tests/e2e/qmp.py
export KERNEL_CACHE=${KERNEL_CACHE:-/var/cache/daxstore-kernel}
"$here/../emulation/kernel/fetch-kernel" --cache "$KERNEL_CACHE" >/dev/null ||
  die "no kernel: the kernel tier could not fetch Debian's kernel"
log=$(mktemp "${TMPDIR:-/tmp}/daxstore-migrate-bench.XXXXXX")
trap 'rm -f "$log"' EXIT

# stats V...: "median (min-max)" of integers.
stats() {
  printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1}
    END {printf "%d (%d-%d)", v[int((NR + 1) / 2)], v[1], v[NR]}'
}
echo "| disk | guest RAM and image | mirror until ready, ms | downtime, ms | total, ms | rounds |"
echo "| --- | --- | --- | --- | --- | --- |"
for disk in ${DISKS:-vhost-user nbd vhost-user-mirror}; do
  for size in ${SIZES:-256M 1G}; do
    downs=() totals=() mirrors=()
    for ((r = 1; r <= rounds; r++)); do
      MIGRATE_DISK=$disk MIGRATE_RAM=$size "$here/../tests/e2e/guest_migrate.sh" \
        >"$log" 2>&1 || { cat "$log" >&2; die "$disk $size round $r failed"; }
      line=$(grep '^migration completed:' "$log")
      downs+=("$(sed 's/.*downtime \([0-9]*\) ms.*/\1/' <<<"$line")")
      totals+=("$(sed 's/.*total \([0-9]*\) ms.*/\1/' <<<"$line")")
      ready=$(sed -n 's/^the mirror is ready after \([0-9]*\) ms.*/\1/p' "$log")
      [[ -z $ready ]] || mirrors+=("$ready")
    done
    mirror=-
    ((${#mirrors[@]} == 0)) || mirror=$(stats "${mirrors[@]}")
    echo "| $disk | $size | $mirror | $(stats "${downs[@]}") | $(stats "${totals[@]}") | $rounds |"
  done
done
