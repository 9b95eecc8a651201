#!/usr/bin/env bash
# The main job on the embedded default: emulated pmem, no hardware needed.
set -euo pipefail
build=${1:-build}
cli="$build/tools/daxstore"
work=${DAXSTORE_DEMO_DIR:-/var/tmp/daxstore-demo}
mkdir -p "$work"
echo "== a file declared to be pmem (ADR: cache lines must be flushed)"
"$cli" map info "$work/emulated.img" --size 64M --emulate memory_controller
echo "== the same on eADR (stores durable once fenced)"
"$cli" map info "$work/emulated-eadr.img" --size 64M --emulate cpu_cache
echo "== an ordinary file on this machine's disk"
"$cli" map info "$work/plain.img" --size 64M
echo "== durable writes: emulated pmem mapping vs pwrite+fdatasync on disk"
"$cli" bench persist "$work/emulated.img" --emulate memory_controller \
  --compare-file "$work/pagecache.dat"
rm -f "$work"/*.img
