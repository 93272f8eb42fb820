-- state_bench_rows.lua: the state and the timed loops state_bench.lua and
-- state_bench_row.lua share (loaded with dofile from their folder).
--
-- M.state() -> KEYS, plain: 1024 keys "key1".."key1024" -> i, count = 1,
-- list = 1..1000, users = 100 { name, n } records.
-- M.rows(N) -> the loops, each fn(t) running N times over the root t:
-- count key list users (reads), wcount wkey wlist inc (writes), len (#).
local M = {}

local KEYS = {}
for i = 1, 1024 do KEYS[i] = "key" .. i end

function M.state()
  local plain = { count = 1, list = {}, users = {} }
  for i = 1, 1024 do plain[KEYS[i]] = i end
  for i = 1, 1000 do plain.list[i] = i end
  for i = 1, 100 do plain.users[i] = { name = "u" .. i, n = i } end
  return KEYS, plain
end

function M.rows(N)
  return {
    count = function(t) local x; for _ = 1, N do x = t.count end return x end,
    key = function(t)
      local x
      for i = 1, N do x = t[KEYS[(i & 1023) + 1]] end
      return x
    end,
    list = function(t)
      local x, l = nil, t.list
      for i = 1, N do x = l[(i % 1000) + 1] end
      return x
    end,
    users = function(t)
      local x
      for i = 1, N do x = t.users[(i % 100) + 1].n end
      return x
    end,
    wcount = function(t) for i = 1, N do t.count = i end end,
    wkey = function(t) for i = 1, N do t[KEYS[(i & 1023) + 1]] = i end end,
    wlist = function(t)
      local l = t.list
      for i = 1, N do l[(i % 1000) + 1] = i end
    end,
    inc = function(t) for _ = 1, N do t.count = t.count + 1 end end,
    len = function(t)
      local l, x = t.list, 0
      for _ = 1, N do x = #l end
      return x
    end,
  }
end

return M
