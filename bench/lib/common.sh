# bench/lib/common.sh: shared helpers for bench/run (sourced, not executed).
#
# What lives here and why:
# - logging (vb_log, vb_warn, vb_die) to stderr with a run-relative clock;
# - results: every measurement is one tab-separated row appended to
#   $VB_OUT/results.tsv (vb_record); bench/report/report.lua turns the rows
#   into REPORT.md. A value of "n/a" carries its reason in the note column;
# - process bookkeeping: every server or long-lived process the harness
#   starts writes its pid into $VB_OUT/pids/NAME.pid (vb_spawn). vb_cleanup,
#   run from the EXIT/INT/TERM trap, stops exactly those pids (TERM, then
#   KILL after a bounded wait) and nothing else;
# - bounded waits: vb_wait_pid_exit and vb_wait_file_line poll with a
#   deadline; nothing in the harness waits without one;
# - dependency install (vb_need_pkgs): apt-get only for what is missing,
#   with service autostart blocked by a temporary policy-rc.d when the
#   machine has none, so installing redis-server or tarantool never leaves
#   a system service running that the harness could mistake for its own.
#
# Invariants: a function that fails returns non-zero and logs why; it never
# exits the harness except vb_die. Timing is never done here: it lives in
# bench/lib/vbtime.lua (CLOCK_MONOTONIC through lua-system).

VB_T0=${VB_T0:-$SECONDS}

vb_log() { printf '[bench %4ds] %s\n' "$((SECONDS - VB_T0))" "$*" >&2; }
vb_warn() { vb_log "WARNING: $*"; }
vb_die() {
  vb_log "FATAL: $*"
  exit 1
}

