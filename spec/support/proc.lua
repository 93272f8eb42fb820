-- spec/support/proc.lua - start and watch real vedhost processes from
-- busted specs, with nothing but the shell (no extra rocks).
--
--   local proc = require "support.proc"
--   local dir = proc.tmpdir()
--   proc.write(dir .. "/a.lua", src)
--   local r = proc.run({ "run", dir .. "/a.lua" }, { cwd = dir })
--   -- r.code, r.log (stderr), r.out (stdout)
--   local p = proc.start({ "run", "a.lua" }, { cwd = dir })
--   proc.wait_log(p, "running", 10)  -- true once the log has it
--   proc.signal(p, "TERM"); local code = proc.wait(p, 10)
--
-- Most specs want a host on a script in a fresh dir, up and running:
--   local p = proc.start_host(SRC, { args = { "--http", "0" }, http = true })
--   -- p.wdir (the dir), p.url / p.port (with http), p.pid, p.log
--   local code, log = proc.stop_host(p)   -- SIGTERM, wait, clean up
--   proc.reap()   -- in a teardown: kill what a failed spec left running
--
-- Every wait is bounded (default 30 s): a hung host makes the spec fail,
-- never hang CI. run() is bounded with timeout(1) and KILL: a killed run
-- reports code 137.
local M = {}

M.DEFAULT_TIMEOUT = 30

local build = os.getenv("VEDHOST_BUILD") or "build"
local source = os.getenv("VEDHOST_SOURCE") or "."
M.bin = build .. "/bin/vedhost"
M.source = source

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read = read

