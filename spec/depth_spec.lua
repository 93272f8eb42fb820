-- depth_spec.lua: one nesting limit (persist/format/vh_limits.h, VH_MAX_DEPTH =
-- 20000 tables, the state table itself counted) on every path that stores a
-- table into a state: a plain table, a state subtable (also stored under
-- itself again and again), and deep paths that must not recurse in C.
local core = require "vedcore"

local LIMIT = 20000

local function write(st, fn)
  st:begin()
  local ok, err = pcall(fn, st.state)
  if ok then st:commit() else st:rollback() end
  return ok, err
end

-- A plain chain: top plus `levels` nested tables under .d
local function chain(levels)
  local top = {}
  local cur = top
  for _ = 1, levels do
    cur.d = {}
    cur = cur.d
  end
  cur.leaf = true
  return top
end

-- The proxy `levels` steps down .d from p.
local function down(p, levels)
  for _ = 1, levels do p = p.d end
  return p
end

local function depth_of(p)
  local n = 1
  while p.d ~= nil do p, n = p.d, n + 1 end
  return n
end

local function strip(err)
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

describe("nesting limit", function()
  it("counts from the state table: a plain table may reach the limit", function()
    local st = core.new_state({})
    -- state (1) -> a (2) -> LIMIT - 2 more levels: the deepest is at LIMIT
    assert.is_true((write(st, function(s) s.a = chain(LIMIT - 2) end)))
    local ok, err = write(st, function(s) s.b = chain(LIMIT - 1) end)
    assert.is_false(ok)
    assert.truthy(strip(err):find("^cannot store a table nested deeper than "
      .. "20000 levels at state%.b%.d%.d"), err)
    assert.is_nil(st.state.b)
  end)

  it("adds the depth where a plain table lands", function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(14998) end)))
    -- the bottom of the chain is at depth 15000
    local ok, err = write(st, function(s)
      down(s, 14999).x = chain(5000)
    end)
    assert.is_false(ok)
    assert.truthy(strip(err):find("nested deeper than 20000 levels at "
      .. "state.d.d.d.d.d.d.d.d...", 1, true), err)
    ok = write(st, function(s) down(s, 14999).x = chain(4999) end)
    assert.is_true(ok)
    assert.are.equal(LIMIT, 15000 + depth_of(down(st.state, 14999).x))
  end)

  it("refuses a state subtable stored under itself past the limit", function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(14998) end)))
    -- p.x = s.d at the bottom of a 15000-deep chain: 15000 + 15000 levels
    local ok, err = write(st, function(s)
      local p = down(s, 14999)
      p.x = s.d
    end)
    assert.is_false(ok)
    assert.truthy(strip(err):find("^cannot store a table nested deeper than "
      .. "20000 levels at state%.d%.d"), err)
    assert.is_nil(down(st.state, 14999).x)
    -- repeated, each in its own transaction: still refused every time
    for _ = 1, 3 do
      ok = write(st, function(s) down(s, 14999).x = s.d end)
      assert.is_false(ok)
    end
    assert.are.equal(15000, depth_of(st.state) )
  end)

  it("allows a subtable stored under itself while it fits", function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(998) end)))
    for i = 1, 18 do
      local ok, err = write(st, function(s)
        local p = s
        while p.d ~= nil do p = p.d end
        p.d = s.d
      end)
      assert.is_true(ok, err)
      assert.are.equal(1 + 999 * (2 ^ i), depth_of(st.state))
      if depth_of(st.state) * 2 > LIMIT then break end
    end
    local ok = write(st, function(s)
      local p = s
      while p.d ~= nil do p = p.d end
      p.d = s.d
    end)
    assert.is_false(ok)
  end)

  it("refuses a proxy stored below the limit through table.insert", function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(LIMIT - 2) end)))
    local ok, err = write(st, function(s)
      local env = setmetatable({}, { __index = _G })
      core.compat(env)
      s.list = {}
      env.table.insert(s.list, s.d)
    end)
    assert.is_false(ok, "stored " .. tostring(err))
    assert.truthy(strip(err):find("nested deeper than 20000 levels at "
      .. "state.list", 1, true), err)
  end)

  it("refuses a proxy inside a plain table that lands past the limit",
     function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(LIMIT - 3) end)))
    -- the plain table at depth LIMIT holds a proxy: it would land at
    -- LIMIT + 1
    local ok, err = write(st, function(s)
      local p = down(s, LIMIT - 2)
      p.x = { s.d.d.d }
    end)
    assert.is_false(ok)
    assert.truthy(strip(err):find("nested deeper than 20000 levels", 1, true),
                  err)
    ok = write(st, function(s)
      local p = down(s, LIMIT - 2)
      p.x = { leaf = { 1 } }
    end)
    assert.is_false(ok)
  end)

  it("writes at the bottom of a deep path without deep C recursion", function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(LIMIT - 2) end)))
    -- a fresh transaction: every node on the path must be copied
    local ok, err = write(st, function(s) down(s, LIMIT - 1).leaf = 42 end)
    assert.is_true(ok, err)
    -- a held proxy at the bottom, re-resolved after commits
    local p = down(st.state, LIMIT - 1)
    assert.are.equal(42, p.leaf)
    ok, err = write(st, function(s) s.other = 1 end)
    assert.is_true(ok, err)
    assert.are.equal(42, p.leaf)
    -- a plain copy of the whole deep value
    local c = core.copy(st.state.d)
    local n = 1
    while c.d do c, n = c.d, n + 1 end
    assert.are.equal(LIMIT - 1, n)
    assert.are.equal(42, c.leaf)
  end)

  it("names a deep path with its first and last keys", function()
    local st = core.new_state({})
    assert.is_true((write(st, function(s) s.d = chain(100) end)))
    local p = down(st.state, 50)
    write(st, function(s) down(s, 49).d = 1 end)
    local ok, err = pcall(function() return p.leaf end)
    assert.is_false(ok)
    assert.are.equal("state.d.d.d.d.d.d.d.d....d.d.d.d.d.d.d.d is no longer "
      .. "a table", strip(err))
  end)
