#!/bin/sh
# The namespace manager on the real driver stack (guest side, busybox sh):
#
#   ns_guest.sh labels   two labelled 1 GiB NVDIMMs (--init-labels)
#   ns_guest.sh memmap   label-less memmap= pmem
#
# Runs the parameterised namespace suite on the kernel backend, then the
# daxstore-vs-ndctl agreement tests, then (labels) the missing-module
# errors, with dax_pmem and kmem unloaded in turn.
set -u
export GTEST_COLOR=no
out=${DAXSTORE_RESULTS_DIR:-/tmp}
topo=${1:-labels}
failed=0

run() {
  name=$1
  shift
  echo "== $name"
  "$@" --gtest_output="xml:$out/$name.xml" || failed=1
}

fail() {
  echo "ns_guest.sh: $*"
  failed=1
}

# expect_error WORDS CMD...: CMD fails and says WORDS.
expect_error() {
  words=$1
  shift
  if msg=$("$@" 2>&1); then
    fail "'$*' unexpectedly worked"
  else
    case $msg in
      *"$words"*) echo "ok: $*: $msg" ;;
      *) fail "'$*' said '$msg', not '$words'" ;;
    esac
  fi
}

DAXSTORE_TEST_KERNEL_BUS=1 run "ns_suite_$topo" tests/namespace_test \
  --gtest_filter='Backends/NamespaceSuite.*/kernel'
DAXSTORE_TEST_NS_AGREE=$topo run "ns_agree_$topo" tests/kernel/kernel_test \
  --gtest_filter='*KernelNsAgree*'

# without MOD CMD...: CMD with module MOD unloaded and its file hidden
# (libndctl and libdaxctl load a missing driver module on their own).
without() {
  mod=$1
  shift
  ko=$(modinfo -n "$mod") || { fail "no module $mod"; return; }
  mv "$ko" "$ko.hidden" && rmmod "$mod" || fail "cannot unload $mod"
  "$@"
  mv "$ko.hidden" "$ko"
  modprobe "$mod" || fail "cannot reload $mod"
}

if [ "$topo" = labels ]; then
  echo "== missing modules"
  ds="tools/daxstore --bus kernel"
  without dax_pmem expect_error \
    "the dax_pmem module is not loaded; run 'modprobe dax_pmem'" \
    $ds create-namespace -r region0 -s 256M -m devdax
  dev=$($ds create-namespace -r region0 -s 256M -m devdax |
    sed -n 's/.*"chardev": *"\([^"]*\)".*/\1/p')
  [ -n "$dev" ] || fail "no devdax namespace after modprobe dax_pmem"
  without kmem expect_error \
    "the kmem module is not loaded; run 'modprobe kmem'" \
    $ds reconfigure-device "$dev" -m system-ram
fi
exit "$failed"
