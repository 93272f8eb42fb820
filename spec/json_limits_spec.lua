-- json_limits_spec.lua - JSON never drops data and answers 200 (issue 13,
-- item 11): a state nested deeper than jansson's old 512 levels is written
-- whole (up to the state's own limit, 20000), and a table whose keys would
-- collide as JSON member names (1 and "1", true and "true", 1.5 and "1.5")
-- is refused with 500 and a JSON error naming the path, for GET of state
-- and for a handler's reply alike.
local proc = require "support.proc"
local q = proc.quote

local SCRIPT = [[
local ved = require "ved"
local function chain(n)
  local top = {}
  local cur = top
  for _ = 1, n do cur.d = {}; cur = cur.d end
  cur.leaf = 1
  return top
end
ved.domain "j" {
  state = { deep = chain(19997), ok = { a = 1 },
            clash = { inner = { [1] = "int", ["1"] = "str" } },
            flags = { [true] = "bool", ["true"] = "str" },
            reals = { [1.5] = "float", ["1.5"] = "str" },
            list = { { [2] = "x", ["2"] = "y" } } },
  on = {
    int = function() return { [1] = "a", ["1"] = "b" } end,
    deep = function(s) return chain(1000) end,
    fine = function() return { [1] = "a", ["x"] = "b", [true] = 1 } end,
  },
}
]]

local function start()
  return proc.start_host(SCRIPT, { args = { "--no-watch", "--http", "0" },
                                   ready = "running 1 domain", timeout = 20,
                                   http = true })
end

local function curl(p, method, path)
  local bodyf = os.tmpname()
  local args = { "curl", "-s", "--max-time", "20", "-o", bodyf, "-w",
                 "%{http_code}", "-X", method, p.url .. path }
  local parts = {}
  for i, a in ipairs(args) do parts[i] = q(a) end
  local h = io.popen(table.concat(parts, " "))
  local code = tonumber(h:read("a"))
  h:close()
  local out = proc.read(bodyf) or ""
  os.remove(bodyf)
  return code, out
end

describe("JSON of state and replies", function()
  local p
  setup(function() p = start() end)
  teardown(function()
    proc.signal(p, "TERM")
    proc.wait(p, 10)
    proc.cleanup(p)
    proc.rmdir(p.wdir)
  end)

  it("writes a state nested far deeper than 512 levels, whole", function()
    local c, b = curl(p, "GET", "/domains/j/state/deep")
    assert.are.equal(200, c)
    local _, opens = b:gsub('{"d":', "")
    assert.are.equal(19997, opens)
    assert.truthy(b:find('{"leaf":1}' .. string.rep("}", 19997), 1, true))
    assert.falsy(b:find("null", 1, true))
    c, b = curl(p, "POST", "/domains/j/events/deep")
    assert.are.equal(200, c)
    local _, n = b:gsub('{"d":', "")
    assert.are.equal(1000, n)
  end)

  it("refuses keys that would collide, naming the path", function()
    local c, b = curl(p, "GET", "/domains/j/state/clash")
    assert.are.equal(500, c, b)
    assert.are.equal('{"error":"cannot write $.inner as JSON without losing '
      .. 'data: the keys 1 and \\"1\\" would both be the JSON key \\"1\\""}', b)
    c, b = curl(p, "GET", "/domains/j/state/flags")
    assert.are.equal(500, c, b)
    assert.truthy(b:find('the keys true and \\"true\\"', 1, true), b)
    c, b = curl(p, "GET", "/domains/j/state/reals")
    assert.are.equal(500, c, b)
    assert.truthy(b:find('the keys 1.5 and \\"1.5\\"', 1, true), b)
    c, b = curl(p, "GET", "/domains/j/state/list")
    assert.are.equal(500, c, b)
    assert.truthy(b:find("cannot write $[0] as JSON", 1, true), b)
    -- the whole state too; other paths still read
    c, b = curl(p, "GET", "/domains/j/state")
    assert.are.equal(500, c, b)
    c, b = curl(p, "GET", "/domains/j/state/ok")
    assert.are.equal(200, c)
    assert.are.equal('{"a":1}', b)
  end)

  it("refuses a reply whose keys would collide; distinct texts are fine",
     function()
    local c, b = curl(p, "POST", "/domains/j/events/int")
    assert.are.equal(500, c, b)
    assert.truthy(b:find('the reply: cannot write $ as JSON without losing '
      .. 'data: the keys 1 and \\"1\\"', 1, true), b)
    c, b = curl(p, "POST", "/domains/j/events/fine")
    assert.are.equal(200, c, b)
    assert.truthy(b:find('"1":"a"', 1, true), b)
    assert.truthy(b:find('"x":"b"', 1, true), b)
    assert.truthy(b:find('"true":1', 1, true), b)
  end)
end)
