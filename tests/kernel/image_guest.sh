#!/bin/sh
# Guest side of kernel.image_durability (busybox sh, run through
# `guest.sh run`, working directory the build folder):
#   image_guest.sh write    images on /dev/dax1.0 (after a benchmark wrote
#                           on it: refused without --force), on a file on
#                           ext4 -o dax (MAP_SYNC, cache-line flushes) and
#                           on a file on ext4 without dax (page cache,
#                           msync); import a random pattern (acknowledged),
#                           record its checksum, then start re-importing it
#                           over and over and return while those streams
#                           write (the host cuts the power)
#   image_guest.sh verify   open read-write (recovery; a read-only check
#                           refuses an image that needs it), check clean,
#                           export, compare
set -u
mode=$1
cli=tools/daxstore
res=${DAXSTORE_RESULTS_DIR:?}
targets="/dev/dax1.0 /mnt/ext4-dax/disk.img /mnt/ext4-nodax/disk.img"
fail() {
  echo "image_guest: $*"
  exit 1
}
case $mode in
  write)
    dd if=/dev/urandom of=/tmp/p.raw bs=1M count=4 2>/dev/null
    md5sum </tmp/p.raw | cut -d' ' -f1 >"$res/image.md5"
    # A device that holds data (a benchmark's bytes) is not formatted
    # without --force; with it, it is.
    $cli bench persist /dev/dax1.0 --seconds 0.01 --compare-file /tmp/cmp \
      >/dev/null || fail "bench persist on /dev/dax1.0"
    if $cli image create /dev/dax1.0 --size 16M >/dev/null 2>/tmp/err; then
      fail "image create over data on /dev/dax1.0 succeeded"
    fi
    grep -q "holds data that is not a daxstore image" /tmp/err ||
      fail "image create over data on /dev/dax1.0: $(cat /tmp/err)"
    for t in $targets; do
      $cli image create --force "$t" --size 16M >/dev/null || fail "create $t"
      $cli image import /tmp/p.raw "$t" >/dev/null || fail "import $t"
    done
    sync "$res/image.md5"
    # The mid-stream writes: same bytes again, out of place, so every block
    # reads the pattern whichever copy the power cut leaves. In a loop, so
    # the cut lands inside a stream (one import takes well under a second).
    for t in $targets; do
      (while :; do $cli image import --force /tmp/p.raw "$t"; done) \
        >/dev/null 2>&1 &
    done
    sleep 1
    echo "image_guest: write done, streams running"
    ;;
  verify)
    want=$(cat "$res/image.md5")
    for t in $targets; do
      # Cut inside an import, the image holds redo records: a read-only
      # check says to recover (between two imports it holds none).
      if ! $cli image check "$t" >/dev/null 2>/tmp/err; then
        grep -q "needs crash recovery" /tmp/err ||
          fail "$t: read-only check: $(cat /tmp/err)"
        echo "image_guest: $t needed recovery"
      fi
      # Recovery (read-write open) must leave nothing to repair.
      $cli image check --repair=leaks "$t" >/tmp/check.json ||
        fail "check --repair=leaks $t: $(cat /tmp/check.json)"
      grep -q '"clean": true' /tmp/check.json || {
        cat /tmp/check.json
        fail "check $t not clean after the power cut"
      }
      $cli image check "$t" >/dev/null || fail "check $t after recovery"
      rm -f /tmp/out.raw
      $cli image export "$t" /tmp/out.raw >/dev/null || fail "export $t"
      got=$(head -c 4194304 /tmp/out.raw | md5sum | cut -d' ' -f1)
      [ "$got" = "$want" ] || fail "$t: data differs after the power cut"
      echo "image_guest: $t survived"
    done
    echo "image_guest: ok"
    ;;
  *) fail "unknown mode $mode (write, verify)" ;;
esac
