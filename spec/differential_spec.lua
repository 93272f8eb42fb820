-- differential_spec.lua: random operations applied both to a state (through
-- proxies, inside random transactions, ~10% of which raise and must roll
-- back) and to a plain Lua model that only takes committed transactions.
-- After every transaction the whole state must equal the model.
--
-- VH_SEED=<n> replays a run; VH_DIFF_OPS=<n> changes the number of ops.
-- Integer keys stay within 1..#t+1 and deletes of integer keys go through
-- table.remove, so every table's array part is a proper sequence and `#` is
-- well defined for both sides.
local core = require "vedcore"

-- busted resolves globals through a slow environment: bind them locally.
local pairs, ipairs, type, tostring, error, pcall, rawequal =
  pairs, ipairs, type, tostring, error, pcall, rawequal
local table = { sort = table.sort, insert = table.insert,
                remove = table.remove }
local math = { random = math.random, type = math.type,
               randomseed = math.randomseed }
local string = string
local core_type, core_next, core_isproxy = core.type, core.next, core.isproxy

local SEED = tonumber(os.getenv("VH_SEED")) or os.time()
local TOTAL_OPS = tonumber(os.getenv("VH_DIFF_OPS")) or 120000
local OPS_PER_TX = 40
local MAX_ENTRIES = 400 -- keep the state small so comparisons stay cheap

local rnd = math.random

-- busted's assert (luassert) is far slower than a plain check in hot loops.
local function ensure(cond, msg)
  if not cond then error(msg, 2) end
end

