--[[
pretty: print Lua values as Lua literals, for the REPL and `vedhost inspect`.

  local pretty = require "pretty"
  pretty.format(v [, opts]) --> string
  pretty.results(...)       --> one line per argument ("nil" for nil),
                                select('#', ...) counts, joined by "\n"

What it prints
- nil, true, false; integers as integers (math.mininteger prints as
  `math.mininteger`, since `-9223372036854775808` would read back as a float);
  floats keep their subtype: the shortest of %.14g..%.17g that reads back to
  the same value, with ".0" added when that looks like an integer (1.0,
  -0.0), inf/-inf as 1/0 and -1/0, nan as 0/0.
- strings in double quotes: \\ \" \a \b \f \n \r \t \v, other control bytes
  and DEL as decimal \ddd (three digits when a digit follows, so that "\0" ..
  "1" prints "\0001"), bytes that are not part of valid UTF-8 as \ddd, C1
  controls (U+0080..U+009F) as \u{XX}; every other valid UTF-8 sequence is
  kept as it is.
- tables as constructors: the sequence part first (1..n, n the length of the
  run of non-nil values from 1), then the other keys sorted: numbers
  ascending, then strings in byte order, then false, true, then keys of any
  other type (ordered by tostring, which is stable only within a run).
  Identifier keys print as `name = v`, the others as `[k] = v`.
  A table that fits on one line (opts.width, default 72 columns, counted from
  where the value starts) prints as `{1, 2, x = 3}`; otherwise one entry per
  line, indented by 2 spaces. After opts.max_items entries (default 100) the
  rest is elided with a final `-- N more` line. Tables deeper than
  opts.max_depth (default 16) print as `{...}` (`{}` when empty). A plain
  table that contains itself on the path being printed prints `<cycle>`;
  a table shared twice (no cycle) prints twice.
- functions, threads and userdata that are not table-like: `<tostring(v)>`.

Proxies. Tables are walked only with the *global* `pairs`, looked up at call
time (never cached): keys and values both come from it, and `#` is only a
hint for the sequence part. So the state proxies of the host (whose
`pairs`/`next`/`type` it makes proxy-aware) print exactly like plain tables,
and an `__index` that answers every key cannot make the printer loop. A value
is table-like when the global `type` says "table", or when it is a userdata
whose metatable has `__pairs`.

Cost. A table with more than max_items entries is not sorted as a whole: a
bounded heap keeps the first entries in key order, so printing a
million-key state is two passes over its keys plus O(n log max_items).
--]]

local pretty = {}

local math_type, tostring, select = math.type, tostring, select
local string_format, string_byte, string_sub = string.format, string.byte,
  string.sub
local concat = table.concat

local DEFAULTS = { width = 72, max_items = 100, max_depth = 16 }

local RESERVED = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  RESERVED[w] = true
end

-- Numbers ------------------------------------------------------------------

local function format_number(x)
  if math_type(x) == "integer" then
    if x == math.mininteger then return "math.mininteger" end
    return string_format("%d", x)
  end
  if x ~= x then return "0/0" end
  if x == math.huge then return "1/0" end
  if x == -math.huge then return "-1/0" end
  local s
  for prec = 14, 17 do
    s = string_format("%." .. prec .. "g", x)
    if tonumber(s) == x then break end
  end
  if not s:find("[^%-%d]") then s = s .. ".0" end -- looks like an integer
  return s
end

-- Strings ------------------------------------------------------------------

local NAMED = {
  [7] = "\\a", [8] = "\\b", [9] = "\\t", [10] = "\\n", [11] = "\\v",
  [12] = "\\f", [13] = "\\r", [34] = '\\"', [92] = "\\\\",
}

-- Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), and
-- its code point; nil when the bytes there are not valid UTF-8 (overlong
-- forms, surrogates and code points past U+10FFFF are invalid).
local function utf8_seq(s, i)
  local c = string_byte(s, i)
  local n, cp, min
  if c >= 0xC2 and c <= 0xDF then
    n, cp, min = 1, c & 0x1F, 0x80
  elseif c >= 0xE0 and c <= 0xEF then
    n, cp, min = 2, c & 0x0F, 0x800
  elseif c >= 0xF0 and c <= 0xF4 then
    n, cp, min = 3, c & 0x07, 0x10000
  else
    return nil
  end
  for k = 1, n do
    local b = string_byte(s, i + k)
    if not b or b < 0x80 or b > 0xBF then return nil end
    cp = (cp << 6) | (b & 0x3F)
  end
  if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
    return nil
  end
  return n + 1, cp
end

