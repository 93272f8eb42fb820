--[[
ved.testing - test vedhost domains with busted, on the real runtime and a
virtual clock (README "Testing your domains").

  local vt = require "ved.testing"
  local h = vt.host { scripts = { "domains/counter.lua" },
                      now = "2026-01-01T00:00:00Z", seed = 42 }
  h:advance "5s"                     -- due timers fire, in order, each a slice
  assert.equal(5, h.state.counter.count)
  assert.same({ count = 5 }, h:send("counter", "get"))
  h:restart()                        -- as after kill -9
  h:reload { scripts = { "domains/counter_v2.lua" } }

A host is the C runtime of `vedhost run` (ved/testing_core.so, see
host/testing/testing_core.c) in this process: its own Lua state, libuv
loop and store in a temporary data dir. Time moves only when the test
says so. Hosts share nothing; each is closed (threads joined, data dir
removed) by h:close(), at the end of the busted test that made it (or of
the file, for one made outside a test), and by the GC.
]]
local core = require "ved.testing_core"

local M = {}

local UNITS = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000 }

-- "5s", "1h30m", "250ms", 1500 -> ms
function M.duration(d)
  if math.type(d) == "integer" then return d end
  if type(d) == "number" and d == math.floor(d) then return math.tointeger(d) end
  if type(d) ~= "string" then
    error("a duration is whole ms or a string such as \"5s\" (got " .. tostring(d) .. ")", 3)
  end
  local total, rest = 0, d
  if rest == "" then error("empty duration", 3) end
  while rest ~= "" do
    local n, u, tail = rest:match("^(%d+)(%a+)(.*)$")
    if not n or not UNITS[u] then
      error("bad duration \"" .. d .. "\" (use ms, s, m, h, d: \"1h30m\")", 3)
    end
    total = total + math.tointeger(n) * UNITS[u]
    rest = tail
  end
  return total
end

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- "2026-01-01T00:00:00Z" (".123", "Z" optional; UTC) or ms -> unix ms
function M.time(t)
  if t == nil then return 0 end
  if math.type(t) == "integer" then return t end
  if type(t) ~= "string" then error("now: a UTC time string or unix ms", 3) end
  local y, mo, d, H, Mi, S, rest =
    t:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then error("now: bad time \"" .. t .. "\" (2026-01-01T00:00:00Z)", 3) end
  local ms = 0
  local frac, z = rest:match("^%.(%d%d?%d?)(Z?)$")
  if frac then
    ms = math.tointeger(tonumber((frac .. "00"):sub(1, 3)))
  elseif rest ~= "" and rest ~= "Z" then
    error("now: bad time \"" .. t .. "\"", 3)
  end
  local days = days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  return math.tointeger(((days * 24 + tonumber(H)) * 60 + tonumber(Mi)) * 60 +
    tonumber(S)) * 1000 + ms
end

-- ---- closing at the end of the busted test (or file) ----

local in_test = false
-- weak: a host the test dropped is closed by the GC
local test_hosts = setmetatable({}, { __mode = "k" })
local file_hosts = setmetatable({}, { __mode = "k" })
local subscribed = false