function M.write(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

function M.sleep(s)
  os.execute("sleep " .. tostring(s))
end

function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/vedhost_spec_XXXXXX")
  local dir = p:read("l")
  p:close()
  assert(dir and #dir > 0, "mktemp failed")
  return dir
end

function M.rmdir(dir)
  if dir and dir:match("^/tmp/vedhost_spec_") then
    os.execute("rm -rf " .. q(dir))
  end
end

local function cmdline(args, opts)
  local parts = { "env" }
  for k, v in pairs(opts.env or {}) do
    parts[#parts + 1] = k .. "=" .. q(v)
  end
  parts[#parts + 1] = q(opts.bin or M.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- Run vedhost to completion (bounded). Returns { code, log, out }.
function M.run(args, opts)
  opts = opts or {}
  local dir = opts.cwd or M.tmpdir()
  local own = not opts.cwd -- a dir we made is removed afterwards
  local errf, outf = os.tmpname(), os.tmpname()
  local sh = string.format("cd %s && timeout -s KILL %d %s >%s 2>%s",
                           q(dir), opts.timeout or M.DEFAULT_TIMEOUT,
                           cmdline(args, opts), q(outf), q(errf))
  local _, _, code = os.execute(sh)
  local r = { code = code, log = read(errf) or "", out = read(outf) or "" }
  os.remove(errf)
  os.remove(outf)
  if own then M.rmdir(dir) end
  return r
end

-- Start vedhost in the background. Returns a handle with pid, log path.
function M.start(args, opts)
  opts = opts or {}
  local dir = opts.cwd or M.tmpdir()
  local base = os.tmpname()
  local p = { log = base .. ".log", pidf = base .. ".pid", rcf = base .. ".rc",
              base = base, dir = not opts.cwd and dir or nil }
  local inner = string.format(
    "cd %s && %s 2>%s >/dev/null & echo $! >%s; wait $!; echo $? >%s",
    q(dir), cmdline(args, opts), q(p.log), q(p.pidf .. ".tmp"), q(p.rcf))
  -- write the pid file atomically: readers never see it half-written
  inner = inner:gsub(">" .. q(p.pidf .. ".tmp") .. ";",
                     ">" .. q(p.pidf .. ".tmp") .. " && mv " ..
                     q(p.pidf .. ".tmp") .. " " .. q(p.pidf) .. ";")
  os.execute("sh -c " .. q(inner) .. " >/dev/null 2>&1 &")
  local deadline = os.time() + M.DEFAULT_TIMEOUT
  while os.time() <= deadline do
    local s = read(p.pidf)
    if s and s:match("%d+") then
      p.pid = tonumber(s:match("%d+"))
      return p
    end
    M.sleep(0.02)
  end
  error("vedhost did not start")
end

function M.logtext(p)
  return read(p.log) or ""
end

-- Wait until the log contains pattern (plain text); true, or false after
-- timeout seconds.
function M.wait_log(p, text, timeout)
  local deadline = os.time() + (timeout or M.DEFAULT_TIMEOUT)
  while os.time() <= deadline do
    if M.logtext(p):find(text, 1, true) then return true end
    if read(p.rcf) then -- exited: one last look
      return M.logtext(p):find(text, 1, true) ~= nil
    end
    M.sleep(0.02)
  end
  return false
end

function M.signal(p, sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig, p.pid))
end

-- Wait for the process to exit: its exit code, or nil after timeout (the
-- process is then killed).
function M.wait(p, timeout)
  local deadline = os.time() + (timeout or M.DEFAULT_TIMEOUT)
  while os.time() <= deadline do
    local s = read(p.rcf)
    if s and s:match("%d+") then return tonumber(s:match("%d+")) end
    M.sleep(0.02)
  end
  M.signal(p, "KILL")
  return nil
end

-- Remove the handle's files (and the dir start() made, if any).
function M.cleanup(p)
  for _, f in ipairs({ p.log, p.pidf, p.rcf, p.base }) do os.remove(f) end
  if p.dir then M.rmdir(p.dir) end
end

-- The HTTP ingress's address from p's log ("http: listening on
-- 127.0.0.1:PORT"): sets p.port and p.url, asserts (busted) it is there.
function M.http_url(p)
  local assert = require "luassert"
  local port = M.logtext(p):match("http: listening on 127%.0%.0%.1:(%d+)")
  assert.truthy(port, M.logtext(p))
  p.port = port
  p.url = "http://127.0.0.1:" .. port
  return p.url
end

-- Hosts started and not stopped yet (start_host and track add them,
-- stop_host drops them): reap() kills and cleans up what is left, for a
-- teardown, so that a failing assertion leaves no process behind.
local running = {}

function M.track(p)
  running[p] = true
  return p
end

function M.reap()
  for p in pairs(running) do
    M.signal(p, "KILL")
    M.wait(p, 5)
    M.cleanup(p)
    if p.wdir then M.rmdir(p.wdir) end
  end
  running = {}
end

-- Start `vedhost run ARGS... NAME` in a fresh dir (p.wdir) holding src as
-- NAME, and wait (asserting, busted) until the log says opts.ready.
-- opts: name ("a.lua"), args ({}), ready ("running"), timeout (the
-- default), http (read p.url and p.port), bin, env; dir: start in this
-- dir instead, where NAME already is (src nil), and leave it to the caller.
function M.start_host(src, opts)
  local assert = require "luassert"
  opts = opts or {}
  local dir = opts.dir or M.tmpdir()
  local name = opts.name or "a.lua"
  if src then M.write(dir .. "/" .. name, src) end
  local argv = { "run" }
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = name
  local p = M.track(M.start(argv, { cwd = dir, env = opts.env, bin = opts.bin }))
  if not opts.dir then p.wdir = dir end
  assert.is_true(M.wait_log(p, opts.ready or "running", opts.timeout),
                 M.logtext(p))
  if opts.http then M.http_url(p) end
  return p
end

-- Stop a host with SIGTERM: its exit code (nil if it had to be killed
-- after timeout seconds) and its log. Removes its files, and its dir
-- unless keep_dir.
function M.stop_host(p, timeout, keep_dir)
  running[p] = nil
  M.signal(p, "TERM")
  local code = M.wait(p, timeout)
  local log = M.logtext(p)
  M.cleanup(p)
  if p.wdir and not keep_dir then M.rmdir(p.wdir) end
  return code, log
end

-- Run a shell command (stderr dropped); returns its stdout and exit code.
function M.sh(cmd)
  local f = io.popen(cmd .. " 2>/dev/null; echo \"::$?\"")
  local out = f:read("a")
  f:close()
  local body, code = out:match("^(.-)::(%d+)%s*$")
  return body, tonumber(code)
end

-- "hash name" of every file under dir, sorted by name: equal strings mean
-- byte-identical trees (the "the store is untouched" checks).
function M.tree_hash(dir)
  local out, code = M.sh("cd " .. q(dir) .. " && find . -type f " ..
                         "| sort | xargs sha256sum")
  assert(code == 0, "tree_hash: cannot hash " .. dir)
  return out
end

-- Lines of text that contain pattern (plain), in order.
function M.lines_with(text, pat)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:find(pat, 1, true) then out[#out + 1] = line end
  end
  return out
end

-- Asserts (busted) that the run r logged exactly one line and that it
-- starts with "vedhost: " (the bad-input rule); returns that line.
function M.one_line(r)
  local assert = require "luassert" -- busted's assert (specs get it as a global)
  local lines = {}
  for l in r.log:gmatch("[^\n]+") do lines[#lines + 1] = l end
  assert.are.equal(1, #lines, r.log)
  assert.truthy(lines[1]:find("^vedhost: "), r.log)
  return lines[1]
end

return M
