-- export_spec.lua - `vedhost export` / `vedhost import` end to end (issue 9):
-- round trips through real hosts, byte-identical re-export, export while a
-- host writes (the snapshot is the state at one slice: invariants spanning
-- many keys hold), damaged / truncated streams and non-empty targets
-- refused with one line and the target untouched, --replace-domain.
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local one_line = proc.one_line

-- The value at PATH of data dir DATA, as a Lua value (inspect prints
-- Lua literals).
local function value(dir, data, path)
  local r = proc.run({ "inspect", "--data", data, path }, { cwd = dir })
  assert.are.equal(0, r.code, r.log)
  return assert(load("return " .. r.out))()
end

-- A state with every value kind, deep nesting, binary and large strings.
local STATE = HEAD .. [[
local s = { ints = {}, mixed = {}, big = string.rep("xyz\0", 300000) }
for i = 1, 5000 do s.ints[i] = i * 7 - 3 end
s.ints[2500] = nil -- a hole in the array part
for i = 1, 3000 do s.mixed["k" .. i] = (i % 3 == 0) and i / 4 or ("v" .. i) end
s.mixed[true] = false
s.mixed[-5] = math.mininteger
s.mixed[2.5] = -0.0
s.mixed.f = 2.0 -- a float with an integral value stays a float
local deep = s
for i = 1, 300 do deep.down = { level = i }; deep = deep.down end
ved.domain "kinds" { version = 4, state = s,
  start = function() ved.exit(0) end }
ved.domain "other" { state = { hello = "world" } }
]]

