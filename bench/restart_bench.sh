#!/usr/bin/env bash
# bench/restart_bench.sh - restart time, event-log replay, changed keys/s
# reaching disk, and disk use vs history (issue 4 "Benchmarks").
#
#   bench/restart_bench.sh [--sizes "10000 100000 1000000"] [--reps 3]
#                          [--out DIR] [--keep]
#   VEDHOST=path/to/vedhost (default build/bin/vedhost, then build-*/bin)
#
# For each state size K and history H in {1x, 10x} (N = H * K updates of
# state.k["k" .. j % K] = j, BATCH per handler call):
#   sync    the writer (bench/restart/writer.lua.in) with --durability sync,
#           clean stop: changed keys/s reaching disk = N / (wall - empty
#           host start); disk bytes of DATA/db; then REPS timed restarts
#           (bench/restart/restart.lua.in: start() is the first handler, it
#           reads the last key and calls ved.exit(0)) -> "clean" restart.
#   nosync  the same with --durability nosync, but the writer stays up when
#           done and is killed with SIGKILL; each of REPS timed restarts
#           runs on a fresh copy of that data dir -> "kill -9" restart.
#   eventlog  the same N events as a plain append-only log, replayed into a
#           Lua table at start by lua5.4 (bench/restart/eventlog.lua), then
#           one request: REPS timed replays.
# A restart is timed from exec to exit (bench/lib/vbtime.lua, monotonic):
# process start, open, manifest, first handler, clean close. That bounds
# "process start to first handler" from above. Every restart must see
# done = N and the last value written, else the row says MISMATCH.
# Medians of REPS runs; ratios: event log / vedhost (same history), 10x /
# 1x (restart time and disk bytes). Results: OUT/results.tsv and a table on
# stdout. Nothing here is a pass/fail test.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
SIZES="10000 100000 1000000"
REPS=3
OUT=""
KEEP=0
BATCH=${RB_BATCH:-1000}
while [ $# -gt 0 ]; do
  case $1 in
  --sizes) SIZES=$2; shift 2 ;;
  --reps) REPS=$2; shift 2 ;;
  --out) OUT=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
  *) echo "restart_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "${VEDHOST:-}" ]; then
  for c in "$ROOT/../build/bin/vedhost" "$ROOT"/../build-*/bin/vedhost; do
    [ -x "$c" ] && VEDHOST=$c && break
  done
fi
[ -x "${VEDHOST:-}" ] || { echo "restart_bench: set VEDHOST" >&2; exit 2; }
lua5.4 -e 'require "system"' 2>/dev/null ||
  { echo "restart_bench: needs lua-system (bench/lib/vbtime.lua)" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d /tmp/vedhost_restart_bench_XXXXXX)}
mkdir -p "$OUT"
RES="$OUT/results.tsv"
: >"$RES"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ "$KEEP" = 1 ] || rm -rf "$OUT"/work
}
trap cleanup EXIT INT TERM

log() { printf '[restart_bench %4ds] %s\n' "$SECONDS" "$*" >&2; }
vbtime() { lua5.4 "$ROOT/lib/vbtime.lua" "$@"; }
median() { lua5.4 "$ROOT/lib/stats.lua" | awk '{print $1}'; }
du_bytes() { du -sb --apparent-size "$1" 2>/dev/null | awk '{print $1}'; }
# record WHAT K H VALUE UNIT NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
get() { awk -F'\t' -v w="$1" -v k="$2" -v h="$3" \
  '$1 == w && $2 == k && $3 == h {print $4}' "$RES" | tail -1; }

script() { # TEMPLATE OUT N K IDLE
  sed -e "s/@N@/$3/g" -e "s/@K@/$4/g" -e "s/@BATCH@/$BATCH/g" \
    -e "s/@IDLE@/$5/g" "$ROOT/restart/$1" >"$2"
}