# vb_record SYSTEM SETTING K N METRIC VALUE UNIT REP [NOTE]
# Appends one measurement row. VALUE is a number or "n/a".
vb_record() {
  local note=${9:-}
  note=${note//$'\t'/ }
  note=${note//$'\n'/ }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" \
    "$6" "$7" "$8" "$note" >>"$VB_OUT/results.tsv"
}

# vb_check SYSTEM SETTING K N WHAT EXPECTED GOT: records a correctness check
# (the state seen after a restart). A mismatch is listed in the report.
vb_check() {
  local status=ok
  [ "$6" = "$7" ] || status=MISMATCH
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
    "$7" "$status" >>"$VB_OUT/checks.tsv"
  [ "$status" = ok ] || vb_warn "$1/$2 K=$3 N=$4 $5: expected $6, got $7"
}

# vb_setting SYSTEM SETTING TEXT: the exact configuration, for the report.
vb_setting() {
  grep -qF "$1"$'\t'"$2"$'\t' "$VB_OUT/settings.tsv" 2>/dev/null && return 0
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$VB_OUT/settings.tsv"
}

# vb_meta KEY VALUE: machine/version facts for the report header.
vb_meta() { printf '%s\t%s\n' "$1" "$2" >>"$VB_OUT/meta.tsv"; }

# vb_time ARGS...: runs bench/lib/vbtime.lua (monotonic timing helper).
vb_time() { lua5.4 "$VB_LIB/vbtime.lua" "$@"; }

# vb_spawn NAME LOG CMD...: starts CMD in the background (own process
# group not needed: we only ever signal the pid), stdout+stderr to LOG,
# remembers its pid in $VB_OUT/pids/NAME.pid and sets VB_PID. Call it
# directly, not in $(...): the process must be a child of the harness shell
# so that its exit is reaped by our wait.
vb_spawn() {
  local name=$1 log=$2
  shift 2
  # Emptied here, not only by the child's redirection: a caller waiting
  # for a line in LOG must not find the previous run's (the idle writer
  # with no keys and the one with K share idle.out).
  : >"$log"
  "$@" >"$log" 2>&1 </dev/null &
  VB_PID=$!
  # Not a job of ours any more: bash still reaps it, but prints no
  # "Killed" notice when we SIGKILL it on purpose.
  disown "$VB_PID" 2>/dev/null || true
  echo "$VB_PID" >"$VB_OUT/pids/$name.pid"
}

# vb_forget NAME: the process NAME has been stopped or has exited.
vb_forget() { rm -f "$VB_OUT/pids/$1.pid"; }

# vb_alive PID: true while PID exists and is not a zombie.
vb_alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# vb_wait_pid_exit PID TIMEOUT_S: waits (bounded) until PID is gone.
vb_wait_pid_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while vb_alive "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
  wait "$pid" 2>/dev/null || true
  return 0
}

# vb_stop_pid PID [TIMEOUT_S]: TERM, bounded wait, then KILL.
vb_stop_pid() {
  local pid=$1 t=${2:-10}
  vb_alive "$pid" || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  vb_wait_pid_exit "$pid" "$t" && return 0
  vb_warn "pid $pid ignored SIGTERM for ${t}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  vb_wait_pid_exit "$pid" 5 || vb_warn "pid $pid survived SIGKILL"
}

# vb_wait_file_line FILE REGEX TIMEOUT_S [PID]: waits until a line of FILE
# matches REGEX (grep -E); fails at the deadline or when PID has exited.
vb_wait_file_line() {
  local f=$1 re=$2 deadline=$((SECONDS + $3)) pid=${4:-}
  while ! grep -qE "$re" "$f" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    if [ -n "$pid" ] && ! vb_alive "$pid"; then
      grep -qE "$re" "$f" 2>/dev/null && return 0
      return 2
    fi
    sleep 0.01
  done
}

# vb_host_up BIN LOG RUN_ARG...: starts `BIN run RUN_ARG...` in the
# background (stderr to LOG), sets VB_PID and waits (bounded, 10 s) for its
# "running N domain(s)" line; non-zero, with a warning, if that never
# comes. The caller stops it (vb_stop_pid) and keeps VB_PID for its trap.
vb_host_up() {
  local bin=$1 log=$2
  shift 2
  "$bin" run "$@" 2>"$log" &
  VB_PID=$!
  vb_wait_file_line "$log" "running [0-9]+ domain" 10 "$VB_PID" && return 0
  vb_warn "$bin run $*: not running after 10 s (see $log)"
  return 1
}

# vb_cleanup: stops every process whose pid file is still registered.
vb_cleanup() {
  local f pid
  [ -d "${VB_OUT:-}/pids" ] || return 0
  for f in "$VB_OUT"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && vb_alive "$pid"; then
      vb_log "stopping $(basename "$f" .pid) (pid $pid)"
      vb_stop_pid "$pid" 5
    fi
    rm -f "$f"
  done
}

# vb_rss_kb PID: resident set size in KiB from /proc (VmRSS).
vb_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# vb_du_bytes DIR...: apparent size in bytes of every file under DIR
# (what the files hold, not the blocks: comparable across filesystems).
vb_du_bytes() {
  du -sb --apparent-size "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

# vb_timeout_for N: a generous bound in seconds for a run of N updates.
vb_timeout_for() { echo $((30 + $1 * (1 + ${VB_VALUE_BYTES:-0} / 32) / 40000)); }

# vb_need_pkgs PKG...: installs the Debian packages that are missing.
vb_need_pkgs() {
  local p missing=() sudo="" made_policy=0
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
      grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  vb_log "installing ${missing[*]} (apt-get)"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep the packages' own services from starting: the harness runs its
    # own servers and must not leave a system one behind.
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  timeout 600 $sudo apt-get update -qq || rc=$?
  [ $rc -eq 0 ] && {
    DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  }
  [ $made_policy -eq 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || vb_warn "apt-get failed (rc $rc) for ${missing[*]}"
  return $rc
}

# vb_have_system NAME: true unless the system was disabled (--only/--skip)
# or is unavailable (recorded in $VB_OUT/unavailable/NAME with the reason).
vb_have_system() {
  [ -e "$VB_OUT/unavailable/$1" ] && return 1
  case ",${VB_ONLY:-}," in
    ,,) ;;
    *",$1,"*) ;;
    *) return 1 ;;
  esac
  return 0
}

vb_unavailable() {
  echo "$2" >"$VB_OUT/unavailable/$1"
  vb_warn "$1 unavailable: $2"
}
