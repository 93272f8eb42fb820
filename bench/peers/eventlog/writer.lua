-- bench/peers/eventlog/writer.lua FILE N K BATCH
-- The event-sourcing baseline's write side: one text line per event,
-- "k<j % K> <j>\n", appended to FILE; the buffered lines are handed to the
-- kernel (file:flush, one write(2)) after every BATCH events, the same
-- grouping every other system gets. Plain Lua cannot fsync, so this is the
-- equivalent of "nosync": it survives kill -9, not power loss.
-- Prints "VB elapsed=<s>" (update loop plus the final close, monotonic).
local system = require "system"
local path = arg[1]
local n, k, batch = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local f = assert(io.open(path, "a"))
f:setvbuf("full", 1 << 16)
local t0 = system.monotime()
for first = 0, n - 1, batch do
  local stop = math.min(first + batch, n)
  for j = first, stop - 1 do
    f:write("k", j % k, " ", j, "\n")
  end
  f:flush()
end
f:close()
print(string.format("VB elapsed=%.6f", system.monotime() - t0))
