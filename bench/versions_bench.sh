#!/usr/bin/env bash
# bench/versions_bench.sh - time travel is as fast as the present: the
# REPL's at(V) read of one key in a 1M-key state against the same read at
# the current version, both cold (first touch after a restart). Prints
# both times and the ratio (issue 15: at(V) <= 2x the present).
#
#   bench/versions_bench.sh [--quick] [--reps R]
#
# The data: N keys "key:I" -> I in one domain (BENCH_N, default 1000000;
# --quick: 20000, 1 repeat), written by one run (version OLD), then one
# more run changes key:1 (the current version). Each measurement starts a
# fresh host on the data dir (so nothing is loaded: first touch) and runs
# one REPL chunk that reads key:(N*7/9) either through at(OLD) or through
# domains.kv.state, timed inside the chunk with os.clock (CPU time of the
# loop thread: the nodes come from RocksDB's files through the page cache,
# the same for both). The at(V) time includes resolving V and reading the
# version record. Hosts alternate (at, present, at, present...) so both see
# the same cache; medians of R (default 5).
#
# Settings: VEDHOST_BUILD (default ./build), BENCH_OUT (default a temp dir,
# removed unless given). Only the processes this script starts are stopped
# (by pid).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh" # vb_host_up, vb_stop_pid
build=${VEDHOST_BUILD:-$here/../build}
bin=$build/bin/vedhost
N=${BENCH_N:-1000000}
reps=5
while [ $# -gt 0 ]; do
  case $1 in
    --quick) N=${BENCH_N:-20000}; reps=1 ;;
    --reps) reps=$2; shift ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "versions_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
keep=${BENCH_OUT:+1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/vedhost_versions_bench_XXXXXX)}
mkdir -p "$OUT"
host_pid=
cleanup() {
  if [ -n "$host_pid" ]; then kill "$host_pid" 2>/dev/null || true; fi
  [ -n "$keep" ] || rm -rf "$OUT"
}
trap cleanup EXIT INT TERM
[ -x "$bin" ] || { echo "versions_bench: no $bin: build first" >&2; exit 1; }
retain=()
if "$bin" run --help 2>/dev/null | grep -q -- --retain; then
  retain=(--retain 1h)
fi
run_opts=(--no-watch --durability nosync --handler-timeout 600000
  --memory-limit 8192 "${retain[@]}")

cat >"$OUT/fill.lua" <<EOF
local ved = require "ved"
ved.domain "kv" { state = {},
  start = function(s)
    if s["key:1"] == nil then
      for i = 1, $N do s["key:" .. i] = i end
    else
      s["key:1"] = -1
    end
    ved.exit(0)
  end }
EOF
cat >"$OUT/serve.lua" <<'EOF'
local ved = require "ved"
ved.domain "kv" { state = {} }
EOF

echo "versions_bench: filling $N keys"
"$bin" run "${run_opts[@]}" --data "$OUT/d" "$OUT/fill.lua" 2>"$OUT/fill.log"
old=$("$bin" log --data "$OUT/d" -n 1 2>/dev/null | awk 'NR == 2 { print $1 }')
"$bin" run "${run_opts[@]}" --data "$OUT/d" "$OUT/fill.lua" 2>>"$OUT/fill.log"
if [ -z "$old" ]; then
  echo "versions_bench: this build keeps no version history (vedhost log):" \
    "at(V) of an older version cannot be measured" >&2
  exit 1
fi
key=$((N * 7 / 9))

# One cold measurement: a fresh host, one chunk; prints "seconds value".
measure() { # expr
  vb_host_up "$bin" "$OUT/serve.log" "${run_opts[@]}" --data "$OUT/d" \
    "$OUT/serve.lua"
  host_pid=$VB_PID
  local out=
  for _ in $(seq 1 100); do # the control socket may lag the log line
    if out=$("$bin" repl --data "$OUT/d" -e "local c = os.clock; \
local t = c(); local v = $1; local d = c() - t; \
return string.format('%.6f %s', d, v)" 2>/dev/null); then
      break
    fi
    sleep 0.05
  done
  printf '%s\n' "$out" | tr -d '"'
  vb_stop_pid "$host_pid"
  host_pid=
}

at_s=() now_s=()
for _ in $(seq 1 "$reps"); do
  measure "at($old).domains.kv.state['key:$key']" >"$OUT/m.txt"
  read -r t v <"$OUT/m.txt"
  [ "$v" = "$key" ] || { echo "versions_bench: at($old) read $v" >&2; exit 1; }
  at_s+=("$t")
  measure "domains.kv.state['key:$key']" >"$OUT/m.txt"
  read -r t v <"$OUT/m.txt"
  [ "$v" = "$key" ] || { echo "versions_bench: present read $v" >&2; exit 1; }
  now_s+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
  END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
ma=$(median "${at_s[@]}")
mn=$(median "${now_s[@]}")
printf 'versions_bench: N=%d keys, version %s, %d repeats (median)\n' \
  "$N" "$old" "$reps"
printf '  at(V) read, cold      %10.3f ms\n' "$(awk -v s="$ma" 'BEGIN { print s * 1000 }')"
printf '  present read, cold    %10.3f ms\n' "$(awk -v s="$mn" 'BEGIN { print s * 1000 }')"
printf '  ratio at(V)/present   %10.2fx   (target <= 2x)\n' \
  "$(awk -v a="$ma" -v b="$mn" 'BEGIN { print (b > 0 ? a / b : 0) }')"