describe("vedhost export / import", function()
  local dir
  before_each(function()
    dir = proc.tmpdir()
    proc.write(dir .. "/kinds.lua", STATE)
  end)
  after_each(function() proc.rmdir(dir) end)

  it("round-trips a state to identical bytes and a running host", function()
    local r = proc.run({ "run", "--data", "d1", "kinds.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "export", "--data", "d1", "a.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("", r.log) -- silent when not on a terminal
    r = proc.run({ "import", "--data", "d2", "a.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "export", "--data", "d2", "b.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal(proc.read(dir .. "/a.vx"), proc.read(dir .. "/b.vx"))
    -- the imported dir is a sound store with the same state
    r = proc.run({ "fsck", "--data", "d2" }, { cwd = dir })
    assert.are.equal(0, r.code, r.out .. r.log)
    local a = proc.run({ "inspect", "--data", "d1" }, { cwd = dir })
    local b = proc.run({ "inspect", "--data", "d2" }, { cwd = dir })
    assert.are.equal(0, b.code, b.log)
    assert.are.equal(a.out, b.out)
    assert.are.equal(math.mininteger, value(dir, "d2", "kinds.mixed.-5"))
    assert.are.equal(math.type(value(dir, "d2", "kinds.mixed.f")), "float")
    -- a host starts on it, with the stored (not the initial) state
    proc.write(dir .. "/check.lua", HEAD .. [[
      ved.domain "kinds" { version = 4, state = {},
        start = function(s, ctx)
          local n = 0
          for _ in pairs(s.ints) do n = n + 1 end
          ctx:log("ints " .. n .. " " .. s.ints[5000] .. " big " .. #s.big ..
                  " level " .. s.down.down.level)
          ved.exit(0)
        end }
    ]])
    r = proc.run({ "run", "--data", "d2", "check.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("ints 4999 34997 big 1200000 level 2", 1, true), r.log)
  end)

  it("pipes through stdin / stdout and exports chosen domains", function()
    local r = proc.run({ "run", "--data", "d1", "kinds.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    local sh = string.format(
      "cd %s && %s export --data d1 --domain other - | %s import --data d3 -",
      proc.quote(dir), proc.quote(proc.bin), proc.quote(proc.bin))
    assert.is_true(os.execute(sh))
    local all = proc.run({ "inspect", "--data", "d3" }, { cwd = dir })
    assert.are.equal(0, all.code, all.log)
    assert.truthy(all.out:find('hello = "world"', 1, true), all.out)
    assert.falsy(all.out:find("kinds", 1, true), all.out)
    r = proc.run({ "export", "--data", "d1", "--domain", "nope", "x.vx" },
                 { cwd = dir })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("no domain 'nope'", 1, true))
    assert.is_false(exists(dir .. "/x.vx"))
  end)

  it("refuses damaged, truncated and foreign files; target untouched",
     function()
    local r = proc.run({ "run", "--data", "d1", "kinds.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "export", "--data", "d1", "a.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    local good = proc.read(dir .. "/a.vx")
    local n = #good
    local cases = {}
    -- a flipped byte in the zstd header, early body, middle, the last
    -- block, the checksum at the very end
    for _, at in ipairs({ 5, 20, n // 2, n - 12, n - 2, n }) do
      local b = good:byte(at)
      cases[#cases + 1] = good:sub(1, at - 1) .. string.char(b ~ 0x5a) ..
                          good:sub(at + 1)
    end
    for _, cut in ipairs({ 0, 4, 30, n // 3, n - 1 }) do
      cases[#cases + 1] = good:sub(1, cut)
    end
    cases[#cases + 1] = good .. "\0"
    cases[#cases + 1] = "VEDXPORT but not compressed at all"
    for i, bytes in ipairs(cases) do
      proc.write(dir .. "/bad.vx", bytes)
      r = proc.run({ "import", "--data", "t" .. i, "bad.vx" }, { cwd = dir })
      assert.are.equal(1, r.code, "case " .. i)
      assert.truthy(one_line(r):find("nothing was changed", 1, true), r.log)
      assert.is_false(exists(dir .. "/t" .. i), "case " .. i)
    end
    -- the good file still imports
    r = proc.run({ "import", "--data", "ok", "a.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
  end)

  it("refuses a non-empty data dir and leaves it as it was", function()
    local r = proc.run({ "run", "--data", "d1", "kinds.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "export", "--data", "d1", "a.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    local before = proc.run({ "inspect", "--data", "d1" }, { cwd = dir }).out
    r = proc.run({ "import", "--data", "d1", "a.vx" }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("not empty", 1, true))
    assert.are.equal(before,
                     proc.run({ "inspect", "--data", "d1" }, { cwd = dir }).out)
    -- an empty existing dir is fine
    os.execute("mkdir " .. proc.quote(dir .. "/empty"))
    r = proc.run({ "import", "--data", "empty", "a.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
  end)

  it("replaces one domain of a stopped host, not of a running one",
     function()
    local r = proc.run({ "run", "--data", "d1", "kinds.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    proc.write(dir .. "/o2.lua", HEAD .. [[
      ved.domain "other" { version = 2, state = { hello = "moon", n = 1 },
        start = function() ved.exit(0) end }
    ]])
    r = proc.run({ "run", "--data", "o2", "o2.lua" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "export", "--data", "o2", "o2.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    -- while a host runs on d1: refused
    proc.write(dir .. "/idle.lua", HEAD .. [[
      ved.domain "kinds" { version = 4,
        start = function(s, ctx) ctx:log("idle up") end }
    ]])
    local p = proc.start({ "run", "--data", "d1", "idle.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "idle up"))
    r = proc.run({ "import", "--data", "d1", "--replace-domain", "other",
                   "o2.vx" }, { cwd = dir })
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p))
    proc.cleanup(p)
    assert.are.equal(1, r.code)
    local line = one_line(r)
    assert.truthy(line:find("in use by another vedhost", 1, true), r.log)
    assert.truthy(line:find("stop it first", 1, true), r.log)
    assert.falsy(line:find("first; stop", 1, true), r.log) -- said once
    assert.are.equal("world", value(dir, "d1", "other.hello"))
    -- stopped: replaced; the other domain is untouched, fsck is happy
    r = proc.run({ "import", "--data", "d1", "--replace-domain", "other",
                   "o2.vx" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("moon", value(dir, "d1", "other.hello"))
    assert.are.equal(7 * 10 - 3, value(dir, "d1", "kinds.ints.10"))
    r = proc.run({ "fsck", "--data", "d1" }, { cwd = dir })
    assert.are.equal(0, r.code, r.out .. r.log)
  end)

  it("exports a consistent slice while a host is writing", function()
    -- Every move keeps the total of 100 accounts at 100000 and appends to
    -- a log as long as the move count: a torn snapshot breaks one of them.
    proc.write(dir .. "/bank.lua", HEAD .. [[
      local acc = {}
      for i = 1, 100 do acc[i] = 1000 end
      ved.domain "bank" { state = { acc = acc, moves = 0, log = {} },
        start = function(s, ctx) ctx:every(1, "move"); ctx:log("bank up") end,
        on = { move = function(s)
          for _ = 1, 50 do
            local a, b = math.random(100), math.random(100)
            local amt = math.random(40)
            if s.acc[a] >= amt then
              s.acc[a] = s.acc[a] - amt
              s.acc[b] = s.acc[b] + amt
            end
            s.moves = s.moves + 1
            s.log[#s.log + 1] = s.moves
          end
        end } }
    ]])
    proc.write(dir .. "/check.lua", HEAD .. [[
      ved.domain "bank" { state = {},
        start = function(s, ctx)
          local total = 0
          for _, v in ipairs(s.acc) do total = total + v end
          ctx:log(string.format("CHECK %d %d %d %d %d", #s.acc, total,
                                s.moves, #s.log, s.log[#s.log] or 0))
          ved.exit(0)
        end }
    ]])
    local p = proc.start({ "run", "--data", "live", "--durability", "nosync",
                           "bank.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "bank up"))
    local seen = {}
    for i = 1, 4 do
      proc.sleep(0.3)
      local r = proc.run({ "export", "--data", "live", "s" .. i .. ".vx" },
                         { cwd = dir })
      assert.are.equal(0, r.code, r.log)
      r = proc.run({ "import", "--data", "r" .. i, "s" .. i .. ".vx" },
                   { cwd = dir })
      assert.are.equal(0, r.code, r.log)
      -- inspect abbreviates long tables: a host checks the restored state
      r = proc.run({ "run", "--data", "r" .. i, "check.lua" }, { cwd = dir })
      assert.are.equal(0, r.code, r.log)
      local n, total, moves, nlog, last =
        r.log:match("CHECK (%d+) (%d+) (%d+) (%d+) (%d+)")
      assert.truthy(n, r.log)
      assert.are.equal("100", n)
      assert.are.equal("100000", total)
      assert.are.equal(moves, nlog)
      assert.are.equal(moves, last)
      local bank = { moves = tonumber(moves) }
      seen[#seen + 1] = bank.moves
    end
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p))
    proc.cleanup(p)
    -- the host really was writing between the exports
    assert.is_true(seen[#seen] > seen[1], table.concat(seen, " "))
  end)
end)
