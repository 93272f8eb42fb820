-- history_spec.lua - retention and exact GC of the version history
-- (persist/store/history.c, README "Versions", ARCHITECTURE.md invariant 5):
-- bad --retain values, disk bounded under overwrites with --retain 1000,
-- fsck clean after kill -9 with retention on, marks surviving a restart
-- and pinning, --retain 0 keeping one version. Bounded waits only;
-- nothing measures time.
local proc = require "support.proc"
local overwrite = require "support.overwrite"

-- One key of a state that holds 1000 other values is overwritten once per
-- slice (each message is delivered in the next slice), VH_N times.
local OVERWRITE = overwrite.script(1000, "set", [[
    set = function(state, p, ctx)
      state.k = state.k + 1
      state.done = state.done + 1
      state.bulk[state.done % 1000 + 1] = "v" .. state.done
      if state.done >= state.target then
        ctx:log("done", state.done)
        ved.exit(0)
      else
        ctx:send("w", "set")
      end
    end,
]])
local du, fsck, run = overwrite.du, overwrite.fsck, overwrite.run

-- history counts from fsck's report
local function history(out)
  local v, inwin, marks, pinned = out:match(
    "history: (%d+) versions? retained %(window %d+%.%.%d+, (%d+) in it%), " ..
    "(%d+) marks?;.- (%d+) pinned")
  assert.truthy(v, out)
  return { versions = tonumber(v), window = tonumber(inwin),
           marks = tonumber(marks), pinned = tonumber(pinned) }
end

describe("--retain", function()
  it("refuses bad values with one line, exit 2, nothing created", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", OVERWRITE)
    for _, bad in ipairs({ "", "x", "15q", "-5m", "0,1h", "1h,2h",
                           "0m", "10,20", "1.5h", "2GB,", ",1h",
                           "99999999999999999999" }) do
      local r = proc.run({ "run", "--data", "data", "--retain", bad,
                           "w.lua" }, { cwd = dir })
      assert.are.equal(2, r.code, bad .. ": " .. r.log)
      local line = proc.one_line(r)
      assert.truthy(line:find("--retain", 1, true), line)
      assert.is_nil(io.open(dir .. "/data/LOCK"), bad .. ": data dir made")
      proc.rmdir(dir .. "/data")
    end
    proc.rmdir(dir)
  end)

  it("keeps disk within a bound under overwrites with --retain 1000", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", OVERWRITE)
    run(dir, 3000, "1000")
    local h = history(fsck(dir))
    assert.are.equal(1000, h.window)
    local first = du(dir .. "/data/db")
    -- many more windows: the disk must not follow the writes
    run(dir, 12000, "1000")
    local out = fsck(dir)
    h = history(out)
    assert.are.equal(1000, h.window)
    assert.are.equal(1000, h.versions)
    local after = du(dir .. "/data/db")
    assert.is_true(after <= 2 * first + 1024,
                   ("du %d KB after 3 windows, %d KB after 15"):format(
                     first, after))
    proc.rmdir(dir)
  end)

  it("0 keeps only the newest version and no death list", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", OVERWRITE)
    run(dir, 500, "0")
    local out = fsck(dir)
    local h = history(out)
    assert.are.equal(1, h.versions)
    assert.truthy(out:find(" 0 death%-list entries"), out)
    proc.rmdir(dir)
  end)
end)

