# bench/peers/redis/redis.sh: Redis side of the peer benchmarks (sourced by
# bench/run after bench/lib/common.sh).
#
# Every run starts its own redis-server on a unix socket in its own
# directory (port 0: no TCP listener), with a config file written here, and
# stops it again; the Debian service is never used. The workload is
# bench/peers/redis/update.lua loaded once with SCRIPT LOAD and called with
# EVALSHA, VB_BATCH updates per call, from one redis-cli reading the calls
# on stdin (one process, no per-call client start).
#
# Settings (one fresh server and directory each):
#   aof-always    appendonly yes, appendfsync always, no RDB preamble
#   aof-everysec  appendonly yes, appendfsync everysec, no RDB preamble
#   rdb           appendonly no; one SAVE after the workload
#   aof-preamble  appendonly yes, everysec, aof-use-rdb-preamble yes and a
#                 BGREWRITEAOF after the workload (base = RDB, empty tail)
# All: save "" (no background RDB during the run) and
# auto-aof-rewrite-percentage 0 (no rewrite during the run, so the AOF rows
# replay the whole history).
#
# Measured: throughput (updates / redis-cli wall time), restart time (exec
# of redis-server until PING answers PONG rather than LOADING), bytes on
# disk (AOF dir + dump.rdb), memory per key (INFO used_memory and RSS
# delta over the empty server, aof-everysec only), and a check of DBSIZE
# and one value after the restart.

VB_REDIS_SETTINGS="aof-always aof-everysec rdb aof-preamble"

vb_redis_available() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null
}

vb_redis_version() { redis-server --version | sed 's/^Redis server //'; }

# vb_redis_conf DIR SETTING: writes DIR/redis.conf.
vb_redis_conf() {
  local dir=$1 setting=$2 aof=yes fsync=everysec pre=no
  case $setting in
    aof-always) fsync=always ;;
    aof-everysec) ;;
    rdb) aof=no ;;
    aof-preamble) pre=yes ;;
  esac
  cat >"$dir/redis.conf" <<EOF
# written by bench/peers/redis/redis.sh for setting $setting
port 0
unixsocket $dir/redis.sock
unixsocketperm 700
daemonize no
dir $dir
logfile $dir/redis.log
save ""
dbfilename dump.rdb
appendonly $aof
appendfilename appendonly.aof
appenddirname appendonlydir
appendfsync $fsync
aof-use-rdb-preamble $pre
auto-aof-rewrite-percentage 0
no-appendfsync-on-rewrite no
EOF
  local conf
  conf=$(grep -vE '^(#|unixsocket|dir|logfile|port|daemonize)' \
    "$dir/redis.conf" | tr '\n' ';' | sed 's/;$//')
  vb_setting redis "$setting" "$conf; unix socket, port 0"
}

vb_rcli() { timeout 30 redis-cli -s "$VB_REDIS_SOCK" "$@"; }

# vb_redis_info FIELD: one field of INFO.
vb_redis_info() {
  vb_rcli INFO | tr -d '\r' | awk -F: -v f="$1" '$1 == f {print $2}'
}

# vb_redis_start DIR NAME: starts (untimed), waits for PONG, sets VB_PID.
vb_redis_start() {
  local dir=$1 name=$2 pid i
  vb_spawn "$name" "$dir/stdout.log" redis-server "$dir/redis.conf"
  pid=$VB_PID
  for ((i = 0; i < 1500; i++)); do
    [ "$(redis-cli -s "$dir/redis.sock" PING 2>/dev/null)" = PONG ] && return 0
    vb_alive "$pid" || break
    sleep 0.02
  done
  vb_warn "redis-server did not answer PING in $dir (see $dir/redis.log)"
  vb_stop_pid "$pid" 5
  vb_forget "$name"
  return 1
}

# vb_redis_stop PID NAME: SHUTDOWN NOSAVE (the AOF is flushed and fsync'd
# by Redis on shutdown), bounded wait, then the generic stop.
vb_redis_stop() {
  vb_rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  vb_wait_pid_exit "$1" 60 || vb_stop_pid "$1" 5
  vb_forget "$2"
}

