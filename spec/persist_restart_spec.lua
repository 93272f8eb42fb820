-- persist_restart_spec.lua - end-to-end persistence of `vedhost run`
-- (issue 4, host side: host/runtime/durable.c): a restart keeps the state (every
-- value kind, nested tables), durable `after` timers (one that fell due
-- while the host was down fires right after start), undelivered messages
-- (delivered exactly once), migrate (success runs once; failure refuses the
-- domain and leaves state and version as they were), stored domains no
-- script declares, an acknowledged REPL write across kill -9, and refused
-- data dirs (corrupt manifest, newer format). Every wait is bounded
-- (support/proc.lua); nothing here measures time.
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'
local TESTBIN = (os.getenv("VEDHOST_BUILD") or "build") ..
                "/host/host_test_durable"

-- Values logged as "<tag> <value>" by ctx:log, in order.
local function logged(text, tag)
  local out = {}
  for v in text:gmatch("%] " .. tag .. " ([^\n]*)") do out[#out + 1] = v end
  return out
end

-- Run src (as a.lua) to completion on dir/data.
local function run(dir, src, extra)
  proc.write(dir .. "/a.lua", HEAD .. src)
  local argv = { "run", "--data", "data", "--no-watch" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "a.lua"
  return proc.run(argv, { cwd = dir })
end

describe("vedhost persistence", function()
  it("keeps the state, every value kind and nested tables", function()
    local dir = proc.tmpdir()
    local r = run(dir, [[
      ved.domain "d" {
        state = { n = 0 },
        start = function(state, ctx)
          state.i = 42
          state.neg = -7
          state.f = 2.0
          state.pi = 3.25
          state.s = "bin\0ary\255"
          state.t, state.no = true, false
          state.arr = { 10, 20, { deep = { deeper = "yes" } } }
          state.map = { [1.5] = "float key", [true] = "bool key", x = {} }
          for i = 1, 2000 do state.map["k" .. i] = i * 2 end
          state.gone = "x"
          state.gone = nil
          ved.exit(0)
        end,
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    r = run(dir, [[
      ved.domain "d" {
        state = { n = 0, fresh = "initial state must not be used" },
        start = function(state, ctx)
          local ok = state.i == 42 and math.type(state.i) == "integer"
            and state.neg == -7 and math.type(state.f) == "float"
            and state.f == 2.0 and state.pi == 3.25
            and state.s == "bin\0ary\255" and state.t == true
            and state.no == false and state.fresh == nil
            and state.gone == nil and #state.arr == 3
            and state.arr[2] == 20 and state.arr[3].deep.deeper == "yes"
            and state.map[1.5] == "float key"
            and state.map[true] == "bool key"
            and next(state.map.x) == nil
          local sum = 0
          for i = 1, 2000 do sum = sum + state.map["k" .. i] end
          ctx:log("check", tostring(ok), sum)
          ved.exit(0)
        end,
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "true 4002000" }, logged(r.log, "check"))
    proc.rmdir(dir)
  end)

  it("fires a timer that fell due while down, keeps later ones", function()
    local dir = proc.tmpdir()
    local r = run(dir, [[
      ved.domain "t" {
        start = function(state, ctx)
          if state.armed then return end
          state.armed = true
          ctx:after(200, "fire", { tag = "due-while-down" })
          ctx:after(3600000, "fire", { tag = "much-later" })
          ctx:after(0, "quit")
        end,
        on = {
          fire = function(state, p, ctx) ctx:log("fired", p.tag) end,
          quit = function() ved.exit(0) end,
        },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({}, logged(r.log, "fired"))
    proc.sleep(0.5) -- the 200 ms timer falls due while no host runs
    local src = [[
      ved.domain "t" {
        on = {
          fire = function(state, p, ctx)
            ctx:log("fired", p.tag)
            ved.exit(0)
          end,
        },
      }
    ]]
    r = run(dir, src)
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "due-while-down" }, logged(r.log, "fired"))
    assert.truthy(r.log:find("2 `after` timer(s)", 1, true), r.log)
    -- fired once: the next start has only the later one left
    r = run(dir, src:gsub("ved.exit%(0%)", "") .. [[
      ved.domain "q" {
        start = function(state, ctx) ctx:after(50, "q") end,
        on = { q = function() ved.exit(0) end },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.are.same({}, logged(r.log, "fired"))
    assert.truthy(r.log:find("1 `after` timer(s)", 1, true), r.log)
    proc.rmdir(dir)
  end)

  it("delivers pending messages exactly once across restarts", function()
    local dir = proc.tmpdir()
    -- Messages sent in the last slice before exit are still queued.
    local r = run(dir, [[
      ved.domain "a" {
        start = function(state, ctx)
          for i = 1, 5 do ctx:send("b", "msg", i) end
          ved.exit(0)
        end,
      }
      ved.domain "b" {
        state = { got = {} },
        on = { msg = function(state, p) table.insert(state.got, p) end },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    local check = [[
      ved.domain "a" { }
      ved.domain "b" {
        state = { got = {} },
        start = function(state, ctx) ctx:after(100, "show") end,
        on = {
          msg = function(state, p) table.insert(state.got, p) end,
          show = function(state, p, ctx)
            ctx:log("got", table.concat(state.got, ","))
            ved.exit(0)
          end,
        },
      }
    ]]
    r = run(dir, check)
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "1,2,3,4,5" }, logged(r.log, "got"))
    r = run(dir, check)
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "1,2,3,4,5" }, logged(r.log, "got"))
    proc.rmdir(dir)
  end)

  it("runs migrate once; a failing migrate refuses only its domain", function()
    local dir = proc.tmpdir()
    local function script(version, migrate)
      return ([[
        ved.domain "m" {
          version = %d,
          state = { x = 1 },
          migrate = %s,
          start = function(state, ctx)
            ctx:log("start", state.x, state.y)
            ctx:after(0, "quit")
          end,
          on = { quit = function() ved.exit(0) end },
        }
        ved.domain "other" {
          start = function(state, ctx) ctx:log("other", "up") end,
        }
      ]]):format(version, migrate)
    end
    local good2 = [[function(state, from)
      ved.log("migrate", from)
      state.y = state.x * 10
    end]]
    local r = run(dir, script(1, "nil"))
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "1 nil" }, logged(r.log, "start"))
    r = run(dir, script(2, good2))
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "1" }, logged(r.log, "migrate"))
    assert.are.same({ "1 10" }, logged(r.log, "start"))
    r = run(dir, script(2, good2)) -- same version: migrate does not run
    assert.are.equal(0, r.code, r.log)
    assert.are.same({}, logged(r.log, "migrate"))
    assert.are.same({ "1 10" }, logged(r.log, "start"))

    -- version 3 with a migrate that writes, then raises: refused
    local bad3 = [[function(state, from)
      state.y = -1
      error("cannot convert")
    end]]
    proc.write(dir .. "/a.lua", HEAD .. script(3, bad3) .. [[
      ved.domain "stopper" {
        start = function(state, ctx) ctx:after(50, "q") end,
        on = { q = function() ved.exit(0) end },
      }
    ]])
    r = proc.run({ "run", "--data", "data", "--no-watch", "a.lua" },
                 { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("REFUSED", 1, true), r.log)
    assert.truthy(r.log:find("cannot convert", 1, true), r.log)
    assert.are.same({}, logged(r.log, "start")) -- m did not start
    assert.are.same({ "up" }, logged(r.log, "other")) -- the rest runs

    -- fixed script: migrate runs from version 2, state as version 2 left it
    local good3 = [[function(state, from)
      ved.log("migrate", from, state.y)
      state.x = 3
    end]]
    r = run(dir, script(3, good3))
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "2 10" }, logged(r.log, "migrate"))
    assert.are.same({ "3 10" }, logged(r.log, "start"))

    -- a downgrade is refused too
    r = run(dir, script(2, good2) .. [[
      ved.domain "stopper" {
        start = function(state, ctx) ctx:after(50, "q") end,
        on = { q = function() ved.exit(0) end },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("downgrade refused", 1, true), r.log)
    assert.are.same({}, logged(r.log, "start"))
    r = run(dir, script(3, good3))
    assert.are.same({ "3 10" }, logged(r.log, "start"))
    proc.rmdir(dir)
  end)

  it("keeps stored domains that no script declares", function()
    local dir = proc.tmpdir()
    local both = [[
      ved.domain "a" {
        start = function(state, ctx)
          state.n = (state.n or 0) + 1
          ctx:log("a", state.n)
        end,
      }
      ved.domain "b" {
        start = function(state, ctx)
          state.n = (state.n or 0) + 1
          ctx:log("b", state.n)
          ctx:after(0, "q")
        end,
        on = { q = function() ved.exit(0) end },
      }
    ]]
    local r = run(dir, both)
    assert.are.equal(0, r.code, r.log)
    r = run(dir, [[
      ved.domain "a" {
        start = function(state, ctx)
          state.n = state.n + 1
          ctx:log("a", state.n)
          ctx:after(0, "q")
        end,
        on = { q = function() ved.exit(0) end },
      }
    ]])
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("[b] stored domain (version 1) is not declared",
                             1, true), r.log)
    r = run(dir, both)
    assert.are.equal(0, r.code, r.log)
    assert.are.same({ "3" }, logged(r.log, "a"))
    assert.are.same({ "2" }, logged(r.log, "b"))
    proc.rmdir(dir)
  end)

  for _, mode in ipairs({ "sync", "nosync" }) do
    it("keeps an acknowledged REPL write across kill -9 (" .. mode .. ")",
       function()
      local dir = proc.tmpdir()
      proc.write(dir .. "/a.lua", HEAD .. [[
        ved.domain "c" {
          state = { v = 0 },
          start = function(state, ctx) ctx:log("v", state.v) end,
          on = { q = function() ved.exit(0) end },
        }
      ]])
      local argv = { "run", "--data", "data", "--no-watch", "--durability",
                     mode, "a.lua" }
      local p = proc.start(argv, { cwd = dir })
      assert.is_true(proc.wait_log(p, "running"), proc.logtext(p))
      local w = proc.run({ "repl", "--data", "data", "-e",
                           "domains.c.state.v = 4242; return 'acked'" },
                         { cwd = dir })
      assert.are.equal(0, w.code, w.log)
      assert.truthy(w.out:find('"acked"', 1, true), w.out)
      proc.signal(p, "KILL")
      proc.wait(p)
      proc.cleanup(p)
      local r = proc.run({ "run", "--data", "data", "--no-watch", "a.lua" },
                         { cwd = dir, timeout = 3 })
      -- no exit in the script: the bounded run is killed (137); the log
      -- is what matters
      assert.are.same({ "4242" }, logged(r.log, "v"))
      proc.rmdir(dir)
    end)
  end

  it("refuses a corrupt manifest and a newer format with one line",
     function()
    local dir = proc.tmpdir()
    local src = [[
      ved.domain "c" {
        start = function(state, ctx) state.x = 1; ved.exit(0) end,
      }
    ]]
    assert.are.equal(0, run(dir, src).code)
    local _, _, code = os.execute(proc.quote(TESTBIN) ..
                                  " --corrupt-manifest " ..
                                  proc.quote(dir .. "/data"))
    assert.are.equal(0, code)
    local r = run(dir, src)
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("manifest", 1, true), r.log)
    assert.truthy(r.log:find("checksum mismatch", 1, true), r.log)
    assert.falsy(r.log:find("running", 1, true), r.log) -- no script ran

    local dir2 = proc.tmpdir()
    assert.are.equal(0, run(dir2, src).code)
    _, _, code = os.execute(proc.quote(TESTBIN) .. " --newer-manifest " ..
                            proc.quote(dir2 .. "/data"))
    assert.are.equal(0, code)
    r = run(dir2, src)
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("newer", 1, true), r.log)

    local dir3 = proc.tmpdir()
    assert.are.equal(0, run(dir3, src).code)
    _, _, code = os.execute(proc.quote(TESTBIN) .. " --newer-store " ..
                            proc.quote(dir3 .. "/data"))
    assert.are.equal(0, code)
    r = run(dir3, src)
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("newer", 1, true), r.log)
    proc.rmdir(dir)
    proc.rmdir(dir2)
    proc.rmdir(dir3)
  end)
end)
