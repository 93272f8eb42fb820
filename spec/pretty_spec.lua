-- Specs for scripts/pretty.lua: every printing rule, and that the printer
-- walks tables only through the global `pairs` (so host proxies print).
local pretty = require "pretty"
local fmt = pretty.format

-- Reads a printed literal back (the output is meant to be valid Lua).
local function readback(s)
  local f = assert(load("return " .. s, "=readback", "t", { math = math }))
  return f()
end

describe("pretty.format scalars", function()
  it("prints nil and booleans", function()
    assert.equal("nil", fmt(nil))
    assert.equal("true", fmt(true))
    assert.equal("false", fmt(false))
  end)

  it("prints integers as integers", function()
    assert.equal("0", fmt(0))
    assert.equal("-42", fmt(-42))
    assert.equal("9223372036854775807", fmt(math.maxinteger))
    local s = fmt(math.mininteger)
    assert.equal("math.mininteger", s)
    assert.equal(math.mininteger, readback(s))
    assert.equal("integer", math.type(readback(s)))
  end)

  it("keeps the float subtype", function()
    assert.equal("1.0", fmt(1.0))
    assert.equal("-0.0", fmt(-0.0))
    assert.equal("0.1", fmt(0.1))
    assert.equal("1e+300", fmt(1e300))
    assert.equal("1/0", fmt(math.huge))
    assert.equal("-1/0", fmt(-math.huge))
    assert.equal("0/0", fmt(0 / 0))
    for _, x in ipairs { 1.0, 0.1, 1 / 3, 2 ^ 63, 1e300, -1e-300, 123456789.5,
      5e-324, 1.7976931348623157e308, 3.0e15 } do
      local back = readback(fmt(x))
      assert.equal("float", math.type(back))
      assert.equal(x, back)
    end
    local back = readback(fmt(0 / 0))
    assert.is_true(back ~= back)
    assert.equal(1 / 0, readback(fmt(1 / 0)))
  end)

  it("picks the shortest form that reads back", function()
    assert.equal("0.3", fmt(0.3))
    assert.equal("0.30000000000000004", fmt(0.1 + 0.2))
  end)
end)

describe("pretty.format strings", function()
  it("quotes and escapes", function()
    assert.equal('"abc"', fmt("abc"))
    assert.equal('""', fmt(""))
    assert.equal('"a\\nb"', fmt("a\nb"))
    assert.equal('"\\0"', fmt("\0"))
    assert.equal('"say \\"hi\\""', fmt('say "hi"'))
    assert.equal('"back\\\\slash"', fmt("back\\slash"))
    assert.equal('"\\t\\r\\a\\b\\f\\v"', fmt("\t\r\a\b\f\v"))
  end)

  it("prints other control bytes and DEL as decimal escapes", function()
    assert.equal('"\\1\\27\\127"', fmt("\1\27\127"))
    -- a digit after an escape needs the 3-digit form
    assert.equal('"\\0001"', fmt("\0" .. "1"))
    assert.equal('"\\0279"', fmt("\27" .. "9"))
  end)

  it("keeps valid UTF-8 and escapes invalid bytes", function()
    assert.equal('"héllo ✓ 😀"', fmt("héllo ✓ 😀"))
    assert.equal('"\\255"', fmt("\255"))
    assert.equal('"a\\195"', fmt("a\195")) -- truncated sequence
    assert.equal('"\\192\\128"', fmt("\192\128")) -- overlong NUL
    assert.equal('"\\237\\160\\128"', fmt("\237\160\128")) -- surrogate
    assert.equal('"\\244\\144\\128\\128"', fmt("\244\144\128\128")) -- >10FFFF
    assert.equal('"\\u{85}"', fmt("\u{85}")) -- C1 control
  end)

  it("reads back to the same bytes", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local s = table.concat(all) .. "\0" .. "123" .. "é" .. "\u{9F}" ..
      "\2" .. "0"
    assert.equal(s, readback(fmt(s)))
  end)
end)