local function format_string(s)
  -- Fast path: printable ASCII without quotes or backslashes.
  if not s:find('[%c"\\\128-\255]') then return '"' .. s .. '"' end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local c = string_byte(s, i)
    local piece, step = nil, 1
    if NAMED[c] then
      piece = NAMED[c]
    elseif c < 32 or c == 127 then
      local nxt = string_byte(s, i + 1)
      if nxt and nxt >= 48 and nxt <= 57 then
        piece = string_format("\\%03d", c)
      else
        piece = "\\" .. c
      end
    elseif c < 128 then
      -- printable ASCII: copy the whole run at once
      local j = s:find('[%c"\\\128-\255]', i) or len + 1
      piece, step = string_sub(s, i, j - 1), j - i
    else
      local seqlen, cp = utf8_seq(s, i)
      if not seqlen then
        local nxt = string_byte(s, i + 1)
        if nxt and nxt >= 48 and nxt <= 57 then
          piece = string_format("\\%03d", c)
        else
          piece = "\\" .. c
        end
      elseif cp <= 0x9F then
        piece, step = string_format("\\u{%X}", cp), seqlen
      else
        piece, step = string_sub(s, i, i + seqlen - 1), seqlen
      end
    end
    n = n + 1
    out[n] = piece
    i = i + step
  end
  return '"' .. concat(out) .. '"'
end

-- Key order ----------------------------------------------------------------

local RANK = { number = 1, string = 2, boolean = 3 }

-- Byte-order string comparison that does not depend on the C locale (Lua's
-- `<` on strings uses strcoll).
local function bytes_less(a, b)
  local la, lb = #a, #b
  local n = la < lb and la or lb
  local i = 1
  -- compare in chunks first: equal chunks are skipped without byte loops
  while i + 15 <= n and string_sub(a, i, i + 15) == string_sub(b, i, i + 15) do
    i = i + 16
  end
  while i <= n do
    local x, y = string_byte(a, i), string_byte(b, i)
    if x ~= y then return x < y end
    i = i + 1
  end
  return la < lb
end

-- Captured at load: the REPL environment may hide `os` from user code.
local setlocale = os and os.setlocale

local function make_key_less()
  local coll = setlocale and setlocale(nil, "collate") or "C"
  local str_less = (coll == "C" or coll == "POSIX")
    and function(a, b) return a < b end or bytes_less
  return function(a, b)
    local ta, tb = type(a), type(b)
    local ra, rb = RANK[ta] or 4, RANK[tb] or 4
    if ra ~= rb then return ra < rb end
    if ra == 1 then return a < b end
    if ra == 2 then return str_less(a, b) end
    if ra == 3 then return (not a) and b end
    return tostring(a) < tostring(b)
  end
end

-- A bounded max-heap keeping the `cap` smallest keys (by `less`) seen, with
-- their values. Used when a table has more entries than are shown.
local function heap_new(cap, less)
  return { cap = cap, n = 0, k = {}, v = {}, less = less }
end

local function heap_push(h, key, val)
  local hk, hv, less = h.k, h.v, h.less
  if h.n < h.cap then
    local i = h.n + 1
    h.n = i
    while i > 1 do -- sift up: the largest key sits at the root
      local p = i // 2
      if not less(hk[p], key) then break end
      hk[i], hv[i] = hk[p], hv[p]
      i = p
    end
    hk[i], hv[i] = key, val
    return
  end
  if h.cap == 0 or not less(key, hk[1]) then return end
  local n, i = h.n, 1
  while true do -- replace the root, sift down
    local c = 2 * i
    if c > n then break end
    if c < n and less(hk[c], hk[c + 1]) then c = c + 1 end
    if not less(key, hk[c]) then break end
    hk[i], hv[i] = hk[c], hv[c]
    i = c
  end
  hk[i], hv[i] = key, val
end

-- Tables -------------------------------------------------------------------

local function is_tablelike(v)
  local t = type(v) -- the global type: the host may make it proxy-aware
  if t == "table" then return true end
  if t == "userdata" then
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__pairs ~= nil
  end
  return false
end

-- The integer value of a numeric key (2 and 2.0 are one key), or nil.
local function int_key(k)
  if math_type(k) == "integer" then return k end
  if math_type(k) == "float" then return math.tointeger(k) end
  return nil
end

