-- rehearse_spec.lua - `vedhost rehearse` and `vedhost run --rehearse N`
-- (issue 17, the "rehearse" part) against real vedhost processes: a pure
-- refactor rehearses clean over 1000 real slices; a change to one
-- handler's arithmetic shows exactly the paths and replies it changes; a
-- migrate that raises on one stored record is caught by the rehearsal,
-- not by production; the store is byte-identical before and after; a
-- gated reload whose handlers raise on the recorded traffic is refused
-- and the host keeps serving with the old code and state.
local proc = require "support.proc"

-- v1: ticks move money around five users; `bal` and `get` answer callers.
-- (`bal` counts the questions: only a slice that changes state is a
-- version with an input log, so a read-only call's reply is not rehearsed;
-- README "Safe deploys".)
local V1 = [[
local ved = require "ved"
ved.domain "acct" {
  version = 1,
  state = { n = 0, total = 0, users = {} },
  start = function(state, ctx) ctx:every(1, "tick") end,
  on = {
    tick = function(state, p, ctx)
      state.n = state.n + 1
      local id = "u" .. (state.n % 5)
      if not state.users[id] then state.users[id] = { name = id, bal = 0 } end
      local u = state.users[id]
      u.bal = u.bal + 2
      state.total = state.total + 2
    end,
    adduser = function(state, p) state.users[p.id] = { bal = p.bal } end,
    get = function(state) return { n = state.n, total = state.total } end,
    bal = function(state, p)
      state.asked = (state.asked or 0) + 1
      local u = state.users[p.id]
      return u and u.bal
    end,
  },
}
]]

-- the same behaviour, written differently
local REFACTOR = [[
local ved = require "ved"
local STEP = 2
local function user(state, id)
  local u = state.users[id]
  if u == nil then
    state.users[id] = { name = id, bal = 0 }
    u = state.users[id]
  end
  return u
end
ved.domain "acct" {
  version = 1,
  state = { n = 0, total = 0, users = {} },
  start = function(state, ctx) ctx:every(1, "tick") end,
  on = {
    tick = function(state, p, ctx)
      local n = state.n + 1
      state.n = n
      local u = user(state, "u" .. (n % 5))
      u.bal = u.bal + STEP
      state.total = state.total + STEP
    end,
    adduser = function(state, p) state.users[p.id] = { bal = p.bal } end,
    get = function(state) return { total = state.total, n = state.n } end,
    bal = function(state, p)
      state.asked = (state.asked or 0) + 1
      local u = state.users[p.id]
      if u then return u.bal end
      return nil
    end,
  },
}
]]

-- one handler's arithmetic changed: u1 gets 3 per tick instead of 2
local ARITH = V1:gsub("u%.bal = u%.bal %+ 2",
                      'u.bal = u.bal + (id == "u1" and 3 or 2)')

-- v2 renames bal to balance; its migrate assumes every user has a name
local MIGRATE_RAISES = [[
local ved = require "ved"
ved.domain "acct" {
  version = 2,
  state = { n = 0, total = 0, users = {} },
  migrate = function(state, from)
    for id, u in pairs(state.users) do
      u.balance = u.bal
      u.bal = nil
      u.label = u.name:upper()
    end
  end,
  start = function(state, ctx) ctx:every(1, "tick") end,
  on = {
    tick = function(state) state.n = state.n + 1 end,
    get = function(state) return { n = state.n, total = state.total } end,
  },
}
]]

-- handlers that raise on the recorded traffic
local RAISES = V1:gsub("state%.n = state%.n %+ 1",
                       'error("tick is broken in this version")')

local function vh(dir, ...)
  return proc.run({ ... }, { cwd = dir, timeout = 120 })
end

local function start_host(dir, ...)
  return proc.start_host(nil, {
    dir = dir, name = "app.lua",
    args = { "--data", "data", "--durability", "nosync", ... } })
end

local function db_hash(dir)
  return proc.tree_hash(dir .. "/data/db")
end

-- `vedhost rehearse --data data ARGS...` in dir; asserts that the store
-- is byte-identical afterwards.
local function rehearse(dir, ...)
  local before = db_hash(dir)
  local r = vh(dir, "rehearse", "--data", "data", ...)
  assert.are.equal(before, db_hash(dir))
  return r
end

local function nversions(dir)
  local r = vh(dir, "log", "--data", "data", "-n", "100000")
  assert.are.equal(0, r.code, r.log)
  local n = 0
  for _ in r.out:gmatch("\n%s*%d+%s") do n = n + 1 end
  return n
end

-- Waits (bounded by `wait` seconds) until dir's store has n versions.
local function await_versions(dir, n, wait)
  local deadline = os.time() + wait
  while nversions(dir) < n and os.time() < deadline do proc.sleep(0.2) end
end

