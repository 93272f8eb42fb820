-- virtual_day_spec.lua - ved.testing's speed: a domain with a 1 s `every`
-- advanced through one virtual day (86,400 timer slices, each a real
-- handler call, a committed version and a store batch). Prints slices/s,
-- the wall time, and the process's CPU time (the loop thread and the store
-- writer thread run side by side). No pass/fail on time (the machine is
-- shared): it checks the count only.
--
--   build/bin/vedhost test bench/virtual_day_spec.lua
--   RETAIN=0 build/bin/vedhost test bench/virtual_day_spec.lua   # no history
local vt = require "ved.testing"

local function now()
  local ok, system = pcall(require, "system")
  if ok and system.gettime then return system.gettime() end
  return os.time()
end

describe("virtual day", function()
  it("advances a 1 s every through 86,400 slices", function()
    local p = os.tmpname()
    local f = assert(io.open(p, "w"))
    f:write [[
local ved = require "ved"
ved.domain "ticker" {
  state = { n = 0 },
  start = function(state, ctx) ctx:every(1000, "tick") end,
  on = { tick = function(state, _, ctx) state.n = state.n + 1; state.at = ctx.now end },
}
]]
    f:close()
    local h = vt.host { scripts = { p }, now = "2026-01-01T00:00:00Z",
                        retain = os.getenv("RETAIN") }
    os.remove(p)
    local w0, c0 = now(), os.clock()
    local instants = h:advance "1d"
    local wall, cpu = now() - w0, os.clock() - c0
    assert.equal(86400, instants)
    assert.equal(86400, h.state.ticker.n)
    print(string.format(
      "\nvirtual day: %d slices in %.2f s wall (%.0f slices/s), %.2f s CPU "
      .. "(loop + store writer threads), retain %s", instants, wall,
      instants / wall, cpu, os.getenv("RETAIN") or "default (15m)"))
    h:close()
  end)
end)
