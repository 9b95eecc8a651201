#!/usr/bin/env bash
# A/B of two builds on one paired benchmark, the builds taking turns.
#   bench/ab.sh OLD_BUILD NEW_BUILD BENCH FILTER [ROUNDS]
# e.g. bench/ab.sh ../old/build build capi_bench paired/read 3
#
# On this kind of shared VM one process of a binary can measure 0.1 away
# from the next, so a single before/after pair says little. Here each
# round runs OLD then NEW (five repetitions each) and prints the median
# `ratio` counter of every row; compare the spread of the two columns over
# the rounds. Each build runs against its own libdaxstore (the binaries'
# RUNPATH). An old build: `git worktree add ../old REV`, then configure
# and build BENCH there as scripts/setup.sh does.
set -euo pipefail
if (($# < 4)); then
  echo "usage: bench/ab.sh OLD_BUILD NEW_BUILD BENCH FILTER [ROUNDS]" >&2
  exit 2
fi
old=$1 new=$2 bench=$3 filter=$4 rounds=${5:-3}
for b in "$old" "$new"; do
  if [[ ! -x $b/bench/$bench ]]; then
    echo "ab.sh: $b/bench/$bench is not built" >&2
    exit 1
  fi
done
medians() {
  "$1/bench/$bench" --benchmark_filter="$filter" \
    --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    2>/dev/null | awk '/_median/ {
      for (i = 1; i <= NF; i++) if ($i ~ /^ratio=/) r = substr($i, 7);
      sub(/_median$/, "", $1); printf "  %s %.3f", $1, r }'
}
for ((i = 1; i <= rounds; i++)); do
  echo "round $i old:$(medians "$old")"
  echo "round $i new:$(medians "$new")"
done
