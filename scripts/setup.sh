#!/usr/bin/env bash
# daxstore set-up on Debian 12, as root. Idempotent.
#
#   scripts/setup.sh demo   install what is needed, build, and run the main
#                           job on the embedded default (emulated pmem)
#   scripts/setup.sh test   install what is needed, build, and run every test
#                           (format check, unit tests, ASan+UBSan, TSan,
#                           a short libFuzzer run, install test, kernel tier)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
mode=${1:-}
jobs=$(nproc)

# --- packages -----------------------------------------------------------
base_pkgs=(build-essential cmake ninja-build pkg-config git python3
  libpmem2-dev libpmem-dev libpmemobj-dev libpmemblk-dev libndctl-dev libdaxctl-dev
  nlohmann-json3-dev libcli11-dev libsystemd-dev libxml2-dev
  libxxhash-dev  # content hashes of image sharing/dedup
  libisal-dev    # CRC32C of data blocks in redo records
  libnbd-dev     # the NBD client of image mirror
  libgtest-dev libgmock-dev libbenchmark-dev
  ndctl daxctl pmdk-tools gnuplot-nox
  nbdkit nbdkit-plugin-dev libnbd-bin python3-libnbd jq  # NBD server, clients
  scdoc)  # renders the man pages (docs/man/)
# The kernel tier boots Debian's kernel in QEMU with an initramfs built from
# these (emulation/kernel/).
test_pkgs=(clang-format qemu-system-x86 qemu-system-common busybox-static kmod
  e2fsprogs xfsprogs cpio xz-utils binutils rustc qemu-utils fio
  libvirt-clients libxml2-utils  # virt-xml-validate checks vm-args --libvirt
  libvirt-daemon-driver-qemu     # virt-qemu-run boots it (no daemon)
  clang libclang-rt-14-dev       # the libFuzzer targets
  debhelper dpkg-dev systemd     # package.build: dpkg-buildpackage, systemd-analyze
  debootstrap                    # package.install: a fresh Debian 12 root
  man-db                         # man.pages renders every page with man
  ceph-mon ceph-osd ceph-common iproute2  # the ceph label: a Ceph cluster
  qemu-block-extra)              # QEMU's rbd driver (qemu-img convert to RBD)

install_pkgs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# Optimised builds keep line tables only (-g1): backtraces, perf and the
# sanitizers' reports still name files and lines, and these builds compile
# ~25% faster than with full debug info (-g), which CI's time needs.
opt=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")

# configure DIR [cmake args...]: configure once, then reuse.
configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
}

case "$mode" in
  demo)
    install_pkgs "${base_pkgs[@]}"
    configure build "${opt[@]}"
    cmake --build build -j "$jobs"
    exec scripts/demo.sh build
    ;;
  test)
    install_pkgs "${base_pkgs[@]}" "${test_pkgs[@]}"
    # Each phase's heading says how long the run has taken so far.
    phase() { echo "== $* (at ${SECONDS}s)"; }
    phase "format check"
    scripts/check-format.sh
    phase "ASan+UBSan build and tests"
    configure build-asan -DCMAKE_BUILD_TYPE=Debug \
      -DDAXSTORE_SANITIZE=address,undefined -DDAXSTORE_BUILD_BENCH=OFF
    cmake --build build-asan -j "$jobs"
    (cd build-asan && ctest -j "$jobs" --output-on-failure -LE "kernel|package|install|e2e")
    phase "TSan build and concurrent tests"
    configure build-tsan "${opt[@]}" \
      -DDAXSTORE_SANITIZE=thread -DDAXSTORE_BUILD_BENCH=OFF
    cmake --build build-tsan -j "$jobs" --target concurrent_tests
    (cd build-tsan && ctest -j "$jobs" --output-on-failure -R Concurrent)
    phase "libFuzzer targets (clang, ASan+UBSan): a short run of each"
    CC=clang CXX=clang++ configure build-fuzz "${opt[@]}" \
      -DDAXSTORE_BUILD_FUZZ=ON -DDAXSTORE_SANITIZE=address,undefined \
      -DDAXSTORE_BUILD_BENCH=OFF
    cmake --build build-fuzz -j "$jobs" --target image_fuzzer vhost_fuzzer rbd_diff_fuzzer fuzz_seeds
    scripts/fuzz.sh build-fuzz 20
    phase "release build and every test but package-install"
    configure build "${opt[@]}"
    cmake --build build -j "$jobs"
    # package-install downloads a Debian base system: by hand only.
    # The Ceph tests fail rather than skip when their cluster does not start:
    # the packages are installed above.
    (cd build && DAXSTORE_CEPH_REQUIRED=1 ctest -j "$jobs" --output-on-failure \
      -LE '^package-install$')
    phase "done"
    ;;
  *)
    echo "usage: scripts/setup.sh demo|test" >&2
    exit 2
    ;;
esac
