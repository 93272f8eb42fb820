--[[
inspect: the Lua half of `vedhost inspect` (host/admin/inspect.c): resolve the
path and print with the pretty printer.

  chunk(pretty, domains, names, path, fault, dir) --> string

  pretty    the module of scripts/pretty.lua
  domains   name -> read-only root proxy of each persisted domain (and
            "__ved", the system state)
  names     the domain names to list without a path, sorted
  path      "name.key.key" or nil (then every domain as `name = value`)
  fault     function: nil, or the message of the trie's sticky fault
            (cleared); checked after every read, so that an unreadable node
            never prints as nil
  dir       the data dir, for messages

Errors are plain strings (level 0) that the host prints after
"vedhost: inspect: ".
]]
local pretty, domains, names, path, fault, dir = ...
local function unreadable(m)
  error('cannot read the state in ' .. dir .. ': ' .. m ..
        '; run `vedhost fsck --data ' .. dir .. '`', 0)
end
local function check()
  local m = fault()
  if m then unreadable(m) end
end
local function whole()
  local out = {}
  for _, n in ipairs(names) do
    local s = pretty.format(domains[n])
    check()
    out[#out + 1] = n .. ' = ' .. s
  end
  return table.concat(out, '\n')
end
local function at_path()
  local elems = {}
  for e in (path .. '.'):gmatch('(.-)%.') do
    if e == '' then
      error('bad path "' .. path .. '": empty element (use name.key.key)', 0)
    end
    elems[#elems + 1] = e
  end
  local v = domains[elems[1]]
  if v == nil then
    error('no domain "' .. elems[1] .. '" in ' .. dir .. ' (domains: ' ..
          (#names > 0 and table.concat(names, ', ') or 'none') .. ')', 0)
  end
  local where = elems[1]
  for i = 2, #elems do
    local e = elems[i]
    if type(v) ~= 'table' then
      error(where .. ' is a ' .. type(v) .. ', not a table: no ' .. path, 0)
    end
    local nv
    local n = math.tointeger(tonumber(e))
    if n then nv = v[n]; check() end
    if nv == nil then nv = v[e]; check() end
    if nv == nil then
      error('no ' .. path .. ' (' .. where .. ' has no key ' .. e .. ')', 0)
    end
    v, where = nv, where .. '.' .. e
  end
  local s = pretty.format(v)
  check()
  return s
end
local ok, res = pcall(path and at_path or whole)
if ok then return res end
local m = tostring(res):match('state unreadable: (.*)$')
if m then unreadable(m) end
error(res, 0)
