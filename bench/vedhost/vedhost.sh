# bench/vedhost/vedhost.sh: the vedhost side of the benchmarks (sourced by
# bench/run). Written against the command line of DESIGN.md only, so it
# measures whatever vedhost build $VB_VEDHOST points at.
#
# Per K, N and repeat:
#   empty   restart.lua on a fresh data dir: the cost of starting a host with
#           nothing in it (process start, open, first handler, exit). Its
#           exec-to-exit time is subtracted from the writer's wall time for
#           throughput.
#   sync    writer.lua, --durability sync, clean stop by ved.exit(0):
#           throughput = N / (writer wall time - empty), bytes on disk, then
#           a timed restart (clean stop row) that must see done = N.
#   nosync  the same with --durability nosync (throughput and disk only).
#   kill9   writer.lua with IDLE: after N updates it prints VB_DONE and
#           stays up; the harness waits until the state is acknowledged
#           (`vedhost repl -e` answers only once the slice is durable; if
#           the repl is not there, it waits 0.5 s; the repl may take as
#           long as the writer's timeout), reads VmRSS, sends
#           SIGKILL, and times a restart (kill -9 row) that must see N.
#   kill9load  the sync writer again on a fresh data dir, with 2N updates
#           to do, SIGKILLed in the middle of its flood (once the sync
#           writer's wall time for N has passed, so about N are done and
#           every key exists); a timed restart (kill -9 under load row)
#           must see the state at the end of a handler call: done a whole
#           number of batches, and the last key written = done - 1.
#   memory  VmRSS of the idle writer with K keys minus the idle writer with
#           none, per key.
# Restart rows are timed from exec to the line with the first handler's
# reply (bench/lib/vbtime.lua line), like Tarantool and the event log.
# Every restart prints the count it sees. If a clean restart sees 0 after N
# updates, the build does not persist: restart and disk rows become
# "n/a: build does not persist" for the rest of the run.

VB_VEDHOST_NOPERSIST=${VB_VEDHOST_NOPERSIST:-0}
# N at which a vedhost writer hit its timeout: larger runs are skipped, so
# a slow build cannot push the whole run past its time bound.
VB_VEDHOST_TIMEOUT_N=${VB_VEDHOST_TIMEOUT_N:-}

vb_vedhost_version() { timeout 5 "$VB_VEDHOST" --version 2>&1 | head -1; }

# vb_vedhost_script TEMPLATE OUT N K IDLE: fills a template.
vb_vedhost_script() {
  sed -e "s/@N@/$3/g" -e "s/@K@/$4/g" -e "s/@BATCH@/$VB_BATCH/g" \
    -e "s/@IDLE@/$5/g" -e "s/@VALUE_BYTES@/${VB_VALUE_BYTES:-0}/g" \
    "$VB_ROOT/vedhost/$1" >"$2"
}

# vb_vedhost_restart DIR DATA K TMO -> sets VB_EL (exec to the reply line),
# VB_EXIT (exec to exit), VB_RC, VB_DONE, VB_VALUE
vb_vedhost_restart() {
  local dir=$1 data=$2 K=$3 tmo=$4 line
  vb_vedhost_script restart.lua.in "$dir/restart.lua" 0 "$K" false
  : >"$dir/restart.out"
  read -r VB_EL VB_RC VB_EXIT < <(vb_time line "$tmo" "$dir/restart.out" \
    'VB_COUNT' -- "$VB_VEDHOST" run --data "$data" --no-watch \
    "$dir/restart.lua")
  [ "$VB_EL" = -1.000000 ] && [ "$VB_RC" = 0 ] && VB_RC=1 # no reply line
  line=$(grep -o 'VB_COUNT done=[0-9]* value=[^ ]*' "$dir/restart.out" |
    tail -1)
  VB_DONE=$(sed -n 's/.*done=\([0-9]*\).*/\1/p' <<<"$line")
  VB_VALUE=$(sed -n 's/.*value=\([^ ]*\).*/\1/p' <<<"$line")
}

