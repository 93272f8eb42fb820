-- bench/peers/tarantool/common.lua: box.cfg shared by writer, restart and
-- snapshot scripts, so that every Tarantool process of one run sees the same
-- configuration. Loaded with dofile() (tarantool's package.path does not
-- include this directory). Returns cfg(work_dir, wal_mode, extra) and
-- rss_kb().
local M = {}

function M.cfg(work_dir, wal_mode, extra)
  local c = {
    work_dir = work_dir,
    wal_mode = wal_mode,
    memtx_memory = 1024 * 1024 * 1024,
    checkpoint_interval = 0, -- no automatic snapshot during a run
    log = work_dir .. "/tarantool.log",
    log_level = 4,
    background = false,
  }
  for k, v in pairs(extra or {}) do c[k] = v end
  box.cfg(c)
end

-- Resident set size of this process in KiB, from /proc/self/status.
function M.rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

function M.mem_bytes()
  local m = box.info.memory()
  return (m.data or 0) + (m.index or 0)
end

return M
