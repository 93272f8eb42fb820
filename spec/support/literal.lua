-- literal.lua - Lua literals in the specs: `ser` prints a plain value (or
-- a state proxy) as one line with nothing elided, `parse` reads a printed
-- literal back (the REPL's / inspect's format), `deep_eq` compares two
-- values (integer vs float counts). SER_SRC is ser's source, so a spec can
-- define the same `ser` inside a host's REPL.
local M = {}

M.SER_SRC = [=[
local function ser(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.17g", v)
  end
  if t ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) < type(b)
  end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = "[" .. ser(k) .. "]=" .. ser(v[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end
return ser
]=]
M.ser = load(M.SER_SRC)()

function M.deep_eq(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then
    return a == b and math.type(a) == math.type(b)
  end
  for k, v in pairs(a) do if not M.deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

function M.parse(text)
  return assert(load("return " .. text, "=printed", "t", {}), text)()
end

return M