# timed_restart DIR DATA K N -> prints elapsed seconds, or "n/a" on a wrong
# count (with a log line). Also appends "process start to first handler" in
# seconds to DIR/first: wall ms before exec (so it includes the harness's
# own fork/exec) to the ctx.now the first handler sees (an upper bound).
timed_restart() {
  local dir=$1 data=$2 K=$3 N=$4 el rc line t0 first
  script restart.lua.in "$dir/restart.lua" 0 "$K" false
  : >"$dir/restart.out"
  t0=$(date +%s%3N)
  read -r el rc < <(vbtime cmd 300 "$dir/restart.out" -- "$VEDHOST" run \
    --data "$data" --no-watch "$dir/restart.lua")
  first=$(awk '$1 == "RB_FIRST" {print $2}' "$dir/restart.out" | tail -1)
  [ -n "$first" ] && awk -v a="$t0" -v b="$first" \
    'BEGIN {printf "%.3f\n", (b - a) / 1000}' >>"$dir/first"
  line=$(grep -o 'RB_COUNT [0-9]* [^ ]*' "$dir/restart.out" | tail -1)
  if [ "$rc" != 0 ] || [ "$line" != "RB_COUNT $N $((N - 1))" ]; then
    log "MISMATCH: restart of $data saw '$line' (rc $rc), want N=$N"
    echo n/a
    return
  fi
  echo "$el"
}

# writer DIR DATA N K MODE IDLE -> prints elapsed seconds (clean) or sets
# up a killed writer (IDLE)
run_writer() {
  local dir=$1 data=$2 N=$3 K=$4 mode=$5 idle=$6 el rc pid i
  script writer.lua.in "$dir/writer.lua" "$N" "$K" "$idle"
  if [ "$idle" = false ]; then
    read -r el rc < <(vbtime cmd 3600 "$dir/writer.out" -- "$VEDHOST" run \
      --data "$data" --no-watch --durability "$mode" "$dir/writer.lua")
    [ "$rc" = 0 ] && grep -q "RB_DONE $N" "$dir/writer.out" || {
      log "writer failed (rc $rc): $(tail -3 "$dir/writer.out")"
      echo n/a
      return
    }
    echo "$el"
    return
  fi
  local t0 t1
  t0=$(vbtime now)
  "$VEDHOST" run --data "$data" --no-watch --durability "$mode" \
    "$dir/writer.lua" >"$dir/writer.out" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 360000; i++)); do
    grep -q "RB_DONE" "$dir/writer.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  t1=$(vbtime now)
  # The writer's last slice: acknowledged once `repl -e` answers (replies
  # wait for durability), so the kill cannot lose it.
  timeout 20 "$VEDHOST" repl --data "$data" \
    -e 'return domains.rb.state.done' >/dev/null 2>&1 || sleep 0.5
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f\n", b - a}'
}

mkdir -p "$OUT/work"
log "vedhost: $VEDHOST ($("$VEDHOST" --version 2>&1 | head -1)); sizes: \
$SIZES; reps: $REPS; out: $OUT"

# The cost of starting a host with nothing in it, for the throughput rows.
mkdir -p "$OUT/work/empty"
EMPTY=$(for r in $(seq "$REPS"); do
  rm -rf "$OUT/work/empty/data"
  script restart.lua.in "$OUT/work/empty/r.lua" 0 1 false
  vbtime cmd 60 - -- "$VEDHOST" run --data "$OUT/work/empty/data" \
    --no-watch "$OUT/work/empty/r.lua" | awk '{print $1}'
done | median)
record empty 0 0 "$EMPTY" s "empty host: exec to exit"
log "empty host start: $EMPTY s"

