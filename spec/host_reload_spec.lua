-- host_reload_spec.lua - end-to-end hot reload: scripts are rewritten under
-- a running vedhost (in place, via rename, via delete + create) and the
-- log shows which code ran on which state. Every wait is bounded; no test
-- passes or fails on how long something took.
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'

-- Plain-text occurrences of pat in text.
local function count(text, pat)
  local n, at = 0, 1
  while true do
    local s, e = text:find(pat, at, true)
    if not s then return n end
    n, at = n + 1, e + 1
  end
end

-- Wait until the log holds pat at least n times (bounded).
local function wait_count(p, pat, n, timeout)
  local deadline = os.time() + (timeout or proc.DEFAULT_TIMEOUT)
  while os.time() <= deadline do
    if count(proc.logtext(p), pat) >= n then return true end
    if proc.read(p.rcf) then return count(proc.logtext(p), pat) >= n end
    proc.sleep(0.02)
  end
  return false
end

-- The values logged as "<tag> <value>" by ctx:log, in order.
local function logged(text, tag)
  local out = {}
  for v in text:gmatch("%] " .. tag .. " ([^\n]*)") do out[#out + 1] = v end
  return out
end

-- The three ways editors save a file.
local save = {
  inplace = function(path, src) proc.write(path, src) end,
  rename = function(path, src)
    proc.write(path .. ".tmp", src)
    assert(os.rename(path .. ".tmp", path))
  end,
  recreate = function(path, src)
    assert(os.remove(path))
    proc.write(path, src)
  end,
}

-- A domain "t" that ticks every 10 ms and logs "tick <gen> <n>"; extra is
-- Lua code run in the tick handler after that.
local function ticker(gen, extra, start_extra)
  return HEAD .. string.format([[
ved.domain "t" {
  state = { n = 0 },
  start = function(state, ctx)
    ctx:every(10, "tick")
    %s
  end,
  on = {
    tick = function(state, p, ctx)
      state.n = state.n + 1
      ctx:log("tick", "%s", state.n, tostring(state.x))
      %s
    end,
  },
}
]], start_extra or "", gen, extra or "")
end

-- Start vedhost on dir/a.lua holding src; returns the process handle.
local function start(dir, src, args)
  proc.write(dir .. "/a.lua", src)
  local argv = { "run" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "a.lua"
  return proc.start(argv, { cwd = dir })
end

-- Split "gen n x" tick values into { gen, n, x } records.
local function ticks(text)
  local out = {}
  for _, v in ipairs(logged(text, "tick")) do
    local g, n, x = v:match("^(%S+) (%d+) (%S+)$")
    out[#out + 1] = { gen = g, n = tonumber(n), x = x }
  end
  return out
end

-- n runs 1, 2, 3, ... across all ticks (state kept, nothing run twice).
local function assert_continuous(t)
  for i, r in ipairs(t) do assert.are.equal(i, r.n, "tick " .. i) end
end

describe("hot reload", function()
  local dir, p
  before_each(function() dir = proc.tmpdir() end)
  after_each(function()
    if p then
      if not proc.read(p.rcf) then
        proc.signal(p, "KILL")
        proc.wait(p, 5)
      end
      proc.cleanup(p)
      p = nil
    end
    proc.rmdir(dir)
  end)

  it("runs the new handler on the next event, state kept, however the file "
     .. "is saved", function()
    p = start(dir, ticker("gen1"))
    assert.is_true(proc.wait_log(p, "tick gen1 3"), proc.logtext(p))
    save.inplace(dir .. "/a.lua", ticker("gen2"))
    assert.is_true(proc.wait_log(p, "tick gen2"), proc.logtext(p))
    save.rename(dir .. "/a.lua", ticker("gen3"))
    assert.is_true(proc.wait_log(p, "tick gen3"), proc.logtext(p))
    save.recreate(dir .. "/a.lua", ticker("gen4",
      "state.g4 = (state.g4 or 0) + 1; if state.g4 == 3 then ved.exit(0) end"))
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    local t = ticks(log)
    assert_continuous(t)
    -- generations only move forward, and each one ran
    local order, seen = { gen1 = 1, gen2 = 2, gen3 = 3, gen4 = 4 }, {}
    for i, r in ipairs(t) do
      seen[r.gen] = true
      if i > 1 then assert.is_true(order[r.gen] >= order[t[i - 1].gen]) end
    end
    assert.are.same({ gen1 = true, gen2 = true, gen3 = true, gen4 = true },
                    seen)
    local lines = proc.lines_with(log, "reload: 1 script, domains changed: t")
    assert.are.equal(3, #lines, log)
    assert.is_truthy(lines[1]:match("in %d+%.%d ms"))
  end)

  it("cancels the old every timers and runs start again", function()
    p = start(dir, HEAD .. [[
      ved.domain "t" {
        start = function(state, ctx) ctx:log("start", "v1"); ctx:every(5, "a") end,
        on = { a = function(state, p, ctx) ctx:log("a", "v1") end },
      }
    ]])
    assert.is_true(proc.wait_log(p, "a v1"), proc.logtext(p))
    save.rename(dir .. "/a.lua", HEAD .. [[
      ved.domain "t" {
        start = function(state, ctx) ctx:log("start", "v2"); ctx:every(5, "b") end,
        on = {
          a = function(state, p, ctx) ctx:log("a", "v2") end,
          b = function(state, p, ctx)
            state.b = (state.b or 0) + 1
            if state.b == 20 then ctx:log("done", state.b); ved.exit(0) end
          end,
        },
      }
    ]])
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.are.same({ "20" }, logged(log, "done"))
    assert.are.same({ "v1", "v2" }, logged(log, "start"))
    for _, v in ipairs(logged(log, "a")) do assert.are.equal("v1", v) end
    -- no tick of the old timer after the swap
    local swap = log:find("reload: ", 1, true)
    assert.is_truthy(swap, log)
    assert.is_nil(log:find("] a v1", swap, true), log)
  end)

  it("runs the new handlers for after timers and messages queued by the "
     .. "old code", function()
    p = start(dir, HEAD .. [[
      ved.domain "t" {
        start = function(state, ctx)
          if state.armed then return end
          state.armed = true
          ctx:after(20, "late")
          ctx:send("t", "ping", 1)
        end,
        on = {
          late = function(state, p, ctx)
            ctx:log("late", "v1")
            ctx:after(20, "late")
          end,
          ping = function(state, i, ctx)
            state.pings = i
            ctx:send("t", "ping", i + 1)
          end,
        },
      }
    ]])
    assert.is_true(proc.wait_log(p, "late v1"), proc.logtext(p))
    -- v2 never creates a timer or a message of its own: what it handles
    -- was queued by v1.
    save.inplace(dir .. "/a.lua", HEAD .. [[
      ved.domain "t" {
        start = function(state, ctx) ctx:log("start", "v2", state.armed) end,
        on = {
          late = function(state, p, ctx)
            ctx:log("late", "v2")
            state.late2 = true
            if state.ping2 then ved.exit(0) end
          end,
          ping = function(state, i, ctx)
            if not state.ping2 then
              state.ping2 = true
              ctx:log("ping", "v2", i, state.pings)
            end
            state.pings = i
            if state.late2 then ved.exit(0) else ctx:send("t", "ping", i + 1) end
          end,
        },
      }
    ]])
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.are.same({ "v2 true" }, logged(log, "start"))
    local late = logged(log, "late")
    assert.are.equal("v2", late[#late])
    local ping = logged(log, "ping")
    assert.are.equal(1, #ping, log)
    local i, prev = ping[1]:match("^v2 (%d+) (%d+)$")
    assert.are.equal(tonumber(prev) + 1, tonumber(i)) -- the next in line
  end)

  it("keeps the old code running when the new code fails to load or start",
     function()
    p = start(dir, ticker("v1"))
    assert.is_true(proc.wait_log(p, "tick v1 2"), proc.logtext(p))
    local failed = "reload (file change) failed"
    local function ticks_after_failure(k)
      assert.is_true(wait_count(p, failed, k), proc.logtext(p))
      local n = #ticks(proc.logtext(p))
      assert.is_true(wait_count(p, "] tick v1", n + 2), proc.logtext(p))
    end
    -- Saved by rename only: a debounce that fired between the truncate and
    -- the write of an in-place save would log one more failure.
    -- a syntax error on line 3
    save.rename(dir .. "/a.lua", HEAD .. 'ved.domain "t" {\n  on = {,\n}\n')
    ticks_after_failure(1)
    -- an error while the script runs, on line 2
    save.rename(dir .. "/a.lua", HEAD .. 'error("boom at load")\n')
    ticks_after_failure(2)
    -- start raises after writing state, starting a timer and a new domain
    save.rename(dir .. "/a.lua", ticker("v2", nil,
      'state.x = "set"; ctx:every(1, "tick"); error("start boom")') .. [[
      ved.domain "u" {
        start = function(state, ctx) ctx:log("u", "started") end,
      }
    ]])
    ticks_after_failure(3)
    -- a script that declares no domain
    save.rename(dir .. "/a.lua", HEAD .. "local x = 1\n")
    ticks_after_failure(4)
    -- then good code
    save.rename(dir .. "/a.lua", ticker("v3",
      "state.g = (state.g or 0) + 1; if state.g == 3 then ved.exit(0) end"))
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    local fails = proc.lines_with(log, failed)
    assert.are.equal(4, #fails, log)
    assert.is_truthy(fails[1]:find("a.lua:3:", 1, true), fails[1])
    assert.is_truthy(fails[2]:find("a.lua:2: boom at load", 1, true), fails[2])
    assert.is_truthy(fails[3]:find("domain 't': start raised: a.lua:", 1,
                                   true), fails[3])
    assert.is_truthy(fails[3]:find("start boom", 1, true), fails[3])
    assert.is_truthy(fails[4]:find("declares no domain", 1, true), fails[4])
    assert.are.equal(1, #proc.lines_with(log, "reload: "), log)
    assert.are.same({}, logged(log, "u"))
    local t = ticks(log)
    assert_continuous(t) -- the failed start's timer never ticked
    for _, r in ipairs(t) do
      assert.are.equal("nil", r.x) -- the failed start's write was undone
      assert.is_truthy(r.gen == "v1" or r.gen == "v3")
    end
    assert.are.equal("v3", t[#t].gen)
  end)

  it("cuts a reload whose script never returns with the handler budget",
     function()
    p = start(dir, ticker("v1"), { "--handler-timeout", "100" })
    assert.is_true(proc.wait_log(p, "tick v1 2"), proc.logtext(p))
    save.rename(dir .. "/a.lua", HEAD .. "while true do end\n")
    assert.is_true(proc.wait_log(p, "reload (file change) failed"),
                   proc.logtext(p))
    local n = #ticks(proc.logtext(p))
    assert.is_true(wait_count(p, "] tick v1", n + 2), proc.logtext(p))
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.is_truthy(log:find("a.lua:2: the script's top level took longer "
                              .. "than 100 ms (--handler-timeout); the old "
                              .. "code keeps running", 1, true), log)
    assert_continuous(ticks(log))
  end)

  it("rolls back code and state of every domain when a migrate raises",
     function()
    local function two(gen, version, mig_a, mig_b, extra)
      return HEAD .. string.format([[
        ved.domain "b" {
          version = %d,
          migrate = function(state, from) %s end,
          on = {
            show = function(state, p, ctx)
              ctx:log("b", "%s", tostring(state.mig))
            end,
          },
        }
        ved.domain "a" {
          version = %d,
          state = { n = 0 },
          migrate = function(state, from) %s end,
          start = function(state, ctx) ctx:every(10, "tick") end,
          on = {
            tick = function(state, p, ctx)
              state.n = state.n + 1
              ctx:log("tick", "%s", state.n, tostring(state.m))
              ctx:send("b", "show")
              %s
            end,
          },
        }
      ]], version, mig_b, gen, version, mig_a, gen, extra or "")
    end
    p = start(dir, two("v1", 1, "", ""))
    assert.is_true(proc.wait_log(p, "tick v1 2"), proc.logtext(p))
    -- b migrates fine, then a writes and raises: both must roll back
    save.rename(dir .. "/a.lua", two("v2", 2,
      'state.m = "bad"; state.n = 1000; error("migrate boom")',
      'state.mig = "yes"'))
    assert.is_true(proc.wait_log(p, "reload (file change) failed"),
                   proc.logtext(p))
    local n = #ticks(proc.logtext(p))
    assert.is_true(wait_count(p, "] tick v1", n + 2), proc.logtext(p))
    -- a good migrate now runs, once, from version 1
    save.rename(dir .. "/a.lua", two("v3", 2,
      'ved.log("migrate a from", from); state.m = from',
      "state.mig = from"))
    assert.is_true(proc.wait_log(p, "tick v3"), proc.logtext(p))
    -- a lower version is refused
    save.rename(dir .. "/a.lua", two("v4", 1, "", ""))
    assert.is_true(wait_count(p, "reload (file change) failed", 2),
                   proc.logtext(p))
    n = count(proc.logtext(p), "] tick v3")
    assert.is_true(wait_count(p, "] tick v3", n + 2), proc.logtext(p))
    -- the same version again: no migrate
    save.rename(dir .. "/a.lua", two("v5", 2,
      'ved.log("migrate a from", from)', "",
      "state.g = (state.g or 0) + 1; if state.g == 3 then ved.exit(0) end"))
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    local fails = proc.lines_with(log, "reload (file change) failed")
    assert.is_truthy(fails[1]:find("domain 'a': migrate from version 1 "
                                   .. "raised: a.lua:", 1, true), fails[1])
    assert.is_truthy(fails[1]:find("migrate boom", 1, true), fails[1])
    assert.is_truthy(fails[2]:find("cannot downgrade", 1, true), fails[2])
    assert.are.same({ "1" }, logged(log, "migrate a from"))
    local t = ticks(log)
    assert_continuous(t)
    for _, r in ipairs(t) do
      if r.gen == "v1" then assert.are.equal("nil", r.x) end
      if r.gen == "v3" or r.gen == "v5" then assert.are.equal("1", r.x) end
      assert.is_truthy(r.gen ~= "v2" and r.gen ~= "v4")
    end
    for _, v in ipairs(logged(log, "b")) do
      assert.is_truthy(v == "v1 nil" or v == "v3 1" or v == "v5 1", v)
    end
    assert.are.equal(2, #proc.lines_with(log, "domains changed: b, a"), log)
  end)

  it("reloads on SIGHUP; --no-watch ignores edits", function()
    p = start(dir, ticker("v1", nil, 'ctx:log("start", "x")'),
              { "--no-watch" })
    assert.is_true(proc.wait_log(p, "tick v1 2"), proc.logtext(p))
    save.rename(dir .. "/a.lua", ticker("v2", [[
      state.g = (state.g or 0) + 1
      if state.g == 3 then ved.exit(0) end
    ]], 'ctx:log("start", "y")'))
    -- many debounce periods later, still the old code
    local n = #ticks(proc.logtext(p))
    assert.is_true(wait_count(p, "] tick v1", n + 20), proc.logtext(p))
    assert.are.equal(0, count(proc.logtext(p), "reload"))
    proc.signal(p, "HUP")
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.are.same({ "x", "y" }, logged(log, "start"))
    assert.are.equal(1, #proc.lines_with(log, "domains changed: t in"), log)
    assert.are.equal(1, #proc.lines_with(log, "[SIGHUP]"), log)
    assert_continuous(ticks(log))
  end)

  it("reloads on SIGHUP even when nothing changed; skips unchanged saves",
     function()
    local src = ticker("v1", nil, 'ctx:log("start", "x")')
    p = start(dir, src, { "--log-level", "debug" })
    assert.is_true(proc.wait_log(p, "tick v1 2"), proc.logtext(p))
    save.inplace(dir .. "/a.lua", src) -- same bytes
    assert.is_true(proc.wait_log(p, "no script changed"), proc.logtext(p))
    proc.signal(p, "HUP")
    assert.is_true(proc.wait_log(p, "domains changed: none"), proc.logtext(p))
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.are.same({ "x", "x" }, logged(log, "start"))
    assert.are.equal(1, #proc.lines_with(log, "reload: "), log)
  end)

  it("adds and removes domains of a directory, keeping removed state",
     function()
    os.execute("mkdir " .. proc.quote(dir .. "/s"))
    local function dom(name, extra)
      return HEAD .. string.format([[
        ved.domain "%s" {
          state = { n = 0 },
          start = function(state, ctx) ctx:every(10, "tick") end,
          on = {
            tick = function(state, p, ctx)
              state.n = state.n + 1
              ctx:log("%s", state.n)
              %s
            end,
            poke = function() end,
          },
        }
      ]], name, name, extra or "")
    end
    proc.write(dir .. "/s/a.lua", dom("a"))
    p = proc.start({ "run", "s" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "] a 2"), proc.logtext(p))
    proc.write(dir .. "/s/b.lua", dom("b", 'ctx:send("a", "poke")'))
    assert.is_true(proc.wait_log(p, "(added: b; removed: none)"),
                   proc.logtext(p))
    assert.is_true(proc.wait_log(p, "] b 1"), proc.logtext(p))
    assert(os.remove(dir .. "/s/a.lua"))
    assert.is_true(proc.wait_log(p, "(added: none; removed: a)"),
                   proc.logtext(p))
    assert.is_true(proc.wait_log(p, "no handler for event 'poke'"),
                   proc.logtext(p))
    local last_a = #logged(proc.logtext(p), "a")
    local nb = #logged(proc.logtext(p), "b")
    assert.is_true(wait_count(p, "] b ", nb + 5), proc.logtext(p))
    proc.write(dir .. "/s/a.lua",
               dom("a", "if state.n == " .. (last_a + 3) .. " then "
                        .. "ved.exit(0) end"))
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.is_truthy(log:find("(added: a; removed: none)", 1, true), log)
    assert.is_truthy(log:find("declared again", 1, true), log)
    assert.is_truthy(log:find("no longer declared", 1, true), log)
    assert.are.equal(1, count(log, "no handler for event 'poke'"))
    local a = logged(log, "a")
    for i, v in ipairs(a) do assert.are.equal(tostring(i), v) end
    assert.are.equal(last_a + 3, #a)
  end)

  it("loses and duplicates no event across reloads under a steady stream",
     function()
    local function stream(gen, final)
      return HEAD .. string.format([[
        ved.domain "s" {
          state = { last = 0, bad = 0, calls = 0 },
          start = function(state, ctx)
            if state.started then return end
            state.started = true
            for i = 1, 64 do ctx:send("s", "m", i) end
          end,
          on = {
            m = function(state, i, ctx)
              if i ~= state.last + 1 then state.bad = state.bad + 1 end
              state.last = i
              state.calls = state.calls + 1
              local k = "%s"
              state[k] = (state[k] or 0) + 1
              if state[k] == 1 then ctx:log("first", k, i) end
              if %s and state[k] == 3000 then
                ctx:log("result", state.last, state.calls, state.bad,
                        state.g1, state.g2, state.g3, state.g4)
                ved.exit(0)
              end
              ctx:send("s", "m", i + 64)
            end,
          },
        }
      ]], gen, final and "true" or "false")
    end
    p = start(dir, stream("g1"))
    assert.is_true(proc.wait_log(p, "first g1"), proc.logtext(p))
    local ways = { "inplace", "rename", "recreate" }
    for k = 2, 4 do
      save[ways[k - 1]](dir .. "/a.lua", stream("g" .. k, k == 4))
      assert.is_true(proc.wait_log(p, "first g" .. k), proc.logtext(p))
    end
    assert.are.equal(0, proc.wait(p))
    local log = proc.logtext(p)
    assert.are.equal(3, #proc.lines_with(log, "reload: "), log)
    local r = logged(log, "result")
    assert.are.equal(1, #r, log)
    local last, calls, bad, g1, g2, g3, g4 =
      r[1]:match("^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$")
    assert.are.equal("0", bad)
    assert.are.equal(last, calls) -- every message handled exactly once
    assert.are.equal(tonumber(calls),
                     tonumber(g1) + tonumber(g2) + tonumber(g3) + tonumber(g4))
    assert.are.equal("3000", g4)
    -- each generation picked up exactly where the previous one stopped
    local firsts = logged(log, "first")
    assert.are.equal(4, #firsts)
    local acc = 0
    for k, v in ipairs(firsts) do
      local g, i = v:match("^(g%d) (%d+)$")
      assert.are.equal("g" .. k, g)
      assert.are.equal(acc + 1, tonumber(i))
      acc = acc + tonumber(({ g1, g2, g3, g4 })[k])
    end
  end)
end)
