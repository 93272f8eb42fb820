#!/usr/bin/env bash
# Every test: install deps, build with -Werror, run ctest (all labels, the
# slow crash loops included), then the same suites under ASan+UBSan (built
# at -O1, with smaller crash-loop and differential workloads:
# spec/CMakeLists.txt).
# Set VH_SKIP_SANITIZE=1 to skip the sanitizer pass while iterating.
# Last, a short libFuzzer run of every fuzz target (tools/fuzz.sh, 10 s
# each; VH_FUZZ_SECONDS changes it, VH_SKIP_FUZZ=1 skips it); it skips
# itself with a message when clang's libFuzzer runtime is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
bash tools/format-check.sh
bash tools/layer-check.sh
bash tools/build.sh build -DVH_WERROR=ON
# -j: as many tests at once as cores, the longest first (COST properties,
# CMakeLists.txt vh_test_costs); no test needs the machine to itself.
jobs=$(nproc)
(cd build && ctest --output-on-failure --timeout 600 -j"$jobs")
if [ "${VH_SKIP_SANITIZE:-0}" != 1 ]; then
  bash tools/build.sh build-asan -DVH_WERROR=ON -DVH_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
  (cd build-asan && ctest --output-on-failure --timeout 900 -j"$jobs")
fi
if [ "${VH_SKIP_FUZZ:-0}" != 1 ]; then
  bash tools/fuzz.sh "${VH_FUZZ_SECONDS:-10}"
fi
