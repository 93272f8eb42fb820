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
-- A path is name.key.key as before, where a key may also be written the way
-- diff and changes print keys that are not plain names or integers:
-- [literal], a quoted string, a number or true/false (kv["a.b"], t[1.5],
-- t[true], t["3"]). A plain element is tried as an integer key first, then
-- as a string; a bracketed one is exactly its literal.
local function bad(why)
  error('bad path "' .. path .. '": ' .. why ..
        ' (use name.key.key, or key["a.b"], key[1.5], key[true])', 0)
end
local function literal(i) -- the literal after '[' at i: value, index past ']'
  local q = path:sub(i, i)
  local lit, j
  if q == '"' or q == "'" then
    j = i + 1
    while j <= #path and path:sub(j, j) ~= q do
      j = j + (path:sub(j, j) == '\\' and 2 or 1)
    end
    if j > #path then bad('unclosed string') end
    local f = load('return ' .. path:sub(i, j), '=path', 't', {})
    local ok, v = pcall(f or error)
    if not f or not ok or type(v) ~= 'string' then bad('bad string') end
    lit, j = v, j + 1
  else
    local tok = path:match('^[^%]]*', i)
    j = i + #tok
    if tok == 'true' then
      lit = true
    elseif tok == 'false' then
      lit = false
    elseif tok == '1/0' or tok == '-1/0' then -- how pretty prints infinities
      lit = tok == '1/0' and math.huge or -math.huge
    elseif tok == 'math.mininteger' then
      lit = math.mininteger
    else
      lit = tonumber(tok)
      if lit == nil or lit ~= lit then
        bad('[' .. tok .. '] is not a string, number or boolean literal')
      end
    end
  end
  if path:sub(j, j) ~= ']' then bad('missing ]') end
  return lit, j + 1
end
local function at_path()
  local name = path:match('^[^.%[]*')
  if name == '' then bad('empty element') end
  local elems, i = {}, #name + 1
  while i <= #path do
    local c = path:sub(i, i)
    if c == '.' then
      local e = path:match('^[^.%[]*', i + 1)
      if e == '' then bad('empty element') end
      elems[#elems + 1] = { plain = e, text = '.' .. e }
      i = i + 1 + #e
    elseif c == '[' then
      local k, j = literal(i + 1)
      elems[#elems + 1] = { key = k, text = path:sub(i, j - 1) }
      i = j
    else
      bad('unexpected ' .. c)
    end
  end
  local v = domains[name]
  if v == nil then
    error('no domain "' .. name .. '" in ' .. dir .. ' (domains: ' ..
          (#names > 0 and table.concat(names, ', ') or 'none') .. ')', 0)
  end
  local where = name
  for _, el in ipairs(elems) do
    if type(v) ~= 'table' then
      error(where .. ' is a ' .. type(v) .. ', not a table: no ' .. path, 0)
    end
    local nv
    if el.plain then
      local e = el.plain
      local n = math.tointeger(tonumber(e))
      if n then nv = v[n]; check() end
      if nv == nil then nv = v[e]; check() end
    else
      nv = v[el.key]
      check()
    end
    if nv == nil then
      error('no ' .. path .. ' (' .. where .. ' has no key ' ..
            el.text:gsub('^%.', '') .. ')', 0)
    end
    v, where = nv, where .. el.text
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
