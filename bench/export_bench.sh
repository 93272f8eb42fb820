#!/usr/bin/env bash
# bench/export_bench.sh - export / import speed and compression of a
# 1M-key state, against Redis `redis-cli --rdb` (online snapshot) and RDB
# load (restart from dump.rdb) for the same data, in one run.
#
# The data: N keys "key:I" -> "value:I" (I = 1..N), built once in a vedhost
# domain (one table) and once in a fresh redis-server (redis-cli --pipe).
#
# Measured (wall time through bench/lib/vbtime.lua, CLOCK_MONOTONIC):
#   vedhost export --data D FILE     raw MB/s, keys/s, compression ratio
#                                    (raw stream bytes / file bytes)
#   vedhost import --data NEW FILE   keys/s, MB/s of the file
#   redis-cli --rdb FILE             keys/s, RDB bytes
#   redis-server restart from RDB    keys/s (exec until PING answers PONG)
# Output: one line per measurement on stdout, and the same rows as TSV in
# $OUT/export_results.tsv. Settings: BENCH_N (default 1000000), VEDHOST_BUILD
# (default ./build), BENCH_OUT (default a temp dir, removed unless given).
#
# Only the processes this script starts are stopped (by pid).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VB_LIB=$here/lib
. "$VB_LIB/common.sh"
build=${VEDHOST_BUILD:-$here/../build}
bin=$build/bin/vedhost
N=${BENCH_N:-1000000}
keep=${BENCH_OUT:+1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/vedhost_export_bench_XXXXXX)}
VB_OUT=$OUT
mkdir -p "$OUT/pids"
redis_pid=
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  [ -n "$keep" ] || rm -rf "$OUT"
}
trap cleanup EXIT INT TERM
[ -x "$bin" ] || vb_die "no $bin: build first (VEDHOST_BUILD=...)"

row() { # what value unit note
  printf '%-28s %14s %-8s %s\n' "$1" "$2" "$3" "${4:-}"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$OUT/export_results.tsv"
}
secs() { vb_time cmd 600 "$OUT/cmd.log" -- "$@" | awk '{print $1}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }

# ---- vedhost ----
cat >"$OUT/fill.lua" <<EOF
local ved = require "ved"
ved.domain "kv" { state = {},
  start = function(s)
    if s["key:1"] == nil then
      for i = 1, $N do s["key:" .. i] = "value:" .. i end
    end
    ved.exit(0)
  end }
EOF
vb_log "vedhost: filling $N keys"
"$bin" run --no-watch --durability nosync --handler-timeout 600000 \
  --memory-limit 8192 --data "$OUT/d1" "$OUT/fill.lua" 2>"$OUT/fill.log" ||
  vb_die "fill failed: $(tail -1 "$OUT/fill.log")"

t=$(secs "$bin" export --data "$OUT/d1" "$OUT/state.vx")
zbytes=$(stat -c %s "$OUT/state.vx")
raw=$(zstd -dc "$OUT/state.vx" | wc -c)
row "vedhost export" "$t" s
row "vedhost export keys/s" "$(div "$N" "$t")" keys/s
row "vedhost export raw MB/s" "$(div "$(awk -v r="$raw" 'BEGIN { print r / 1e6 }')" "$t")" MB/s
row "vedhost stream size" "$zbytes" bytes "raw $raw"
row "vedhost compression ratio" "$(awk -v a="$raw" -v b="$zbytes" \
  'BEGIN { printf "%.2f", a / b }')" x
t=$(secs "$bin" import --data "$OUT/d2" "$OUT/state.vx")
row "vedhost import" "$t" s
row "vedhost import keys/s" "$(div "$N" "$t")" keys/s
row "vedhost import raw MB/s" "$(div "$(awk -v r="$raw" 'BEGIN { print r / 1e6 }')" "$t")" MB/s
"$bin" export --data "$OUT/d2" "$OUT/again.vx"
cmp -s "$OUT/state.vx" "$OUT/again.vx" || vb_warn "re-export differs"

# ---- redis ----
if ! command -v redis-server >/dev/null; then
  row "redis" n/a - "redis-server not installed (bench/run installs it)"
  exit 0
fi
rd=$OUT/redis
mkdir -p "$rd"
cat >"$rd/redis.conf" <<EOF
port 0
unixsocket $rd/redis.sock
unixsocketperm 700
dir $rd
save ""
appendonly no
EOF
redis-server "$rd/redis.conf" >"$rd/log" 2>&1 &
redis_pid=$!
for _ in $(seq 500); do
  redis-cli -s "$rd/redis.sock" ping 2>/dev/null | grep -q PONG && break
  sleep 0.01
done
vb_log "redis: filling $N keys"
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++)
  printf "SET key:%d value:%d\r\n", i, i }' |
  redis-cli -s "$rd/redis.sock" --pipe >/dev/null
t=$(secs redis-cli -s "$rd/redis.sock" --rdb "$rd/dump.rdb")
row "redis-cli --rdb" "$t" s
row "redis-cli --rdb keys/s" "$(div "$N" "$t")" keys/s
row "redis rdb size" "$(stat -c %s "$rd/dump.rdb")" bytes
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
redis_pid=
# restart from the RDB: exec until PING answers PONG (not LOADING)
t=$(vb_time ready 600 "$rd/pid" "$rd/log2" PONG -- redis-server \
  "$rd/redis.conf" -- redis-cli -s "$rd/redis.sock" ping | awk '{print $1}')
redis_pid=$(cat "$rd/pid")
row "redis RDB load" "$t" s
row "redis RDB load keys/s" "$(div "$N" "$t")" keys/s
n=$(redis-cli -s "$rd/redis.sock" dbsize)
[ "$n" = "$N" ] || vb_warn "redis dbsize $n after load, expected $N"