-- A fresh dir holding app.lua (v1) and the given other scripts: a describe
-- block's setup; done(dir) is its teardown.
local function app_dir(scripts)
  local dir = proc.tmpdir()
  proc.write(dir .. "/app.lua", V1)
  for name, src in pairs(scripts or {}) do proc.write(dir .. "/" .. name, src) end
  return dir
end

local function done(dir)
  proc.reap()
  if dir then proc.rmdir(dir) end
end

local function repl(dir, code)
  local r = vh(dir, "repl", "--data", "data", "-e", code)
  assert.are.equal(0, r.code, r.log)
  return r.out
end

-- Run v1 until it has made at least n versions, with a few calls that
-- get replies near the end.
local function call(url, event, body)
  local out, code = proc.sh("curl -s -X POST " .. url .. "/domains/acct/events/"
                            .. event .. " -d '" .. body .. "'")
  assert.are.equal(0, code, out)
  return out
end

local function traffic(dir, n)
  local host = start_host(dir, "--no-watch", "--http", "127.0.0.1:0")
  local url = proc.http_url(host)
  -- a user without a name, early (a queued message, recorded when
  -- delivered; a REPL send() that writes would make its slice
  -- unreplayable: det.c, a chunk that changed a root)
  repl(dir, 'ved.send("acct", "adduser", {id = "x", bal = 5})')
  await_versions(dir, n, 120)
  -- outside calls with replies (a REPL send() that writes would make its
  -- slice unreplayable: det.c, a chunk that changed a root)
  for _ = 1, 3 do
    call(url, "bal", '{"id": "u1"}')
    call(url, "bal", '{"id": "u2"}')
    call(url, "get", '{}')
  end
  proc.sleep(0.2)
  assert.are.equal(0, proc.stop_host(host, 60))
end

