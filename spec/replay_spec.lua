-- replay_spec.lua - `vedhost replay --at V` (issue 17, the "det" part)
-- against real vedhost processes: deterministic slices (math.random seeded
-- per slice and domain, os.time/os.date/os.clock reading the slice clock)
-- and the input log make every version of a random workload reproducible;
-- a slice that read an outside input (io.open in a handler) or that a REPL
-- chunk wrote directly is reported as unreplayable; replay never changes
-- the store (every file of DIR/db hashed before and after); a changed
-- script is reported as NOT reproduced with the paths; bad input is one
-- line.
local proc = require "support.proc"

local SCRIPT = [[
local ved = require "ved"
ved.domain "gen" {
  state = { n = 0, rolls = {}, t = 0 },
  start = function(state, ctx) ctx:every(15, "tick") end,
  on = {
    tick = function(state, payload, ctx)
      state.n = state.n + 1
      local r = math.random(1, 1000)
      state.rolls[#state.rolls + 1] = r
      if #state.rolls > 20 then table.remove(state.rolls, 1) end
      state.t = os.time()
      state.d = os.date("!%H:%M:%S")
      state.c = os.clock()
      state.f = math.random()
      if r % 3 == 0 then ctx:after(r % 20, "late", { r = r }) end
      ctx:send("sink", "put", { k = "k" .. (r % 7), v = r, at = ctx.now })
    end,
    late = function(state, p, ctx)
      state.late = (state.late or 0) + p.r * math.random(3)
    end,
  },
}
ved.domain "sink" {
  state = { kv = {} },
  on = {
    put = function(state, p, ctx)
      state.kv[p.k] = { v = p.v, seen = os.time(), r = math.random(100) }
      if math.random(4) == 1 then ctx:send("gen", "late", { r = p.v }) end
    end,
    peek = function(state, p, ctx)
      local f = io.open("/etc/hostname")
      if f then f:close() end
      state.peeked = (state.peeked or 0) + 1
    end,
  },
}
]]

local function vh(dir, ...)
  return proc.run({ ... }, { cwd = dir, env = { NO_COLOR = "1" }, timeout = 60 })
end

local function start_host(dir)
  return proc.start_host(nil, {
    dir = dir, name = "app.lua",
    args = { "--data", "data", "--no-watch", "--durability", "nosync" } })
end

local function db_hash(dir)
  return proc.tree_hash(dir .. "/data/db")
end

local function versions(dir)
  local r = vh(dir, "log", "--data", "data", "-n", "100000")
  assert.are.equal(0, r.code, r.log)
  local seqs = {}
  for seq in r.out:gmatch("\n%s*(%d+)%s") do seqs[#seqs + 1] = tonumber(seq) end
  table.sort(seqs)
  return seqs
end

describe("vedhost replay", function()
  local dir
  setup(function()
    dir = proc.tmpdir()
    proc.write(dir .. "/app.lua", SCRIPT)
    local host = start_host(dir)
    -- traffic from outside too: queued messages, then an io read and a
    -- direct REPL write (unreplayable), then more ticks
    proc.sleep(0.4)
    for i = 1, 5 do
      local r = vh(dir, "repl", "--data", "data", "-e",
                   string.format('ved.send("sink", "put", {k = "r%d", v = %d})',
                                 i, i))
      assert.are.equal(0, r.code, r.log)
    end
    assert.are.equal(0, vh(dir, "repl", "--data", "data", "-e",
                           'ved.send("sink", "peek")').code)
    proc.sleep(0.2)
    assert.are.equal(0, vh(dir, "repl", "--data", "data", "-e",
                           "domains.sink.state.direct = true").code)
    proc.sleep(0.6)
    -- beside the running host (secondary open)
    local r = vh(dir, "replay", "--data", "data", "--at", "-1")
    assert.truthy(r.code == 0 or r.code == 1, r.log .. r.out)
    -- the REPL's replay(V), in the running host, on private copies
    r = vh(dir, "repl", "--data", "data", "-e", [[
      local ok, bad, unrep = 0, 0, 0
      for i = 2, 40 do
        local good, d, info = pcall(replay, -i)
        if not good then
          assert(tostring(d):find("unreplayable", 1, true), d)
          unrep = unrep + 1
        elseif #d == 0 and info.reproduced then
          ok = ok + 1 -- (a chunk's ved.send alone makes a version of 0 calls)
        else
          bad = bad + 1
        end
      end
      return ok, bad, unrep]])
    assert.are.equal(0, r.code, r.log .. r.out)
    local okn, badn = r.out:match("^(%d+)\n(%d+)\n")
    assert.are.equal("0", badn, r.out)
    assert.truthy(tonumber(okn) >= 30, r.out)
    r = vh(dir, "repl", "--data", "data", "-e", "return replay(999999)")
    assert.are.equal(1, r.code)
    assert.truthy(r.out:find("replay: unknown version 999999", 1, true) or
                  r.log:find("replay: unknown version 999999", 1, true),
                  r.out .. r.log)
    assert.are.equal(0, proc.stop_host(host, 60))
    -- replays inside the host reported no death: every node is accounted
    r = vh(dir, "fsck", "--data", "data")
    assert.are.equal(0, r.code, r.out .. r.log)
  end)
  teardown(function()
    proc.reap()
    proc.rmdir(dir)
  end)

  it("reproduces every version of a random workload, never writing", function()
    local before = db_hash(dir)
    local seqs = versions(dir)
    assert.truthy(#seqs > 40, #seqs)
    local reproduced, unrep = 0, {}
    for i, v in ipairs(seqs) do
      local r = vh(dir, "replay", "--data", "data", "--at", tostring(v))
      if i == 1 then
        -- the oldest retained version: the one before it is not
        assert.are.equal(1, r.code, r.out)
        local line = proc.one_line(r)
        assert.truthy(line:find("version before it is not retained", 1, true),
                      line)
      elseif r.code == 1 then
        unrep[#unrep + 1] = proc.one_line(r)
      else
        assert.are.equal(0, r.code, v .. ": " .. r.log .. r.out)
        assert.truthy(r.out:find("version " .. v .. " reproduced", 1, true),
                      r.out)
        reproduced = reproduced + 1
      end
    end
    assert.are.equal(2, #unrep, table.concat(unrep, "\n"))
    table.sort(unrep, function(a, b) return a:find("io.open", 1, true) ~= nil end)
    assert.truthy(unrep[1]:find("is unreplayable: sink.peek called io.open",
                                1, true), unrep[1])
    assert.truthy(unrep[2]:find("REPL chunk", 1, true), unrep[2])
    assert.are.equal(#seqs - 3, reproduced)
    assert.are.equal(before, db_hash(dir))
  end)

  it("--trace prints each call's writes and the verdict", function()
    local seqs = versions(dir)
    local seen = false
    for i = #seqs, 2, -1 do -- the newest version with a call that wrote
      local r = vh(dir, "replay", "--data", "data", "--at", tostring(seqs[i]),
                   "--trace")
      if r.code == 0 and r.out:find("-> ok\n  [~+-] ") then
        assert.truthy(r.out:find("\nversion " .. seqs[i] .. " reproduced", 1,
                                 true), r.out)
        seen = true
        break
      end
      assert.truthy(r.code == 0 or r.code == 1, r.log .. r.out)
    end
    assert.is_true(seen)
  end)

  it("reports a changed handler as NOT reproduced, with the paths", function()
    local code = dir .. "/code2"
    os.execute("mkdir -p '" .. code .. "'")
    proc.write(code .. "/app.lua", (SCRIPT:gsub("state.n = state.n %+ 1",
                                                "state.n = state.n + 2")))
    local seqs = versions(dir)
    local found = false
    for i = #seqs, 2, -1 do
      local r = vh(dir, "replay", "--data", "data", "--at", tostring(seqs[i]),
                   "--code", code)
      if r.code == 3 then
        assert.truthy(r.out:find("state: ~ gen.n: ", 1, true), r.out)
        assert.truthy(r.out:find("NOT reproduced: 1 path differs", 1, true),
                      r.out)
        found = true
        break
      end
      assert.are.equal(0, r.code, r.log .. r.out) -- a slice without tick
    end
    assert.is_true(found)
  end)

  it("refuses bad input with one line", function()
    local r = vh(dir, "replay", "--data", "data", "--at", "999999")
    assert.are.equal(1, r.code)
    proc.one_line(r)
    r = vh(dir, "replay", "--data", "data")
    assert.are.equal(2, r.code)
    assert.truthy(proc.one_line(r):find("--at V is missing", 1, true))
    r = vh(dir, "replay", "--data", dir .. "/nope", "--at", "1")
    assert.are.equal(1, r.code)
    proc.one_line(r)
  end)
end)

describe("the scripts list (DIR/scripts, replay's default code)", function()
  it("is written when the scripts change, and left alone when not", function()
    local dir = proc.tmpdir()
    local quick = [[
local ved = require "ved"
ved.domain "%s" { state = { n = 0 },
  start = function(state) state.n = state.n + 1; ved.exit(0) end }
]]
    proc.write(dir .. "/a.lua", quick:format("a"))
    proc.write(dir .. "/b.lua", quick:format("b"))
    local function run(...)
      local r = vh(dir, "run", "--data", "data", "--no-watch", ...)
      assert.are.equal(0, r.code, r.log)
    end
    local function inode()
      local out, code = proc.sh("stat -c %i " .. dir .. "/data/scripts")
      assert.are.equal(0, code)
      return out
    end
    local function list()
      local f = assert(io.open(dir .. "/data/scripts"))
      local s = f:read("a")
      f:close()
      return s
    end
    run("a.lua")
    assert.are.equal(dir .. "/a.lua\n", list())
    local first = inode()
    run("a.lua")
    assert.are.equal(first, inode()) -- the same scripts: not rewritten
    run("a.lua", "b.lua")
    assert.are.equal(dir .. "/a.lua\n" .. dir .. "/b.lua\n", list())
    run("a.lua")
    assert.are.equal(dir .. "/a.lua\n", list())
    proc.rmdir(dir)
  end)
end)
