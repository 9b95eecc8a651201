#!/bin/sh
# Builds examples/rust/main.rs with plain rustc against the built
# libdaxstore.so and runs it. Exits 77 (skip) only when rustc is missing.
set -eu
src=$1 libdir=$2 work=$3
if ! command -v rustc >/dev/null 2>&1; then
  echo "rust example skipped: rustc not found (apt-get install rustc)"
  exit 77
fi
mkdir -p "$work"
rustc --edition 2021 -O -o "$work/rust_example" "$src" \
  -L "native=$libdir" -l dylib=daxstore -C "link-args=-Wl,-rpath,$libdir"
rm -f "$work/rust.img"
exec "$work/rust_example" "$work/rust.img"