-- Length n of the sequence part: the run of keys 1..n that `pairs` yields.
-- Values are never read by indexing (an __index that answers every key must
-- not make the run endless). `#v` is only a hint: keys 1..#v are counted in
-- one pass; if all are there the run is extended with the keys past it,
-- otherwise a second pass finds the first hole.
local function seq_length(v)
  local ok, n0 = pcall(function() return #v end)
  if not ok or math_type(n0) ~= "integer" or n0 < 0 then n0 = 0 end
  local inside, beyond = 0, {}
  for k in pairs(v) do
    local i = int_key(k)
    if i and i >= 1 then
      if i <= n0 then
        inside = inside + 1
      else
        beyond[i] = true
      end
    end
  end
  if inside == n0 then
    local n = n0
    while beyond[n + 1] do n = n + 1 end
    return n
  end
  local present = {}
  for k in pairs(v) do
    local i = int_key(k)
    if i and i >= 1 and i <= n0 then present[i] = true end
  end
  local n = 0
  while present[n + 1] do n = n + 1 end
  return n
end

local format_value

local function format_key(k, st)
  if type(k) == "string" and k:find("^[%a_][%w_]*$") and not RESERVED[k] then
    return k .. " = "
  end
  return "[" .. format_value(k, st, 0, 0) .. "] = "
end

local function format_table(v, st, depth, col)
  local stack = st.stack
  if stack[v] then return "<cycle>" end
  if depth >= st.max_depth then
    local iter, state, ctl = pairs(v) -- the global pairs, looked up now
    return iter(state, ctl) == nil and "{}" or "{...}"
  end

  local n = seq_length(v)
  local max = st.max_items
  local shown_seq = n < max and n or max
  -- Other keys: all of them when they fit under max_items, else a heap of
  -- the first ones in key order.
  local seqvals, others, ovals, count = {}, {}, {}, n
  local heap = nil
  local room = max - shown_seq
  for key, val in pairs(v) do
    local i = int_key(key)
    if i and i >= 1 and i <= n then
      if i <= shown_seq then seqvals[i] = val end
    else
      count = count + 1
      if heap then
        heap_push(heap, key, val)
      else
        others[#others + 1] = key
        ovals[#others] = val
        if #others > room then -- too many: switch to a bounded heap
          heap = heap_new(room, st.less)
          for j = 1, #others do heap_push(heap, others[j], ovals[j]) end
          others, ovals = nil, nil
        end
      end
    end
  end

  local keys, vals
  if heap then
    keys, vals = heap.k, heap.v
    -- the heap holds the `room` smallest keys; order them
    local idx = {}
    for i = 1, heap.n do idx[i] = i end
    local less = st.less
    table.sort(idx, function(a, b) return less(keys[a], keys[b]) end)
    local k2, v2 = {}, {}
    for i = 1, #idx do k2[i], v2[i] = keys[idx[i]], vals[idx[i]] end
    keys, vals = k2, v2
  else
    local idx = {}
    for i = 1, #others do idx[i] = i end
    local less = st.less
    table.sort(idx, function(a, b) return less(others[a], others[b]) end)
    keys, vals = {}, {}
    for i = 1, #idx do keys[i], vals[i] = others[idx[i]], ovals[idx[i]] end
  end
  if count == 0 then return "{}" end

  stack[v] = true
  local items, multi = {}, false
  local inner = st.indent_of(depth + 1)
  local icol = #inner
  for i = 1, shown_seq do
    local s = format_value(seqvals[i], st, depth + 1, icol)
    if s:find("\n", 1, true) then multi = true end
    items[i] = s
  end
  for i = 1, #keys do
    local prefix = format_key(keys[i], st)
    local s = prefix .. format_value(vals[i], st, depth + 1, icol + #prefix)
    if s:find("\n", 1, true) then multi = true end
    items[#items + 1] = s
  end
  stack[v] = nil

  local more = count - #items
  if not multi and more == 0 then
    local one = "{" .. concat(items, ", ") .. "}"
    -- inside a multi-line table, the comma after the value counts too
    if col + #one + (depth > 0 and 1 or 0) <= st.width then return one end
  end
  local close = st.indent_of(depth)
  if more > 0 then items[#items + 1] = "-- " .. more .. " more" end
  -- a comma after every entry but the last (and never after the comment)
  return "{\n" .. inner .. concat(items, ",\n" .. inner) .. "\n" .. close .. "}"
end

format_value = function(v, st, depth, col)
  local t = type(v)
  if t == "nil" or t == "boolean" then return tostring(v) end
  if t == "number" then return format_number(v) end
  if t == "string" then return format_string(v) end
  if is_tablelike(v) then return format_table(v, st, depth, col) end
  local ok, s = pcall(tostring, v)
  if not ok or type(s) ~= "string" then s = t end
  return "<" .. s .. ">"
end

local function new_state(opts)
  opts = opts or {}
  local function num(name)
    local x = opts[name]
    if x == nil then return DEFAULTS[name] end
    if math_type(x) ~= "integer" or x < 0 then
      error("pretty.format: opts." .. name .. " must be an integer >= 0", 3)
    end
    return x
  end
  local indents = { [0] = "" }
  return {
    width = num("width"),
    max_items = num("max_items"),
    max_depth = num("max_depth"),
    stack = {},
    less = make_key_less(),
    indent_of = function(d)
      local s = indents[d]
      if not s then
        s = string.rep("  ", d)
        indents[d] = s
      end
      return s
    end,
  }
end

--- Formats one value as a Lua literal (see the top of this file).
-- opts: width (72), max_items (100), max_depth (16); all optional.
function pretty.format(v, opts)
  return format_value(v, new_state(opts), 0, 0)
end

--- Formats every argument, one per line; nil arguments print "nil" and
-- trailing nils count (select('#', ...)). No argument gives "".
function pretty.results(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do
    out[i] = format_value((select(i, ...)), new_state(nil), 0, 0)
  end
  return concat(out, "\n")
end

return pretty
