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
local shared = dofile(((arg[0] or ""):match("^(.*)/") or ".")
  .. "/state_bench_rows.lua")
local _, plain = shared.state()
local st = core.new_state(plain, "state")
local s = st.state
core._guard(st)
st:begin()
local held = { s.users, s.list, s.users[1] } -- children alive, as in the bench

local rows = shared.rows(N)
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
