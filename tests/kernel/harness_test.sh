#!/usr/bin/env bash
# The harness itself: a guest command's exit status, output file and
# environment come back to the host, and a guest that runs too long is
# killed with status 124.
#   harness_test.sh RUN_IN_GUEST BUILD_DIR [CACHE_DIR]
set -uo pipefail
rig=$1 build=$2 cache=${3:-}
opts=(--build "$build" --memmap 64M)
[[ -n $cache ]] && opts+=(--cache "$cache")
results=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-harness.XXXXXX")
trap 'rm -rf "$results"' EXIT
fail() { echo "harness_test: $*" >&2; exit 1; }

"$rig" "${opts[@]}" --results "$results" --env GREETING='hello guest' -- \
  sh -c 'echo "$GREETING" >"$DAXSTORE_RESULTS_DIR/out.txt"; exit 7'
rc=$?
[[ $rc == 7 ]] || fail "the guest command exited 7, run-in-guest said $rc"
[[ $(cat "$results/out.txt" 2>/dev/null) == "hello guest" ]] ||
  fail "the results share did not bring back out.txt with the variable"

"$rig" "${opts[@]}" --timeout 3 -- sleep 600
rc=$?
[[ $rc == 124 ]] || fail "a guest past its timeout gave $rc, not 124"
echo "harness_test: status, results share, environment and timeout work"
