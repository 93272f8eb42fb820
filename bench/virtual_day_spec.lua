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

-- CPU seconds of each thread of this process, from /proc: { [tid] = {
-- name, s } } (utime + stime at 100 ticks/s).
local function threads()
  local out = {}
  local self = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
  local ls = io.popen("ls /proc/" .. self .. "/task 2>/dev/null")
  if not ls then return out end
  for tid in ls:lines() do
    local f = io.open("/proc/" .. self .. "/task/" .. tid .. "/stat")
    if f then
      local line = f:read("l")
      f:close()
      local name, rest = line:match("^%d+ %((.-)%) (.*)$")
      local fields = {}
      for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
      out[tid] = { name = tid == self and "loop" or name,
                   s = (tonumber(fields[12]) + tonumber(fields[13])) / 100 }
    end
  end
  ls:close()
  return out
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
    local t0 = threads()
    local w0, c0 = now(), os.clock()
    local instants = h:advance "1d"
    local wall, cpu = now() - w0, os.clock() - c0
    local per = {}
    for tid, t in pairs(threads()) do
      local d = t.s - (t0[tid] and t0[tid].s or 0)
      if d >= 0.05 then per[#per + 1] = string.format("%s %.2f s", t.name, d) end
    end
    table.sort(per)
    assert.equal(86400, instants)
    assert.equal(86400, h.state.ticker.n)
    print(string.format(
      "\nvirtual day: %d slices in %.2f s wall (%.0f slices/s), %.2f s CPU "
      .. "in all (%s), retain %s", instants, wall, instants / wall, cpu,
      table.concat(per, ", "), os.getenv("RETAIN") or "default (15m)"))
    h:close()
  end)
end)
