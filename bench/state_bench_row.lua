-- state_bench_row.lua: one loop of state_bench.lua, for instruction counts.
--
--   LUA_CPATH="build/lib/?.so;;" valgrind --tool=callgrind \
--     lua5.4 bench/state_bench_row.lua ROW MODE N
--
-- ROW: count key list users wcount wkey wlist inc len (state_bench.lua's
-- read, write and # rows); MODE: plain, proxy or bare (the do-nothing C
-- userdata; rows count and len only). Runs the loop N times over the same
-- state as state_bench.lua, with the root's children `users` and `list`
-- alive as there. Instructions per iteration = (Ir at N - Ir at 0) / N.
local core = require "vedcore"

local row, mode, N = arg[1], arg[2], tonumber(arg[3])
assert(row and mode and N, "usage: state_bench_row.lua ROW MODE N")
local KEYS = {}
for i = 1, 1024 do KEYS[i] = "key" .. i end
local plain = { count = 1, list = {}, users = {} }
for i = 1, 1024 do plain[KEYS[i]] = i end
for i = 1, 1000 do plain.list[i] = i end
for i = 1, 100 do plain.users[i] = { name = "u" .. i, n = i } end
local st = core.new_state(plain, "state")
local s = st.state
core._guard(st)
st:begin()
local held = { s.users, s.list, s.users[1] } -- children alive, as in the bench

local rows = {
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
local fn = assert(rows[row], "unknown row " .. tostring(row))
local t = s
if mode == "plain" then
  t = plain
elseif mode == "bare" then
  local b = core._bare()
  t = row == "len" and { list = b } or b
end
fn(t)
st:commit()
core._guard(nil)
assert(held[1])
