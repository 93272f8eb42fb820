#!/usr/bin/env bash
# bench/http_bench.sh - the HTTP ingress against Redis, in one run.
#
#   bench/http_bench.sh [BUILD_DIR]      (default: build)
#   env: HB_SECS (default 5) seconds per measurement, HB_CONNS (32)
#        concurrent connections, HB_THREADS (2) client threads.
#
# Workloads, the same payload on both sides (add 1 to one counter and
# return the new value; read it back):
#   POST  vedhost: POST /domains/counter/events/add {"by":1}, wrk
#         Redis:   EVAL "return redis.call('INCRBY', KEYS[1], ARGV[1])" 1
#                  counter 1, redis-benchmark
#         twice: vedhost --durability sync vs Redis appendfsync always
#         (acknowledged = fsync'd), vedhost nosync vs Redis appendfsync no
#         (acknowledged = written, not fsync'd)
#   GET   vedhost: GET /domains/counter/state/count; Redis: GET counter
# Both servers run on loopback TCP with their own fresh directories; the
# clients use the same number of connections. Reported: requests/s and
# p99 latency (ms) for each, and the ratios vedhost / Redis (rps: higher
# is better for vedhost; p99: lower is better). Needs wrk,
# redis-server, redis-benchmark, curl (Debian packages). Every process this
# script starts is stopped by pid on exit; every wait is bounded.
set -euo pipefail

BUILD=${1:-build}
SECS=${HB_SECS:-5}
CONNS=${HB_CONNS:-32}
THREADS=${HB_THREADS:-2}
VEDHOST=$BUILD/bin/vedhost
[ -x "$VEDHOST" ] || { echo "http_bench: no $VEDHOST (build first)" >&2; exit 1; }
for t in wrk redis-server redis-benchmark redis-cli curl; do
  command -v $t >/dev/null || { echo "http_bench: $t is missing (tools/deps.sh)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/http_bench_XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cat >"$WORK/counter.lua" <<'LUA'
local ved = require "ved"
ved.domain "counter" {
  state = { count = 0 },
  on = {
    add = function(state, p)
      state.count = state.count + ((p and p.by) or 1)
      return { count = state.count }
    end,
  },
}
LUA
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"by":1}'
wrk.headers["Content-Type"] = "application/json"
LUA

# wrk_run URL [SCRIPT]: prints "RPS P99_MS".
wrk_run() {
  local url=$1 script=${2:-}
  local out
  out=$(timeout $((SECS + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" \
    --timeout 10s --latency ${script:+-s "$script"} "$url")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "http_bench: wrk saw errors:" >&2
    echo "$out" >&2
  fi
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; u=v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
             if (u == "us") v = v / 1000; else if (u == "s") v = v * 1000;
             print v}' <<<"$out")
  echo "$rps $p99"
}

# vedhost_start MODE: starts a host with --http on a free port, sets VURL.
vedhost_start() {
  local dir=$WORK/v-$1
  mkdir -p "$dir"
  "$VEDHOST" run --no-watch --durability "$1" --data "$dir/data" \
    --log-level info --http 0 "$WORK/counter.lua" 2>"$dir/log" &
  VPID=$!
  PIDS+=("$VPID")
  local port=""
  for _ in $(seq 100); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$dir/log" | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/log" >&2; exit 1; }
  VURL=http://127.0.0.1:$port
  curl -s --max-time 5 "$VURL/healthz" >/dev/null
}

vedhost_stop() {
  kill -TERM "$VPID"
  for _ in $(seq 100); do kill -0 "$VPID" 2>/dev/null || break; sleep 0.1; done
}

# redis_start FSYNC: appendonly with appendfsync FSYNC; sets RPORT.
redis_start() {
  local dir=$WORK/r-$1
  mkdir -p "$dir"
  RPORT=$(( 20000 + RANDOM % 20000 ))
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$dir" --save '' \
    --appendonly yes --appendfsync "$1" --daemonize no \
    --logfile "$dir/log" &
  RPID=$!
  PIDS+=("$RPID")
  for _ in $(seq 100); do
    redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "http_bench: redis did not start" >&2
  exit 1
}

redis_stop() {
  redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$RPID"
  for _ in $(seq 100); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.1; done
}

# redis_run ARGS...: prints "RPS P99_MS" (redis-benchmark --csv).
redis_run() {
  local n=$(( SECS * 40000 ))
  local out
  out=$(timeout $((SECS * 6 + 30)) redis-benchmark -p "$RPORT" -c "$CONNS" \
    -n "$n" --threads "$THREADS" --csv "$@" | tail -1)
  # "test","rps","avg","min","p50","p95","p99","max"
  # (the test name may hold commas, never '","')
  awk -F'","' '{print $2, $7}' <<<"$out"
}

EVAL=(EVAL "return redis.call('INCRBY', KEYS[1], ARGV[1])" 1 counter 1)
declare -A R

for mode in sync nosync; do
  vedhost_start "$mode"
  R[v_post_$mode]=$(wrk_run "$VURL/domains/counter/events/add" "$WORK/post.lua")
  if [ "$mode" = sync ]; then
    R[v_get]=$(wrk_run "$VURL/domains/counter/state/count")
  fi
  vedhost_stop
  fsync=always
  [ "$mode" = nosync ] && fsync=no
  redis_start "$fsync"
  R[r_post_$mode]=$(redis_run "${EVAL[@]}")
  if [ "$mode" = sync ]; then
    R[r_get]=$(redis_run GET counter)
  fi
  redis_stop
done

printf '\nHTTP ingress vs Redis (%s connections, %s client threads, %ss each)\n' \
  "$CONNS" "$THREADS" "$SECS"
printf '%-28s %12s %10s %12s %10s %9s %9s\n' workload "vedhost rps" "p99 ms" \
  "redis rps" "p99 ms" "rps x" "p99 x"
for w in post_sync post_nosync get; do
  read -r vr vp <<<"${R[v_$w]}"
  read -r rr rp <<<"${R[r_$w]}"
  label=$w
  case $w in
    post_sync) label="POST event (sync/always)" ;;
    post_nosync) label="POST event (nosync/no)" ;;
    get) label="GET state (sync/always)" ;;
  esac
  awk -v l="$label" -v vr="$vr" -v vp="$vp" -v rr="$rr" -v rp="$rp" 'BEGIN {
    printf "%-28s %12.0f %10.2f %12.0f %10.2f %9.2f %9.2f\n", l, vr, vp, rr,
      rp, (rr > 0 ? vr / rr : 0), (rp > 0 ? vp / rp : 0) }'
done
echo "(rps x = vedhost/redis requests per second; p99 x = vedhost/redis p99)"
