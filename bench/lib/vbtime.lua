-- bench/lib/vbtime.lua: monotonic wall-clock timing for the harness.
--
-- Bash has no monotonic clock ($EPOCHREALTIME follows the settable system
-- clock), so every duration the report shows is taken here with
-- CLOCK_MONOTONIC through lua-system (system.monotime). Commands are started
-- through `/bin/sh -c 'exec ...'`, so the measured span includes one fork and
-- exec of the shell and the exec of the command: `vbtime.lua cmd 10 -- true`
-- measures that floor, and the report prints it beside the numbers.
--
-- Usage (one line of output, fields separated by spaces):
--   vbtime.lua now
--       -> monotonic seconds
--   vbtime.lua cmd TIMEOUT_S LOG -- CMD ARG...
--       runs CMD (stdout+stderr appended to LOG, "-" for /dev/null; stdin
--       from $VBTIME_STDIN, default /dev/null) under
--       coreutils timeout; -> "<elapsed_s> <exit_code>"
--   vbtime.lua line TIMEOUT_S LOG EXPECT -- CMD ARG...
--       runs CMD like `cmd` (stdin /dev/null), but reads its output
--       (stdout+stderr, appended to LOG) through a pipe and notes when the
--       first line containing EXPECT (a plain string) arrives: the reply to
--       the first request after a restart, before the process exits.
--       -> "<seconds to that line, or -1 if none came> <exit_code>
--       <seconds to exit>"
--   vbtime.lua ready TIMEOUT_S PIDFILE LOG EXPECT -- CMD ARG... -- PROBE...
--       starts CMD in the background (its pid written to PIDFILE, output to
--       LOG), then runs PROBE every ~2 ms until its output contains EXPECT
--       (a plain string); -> "<elapsed_s> <probes>" or exit 1 on timeout or
--       when CMD dies first. The server keeps running; the caller stops it.
--
-- Invariant: every loop here has a deadline.

local system = require "system"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function join(list, from, to)
  local out = {}
  for i = from, to do out[#out + 1] = q(list[i]) end
  return table.concat(out, " ")
end

local function find(list, what, from)
  for i = from, #list do
    if list[i] == what then return i end
  end
  return nil
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local line = f:read("l") or ""
  f:close()
  local state = line:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

local function usage()
  io.stderr:write("usage: vbtime.lua now | cmd T LOG -- CMD... | "
                  .. "line T LOG EXPECT -- CMD... | "
                  .. "ready T PIDFILE LOG EXPECT -- CMD... -- PROBE...\n")
  os.exit(2)
end

-- The shell line that runs arg[from..] under coreutils timeout (limit
-- seconds) with the redirections redir, and its pid file: the pid of
-- `timeout` goes to $VB_OUT/pids/ while it runs, so that the harness's exit
-- trap can stop it (timeout passes SIGTERM on to the command).
local function guarded(kind, limit, from, redir)
  local pidfile = "/dev/null"
  if os.getenv("VB_OUT") then
    pidfile = string.format("%s/pids/%s-%.0f.pid", os.getenv("VB_OUT"), kind,
                            system.monotime() * 1e9)
  end
  return "timeout -k 5 " .. limit .. " " .. join(arg, from, #arg) .. " " ..
         redir .. " & echo $! >" .. q(pidfile) .. "; wait $!", pidfile
end

-- The exit code of a guarded line that finished (os.execute / close
-- results; a signal counts as 128 + its number); removes its pid file.
local function finished(pidfile, ok, how, code)
  if pidfile ~= "/dev/null" then os.remove(pidfile) end
  if how == "signal" then code = 128 + code end
  return ok and 0 or code
end

local mode = arg[1]
if mode == "now" then
  print(string.format("%.9f", system.monotime()))
elseif mode == "cmd" then
  local limit, log = tonumber(arg[2]), arg[3]
  if not limit or arg[4] ~= "--" or #arg < 5 then usage() end
  local redir = log == "-" and ">/dev/null 2>&1" or (">>" .. q(log) .. " 2>&1")
  local stdin = os.getenv("VBTIME_STDIN") or "/dev/null"
  local line, pidfile = guarded("cmd", limit, 5, redir .. " <" .. q(stdin))
  local t0 = system.monotime()
  local ok, how, code = os.execute(line)
  local dt = system.monotime() - t0
  print(string.format("%.6f %d", dt, finished(pidfile, ok, how, code)))
elseif mode == "line" then
  local limit, log, expect = tonumber(arg[2]), arg[3], arg[4]
  if not limit or not expect or arg[5] ~= "--" or #arg < 6 then usage() end
  local out = assert(io.open(log, "a"))
  local line, pidfile = guarded("line", limit, 6, "2>&1 </dev/null")
  local t0 = system.monotime()
  local p = assert(io.popen(line, "r"))
  local at = -1
  for l in p:lines() do
    if at < 0 and l:find(expect, 1, true) then at = system.monotime() - t0 end
    out:write(l, "\n")
  end
  local ok, how, code = p:close()
  local dt = system.monotime() - t0
  out:close()
  print(string.format("%.6f %d %.6f", at, finished(pidfile, ok, how, code),
                      dt))
elseif mode == "ready" then
  local limit, pidfile, log, expect = tonumber(arg[2]), arg[3], arg[4], arg[5]
  if not limit or arg[6] ~= "--" then usage() end
  local sep = find(arg, "--", 7)
  if not sep or sep == 7 or sep == #arg then usage() end
  local start = "exec " .. join(arg, 7, sep - 1) .. " >" .. q(log) ..
                " 2>&1 </dev/null & echo $! >" .. q(pidfile)
  local probe = join(arg, sep + 1, #arg) .. " 2>&1 </dev/null"
  local t0 = system.monotime()
  os.execute(start)
  local f = io.open(pidfile, "r")
  local pid = f and f:read("n")
  if f then f:close() end
  if not pid then
    io.stderr:write("vbtime: could not start " .. arg[7] .. "\n")
    os.exit(1)
  end
  local probes = 0
  while true do
    local p = io.popen(probe, "r")
    local out = p:read("a") or ""
    p:close()
    probes = probes + 1
    if out:find(expect, 1, true) then
      print(string.format("%.6f %d", system.monotime() - t0, probes))
      os.exit(0)
    end
    if system.monotime() - t0 > limit then
      io.stderr:write("vbtime: timeout after " .. limit .. " s; last probe: "
                      .. out:gsub("%s+$", "") .. "\n")
      os.exit(1)
    end
    if not alive(pid) then
      io.stderr:write("vbtime: " .. arg[7] .. " exited before ready\n")
      os.exit(1)
    end
    system.sleep(0.002)
  end
else
  usage()
end
