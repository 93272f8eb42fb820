#!/usr/bin/env bash
# Check that every tracked C file is formatted as .clang-format says.
# `tools/format-check.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null || find persist bindings host plugins examples -name '*.[ch]')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "tools/format-check.sh: $f is not formatted (run tools/format-check.sh --fix)"
    bad=1
  fi
done
exit $bad
