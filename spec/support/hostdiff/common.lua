-- common.lua: a canonical dump of a value (sorted keys, integer/float
-- subtypes, -0.0, NaN) that reads plain tables and state proxies alike, the
-- recorder R of step results, and SEQ (is t a proper sequence?). Used by
-- plain.lua and host.lua (spec/host_differential_spec.lua).
local M = {}
local function key_lt(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "boolean" then return (a and 1 or 0) < (b and 1 or 0) end
  if ta == "number" then
    if a == b then return math.type(a) < math.type(b) end
    return a < b
  end
  return a < b
end
local function scalar(v)
  local tv = type(v)
  if tv == "number" then
    if v ~= v then return "nan" end
    if math.type(v) == "integer" then return "i" .. tostring(v) end
    if v == 0 and 1/v < 0 then return "f-0" end
    return "f" .. string.format("%a", v)
  elseif tv == "string" then
    if #v > 200 then return ("str(%d:%s:%s)"):format(#v, v:sub(1, 20), v:sub(-20)) end
    return string.format("%q", v)
  elseif tv == "boolean" or tv == "nil" then return tostring(v)
  end
  return "<" .. tv .. ">"
end
local function dump(v, depth, seen)
  depth = depth or 0
  if type(v) ~= "table" then return scalar(v) end
  if depth > 30 then return "<deep>" end
  local ks = {}
  for k in pairs(v) do ks[#ks + 1] = k end
  table.sort(ks, key_lt)
  local out = {}
  for _, k in ipairs(ks) do
    out[#out + 1] = "[" .. scalar(k) .. "]=" .. dump(v[k], depth + 1)
  end
  return "{" .. table.concat(out, ",") .. "}"
end
M.dump = dump
function M.rec(list)
  return function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do
      local v = select(i, ...)
      if type(v) == "table" then
        -- an order-independent form for a list of pairs
        local items = {}
        for _, x in pairs(v) do items[#items + 1] = dump(x) end
        table.sort(items)
        parts[i] = "[" .. table.concat(items, ";") .. "]"
      else parts[i] = scalar(v) end
    end
    list[#list + 1] = n .. ":" .. table.concat(parts, " ")
  end
end
function M.seq(t)
  local n, max = 0, 0
  for k in pairs(t) do
    if math.type(k) == "integer" and k >= 1 then n = n + 1; if k > max then max = k end end
  end
  return n == max
end
_G.SEQ = M.seq
return M
