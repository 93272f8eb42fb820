-- state_bench.lua: the cost of state proxies against plain Lua tables.
--
--   LUA_CPATH="build/lib/?.so;;" lua5.4 bench/state_bench.lua [scale]
--
-- Every line runs the same loop over a plain table and over a state proxy
-- in the same process and prints both times and their ratio. Proxy work
-- runs with the guard set to the state (as inside a handler) and, for
-- writes, inside one open transaction. Memory compares 1M string keys ->
-- integers: collectgarbage("count") for the plain table against
-- vedcore.stats().bytes (trie memory) + the Lua heap growth for the state.
-- Targets (DESIGN.md): read <= 5x, write <= 10x, # <= 3x, memory <= 2x.
local core = require "vedcore"

local SCALE = tonumber(arg and arg[1]) or 1
local N = math.floor(2000000 * SCALE)
local clock = os.clock

-- Best of REPS runs (the machine may be shared: the minimum is the least
-- disturbed). fn must leave its argument as it found it, or not care.
local REPS = 3
local function time(fn, ...)
  local best = math.huge
  for _ = 1, REPS do
    collectgarbage()
    collectgarbage()
    local t0 = clock()
    fn(...)
    local dt = clock() - t0
    if dt < best then best = dt end
  end
  return best
end

local results = {}
local function row(name, plain, proxy, target)
  local ratio = proxy / plain
  results[#results + 1] = { name, plain, proxy, ratio, target }
  print(("%-26s plain %7.3f s  proxy %7.3f s  ratio %5.2fx%s"):format(
    name, plain, proxy, ratio,
    target and ("  (target <= %gx%s)"):format(target,
      ratio <= target and "" or ", MISSED") or ""))
end

-- ---------------------------------------------------------------- setup
-- The state and the loops, shared with state_bench_row.lua.
local shared = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".")
  .. "/state_bench_rows.lua")
local _, plain = shared.state()
local R = shared.rows(N)

local st = core.new_state(plain, "state")
local s = st.state
core._guard(st)
st:begin()

-- ---------------------------------------------------------------- floor
-- A userdata whose C __index / __len do nothing: what any C proxy costs.
local bare = core._bare()
row("floor: bare C __index", time(R.count, plain), time(R.count, bare))
row("floor: bare C __len", time(function(t)
  local x
  for _ = 1, N do x = #t end
  return x
end, plain.list), time(function(t)
  local x
  for _ = 1, N do x = #t end
  return x
end, bare))

-- ---------------------------------------------------------------- reads
row("read t.count", time(R.count, plain), time(R.count, s), 5)
row("read t[key] (1024 keys)", time(R.key, plain), time(R.key, s), 5)
row("read t.list[i]", time(R.list, plain), time(R.list, s), 5)
local users = shared.rows(N // 4).users
row("read t.users[i].n", time(users, plain), time(users, s), 5)

-- ---------------------------------------------------------------- writes
row("write t.count = i", time(R.wcount, plain), time(R.wcount, s), 10)
row("write t[key] = i", time(R.wkey, plain), time(R.wkey, s), 10)
row("write t.list[i] = i", time(R.wlist, plain), time(R.wlist, s), 10)
row("t.count = t.count + 1", time(R.inc, plain), time(R.inc, s), 10)

-- ---------------------------------------------------------------- length
row("#t.list", time(R.len, plain), time(R.len, s), 3)

-- ---------------------------------------------------------------- pairs
local PN = math.max(1, N // 1000)
row("pairs over 1024+3 keys", time(function(t)
  local n = 0
  for _ = 1, PN do for _ in pairs(t) do n = n + 1 end end
  return n
end, plain), time(function(t)
  local n = 0
  for _ = 1, PN do for _ in pairs(t) do n = n + 1 end end
  return n
end, s))

row("ipairs over 1000", time(function(t)
  local n = 0
  for _ = 1, PN do for _, v in ipairs(t.list) do n = n + v end end
  return n
end, plain), time(function(t)
  local n = 0
  for _ = 1, PN do for _, v in core.ipairs(t.list) do n = n + v end end
  return n
end, s))

-- ---------------------------------------------------------------- append
local AN = N // 2
local plain_app = {}
local stock_insert, core_insert = table.insert, core.table.insert
st:commit()
st:begin()
s.app = {}
s.app2 = {}
row("table.insert(t, i)", time(function(t)
  for i = 1, AN do stock_insert(t, i) end
end, plain_app), time(function(t)
  for i = 1, AN do core_insert(t, i) end
end, s.app))
row("t[#t + 1] = i", time(function(t)
  for i = 1, AN do t[#t + 1] = i end
end, {}), time(function(t)
  for i = 1, AN do t[#t + 1] = i end
end, s.app2))
row("table.remove(t)", time(function(t)
  for _ = 1, AN do table.remove(t) end
end, plain_app), time(function(t)
  local rm = core.table.remove
  for _ = 1, AN do rm(t) end
end, s.app))
st:commit()
core._guard(nil)

-- ---------------------------------------------------------------- memory
local MN = math.floor(1000000 * SCALE)
plain, st, s = nil, nil, nil
collectgarbage()
collectgarbage()
local lua0 = collectgarbage("count")
local big = {}
for i = 1, MN do big["k" .. i] = i end
collectgarbage()
local plain_kb = collectgarbage("count") - lua0
big = nil
collectgarbage()
collectgarbage()

lua0 = collectgarbage("count")
local vh0 = core.stats().bytes
local mst = core.new_state(nil, "mem")
mst:begin()
local m = mst.state
for i = 1, MN do m["k" .. i] = i end
mst:commit()
m = nil
collectgarbage()
collectgarbage()
local state_kb = (core.stats().bytes - vh0) / 1024 +
                 (collectgarbage("count") - lua0)
print(("%-26s plain %7.1f MB  state %7.1f MB  ratio %5.2fx  (target <= 2x%s)")
      :format("memory, 1M string keys", plain_kb / 1024, state_kb / 1024,
              state_kb / plain_kb, state_kb / plain_kb <= 2 and "" or
              ", MISSED"))
assert(mst.state["k" .. MN] == MN)