for K in $SIZES; do
  for H in 1 10; do
    N=$((K * H))
    dir="$OUT/work/$K-$H"
    mkdir -p "$dir"
    log "K=$K H=${H}x (N=$N): sync writer, clean stop"
    el=$(run_writer "$dir" "$dir/sync" "$N" "$K" sync false)
    if [ "$el" != n/a ]; then
      record keys_per_s_sync "$K" "$H" "$(awk -v n="$N" -v t="$el" \
        -v e="$EMPTY" 'BEGIN {d = t - e; if (d <= 0) d = t;
        printf "%.0f", n / d}')" keys/s "N / (writer wall - empty start)"
      record disk_bytes "$K" "$H" "$(du_bytes "$dir/sync/db")" bytes \
        "DATA/db after a clean stop"
      rm -f "$dir/first"
      record restart_clean "$K" "$H" "$(for r in $(seq "$REPS"); do
        timed_restart "$dir" "$dir/sync" "$K" "$N"; done | median)" s \
        "median of $REPS"
      record first_clean "$K" "$H" "$(median <"$dir/first")" s \
        "exec to first handler, median of $REPS"
    fi
    log "K=$K H=${H}x: nosync writer, kill -9"
    el=$(run_writer "$dir" "$dir/nosync" "$N" "$K" nosync true)
    record keys_per_s_nosync "$K" "$H" "$(awk -v n="$N" -v t="$el" \
      'BEGIN {printf "%.0f", n / t}')" keys/s \
      "N / (start to RB_DONE) of the writer"
    rm -f "$dir/first"
    record restart_kill9 "$K" "$H" "$(for r in $(seq "$REPS"); do
      rm -rf "$dir/copy"
      cp -a "$dir/nosync" "$dir/copy"
      timed_restart "$dir" "$dir/copy" "$K" "$N"
    done | median)" s "median of $REPS, each on a fresh copy"
    record first_kill9 "$K" "$H" "$(median <"$dir/first")" s \
      "exec to first handler after kill -9, median of $REPS"
    log "K=$K H=${H}x: event log"
    lua5.4 "$ROOT/restart/eventlog.lua" write "$dir/events.log" "$N" "$K"
    record eventlog_bytes "$K" "$H" "$(du_bytes "$dir/events.log")" bytes ""
    record restart_eventlog "$K" "$H" "$(for r in $(seq "$REPS"); do
      read -r el rc < <(vbtime cmd 600 "$dir/replay.out" -- lua5.4 \
        "$ROOT/restart/eventlog.lua" replay "$dir/events.log" "$K")
      if grep -q "RB_COUNT $N $((N - 1))" "$dir/replay.out"; then
        echo "$el"
      else
        log "MISMATCH: event log replay: $(tail -1 "$dir/replay.out")"
      fi
      : >"$dir/replay.out"
    done | median)" s "median of $REPS"
    [ "$KEEP" = 1 ] || rm -rf "$dir"
  done
done

# ---- report ----
ms() { awk -v s="$1" 'BEGIN {if (s == "" || s == "n/a") print "n/a";
  else printf "%.1f", s * 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" ||
  a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a";
  else printf "%.1fx", a / b}'; }
printf '\nrestart (exec to exit, ms, median of %s); empty host %s ms\n' \
  "$REPS" "$(ms "$EMPTY")"
printf '%-8s %-4s %9s %9s %10s %9s %12s %12s %11s\n' K hist clean kill9 \
  eventlog "log/clean" "keys/s sync" "keys/s nosync" "disk bytes"
for K in $SIZES; do
  for H in 1 10; do
    printf '%-8s %-4s %9s %9s %10s %9s %12s %12s %11s\n' "$K" "${H}x" \
      "$(ms "$(get restart_clean "$K" "$H")")" \
      "$(ms "$(get restart_kill9 "$K" "$H")")" \
      "$(ms "$(get restart_eventlog "$K" "$H")")" \
      "$(ratio "$(get restart_eventlog "$K" "$H")" \
        "$(get restart_clean "$K" "$H")")" \
      "$(get keys_per_s_sync "$K" "$H")" "$(get keys_per_s_nosync "$K" "$H")" \
      "$(get disk_bytes "$K" "$H")"
  done
done
printf '\nprocess start to first handler (ms, median of %s)\n' "$REPS"
printf '%-8s %-4s %9s %9s %10s %12s\n' K hist clean kill9 eventlog \
  "log/clean"
for K in $SIZES; do
  for H in 1 10; do
    printf '%-8s %-4s %9s %9s %10s %12s\n' "$K" "${H}x" \
      "$(ms "$(get first_clean "$K" "$H")")" \
      "$(ms "$(get first_kill9 "$K" "$H")")" \
      "$(ms "$(get restart_eventlog "$K" "$H")")" \
      "$(ratio "$(get restart_eventlog "$K" "$H")" \
        "$(get first_clean "$K" "$H")")"
  done
done
printf '\nratios 10x / 1x history\n'
printf '%-8s %14s %14s %14s\n' K "clean restart" "kill-9 restart" "disk bytes"
for K in $SIZES; do
  printf '%-8s %14s %14s %14s\n' "$K" \
    "$(ratio "$(get restart_clean "$K" 10)" "$(get restart_clean "$K" 1)")" \
    "$(ratio "$(get restart_kill9 "$K" 10)" "$(get restart_kill9 "$K" 1)")" \
    "$(ratio "$(get disk_bytes "$K" 10)" "$(get disk_bytes "$K" 1)")"
done
printf '\nresults: %s\n' "$RES"
