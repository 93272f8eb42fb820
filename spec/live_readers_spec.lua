-- live_readers_spec.lua - the read-only tools beside a host that writes
-- hard (persist/store/store.c, SECONDARY BESIDE A HOST; host/admin/offline.c):
-- inspect, inspect --at, log, diff, changes, export and fsck open the store
-- as a RocksDB secondary while the host flushes and compacts under them.
-- Each must answer as it would offline: never "the store is damaged", a
-- missing log or table file, or a node missing from the store. (Before
-- the fix about one open in five failed so, and a host started on a fresh
-- dir had dropped RocksDB's lock, so fsck took it for a stopped store.)
-- A fixed number of rounds; nothing measures time.
local proc = require "support.proc"

-- 200 keys rewritten per slice, each slice sending the next: the store
-- flushes every 1 MB written and compacts all the time.
local WRITER = [[
local ved = require "ved"
ved.domain "w" {
  state = { n = 0, bulk = {} },
  start = function(state, ctx) ctx:send("w", "go") end,
  on = {
    go = function(state, p, ctx)
      local n = state.n
      for i = 1, 200 do
        state.bulk[(n * 200 + i) % 20000 + 1] = ("x"):rep(40) .. n
      end
      state.n = n + 1
      ctx:send("w", "go")
    end,
  },
}
]]

local ROUNDS = os.getenv("VEDHOST_SANITIZE") and 4 or 8

describe("read-only tools beside a host writing hard", function()
  teardown(proc.reap)

  it("read a whole view every time, never a damaged store", function()
    local p = proc.start_host(WRITER, {
      name = "w.lua",
      args = { "--data", "data", "--no-watch", "--durability", "nosync",
               "--retain", "300" } })
    local dir = p.wdir
    local function tool(args, check)
      local r = proc.run(args, { cwd = dir, timeout = 120 })
      local what = table.concat(args, " ")
      assert.are.equal(0, r.code, what .. ": " .. r.log .. r.out)
      assert.is_nil(r.log:find("damaged", 1, true), what .. ": " .. r.log)
      if check then check(r.out, what) end
    end
    local function number(out, what)
      assert.truthy(out:match("^%d+\n$"), what .. ": " .. out)
    end
    -- the host must have written a while (flushes, compactions) first
    local last = 0
    for _ = 1, 100 do
      local r = proc.run({ "inspect", "--data", "data", "w.n" },
                         { cwd = dir })
      last = tonumber(r.out:match("^(%d+)")) or 0
      if last >= 1000 then break end
      proc.sleep(0.2)
    end
    assert.is_true(last >= 1000, "the writer made " .. last .. " slices")
    for _ = 1, ROUNDS do
      tool({ "inspect", "--data", "data", "w.n" }, number)
      tool({ "inspect", "--data", "data", "w.bulk.7" }, function(out, what)
        assert.truthy(out:match('^"x+%d+"\n$'), what .. ": " .. out)
      end)
      tool({ "inspect", "--data", "data", "--at", "-3", "w.n" }, number)
      tool({ "log", "--data", "data", "-n", "3" }, function(out, what)
        local _, rows = out:gsub("\n%s*%d+%s+%d%d%d%d%-", "")
        assert.are.equal(3, rows, what .. ": " .. out)
      end)
      tool({ "diff", "--data", "data", "-2", "-1" }, function(out, what)
        assert.truthy(out:find("~ w.n: ", 1, true), what .. ": " .. out)
      end)
      tool({ "changes", "--data", "data", "--from", "-3" })
      tool({ "export", "--data", "data", "snap.vhx" })
      tool({ "fsck", "--data", "data" }, function(out, what)
        assert.truthy(out:find("fsck: ok", 1, true), what .. ": " .. out)
      end)
    end
    local code, log = proc.stop_host(p, 60)
    assert.are.equal(0, code, log)
  end)
end)