describe("vedhost rehearse", function()
  local dir
  setup(function()
    dir = app_dir { ["refactor.lua"] = REFACTOR, ["arith.lua"] = ARITH,
                    ["migrate.lua"] = MIGRATE_RAISES }
    traffic(dir, 1100)
  end)
  teardown(function() done(dir) end)

  it("a pure refactor rehearses with an empty diff over 1000 slices",
     function()
    local r = rehearse(dir, "--last", "1000", "refactor.lua")
    assert.are.equal(0, r.code, r.out .. r.log)
    local verdict = r.out:match("([^\n]*)\n?$")
    assert.matches("^rehearsal of 1000 slices %(%d+%.%.%d+%): 0 errors, " ..
                   "0 paths differ in 0 domains, 0 replies differ$", verdict)
    -- nothing but the verdict
    assert.are.equal(1, select(2, r.out:gsub("\n", "")))
  end)

  it("an arithmetic change shows exactly the paths and replies it changes",
     function()
    local r = rehearse(dir, "--last", "1000", "arith.lua")
    assert.are.equal(1, r.code, r.out .. r.log)
    local state, replies, errors = {}, {}, 0
    for line in r.out:gmatch("[^\n]+") do
      if line:match("^state: ") then state[#state + 1] = line end
      if line:match("^reply ") then replies[#replies + 1] = line end
      if line:match("^error ") then errors = errors + 1 end
    end
    assert.are.equal(1, #state, r.out)
    local old, new = state[1]:match(
      "^state: ~ acct%.users%.u1%.bal: (%d+) %-> (%d+)$")
    assert.is_not_nil(old, r.out)
    assert.is_true(tonumber(new) > tonumber(old), r.out)
    -- the three `bal u1` calls, nothing else
    assert.are.equal(3, #replies, r.out)
    for _, l in ipairs(replies) do
      assert.matches("^reply %d+#%d+ acct%.bal %(call%): recorded %d+, " ..
                     "rehearsed %d+$", l)
    end
    assert.matches('payload: {id = "u1"}', r.out, 1, true)
    assert.are.equal(0, errors)
    assert.matches("0 errors, 1 path differs in 1 domain, 3 replies differ$",
                   r.out:match("([^\n]*)\n?$"))
    -- --json: one object per line, the verdict last
    local j = vh(dir, "rehearse", "--data", "data", "--last", "1000", "--json",
                 "arith.lua")
    assert.are.equal(1, j.code, j.log)
    local last = j.out:match("([^\n]*)\n?$")
    assert.matches('^{"type": "verdict", "clean": false, "slices": 1000,', last)
    assert.matches('"errors": 0,', last, 1, true)
    assert.matches('"paths": 1,', last, 1, true)
    assert.matches('"replies": 3,', last, 1, true)
  end)

  it("a migrate that raises on one stored record is caught, not run",
     function()
    local r = rehearse(dir, "--last", "500", "migrate.lua")
    assert.are.equal(1, r.code, r.out .. r.log)
    assert.matches("error %d+#1 acct%.migrate %(migrate%): migrate from version 1 " ..
                   "raised: .*migrate%.lua:%d+: attempt to index a nil value",
                   r.out)
    assert.matches("1 error, .*%(the reload itself fails", r.out)
    -- production still has v1's shape
    local i = vh(dir, "inspect", "--data", "data", "acct.users.x")
    assert.are.equal(0, i.code, i.log)
    assert.matches("bal = 5", i.out, 1, true)
  end)

  it("bad input is one line", function()
    local r = vh(dir, "rehearse", "--data", "data")
    assert.are.equal(2, r.code)
    r = vh(dir, "rehearse", "--data", "data", "--last", "0", "app.lua")
    assert.are.equal(2, r.code)
    r = vh(dir, "rehearse", "--data", "data", "--last", "5", "--since", "-3",
           "app.lua")
    assert.are.equal(2, r.code)
    r = vh(dir, "rehearse", "--data", "nowhere", "app.lua")
    assert.are.equal(1, r.code)
    assert.are.equal(1, select(2, r.log:gsub("\n", "")), r.log)
    r = vh(dir, "rehearse", "--data", "data", "missing.lua")
    assert.are.equal(1, r.code)
    assert.matches("missing.lua", r.log, 1, true)
  end)
end)

describe("vedhost run --rehearse N", function()
  local dir
  setup(function() dir = app_dir() end)
  teardown(function() done(dir) end)

  it("refuses a reload whose handlers raise; the old code keeps serving",
     function()
    local host = start_host(dir, "--no-watch", "--rehearse", "100")
    await_versions(dir, 300, 60)
    proc.write(dir .. "/app.lua", RAISES)
    proc.signal(host, "HUP")
    assert.is_true(proc.wait_log(host, "refused by the rehearsal", 120),
                   proc.logtext(host))
    local log = proc.logtext(host)
    assert.matches("rehearsal of 100 slices", log, 1, true)
    assert.matches("tick is broken in this version", log, 1, true)
    assert.is_nil(log:find("reload: 1 script", 1, true), log)
    -- the old code still runs, with its state: ticks go on
    local n1 = tonumber(repl(dir, 'return send("acct", "get").n'))
    proc.sleep(0.3)
    local n2 = tonumber(repl(dir, 'return send("acct", "get").n'))
    assert.is_true(n2 > n1, n1 .. " " .. n2)
    -- a good script goes live after a clean rehearsal
    proc.write(dir .. "/app.lua", REFACTOR)
    proc.signal(host, "HUP")
    assert.is_true(proc.wait_log(host, "reload: 1 script", 120),
                   proc.logtext(host))
    assert.matches("rehearsal clean", proc.logtext(host), 1, true)
    assert.are.equal(0, proc.stop_host(host, 60))
  end)
end)

describe("REPL :reload --rehearse N", function()
  local dir
  setup(function() dir = app_dir() end)
  teardown(function() done(dir) end)

  it("reports, and goes live only when confirmed (or --yes)", function()
    local host = start_host(dir, "--no-watch")
    await_versions(dir, 300, 60)
    -- handler errors: refused, even with --yes
    proc.write(dir .. "/app.lua", RAISES)
    local r = vh(dir, "repl", "--data", "data", "-e",
                 ":reload --rehearse 100 --yes")
    assert.are.equal(1, r.code, r.out .. r.log)
    local all = r.out .. r.log
    assert.matches("rehearsal of 100 slices", all, 1, true)
    assert.matches("tick is broken in this version", all, 1, true)
    assert.matches("the reload is refused", all, 1, true)
    -- a change that differs: the report, then the command that goes live;
    -- a non-interactive client reloads nothing
    proc.write(dir .. "/app.lua", ARITH)
    r = vh(dir, "repl", "--data", "data", "-e", ":reload --rehearse 100")
    assert.are.equal(0, r.code, r.out .. r.log)
    assert.matches("state: ~ acct.users.u1.bal:", r.out, 1, true)
    local fp = r.out:match("to go live: :reload %-%-confirm (%x+)")
    assert.is_not_nil(fp, r.out)
    assert.is_nil(proc.logtext(host):find("reload: 1 script", 1, true))
    -- a wrong fingerprint is refused; the right one reloads
    r = vh(dir, "repl", "--data", "data", "-e", ":reload --confirm 0123")
    assert.are.equal(1, r.code)
    r = vh(dir, "repl", "--data", "data", "-e", ":reload --confirm " .. fp)
    assert.are.equal(0, r.code, r.out .. r.log)
    assert.matches("reload: 1 script", r.out, 1, true)
    -- --yes goes live at once when there is no handler error
    proc.write(dir .. "/app.lua", V1)
    r = vh(dir, "repl", "--data", "data", "-e", ":reload --rehearse 50 --yes")
    assert.are.equal(0, r.code, r.out .. r.log)
    assert.matches("reload: 1 script", r.out, 1, true)
    assert.are.equal(0, proc.stop_host(host, 60))
  end)
end)
