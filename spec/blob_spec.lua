-- blob_spec.lua - big string values stored out of line (blobs,
-- ARCHITECTURE.md "Large string values out of line") through real vedhost
-- processes: values of 256 bytes and more round-trip through restarts,
-- survive kill -9 (fsck clean, every value whole), read back at older
-- versions (inspect --at) and diff between versions; blobs of dropped
-- values are collected exactly (fsck: nothing unreachable, with --retain
-- 0 and with retained history). Bounded waits only; nothing measures time.
local proc = require "support.proc"

-- Values are self-checking: "<key>:<gen>:" then filler up to a length
-- that depends on both, so a value cut short, swapped with another key's
-- or from another generation shows. Lengths 200..1700 straddle the
-- 256-byte threshold.
local VALUE_SRC = [[
local function value(k, gen)
  local head = k .. ":" .. gen .. ":"
  local len = 200 + (#k * 37 + gen * 101) % 1500
  local fill = string.rep(string.char(97 + gen % 26), len)
  return head .. fill:sub(1, len - #head)
end
]]

-- Phase g (one handler call each) rewrites keys k1..kK whose number is a
-- multiple of g's stride and deletes one key per phase; VH_PHASES phases,
-- then ved.exit(0) (or, with VH_LOOP, on forever: a kill -9 target that
-- logs each phase).
local WRITER = VALUE_SRC .. [[
local ved = require "ved"
local K = tonumber(os.getenv("VH_K") or "60")
local PHASES = tonumber(os.getenv("VH_PHASES") or "3")
local LOOP = os.getenv("VH_LOOP") == "1"
ved.domain "kv" {
  state = { gen = {}, vals = {}, phase = 0 },
  start = function(state, ctx) ctx:send("kv", "phase") end,
  on = {
    phase = function(state, _, ctx)
      state.phase = state.phase + 1
      local g = state.phase
      for i = 1, K do
        if g == 1 or i % (g % 5 + 2) == 0 then
          local k = "k" .. i
          state.vals[k] = value(k, g)
          state.gen[k] = g
        end
      end
      if g > 1 then
        local gone = "k" .. ((g * 7) % K + 1)
        state.vals[gone] = nil
        state.gen[gone] = nil
      end
      ctx:log("phase", g)
      if LOOP or g < PHASES then
        ctx:send("kv", "phase")
      else
        ved.exit(0)
      end
    end,
  },
}
]]

-- Checks every value against its generation, logs "checked N bad B".
local CHECKER = VALUE_SRC .. [[
local ved = require "ved"
ved.domain "kv" {
  state = { gen = {}, vals = {}, phase = 0 },
  start = function(state, ctx)
    local n, bad = 0, 0
    for k, g in pairs(state.gen) do
      n = n + 1
      if state.vals[k] ~= value(k, g) then bad = bad + 1 end
    end
    for k in pairs(state.vals) do
      if state.gen[k] == nil then bad = bad + 1 end
    end
    ctx:log("checked", n, "bad", bad, "phase", state.phase)
    ved.exit(0)
  end,
}
]]

-- The same value function, here in the spec.
local value = assert((loadstring or load)(VALUE_SRC .. "return value"))()

local function setup()
  local dir = proc.tmpdir()
  proc.write(dir .. "/w.lua", WRITER)
  proc.write(dir .. "/c.lua", CHECKER)
  return dir
end

local function run(dir, script, env, extra)
  local args = { "run", "--data", "data", "--no-watch" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  args[#args + 1] = script
  local r = proc.run(args, { cwd = dir, env = env or {}, timeout = 300 })
  assert.are.equal(0, r.code, r.log)
  return r
end

local function check(dir)
  local r = run(dir, "c.lua")
  local n, bad, phase = r.log:match("checked (%d+) bad (%d+) phase (%d+)")
  assert.truthy(n, r.log)
  assert.are.equal("0", bad, r.log)
  return tonumber(n), tonumber(phase)
end

local function fsck(dir)
  local r = proc.run({ "fsck", "--data", "data" }, { cwd = dir, timeout = 120 })
  assert.are.equal(0, r.code, r.out .. r.log)
  assert.truthy(r.out:find("fsck: ok", 1, true), r.out .. r.log)
  return r.out
end

local function inspect(dir, path, at)
  local args = { "inspect", "--data", "data" }
  if at then
    args[#args + 1] = "--at"
    args[#args + 1] = at
  end
  args[#args + 1] = path
  local r = proc.run(args, { cwd = dir, timeout = 60 })
  if r.code ~= 0 then return nil, r.log end
  return r.out
end

-- The state after each phase, as the writer makes it: model[g][k] = gen.
local function model(phases, K)
  local out, cur = {}, {}
  for g = 1, phases do
    for i = 1, K do
      if g == 1 or i % (g % 5 + 2) == 0 then cur["k" .. i] = g end
    end
    if g > 1 then cur["k" .. ((g * 7) % K + 1)] = nil end
    local snap = {}
    for k, v in pairs(cur) do snap[k] = v end
    out[g] = snap
  end
  return out
end

-- Seqs of the versions that changed domain kv, oldest first.
local function kv_versions(dir)
  local r = proc.run({ "log", "--data", "data", "--domain", "kv" },
                     { cwd = dir, timeout = 60 })
  assert.are.equal(0, r.code, r.log)
  local seqs = {}
  for seq in r.out:gmatch("\n%s*(%d+)%s") do table.insert(seqs, 1, seq) end
  return seqs
end

describe("big string values", function()
  it("round-trip through restarts, old versions and diff", function()
    local dir = setup()
    run(dir, "w.lua", { VH_PHASES = "3" }, { "--durability", "sync" })
    local m = model(3, 60)
    local n, phase = check(dir)
    assert.are.equal(3, phase)
    local count = 0
    for _ in pairs(m[3]) do count = count + 1 end
    assert.are.equal(count, n)
    -- What only older versions reach: the values phases 2 and 3 replaced
    -- or deleted, and the few nodes on their paths, not the neighbours
    -- that shared a node with them (values inline rewrote ~10x more here).
    local out = fsck(dir)
    local hist = tonumber(out:match(
      "history: .-; %d+ nodes %((%d+) bytes%) only older versions reach"))
    assert.truthy(hist, out)
    local replaced = 0
    for g = 2, 3 do
      for k, old in pairs(m[g - 1]) do
        if m[g][k] ~= old then replaced = replaced + #value(k, old) end
      end
    end
    assert.is_true(hist < replaced + 8000,
                   ("history %d bytes, replaced values %d"):format(hist,
                                                                replaced))
    -- the versions of the 3 phases (the first holds the initial state)
    local seqs = kv_versions(dir)
    assert.are.equal(4, #seqs, table.concat(seqs, " "))
    table.remove(seqs, 1)
    -- every value of every version reads back whole at that version
    for g = 1, 3 do
      for _, k in ipairs({ "k1", "k12", "k15", "k20", "k22", "k60" }) do
        local out, err = inspect(dir, "kv.vals." .. k, seqs[g])
        if m[g][k] then
          assert.truthy(out and out:find(value(k, m[g][k]), 1, true),
                        k .. "@" .. g .. ": " .. (out or err):sub(1, 100))
        else
          assert.truthy(err and err:find("has no key " .. k, 1, true),
                        k .. "@" .. g .. ": " .. (out or err))
        end
      end
    end
    -- the diff of the last phase: exactly its rewrites, adds and delete
    local r = proc.run({ "diff", "--data", "data", seqs[2], seqs[3],
                         "kv.vals" }, { cwd = dir, timeout = 60 })
    assert.are.equal(0, r.code, r.log)
    local want = {}
    for k, g in pairs(m[3]) do
      if m[2][k] == nil then want[k] = "+"
      elseif m[2][k] ~= g then want[k] = "~" end
    end
    for k in pairs(m[2]) do if m[3][k] == nil then want[k] = "-" end end
    local seen = 0
    for line in r.out:gmatch("[^\n]+") do
      local op, k = line:match("^([~+-]) kv%.vals%.(k%d+)")
      assert.truthy(op, line:sub(1, 200))
      assert.are.equal(want[k], op, line:sub(1, 200))
      if op ~= "-" then
        assert.truthy(line:find(value(k, m[3][k]), 1, true), line:sub(1, 200))
      end
      seen = seen + 1
    end
    local nwant = 0
    for _ in pairs(want) do nwant = nwant + 1 end
    assert.are.equal(nwant, seen, r.out:sub(1, 2000))
    proc.rmdir(dir)
  end)

  it("drop their blobs exactly, with and without history", function()
    for _, retain in ipairs({ "0", "3" }) do
      local dir = setup()
      run(dir, "w.lua", { VH_PHASES = "12" },
          { "--durability", "nosync", "--retain", retain })
      fsck(dir) -- no blob unreachable, none missing
      check(dir)
      run(dir, "w.lua", { VH_PHASES = "20" },
          { "--durability", "nosync", "--retain", retain })
      local out = fsck(dir)
      if retain == "0" then
        assert.truthy(out:find(" 0 death%-list entries"), out)
      end
      local _, phase = check(dir)
      assert.are.equal(20, phase)
      proc.rmdir(dir)
    end
  end)

  it("survive kill -9 whole (fsck clean, every value checks)", function()
    local dir = setup()
    local last = 0
    for round = 1, 3 do
      local p = proc.start({ "run", "--data", "data", "--no-watch",
                             "--durability", "sync", "w.lua" },
                           { cwd = dir, env = { VH_LOOP = "1", VH_K = "200" } })
      assert.is_true(proc.wait_log(p, "] phase " .. (last + 3), 120),
                     proc.logtext(p))
      -- a REPL reply waits for durability: this phase must survive
      local r = proc.run({ "repl", "--data", "data", "-e",
                           "return domains.kv.state.phase" },
                         { cwd = dir, timeout = 60 })
      assert.are.equal(0, r.code, r.out .. r.log)
      local acked = tonumber(r.out:match("(%d+)%s*$"))
      assert.truthy(acked, r.out)
      proc.signal(p, "KILL")
      proc.wait(p, 30)
      proc.cleanup(p)
      fsck(dir)
      local n, phase = check(dir)
      assert.is_true(phase >= acked and phase > last,
                     ("phase %d, acked %d"):format(phase, acked))
      last = phase
      local want = 0
      for _ in pairs(model(phase, 200)[phase]) do want = want + 1 end
      assert.are.equal(want, n)
      fsck(dir)
    end
    proc.rmdir(dir)
  end)
end)