# vb_redis_one K N REP SETTING
vb_redis_one() {
  local K=$1 N=$2 rep=$3 setting=$4
  local dir="$VB_OUT/work/r-$setting-$K-$N-$rep" name="redis-$setting"
  local pid sha tmo out el rc mem0 rss0 mem1 rss1
  rm -rf "$dir"
  mkdir -p "$dir"
  vb_redis_conf "$dir" "$setting"
  VB_REDIS_SOCK="$dir/redis.sock"
  tmo=$(vb_timeout_for "$N")
  vb_redis_start "$dir" "$name" || {
    vb_record redis "$setting" "$K" "$N" tput n/a ups "$rep" \
      "server did not start"
    return 1
  }
  pid=$VB_PID
  mem0=$(vb_redis_info used_memory)
  rss0=$(vb_rss_kb "$pid")
  sha=$(vb_rcli SCRIPT LOAD "$(cat "$VB_ROOT/peers/redis/update.lua")")
  awk -v n="$N" -v b="$VB_BATCH" -v k="$K" -v sha="$sha" \
    -v vb="${VB_VALUE_BYTES:-0}" 'BEGIN {
    for (s = 0; s < n; s += b) { e = s + b; if (e > n) e = n;
      printf "EVALSHA %s 0 %d %d %d %d\n", sha, s, e, k, vb } }' \
    >"$dir/calls.txt"
  read -r el rc < <(VBTIME_STDIN="$dir/calls.txt" vb_time cmd "$tmo" \
    "$dir/cli.out" -- redis-cli -s "$VB_REDIS_SOCK")
  out=$(awk '{s += $1} END {print s + 0}' "$dir/cli.out")
  if [ "$rc" != 0 ] || [ "$out" != "$N" ]; then
    vb_record redis "$setting" "$K" "$N" tput n/a ups "$rep" \
      "workload failed (rc $rc, $out of $N updates acknowledged)"
    vb_redis_stop "$pid" "$name"
    return 1
  fi
  vb_record redis "$setting" "$K" "$N" tput "$(awk -v n="$N" -v t="$el" \
    'BEGIN {printf "%.1f", n / t}')" ups "$rep"
  if [ "$setting" = aof-everysec ]; then
    mem1=$(vb_redis_info used_memory)
    rss1=$(vb_rss_kb "$pid")
    vb_record redis native "$K" "$N" mem_bpk "$(awk -v a="$mem0" -v b="$mem1" \
      -v k="$K" 'BEGIN {printf "%.1f", (b - a) / k}')" B/key "$rep" \
      "INFO used_memory delta"
    vb_record redis rss "$K" "$N" mem_bpk "$(awk -v a="$rss0" -v b="$rss1" \
      -v k="$K" 'BEGIN {printf "%.1f", (b - a) * 1024 / k}')" B/key "$rep" \
      "VmRSS delta of redis-server"
  fi
  case $setting in
    rdb) vb_rcli SAVE >/dev/null ;;
    aof-preamble)
      vb_rcli BGREWRITEAOF >/dev/null
      local deadline=$((SECONDS + tmo))
      sleep 0.05
      while [ "$(vb_redis_info aof_rewrite_in_progress)" != 0 ] ||
        [ "$(vb_redis_info aof_rewrite_scheduled)" != 0 ]; do
        [ "$SECONDS" -lt "$deadline" ] || {
          vb_warn "BGREWRITEAOF did not finish in ${tmo}s"
          break
        }
        sleep 0.05
      done
      ;;
  esac
  vb_redis_stop "$pid" "$name"
  vb_record redis "$setting" "$K" "$N" disk \
    "$(vb_du_bytes "$dir/appendonlydir" "$dir/dump.rdb")" bytes "$rep"
  # Timed restart: exec of redis-server until PING says PONG (not LOADING).
  local pidfile="$VB_OUT/pids/$name.pid"
  if read -r el rc < <(vb_time ready "$tmo" "$pidfile" "$dir/stdout2.log" \
    PONG -- redis-server "$dir/redis.conf" -- \
    redis-cli -s "$VB_REDIS_SOCK" PING); then
    vb_record redis "$setting" "$K" "$N" restart "$el" s "$rep" \
      "exec to PONG, probe every ~2 ms ($rc probes)"
  else
    vb_record redis "$setting" "$K" "$N" restart n/a s "$rep" \
      "no PONG in ${tmo}s"
  fi
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && vb_alive "$pid"; then
    local want=$((N < K ? N : K)) last=$((N - 1))
    vb_check redis "$setting" "$K" "$N" dbsize "$want" "$(vb_rcli DBSIZE)"
    vb_check redis "$setting" "$K" "$N" "k$((last % K))" "$last" \
      "$(vb_rcli GET "k$((last % K))" | sed 's/x*$//')"
    vb_redis_stop "$pid" "$name"
  fi
  [ "${VB_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# vb_redis_bench K N REP: every setting.
vb_redis_bench() {
  local s
  for s in $VB_REDIS_SETTINGS; do
    vb_log "redis $s K=$1 N=$2 rep $3"
    vb_redis_one "$1" "$2" "$3" "$s" || true
  done
}
