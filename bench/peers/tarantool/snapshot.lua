-- bench/peers/tarantool/snapshot.lua WORK_DIR WAL_MODE
-- Writes a snapshot (box.snapshot) of a work dir and lets the garbage
-- collector drop the older snapshot and xlogs (checkpoint_count = 1), as an
-- operator would before a planned restart. Waits (bounded, 60 s) until
-- only one .snap remains. Prints "VB snap=ok" or exits 1.
local fio = require "fio"
local fiber = require "fiber"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")
common.cfg(arg[1], arg[2], { checkpoint_count = 1 })
box.snapshot()
local deadline = fiber.clock() + 60
while #fio.glob(arg[1] .. "/*.snap") > 1 do
  if fiber.clock() > deadline then
    print("VB snap=timeout")
    os.exit(1)
  end
  fiber.sleep(0.01)
end
print("VB snap=ok")
io.stdout:flush()
os.exit(0)