describe("marks", function()
  it("pin a version across restarts until unmark", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", OVERWRITE)
    run(dir, 200, "20")
    -- offline mark; bad and duplicate names are one line each
    local r = proc.run({ "mark", "--data", "data", "before" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("^marked before = version %d+"), r.out)
    r = proc.run({ "mark", "--data", "data", "before" }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("exists already", 1, true))
    r = proc.run({ "mark", "--data", "data", "9lives" }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("bad mark name", 1, true))
    r = proc.run({ "unmark", "--data", "data", "nope" }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("no mark named", 1, true))
    -- overwrite everything many windows over: the mark holds its nodes
    run(dir, 3000, "20")
    local h = history(fsck(dir))
    assert.are.equal(1, h.marks)
    assert.are.equal(21, h.versions) -- the window and the marked one
    assert.is_true(h.pinned > 0, "nothing pinned")
    -- unmark: the pinned nodes go, fsck stays clean
    r = proc.run({ "unmark", "--data", "data", "before" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    h = history(fsck(dir))
    assert.are.equal(0, h.marks)
    assert.are.equal(0, h.pinned)
    assert.are.equal(20, h.versions)
    proc.rmdir(dir)
  end)

  it("works through a running host's control socket", function()
    local dir = proc.tmpdir()
    -- a steady writer (not a flood: a store hold would refuse :mark)
    proc.write(dir .. "/w.lua", [[
local ved = require "ved"
ved.domain "w" {
  state = { k = 0 },
  start = function(state, ctx) ctx:every(5, "tick") end,
  on = { tick = function(state) state.k = state.k + 1 end },
}
]])
    local p = proc.start({ "run", "--data", "data", "--no-watch",
                           "--retain", "50", "w.lua" }, { cwd = dir })
    local ok, err = pcall(function()
      assert.is_true(proc.wait_log(p, "running", 30), proc.logtext(p))
      local r = proc.run({ "mark", "--data", "data", "live" }, { cwd = dir })
      assert.are.equal(0, r.code, r.log .. proc.logtext(p))
      assert.truthy(r.out:find("^marked live = version %d+"), r.out)
      r = proc.run({ "mark", "--data", "data", "live" }, { cwd = dir })
      assert.are.equal(1, r.code)
      assert.truthy(proc.one_line(r):find("exists already", 1, true))
      local function repl(code)
        return proc.run({ "repl", "--data", "data", "-e", code }, { cwd = dir })
      end
      r = repl(":mark second")
      assert.are.equal(0, r.code, r.log)
      assert.truthy(r.out:find("marked second = version %d+"), r.out)
      r = repl(":marks")
      assert.are.equal(0, r.code, r.log)
      assert.truthy(r.out:find("live%s+version %d+%s+%d+%-%d+%-%d+T"), r.out)
      assert.truthy(r.out:find("second%s+version %d+"), r.out)
      assert.truthy(r.out:find("KB held", 1, true), r.out)
      r = repl(":unmark second")
      assert.are.equal(0, r.code, r.log)
      assert.truthy(r.out:find("unmarked second", 1, true), r.out)
      r = repl(":unmark second")
      assert.are_not.equal(0, r.code)
      assert.truthy((r.out .. r.log):find("no mark named 'second'", 1, true),
                    r.out .. r.log)
      r = repl(":mark bad name")
      assert.are_not.equal(0, r.code)
      assert.truthy((r.out .. r.log):find("bad mark name", 1, true),
                    r.out .. r.log)
      r = repl(":marks")
      assert.is_nil(r.out:find("second", 1, true), r.out)
    end)
    if not ok then -- never leave the host running
      proc.signal(p, "KILL")
      proc.wait(p, 30)
      proc.cleanup(p)
      error(err, 0)
    end
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p, 60), proc.logtext(p))
    proc.cleanup(p)
    local h = history(fsck(dir))
    assert.are.equal(1, h.marks)
    proc.rmdir(dir)
  end)
end)

describe("what makes a version", function()
  -- a slice that changes no domain's state or version and queues nothing
  -- (a read-only REPL chunk) is not a version; a write or a send is
  it("read-only REPL chunks add none; a write and a send do", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/s.lua", [[
local ved = require "ved"
ved.domain "kv" { state = {}, start = function(s) s.x = 1 end,
  on = { ping = function(s) s.n = (s.n or 0) + 1 end } }
]])
    local p = proc.start({ "run", "--data", "data", "--no-watch", "s.lua" },
                         { cwd = dir })
    local ok, err = pcall(function()
      assert.is_true(proc.wait_log(p, "running", 30), proc.logtext(p))
      local function repl(code)
        local r = proc.run({ "repl", "--data", "data", "-e", code },
                           { cwd = dir })
        assert.are.equal(0, r.code, r.out .. r.log)
        return r.out
      end
      local function versions()
        local r = proc.run({ "log", "--data", "data" }, { cwd = dir })
        assert.are.equal(0, r.code, r.out .. r.log)
        local n, top = 0, nil
        for line in r.out:gmatch("[^\n]+") do
          local seq = line:match("^%s*(%d+)%s")
          if seq then
            n = n + 1
            top = top or line
          end
        end
        return n, top
      end
      repl("return 1") -- the REPL's first chunk may set it up
      local n0 = versions()
      assert.truthy(n0 >= 1)
      for _ = 1, 3 do
        repl("return at(0).seq")
        repl("return domains.kv.state.x")
        repl("return 1")
      end
      local n1, top = versions()
      assert.are.equal(n0, n1, top)
      repl("domains.kv.state.y = 2")
      local n2
      n2, top = versions()
      assert.are.equal(n0 + 1, n2)
      assert.truthy(top:find("kv", 1, true), top)
      repl("send('kv', 'ping')") -- a handler that writes
      local n3
      n3, top = versions()
      assert.are.equal(n2 + 1, n3)
      assert.truthy(top:find("kv", 1, true), top)
    end)
    proc.signal(p, ok and "TERM" or "KILL")
    proc.wait(p, 60)
    proc.cleanup(p)
    if not ok then error(err, 0) end
    fsck(dir)
    proc.rmdir(dir)
  end)
