#!/usr/bin/env bash
# Runs the pmem vs page-cache suite and writes JSON, a Markdown table and a
# plot into bench/results/ (or DIR).
#   bench/run.sh [BUILD_DIR] [OUT_DIR] [extra Google Benchmark flags...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../build}
out=${2:-$here/results}
shift $(( $# > 2 ? 2 : $# ))
mkdir -p "$out"
# Three repetitions; the report uses their median.
"$build/bench/daxstore_bench" --benchmark_min_time=0.2 \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/persist.json" --benchmark_out_format=json "$@"
python3 "$here/report.py" "$out/persist.json" --png "$out/persist.png" \
  --md "$out/persist.md"
