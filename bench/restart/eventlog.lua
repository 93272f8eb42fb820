-- bench/restart/eventlog.lua: the plain event log restart_bench.sh compares
-- vedhost with: an append-only list of events, one a line ("k123 4567":
-- key, value), applied in order to a plain Lua table at start; then one
-- request is served (the value of the last key written). That is what an
-- event-sourced service without snapshots does at every restart.
--   lua5.4 eventlog.lua write FILE N K   writes the log (buffered, no fsync)
--   lua5.4 eventlog.lua replay FILE K    replays it, prints "RB_COUNT n v"
local mode, file, a, b = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])

if mode == "write" then
  local N, K = a, b
  local f = assert(io.open(file, "w"))
  f:setvbuf("full", 1 << 20)
  for j = 0, N - 1 do f:write("k", j % K, " ", j, "\n") end
  f:close()
elseif mode == "replay" then
  local K = a
  local k, n = {}, 0
  for line in io.lines(file) do
    local key, value = line:match("^(%S+) (%d+)$")
    k[key] = math.tointeger(value)
    n = n + 1
  end
  local v = n > 0 and k["k" .. ((n - 1) % K)] or nil
  print(string.format("RB_COUNT %d %s", n, tostring(v)))
else
  error("usage: eventlog.lua write FILE N K | replay FILE K")
end
