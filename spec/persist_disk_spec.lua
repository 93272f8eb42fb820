-- persist_disk_spec.lua - with --retain 0, disk use tracks live state, not
-- history (ARCHITECTURE.md invariant 5, host/runtime/durable.c): one key of
-- a state that also holds 10k
-- other values is overwritten a million times, a thousand writes per slice
-- (so a thousand slices each replace the path to the key, and the message
-- queue of the system state fills and drains as often). The data dir's
-- size after 1M writes stays within a generous bound of its size after
-- 100k, both measured after a clean stop, and fsck finds every stored node
-- reachable. Bounded waits only; nothing measures time.
local proc = require "support.proc"

local overwrite = require "support.overwrite"

local SCRIPT = overwrite.script(10000, "go", [[
    go = function(state, p, ctx)
      for i = 1, 1000 do ctx:send("w", "set") end
    end,
    set = function(state, p, ctx)
      state.k = state.k + 1
      state.done = state.done + 1
      if state.done % 1000 == 0 then
        if state.done >= state.target then
          ctx:log("done", state.k)
          ved.exit(0)
        else
          ctx:send("w", "go")
        end
      end
    end,
]])

describe("vedhost disk use", function()
  it("stays flat while one key is overwritten a million times", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", SCRIPT)
    -- --retain 0: no history kept, so disk tracks live state alone
    -- (retention's bound is spec/history_spec.lua's).
    local r = overwrite.run(dir, 100000, "0", 120)
    assert.truthy(r.log:find("] done 100000", 1, true), r.log)
    local after100k = overwrite.du(dir .. "/data/db")
    r = overwrite.run(dir, 900000, "0", 120)
    assert.truthy(r.log:find("] done 1000000", 1, true), r.log)
    local after1m = overwrite.du(dir .. "/data/db")
    -- 10x the history: at most 2x the bytes (plus 512 KB of RocksDB's own
    -- files: LOG, OPTIONS, MANIFEST)
    assert.is_true(after1m <= 2 * after100k + 512,
                   ("du %d KB after 100k writes, %d KB after 1M"):format(
                     after100k, after1m))
    overwrite.fsck(dir)
    proc.rmdir(dir)
  end)
end)
