# bench/peers/eventlog/eventlog.sh: the plain append-only event log
# (event-sourcing baseline), sourced by bench/run.
#   write  writer.lua appends one line per event, one write(2) per batch of
#          VB_BATCH events, no fsync (plain Lua has none).
# Restart = replay.lua reads the whole log into a table and serves one
# request; timed from outside, exec to exit (includes lua5.4 start).
# Bytes on disk = the log file.

vb_eventlog_bench() {
  local K=$1 N=$2 rep=$3 dir="$VB_OUT/work/e-$1-$2-$3" el rc line t
  local tmo last count value want=$(($2 < $1 ? $2 : $1))
  vb_log "eventlog K=$K N=$N rep $rep"
  rm -rf "$dir"
  mkdir -p "$dir"
  tmo=$(vb_timeout_for "$N")
  last=$((N - 1))
  vb_setting eventlog write "one text line per event (\"k<key> <value>\"), \
file:flush() (one write(2)) per batch of $VB_BATCH, no fsync; replay reads \
every line into a Lua table"
  read -r el rc < <(vb_time cmd "$tmo" "$dir/writer.out" -- lua5.4 \
    "$VB_ROOT/peers/eventlog/writer.lua" "$dir/events.log" "$N" "$K" \
    "$VB_BATCH")
  line=$(grep '^VB ' "$dir/writer.out" | tail -1)
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    vb_record eventlog write "$K" "$N" tput n/a ups "$rep" \
      "writer failed (rc $rc)"
    return 1
  fi
  t=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$line")
  vb_record eventlog write "$K" "$N" tput \
    "$(awk -v n="$N" -v t="$t" 'BEGIN {printf "%.1f", n / t}')" ups "$rep" \
    "update loop + close, timed inside lua5.4"
  vb_record eventlog write "$K" "$N" disk "$(vb_du_bytes "$dir/events.log")" \
    bytes "$rep"
  read -r el rc _ < <(vb_time line "$tmo" "$dir/replay.out" 'VB count=' \
    -- lua5.4 "$VB_ROOT/peers/eventlog/replay.lua" "$dir/events.log" \
    "k$((last % K))")
  if [ "$rc" = 0 ] && [ "$el" != -1.000000 ]; then
    vb_record eventlog write "$K" "$N" restart "$el" s "$rep" \
      "exec to the reply line: full replay + one request"
    line=$(grep '^VB ' "$dir/replay.out" | tail -1)
    count=$(sed -n 's/.*count=\([0-9]*\).*/\1/p' <<<"$line")
    value=$(sed -n 's/.*value=\([^ ]*\).*/\1/p' <<<"$line")
    vb_check eventlog write "$K" "$N" count "$want" "$count"
    vb_check eventlog write "$K" "$N" "k$((last % K))" "$last" "$value"
  else
    vb_record eventlog write "$K" "$N" restart n/a s "$rep" \
      "replay failed (rc $rc)"
  fi
  [ "${VB_KEEP:-0}" = 1 ] || rm -rf "$dir"
}
