#!/bin/sh
# slice_bench.sh - run bench/slice_bench.lua under the freshly built host.
# VEDHOST_BUILD: build dir (default ./build). BENCH_N: calls (default 1e6).
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${VEDHOST_BUILD:-$here/../build}
data=$(mktemp -d /tmp/vedhost_bench_XXXXXX)
trap 'rm -rf "$data"' EXIT
"$build/bin/vedhost" run --no-watch --handler-timeout 600000 \
  --data "$data/data" "$here/slice_bench.lua"