local function close_all(set)
  local hs = {}
  for h in pairs(set) do hs[#hs + 1] = h end
  for _, h in ipairs(hs) do
    pcall(h.close, h)
    set[h] = nil
  end
end

local function subscribe()
  if subscribed then return end
  subscribed = true
  local ok, busted = pcall(require, "busted")
  if not ok or type(busted) ~= "table" then return end
  local ok2 = pcall(function()
    if not busted.subscribe then return end
    busted.subscribe({ "test", "start" }, function()
      in_test = true
      return nil, true
    end)
    busted.subscribe({ "test", "end" }, function()
      in_test = false
      close_all(test_hosts)
      return nil, true
    end)
    busted.subscribe({ "file", "end" }, function()
      close_all(file_hosts)
      return nil, true
    end)
  end)
  if not ok2 then subscribed = false end
end

-- ---- hosts ----

local Host = {}

local function state_proxy(h)
  return setmetatable({}, {
    __index = function(_, domain)
      return h._c:state(domain)
    end,
    __newindex = function()
      error("h.state is a copy of committed state: change it with h:send", 2)
    end,
  })
end

local function tmpdir()
  local p = os.tmpname() -- creates the file: the name is ours
  os.remove(p)
  return p .. ".ved"
end

local function script_list(s, where)
  if type(s) == "string" then s = { s } end
  if type(s) ~= "table" or #s == 0 then
    error(where .. ": scripts = { \"path/to/domain.lua\", ... } is required", 3)
  end
  local out = {}
  for i, p in ipairs(s) do
    if type(p) ~= "string" then error(where .. ": scripts[" .. i .. "] is not a path", 3) end
    out[i] = p
  end
  return out
end

local function open(self, now, fresh)
  self._c = core.open {
    fresh = fresh,
    restarts = self.restarts,
    dir = self.dir, scripts = self.scripts, now = now, seed = self.seed,
    timeout = self.timeout, memory = self.memory, retain = self.retain,
    log_level = self.log_level, echo = self.echo,
  }
end

-- vt.host { scripts = {...}, now = time, seed = n, timeout = ms,
--           memory = MB, retain = "15m", log_level = "info", echo = bool }
function M.host(opts)
  if type(opts) ~= "table" then error("vt.host { scripts = { ... } }", 2) end
  subscribe()
  local self = setmetatable({
    scripts = script_list(opts.scripts, "vt.host"),
    seed = opts.seed or 0,
    timeout = opts.timeout, memory = opts.memory, retain = opts.retain,
    log_level = opts.log_level, echo = opts.echo,
    dir = tmpdir(),
    restarts = 0,
    _logs = {},
  }, Host)
  local ok, err = pcall(open, self, M.time(opts.now), true)
  if not ok then error(err, 2) end
  self.state = state_proxy(self)
  ;(in_test and test_hosts or file_hosts)[self] = true
  return self
end

Host.__index = Host

local function c(self)
  if not self._c then error("ved.testing: this host is closed", 3) end
  return self._c
end

-- Move the virtual clock by d; every timer due in between fires at its
-- own time, each instant a slice, messages drained after each. Returns
-- the number of instants at which timers fired.
function Host:advance(d)
  return c(self):advance(M.duration(d))
end

-- Run queued calls and messages until none is left (the clock stays).
function Host:run_until_idle()
  c(self):idle()
end

-- One turn of the loop (one slice: queued calls, a batch of messages).
-- True while work is left.
function Host:step()
  return c(self):step()
end

-- Queue a call from outside without running anything (see step, restart).
function Host:post(domain, event, payload)
  c(self):post(domain, event, payload)
end

-- The virtual clock, unix ms.
function Host:now()
  return c(self):now()
end

-- The handler's reply (a plain value); raises the handler's error (its
-- call was rolled back). Messages it sent are delivered before it returns.
function Host:send(domain, event, payload)
  local ok, reply, code = c(self):call(domain, event, payload)
  if not ok then error(reply, 2) end
  return reply
end

-- The same without raising: true, reply | false, error, code.
function Host:try_send(domain, event, payload)
  return c(self):call(domain, event, payload)
end

-- As after kill -9 and a new start: the slices that ended are kept
-- (state, durable `after` timers, queued messages: delivered after the
-- start, exactly once), calls posted but not run are lost, every() timers
-- are gone, migrate and start() run again. Nothing is drained first: use
-- h:run_until_idle() before it for a quiet stop. opts.scripts: start
-- with other scripts. Logs are kept.
function Host:restart(opts)
  local now = c(self):now()
  self:_save_logs()
  self._c:close(true, true)
  self._c = nil
  if opts and opts.scripts then self.scripts = script_list(opts.scripts, "restart") end
  self.restarts = self.restarts + 1
  local ok, err = pcall(open, self, now)
  if not ok then -- the host is gone: so is its data dir
    core.rmdir(self.dir)
    error(err, 2)
  end
end

-- Hot reload, as in production (:reload): true, summary | false, error
-- (the old code keeps running; a migrate that raises is such an error).
function Host:reload(opts)
  local scripts = self.scripts
  if opts and opts.scripts then scripts = script_list(opts.scripts, "reload") end
  local ok, msg = c(self):reload(scripts)
  if ok then self.scripts = scripts end
  return ok, msg
end

function Host:_save_logs()
  if not self._c then return end
  for _, l in ipairs(self._c:logs()) do self._logs[#self._logs + 1] = l end
end

-- Every log record so far, "level [tag] message", oldest first; with a
-- pattern, only those matching it.
function Host:logs(pattern)
  local out = {}
  for _, l in ipairs(self._logs) do out[#out + 1] = l end
  if self._c then
    for _, l in ipairs(self._c:logs()) do out[#out + 1] = l end
  end
  if pattern then
    local f = {}
    for _, l in ipairs(out) do if l:find(pattern) then f[#f + 1] = l end end
    return f
  end
  return out
end

-- Retained versions, oldest first: { seq, time, events, keys, domains }.
function Host:versions()
  return c(self):versions()
end

-- Version V (a seq, -N, 0 = newest, a time or a mark, as the REPL's at()):
-- { seq, time, domains = { name = { state = plain table, version } } }.
function Host:at(v)
  local ok, r = pcall(c(self).at, self._c, v)
  if not ok then error(r, 2) end
  return r
end

-- Changes from version a to b (default: the newest), as the REPL's diff():
-- { { op = "+"|"-"|"~", path = { domain, key... }, old, new | value } }.
function Host:diff(a, b)
  local ok, r = pcall(c(self).diff, self._c, a, b)
  if not ok then error(r, 2) end
  return r
end

function Host:domains()
  return c(self):domains()
end

-- Is the host still running (false after ved.exit), and its exit code.
function Host:running()
  return c(self):running()
end

-- Stop the host and remove its data dir (also done at the end of the test).
function Host:close()
  if self._c then
    self:_save_logs()
    self._c:close(false)
    self._c = nil
  end
end

return M
