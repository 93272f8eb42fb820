-- bench/peers/tarantool/restart.lua WORK_DIR WAL_MODE KEY
-- Restart: box.cfg recovers the space (snapshot, then xlog replay), then the
-- first request is served: the space's length and the value of KEY.
-- Prints "VB count=<len> value=<v>" (flushed) and exits; the harness times
-- exec to that line.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")
common.cfg(arg[1], arg[2])
local s = box.space.x
local t = s and s:get(arg[3])
print(string.format("VB count=%d value=%s", s and s:len() or 0,
                    t and tostring(t[2]) or "nil"))
io.stdout:flush()
os.exit(0)
