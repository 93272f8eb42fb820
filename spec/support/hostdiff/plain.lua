-- plain.lua DIR: runs DIR/steps.lua on a plain Lua table, each step on a
-- copy that is kept only if the step does not raise (the state's handler
-- atomicity); writes the trace of R results, the final dump and the dump
-- after every step (prefix_plain.txt, line i+1 after step i).
local DIR = arg[1]
local C = dofile(DIR .. "/common.lua")
local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deepcopy(x) end
  return c
end
ALIAS = deepcopy
PAIRS = function(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  local i = 0
  return function()
    i = i + 1
    local k = ks[i]
    if k ~= nil then return k, t[k] end
  end
end
FN = function() error("cannot store a function") end
CYC = function() error("cannot store a cyclic table") end
local STEPS = dofile(DIR .. "/steps.lua")
local trace = {}
local R = C.rec(trace)
local t = {}
local pf = io.open(DIR .. "/prefix_plain.txt", "w")
pf:write(C.dump(t), "\n")
for i, step in ipairs(STEPS) do
  trace[#trace + 1] = "step " .. i
  local w = deepcopy(t)
  local ok, e = pcall(step, w, R)
  if ok then t = deepcopy(w) else trace[#trace + 1] = "error" end
  pf:write(C.dump(t), "\n")
end
pf:close()
local f = io.open(DIR .. "/trace_plain.txt", "w")
f:write(table.concat(trace, "\n"), "\n")
f:close()
f = io.open(DIR .. "/final_plain.txt", "w")
f:write(C.dump(t), "\n")
f:close()
