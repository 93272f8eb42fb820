-- proxy_spec.lua: the state proxies of the vedcore module (bindings/).
-- Every behaviour of a state table seen from Lua, and every error message.
local core = require "vedcore"

-- A state with `init`, and a helper running fn(state) in a committed tx.
local function new(init, name)
  return core.new_state(init, name)
end

local function write(st, fn)
  st:begin()
  local ok, err = pcall(fn, st.state)
  if ok then st:commit() else st:rollback(); error(err, 0) end
end

local function keys_of(t, pairs_fn)
  local out = {}
  for k in (pairs_fn or pairs)(t) do out[#out + 1] = k end
  table.sort(out, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    if type(a) == "boolean" then return (a and 1 or 0) < (b and 1 or 0) end
    return a < b
  end)
  return out
end

describe("state proxy", function()
  describe("reads and writes", function()
    it("reads and writes with . and []", function()
      local st = new({ a = 1, b = "x" })
      local s = st.state
      assert.are.equal(1, s.a)
      assert.are.equal("x", s["b"])
      assert.is_nil(s.missing)
      write(st, function(s2)
        s2.c = true
        s2["d e"] = 2.5
        s2[7] = "seven"
        s2[false] = "f"
        s2.a = nil
      end)
      assert.are.equal(true, s.c)
      assert.are.equal(2.5, s["d e"])
      assert.are.equal("seven", s[7])
      assert.are.equal("f", s[false])
      assert.is_nil(s.a)
      assert.are.same({ false, 7, "b", "c", "d e" }, keys_of(s))
    end)

    it("returns nil for keys that can never be state keys", function()
      local s = new({ a = 1 }).state
      assert.is_nil(s[{}])
      assert.is_nil(s[print])
      assert.is_nil(s[nil])
      assert.is_nil(s[0 / 0])
    end)

    it("gives nested tables as proxies with a stable identity", function()
      local st = new({ users = { bob = { age = 3 } } })
      local s = st.state
      assert.is_true(core.isproxy(s.users))
      assert.is_true(core.isproxy(s.users.bob))
      assert.is_false(core.isproxy({}))
      assert.is_true(rawequal(s.users, s.users))
      assert.is_true(rawequal(s.users.bob, s["users"]["bob"]))
      assert.is_true(rawequal(st.state, st.state))
      assert.are.equal(3, s.users.bob.age)
      write(st, function(w) w.users.bob.age = 4 end)
      assert.are.equal(4, s.users.bob.age)
    end)

    it("keeps the integer/float subtype of values", function()
      local st = new({})
      write(st, function(s)
        s.i = 2
        s.f = 2.0
        s.big = math.maxinteger
        s.neg = -0.5
      end)
      local s = st.state
      assert.are.equal("integer", math.type(s.i))
      assert.are.equal("float", math.type(s.f))
      assert.are.equal(math.maxinteger, s.big)
      assert.are.equal(-0.5, s.neg)
    end)

    it("normalizes float keys with integral values", function()
      local st = new({})
      write(st, function(s)
        s[2.0] = "two"
        s[-0.0] = "zero"
        s[1.5] = "half"
      end)
      local s = st.state
      assert.are.equal("two", s[2])
      assert.are.equal("two", s[2.0])
      assert.are.equal("zero", s[0])
      assert.are.equal("half", s[1.5])
      for k in pairs(s) do
        if k == 2 or k == 0 then assert.are.equal("integer", math.type(k)) end
      end
    end)

    it("stores binary-safe strings as keys and values", function()
      local st = new({})
      local bin = "a\0b\255\0"
      write(st, function(s)
        s[bin] = bin .. bin
        s.e = ""
      end)
      assert.are.equal(bin .. bin, st.state[bin])
      assert.are.equal(10, #st.state[bin])
      assert.is_nil(st.state["a"])
      assert.are.equal("", st.state.e)
    end)

    it("allows NaN as a value", function()
      local st = new({})
      write(st, function(s) s.n = 0 / 0 end)
      local v = st.state.n
      assert.is_true(v ~= v)
    end)

    it("stores large strings and many keys", function()
      local st = new({})
      local big = string.rep("x", 3 * 1024 * 1024)
      write(st, function(s)
        s.big = big
        s.list = {}
        for i = 1, 20000 do s.list[i] = i * 2 end
      end)
      assert.are.equal(big, st.state.big)
      assert.are.equal(20000, #st.state.list)
      assert.are.equal(40000, st.state.list[20000])
    end)
  end)

  describe("length and iteration", function()
    it("# follows the array border", function()
      local st = new({ list = { 1, 2, 3 } })
      local l = st.state.list
      assert.are.equal(3, #l)
      write(st, function(s)
        s.list[4] = 4
        s.list[5] = 5
      end)
      assert.are.equal(5, #l)
      write(st, function(s) s.list[5] = nil end)
      assert.are.equal(4, #l)
      write(st, function(s) s.list[2] = nil end) -- a hole inside
      assert.are.equal(4, #l)
      assert.are.equal(0, #new({}).state)
    end)

    it("pairs visits every key once, nested tables as live proxies", function()
      local st = new({ a = 1, b = { x = 1 }, c = { x = 2 }, 10, 20 })
      local seen = {}
      for k, v in pairs(st.state) do
        assert.is_nil(seen[k])
        seen[k] = v
      end
      assert.are.same({ 1, 2, "a", "b", "c" }, keys_of(seen))
      assert.is_true(rawequal(seen.b, st.state.b))
      -- writing through the proxies pairs gives changes the state
      write(st, function(s)
        for _, v in pairs(s) do
          if core.type(v) == "table" then v.x = v.x * 10 end
        end
      end)
      assert.are.equal(10, st.state.b.x)
      assert.are.equal(20, st.state.c.x)
    end)

    it("a loop sees the table as it was when it started", function()
      local st = new({ a = 1, b = 2, c = 3 })
      write(st, function(s)
        local seen = {}
        for k, v in pairs(s) do
          seen[k] = v
          s[k] = nil      -- delete what we visit
          s[k .. k] = v   -- add new keys
          s.a = 100       -- overwrite one not yet visited (maybe)
        end
        assert.are.same({ a = 1, b = 2, c = 3 }, seen)
      end)
      assert.are.same({ "a", "aa", "bb", "cc" }, keys_of(st.state))
      assert.are.equal(100, st.state.a)
    end)

    it("a loop over a nested table survives replacing that table", function()
      local st = new({ t = { 1, 2, 3 } })
      write(st, function(s)
        local got = {}
        for i, v in pairs(s.t) do
          got[i] = v
          s.t = { "replaced" }
        end
        assert.are.same({ 1, 2, 3 }, got)
      end)
      assert.are.same({ "replaced" }, core.copy(st.state.t))
    end)

    it("ipairs stops at the first nil (stock and core)", function()
      local st = new({ list = { "a", "b", { c = 1 } } })
      for _, ip in ipairs({ ipairs, core.ipairs }) do
        local out = {}
        for i, v in ip(st.state.list) do out[i] = v end
        assert.are.equal(3, #out)
        assert.are.equal("a", out[1])
        assert.is_true(rawequal(out[3], st.state.list[3]))
      end
      write(st, function(s) s.list[2] = nil end)
      local n = 0
      for _ in core.ipairs(st.state.list) do n = n + 1 end
      assert.are.equal(1, n)
    end)

    it("core.pairs returns a closing value and works in a loop", function()
      local st = new({ x = 1, y = 2 })
      local f, s, c, close = core.pairs(st.state)
      assert.are.equal("function", type(f))
      assert.is_nil(s)
      assert.is_nil(c)
      assert.is_not_nil(close)
      local n = 0
      for _ in core.pairs(st.state) do
        n = n + 1
        break
      end
      assert.are.equal(1, n)
      -- plain tables go to next / __pairs
      local m = 0
      for _ in core.pairs({ 1, 2, 3 }) do m = m + 1 end
      assert.are.equal(3, m)
    end)
  end)

  describe("compat functions", function()
    it("type, next, rawlen, rawequal treat proxies as tables", function()
      local st = new({ e = {}, t = { 5, 6, k = "v" } })
      local s = st.state
      assert.are.equal("table", core.type(s))
      assert.are.equal("table", core.type({}))
      assert.are.equal("number", core.type(1))
      assert.are.equal("userdata", type(s))
      assert.is_nil(core.next(s.e))
      local k, v = core.next(s.t)
      assert.are.equal(1, k)
      assert.are.equal(5, v)
      local seen, key = {}, nil
      repeat
        key = core.next(s.t, key)
        if key ~= nil then seen[#seen + 1] = key end
      until key == nil
      assert.are.equal(3, #seen)
      assert.are.equal(2, core.rawlen(s.t))
      assert.are.equal(3, core.rawlen("abc"))
      assert.is_true(core.rawequal(s.t, s.t))
      assert.is_false(core.rawequal(s.t, s.e))
      assert.is_true(core.next({ 1 }) == 1)
      assert.has_error(function() core.next(s.t, "nope") end,
                       "invalid key to 'next'")
    end)

    it("core.compat installs the functions into an environment", function()
      local env = setmetatable({}, { __index = _G })
      core.compat(env)
      local st = new({ a = { 1, 2 } })
      local chunk = load([[
        local s = ...
        local n = 0
        for k, v in pairs(s) do n = n + 1 end
        return type(s.a), next(s) ~= nil, n, #s.a
      ]], "compat", "t", env)
      local ty, nonempty, n, len = chunk(st.state)
      assert.are.equal("table", ty)
      assert.is_true(nonempty)
      assert.are.equal(1, n)
      assert.are.equal(2, len)
      assert.are_not.equal(table, env.table)
      assert.are.equal(table.pack, env.table.pack)
    end)
  end)

  describe("table library", function()
    local libs = { stock = table, core = core.table }
    for name, T in pairs(libs) do
      it("insert / remove at both ends and in the middle (" .. name .. ")",
         function()
        local st = new({ l = { 1, 2, 3 } })
        write(st, function(s)
          T.insert(s.l, 4)
          T.insert(s.l, 1, 0)
          T.insert(s.l, 3, 1.5)
          assert.are.equal(4, T.remove(s.l))
          assert.are.equal(0, T.remove(s.l, 1))
          T.insert(s.l, { x = 1 })
        end)
        assert.are.same({ 1, 1.5, 2, 3, { x = 1 } }, core.copy(st.state.l))
        write(st, function(s)
          local r = T.remove(s.l)
          -- core.table.remove returns a removed table as a plain copy; the
          -- stock one returns the proxy of a path that no longer exists.
          if name == "core" then assert.are.same({ x = 1 }, r) end
          assert.are.equal(1.5, T.remove(s.l, 2))
        end)
        assert.are.same({ 1, 2, 3 }, core.copy(st.state.l))
        assert.has_error(function()
          write(st, function(s) T.insert(s.l, 9, "x") end)
        end, "bad argument #2 to 'insert' (position out of bounds)")
      end)

      it("concat / unpack (" .. name .. ")", function()
        local st = new({ l = { "a", 1, 2.5, "b" }, n = { 1, {} } })
        assert.are.equal("a,1,2.5,b", T.concat(st.state.l, ","))
        assert.are.equal("1-2.5", T.concat(st.state.l, "-", 2, 3))
        local a, b, c, d = T.unpack(st.state.l)
        assert.are.same({ "a", 1, 2.5, "b" }, { a, b, c, d })
        assert.are.same({ 1, 2.5 }, { T.unpack(st.state.l, 2, 3) })
        -- the stock concat sees a userdata; core.table.concat a table
        assert.has_error(function() T.concat(st.state.n) end,
                         ("invalid value (%s) at index 2 in table for "
                          .. "'concat'"):format(name == "core" and "table"
                                                or "userdata"))
      end)

      it("sort scalars, with and without a comparator (" .. name .. ")",
         function()
        local st = new({ l = { 5, 3, 9, 1, 7 } })
        write(st, function(s) T.sort(s.l) end)
        assert.are.same({ 1, 3, 5, 7, 9 }, core.copy(st.state.l))
        write(st, function(s) T.sort(s.l, function(x, y) return x > y end) end)
        assert.are.same({ 9, 7, 5, 3, 1 }, core.copy(st.state.l))
      end)

      it("move within and between proxies (" .. name .. ")", function()
        local st = new({ a = { 1, 2, 3, { z = 1 } }, b = {} })
        write(st, function(s)
          T.move(s.a, 1, 4, 1, s.b)
          T.move(s.a, 1, 3, 2)
        end)
        assert.are.same({ 1, 1, 2, 3 }, core.copy(st.state.a))
        assert.are.same({ 1, 2, 3, { z = 1 } }, core.copy(st.state.b))
      end)
    end

    it("core.table.sort moves table elements, not live views", function()
      local st = new({ l = { { n = 3 }, { n = 1 }, { n = 2 } } })
      write(st, function(s)
        core.table.sort(s.l, function(x, y) return x.n < y.n end)
      end)
      assert.are.same({ { n = 1 }, { n = 2 }, { n = 3 } },
                      core.copy(st.state.l))
    end)

    it("core.table falls back to the stock functions on plain tables",
       function()
      local t = { 3, 1, 2 }
      core.table.insert(t, 4)
      core.table.sort(t)
      assert.are.same({ 1, 2, 3, 4 }, t)
      assert.are.equal(4, core.table.remove(t))
      assert.are.equal("1 2 3", core.table.concat(t, " "))
      assert.are.same({ 1, 2, 3 }, { core.table.unpack(t) })
    end)
  end)

  describe("tostring and paths", function()
    it("names the path", function()
      local st = new({ users = { [42] = { name = "x" } }, ["a b"] = {},
                       [true] = {}, ["end"] = {} })
      local s = st.state
      assert.are.equal("ved.proxy: state", tostring(s))
      assert.are.equal("ved.proxy: state.users", tostring(s.users))
      assert.are.equal("ved.proxy: state.users[42]", tostring(s.users[42]))
      assert.are.equal('ved.proxy: state["a b"]', tostring(s["a b"]))
      assert.are.equal("ved.proxy: state[true]", tostring(s[true]))
      assert.are.equal('ved.proxy: state["end"]', tostring(s["end"]))
      local named = new({ sub = {} }, "counter")
      assert.are.equal("ved.proxy: counter.sub", tostring(named.state.sub))
    end)
  end)

  describe("value semantics", function()
    it("assigning a plain table stores a copy", function()
      local st = new({})
      local src = { a = { b = 1 }, list = { 1, 2 } }
      write(st, function(s) s.t = src end)
      src.a.b = 2
      src.list[3] = 3
      src.new = true
      assert.are.same({ a = { b = 1 }, list = { 1, 2 } },
                      core.copy(st.state.t))
    end)

    it("a table reachable twice without a cycle is copied twice", function()
      local st = new({})
      local shared = { v = 1 }
      write(st, function(s)
        s.t = { x = shared, y = shared }
        s.t.x.v = 2
      end)
      assert.are.equal(2, st.state.t.x.v)
      assert.are.equal(1, st.state.t.y.v)
    end)

    it("assigning a state subtable stores a copy", function()
      local st = new({ a = { v = 1, deep = { w = 1 } } })
      write(st, function(s)
        s.b = s.a
        s.a.v = 2
        s.a.deep.w = 2
      end)
      assert.are.equal(1, st.state.b.v)
      assert.are.equal(1, st.state.b.deep.w)
      assert.is_false(rawequal(st.state.a, st.state.b))
      write(st, function(s) s.b.deep.w = 3 end)
      assert.are.equal(2, st.state.a.deep.w)
      -- a subtable stored into itself
      write(st, function(s) s.a.self = s.a end)
      assert.are.equal(2, st.state.a.self.v)
      assert.is_nil(st.state.a.self.self)
    end)

    it("copies subtables of another state", function()
      local other = new({ t = { 1, 2, { 3 } } }, "other")
      local st = new({})
      write(st, function(s) s.t = other.state.t end)
      write(other, function(o) o.t[3][1] = 30 end)
      assert.are.same({ 1, 2, { 3 } }, core.copy(st.state.t))
      local st2 = new(other.state.t)
      assert.are.same({ 1, 2, { 30 } }, core.copy(st2.state))
    end)

    it("core.copy gives plain deep copies", function()
      local st = new({ a = { 1, { 2 } }, s = "x" })
      local c = core.copy(st.state)
      assert.are.equal("table", type(c))
      assert.are.equal("table", type(c.a[2]))
      assert.are.same({ a = { 1, { 2 } }, s = "x" }, c)
      assert.are.equal(5, core.copy(5))
      assert.are.same({ k = { 1 } }, core.copy({ k = { 1 } }))
    end)
  end)

  describe("deep values", function()
    local function chain(levels)
      local top = {}
      local cur = top
      for _ = 1, levels do
        cur.next = {}
        cur = cur.next
      end
      cur.leaf = true
      return top
    end

    it("stores, reads and copies deeply nested tables", function()
      local st = new({})
      write(st, function(s) s.d = chain(5000) end)
      local c, n = core.copy(st.state.d), 0
      while c.next do
        c, n = c.next, n + 1
      end
      assert.are.equal(5000, n)
      assert.is_true(c.leaf)
      local p = st.state.d
      for _ = 1, 100 do p = p.next end
      assert.is_true(core.isproxy(p))
    end)

    it("rejects tables nested deeper than 20000 levels", function()
      local st = new({})
      st:begin()
      local ok, err = pcall(function() st.state.d = chain(20001) end)
      st:rollback()
      assert.is_false(ok)
      assert.are.equal("cannot store a table nested deeper than 20000 "
        .. "levels at state.d.next.next.next.next.next.next.next.next..."
        .. ".next.next.next.next.next.next.next.next",
        (err:gsub("^[^:]*:%d+: ", "")))
      assert.is_nil(st.state.d)
    end)
  end)

  describe("live view", function()
    it("a held proxy sees later writes to its path", function()
      local st = new({ users = { bob = { n = 1 } } })
      local bob = st.state.users.bob
      write(st, function(s) s.users.bob.n = 2 end)
      assert.are.equal(2, bob.n)
      write(st, function(s) s.users.bob = { n = 3, fresh = true } end)
      assert.are.equal(3, bob.n)
      assert.is_true(bob.fresh)
      write(st, function(s) s.users = { bob = { n = 4 } } end)
      assert.are.equal(4, bob.n)
    end)

    it("a held proxy whose path is no longer a table raises", function()
      local st = new({ users = { bob = { n = 1 } } })
      local bob = st.state.users.bob
      write(st, function(s) s.users.bob = "gone" end)
      assert.has_error(function() return bob.n end,
                       "state.users.bob is no longer a table")
      write(st, function(s) s.users = nil end)
      assert.has_error(function() return #bob end,
                       "state.users is no longer a table")
      write(st, function(s) s.users = { bob = {} } end)
      assert.is_nil(bob.n)
    end)
  end)

  -- Repeated reads with short string keys are answered from the proxy's
  -- read cache (bindings/proxy.c READ CACHE). Each case reads a key twice
  -- (fills, then hits the cache) before the change it checks.
  describe("read cache", function()
    local function twice(t, k)
      local a = t[k]
      local b = t[k]
      assert(rawequal(a, b) or (a ~= a and b ~= b), "two reads differ")
      return a
    end

    it("a read after a write in the same transaction sees the write",
       function()
      local st = new({ n = 1 })
      local s = st.state
      st:begin()
      for _, v in ipairs({ 2, 2.0, 2.5, true, false, "two", 7, 0 / 0 }) do
        twice(s, "n")
        s.n = v
        local got = twice(s, "n")
        if v ~= v then
          assert.is_true(got ~= got)
        else
          assert.are.equal(v, got)
          assert.are.equal(math.type(v), math.type(got))
        end
      end
      twice(s, "n")
      s.n = { x = 1 }
      assert.are.equal(1, twice(s, "n").x)
      s.n = 3
      assert.are.equal(3, twice(s, "n"))
      s.n = nil
      assert.is_nil(twice(s, "n"))
      s.n = "back"
      assert.are.equal("back", twice(s, "n"))
      st:commit()
      assert.are.equal("back", twice(s, "n"))
    end)

    it("a write by another key spelling of the same string invalidates",
       function()
      local st = new({})
      local s = st.state
      local long1 = string.rep("k", 50)
      local long2 = string.rep("k", 49) .. "k" -- same bytes, maybe a new string
      local short1 = "ab" .. tostring(12)
      st:begin()
      s[long1], s[short1] = 1, 1
      assert.are.equal(1, twice(s, long1))
      assert.are.equal(1, twice(s, short1))
      s[long2] = 2
      s["ab12"] = 2
      assert.are.equal(2, twice(s, long1))
      assert.are.equal(2, twice(s, short1))
      st:commit()
    end)

    it("rollback, commit and snapshots show the right version", function()
      local st = new({ n = 1, t = { x = 1 } })
      local s = st.state
      local t = s.t
      assert.are.equal(1, twice(s, "n"))
      assert.are.equal(1, twice(t, "x"))
      local snap = st:snapshot()
      assert.are.equal(1, twice(snap, "n"))
      st:begin()
      s.n, t.x = 2, 2
      assert.are.equal(2, twice(s, "n"))
      assert.are.equal(2, twice(t, "x"))
      assert.are.equal(1, twice(snap, "n"))
      st:rollback()
      assert.are.equal(1, twice(s, "n"))
      assert.are.equal(1, twice(t, "x"))
      st:begin()
      s.n = 3
      st:commit()
      assert.are.equal(3, twice(s, "n"))
      assert.are.equal(1, twice(snap, "n"))
      -- rolled back after a read inside the transaction only
      st:begin()
      s.n = 4
      assert.are.equal(4, twice(s, "n"))
      st:rollback()
      assert.are.equal(3, twice(s, "n"))
    end)

    it("a cached child proxy follows its path", function()
      local st = new({ a = { v = 1 }, b = { v = 2 } })
      local s = st.state
      local a = twice(s, "a")
      assert.are.equal(1, twice(a, "v"))
      st:begin()
      s.a = 5 -- the child's path holds a scalar now
      assert.are.equal(5, twice(s, "a"))
      assert.has_error(function() return a.v end,
                       "state.a is no longer a table")
      s.a = { v = 3 }
      assert.are.equal(a, twice(s, "a")) -- same path, same proxy
      assert.are.equal(3, twice(a, "v"))
      s.a = s.b -- a copy of b
      assert.are.equal(2, twice(s, "a").v)
      s.b.v = 20
      assert.are.equal(2, twice(s, "a").v)
      assert.are.equal(20, twice(s, "b").v)
      s.a.v = 30 -- through the cached child: clone under the transaction
      assert.are.equal(30, twice(a, "v"))
      st:rollback()
      assert.are.equal(a, twice(s, "a"))
      assert.are.equal(1, twice(a, "v"))
      st:begin()
      s.a = nil
      assert.is_nil(twice(s, "a"))
      st:commit()
      assert.is_nil(twice(s, "a"))
    end)

    it("a child cached below a replaced table is not shown", function()
      local st = new({ p = { c = { v = 1 } } })
      local s = st.state
      local pc = twice(s, "p")
      assert.are.equal(1, twice(pc, "c").v)
      st:begin()
      s.p = { c = 1 } -- replaced from above: pc's slot for c is stale
      assert.are.equal(1, twice(pc, "c"))
      st:rollback()
      assert.are.equal(1, twice(pc, "c").v)
      st:begin()
      s.z = { w = 1 }
      assert.are.equal(1, twice(s, "z").w)
      st:rollback()
      assert.is_nil(twice(s, "z"))
    end)

    it("a child proxy resolved inside the transaction sees its table go",
       function()
      local st = new({ a = { v = 1 }, b = { v = 2 } })
      local s = st.state
      st:begin()
      s.x = 1 -- the root is transient from here
      local a, b = s.a, s.b
      assert.are.equal(1, twice(a, "v"))
      assert.are.equal(2, twice(b, "v"))
      s.a = 5 -- a scalar over a table that a live proxy holds
      assert.has_error(function() return a.v end,
                       "state.a is no longer a table")
      s.b = nil
      assert.has_error(function() return b.v end,
                       "state.b is no longer a table")
      st:rollback()
      assert.are.equal(1, a.v)
      assert.are.equal(2, b.v)
    end)

    it("table functions, pairs and failed writes keep reads right",
       function()
      local st = new({ list = { 1, 2, 3 }, n = 1, name = "x" })
      local s = st.state
      local list = s.list
      twice(s, "n")
      twice(s, "name")
      st:begin()
      core.table.insert(list, 1, 0)
      table.insert(list, 4)
      core.table.sort(list, function(x, y) return x > y end)
      core.table.remove(list)
      assert.are.same({ 4, 3, 2, 1 }, core.copy(list))
      for k, v in pairs(s) do
        if k == "n" then
          s.n = v + 1
          assert.are.equal(v + 1, twice(s, "n"))
        end
      end
      assert.has_error(function() s.n = print end)
      assert.are.equal(2, twice(s, "n"))
      assert.are.equal("x", twice(s, "name"))
      st:commit()
      assert.are.equal(2, twice(s, "n"))
    end)

    it("many keys through a few slots", function()
      local st = new({})
      local s = st.state
      st:begin()
      for i = 1, 300 do s["key" .. i] = i end
      for round = 1, 3 do
        for i = 1, 300 do
          assert.are.equal(i + round - 1, twice(s, "key" .. i))
          s["key" .. i] = i + round
        end
        collectgarbage()
      end
      st:commit()
    end)

    it("the guard still applies to cached reads", function()
      local st, other = new({ v = 1 }, "mine"), new({}, "other")
      local s = st.state
      local ok, err = pcall(function()
        core._guard(st)
        assert.are.equal(1, twice(s, "v"))
        core._guard(other)
        local okr, e = pcall(function() return s.v end)
        assert.is_false(okr)
        assert.matches("mine belongs to domain mine", e)
        core._guard(nil, true)
        okr, e = pcall(function() return s.v end)
        assert.is_false(okr)
        assert.matches("only usable inside a handler", e)
      end)
      core._guard(nil, false)
      assert(ok, err)
    end)
  end)

  -- The write cache (proxy.c WRITE CACHE) stores a scalar straight into
  -- the node's value slot that an earlier in-place write of the same key
  -- found. Each case makes that slot move, be shared or be pinned, then
  -- writes again, and checks the trie itself (core.copy, snapshots, pairs:
  -- none of them go through the proxy's caches), not just the proxy.
  describe("write cache", function()
    -- Two writes of s[k]: the second one replaces in place and arms the
    -- cache for k.
    local function arm(s, k, v)
      s[k] = v - 1
      s[k] = v
    end

    it("a write after other keys are added or removed lands in the trie",
       function()
      local st = new({ n = 0, gone = 1 })
      local s = st.state
      st:begin()
      arm(s, "n", 2)
      for i = 1, 200 do s["k" .. i] = i end -- nodes split and move
      s.n = 3
      assert.are.equal(3, core.copy(s).n)
      s.gone = nil -- a delete moves nodes too
      for i = 1, 200, 2 do s["k" .. i] = nil end
      s.n = 4
      assert.are.equal(4, core.copy(s).n)
      s.n = 4.5
      s.n = true
      assert.are.equal(true, core.copy(s).n)
      st:commit()
      assert.are.equal(true, core.copy(s).n)
      assert.are.equal(true, s.n)
      assert.are.equal(200, core.copy(s).k200)
      assert.is_nil(core.copy(s).k199)
    end)

    it("every scalar type in and out of the slot", function()
      local st = new({ n = 0 })
      local s = st.state
      st:begin()
      arm(s, "n", 2)
      for _, v in ipairs({ 3, 2.0, 2.5, true, false, 7, 0 }) do
        s.n = v
        local got = core.copy(s).n
        assert.are.equal(v, got)
        assert.are.equal(math.type(v), math.type(got))
        assert.are.equal(v, s.n)
      end
      s.n = "str" -- a string is not stored by the cache
      s.n = 5
      assert.are.equal(5, core.copy(s).n)
      s.n = { x = 1 } -- nor a table
      s.n = 6
      assert.are.equal(6, core.copy(s).n)
      s.n = nil
      s.n = 7
      s.n = 8
      assert.are.equal(8, core.copy(s).n)
      st:commit()
      assert.are.equal(8, core.copy(s).n)
    end)

    it("a snapshot or a pairs loop taken after arming keeps its version",
       function()
      local st = new({ n = 0, m = 0 })
      local s = st.state
      st:begin()
      arm(s, "n", 2)
      local snap = st:snapshot() -- pins the transient root
      s.n = 3
      assert.are.equal(2, snap.n)
      assert.are.equal(2, core.copy(snap).n)
      assert.are.equal(3, core.copy(s).n)
      arm(s, "n", 5)
      local seen = {}
      local f, x, k0 = pairs(s) -- pins the node it walks
      s.n = 6
      for k, v in f, x, k0 do seen[k] = v end
      assert.are.equal(5, seen.n)
      assert.are.equal(6, core.copy(s).n)
      assert.are.equal(6, s.n)
      st:commit()
      assert.are.equal(2, snap.n)
      assert.are.equal(6, core.copy(s).n)
    end)

    it("a copy stored elsewhere is not written through the slot", function()
      local st = new({ t = { n = 0 } })
      local s = st.state
      st:begin()
      local t = s.t
      arm(t, "n", 2)
      s.c = t -- a deep copy of t
      t.n = 3
      assert.are.equal(2, s.c.n)
      assert.are.equal(2, core.copy(s).c.n)
      assert.are.equal(3, core.copy(s).t.n)
      local other = new({})
      other:begin()
      other.state.c = t
      t.n = 4
      assert.are.equal(3, core.copy(other.state).c.n)
      other:commit()
      st:commit()
      assert.are.equal(4, core.copy(s).t.n)
      assert.are.equal(2, core.copy(s).c.n)
    end)

    it("commit, rollback and a new transaction start afresh", function()
      local st = new({ n = 0 })
      local s = st.state
      st:begin()
      arm(s, "n", 2)
      st:commit()
      local snap = st:snapshot()
      st:begin()
      s.n = 3 -- the committed node is shared with the snapshot now
      assert.are.equal(2, snap.n)
      assert.are.equal(3, core.copy(s).n)
      arm(s, "n", 5)
      st:rollback()
      assert.are.equal(2, s.n)
      assert.are.equal(2, core.copy(s).n)
      st:begin()
      s.n = 6
      st:commit()
      assert.are.equal(6, core.copy(s).n)
      assert.are.equal(2, core.copy(snap).n)
    end)

    it("writes through a child proxy, table functions and a replaced " ..
       "table keep the slot right", function()
      local st = new({ n = 0, list = { 1, 2, 3, nil, 5 }, sub = { v = 1 } })
      local s = st.state
      local list, sub = s.list, s.sub
      st:begin()
      arm(s, "n", 2)
      sub.v = 2 -- clones sub into the root
      s.n = 3
      assert.are.equal(3, core.copy(s).n)
      arm(list, "x", 2) -- a string key in a list's hash part, beside 5
      core.table.insert(list, 4) -- 5 moves to the array: the hash part shrinks
      list.x = 2.5
      assert.are.equal(2.5, core.copy(list).x)
      core.table.insert(list, 1, 0)
      list.x = 3
      assert.are.equal(3, core.copy(list).x)
      core.table.remove(list, 1)
      core.table.sort(list, function(a, b) return a > b end)
      list.x = 4
      assert.are.equal(4, core.copy(list).x)
      list[7] = 7
      list[6] = 6 -- appends, and 7 moves over from the hash part
      list.x = 5
      assert.are.equal(5, core.copy(list).x)
      s.list = { x = 1 } -- the proxy's node is replaced from above
      list.x = 6
      assert.are.equal(6, core.copy(s).list.x)
      assert.are.same({ x = 6 }, core.copy(list))
      st:commit()
      assert.are.same({ x = 6 }, core.copy(s.list))
      assert.are.equal(3, core.copy(s).n)
    end)

    it("keys in rotation share the slots and each lands in the trie",
       function()
      local st = new({})
      local s = st.state
      st:begin()
      for i = 1, 64 do s["key" .. i] = 0 end
      for round = 1, 4 do
        for i = 1, 64 do s["key" .. i] = i * round end
        for i = 64, 1, -1 do s["key" .. i] = i * round + 1 end
      end
      local c = core.copy(s)
      for i = 1, 64 do
        assert.are.equal(i * 4 + 1, c["key" .. i])
        assert.are.equal(i * 4 + 1, s["key" .. i])
      end
      st:commit()
    end)
  end)

  -- # answers from the length cached in the proxy while the epoch holds.
  describe("cached length", function()
    it("# follows every write that changes the border", function()
      local st = new({ list = { 1, 2, 3 } })
      local s = st.state
      local list = s.list
      assert.are.equal(3, #list)
      st:begin()
      list[4] = 4
      assert.are.equal(4, #list)
      list[#list + 1] = 5
      assert.are.equal(5, #list)
      list[5] = nil
      assert.are.equal(4, #list)
      list[6] = 6 -- beyond the border: the hash part
      assert.are.equal(4, #list)
      list[5] = 5 -- joins 6
      assert.are.equal(6, #list)
      list.x = 1
      assert.are.equal(6, #list)
      core.table.insert(list, 7)
      assert.are.equal(7, #list)
      core.table.insert(list, 1, 0)
      assert.are.equal(8, #list)
      core.table.remove(list)
      core.table.remove(list, 1)
      assert.are.equal(6, #list)
      core.table.sort(list)
      assert.are.equal(6, #list)
      s.list = { 1 } -- replaced from above
      assert.are.equal(1, #list)
      s.list[2] = 2 -- through the same proxy, found again
      assert.are.equal(2, #list)
      st:rollback()
      assert.are.equal(3, #list)
      st:begin()
      list[4] = 4
      st:commit()
      assert.are.equal(4, #list)
      assert.are.equal(4, #core.copy(list))
    end)

    it("# of a snapshot and of a path that is no longer a table", function()
      local st = new({ list = { 1, 2 } })
      local s = st.state
      local list = s.list
      assert.are.equal(2, #list)
      local snap = st:snapshot()
      local slist = snap.list
      assert.are.equal(2, #slist)
      st:begin()
      list[3] = 3
      assert.are.equal(2, #slist)
      assert.are.equal(3, #list)
      s.list = 1
      assert.has_error(function() return #list end,
                       "state.list is no longer a table")
      st:commit()
      assert.are.equal(2, #slist)
    end)
  end)

  -- An integer read of a key whose child proxy is alive and current
  -- answers with that proxy without a trie lookup.
  describe("integer reads of live children", function()
    it("a child's path that changes is seen", function()
      local st = new({ users = { { n = 1 }, { n = 2 }, { n = 3 } } })
      local s = st.state
      local users = s.users
      local u1, u2, u3 = users[1], users[2], users[3]
      assert.are.equal(u1, users[1])
      assert.are.equal(u2, users[2.0])
      st:begin()
      users[1] = 5 -- a scalar over a live child
      assert.are.equal(5, users[1])
      users[1] = { n = 10 }
      assert.are.equal(u1, users[1]) -- same path, same proxy
      assert.are.equal(10, users[1].n)
      core.table.remove(users, 1) -- shifts 2 and 3 down
      assert.are.equal(2, users[1].n)
      assert.are.equal(u1, users[1])
      assert.are.equal(3, users[2].n)
      assert.is_nil(users[3])
      core.table.insert(users, 1, { n = 0 })
      assert.are.equal(0, users[1].n)
      assert.are.equal(3, users[3].n)
      core.table.remove(users) -- pops a table
      assert.is_nil(users[3])
      users[2] = nil
      assert.is_nil(users[2])
      st:rollback()
      assert.are.equal(1, users[1].n)
      assert.are.equal(u3, users[3])
      assert.are.equal(3, users[3].n)
      st:begin()
      s.users = { "a", { n = 9 } }
      assert.are.equal("a", users[1])
      assert.are.equal(9, users[2].n)
      st:commit()
      assert.are.equal("a", users[1])
      assert.are.equal(u2, users[2])
    end)

    it("scalars beside live children read right", function()
      local st = new({ t = { { n = 1 }, 2, 3 } })
      local s = st.state
      local t = s.t
      local kids = {}
      for i = 1, 70 do
        st:begin()
        t[i] = { n = i }
        st:commit()
        kids[i] = t[i] -- every kid_bits bit set
      end
      st:begin()
      for i = 1, 70, 2 do t[i] = i end
      for i = 1, 70 do
        if i % 2 == 1 then
          assert.are.equal(i, t[i])
        else
          assert.are.equal(kids[i], t[i])
          assert.are.equal(i, t[i].n)
        end
      end
      st:commit()
      assert.is_nil(t[71])
      assert.is_nil(t[0])
    end)
  end)

  describe("transactions", function()
    it("commit keeps and rollback undoes", function()
      local st = new({ n = 1, t = { x = 1 } })
      local t = st.state.t
      assert.is_false(st:in_tx())
      st:begin()
      assert.is_true(st:in_tx())
      st.state.n = 2
      t.x = 2
      st.state.t.y = { 1 }
      st:rollback()
      assert.is_false(st:in_tx())
      assert.are.equal(1, st.state.n)
      assert.are.same({ x = 1 }, core.copy(t))
      st:begin()
      st.state.n = 3
      t.x = 3
      st:commit()
      assert.are.equal(3, st.state.n)
      assert.are.equal(3, t.x)
      assert.has_error(function() st:commit() end,
                       "state: no transaction is open")
      st:begin()
      assert.has_error(function() st:begin() end,
                       "state: a transaction is already open")
      st:rollback()
    end)

    it("transact commits, or rolls back leaving no trace", function()
      local st = new({ n = 1, list = { 1, 2, 3 } })
      local ok = st:transact(function(s) s.n = s.n + 1 end)
      assert.is_true(ok)
      assert.are.equal(2, st.state.n)
      local before = core.copy(st.state)
      local ok2, err = st:transact(function(s)
        s.n = 100
        table.insert(s.list, 4)
        core.table.remove(s.list, 1)
        s.list[1] = { deep = true }
        s.extra = { 1, 2 }
        error("boom")
      end)
      assert.is_false(ok2)
      assert.matches("boom", err)
      assert.matches("traceback", err)
      assert.are.same(before, core.copy(st.state))
      assert.is_false(st:in_tx())
    end)

    it("an old snapshot stays readable after commits", function()
      local st = new({ n = 1, t = { 1, 2 } })
      local snap = st:snapshot()
      write(st, function(s)
        s.n = 2
        s.t[1] = 10
        s.t = nil
      end)
      st:begin()
      st.state.n = 3
      local mid = st:snapshot()  -- taken inside a transaction
      st.state.n = 4
      st:commit()
      assert.are.equal(1, snap.n)
      assert.are.same({ 1, 2 }, core.copy(snap.t))
      assert.are.equal(3, mid.n)
      assert.are.equal(4, st.state.n)
      assert.is_nil(st.state.t)
      assert.are.equal("ved.proxy: state.t", tostring(snap.t))
    end)

    it("a snapshot is read-only", function()
      local st = new({ t = {} })
      local snap = st:snapshot()
      st:begin()
      assert.has_error(function() snap.x = 1 end,
                       "cannot write state.x: read-only snapshot")
      assert.has_error(function() snap.t.y = 1 end,
                       "cannot write state.t.y: read-only snapshot")
      assert.has_error(function() core.table.insert(snap.t, 1) end,
                       "cannot write state.t: read-only snapshot")
      st:rollback()
    end)
  end)

  describe("errors", function()
    local st
    before_each(function()
      st = new({ a = { b = {} } })
      st:begin()
    end)
    after_each(function() st:rollback() end)

    it("rejects functions, userdata and threads", function()
      local s = st.state
      assert.has_error(function() s.f = print end,
                       "cannot store a function at state.f")
      assert.has_error(function() s.a.u = io.stdout end,
                       "cannot store a userdata at state.a.u")
      assert.has_error(function() s.a.b[3] = coroutine.create(print) end,
                       "cannot store a thread at state.a.b[3]")
      assert.has_error(function() s.x = { y = { 1, 2, print } } end,
                       "cannot store a function at state.x.y[3]")
      assert.has_error(function() s.x = { st } end,
                       "cannot store a userdata at state.x[1]")
      assert.is_nil(s.x)
      assert.has_error(function() core.table.insert(s.a.b, print) end,
                       "cannot store a function at state.a.b[1]")
    end)

    it("rejects nil and NaN keys", function()
      local s = st.state
      assert.has_error(function() s[nil] = 1 end, "state: invalid key (nil)")
      assert.has_error(function() s.a[0 / 0] = 1 end,
                       "state.a: invalid key (NaN)")
      assert.has_error(function() s.a[{}] = 1 end,
                       "state.a: invalid key (table)")
      assert.has_error(function() s.x = { [print] = 1 } end,
                       "state.x: invalid key (function)")
    end)

    it("rejects cyclic tables", function()
      local t = { inner = {} }
      t.inner.back = t
      assert.has_error(function() st.state.c = t end,
                       "cannot store a cyclic table at state.c.inner.back")
      local u = {}
      u[1] = u
      assert.has_error(function() st.state.a.c = u end,
                       "cannot store a cyclic table at state.a.c[1]")
      assert.is_nil(st.state.c)
    end)

    it("rejects writes outside a transaction", function()
      st:rollback()
      assert.has_error(function() st.state.a.b.x = 1 end,
                       "cannot write state.a.b.x: outside a transaction")
      assert.has_error(function() table.insert(st.state.a.b, 1) end,
                       "cannot write state.a.b[1]: outside a transaction")
      assert.has_error(function() core.table.insert(st.state.a.b, 1) end,
                       "cannot write state.a.b: outside a transaction")
      st:begin()
    end)

    it("guards proxies of other domains and outside handlers", function()
      local other = new({ v = 1 }, "other")
      local s, o = st.state, other.state
      local function msg(fn) -- the error of fn without "file:line: "
        local okf, e = pcall(fn)
        assert.is_false(okf)
        return (e:gsub("^[^:]*:%d+: ", ""))
      end
      local ok, err = pcall(function()
        core._guard(st)
        assert.are.same({}, core.copy(s.a.b))
        local e1 = msg(function() return o.v end)
        local e2 = msg(function() s.x = o end)
        core._guard(nil, true)
        local e3 = msg(function() return s.a end)
        local e4 = msg(function() return #o end)
        core._guard(other, true)
        local e5 = msg(function() for _ in pairs(s) do end end)
        assert.are.equal(1, o.v)
        core._guard(nil, false)
        assert.are.equal("other belongs to domain other; use ctx:send to "
                         .. "reach it", e1)
        assert.are.equal("other belongs to domain other; use ctx:send to "
                         .. "reach it", e2)
        assert.are.equal("state: state is only usable inside a handler of "
                         .. "its domain", e3)
        assert.are.equal("other: state is only usable inside a handler of "
                         .. "its domain", e4)
        assert.are.equal("state belongs to domain state; use ctx:send to "
                         .. "reach it", e5)
      end)
      core._guard(nil, false)
      assert(ok, err)
      assert.are.equal(1, o.v)
    end)
  end)

  describe("memory", function()
    it("frees every node once states and proxies are collected", function()
      collectgarbage()
      collectgarbage()
      local base = core.stats()
      do
        local st = new({ a = { 1, 2, 3 }, s = string.rep("y", 100) })
        local held = st.state.a
        for round = 1, 20 do
          st:begin()
          st.state["k" .. round] = { round, { deep = round } }
          table.insert(st.state.a, round)
          st.state.n = round
          st.state.n = round + 1 -- the write cache is armed
          st.state.n = "a string in place of " .. round
          st.state.n = round + 2 -- releases the string
          for _, v in pairs(st.state) do local _ = v end
          if round % 3 == 0 then st:rollback() else st:commit() end
        end
        local snap = st:snapshot()
        assert.are.equal(3 + 14, #held) -- 6 of 20 rounds rolled back
        assert.is_not_nil(snap.k1)
      end
      collectgarbage()
      collectgarbage()
      local now = core.stats()
      assert.are.equal(base.nodes, now.nodes)
      assert.are.equal(base.blocks, now.blocks)
      assert.are.equal(base.bytes, now.bytes)
    end)
  end)
end)
