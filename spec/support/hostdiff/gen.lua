-- gen.lua SEED NSTEPS > steps.lua: random programs of table operations, as
-- Lua source, one function(t, R) per step (spec/host_differential_spec.lua).
-- Each step walks to a random subtable and runs 1-3 operations: sets and
-- deletes of every key kind (2 and 2.0, -0.0, booleans, 2^53, big and
-- binary strings), nested tables, table.insert/remove/sort/move/concat/
-- unpack, #, pairs/ipairs/next (results recorded with R, order-free),
-- deleting and adding while iterating, copies of other subtrees, and steps
-- that raise (error, a function, a cycle, a NaN or nil key). Operations
-- whose result depends on a border of #t run only on proper sequences
-- (SEQ), since Lua leaves the border of a table with holes open.
-- ALIAS/FN/CYC/PAIRS differ between the plain side (plain.lua) and the
-- host (host.lua) so that both follow the state's rules (copy on store).
local seed, n = tonumber(arg[1]), tonumber(arg[2] or 60)
math.randomseed(seed)
local rnd = math.random
local function pick(t) return t[rnd(#t)] end
local KEYS = { '"a"', '"b"', '"c"', '"x y"', '""', '"\\0k"', '1', '2', '3', '2.0', '-0.0', '0',
  '-1', 'true', 'false', '2^53', 'math.mininteger', 'math.maxinteger', '1.5', '1e300', '"1"', '4', '5', '100' }
local VALS = { '1', '-7', '2.0', '-0.0', '0.0', '1/0', '-1/0', '0/0', 'math.maxinteger', 'math.mininteger',
  '"s"', '""', '"a\\0b"', 'string.rep("z", 300)', 'string.rep("q", 70000)', 'true', 'false', '3.25',
  '{}', '{1,2,3}', '{a={b={c=1}}, 5}', '{[2.0]=1, [true]="t"}', 'string.rep("w", 2000000)', '2^63', '"2"' }
local function path()
  local p = {}
  while rnd(3) == 1 and #p < 3 do p[#p+1] = pick({'"a"','"b"','1','2','true'}) end
  return p
end
local function nav(p)
  local s = "local s = t\n"
  for _, k in ipairs(p) do
    s = s .. ("s = s[%s]; if type(s) ~= 'table' then return 'nosub' end\n"):format(k)
  end
  return s
end
local OPS = {
  function() return ("s[%s] = %s"):format(pick(KEYS), pick(VALS)) end,
  function() return ("s[%s] = %s"):format(pick(KEYS), pick(VALS)) end,
  function() return ("s[%s] = nil"):format(pick(KEYS)) end,
  function() return ("table.insert(s, %s)"):format(pick(VALS)) end,
  function() return ("table.insert(s, %d, %s)"):format(rnd(0, 5), pick(VALS)) end,
  function() return "R(table.remove(s))" end,
  function() return ("R(table.remove(s, %d))"):format(rnd(0, 5)) end,
  function() return "R(#s)" end,
  function() return "local a = {} for i, v in ipairs(s) do a[#a+1] = i; a[#a+1] = v end R(a)" end,
  function() return "local a = {} for k, v in pairs(s) do a[#a+1] = {k, v} end R(a)" end,
  function() return "R(next(s) == nil)" end,
  function() return "R(type(s))" end,
  function() return ("R(table.concat(s, %q))"):format(pick({",", "", "--"})) end,
  function() return ("R(table.concat(s, ',', %d, %d))"):format(rnd(1,3), rnd(0,4)) end,
  function() return "R(table.unpack(s))" end,
  function() return ("R(table.unpack(s, %d, %d))"):format(rnd(-1,3), rnd(0,5)) end,
  function() return ("table.move(s, %d, %d, %d)"):format(rnd(1,3), rnd(0,4), rnd(1,6)) end,
  function() return ("s.m = s.m or {}; table.move(s, %d, %d, %d, s.m)"):format(rnd(1,3), rnd(0,4), rnd(1,6)) end,
  function() return ("R(table.move({9,8,7}, 1, 3, %d, s) == s)"):format(rnd(1,4)) end,
  function() return "table.sort(s)" end,
  function() return "table.sort(s, function(a, b) return a > b end)" end,
  function() return "for k, v in pairs(s) do if type(k) ~= 'number' then s[k] = nil end end" end,
  function() return "for k, v in pairs(s) do s[k] = nil end" end,
  function() return "for k, v in pairs(s) do if type(v) == 'number' then s[k] = v + 1 end end" end,
  function() return "local a = {} local k = next(s); while k ~= nil do a[#a+1] = k; k = next(s, k) end R(a)" end,
  function() return ("s[%s] = ALIAS(t.b)"):format(pick(KEYS)) end,
  function() return ("s[%s] = ALIAS(s)"):format(pick(KEYS)) end,
  function() return "s.cyc = CYC()" end,
  function() return "error('boom')" end,
  function() return ("s[%s] = %s; error('after write')"):format(pick(KEYS), pick(VALS)) end,
  function() return ("R(s[%s])"):format(pick(KEYS)) end,
  function() return ("R(rawequal(s[%s], nil))"):format(pick(KEYS)) end,
  function() return ("s[%s] = FN()"):format(pick(KEYS)) end,
  function() return "s[0/0] = 1" end,
  function() return "s[nil] = 1" end,
  function() return ("for i = 1, %d do s[i] = i * 1.5 end"):format(rnd(1, 50)) end,
  function() return ("for i = 1, %d do table.insert(s, 1, i) end"):format(rnd(1, 20)) end,
  function() return "R(select('#', table.unpack(s)))" end,
  function() return ("for i = 1, %d do s[i] = (i %% 7 == 0) and ('v' .. i) or i end"):format(rnd(100, 3000)) end,
  function() return ("for i = 1, %d do s['k' .. i] = i end"):format(rnd(100, 3000)) end,
  function() return ("for i = 1, %d do s[i * 1000003] = -i end"):format(rnd(10, 500)) end,
  function() return ("for i = 1, %d do s[i + 0.5] = {i} end"):format(rnd(10, 300)) end,
  function() return ("for i = 1, %d do table.remove(s, 1) end"):format(rnd(1, 50)) end,
  function() return ("for i = 1, %d do table.insert(s, %d, i) end"):format(rnd(1, 50), rnd(1,3)) end,
  function() return "local n = 0 for k in pairs(s) do n = n + 1; if (math.type(k) == 'integer' and k % 3 == 0) or (type(k) == 'string' and #k % 3 == 0) then s[k] = nil end end R(n)" end,
  function() return "local n = 0 for k in PAIRS(s) do n = n + 1; s['new' .. n] = n end" end,
  function() return "s[" .. pick(KEYS) .. "] = ALIAS(t)" end,
  function() return "local ok = pcall(function() s.x = 1; error('inner') end) R(ok, s.x)" end,
  function() return "local c = coroutine.wrap(function() s.co = 1; coroutine.yield(2); s.co = 3 end) R(c()) c()" end,
  function() return "R(s[1] == s[1.0], s['1'] == s[1])" end,
  function() return "s[-0.0] = 'negzero'; R(s[0])" end,
  function() return "local m = {} for k, v in pairs(s) do m[#m+1] = type(v) end R(#m)" end,
}
io.write("return {\n")
for i = 1, n do
  local p = path()
  local body = {}
  for _ = 1, rnd(1, 3) do
    local op = pick(OPS)()
    if op:find("table%.insert%(s") or op:find("table%.remove%(s") or op:find("#s") or op:find("concat%(s") or op:find("unpack%(s%)") or op:find("sort%(s") then
      op = "if not SEQ(s) then return 'noseq' end " .. op
    end
    body[#body+1] = op
  end
  io.write("function(t, R)\n", nav(p), table.concat(body, "\n"), "\nend,\n")
end
io.write("}\n")
