-- spec/support/overwrite.lua - the overwrite workload that history_spec and
-- persist_disk_spec run, and what they measure it with. Domain "w" holds
-- `bulk` other values and overwrites state.k VH_N times from its start
-- (the handlers, `on`, decide how many writes a slice makes), then logs
-- "done" and exits.
local assert = require "luassert" -- busted's assert
local proc = require "support.proc"

local M = {}

-- The script: start fills bulk, sets state.target and sends `first`;
-- `on` is the source of the handlers table's fields.
function M.script(bulk, first, on)
  return ([[
local ved = require "ved"
local N = tonumber(os.getenv("VH_N"))
ved.domain "w" {
  state = { k = 0, done = 0, bulk = {} },
  start = function(state, ctx)
    if #state.bulk == 0 then
      for i = 1, %d do state.bulk[i] = "value number " .. i end
    end
    state.target = state.done + N
    ctx:send("w", %q)
  end,
  on = {
%s  },
}
]]):format(bulk, first, on)
end

-- `vedhost run` of dir/w.lua for n writes (--retain retain if given) until
-- it exits; asserts it ended well.
function M.run(dir, n, retain, timeout)
  local args = { "run", "--data", "data", "--no-watch", "--durability",
                 "nosync" }
  if retain then
    args[#args + 1] = "--retain"
    args[#args + 1] = retain
  end
  args[#args + 1] = "w.lua"
  local r = proc.run(args, { cwd = dir, env = { VH_N = tostring(n) },
                              timeout = timeout or 300 })
  assert.are.equal(0, r.code, r.log)
  assert.truthy(r.log:find("] done", 1, true), r.log)
  return r
end

-- Kilobytes under path (du -sk).
function M.du(path)
  local p = io.popen("du -sk " .. proc.quote(path))
  local n = tonumber(p:read("a"):match("^(%d+)"))
  p:close()
  return n
end

-- fsck of dir's data: asserts it is clean, returns its report.
function M.fsck(dir)
  local r = proc.run({ "fsck", "--data", "data" }, { cwd = dir, timeout = 120 })
  assert.are.equal(0, r.code, r.out .. r.log)
  assert.truthy(r.out:find("fsck: ok", 1, true), r.out .. r.log)
  return r.out
end

return M
