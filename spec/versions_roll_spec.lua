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

-- Hosts still running when a test fails midway: killed by reap().
local running = {}

local function reap()
  for p in pairs(running) do
    proc.signal(p, "KILL")
    proc.wait(p, 5)
    proc.cleanup(p)
  end
  running = {}
end

local function start_host(dir, extra)
  local argv = { "run", "--data", "data", "--no-watch" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "app.lua"
  local p = proc.start(argv, { cwd = dir })
  running[p] = true
  assert.is_true(proc.wait_log(p, "running"), proc.logtext(p))
  return p
end

local function new_dir()
  local dir = proc.tmpdir()
  proc.write(dir .. "/app.lua", SCRIPT)
  return dir
end

local function stop_host(p)
  running[p] = nil
  proc.signal(p, "TERM")
  local code = proc.wait(p)
  proc.cleanup(p)
  return code
end

local function kill_host(p)
  running[p] = nil
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
    -- and not in the store's files: the write-ahead log holds every value
    -- written as is (uncompressed), as the control write shows
    ok(dir, "domains.counter.state.real = 'REAL-WRITE-7'")
    local function on_disk(text)
      local ok_, _, code = os.execute("grep -rqa " .. proc.quote(text) .. " " ..
                                      proc.quote(dir .. "/data/db"))
      return ok_ == true and code == 0
    end
    assert.is_true(on_disk("REAL-WRITE-7"))
    assert.is_false(on_disk("FORKED-ONLY"))
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

-- The seq of the newest version the host wrote (durable, from :stats).
local function newest(dir)
  local out = ok(dir, ":stats")
  local d = out:match("durable (%d+) of")
  assert.truthy(d, out)
  return tonumber(d)
end

local function fsck_clean(dir, data)
  local r = vh(dir, "fsck", "--data", data or "data")
  assert.are.equal(0, r.code, r.out .. r.log)
end

local function inspect(dir, path, data)
  local r = vh(dir, "inspect", "--data", data or "data", path)
  assert.are.equal(0, r.code, r.log)
  return r.out
end

-- A state worth many nodes: 40 subtables of 30 keys.
local BIG = [[
for i = 1, 40 do
  local t = {}
  for j = 1, 30 do t["k" .. j] = "v" .. i .. "." .. j end
  domains.counter.state["t" .. i] = t
end
domains.counter.state.count = 1
]]

describe("vedhost rollback on a running host", function()
  local dir, host
  before_each(function()
    dir = new_dir()
    host = start_host(dir, { "--retain", "1000" })
  end)
  after_each(function()
    if host then stop_host(host) end
    proc.rmdir(dir)
  end)

  it("puts a domain back, survives kill -9, and is undoable", function()
    ok(dir, BIG)
    local a = newest(dir)
    ok(dir, "domains.counter.state.count = 2; domains.counter.state.t7 = nil",
       "domains.other.state.n = 5")
    local b = newest(dir)
    local r = vh(dir, "rollback", "--data", "data", "--domain", "counter",
                 "--to", tostring(a))
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("rolled back domain 'counter' to version " .. a,
                             1, true), r.out)
    -- the line says how to undo it: the version just before the rollback
    local undo = tonumber(r.out:match("%-%-to (%d+)"))
    assert.truthy(undo, r.out)
    assert.truthy(proc.wait_log(host, "rolled back to version " .. a),
                  proc.logtext(host))
    assert.are.equal("1\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal('"v7.3"\n', ok(dir, "domains.counter.state.t7.k3"))
    -- other domains are untouched
    assert.are.equal("5\n", ok(dir, "domains.other.state.n"))
    fsck_clean(dir)
    assert.is_true(undo >= b)
    kill_host(host)
    host = start_host(dir, { "--retain", "1000" })
    assert.are.equal("1\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal('"v7.3"\n', ok(dir, "domains.counter.state.t7.k3"))
    fsck_clean(dir)
    -- the rollback of the rollback: the version before it
    r = vh(dir, "rollback", "--data", "data", "--domain", "counter", "--to",
           tostring(undo))
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("2\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal("nil\n", ok(dir, "domains.counter.state.t7"))
    fsck_clean(dir)
  end)

  it("says so when there is nothing to roll back", function()
    ok(dir, "domains.counter.state.count = 3")
    local a = newest(dir)
    ok(dir, "domains.other.state.n = 1")
    local r = vh(dir, "rollback", "--data", "data", "--domain", "counter",
                 "--to", tostring(a))
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("nothing to roll back", 1, true), r.out)
  end)

  it("refuses bad input with one line and changes nothing", function()
    ok(dir, "domains.counter.state.count = 4")
    local a = newest(dir)
    local cases = {
      { { "--domain", "nope", "--to", tostring(a) }, "no domain 'nope'" },
      { { "--domain", "counter", "--to", "999999" }, "999999" },
      { { "--domain", "counter", "--to", "nomark" }, "nomark" },
    }
    for _, c in ipairs(cases) do
      local argv = { "rollback", "--data", "data" }
      for _, x in ipairs(c[1]) do argv[#argv + 1] = x end
      local r = vh(dir, table.unpack(argv))
      assert.are.equal(1, r.code, r.log)
      local line = proc.one_line(r)
      assert.truthy(line:find(c[2], 1, true), line)
    end
    for _, argv in ipairs({ { "rollback", "--data", "data", "--to", "1" },
                            { "rollback", "--data", "data", "--domain", "x" },
                            { "rollback", "--bogus" },
                            { "rollback", "--data", "data", "--domain", "c",
                              "--to", "1", "extra" } }) do
      local r = vh(dir, table.unpack(argv))
      assert.are.equal(2, r.code, r.log)
      proc.one_line(r)
    end
    assert.are.equal(a, newest(dir)) -- no version was written
    assert.are.equal("4\n", ok(dir, "domains.counter.state.count"))
  end)
end)

describe("exact GC with resurrected nodes", function()
  after_each(reap)
  it("keeps every node a rollback brought back after the window passes",
     function()
    local dir = new_dir()
    local host = start_host(dir, { "--retain", "6" })
    ok(dir, BIG)
    local a = newest(dir)
    -- replace most of the tree: its nodes go to death lists
    ok(dir, "for i = 1, 40, 2 do domains.counter.state['t' .. i] = " ..
            "{ x = i } end")
    ok(dir, "for i = 2, 40, 2 do domains.counter.state['t' .. i].k1 = 0 end")
    local r = vh(dir, "rollback", "--data", "data", "--domain", "counter",
                 "--to", tostring(a))
    assert.are.equal(0, r.code, r.log)
    fsck_clean(dir)
    -- let the window pass a and every version that held the deaths
    for i = 1, 20 do ok(dir, "domains.other.state.n = " .. i) end
    fsck_clean(dir)
    local out = inspect(dir, "counter.t1")
    assert.truthy(out:find('k30 = "v1.30"', 1, true), out)
    out = inspect(dir, "counter.t2.k1")
    assert.are.equal('"v2.1"\n', out)
    kill_host(host)
    host = start_host(dir, { "--retain", "6" })
    for i = 1, 10 do ok(dir, "domains.other.state.n = " .. i) end
    for i = 1, 40 do
      assert.are.equal('"v' .. i .. '.30"\n',
                       ok(dir, "domains.counter.state.t" .. i .. ".k30"))
    end
    assert.are.equal(0, stop_host(host))
    fsck_clean(dir)
    proc.rmdir(dir)
  end)
end)

describe("vedhost rollback on a stopped data dir", function()
  after_each(reap)
  it("appends the rollback as a version the next run starts from", function()
    local dir = new_dir()
    local host = start_host(dir, { "--retain", "1000" })
    ok(dir, BIG)
    local a = newest(dir)
    ok(dir, "domains.counter.state.count = 9; domains.counter.state.t1 = 0")
    assert.are.equal(0, stop_host(host))
    local r = vh(dir, "rollback", "--data", "data", "--domain", "counter",
                 "--to", tostring(a))
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("rolled back domain 'counter'", 1, true), r.out)
    fsck_clean(dir)
    r = vh(dir, "rollback", "--data", "data", "--domain", "nope", "--to",
           tostring(a))
    assert.are.equal(1, r.code)
    proc.one_line(r)
    host = start_host(dir, { "--retain", "1000" })
    assert.are.equal("1\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal('"v1.5"\n', ok(dir, "domains.counter.state.t1.k5"))
    assert.are.equal(0, stop_host(host))
    fsck_clean(dir)
    proc.rmdir(dir)
  end)

  it("refuses a rollback across a migrate", function()
    local dir = new_dir()
    local host = start_host(dir, { "--retain", "1000" })
    ok(dir, "domains.counter.state.count = 5")
    local a = newest(dir)
    assert.are.equal(0, stop_host(host))
    proc.write(dir .. "/app.lua", SCRIPT:gsub('ved.domain "counter" {',
      'ved.domain "counter" { version = 2, migrate = function(s) ' ..
      's.count = s.count * 10 end,', 1))
    host = start_host(dir, { "--retain", "1000" })
    assert.are.equal("50\n", ok(dir, "domains.counter.state.count"))
    local r = vh(dir, "rollback", "--data", "data", "--domain", "counter",
                 "--to", tostring(a))
    assert.are.equal(1, r.code, r.out)
    local line = proc.one_line(r)
    assert.truthy(line:find("across a migrate", 1, true), line)
    assert.are.equal("50\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal(0, stop_host(host))
    r = vh(dir, "rollback", "--data", "data", "--domain", "counter", "--to",
           tostring(a))
    assert.are.equal(1, r.code, r.out)
    assert.truthy(proc.one_line(r):find("across a migrate", 1, true))
    proc.rmdir(dir)
  end)
end)

describe("vedhost branch", function()
  after_each(reap)
  it("makes a data dir at version V beside a running host", function()
    local dir = new_dir()
    local host = start_host(dir, { "--retain", "1000" })
    ok(dir, BIG)
    local a = newest(dir)
    ok(dir, "domains.counter.state.count = 77; domains.counter.state.t3 = 1")
    local before = inspect(dir, "counter")
    local r = vh(dir, "branch", "--data", "data", "--at", tostring(a), "br")
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("branched version " .. a, 1, true), r.out)
    assert.are.equal("1\n", inspect(dir, "counter.count", "br"))
    assert.are.equal('"v3.2"\n', inspect(dir, "counter.t3.k2", "br"))
    fsck_clean(dir, "br")
    -- the original is untouched, and its host runs on
    assert.are.equal(before, inspect(dir, "counter"))
    assert.are.equal("77\n", ok(dir, "domains.counter.state.count"))
    -- bad input: one line, nothing changed
    r = vh(dir, "branch", "--data", "data", "--at", tostring(a), "br")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("not an empty directory", 1, true))
    r = vh(dir, "branch", "--data", "data", "--at", "999999", "br2")
    assert.are.equal(1, r.code)
    proc.one_line(r)
    assert.is_nil(io.open(dir .. "/br2", "r"))
    r = vh(dir, "branch", "--data", "data", "br3")
    assert.are.equal(2, r.code)
    proc.one_line(r)
    r = vh(dir, "branch", "--data", "data", "--at", tostring(a))
    assert.are.equal(2, r.code)
    proc.one_line(r)
    assert.are.equal(0, stop_host(host))
    -- a host runs on the branch and goes on from V
    proc.write(dir .. "/run2.lua", SCRIPT)
    local p2 = proc.start({ "run", "--data", "br", "--no-watch", "run2.lua" },
                          { cwd = dir })
    running[p2] = true
    assert.is_true(proc.wait_log(p2, "running"), proc.logtext(p2))
    local out = proc.run({ "repl", "--data", "br", "-e",
                           "domains.counter.state.count = " ..
                           "domains.counter.state.count + 1; return " ..
                           "domains.counter.state.count" }, { cwd = dir })
    assert.are.equal("2\n", out.out, out.log)
    assert.are.equal(0, stop_host(p2))
    fsck_clean(dir, "br")
    fsck_clean(dir)
    proc.rmdir(dir)
  end)
end)

describe("rollback and a REPL fork", function()
  after_each(reap)
  it("a fork made before a rollback keeps working and frees nothing live",
     function()
    local dir = new_dir()
    local host = start_host(dir, { "--retain", "5" })
    ok(dir, BIG)
    local a = newest(dir)
    ok(dir, "domains.counter.state.count = 2; domains.counter.state.t2 = nil")
    local out = ok(dir, ":fork", "domains.counter.state.count = 50",
                   ":rollback counter " .. a,
                   "domains.counter.state.count = 51",
                   "domains.counter.state.count",
                   "domains.counter.state.t5.k5", ":unfork",
                   "domains.counter.state.count",
                   "domains.counter.state.t2.k1")
    assert.truthy(out:find("rolled back domain 'counter'", 1, true), out)
    assert.truthy(out:find('51\n"v5.5"\n', 1, true), out)
    assert.truthy(out:find('\n1\n"v2.1"\n$'), out)
    for i = 1, 12 do ok(dir, "domains.other.state.n = " .. i) end
    fsck_clean(dir)
    for i = 1, 40 do
      assert.are.equal('"v' .. i .. '.30"\n',
                       ok(dir, "domains.counter.state.t" .. i .. ".k30"))
    end
    assert.are.equal(0, stop_host(host))
    fsck_clean(dir)
    proc.rmdir(dir)
  end)
end)

describe("rollback of a domain that did not exist at V", function()
  after_each(reap)
  it("is refused with one line, online and offline", function()
    local dir = new_dir()
    local host = start_host(dir, { "--retain", "1000" })
    ok(dir, "domains.counter.state.count = 5")
    local a = newest(dir)
    assert.are.equal(0, stop_host(host))
    proc.write(dir .. "/app.lua", SCRIPT .. [[
ved.domain "late" { state = { x = 1 }, on = {} }
]])
    host = start_host(dir, { "--retain", "1000" })
    ok(dir, "domains.late.state.x = 2")
    local r = vh(dir, "rollback", "--data", "data", "--domain", "late", "--to",
                 tostring(a))
    assert.are.equal(1, r.code, r.out)
    assert.truthy(proc.one_line(r):find("did not exist at version " .. a, 1,
                                        true), r.log)
    assert.are.equal("2\n", ok(dir, "domains.late.state.x"))
    assert.are.equal(0, stop_host(host))
    r = vh(dir, "rollback", "--data", "data", "--domain", "late", "--to",
           tostring(a))
    assert.are.equal(1, r.code, r.out)
    assert.truthy(proc.one_line(r):find("did not exist", 1, true), r.log)
    fsck_clean(dir)
    proc.rmdir(dir)
  end)
end)
