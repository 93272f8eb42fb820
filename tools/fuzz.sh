#!/usr/bin/env bash
# Build the fuzz targets (fuzz/) with clang + libFuzzer + ASan/UBSan into
# ./build-fuzz and run each for a while, starting from the saved corpus.
#
#   bash tools/fuzz.sh                 # every target, 30 s each
#   bash tools/fuzz.sh 600 node json   # these targets, 10 min each
#   VH_FUZZ_JOBS=2 bash tools/fuzz.sh 3600 export   # 2 processes
#
# New interesting inputs go to build-fuzz/corpus/<target>/ (not to the
# committed fuzz/corpus/, which stays small); a crash is written to
# build-fuzz/crashes/ and ends the run with a non-zero exit: fix it, then
# copy the file into fuzz/corpus/<target>/ so ctest replays it forever.
# Exits 0 with a message (and runs nothing) when clang or its libFuzzer
# runtime (Debian: clang, libclang-rt-14-dev) is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${VH_FUZZ_SECONDS:-30}}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(node export control json http)
cc=${VH_FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "tools/fuzz.sh: $cc not found; skipping the fuzz run (apt-get install clang libclang-rt-14-dev)"
  exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
  >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  echo "tools/fuzz.sh: $cc has no libFuzzer runtime (libclang_rt.fuzzer); skipping the fuzz run (apt-get install libclang-rt-14-dev)"
  exit 0
fi

CC=$cc cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVH_FUZZ=ON -DVH_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p build-fuzz/crashes
status=0
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t
  mkdir -p "$work"
  echo "tools/fuzz.sh: fuzz_$t for ${secs}s"
  args=(-max_total_time="$secs" -print_final_stats=1 -timeout=20
        -rss_limit_mb=4096 -artifact_prefix="build-fuzz/crashes/$t-")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  # fuzz_http's host thread allocates across inputs: no per-input leak check
  [ "$t" = http ] && args+=(-detect_leaks=0)
  if [ -n "${VH_FUZZ_JOBS:-}" ]; then
    args+=(-jobs="$VH_FUZZ_JOBS" -workers="$VH_FUZZ_JOBS")
  fi
  log=build-fuzz/fuzz_$t.log
  rc=0
  "build-fuzz/fuzz/fuzz_$t" "${args[@]}" "$work" "fuzz/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    status=1
    # the status says how it ended: libFuzzer's own codes (crash, leak,
    # timeout), or 128+N when signal N killed it without a report
    how="exit status $rc"
    if [ $rc -gt 128 ]; then
      how="$how: killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo "?")"
    fi
    grep -q "stat::number_of_executed_units" "$log" ||
      how="$how; no final stats: it ended before libFuzzer's own exit"
    echo "tools/fuzz.sh: fuzz_$t FAILED ($how); see $log and build-fuzz/crashes/"
    echo "tools/fuzz.sh: the last 40 lines of $log:"
    tail -40 "$log"
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" \
      "$log" | tr '\n' ' '
    echo
  fi
done
exit $status