end)

describe("retention after kill -9", function()
  it("leaves fsck clean every round", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", OVERWRITE)
    math.randomseed(os.time())
    for round = 1, 6 do
      local p = proc.start({ "run", "--data", "data", "--no-watch",
                             "--durability", round % 2 == 0 and "sync"
                               or "nosync",
                             "--retain", "30", "w.lua" },
                           { cwd = dir, env = { VH_N = "100000000" } })
      assert.is_true(proc.wait_log(p, "running", 30), proc.logtext(p))
      if round == 3 then
        local r = proc.run({ "mark", "--data", "data", "m" .. round },
                           { cwd = dir })
        assert.are.equal(0, r.code, r.log)
      end
      proc.sleep(string.format("%.2f", 0.2 + math.random() * 0.4))
      proc.signal(p, "KILL")
      assert.are.equal(137, proc.wait(p, 30))
      proc.cleanup(p)
      fsck(dir)
    end
    proc.rmdir(dir)
  end)
end)

-- A clean stop (perf/stop, README "Durability and restart") makes the last
-- slice durable and flushes, but leaves what the next start resumes:
-- dropping old versions (their death lists read back from disk) and
-- sweeping dropped subtrees. Counted from fsck after the stop and after
-- the next start; nothing is timed.
describe("a clean stop", function()
  -- start writes one key (so its slice has a batch) and stops at once
  local STOP_AT_ONCE = [[
local ved = require "ved"
ved.domain "w" {
  state = { k = 0, done = 0, bulk = {} },
  start = function(state, ctx)
    state.k = state.k + 1
    %s
    ctx:log("stopping")
    ved.exit(0)
  end,
}
]]
  -- sends itself VH_N messages (each in its own slice), then stops
  local TICKS = [[
local ved = require "ved"
local N = tonumber(os.getenv("VH_N"))
ved.domain "w" {
  state = { k = 0, done = 0, bulk = {} },
  start = function(state, ctx) state.t = 0; ctx:send("w", "tick") end,
  on = { tick = function(state, _, ctx)
    state.t = state.t + 1
    if state.t >= N then ctx:log("done", state.t); ved.exit(0)
    else ctx:send("w", "tick") end
  end },
}
]]
  local function run_script(dir, src, retain, n)
    proc.write(dir .. "/s.lua", src)
    local r = proc.run({ "run", "--data", "data", "--no-watch", "--retain",
                         retain, "s.lua" },
                       { cwd = dir, env = { VH_N = tostring(n or 1) },
                         timeout = 300 })
    assert.are.equal(0, r.code, r.log)
    return r
  end

  it("leaves old versions' drops to the next start, exactly", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", OVERWRITE)
    run(dir, 300, "1000")
    local before = history(fsck(dir)).versions
    assert.is_true(before >= 300, tostring(before))
    -- restarted with a window of 1 version, stopped in its first slice:
    -- that slice drops one old version, as many as it adds (it used to
    -- drop 64)
    run_script(dir, STOP_AT_ONCE:format(""), "1")
    local h = history(fsck(dir))
    assert.are.equal(before, h.versions)
    -- the next start drops them all (64 per slice here) and fsck is clean
    run_script(dir, TICKS, "1", 20)
    h = history(fsck(dir))
    assert.are.equal(1, h.versions)
    proc.rmdir(dir)
  end)

  it("leaves a dropped subtree's sweep to the next start", function()
    local dir = proc.tmpdir()
    -- a 60,000-value table (hundreds of nodes), written and stopped
    proc.write(dir .. "/w.lua", (OVERWRITE:gsub("1000 do", "60000 do")))
    run(dir, 1, "0")
    -- restarted: bulk is never loaded, so dropping it is a sweep
    run_script(dir, STOP_AT_ONCE:format("state.bulk = {}"), "0")
    local out = fsck(dir)
    local queued = tonumber(out:match("(%d+) queued for sweeping"))
    assert.is_true(queued > 256, out) -- more than one sweep step left
    run_script(dir, TICKS, "0", 200) -- a sweep step per slice
    out = fsck(dir)
    assert.truthy(out:find(" 0 queued for sweeping", 1, true), out)
    proc.rmdir(dir)
  end)
end)