-- A total order on keys so that choices do not depend on hash order.
local function key_lt(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "boolean" then return (a and 1 or 0) < (b and 1 or 0) end
  return a < b
end

local function sorted_keys(t, iter)
  local ks = {}
  for k in (iter or pairs)(t) do ks[#ks + 1] = k end
  table.sort(ks, key_lt)
  return ks
end

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deepcopy(x) end
  return c
end

local function count_entries(t)
  local n = 0
  for _, v in pairs(t) do
    n = n + 1
    if type(v) == "table" then n = n + count_entries(v) end
  end
  return n
end

local STR_KEYS = { "a", "b", "c", "name", "x y", "", "\0k", "long_key_name" }
local STRINGS = { "", "s", "hello", "a\0b", string.rep("z", 100) }

local function rand_scalar()
  local r = rnd(6)
  if r == 1 then return rnd(-1000, 1000) end
  if r == 2 then return rnd() * 100 end
  if r == 3 then return (rnd(10)) + 0.0 end -- integral float: subtype kept
  if r == 4 then return rnd(2) == 1 end
  return STRINGS[rnd(#STRINGS)]
end

-- A non-integer key (integer keys are handled by the sequence ops).
local function rand_key()
  local r = rnd(10)
  if r <= 7 then return STR_KEYS[rnd(#STR_KEYS)] end
  if r == 8 then return rnd(2) == 1 end
  if r == 9 then return rnd(-3, 0) end -- 0 and negatives: never borders
  return rnd(1, 4) + 0.5
end

local function rand_plain(depth)
  local t = {}
  for i = 1, rnd(0, 4) do t[i] = rand_scalar() end
  for _ = 1, rnd(0, 3) do
    local k = rand_key()
    if depth < 3 and rnd(3) == 1 then
      t[k] = rand_plain(depth + 1)
    else
      t[k] = rand_scalar()
    end
  end
  return t
end

-- Deep comparison of a state table (proxy) with a model table.
local function check_equal(p, m, path, seed)
  local where = function(msg)
    return ("seed %d: %s at %s"):format(seed, msg, path)
  end
  if core_type(p) ~= "table" then error(where("not a table"), 0) end
  local pk, mk = sorted_keys(p), sorted_keys(m)
  if #pk ~= #mk then
    error(where(("%d keys in state, %d in model"):format(#pk, #mk)), 0)
  end
  for i, k in ipairs(mk) do
    if pk[i] ~= k or math.type(pk[i]) ~= math.type(k) then
      error(where("key " .. tostring(k) .. " differs"), 0)
    end
    local pv, mv = p[k], m[k]
    if type(mv) == "table" then
      check_equal(pv, mv, path .. "[" .. tostring(k) .. "]", seed)
    elseif pv ~= mv or math.type(pv) ~= math.type(mv) then
      error(where(("value at %s: state %s (%s), model %s (%s)"):format(
        tostring(k), tostring(pv), math.type(pv) or type(pv), tostring(mv),
        math.type(mv) or type(mv))), 0)
    end
  end
  if #p ~= #m then
    error(where(("#: state %d, model %d"):format(#p, #m)), 0)
  end
  -- next must agree with pairs
  local n, k = 0, core_next(p)
  while k ~= nil do
    n = n + 1
    k = core_next(p, k)
  end
  if n ~= #mk then error(where("next walked " .. n .. " keys"), 0) end
end

-- A random path of tables: list of keys from the root (in the model).
local function rand_path(m)
  local path = {}
  while rnd(3) ~= 1 do
    local subs = {}
    for _, k in ipairs(sorted_keys(m)) do
      if type(m[k]) == "table" then subs[#subs + 1] = k end
    end
    if #subs == 0 then break end
    local k = subs[rnd(#subs)]
    path[#path + 1] = k
    m = m[k]
  end
  return path
end

local function walk(t, path)
  for _, k in ipairs(path) do t = t[k] end
  return t
end

-- One random operation on state root s and working model w. Returns true
-- when the op may have grown the state a lot (size must be recounted).
local function random_op(s, w, size)
  local path = rand_path(w)
  local m, p = walk(w, path), walk(s, path)
  local r = rnd(100)
  if r <= 25 and size < MAX_ENTRIES then -- set a scalar
    local k, v = rand_key(), rand_scalar()
    m[k] = v
    p[k] = v
  elseif r <= 35 then -- delete a key (maybe absent)
    local k = rand_key()
    m[k] = nil
    p[k] = nil
  elseif r <= 45 and size < MAX_ENTRIES then -- set a nested plain table
    local k, v = rand_key(), rand_plain(1)
    m[k] = deepcopy(v)
    p[k] = v
    v[1] = "changed after store" -- copy semantics: must not show
  elseif r <= 60 and size < MAX_ENTRIES then -- insert at a random position
    local v = rnd(4) == 1 and rand_plain(2) or rand_scalar()
    local pos = rnd(1, #m + 1)
    table.insert(m, pos, deepcopy(v))
    if rnd(2) == 1 then
      core.table.insert(p, pos, v)
    else
      table.insert(p, pos, v)
    end
  elseif r <= 72 then -- remove at a random position
    if #m > 0 then
      local pos = rnd(1, #m)
      local mv = table.remove(m, pos)
      local pv = core.table.remove(p, pos)
      if type(mv) ~= "table" then ensure(pv == mv, "removed value differs") end
    end
  elseif r <= 78 and size < MAX_ENTRIES then -- append / overwrite by index
    local i = rnd(1, #m + 1)
    local v = rand_scalar()
    m[i] = v
    p[i] = v
  elseif r <= 86 and size < MAX_ENTRIES then -- copy another subtree here
    local src = rand_path(w)
    local k = rand_key()
    local mv = deepcopy(walk(w, src))
    local pv = walk(s, src)
    m[k] = mv
    p[k] = pv -- copy of the current version of src
    return true
  elseif r <= 93 then -- iterate and compare with the working model
    local seen = 0
    for k, v in pairs(p) do
      seen = seen + 1
      local mv = m[k]
      if type(mv) == "table" then
        ensure(core_isproxy(v), "table value is a proxy")
      else
        ensure(v == mv and math.type(v) == math.type(mv),
               "pairs value differs")
      end
      if rnd(4) == 1 and type(k) == "string" then
        local nv = rand_scalar()
        m[k] = nv -- writing during the loop is allowed
        p[k] = nv
      end
    end
    local n = 0
    for _ in pairs(m) do n = n + 1 end
    ensure(seen == n, "pairs count")
  elseif r <= 96 then -- length
    ensure(#p == #m, "length differs")
  else -- sort a sequence of distinct numbers (core.table.sort)
    local nums, seen = true, {}
    for i = 1, #m do
      local v = m[i]
      if type(v) ~= "number" or seen[v] then nums = false break end
      seen[v] = true -- 3 and 3.0 collide: their order would be arbitrary
    end
    if nums and #m > 1 then
      table.sort(m)
      core.table.sort(p)
    end
  end
end

-- Read one random key of a random table twice in the middle of a
-- transaction (the second read may come from the proxy's read cache) and
-- compare it with the working model.
local function check_read(s, w)
  local path = rand_path(w)
  local m, p = walk(w, path), walk(s, path)
  local k = rand_key()
  for _ = 1, 2 do
    local pv, mv = p[k], m[k]
    if type(mv) == "table" then
      ensure(core_isproxy(pv), "read: table value is not a proxy")
      ensure(#pv == #mv, "read: length of a subtable differs")
    else
      ensure(pv == mv and math.type(pv) == math.type(mv),
             "read: value at " .. tostring(k) .. " differs")
    end
  end
end

describe("differential: state vs plain table", function()
  it("agrees after every transaction (seed printed on failure)", function()
    math.randomseed(SEED)
    local model = {}
    local st = core.new_state(model, "state")
    local ops, txs, rolled = 0, 0, 0
    local ok, err = pcall(function()
      while ops < TOTAL_OPS do
        local n = rnd(1, OPS_PER_TX)
        local fail_at = rnd(10) == 1 and rnd(1, n) or nil
        local explicit = rnd(2) == 1
        local work = deepcopy(model)
        local size = count_entries(work)
        local function body(s)
          for i = 1, n do
            if i == fail_at then error("injected failure") end
            if random_op(s, work, size) or i % 8 == 0 then
              size = count_entries(work)
            end
            if rnd(2) == 1 then check_read(s, work) end
          end
        end
        if explicit then
          st:begin()
          local okb, e = pcall(body, st.state)
          if okb then
            st:commit()
            model = work
          else
            ensure(tostring(e):find("injected failure"), e)
            st:rollback()
            rolled = rolled + 1
          end
        else
          local okt, e = st:transact(body)
          if okt then
            model = work
          else
            ensure(tostring(e):find("injected failure"), e)
            rolled = rolled + 1
          end
        end
        ops = ops + n
        txs = txs + 1
        check_equal(st.state, model, "state", SEED)
        if txs % 50 == 0 then
          -- old snapshots keep the committed version
          local snap = st:snapshot()
          st:transact(function(s) s.a = "snap probe" end)
          check_equal(snap, model, "snapshot", SEED)
          model.a = "snap probe"
        end
      end
    end)
    if not ok then
      print(("\ndifferential_spec failed with VH_SEED=%d after %d ops"):format(
        SEED, ops))
      error(err, 0)
    end
    assert.is_true(ops >= TOTAL_OPS)
    assert.is_true(rolled > 0)
    check_equal(st.state, model, "state", SEED)
  end)
end)