# vb_vedhost_idle DIR DATA N K TMO: runs the idle writer, waits for
# VB_DONE and acknowledgement, sets VB_RSS (KiB), leaves it running with
# its pid in VB_PID. Returns non-zero if it never got there.
vb_vedhost_idle() {
  local dir=$1 data=$2 N=$3 K=$4 tmo=$5 got
  vb_vedhost_script writer.lua.in "$dir/idle.lua" "$N" "$K" true
  vb_spawn vedhost-idle "$dir/idle.out" "$VB_VEDHOST" run --data "$data" \
    --no-watch --durability sync "$dir/idle.lua"
  if ! vb_wait_file_line "$dir/idle.out" 'VB_DONE' "$tmo" "$VB_PID"; then
    vb_warn "idle vedhost writer did not finish (see $dir/idle.out)"
    vb_stop_pid "$VB_PID" 5
    vb_forget vedhost-idle
    return 1
  fi
  # The repl answers once the last slice is durable: at K=1M the writer
  # can be 20-30 s behind when VB_DONE is printed, so a short timeout
  # read the RSS with the store's queue still full. Wait as long as for
  # the writer itself.
  got=$(timeout "$tmo" "$VB_VEDHOST" repl --data "$data" \
    -e 'return domains.bench.state.done' 2>/dev/null | tail -1) || true
  [ "$got" = "$N" ] || sleep 0.5
  VB_RSS=$(vb_rss_kb "$VB_PID")
}

# vb_vedhost_kill9load BASE K N TMO WALL REP: the kill9load row (above);
# WALL = the sync writer's wall time for N updates.
vb_vedhost_kill9load() {
  local base=$1 K=$2 N=$3 tmo=$4 wall=$5 rep=$6 data="$1/load.data" pid
  local ok
  vb_setting vedhost kill9load "restart after SIGKILL of the sync writer \
in the middle of a flood of updates (2N to do, killed after the sync \
writer's wall time for N)"
  if [ -z "$wall" ] || [ "$VB_VEDHOST_NOPERSIST" = 1 ]; then
    vb_record vedhost kill9load "$K" "$N" restart n/a s "$rep" \
      "no sync writer time (it failed), or the build does not persist"
    return 0
  fi
  vb_log "vedhost kill -9 under load K=$K N=$N rep $rep"
  vb_vedhost_script writer.lua.in "$base/load.lua" "$((2 * N))" "$K" false
  vb_spawn vedhost-load "$base/load.out" "$VB_VEDHOST" run --data "$data" \
    --no-watch --durability sync "$base/load.lua"
  pid=$VB_PID
  sleep "$wall"
  if ! vb_alive "$pid"; then
    wait "$pid" 2>/dev/null || true
    vb_forget vedhost-load
    vb_record vedhost kill9load "$K" "$N" restart n/a s "$rep" \
      "the writer finished its 2N updates before the kill"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null
  vb_wait_pid_exit "$pid" 10 || true
  vb_forget vedhost-load
  vb_vedhost_restart "$base" "$data" "$K" "$tmo"
  if [ "$VB_RC" != 0 ] || [ -z "$VB_DONE" ]; then
    vb_record vedhost kill9load "$K" "$N" restart n/a s "$rep" \
      "restart failed (rc $VB_RC)"
    # the report keeps only the rc: the restart's own last words go to the
    # log, and its data dir is kept for a look
    vb_warn "kill -9 under load: restart rc $VB_RC, reply line after \
${VB_EL}s, exit after ${VB_EXIT}s; last lines of its output:"
    tail -5 "$base/restart.out" | sed 's/^/    /' >&2
    cp -a "$data" "/tmp/vedhost-kill9load-failed.$$" 2>/dev/null &&
      vb_warn "its data dir copied to /tmp/vedhost-kill9load-failed.$$"
    return 0
  fi
  vb_record vedhost kill9load "$K" "$N" restart "$VB_EL" s "$rep" \
    "exec to the reply line, includes process start; $VB_DONE updates \
were durable"
  ok=no
  [ $((VB_DONE % VB_BATCH)) = 0 ] || [ "$VB_DONE" = $((2 * N)) ] && ok=yes
  vb_check vedhost kill9load "$K" "$N" "done is whole handler calls" yes \
    "$ok"
  [ "$VB_DONE" -gt 0 ] &&
    vb_check vedhost kill9load "$K" "$N" "k$(((VB_DONE - 1) % K))" \
      "$((VB_DONE - 1))" "$VB_VALUE"
  return 0
}

