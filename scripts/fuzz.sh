#!/usr/bin/env bash
# Runs the libFuzzer targets of a fuzzing build (-DDAXSTORE_BUILD_FUZZ=ON,
# clang) side by side, each from the GoogleTest drivers' inputs as a seed
# corpus kept in BUILD/corpus/, for SECONDS each (default 20). A crash
# leaves its input in BUILD/artifacts/ and fails the run.
#   scripts/fuzz.sh BUILD [SECONDS]
set -euo pipefail
build=${1:?usage: scripts/fuzz.sh BUILD [SECONDS]}
seconds=${2:-20}
for t in image vhost rbd_diff; do
  [[ -x $build/tests/${t}_fuzzer ]] || {
    echo "fuzz: no $build/tests/${t}_fuzzer: configure with CC=clang" \
      "CXX=clang++ -DDAXSTORE_BUILD_FUZZ=ON and build it" >&2
    exit 2
  }
  mkdir -p "$build/corpus/$t" "$build/artifacts"
  [[ -n $(ls -A "$build/corpus/$t") ]] ||
    "$build/tests/fuzz_seeds" "$t" "$build/corpus/$t"
done
pids=()
for t in image vhost rbd_diff; do
  nice -n 10 "$build/tests/${t}_fuzzer" -max_total_time="$seconds" \
    -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 \
    "$build/corpus/$t" >"$build/fuzz-$t.log" 2>&1 &
  pids+=($!)
done
rc=0
targets=(image vhost rbd_diff)
for i in 0 1 2; do
  t=${targets[$i]}
  log=$build/fuzz-$t.log
  if wait "${pids[$i]}"; then
    runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log")
    echo "fuzz: $t: ${runs:-?} inputs in ${seconds}s, no crash;" \
      "corpus $(ls "$build/corpus/$t" | wc -l) inputs"
  else
    echo "fuzz: $t FAILED; see $log and $build/artifacts/" >&2
    tail -n 30 "$log" >&2
    rc=1
  fi
done
exit $rc
