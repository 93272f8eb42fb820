#!/usr/bin/env bash
# bench/diff_bench.sh - diff cost follows the change, not the state; the
# change feed keeps up with a writing host (issue 15).
#
#   bench/diff_bench.sh [--quick] [--reps R] [--feed]
#
# --feed runs part 2 only (the change feed).
#
# 1. diff. N keys "key:I" -> I in one domain (BENCH_N, default 1000000;
#    --quick: 20000, 1 repeat) written by one run (version OLD); a second
#    run changes 1 key (version A), a third 10 keys spread over the state
#    (version B). A fresh host on that data dir runs one REPL chunk that
#    times diff(OLD, A) and diff(A, B) with os.clock (CPU time of the
#    host: the walk, the node loads from RocksDB through the page cache,
#    and the Lua records); R repeats, medians. Prints both times and the
#    ratio (targets: 10 keys <= 5 ms, <= 2x the 1-key time). The CLI's
#    `vedhost diff` wall time (process start and store open included) is
#    printed beside it for reference.
# 2. change feed. A host writes S slices of B keys each (BENCH_SLICES,
#    default 400, BENCH_BATCH 1000; --quick: 40) while `vedhost changes
#    --json --follow` (a secondary beside it, polling every 200 ms) streams
#    every change into a file. A first run writes the backlog; the consumer
#    starts with a second run that writes as much again, and its rate =
#    backlog changes / (its first line to the backlog's last, seen by
#    polling the file every 10 ms): the feed's speed while the host
#    writes, not the writer's (printed beside it) (target >= 100k
#    changes/s).
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
S=${BENCH_SLICES:-400}
B=${BENCH_BATCH:-1000}
reps=5
feed_only=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) N=${BENCH_N:-20000}; S=${BENCH_SLICES:-40}; reps=1 ;;
    --reps) reps=$2; shift ;;
    --feed) feed_only=1 ;;
    -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "diff_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
keep=${BENCH_OUT:+1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/vedhost_diff_bench_XXXXXX)}
mkdir -p "$OUT"
host_pid= feed_pid=
cleanup() {
  if [ -n "$host_pid" ]; then kill "$host_pid" 2>/dev/null || true; fi
  if [ -n "$feed_pid" ]; then kill "$feed_pid" 2>/dev/null || true; fi
  [ -n "$keep" ] || rm -rf "$OUT"
}
trap cleanup EXIT INT TERM
[ -x "$bin" ] || { echo "diff_bench: no $bin: build first" >&2; exit 1; }
run_opts=(--no-watch --durability nosync --handler-timeout 600000
  --memory-limit 8192 --retain 1h)
