#!/usr/bin/env bash
# Fails if any C/C++ source differs from .clang-format's layout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard \
  '*.cc' '*.h' '*.c' '*.cpp' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if clang-format --dry-run --Werror "${files[@]}"; then
  echo "format: ${#files[@]} files clean"
else
  echo "format: run 'clang-format -i' on the files above" >&2
  exit 1
fi