end)

describe("a state at the nesting limit, end to end", function()
  local proc = require "support.proc"

  it("is stored by a host, read back, fsck'd and exported", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", [[
local ved = require "ved"
ved.domain "deep" {
  start = function(s)
    if s.d == nil then
      local top = {}
      local cur = top
      for _ = 1, 19998 do cur.d = {}; cur = cur.d end
      cur.leaf = true
      s.d = top -- the deepest table is at depth 20000
      local ok = not pcall(function() local p = s; while p.d do p = p.d end;
                                p.x = {} end)
      if not ok then ved.exit(3) end
    else
      local p, n = s, 1
      while p.d do p, n = p.d, n + 1 end
      if n ~= 20000 or p.leaf ~= true then ved.exit(4) end
    end
    ved.exit(0)
  end,
}
]])
    local args = { "run", "--no-watch", "--handler-timeout", "60000",
                   "--data", "d", "a.lua" }
    local r = proc.run(args, { cwd = dir, timeout = 120 })
    assert.are.equal(0, r.code, r.log)
    r = proc.run(args, { cwd = dir, timeout = 120 })
    assert.are.equal(0, r.code, r.log)
    -- fsck walks it in time linear in its tables (bounded only by the
    -- generous timeout: no timing asserted)
    r = proc.run({ "fsck", "--data", "d" }, { cwd = dir, timeout = 300 })
    assert.are.equal(0, r.code, r.out .. r.log)
    assert.truthy(r.out:find("fsck: ok", 1, true), r.out)
    r = proc.run({ "export", "--data", "d", "x.vx" }, { cwd = dir,
                                                         timeout = 120 })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "import", "--data", "e", "x.vx" }, { cwd = dir,
                                                         timeout = 120 })
    assert.are.equal(0, r.code, r.log)
    proc.rmdir(dir)
  end)
end)
