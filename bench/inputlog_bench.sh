#!/bin/bash
# inputlog_bench.sh - what recording the input log (README "Deterministic
# slices") costs at bench/run's vedhost writer workload: handler calls of
# BATCH updates state.k["k" .. j % K] = j (K keys), N updates in all, each
# call sending the next. Runs alternate with the log on and off
# (VEDHOST_NO_INPUT_LOG=1), REPEATS each, and print updates/s and the
# ratio of the medians (off / on - 1 = the overhead), per CPU second.
# VEDHOST_BUILD (default ./build), N (2000000), K (1000000), BATCH (10000),
# REPEATS (3), DURABILITY (nosync).
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${VEDHOST_BUILD:-$here/../build}
N=${N:-2000000} K=${K:-1000000} BATCH=${BATCH:-10000}
REPEATS=${REPEATS:-3} DURABILITY=${DURABILITY:-nosync}
tmp=$(mktemp -d /tmp/vedhost_inlog_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed -e "s/@N@/$N/g" -e "s/@K@/$K/g" -e "s/@BATCH@/$BATCH/g" \
  -e "s/@IDLE@/false/g" -e "s/@VALUE_BYTES@/0/g" \
  "$here/vedhost/writer.lua.in" >"$tmp/writer.lua"
# updates per CPU second of the host (user + sys, all its threads: less
# sensitive than wall time to other load on a shared machine)
run() { # $1 = 0|1 (log off)
  rm -rf "$tmp/data"
  local cpu
  /usr/bin/time -o "$tmp/cpu" -f '%U %S' env VEDHOST_NO_INPUT_LOG="$1" \
    "$build/bin/vedhost" run --no-watch --durability "$DURABILITY" \
    --data "$tmp/data" "$tmp/writer.lua" >/dev/null 2>&1
  cpu=$(tail -1 "$tmp/cpu")
  echo "$N / (${cpu% *} + ${cpu#* })" | bc -l
}
on=() off=()
for r in $(seq "$REPEATS"); do
  on+=("$(run 0)")
  off+=("$(run 1)")
  printf 'repeat %d: log on %.0f, log off %.0f updates per CPU s\n' \
    "$r" "${on[-1]}" "${off[-1]}"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mon=$(med "${on[@]}") moff=$(med "${off[@]}")
printf 'median: on %.0f, off %.0f updates/s; recording costs %.1f%%\n' \
  "$mon" "$moff" "$(echo "($moff / $mon - 1) * 100" | bc -l)"
