#!/bin/sh
# The kernel tier's guest side (busybox sh), started by run-in-guest in a
# guest with two 1 GiB NVDIMMs:
#
#   guest.sh suite              namespaces + file systems, then every
#                               kernel-tier test and the persist benchmark
#   guest.sh durability-write   the same set-up, then write and persist
#                               (the host then cuts the power)
#   guest.sh durability-verify  reuse the namespaces the labels kept, and
#                               check what the first boot persisted
#   guest.sh memmap             (guest booted with memmap=) the label-less
#                               namespace as devdax, fsdax + ext4 -o dax,
#                               then sector (BTT) + ext4
#   guest.sh run CMD [ARG...]   the layout below (made once: kept backing
#                               files keep it), then CMD with the
#                               DAXSTORE_TEST_* variables set
#
# Layout (the kernel names devices in creation order):
#   region0: namespace0.0 fsdax 512M -> /dev/pmem0    ext4 -o dax
#            namespace0.1 fsdax rest -> /dev/pmem0.1  ext4, no dax (control)
#   region1: namespace1.0 devdax 512M -> /dev/dax1.0
#            namespace1.1 fsdax rest -> /dev/pmem1.1  xfs -o dax
# Tests find them in DAXSTORE_TEST_EXT4_DAX_DIR (/mnt/ext4-dax),
# DAXSTORE_TEST_EXT4_DAX_DEV (/dev/pmem0), DAXSTORE_TEST_NODAX_DIR
# (/mnt/ext4-nodax), DAXSTORE_TEST_XFS_DAX_DIR (/mnt/xfs-dax),
# DAXSTORE_TEST_DEVDAX (/dev/dax1.0) and DAXSTORE_TEST_REGIONS (2); the
# memmap boot sets DAXSTORE_TEST_SECTOR_DIR for ext4 on BTT.
# Test binaries are relative to the build folder (the working directory);
# gtest XML and the benchmark's JSON go to $DAXSTORE_RESULTS_DIR.
set -u
mode=${1:-suite}
# Plain gtest output: the console is a tty, but it ends up in ctest's log.
[ "$mode" = run ] || export GTEST_COLOR=no
out=${DAXSTORE_RESULTS_DIR:-/tmp}
failed=0

die() {
  echo "guest.sh: $*"
  ndctl list -N -R 2>&1 | head -n 60
  exit 1
}

create() {
  # create REGION MODE [SIZE]
  ndctl create-namespace -r "$1" -m "$2" ${3:+-s "$3"} >/dev/null 2>/tmp/ndctl.err ||
    die "ndctl create-namespace -r $1 -m $2 ${3:-} failed: $(cat /tmp/ndctl.err)"
}

need() { [ -e "$1" ] || die "$1 did not appear"; }

setup_namespaces() {
  create region0 fsdax 512M
  create region0 fsdax
  create region1 devdax 512M
  create region1 fsdax
  for d in /dev/pmem0 /dev/pmem0.1 /dev/dax1.0 /dev/pmem1.1; do need "$d"; done
  # 4 KiB blocks: DAX refuses ext4's 1 KiB default on small devices.
  mkfs.ext4 -q -F -b 4096 /dev/pmem0 || die "mkfs.ext4 /dev/pmem0 failed"
  mkfs.ext4 -q -F -b 4096 /dev/pmem0.1 || die "mkfs.ext4 /dev/pmem0.1 failed"
  mkfs.xfs -q -f -m reflink=0 /dev/pmem1.1 || die "mkfs.xfs /dev/pmem1.1 failed"
}

mount_all() {
  mkdir -p /mnt/ext4-dax /mnt/ext4-nodax /mnt/xfs-dax
  mount -t ext4 -o dax /dev/pmem0 /mnt/ext4-dax || die "mount -o dax pmem0"
  mount -t ext4 /dev/pmem0.1 /mnt/ext4-nodax || die "mount pmem0.1"
  mount -t xfs -o dax /dev/pmem1.1 /mnt/xfs-dax || die "mount -o dax pmem1.1"
  export DAXSTORE_TEST_EXT4_DAX_DIR=/mnt/ext4-dax
  export DAXSTORE_TEST_EXT4_DAX_DEV=/dev/pmem0
  export DAXSTORE_TEST_XFS_DAX_DIR=/mnt/xfs-dax
  export DAXSTORE_TEST_NODAX_DIR=/mnt/ext4-nodax
  export DAXSTORE_TEST_DEVDAX=/dev/dax1.0
  export DAXSTORE_TEST_REGIONS=2
}

# run NAME BINARY [ARGS...]: one gtest binary, its XML kept.
run() {
  name=$1
  shift
  echo "== $name"
  "$@" --gtest_output="xml:$out/$name.xml" || failed=1
}

