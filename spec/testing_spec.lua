-- testing_spec.lua - ved.testing, the harness itself: the real runtime
-- (build/lib/ved/testing_core.so) on a virtual clock inside busted.
local vt = require "ved.testing"

local dirs = {}
local function script(src)
  local p = os.tmpname()
  os.remove(p)
  p = p .. ".lua"
  local f = assert(io.open(p, "w"))
  f:write(src)
  f:close()
  dirs[#dirs + 1] = p
  return p
end
teardown(function()
  for _, p in ipairs(dirs) do os.remove(p) end
end)

-- Canonical text of a value (sorted keys), to compare runs byte for byte.
local function canon(v)
  if type(v) ~= "table" then return string.format("%q", v) end
  local ks = {}
  for k in pairs(v) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) < type(b)
  end)
  local out = {}
  for _, k in ipairs(ks) do out[#out + 1] = canon(k) .. "=" .. canon(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

local TIMERS = [[
local ved = require "ved"
ved.domain "clock" {
  state = { log = {} },
  start = function(state, ctx)
    ctx:every(1000, "sec")
    ctx:every(60000, "min")
  end,
  on = {
    plan = function(state, p, ctx)
      -- created out of order: they must fire in due order
      ctx:after(2500, "at", "c")
      ctx:after(500, "at", "a")
      ctx:after(1500, "at", "b")
      ctx:after(1500, "at", "b2") -- same due time: creation order
      ctx:after(3600 * 1000, "at", "late")
    end,
    at = function(state, p, ctx)
      table.insert(state.log, p .. "@" .. (ctx.now - state.t0))
    end,
    sec = function(state, p, ctx) state.secs = (state.secs or 0) + 1 end,
    min = function(state, p, ctx)
      state.mins = (state.mins or 0) + 1
      state.last_min = ctx.now - state.t0
    end,
    t0 = function(state, p, ctx) state.t0 = ctx.now end,
  },
}
]]

describe("ved.testing", function()
  it("fires timers in due order, each at its own time, and catches up after a long advance", function()
    local h = vt.host { scripts = { script(TIMERS) }, now = "2026-01-01T00:00:00Z" }
    assert.equal(1767225600000, h:now())
    h:send("clock", "t0")
    h:send("clock", "plan")
    assert.same({}, h.state.clock.log) -- nothing moves until the test says so
    h:advance "2s"
    assert.same({ "a@500", "b@1500", "b2@1500" }, h.state.clock.log)
    assert.equal(2, h.state.clock.secs)
    h:advance(500)
    assert.same({ "a@500", "b@1500", "b2@1500", "c@2500" }, h.state.clock.log)
    -- a long advance: every tick and the late timer at their own times
    local instants = h:advance "2h"
    assert.equal(2 * 3600 + 2, h.state.clock.secs)
    assert.equal(120, h.state.clock.mins)
    assert.equal(7200 * 1000, h.state.clock.last_min)
    assert.same("late@3600000", h.state.clock.log[5])
    assert.is_true(instants >= 7200)
    assert.equal(1767225600000 + 2 * 3600 * 1000 + 2500, h:now())
    h:close()
  end)

  it("rolls back a raising handler: no writes, no messages, no timers, the error raised", function()
    local h = vt.host { scripts = { script [[
local ved = require "ved"
ved.domain "acct" {
  state = { balance = 10, seen = 0 },
  on = {
    withdraw = function(state, n, ctx)
      state.balance = state.balance - n
      ctx:send("audit", "note", n)
      ctx:after(10, "later")
      if state.balance < 0 then error("insufficient funds") end
      return state.balance
    end,
    later = function(state) state.seen = state.seen + 1 end,
  },
}
ved.domain "audit" {
  state = { notes = {} },
  on = { note = function(state, n) table.insert(state.notes, n) end },
}
]] } }
    assert.equal(7, h:send("acct", "withdraw", 3))
    local ok, err = pcall(h.send, h, "acct", "withdraw", 100)
    assert.is_false(ok)
    assert.matches("insufficient funds", err)
    h:advance "1s"
    assert.equal(7, h.state.acct.balance)
    assert.same({ 3 }, h.state.audit.notes) -- the failed call's send is gone
    assert.equal(1, h.state.acct.seen) -- and its `after`
    assert.equal(1, #h:logs("handler 'withdraw' failed"))
    local ok2, e2, code = h:try_send("acct", "nope")
    assert.is_false(ok2)
    assert.matches("no handler", e2)
    assert.is_number(code)
  end)

  it("delivers messages in order and exactly once across a restart", function()
    local h = vt.host { scripts = { script [[
local ved = require "ved"
ved.domain "src" {
  state = { n = 0 },
  on = {
    burst = function(state, k, ctx)
      for i = 1, k do state.n = state.n + 1; ctx:send("dst", "got", state.n) end
      ctx:after(5000, "tail")
    end,
    tail = function(state, p, ctx) state.n = state.n + 1; ctx:send("dst", "got", state.n) end,
  },
}
ved.domain "dst" {
  state = { got = {}, dup = 0 },
  start = function(state, ctx) ctx:every(1000, "beat") end,
  on = {
    got = function(state, i)
      if state.got[i] then state.dup = state.dup + 1 end
      state.got[i] = true
      state.last = i
      state.order = (state.order or "") .. i .. ","
    end,
    beat = function(state) state.beats = (state.beats or 0) + 1 end,
  },
}
]] } }
    h:send("src", "burst", 3)
    assert.equal("1,2,3,", h.state.dst.order)
    -- a call runs in one slice; its 5000 messages are committed with it and
    -- delivered in later slices (4096 per slice): kill -9 after the first
    h:post("src", "burst", 5000)
    assert.is_true(h:step()) -- the call's slice: messages queued
    assert.is_true(h:step()) -- 4096 of them delivered
    local before = h.state.dst
    assert.equal(3 + 4096, before.last)
    h:advance "1s"
    assert.equal(5003, h.state.dst.last)
    -- again, and crash right after the sending slice
    h:post("src", "burst", 10)
    h:step()
    h:restart()
    h:run_until_idle()
    local s = h.state.dst
    assert.equal(5013, s.last)
    assert.equal(0, s.dup)
    local n = 0
    for _ in pairs(s.got) do n = n + 1 end
    assert.equal(5013, n)
    -- durable `after` timers survive; the every() timers were restarted
    h:advance "5s"
    assert.equal(5016, h.state.src.n) -- three `tail` timers fired once each
    assert.equal(5016, h.state.dst.last)
    assert.equal(0, h.state.dst.dup)
    -- a posted call that never ran is lost with the crash (never acknowledged)
    h:post("src", "burst", 1)
    h:restart()
    h:run_until_idle()
    assert.equal(h.state.src.n, h.state.dst.last)
  end)

  it("reloads with migrate; a migrate that raises keeps the old code and state", function()
    local v1 = script [[
local ved = require "ved"
ved.domain "user" {
  version = 1,
  state = { name = "ada" },
  on = { hello = function(state) return "hi " .. state.name end },
}
]]
    local bad = script [[
local ved = require "ved"
ved.domain "user" {
  version = 2,
  state = {},
  migrate = function(state, from) error("cannot migrate from " .. from) end,
  on = { hello = function(state) return "v2 " .. state.full_name end },
}
]]
    local good = script [[
local ved = require "ved"
ved.domain "user" {
  version = 2,
  state = {},
  migrate = function(state, from)
    state.full_name = state.name .. " lovelace"
    state.name = nil
  end,
  on = { hello = function(state) return "hello " .. state.full_name end },
}
]]
    local h = vt.host { scripts = { v1 } }
    assert.equal("hi ada", h:send("user", "hello"))
    local ok, err = h:reload { scripts = { bad } }
    assert.is_false(ok)
    assert.matches("cannot migrate from 1", err)
    assert.equal("hi ada", h:send("user", "hello")) -- old code runs
    assert.same({ name = "ada" }, h.state.user)
    assert.equal(1, h:at(0).domains.user.version)
    assert.equal(1, #h:logs("the old code keeps running"))
    ok, err = h:reload { scripts = { script "local x = = 1" } } -- a syntax error
    assert.is_false(ok)
    assert.matches("unexpected symbol", err)
    assert.equal("hi ada", h:send("user", "hello"))
    ok, err = h:reload { scripts = { good } }
    assert.is_true(ok, err)
    assert.equal("hello ada lovelace", h:send("user", "hello"))
    assert.same({ full_name = "ada lovelace" }, h.state.user)
    assert.equal(2, h:at(0).domains.user.version)
    -- the new code is what a restart runs
    h:restart()
    assert.equal("hello ada lovelace", h:send("user", "hello"))
  end)

  it("reads versions: at(V) and diff between them", function()
    local h = vt.host { scripts = { script(TIMERS) }, now = 0 }
    h:send("clock", "t0")
    h:advance "3s"
    local vs = h:versions()
    assert.is_true(#vs >= 4)
    local last = vs[#vs]
    assert.equal(3000, last.time)
    assert.same({ "clock" }, last.domains)
    assert.equal(3, h:at(last.seq).domains.clock.state.secs)
    assert.equal(2, h:at(-1).domains.clock.state.secs)
    local d = h:diff(-1)
    assert.equal(1, #d)
    assert.same({ op = "~", path = { "clock", "secs" }, old = 2, new = 3 }, d[1])
    local ok, err = pcall(h.at, h, 99999)
    assert.is_false(ok)
    assert.matches("unknown version 99999", err)
  end)

  it("is deterministic: the same test twice gives the same versions, byte for byte", function()
    local src = script [[
local ved = require "ved"
ved.domain "dice" {
  state = { rolls = {} },
  start = function(state, ctx) ctx:every(700, "roll") end,
  on = {
    roll = function(state, p, ctx)
      local r = math.random(1, 6)
      table.insert(state.rolls, { r = r, at = ctx.now })
      if r == 6 then ctx:send("bank", "win", #state.rolls) end
      if r == 1 then ctx:after(math.random(100, 900), "late", r) end
    end,
    late = function(state, r, ctx) state.late = (state.late or 0) + r end,
  },
}
ved.domain "bank" {
  state = { wins = {} },
  on = { win = function(state, n) table.insert(state.wins, n) end },
}
]]
    local function run()
      local h = vt.host { scripts = { src }, now = "2026-03-01T12:00:00Z", seed = 7 }
      h:advance "30s"
      h:restart()
      h:advance "30s"
      local out = {}
      for _, v in ipairs(h:versions()) do
        out[#out + 1] = canon(v) .. canon(h:at(v.seq))
      end
      h:close()
      return table.concat(out, "\n")
    end
    local a, b = run(), run()
    assert.is_true(#a > 1000)
    assert.equal(a, b)
    -- another seed draws other numbers
    local h = vt.host { scripts = { src }, now = "2026-03-01T12:00:00Z", seed = 8 }
    h:advance "30s"
    local rolls8 = canon(h.state.dice.rolls)
    h:close()
    assert.is_false(a:find(rolls8, 1, true) ~= nil)
  end)

  it("keeps hosts apart and leaves no file behind", function()
    local function tasks()
      local self = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
      local p = io.popen("ls /proc/" .. self .. "/task | wc -l")
      local n = tonumber(p:read("a"))
      p:close()
      return n
    end
    local threads0 = tasks()
    local h1 = vt.host { scripts = { script(TIMERS) } }
    local h2 = vt.host { scripts = { script(TIMERS) } }
    h1:advance "10s"
    h2:advance "3s"
    assert.equal(10, h1.state.clock.secs)
    assert.equal(3, h2.state.clock.secs)
    h1:restart()
    assert.equal(10, h1.state.clock.secs)
    assert.equal(3, h2.state.clock.secs)
    local d1, d2 = h1.dir, h2.dir
    assert.is_truthy(io.open(d1 .. "/LOCK") or io.open(d1))
    h1:close()
    h2 = nil
    collectgarbage()
    collectgarbage()
    assert.is_nil(io.open(d1 .. "/db/CURRENT"))
    assert.is_nil(io.open(d2 .. "/db/CURRENT"))
    assert.equal(threads0, tasks()) -- watchdog, writer, RocksDB threads: gone
  end)

  it("closes a host left open by a failing test at the end of that test", function()
    -- (the dir is checked by the next test)
    _G.__vt_left = vt.host { scripts = { script(TIMERS) } }
    _G.__vt_left_dir = _G.__vt_left.dir
  end)

  it("... so nothing of it is left", function()
    assert.is_nil(io.open(_G.__vt_left_dir .. "/db/CURRENT"))
    assert.has_error(function() _G.__vt_left:advance "1s" end, "ved.testing: this host is closed")
    _G.__vt_left = nil
  end)

  it("refuses bad input with one clear error", function()
    assert.has_error(function() vt.host {} end)
    local ok, err = pcall(vt.host, { scripts = { "/nonexistent/x.lua" } })
    assert.is_false(ok)
    assert.matches("/nonexistent/x.lua", err)
    ok, err = pcall(vt.host, { scripts = { script "syntax error here" } })
    assert.is_false(ok)
    assert.matches("syntax error", err)
    local h = vt.host { scripts = { script(TIMERS) } }
    assert.has_error(function() h:advance "5 parsecs" end)
    assert.has_error(function() h:advance(-1) end)
    assert.has_error(function() h:send("clock", "at", function() end) end)
    assert.has_error(function() h.state.clock = {} end)
    assert.is_nil(h.state.nope)
  end)
end)
