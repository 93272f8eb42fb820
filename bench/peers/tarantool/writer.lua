-- bench/peers/tarantool/writer.lua WORK_DIR WAL_MODE N K BATCH
-- The workload inside Tarantool: N updates over K keys, key "k"..(j % K),
-- value j, as box.space.x:replace in transactions of BATCH replaces (one
-- WAL write, and with wal_mode=fsync one fsync, per transaction, as Redis
-- does per EVAL). Prints one line:
--   VB elapsed=<s> rss0=<KiB> rss1=<KiB> mem0=<B> mem1=<B>
-- elapsed covers the update loop only (clock.monotonic); the memory pairs
-- are taken on the empty space and after the last commit.
local clock = require "clock"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

local work_dir, wal_mode = arg[1], arg[2]
local n, k, batch = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
common.cfg(work_dir, wal_mode)
local s = box.schema.space.create("x", { if_not_exists = true })
s:create_index("pk", { type = "hash", parts = { 1, "string" },
                       if_not_exists = true })
collectgarbage("collect")
local rss0, mem0 = common.rss_kb(), common.mem_bytes()
local t0 = clock.monotonic()
for first = 0, n - 1, batch do
  local stop = math.min(first + batch, n)
  box.begin()
  for j = first, stop - 1 do
    s:replace({ "k" .. (j % k), j })
  end
  box.commit()
end
local elapsed = clock.monotonic() - t0
collectgarbage("collect")
print(string.format("VB elapsed=%.6f rss0=%d rss1=%d mem0=%d mem1=%d",
                    elapsed, rss0, common.rss_kb(), mem0, common.mem_bytes()))
io.stdout:flush()
os.exit(0)
