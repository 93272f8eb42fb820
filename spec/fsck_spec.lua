-- fsck_spec.lua - `vedhost fsck`: a clean store passes; a missing, corrupt
-- or undecodable reachable node, an unreachable node, a live node queued
-- for sweeping, each fail with a report naming the node (and its path);
-- a dropped subtree queued for sweeping is not a leak; bad data dirs give
-- one line; fsck beside a running host works and does not disturb it.
--
-- Stores are built and damaged by the ctest helper host_test_offline
-- (host/tests/test_offline.c, tool mode) through the store's own API or
-- raw RocksDB; the live-host tests use `vedhost run` itself.
local proc = require "support.proc"

local build = os.getenv("VEDHOST_BUILD") or "build"
local TOOL = build .. "/host/host_test_offline"
local q = proc.quote

local sh = proc.sh

local function tool(...)
  local args = { TOOL }
  for _, a in ipairs({ ... }) do args[#args + 1] = q(a) end
  local out, code = sh(table.concat(args, " "))
  assert(code == 0, "tool failed: " .. table.concat({ ... }, " "))
  return out
end

-- mkstore in a fresh dir: returns dir, { name = id }.
local function mkstore()
  local dir = proc.tmpdir()
  local ids = {}
  for name, id in tool("mkstore", dir):gmatch("(%S+) (%d+)") do
    ids[name] = tonumber(id)
  end
  return dir, ids
end

local function fsck(dir)
  return proc.run({ "fsck", "--data", dir }, { cwd = "/tmp", timeout = 60 })
end

describe("vedhost fsck", function()
  local dir, ids
  before_each(function() dir, ids = mkstore() end)
  after_each(function() proc.rmdir(dir) end)

  it("passes a clean store and counts per domain", function()
    local r = fsck(dir)
    assert.are.equal(0, r.code, r.out .. r.log)
    assert.truthy(r.out:find("fsck: ok (2 domains", 1, true), r.out)
    -- big: 5000 keys in one table
    assert.truthy(r.out:match("domain big%s+version 2%s+%d+ nodes%s+%d+ " ..
                              "bytes%s+5000 keys%s+1 tables"), r.out)
    -- counter: 5 top keys + 50 recent + 30 users * (1 + 2 fields + 2 tags)
    assert.truthy(r.out:match("domain counter%s+version 1%s+%d+ nodes%s+" ..
                              "%d+ bytes%s+205 keys%s+63 tables"), r.out)
    assert.truthy(r.out:match("system __ved%s+%d+ nodes"), r.out)
  end)

  it("names a missing reachable node and where it was", function()
    tool("del", dir, ids["counter.recent"])
    local r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("node " .. ids["counter.recent"] ..
                             " is missing", 1, true), r.out)
    assert.truthy(r.out:find("[at counter.recent]", 1, true), r.out)
    assert.truthy(r.out:match("fsck: %d+ problems?"), r.out)
  end)

  it("names a missing inner node of a big table", function()
    tool("del", dir, ids["big.inner"])
    local r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("node " .. ids["big.inner"] .. " is missing " ..
                             "(referred to by node " .. ids["big.hash"] ..
                             ") [under big]", 1, true), r.out)
    -- its children are stranded: reported as one unreachable subtree each
    assert.truthy(r.out:find("unreachable node", 1, true), r.out)
  end)

  it("reports an unreachable node, and is clean once it is gone", function()
    tool("copy", dir, ids["counter.users.3"], ids.free_id)
    local r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("1 unreachable node ", 1, true), r.out)
    assert.truthy(r.out:find("rooted at node " .. ids.free_id, 1, true), r.out)
    tool("del", dir, ids.free_id)
    assert.are.equal(0, fsck(dir).code)
  end)

  it("does not count a subtree queued for sweeping as a leak", function()
    local root = tonumber(tool("orphan", dir):match("%d+"))
    local r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("rooted at node " .. root, 1, true), r.out)
    tool("queue", dir, root)
    r = fsck(dir)
    assert.are.equal(0, r.code, r.out)
    assert.truthy(r.out:match("[1-9]%d* queued for sweeping"), r.out)
    -- but a live node must never be queued
    tool("queue", dir, ids["counter.recent"])
    r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("node " .. ids["counter.recent"] ..
                             " is reachable but queued for sweeping", 1, true))
  end)

  it("reports a flipped byte as corrupt, naming node and path", function()
    tool("flip", dir, ids["counter.users.3"])
    local r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("node " .. ids["counter.users.3"] ..
                             " is corrupt: node " .. ids["counter.users.3"] ..
                             ": checksum mismatch", 1, true), r.out)
    assert.truthy(r.out:find("[at counter.users.3]", 1, true), r.out)
  end)

  it("reports a node that reads but does not decode", function()
    tool("recode", dir, ids["big.hash"])
    local r = fsck(dir)
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find("node " .. ids["big.hash"] ..
                             " does not decode: bad kind byte", 1, true), r.out)
  end)
