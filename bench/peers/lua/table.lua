-- bench/peers/lua/table.lua N K
-- The in-memory floor: N updates over K keys into a plain Lua 5.4 table
-- (t["k" .. j % K] = j), no persistence. Prints one line
--   VB elapsed=<s> gc0=<KiB> gc1=<KiB> rss0=<KiB> rss1=<KiB> count=<keys>
-- elapsed: the update loop (monotonic); gc: collectgarbage("count") after a
-- full collection; rss: VmRSS of this process.
local system = require "system"
local n, k = tonumber(arg[1]), tonumber(arg[2])

local function rss_kb()
  local f = io.open("/proc/self/status", "r")
  local s = f and f:read("a") or ""
  if f then f:close() end
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

local t = {}
collectgarbage("collect")
local gc0, rss0 = collectgarbage("count"), rss_kb()
local t0 = system.monotime()
for j = 0, n - 1 do
  t["k" .. (j % k)] = j
end
local elapsed = system.monotime() - t0
collectgarbage("collect")
local count = 0
for _ in pairs(t) do count = count + 1 end
print(string.format("VB elapsed=%.6f gc0=%.1f gc1=%.1f rss0=%d rss1=%d " ..
                    "count=%d", elapsed, gc0, collectgarbage("count"), rss0,
                    rss_kb(), count))