describe("pretty.format tables", function()
  it("prints empty tables and sequences on one line", function()
    assert.equal("{}", fmt({}))
    assert.equal("{1, 2, 3}", fmt({ 1, 2, 3 }))
    assert.equal('{"a", true, 2.5}', fmt({ "a", true, 2.5 }))
  end)

  it("puts the sequence first, then sorted keys", function()
    local t = { 10, 20, z = 1, a = 2, [5] = 5, [-1] = 0, [2.5] = 1,
      [true] = "t", [false] = "f", ["with space"] = 3, B = 4 }
    assert.equal(
      '{10, 20, [-1] = 0, [2.5] = 1, [5] = 5, B = 4, a = 2, ' ..
      '["with space"] = 3, z = 1, [false] = "f", [true] = "t"}',
      fmt(t, { width = 200 }))
  end)

  it("orders numbers ascending, integers and floats together", function()
    assert.equal("{[-3] = 1, [0.5] = 2, [7] = 3, [100] = 4}",
      fmt({ [100] = 4, [7] = 3, [0.5] = 2, [-3] = 1 }))
  end)

  it("orders strings in byte order", function()
    assert.equal('{Z = 1, _ = 3, a = 2, ["é"] = 4}',
      fmt({ a = 2, Z = 1, ["é"] = 4, _ = 3 }))
  end)

  it("orders strings in byte order whatever the collation locale", function()
    local x40 = "a" .. string.rep("x", 40)
    local t = { b = 1, B = 2, [x40 .. "b"] = 3, [x40 .. "B"] = 4, [x40] = 5 }
    local wide = { width = 1000 }
    local want = fmt(t, wide) -- under the C locale of lua5.4
    local old = os.setlocale(nil, "collate")
    local ok = os.setlocale("C.UTF-8", "collate")
      or os.setlocale("en_US.UTF-8", "collate")
    local got = fmt(t, wide)
    os.setlocale(old, "collate")
    if not ok then
      pending("no UTF-8 collation locale installed")
      return
    end
    assert.equal(want, got)
    assert.truthy(
      got:find("^{B = 2, axxxx+ = 5, axxxx+B = 4, axxxx+b = 3, b = 1}$"))
  end)

  it("stops the sequence part at the first hole", function()
    assert.equal("{1, 2, [4] = 4}", fmt({ 1, 2, nil, 4 }))
    assert.equal("{[2] = 2}", fmt({ nil, 2 }))
  end)

  it("writes identifier keys bare and others in brackets", function()
    assert.equal('{["1x"] = 2, _ok = 3, ["a-b"] = 4, ["end"] = 1}',
      fmt({ ["end"] = 1, ["1x"] = 2, _ok = 3, ["a-b"] = 4 }))
  end)

  it("indents nested tables that do not fit on one line", function()
    local t = { name = "counter", recent = { 1, 2, 3 },
      users = { alice = { age = 31, email = "alice@example.com" },
        bob = { age = 42, email = "bob@example.com" } } }
    local expected = [[
{
  name = "counter",
  recent = {1, 2, 3},
  users = {
    alice = {age = 31, email = "alice@example.com"},
    bob = {age = 42, email = "bob@example.com"}
  }
}]]
    assert.equal(expected, fmt(t))
  end)

  it("keeps a line within the width", function()
    local t = {}
    for i = 1, 200 do t[i] = { id = i, tag = string.rep("x", i % 50) } end
    for line in (fmt(t, { max_items = 1000 }) .. "\n"):gmatch("(.-)\n") do
      assert.is_true(#line <= 72, line)
    end
  end)

  it("honours opts.width", function()
    assert.equal("{1, 2, 3}", fmt({ 1, 2, 3 }, { width = 9 }))
    assert.equal("{\n  1,\n  2,\n  3\n}", fmt({ 1, 2, 3 }, { width = 8 }))
  end)

  it("elides long tables with a count", function()
    local t = {}
    for i = 1, 10000 do t[i] = i end
    local s = fmt(t)
    local lines = {}
    for line in s:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal("{", lines[1])
    assert.equal("  1,", lines[2])
    assert.equal("  100,", lines[101])
    assert.equal("  -- 9900 more", lines[102])
    assert.equal("}", lines[103])
    assert.equal(103, #lines)
    assert.equal("{\n  1,\n  2,\n  3,\n  4,\n  5,\n  -- 9995 more\n}",
      fmt(t, { max_items = 5 }))
  end)

  it("elides hash keys, keeping the first ones in key order", function()
    local t = {}
    for i = 1, 5000 do t[string.format("k%05d", i)] = i end
    assert.equal('{\n  k00001 = 1,\n  k00002 = 2,\n  k00003 = 3,\n' ..
      '  -- 4997 more\n}', fmt(t, { max_items = 3 }))
    -- sequence part and keys mixed: the sequence comes first
    local m = { "a", "b", x = 1, y = 2, z = 3 }
    assert.equal('{\n  "a",\n  "b",\n  x = 1,\n  -- 2 more\n}',
      fmt(m, { max_items = 3 }))
    assert.equal('{\n  -- 5 more\n}', fmt(m, { max_items = 0 }))
  end)

  it("cuts deep nesting with {...}", function()
    local t = { a = { b = { c = { d = 1 } } }, e = {} }
    assert.equal("{a = {b = {...}}, e = {}}", fmt(t, { max_depth = 2 }))
    assert.equal("{...}", fmt(t, { max_depth = 0 }))
    assert.equal("{}", fmt({}, { max_depth = 0 }))
    local deep = {}
    local cur = deep
    for _ = 1, 40 do
      cur.next = {}
      cur = cur.next
    end
    assert.truthy(fmt(deep):find("{...}", 1, true))
  end)

  it("prints cycles as <cycle> and shared tables in full", function()
    local t = { name = "x" }
    t.self = t
    assert.equal('{name = "x", self = <cycle>}', fmt(t))
    local a = { b = {} }
    a.b.up = a
    assert.equal("{b = {up = <cycle>}}", fmt(a))
    local shared = { 1 }
    assert.equal("{p = {1}, q = {1}}", fmt({ p = shared, q = shared }))
  end)

  it("prints functions and other values in angle brackets", function()
    assert.truthy(fmt(print):match("^<function: .+>$"))
    assert.truthy(fmt(coroutine.create(print)):match("^<thread: .+>$"))
    assert.truthy(fmt(io.stdout):match("^<file %(.+%)>$"))
    local bad = setmetatable({}, { __tostring = function() error("no") end })
    assert.equal("{}", fmt(bad)) -- a table prints its contents
  end)

  it("does not loop on an __index that answers every key", function()
    local t = setmetatable({ 1, 2 }, { __index = function() return 0 end })
    assert.equal("{1, 2}", fmt(t))
  end)

  it("rejects bad options", function()
    assert.has_error(function() fmt({}, { max_items = -1 }) end)
    assert.has_error(function() fmt({}, { width = "wide" }) end)
  end)
end)

describe("pretty.format on proxies", function()
  -- A stand-in for a host state proxy: the raw table is empty, the data
  -- sits behind __pairs, __index and __len (as with the host's userdata).
  local function proxy(data)
    return setmetatable({}, {
      __pairs = function()
        local keys = {}
        for k in next, data do keys[#keys + 1] = k end
        table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
        local i = 0
        return function()
          i = i + 1
          local k = keys[i]
          if k == nil then return nil end
          local v = data[k]
          if type(v) == "table" then v = proxy(v) end
          return k, v
        end
      end,
      __index = function(_, k) return data[k] end,
      __len = function() return #data end,
    })
  end

  it("prints a proxy like the plain table", function()
    local data = { count = 3, recent = { 10, 20, 30 }, [1] = "first",
      users = { ann = { age = 3 } } }
    assert.equal(fmt(data), fmt(proxy(data)))
    local big = {}
    for i = 1, 500 do big[i] = i end
    big.extra = true
    assert.equal(fmt(big), fmt(proxy(big)))
  end)

  it("walks with the global pairs looked up at call time", function()
    local real = pairs
    local calls = 0
    _G.pairs = function(t)
      calls = calls + 1
      return real(t)
    end
    local ok, s = pcall(fmt, { a = { 1 } })
    _G.pairs = real
    assert.is_true(ok, s)
    assert.equal("{a = {1}}", s)
    assert.is_true(calls >= 2)
  end)

  it("treats values as tables when the global type says so", function()
    local real = type
    local marker = setmetatable({}, { __pairs = function()
      return function(_, k) if k == nil then return "k", 1 end end, nil, nil
    end })
    _G.type = function(v)
      if rawequal(v, marker) then return "table" end
      return real(v)
    end
    local ok, s = pcall(fmt, { m = marker })
    _G.type = real
    assert.is_true(ok, s)
    assert.equal("{m = {k = 1}}", s)
  end)
end)

describe("pretty.results", function()
  it("prints one line per result", function()
    assert.equal("1\n\"a\"\n{1, 2}", pretty.results(1, "a", { 1, 2 }))
  end)

  it("prints nil for nil and counts trailing nils", function()
    assert.equal("nil", pretty.results(nil))
    assert.equal("1\nnil\nnil", pretty.results(1, nil, nil))
    assert.equal("nil\n2", pretty.results(nil, 2))
  end)

  it("prints nothing for no results", function()
    assert.equal("", pretty.results())
  end)

  it("starts each multi-line result on its own line", function()
    local t = {}
    for i = 1, 3 do t[i] = string.rep("y", 30) end
    local s = pretty.results(t, 5)
    assert.truthy(s:match("^{\n.-\n}\n5$"))
  end)
end)
