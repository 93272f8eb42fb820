# bench/peers/tarantool/tarantool.sh: Tarantool side of the peer benchmarks
# (sourced by bench/run after bench/lib/common.sh).
#
# Each run is a `tarantool SCRIPT` process of its own on its own work dir;
# nothing listens on a port and no system instance is used.
#   fsync     wal_mode = fsync: writer.lua (transactions of VB_BATCH
#             replaces), then a timed restart that replays the xlog;
#   write     wal_mode = write: the same with write() but no fsync;
#   snapshot  the fsync run's directory after box.snapshot() with
#             checkpoint_count = 1 (old xlogs collected): a timed restart
#             that loads the snapshot instead of replaying.
# Throughput is timed inside Tarantool around the update loop
# (clock.monotonic); restart is timed from outside, exec to exit of
# restart.lua, which includes process start, box.cfg recovery and one
# served request (space:len() and a get). Memory per key: box.info.memory()
# data+index delta (native) and VmRSS delta, both in the writer.

vb_tarantool_available() { command -v tarantool >/dev/null; }

vb_tarantool_version() { tarantool --version | head -1; }

# vb_tarantool_restart DIR MODE SETTING K N REP
vb_tarantool_restart() {
  local dir=$1 mode=$2 setting=$3 K=$4 N=$5 rep=$6 el rc tmo last
  tmo=$(vb_timeout_for "$N")
  last=$((N - 1))
  : >"$dir/restart.out"
  read -r el rc _ < <(vb_time line "$tmo" "$dir/restart.out" 'VB count=' \
    -- tarantool "$VB_ROOT/peers/tarantool/restart.lua" "$dir" "$mode" \
    "k$((last % K))")
  if [ "$rc" != 0 ] || [ "$el" = -1.000000 ]; then
    vb_record tarantool "$setting" "$K" "$N" restart n/a s "$rep" \
      "restart.lua failed (rc $rc)"
    return 1
  fi
  vb_record tarantool "$setting" "$K" "$N" restart "$el" s "$rep" \
    "exec to the reply line: box.cfg recovery + one request"
  local line count value want=$((N < K ? N : K))
  line=$(grep '^VB ' "$dir/restart.out" | tail -1)
  count=$(sed -n 's/.*count=\([0-9]*\).*/\1/p' <<<"$line")
  value=$(sed -n 's/.*value=\([^ ]*\).*/\1/p' <<<"$line")
  vb_check tarantool "$setting" "$K" "$N" count "$want" "$count"
  vb_check tarantool "$setting" "$K" "$N" "k$((last % K))" "$last" "$value"
}

# vb_tarantool_one K N REP MODE: MODE is fsync or write.
vb_tarantool_one() {
  local K=$1 N=$2 rep=$3 mode=$4
  local dir="$VB_OUT/work/t-$mode-$K-$N-$rep" el rc tmo line
  rm -rf "$dir"
  mkdir -p "$dir"
  tmo=$(vb_timeout_for "$N")
  vb_setting tarantool "$mode" "wal_mode=$mode, memtx_memory=1 GiB, \
checkpoint_interval=0, hash index on a string key, box.begin/commit around \
each batch of $VB_BATCH replaces"
  read -r el rc < <(vb_time cmd "$tmo" "$dir/writer.out" -- tarantool \
    "$VB_ROOT/peers/tarantool/writer.lua" "$dir" "$mode" "$N" "$K" "$VB_BATCH")
  line=$(grep '^VB ' "$dir/writer.out" | tail -1)
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    vb_record tarantool "$mode" "$K" "$N" tput n/a ups "$rep" \
      "writer failed (rc $rc)"
    return 1
  fi
  local t r0 r1 m0 m1
  t=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$line")
  r0=$(sed -n 's/.*rss0=\([0-9]*\).*/\1/p' <<<"$line")
  r1=$(sed -n 's/.*rss1=\([0-9]*\).*/\1/p' <<<"$line")
  m0=$(sed -n 's/.*mem0=\([0-9]*\).*/\1/p' <<<"$line")
  m1=$(sed -n 's/.*mem1=\([0-9]*\).*/\1/p' <<<"$line")
  vb_record tarantool "$mode" "$K" "$N" tput \
    "$(awk -v n="$N" -v t="$t" 'BEGIN {printf "%.1f", n / t}')" ups "$rep" \
    "update loop, timed inside tarantool"
  if [ "$mode" = fsync ]; then
    vb_record tarantool native "$K" "$N" mem_bpk "$(awk -v a="$m0" -v b="$m1" \
      -v k="$K" 'BEGIN {printf "%.1f", (b - a) / k}')" B/key "$rep" \
      "box.info.memory() data+index delta"
    vb_record tarantool rss "$K" "$N" mem_bpk "$(awk -v a="$r0" -v b="$r1" \
      -v k="$K" 'BEGIN {printf "%.1f", (b - a) * 1024 / k}')" B/key "$rep" \
      "VmRSS delta of the writer"
  fi
  vb_record tarantool "$mode" "$K" "$N" disk \
    "$(vb_du_bytes "$dir"/*.snap "$dir"/*.xlog)" bytes "$rep" "snap + xlogs"
  vb_tarantool_restart "$dir" "$mode" "$mode" "$K" "$N" "$rep" || true
  if [ "$mode" = fsync ]; then
    vb_setting tarantool snapshot "the fsync run's directory after \
box.snapshot() with checkpoint_count=1 (older snap and xlogs collected)"
    read -r el rc < <(vb_time cmd "$tmo" "$dir/snapshot.out" -- tarantool \
      "$VB_ROOT/peers/tarantool/snapshot.lua" "$dir" "$mode")
    if [ "$rc" = 0 ]; then
      vb_record tarantool snapshot "$K" "$N" disk \
        "$(vb_du_bytes "$dir"/*.snap "$dir"/*.xlog)" bytes "$rep" "snap + xlogs"
      vb_tarantool_restart "$dir" "$mode" snapshot "$K" "$N" "$rep" || true
    else
      vb_record tarantool snapshot "$K" "$N" restart n/a s "$rep" \
        "box.snapshot() failed (rc $rc)"
    fi
  fi
  [ "${VB_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

vb_tarantool_bench() {
  local m
  for m in fsync write; do
    vb_log "tarantool $m K=$1 N=$2 rep $3"
    vb_tarantool_one "$1" "$2" "$3" "$m" || true
  done
}
