-- versions_roll_spec.lua - issue 15, the "roll" items, end to end with real
-- processes: REPL :fork / :unfork, `vedhost rollback` (offline and through
-- the control socket of a running host), `vedhost branch`, and their bad
-- input. Every wait is bounded (support/proc.lua).
local proc = require "support.proc"

local SCRIPT = [[
local ved = require "ved"
ved.domain "counter" {
  state = { count = 0, log = {} },
  on = {
    set = function(state, p)
      state[p.k] = p.v
      return state[p.k]
    end,
    bump = function(state, n, ctx)
      state.count = state.count + (n or 1)
      return state.count
    end,
  },
}
ved.domain "other" {
  state = { n = 0 },
  on = { set = function(state, p) state.n = p end },
}
]]

local function start_host(dir, extra)
  local argv = { "run", "--data", "data", "--no-watch" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "app.lua"
  local p = proc.start(argv, { cwd = dir })
  assert.is_true(proc.wait_log(p, "running"), proc.logtext(p))
  return p
end

local function new_dir()
  local dir = proc.tmpdir()
  proc.write(dir .. "/app.lua", SCRIPT)
  return dir
end

local function stop_host(p)
  proc.signal(p, "TERM")
  local code = proc.wait(p)
  proc.cleanup(p)
  return code
end

local function kill_host(p)
  proc.signal(p, "KILL")
  proc.wait(p)
  proc.cleanup(p)
end

local function repl(dir, ...)
  local argv = { "repl", "--data", "data" }
  for _, code in ipairs({ ... }) do
    argv[#argv + 1] = "-e"
    argv[#argv + 1] = code
  end
  return proc.run(argv, { cwd = dir, env = { NO_COLOR = "1" } })
end

local function ok(dir, ...)
  local r = repl(dir, ...)
  assert.are.equal(0, r.code, r.log .. r.out)
  return r.out
end

local function vh(dir, ...)
  return proc.run({ ... }, { cwd = dir, env = { NO_COLOR = "1" } })
end

describe("REPL :fork", function()
  local dir, host
  setup(function()
    dir = new_dir()
    host = start_host(dir)
  end)
  teardown(function()
    assert.are.equal(0, stop_host(host))
    proc.rmdir(dir)
  end)

  it("runs chunks on a private copy that :unfork drops", function()
    ok(dir, "domains.counter.state.count = 7")
    local out = ok(dir, ":fork", "domains.counter.state.count = 99",
                   "domains.counter.state.secret = 'FORKED-ONLY'",
                   "domains.counter.state.count", ":stats", ":unfork",
                   "domains.counter.state.count",
                   "domains.counter.state.secret")
    assert.truthy(out:find("forked:", 1, true), out)
    assert.truthy(out:find("\n99\n", 1, true), out)
    assert.truthy(out:find("FORKED: this connection", 1, true), out)
    assert.truthy(out:find("unforked:", 1, true), out)
    assert.truthy(out:find("\n7\nnil\n$"), out)
    -- the real state never saw the fork, in the host or on disk
    assert.are.equal("7\n", ok(dir, "domains.counter.state.count"))
    local r = vh(dir, "inspect", "--data", "data", "counter")
    assert.are.equal(0, r.code, r.log)
    assert.falsy(r.out:find("FORKED-ONLY", 1, true), r.out)
    assert.truthy(r.out:find("count = 7", 1, true), r.out)
  end)

  it("events keep running on the real state while forked", function()
    ok(dir, "domains.counter.state.count = 1")
    local out = ok(dir, ":fork", "domains.counter.state.count = 500",
                   'send("counter", "bump", 2)', -- the handler, on the fork
                   "domains.counter.state.count")
    assert.truthy(out:find("502\n502\n", 1, true), out)
    -- another connection (a new repl) is not forked: real state
    assert.are.equal("1\n", ok(dir, "domains.counter.state.count"))
  end)

  it("a fork dies with its connection and writes nothing", function()
    ok(dir, "domains.counter.state.count = 3")
    ok(dir, ":fork", "domains.counter.state.count = 1000")
    assert.are.equal("3\n", ok(dir, "domains.counter.state.count"))
    local out = ok(dir, ":stats")
    assert.truthy(out:find("fork:           none", 1, true), out)
  end)

  it("refuses messages and timers from a forked chunk", function()
    local r = repl(dir, ":fork", 'ved.send("other", "set", 5)')
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("forked chunk cannot send", 1, true), r.log)
    assert.are.equal("0\n", ok(dir, "domains.other.state.n"))
  end)

  it("says when there is nothing to unfork or already a fork", function()
    local r = repl(dir, ":unfork")
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("not forked", 1, true), r.log)
    r = repl(dir, ":fork", ":fork")
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("already forked", 1, true), r.log)
  end)
end)