end)

describe("vedhost fsck on bad data dirs", function()
  it("gives one clear line for a missing dir", function()
    local r = fsck("/tmp/vedhost_spec_does_not_exist")
    assert.are.equal(1, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.log:match("^vedhost: fsck: no data dir [^\n]+\n$"), r.log)
  end)

  it("gives one clear line for a dir without a store", function()
    local dir = proc.tmpdir()
    local r = fsck(dir)
    proc.rmdir(dir)
    assert.are.equal(1, r.code)
    assert.truthy(r.log:match("^vedhost: fsck: [^\n]*no vedhost store " ..
                              "here[^\n]*\n$"), r.log)
  end)

  it("rejects bad usage with exit 2", function()
    local r = proc.run({ "fsck", "--nope" }, { cwd = "/tmp" })
    assert.are.equal(2, r.code)
    assert.truthy(r.log:find("unknown option '--nope'", 1, true))
  end)
end)

-- The live-host part needs a host that persists (host/runtime/durable.c).
local function host_persists()
  local dir = proc.tmpdir()
  proc.write(dir .. "/p.lua", [[
    local ved = require "ved"
    ved.domain "p" { state = { n = 0 },
      start = function(s) s.n = 1; ved.exit(0) end }
  ]])
  local r = proc.run({ "run", "--no-watch", "--data", dir .. "/data",
                       dir .. "/p.lua" }, { cwd = dir })
  local f = io.open(dir .. "/data/db/CURRENT")
  if f then f:close() end
  local ok = r.code == 0 and f ~= nil and fsck(dir .. "/data").code == 0
  proc.rmdir(dir)
  return ok
end

describe("vedhost fsck beside a running host", function()
  it("checks a live store without disturbing the host", function()
    if not host_persists() then
      pending("this build's host does not persist its state yet")
      return
    end
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", [[
      local ved = require "ved"
      ved.domain "w" {
        state = { n = 0, items = {} },
        start = function(s, ctx) ctx:every(2, "tick") end,
        on = { tick = function(s, _, ctx)
          s.n = s.n + 1
          s.items[s.n % 500 + 1] = { at = s.n, pad = string.rep("x", 40) }
          if s.n % 50 == 0 then ctx:log("tick " .. s.n) end
        end },
      }
    ]])
    local p = proc.start({ "run", "--no-watch", "--data", dir .. "/data",
                           dir .. "/w.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "tick 100", 20), proc.logtext(p))
    for _ = 1, 5 do
      local r = fsck(dir .. "/data")
      assert.are.equal(0, r.code, r.out .. r.log)
      assert.truthy(r.out:find("fsck: ok", 1, true))
    end
    -- the host is still running and still ticking
    local before = #proc.lines_with(proc.logtext(p), "tick ")
    assert.is_true(proc.wait_log(p, "tick " .. (before + 2) * 50, 20))
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p, 20))
    local r = fsck(dir .. "/data")
    assert.are.equal(0, r.code, r.out)
    proc.cleanup(p)
    proc.rmdir(dir)
  end)
end)