vb_vedhost_bench() {
  local K=$1 N=$2 rep=$3 base="$VB_OUT/work/v-$1-$2-$3"
  local tmo empty el rc dur note want_v=$(($2 - 1)) rss0 rss1 wall=
  tmo=$(vb_timeout_for "$N")
  if [ -n "$VB_VEDHOST_TIMEOUT_N" ] &&
    [ "$N" -ge "$VB_VEDHOST_TIMEOUT_N" ]; then
    vb_record vedhost sync "$K" "$N" tput n/a ups "$rep" \
      "skipped: a writer timed out at N=$VB_VEDHOST_TIMEOUT_N"
    return 0
  fi
  rm -rf "$base"
  mkdir -p "$base"
  vb_setting vedhost sync "vedhost run --no-watch --durability sync; \
$VB_BATCH updates per handler call (ctx:send to itself), clean stop by \
ved.exit(0)"
  vb_setting vedhost nosync "the same with --durability nosync"
  vb_setting vedhost clean "restart after the sync writer's clean stop: exec \
to exit of a script whose start handler reads state and calls ved.exit(0)"
  vb_setting vedhost kill9 "restart after SIGKILL of the sync writer, once \
its N updates were acknowledged"

  vb_log "vedhost empty start K=$K N=$N rep $rep"
  vb_vedhost_restart "$base" "$base/empty.data" "$K" "$tmo"
  if [ "$VB_RC" != 0 ]; then
    vb_record vedhost sync "$K" "$N" tput n/a ups "$rep" \
      "vedhost run failed on an empty data dir (rc $VB_RC)"
    sed 's/^/  | /' "$base/restart.out" | head -5 >&2
    return 1
  fi
  empty=$VB_EXIT
  vb_record vedhost empty "$K" "$N" restart "$VB_EL" s "$rep" \
    "empty data dir, exec to the reply line"

  for dur in sync nosync; do
    vb_log "vedhost $dur K=$K N=$N rep $rep"
    local data="$base/$dur.data"
    vb_vedhost_script writer.lua.in "$base/writer.lua" "$N" "$K" false
    : >"$base/$dur.out"
    read -r el rc < <(vb_time cmd "$tmo" "$base/$dur.out" -- "$VB_VEDHOST" \
      run --data "$data" --no-watch --durability "$dur" "$base/writer.lua")
    if [ "$rc" != 0 ] || ! grep -q "VB_DONE done=$N" "$base/$dur.out"; then
      [ "$rc" = 124 ] && VB_VEDHOST_TIMEOUT_N=$N
      vb_record vedhost "$dur" "$K" "$N" tput n/a ups "$rep" \
        "writer failed (rc $rc$( [ "$rc" = 124 ] && echo ", timeout ${tmo}s"))"
      sed 's/^/  | /' "$base/$dur.out" | tail -5 >&2
      [ "$rc" = 124 ] && break
      continue
    fi
    note="N / (writer exec-to-exit - empty start); includes the final flush"
    [ "$VB_VEDHOST_NOPERSIST" = 1 ] && note="$note; build does not persist"
    local tput
    tput=$(awk -v n="$N" -v a="$el" -v b="$empty" 'BEGIN {d = a - b;
      if (d < 0.0005) print "n/a"; else printf "%.1f", n / d}')
    [ "$tput" = n/a ] &&
      note="too short to time: writer took less than 0.5 ms over empty start"
    vb_record vedhost "$dur" "$K" "$N" tput "$tput" ups "$rep" "$note"
    [ "$dur" = sync ] && wall=$el
    if [ "$dur" = sync ]; then
      vb_vedhost_restart "$base" "$data" "$K" "$tmo"
      if [ "$VB_RC" = 0 ] && [ "${VB_DONE:-0}" = 0 ] && [ "$N" -gt 0 ]; then
        [ "$VB_VEDHOST_NOPERSIST" = 1 ] ||
          vb_warn "vedhost restarted empty: build does not persist"
        VB_VEDHOST_NOPERSIST=1
      fi
    fi
    if [ "$VB_VEDHOST_NOPERSIST" = 1 ]; then
      vb_record vedhost "$dur" "$K" "$N" disk n/a bytes "$rep" \
        "build does not persist"
      [ "$dur" = sync ] && vb_record vedhost clean "$K" "$N" restart n/a s \
        "$rep" "build does not persist"
      continue
    fi
    vb_record vedhost "$dur" "$K" "$N" disk "$(vb_du_bytes "$data")" bytes \
      "$rep" "data dir after a clean stop"
    if [ "$dur" = sync ]; then
      if [ "$VB_RC" = 0 ]; then
        vb_record vedhost clean "$K" "$N" restart "$VB_EL" s "$rep" \
          "exec to the reply line, includes process start"
        vb_check vedhost clean "$K" "$N" "done" "$N" "$VB_DONE"
        vb_check vedhost clean "$K" "$N" "k$((want_v % K))" "$want_v" \
          "$VB_VALUE"
      else
        vb_record vedhost clean "$K" "$N" restart n/a s "$rep" \
          "restart failed (rc $VB_RC)"
      fi
    fi
  done

  if [ -n "$VB_VEDHOST_TIMEOUT_N" ]; then
    vb_record vedhost kill9 "$K" "$N" restart n/a s "$rep" \
      "skipped: a writer timed out at N=$VB_VEDHOST_TIMEOUT_N"
    return 1
  fi
  vb_log "vedhost kill -9 K=$K N=$N rep $rep"
  if vb_vedhost_idle "$base" "$base/idle0.data" 0 "$K" "$tmo"; then
    rss0=$VB_RSS
    kill -KILL "$VB_PID" 2>/dev/null
    vb_wait_pid_exit "$VB_PID" 10 || true
    vb_forget vedhost-idle
  fi
  if vb_vedhost_idle "$base" "$base/kill9.data" "$N" "$K" "$tmo"; then
    rss1=$VB_RSS
    kill -KILL "$VB_PID" 2>/dev/null
    vb_wait_pid_exit "$VB_PID" 10 || true
    vb_forget vedhost-idle
    [ -n "${rss0:-}" ] && vb_record vedhost rss "$K" "$N" mem_bpk \
      "$(awk -v a="$rss0" -v b="$rss1" -v k="$K" \
        'BEGIN {printf "%.1f", (b - a) * 1024 / k}')" B/key "$rep" \
      "VmRSS of the idle writer minus the idle writer with no keys"
    if [ "$VB_VEDHOST_NOPERSIST" = 1 ]; then
      vb_record vedhost kill9 "$K" "$N" restart n/a s "$rep" \
        "build does not persist"
    else
      vb_record vedhost kill9 "$K" "$N" disk "$(vb_du_bytes \
        "$base/kill9.data")" bytes "$rep" "data dir after kill -9"
      vb_vedhost_restart "$base" "$base/kill9.data" "$K" "$tmo"
      if [ "$VB_RC" = 0 ]; then
        vb_record vedhost kill9 "$K" "$N" restart "$VB_EL" s "$rep" \
          "exec to the reply line, includes process start"
        vb_check vedhost kill9 "$K" "$N" "done" "$N" "$VB_DONE"
        vb_check vedhost kill9 "$K" "$N" "k$((want_v % K))" "$want_v" \
          "$VB_VALUE"
      else
        vb_record vedhost kill9 "$K" "$N" restart n/a s "$rep" \
          "restart failed (rc $VB_RC)"
      fi
    fi
  else
    vb_record vedhost kill9 "$K" "$N" restart n/a s "$rep" \
      "idle writer did not reach VB_DONE"
  fi
  vb_vedhost_kill9load "$base" "$K" "$N" "$tmo" "$wall" "$rep"
  [ "${VB_KEEP:-0}" = 1 ] || rm -rf "$base"
}
