-- host_run_spec.lua - end-to-end behaviour of `vedhost run`: timers,
-- messages, atomic handler calls, the watchdog, exit paths, slices.
-- Each test writes its scripts into a temp dir and starts a real vedhost
-- built in $VEDHOST_BUILD; behaviour is observed through the log (stderr)
-- and the exit code. Every wait is bounded (support/proc.lua).
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'

-- Run src as a.lua in a fresh dir; returns the result of proc.run.
local function run(src, args, opts)
  local dir = proc.tmpdir()
  proc.write(dir .. "/a.lua", HEAD .. src)
  local argv = { "run" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "a.lua"
  opts = opts or {}
  opts.cwd = dir
  local r = proc.run(argv, opts)
  proc.rmdir(dir)
  return r
end

-- The values logged as "<tag> <value>" by ctx:log, in order.
local function logged(text, tag)
  local out = {}
  for v in text:gmatch("%] " .. tag .. " ([^\n]*)") do out[#out + 1] = v end
  return out
end

describe("vedhost run", function()
  it("fires after timers in due order, then creation order", function()
    local r = run([[
      ved.domain "t" {
        start = function(state, ctx)
          ctx:after(60, "fire", "c")
          ctx:after(20, "fire", "a")
          ctx:after(40, "fire", "b1")
          ctx:after(40, "fire", "b2")
          ctx:after(40, "fire", "b3")
          ctx:after(0, "fire", "first")
          ctx:after(100, "done")
        end,
        on = {
          fire = function(state, p, ctx)
            ctx:log("fire", p)
            state.fired = (state.fired or 0) + 1
          end,
          done = function(state, p, ctx)
            ctx:log("count", state.fired)
            ved.exit(0)
          end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "first", "a", "b1", "b2", "b3", "c" },
                    logged(r.log, "fire"))
    assert.are.same({ "6" }, logged(r.log, "count"))
  end)

  it("fires every timers repeatedly until exit", function()
    local r = run([[
      ved.domain "e" {
        state = { n = 0 },
        start = function(state, ctx) ctx:every(5, "tick", { step = 2 }) end,
        on = {
          tick = function(state, p, ctx)
            state.n = state.n + p.step
            if state.n == 10 then ctx:log("reached", state.n); ved.exit(0) end
          end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "10" }, logged(r.log, "reached"))
  end)

  it("delivers messages exactly once and in send order", function()
    local r = run([[
      local N = 3000
      ved.domain "src" {
        start = function(state, ctx)
          for i = 1, N // 2 do ctx:send("dst", "m", { i = i }) end
          ctx:send("src", "more")
        end,
        on = {
          more = function(state, p, ctx)
            for i = N // 2 + 1, N do ctx:send("dst", "m", { i = i }) end
          end,
        },
      }
      ved.domain "dst" {
        state = { last = 0, count = 0, bad = 0 },
        on = {
          m = function(state, p, ctx)
            state.count = state.count + 1
            if p.i ~= state.last + 1 then state.bad = state.bad + 1 end
            state.last = p.i
            if state.count == N then
              ctx:log("result", state.count, state.last, state.bad)
              ctx:after(50, "check")
            end
          end,
          check = function(state, p, ctx)
            ctx:log("final", state.count)  -- no duplicate came later
            ved.exit(0)
          end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "3000 3000 0" }, logged(r.log, "result"))
    assert.are.same({ "3000" }, logged(r.log, "final"))
  end)

  it("delivers messages in a later slice, all with that slice's ctx.now",
     function()
    local r = run([[
      ved.domain "n" {
        start = function(state, ctx)
          state.start_now = ctx.now
          for i = 1, 5 do ctx:send("n", "m", i) end
        end,
        on = {
          m = function(state, i, ctx)
            state.nows = state.nows or {}
            table.insert(state.nows, ctx.now)
            if i == 5 then
              local same = true
              for _, v in ipairs(state.nows) do
                if v ~= state.nows[1] then same = false end
              end
              ctx:log("same", same, #state.nows, math.type(ctx.now))
              ved.exit(0)
            end
          end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "true 5 integer" }, logged(r.log, "same"))
  end)

  it("rolls back a raising handler entirely and runs the next event",
     function()
    local r = run([[
      ved.domain "r" {
        state = { x = 0, list = { 1, 2 } },
        start = function(state, ctx)
          ctx:send("r", "bad")
          ctx:send("r", "good")
        end,
        on = {
          bad = function(state, p, ctx)
            state.x = 42
            state.list[3] = 3
            state.extra = { deep = true }
            ctx:send("r", "ghost")
            ctx:after(1, "ghost")
            ctx:every(1, "ghost")
            error("deliberate failure")
          end,
          ghost = function(state, p, ctx) ctx:log("GHOST") end,
          good = function(state, p, ctx)
            ctx:log("after", state.x, #state.list, tostring(state.extra))
            ctx:after(30, "done")
          end,
          done = function() ved.exit(0) end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("error [r] handler 'bad' failed: a.lua:", 1, true))
    assert.truthy(r.log:find("deliberate failure", 1, true))
    assert.truthy(r.log:find("stack traceback", 1, true))
    assert.are.same({ "0 2 nil" }, logged(r.log, "after"))
    assert.falsy(r.log:find("GHOST", 1, true))
  end)

  it("aborts an endless loop, even under pcall and in coroutines",
     function()
    local r = run([[
      ved.domain "w" {
        state = { n = 0 },
        start = function(state, ctx)
          for _, e in ipairs({ "spin", "pcalled", "co", "alive" }) do
            ctx:send("w", e)
          end
        end,
        on = {
          spin = function(state) state.n = 1; while true do end end,
          pcalled = function(state)
            state.n = 2
            for i = 1, 5 do pcall(function() while true do end end) end
            state.n = 20
          end,
          co = function(state)
            state.n = 3
            local co = coroutine.create(function() while true do end end)
            local ok = coroutine.resume(co)
            state.n = 30
          end,
          alive = function(state, p, ctx)
            ctx:log("alive", state.n)
            ved.exit(0)
          end,
        },
      }
    ]], { "--handler-timeout", "150" })
    assert.are.equal(0, r.code, r.log)
    local budget = "handler exceeded its time budget %(150 ms%)"
    local n = select(2, r.log:gsub(budget, ""))
    assert.are.equal(3, n, r.log)
    assert.are.same({ "0" }, logged(r.log, "alive"))
  end)

  it("aborts a memory bomb and carries on", function()
    local r = run([[
      ved.domain "m" {
        state = { n = 0 },
        start = function(state, ctx)
          ctx:send("m", "bomb")
          ctx:send("m", "ok")
        end,
        on = {
          bomb = function(state)
            state.n = 1
            local t = {}
            local ok = pcall(function()
              for i = 1, 1e6 do t[i] = string.rep("x", 1 << 20) .. i end
            end)
            state.n = 2
          end,
          ok = function(state, p, ctx)
            local big = string.rep("y", 1 << 20) -- allocating works again
            ctx:log("ok", state.n, #big)
            ved.exit(0)
          end,
        },
      }
    ]], { "--memory-limit", "48", "--handler-timeout", "5000" })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("handler 'bomb' failed: not enough memory", 1,
                             true), r.log)
    assert.are.same({ "0 1048576" }, logged(r.log, "ok"))
  end)

  it("exits 0 on SIGTERM after finishing the slice", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
      ved.domain "s" {
        start = function(state, ctx) ctx:every(10, "tick") end,
        on = { tick = function(state, p, ctx)
          state.n = (state.n or 0) + 1
          if state.n == 3 then ctx:log("ticking") end
        end },
      }
    ]])
    local p = proc.start({ "run", "a.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "ticking"))
    proc.signal(p, "TERM")
    local code = proc.wait(p)
    local log = proc.logtext(p)
    proc.cleanup(p)
    proc.rmdir(dir)
    assert.are.equal(0, code, log)
    assert.truthy(log:find("SIGTERM received", 1, true))
  end)

  it("exits 0 on SIGINT", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
      ved.domain "s" { start = function(state, ctx) ctx:log("up") end }
    ]])
    local p = proc.start({ "run", "a.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "] up"))
    proc.signal(p, "INT")
    local code = proc.wait(p)
    local log = proc.logtext(p)
    proc.cleanup(p)
    proc.rmdir(dir)
    assert.are.equal(0, code, log)
    assert.truthy(log:find("SIGINT received", 1, true))
  end)

  it("exits with ved.exit(3) after the current slice", function()
    local r = run([[
      ved.domain "x" {
        start = function(state, ctx)
          ctx:send("x", "later")
          ved.exit(3)
          ctx:log("still running")
        end,
        on = { later = function(state, p, ctx) ctx:log("LATER") end },
      }
    ]])
    assert.are.equal(3, r.code, r.log)
    assert.truthy(r.log:find("still running", 1, true))
    assert.falsy(r.log:find("LATER", 1, true))
  end)

  it("makes os.exit(4) stop after the slice, keeping the handler's writes",
     function()
    local r = run([[
      ved.domain "x" {
        start = function(state, ctx) ctx:send("x", "go") end,
        on = {
          go = function(state, p, ctx)
            os.exit(4)
            state.after = true
            ctx:send("x", "next")
            ctx:log("handler finished")
          end,
          next = function(state, p, ctx) ctx:log("NEXT SLICE") end,
        },
      }
    ]])
    assert.are.equal(4, r.code, r.log)
    assert.truthy(r.log:find("handler finished", 1, true))
    assert.falsy(r.log:find("NEXT SLICE", 1, true))
  end)

  it("gives domain code proxy-aware type/next/pairs and table.*", function()
    local r = run([[
      ved.domain "p" {
        state = { a = 1, list = { 3, 1, 2 }, empty = {} },
        start = function(state, ctx)
          local keys = {}
          for k in pairs(state) do keys[#keys + 1] = k end
          table.sort(keys)
          table.sort(state.list)
          table.insert(state.list, 4)
          ctx:log("check", type(state), type(state.list),
                  next(state.empty) == nil, next(state) ~= nil,
                  table.concat(keys, ","), table.concat(state.list, ","),
                  rawlen(state.list))
          ved.exit(0)
        end,
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "table table true true a,empty,list 1,2,3,4 4" },
                    logged(r.log, "check"))
  end)

  it("keeps each domain's state to its own handlers", function()
    local r = run([[
      local stolen
      ved.domain "a" {
        state = { secret = 1 },
        start = function(state, ctx) stolen = state; ctx:send("b", "peek") end,
      }
      ved.domain "b" {
        on = {
          peek = function(state, p, ctx)
            local ok, err = pcall(function() return stolen.secret end)
            ctx:log("peek", ok, err)
            ved.exit(0)
          end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    local v = logged(r.log, "peek")[1]
    assert.truthy(v and v:find("^false") and v:find("belongs to domain a"),
                  r.log)
  end)

  it("logs an event without a handler once and goes on", function()
    local r = run([[
      ved.domain "u" {
        start = function(state, ctx)
          for i = 1, 3 do ctx:send("u", "nobody") end
          ctx:send("u", "fin")
        end,
        on = { fin = function(state, p, ctx) ctx:log("fin"); ved.exit(0) end },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    local n = #proc.lines_with(r.log, "no handler for event 'nobody'")
    assert.are.equal(1, n, r.log)
    assert.truthy(r.log:find("] fin", 1, true))
  end)

  it("logs a raising start and still handles the domain's events",
     function()
    local r = run([[
      ved.domain "s" {
        state = { v = 0 },
        start = function(state, ctx)
          state.v = 1
          ctx:send("s", "ping")
          error("bad boot")
        end,
        on = { ping = function() end,
               later = function(state, p, ctx)
                 ctx:log("v", state.v); ved.exit(0)
               end },
      }
      ved.after(20, "later")
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("error [s] start failed: a.lua:", 1, true))
    assert.are.same({ "0" }, logged(r.log, "v"))
  end)

  it("lets ved.* act outside handlers: send at load, log, now", function()
    local r = run([[
      ved.domain "l" {
        on = { hi = function(state, p, ctx)
          ved.log("hi from", ctx.domain, ctx.event, p.n, ved.now() == ctx.now)
          ved.exit(0)
        end },
      }
      ved.send("l", "hi", { n = 7 })
      ved.log("loaded", type(ved.now()))
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("[ved] loaded number", 1, true), r.log)
    assert.truthy(r.log:find("[l] hi from l hi 7 true", 1, true), r.log)
  end)

  it("loads every .lua of a directory in sorted order, with require",
     function()
    local dir = proc.tmpdir()
    os.execute("mkdir -p " .. proc.quote(dir .. "/d") .. " " ..
               proc.quote(dir .. "/lib"))
    proc.write(dir .. "/lib/greet.lua",
               'return { hello = function(n) return "hello " .. n end }')
    proc.write(dir .. "/d/b.lua", HEAD .. [[
      ved.log("loading b")
      ved.domain "b" { start = function(state, ctx)
        ctx:log(require("greet").hello("b")); ved.exit(0) end }
    ]])
    proc.write(dir .. "/d/a.lua", HEAD ..
               'ved.log("loading a")\nved.domain "a" {}\n')
    proc.write(dir .. "/d/notes.txt", "not a script")
    local r = proc.run({ "run", "d" }, {
      cwd = dir, env = { LUA_PATH = dir .. "/lib/?.lua;;" } })
    proc.rmdir(dir)
    assert.are.equal(0, r.code, r.log)
    local a = r.log:find("loading a", 1, true)
    local b = r.log:find("loading b", 1, true)
    assert.truthy(a and b and a < b, r.log)
    assert.truthy(r.log:find("[b] hello b", 1, true), r.log)
  end)

  it("honours --log-level", function()
    local r = run([[
      ved.domain "q" { start = function(state, ctx)
        ctx:log("quiet"); error("loud") end,
        on = {} }
      ved.exit(0)
    ]], { "--log-level=error" })
    assert.are.equal(0, r.code, r.log)
    assert.falsy(r.log:find("quiet", 1, true))
    assert.truthy(r.log:find("loud", 1, true))
  end)
end)