now() { date +%s.%N; }
ms() { awk -v s="$1" 'BEGIN { printf "%.3f", s * 1000 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
  END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# ---- 1. diff of two versions of an N-key state ----
if [ -z "$feed_only" ]; then
cat >"$OUT/fill.lua" <<EOF
local ved = require "ved"
ved.domain "kv" { state = {},
  start = function(s)
    if s["key:1"] == nil then
      for i = 1, $N do s["key:" .. i] = i end
    elseif s["key:1"] == 1 then
      s["key:1"] = -1
    else
      for j = 1, 10 do s["key:" .. (j * ($N // 11))] = -j end
    end
    ved.exit(0)
  end }
EOF
cat >"$OUT/serve.lua" <<'EOF'
local ved = require "ved"
ved.domain "kv" { state = {} }
EOF
echo "diff_bench: filling $N keys"
seqs=()
for _ in 1 2 3; do
  "$bin" run "${run_opts[@]}" --data "$OUT/d" "$OUT/fill.lua" 2>>"$OUT/fill.log"
  seqs+=("$("$bin" log --data "$OUT/d" -n 1 | awk 'NR == 2 { print $1 }')")
done
old=${seqs[0]} va=${seqs[1]} vb=${seqs[2]}

measure() { # prints "t1 n1 t10 n10"
  vb_host_up "$bin" "$OUT/serve.log" "${run_opts[@]}" --data "$OUT/d" \
    "$OUT/serve.lua"
  host_pid=$VB_PID
  local out=
  for _ in $(seq 1 100); do
    if out=$("$bin" repl --data "$OUT/d" -e "local c = os.clock; \
local t = c(); local d1 = diff($old, $va); local t1 = c() - t; \
t = c(); local d10 = diff($va, $vb); local t10 = c() - t; \
return string.format('%.6f %d %.6f %d', t1, #d1, t10, #d10)" 2>/dev/null); then
      break
    fi
    sleep 0.05
  done
  printf '%s\n' "$out" | tr -d '"'
  vb_stop_pid "$host_pid"
  host_pid=
}
t1s=() t10s=()
for _ in $(seq 1 "$reps"); do
  measure >"$OUT/m.txt"
  read -r t1 n1 t10 n10 <"$OUT/m.txt"
  [ "$n1" = 1 ] && [ "$n10" = 10 ] || {
    echo "diff_bench: expected 1 and 10 changes, got $n1 and $n10" >&2
    exit 1
  }
  t1s+=("$t1")
  t10s+=("$t10")
done
m1=$(median "${t1s[@]}")
m10=$(median "${t10s[@]}")
c0=$(now)
"$bin" diff --data "$OUT/d" "$va" "$vb" >"$OUT/cli.txt"
c1=$(now)
printf 'diff_bench: N=%d keys, versions %s -> %s (1 key) -> %s (10 keys), %d repeats (median)\n' \
  "$N" "$old" "$va" "$vb" "$reps"
printf '  diff, 1 changed key     %10s ms\n' "$(ms "$m1")"
printf '  diff, 10 changed keys   %10s ms   (target <= 5 ms)\n' "$(ms "$m10")"
printf '  ratio 10 keys / 1 key   %10.2fx   (target <= 2x)\n' \
  "$(awk -v a="$m10" -v b="$m1" 'BEGIN { print (b > 0 ? a / b : 0) }')"
printf '  vedhost diff (CLI wall, process start included) %s ms, %d lines\n' \
  "$(ms "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')")" \
  "$(wc -l <"$OUT/cli.txt")"
fi

# ---- 2. change feed throughput while the host writes ----
cat >"$OUT/writer.lua" <<EOF
local ved = require "ved"
ved.domain "w" { state = { k = {}, done = 0 },
  start = function(s, ctx) if s.go then ctx:send("w", "batch") end end,
  on = { batch = function(s, _, ctx)
    local k, d = s.k, s.done
    for j = d * $B, d * $B + $B - 1 do k["k" .. j] = j end
    s.done = d + 1
    if s.done % $S ~= 0 then ctx:send("w", "batch") else ved.exit(0) end
  end } }
EOF
cat >"$OUT/init.lua" <<'EOF'
local ved = require "ved"
ved.domain "w" { state = { k = {}, done = 0 },
  start = function(s) s.go = true; ved.exit(0) end }
EOF
"$bin" run "${run_opts[@]}" --data "$OUT/f" "$OUT/init.lua" 2>"$OUT/init.log"
seq0=$("$bin" log --data "$OUT/f" -n 1 | awk 'NR == 2 { print $1 }')
total=$((S * (B + 1)))
# The backlog: S slices written by a first run.
"$bin" run "${run_opts[@]}" --data "$OUT/f" "$OUT/writer.lua" \
  2>"$OUT/writer0.log"
# While a second run writes S more, the consumer streams from seq0: its
# rate is measured over the backlog, which it reads while the host writes.
"$bin" run "${run_opts[@]}" --data "$OUT/f" "$OUT/writer.lua" \
  2>"$OUT/writer.log" &
host_pid=$!
w0=$(now)
"$bin" changes --data "$OUT/f" --json --follow --from "$seq0" \
  >"$OUT/feed.out" 2>"$OUT/feed.err" &
feed_pid=$!
f0= got=0
deadline=$(($(date +%s) + 600))
while :; do
  got=$(wc -l <"$OUT/feed.out")
  if [ -z "$f0" ] && [ "$got" -gt 0 ]; then f0=$(now); fi
  [ "$got" -ge "$total" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || break
  sleep 0.01
done
f1=$(now)
# The consumer's CPU time so far (utime + stime, clock ticks): the rate per
# CPU second, what an idle core would give on a loaded machine.
cpu=$(awk '{ print $14 + $15 }' "/proc/$feed_pid/stat" 2>/dev/null || echo 0)
hz=$(getconf CLK_TCK)
while [ "$(wc -l <"$OUT/feed.out")" -lt $((2 * total)) ] &&
  [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
# Its CPU time for both runs: the follow phase adds the catch-ups (the
# secondary replaying the host's log) to the walks.
cpu2=$(awk '{ print $14 + $15 }' "/proc/$feed_pid/stat" 2>/dev/null || echo 0)
kill "$feed_pid" 2>/dev/null || true
wait "$feed_pid" 2>/dev/null || true
feed_pid=
wait "$host_pid" 2>/dev/null || true
w1=$(now)
host_pid=
[ "$got" -ge "$total" ] || {
  echo "diff_bench: the feed gave $got of $total changes" >&2
  exit 1
}
# A consumer that died after the backlog (e.g. on a node the secondary did
# not see yet) is a failure too: it must have streamed both runs whole.
all=$(wc -l <"$OUT/feed.out")
[ "$all" -ge $((2 * total)) ] || {
  echo "diff_bench: the feed stopped after $all of $((2 * total)) changes:" \
    "$(tail -n 1 "$OUT/feed.err" 2>/dev/null)" >&2
  exit 1
}
wt=$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')
printf 'diff_bench: change feed, backlog %d slices x %d keys (+1 counter) = %d changes, read while the host writes %d more\n' \
  "$S" "$B" "$total" "$total"
printf '  consumer (vedhost changes --json --follow) %10.0f changes/s   (target >= 100000)\n' \
  "$(awk -v n="$got" -v a="$f0" -v b="$f1" 'BEGIN { print (b > a ? n / (b - a) : 0) }')"
printf '  consumer per CPU second (its utime+stime) %10.0f changes/s\n' \
  "$(awk -v n="$got" -v c="$cpu" -v hz="$hz" 'BEGIN { print (c > 0 ? n * hz / c : 0) }')"
printf '  consumer per CPU second, both runs          %10.0f changes/s   (backlog, then following the writer)\n' \
  "$(awk -v n="$all" -v c="$cpu2" -v hz="$hz" 'BEGIN { print (c > 0 ? n * hz / c : 0) }')"
printf '  writer (host start to exit)                %10.0f changes/s\n' \
  "$(awk -v n="$total" -v t="$wt" 'BEGIN { print (t > 0 ? n / t : 0) }')"
