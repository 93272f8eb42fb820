-- bench/peers/eventlog/replay.lua FILE KEY
-- The event-sourcing baseline's restart: read the whole log and apply every
-- event to a table, then serve the first request (count keys, read KEY).
-- Prints "VB count=<keys> value=<v>" (flushed at once); the harness times
-- exec to that line.
local t, count = {}, 0
local f = io.open(arg[1], "r")
if f then
  for line in f:lines("l") do
    local kk, vv = line:match("^(%S+) (%d+)$")
    if t[kk] == nil then count = count + 1 end
    t[kk] = math.tointeger(tonumber(vv))
  end
  f:close()
end
print(string.format("VB count=%d value=%s", count, tostring(t[arg[2]])))
io.stdout:flush()