case $mode in
  suite)
    setup_namespaces
    mount_all
    run kernel_test tests/kernel/kernel_test \
      --gtest_filter=-KernelDurability.*:KernelSector.*
    # The unit suites again, now with real DAX file systems beside them.
    DAXSTORE_TEST_DAX_DIR=/mnt/ext4-dax run mapping_test_ext4 tests/mapping_test
    DAXSTORE_TEST_DAX_DIR=/mnt/xfs-dax run mapping_test_xfs tests/mapping_test \
      --gtest_filter=Granularity.MapSyncOnADaxFileIsCacheLine
    # The heap on a real DAX file and on the whole device-DAX device.
    DAXSTORE_TEST_DAX_DIR=/mnt/ext4-dax run heap_test tests/heap_test \
      --gtest_filter='*/DaxFile:*/DeviceDax'
    echo "== bench persist (TCG-emulated pmem: only ratios mean anything)"
    {
      printf '{"environment": "QEMU TCG, emulated NVDIMM, kernel %s; ' "$(uname -r)"
      printf 'figures are emulated, only ratios mean anything",\n"result": '
      tools/daxstore bench persist /mnt/ext4-dax/bench.img --size 64M \
        --compare-file /mnt/ext4-nodax/bench.dat || failed=1
      printf '}\n'
    } >"$out/bench-persist.json"
    cat "$out/bench-persist.json"
    ;;
  run)
    shift
    [ $# -gt 0 ] || die "run needs a command"
    if [ ! -e /dev/pmem0 ] || [ ! -e /dev/dax1.0 ]; then setup_namespaces; fi
    mount_all
    export DAXSTORE_TEST_DAX_DIR=/mnt/ext4-dax
    "$@"
    exit $?
    ;;
  durability-write)
    setup_namespaces
    mount_all
    run durability_write tests/kernel/kernel_test \
      --gtest_filter=KernelDurability.WriteBeforePowerCut
    ;;
  durability-verify)
    for d in /dev/pmem0 /dev/pmem0.1 /dev/dax1.0 /dev/pmem1.1; do need "$d"; done
    mount_all
    # Proof that the first boot ended without a clean unmount.
    dmesg | grep -q 'EXT4-fs (pmem0): recovery complete' ||
      die "ext4 on pmem0 needed no journal recovery: was the power really cut?"
    run durability_verify tests/kernel/kernel_test \
      --gtest_filter=KernelDurability.VerifyAfterReboot
    ;;
  memmap)
    need /dev/pmem0
    ndctl list --buses | grep -q '"provider":"e820"' ||
      die "no e820 bus: is the guest booted with memmap=?"
    # Label-less: only a reconfiguration of the whole namespace works.
    if ndctl create-namespace -r region0 -s 128M >/dev/null 2>&1; then
      die "sub-dividing a label-less region unexpectedly worked"
    fi
    ndctl create-namespace -f -e namespace0.0 -m devdax >/dev/null ||
      die "reconfiguring namespace0.0 to devdax failed"
    need /dev/dax0.0
    tools/daxstore map info /dev/dax0.0 || failed=1
    DAXSTORE_TEST_DEVDAX=/dev/dax0.0 run memmap_devdax tests/kernel/kernel_test \
      --gtest_filter=KernelDeviceDax.*
    ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null ||
      die "reconfiguring namespace0.0 to fsdax failed"
    need /dev/pmem0
    mkfs.ext4 -q -F -b 4096 /dev/pmem0 || die "mkfs.ext4 /dev/pmem0 failed"
    mkdir -p /mnt/ext4-dax
    mount -t ext4 -o dax /dev/pmem0 /mnt/ext4-dax || die "mount -o dax pmem0"
    DAXSTORE_TEST_EXT4_DAX_DIR=/mnt/ext4-dax run memmap_fsdax \
      tests/kernel/kernel_test --gtest_filter=KernelDaxFile.Ext4WithDaxIsCacheLine
    umount /mnt/ext4-dax
    ndctl create-namespace -f -e namespace0.0 -m sector >/dev/null ||
      die "reconfiguring namespace0.0 to sector failed"
    need /dev/pmem0s
    mkfs.ext4 -q -F -b 4096 /dev/pmem0s || die "mkfs.ext4 /dev/pmem0s failed"
    mkdir -p /mnt/ext4-btt
    if mount -t ext4 -o dax /dev/pmem0s /mnt/ext4-btt 2>/dev/null; then
      die "mount -o dax on a sector-mode namespace unexpectedly worked"
    fi
    mount -t ext4 /dev/pmem0s /mnt/ext4-btt || die "mount pmem0s"
    DAXSTORE_TEST_SECTOR_DIR=/mnt/ext4-btt run memmap_sector \
      tests/kernel/kernel_test --gtest_filter=KernelSector.*
    ;;
  *)
    die "unknown mode $mode (suite, durability-write, durability-verify, memmap, run)"
    ;;
esac
exit "$failed"
