-- change_records_spec.lua - change records (persist/store/vh_chrec.h): a
-- version that changed few keys stores its changes ('C' seq), and a whole
-- diff of two adjacent versions (REPL diff(), `vedhost diff`, text and
-- --json, both directions) and the change feed (`vedhost changes`, text
-- and --json) read it instead of walking the two trees. Differential: a
-- random workload (nested tables, arrays with holes, deletes, a table
-- replaced by a scalar and back, subtables added and removed, big strings,
-- floats with -0.0, NaN and infinities, integer and float keys, several
-- domains, a reload adding a domain, a rollback, restarts) with retention
-- on; for every adjacent pair of versions the output with records must be
-- byte for byte the walk's (VEDHOST_TEST_CHANGE_RECORDS=0 walks). And the
-- writer never loads on the loop: a version that replaced a subtable
-- never read since a restart gets no record, and diffs stay right; so
-- does a slice over the key cap (VEDHOST_TEST_CHREC_KEYS).
local proc = require "support.proc"

local SEED = tonumber(os.getenv("VH_CHREC_SEED") or "") or 1515

local SCRIPT = [[
local ved = require "ved"
ved.domain "a" { state = {} }
ved.domain "b" { state = {} }
]]
local SCRIPT3 = SCRIPT .. 'ved.domain "c" { state = { made = { 1, 2 } } }\n'

local function vh(dir, env, ...)
  return proc.run({ ... }, { cwd = dir, env = env, timeout = 120 })
end

-- ---- the random workload, as REPL chunks ----

local rnd -- math.random after the seed

local function lit(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    if math.type(v) == "integer" then
      return v == math.mininteger and "math.mininteger" or tostring(v)
    end
    if v ~= v then return "(0/0)" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    if v == 0 and 1 / v < 0 then return "-0.0" end
    local f = string.format("%.17g", v)
    return f:find("[%.eni]") and f or f .. ".0"
  end
  if t == "table" then
    local parts = {}
    for k, x in pairs(v) do
      parts[#parts + 1] = "[" .. lit(k) .. "] = " .. lit(x)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

local KEYS = { "k1", "k2", "k3", "x y", 1, 2, 3, 2.5, -1, "t", "arr" }
local SCALARS = { 0, 1, -7, 42, math.maxinteger, 0.5, -0.0, 1e300, 1 / 3,
                  0 / 0, math.huge, -math.huge, 3.0, "s", "", 'q"uote\n',
                  "caf\195\169", true, false }

local function value(depth)
  local r = rnd(10)
  if r <= 6 or depth >= 3 then
    if rnd(12) == 1 then return { big = rnd(3) } end -- big string marker
    return SCALARS[rnd(#SCALARS)]
  end
  local t = {}
  if r <= 8 then
    for i = 1, rnd(5) do t[i] = value(depth + 1) end
  end
  for _ = 1, rnd(3) - 1 do t[KEYS[rnd(#KEYS)]] = value(depth + 1) end
  return t
end

local function vlit(v)
  if type(v) == "table" and v.big and #v == 0 and next(v, next(v)) == nil then
    return 'string.rep("big' .. v.big .. '", 1500)'
  end
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      parts[#parts + 1] = "[" .. lit(k) .. "] = " .. vlit(x)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return lit(v)
end

-- One statement on state s (a REPL proxy).
local function op()
  local k = lit(KEYS[rnd(#KEYS)])
  local r = rnd(12)
  if r <= 3 then return "s[" .. k .. "] = " .. vlit(value(0)) end
  if r == 4 then return "s[" .. k .. "] = nil" end
  if r == 5 then -- nested write, making the subtable if needed
    return "if type(s.t) ~= 'table' then s.t = {} end s.t[" .. k .. "] = "
           .. vlit(value(1))
  end
  if r == 6 then return "s.t = " .. lit(SCALARS[rnd(#SCALARS)]) end
  if r == 7 then return "s.t = {deep = {er = {" .. k .. "}}}" end
  if r == 8 then return "s.arr = {1, 2, 3, 4, 5, x = 1}" end
  if r == 9 then -- a hole in the array part
    return "if type(s.arr) == 'table' and #s.arr > 1 then s.arr[2] = nil end"
  end
  if r == 10 then
    return "if type(s.arr) == 'table' then s.arr[#s.arr + 1] = "
           .. vlit(value(2)) .. " end"
  end
  if r == 11 then return "s.t = nil" end
  return "s.n = (type(s.n) == 'number' and s.n or 0) + 1"
end

local function chunk(domains)
  local lines = {}
  for _ = 1, rnd(3) do
    local d = domains[rnd(#domains)]
    lines[#lines + 1] = "do local s = domains." .. d .. ".state " .. op()
                        .. " end"
  end
  return table.concat(lines, "\n")
end

-- ---- the run ----

local function start(dir, env, name)
  return proc.start_host(nil, {
    dir = dir, name = name or "s.lua", ready = "running",
    args = { "--no-watch", "--retain", "1h", "--data", "data" }, env = env })
end

local function repl(dir, code)
  local r = vh(dir, { NO_COLOR = "1" }, "repl", "--data", "data", "-e", code)
  assert.are.equal(0, r.code, code .. "\n" .. r.log .. r.out)
  return r.out
end

local function seqs_of(dir)
  local l = vh(dir, nil, "log", "--data", "data", "-n", "1000")
  assert.are.equal(0, l.code, l.log)
  local s = {}
  for seq in l.out:gmatch("\n%s*(%d+)%s") do table.insert(s, 1, seq) end
  return s
end

describe("change records", function()
  local dir, seqs, noload
  setup(function()
    math.randomseed(SEED)
    rnd = math.random
    dir = proc.tmpdir()
    proc.write(dir .. "/s.lua", SCRIPT)
    local p = start(dir)
    local doms = { "a", "b" }
    repl(dir, "domains.b.state.keep = {} for i = 1, 300 do "
              .. "domains.b.state.keep['n' .. i] = {i, tostring(i)} end")
    for i = 1, 36 do
      repl(dir, chunk(doms))
      if i == 10 then -- a reload adds domain c
        proc.write(dir .. "/s.lua", SCRIPT3)
        repl(dir, ":reload")
        doms = { "a", "b", "c" }
      elseif i == 18 then -- a rollback of a, through the control socket
        local s = seqs_of(dir)
        local r = vh(dir, nil, "rollback", "--data", "data", "--domain", "a",
                     "--to", s[#s - 4])
        assert.are.equal(0, r.code, r.log .. r.out)
      elseif i == 26 then -- a restart
        proc.stop_host(p, 30, true)
        p = start(dir)
      end
    end
    -- restart, touch a, then replace b.keep (never read since the restart):
    -- the writer would have to load it, so that version has no record
    proc.stop_host(p, 30, true)
    p = start(dir)
    repl(dir, "domains.a.state.after = 1")
    repl(dir, "domains.a.state.after = 2")
    repl(dir, "domains.b.state.keep = 5")
    noload = seqs_of(dir)
    noload = noload[#noload]
    repl(dir, "domains.a.state.after = 3")
    proc.stop_host(p, 30, true)
    seqs = seqs_of(dir)
  end)
  teardown(function()
    proc.reap()
    proc.rmdir(dir)
  end)

  -- `vedhost diff ARGS` with records and walking: same bytes; records used
  local function diff_both(args)
    local base = { "diff", "--data", args.data or "data" }
    for _, a in ipairs(args) do base[#base + 1] = a end
    local rec = vh(dir, { VEDHOST_TEST_CHANGE_RECORDS = "1" },
                   table.unpack(base))
    local walk = vh(dir, { VEDHOST_TEST_CHANGE_RECORDS = "0" },
                    table.unpack(base))
    assert.are.equal(0, rec.code, rec.log)
    assert.are.equal(0, walk.code, walk.log)
    assert.are.equal(walk.out, rec.out, table.concat(args, " "))
    assert.truthy(walk.log:find("diff records: 0", 1, true), walk.log)
    return tonumber(rec.log:match("diff records: (%d+)")), rec.out
  end

  it("give the CLI the walk's bytes for every adjacent pair", function()
    assert.is_true(#seqs >= 40, #seqs)
    local used, lines = 0, 0
    for i = 2, #seqs do
      local a, b = seqs[i - 1], seqs[i]
      local n, out = diff_both({ a, b })
      used = used + n
      lines = lines + select(2, out:gsub("\n", ""))
      diff_both({ "--json", a, b })
      diff_both({ b, a })
      diff_both({ "--json", b, a })
      if b == noload then assert.are.equal(0, n, "version " .. b) end
    end
    -- most versions have a record: not the rollback, the no-load one, nor
    -- those after a restart that replaced a value not read since (38 of
    -- the 43 pairs with the default seed)
    assert.is_true(used >= #seqs - 9, used .. " of " .. #seqs)
    assert.is_true(lines > 40, lines)
    -- the no-load version's diff is the walk's: b.keep went to 5
    local _, out = diff_both({ seqs[#seqs - 2], noload })
    assert.truthy(out:find("~ b.keep: {", 1, true), out)
    -- a domain filter and a span
    diff_both({ seqs[5], seqs[6], "b" })
    diff_both({ seqs[3], seqs[9] })
    -- fsck: clean, and it counted the records
    local f = vh(dir, nil, "fsck", "--data", "data")
    assert.are.equal(0, f.code, f.out .. f.log)
    local nrec = tonumber(f.out:match("(%d+) change records"))
    assert.is_true(nrec >= #seqs - 9, f.out)
    -- a branch keeps the records up to its version only, and stays clean
    local br = vh(dir, nil, "branch", "--data", "data", "--at", seqs[20],
                  "br")
    assert.are.equal(0, br.code, br.log .. br.out)
    f = vh(dir, nil, "fsck", "--data", "br")
    assert.are.equal(0, f.code, f.out .. f.log)
    local nb = tonumber(f.out:match("(%d+) change records"))
    assert.is_true(nb < nrec - 10 and nb >= 10, f.out)
    diff_both({ seqs[19], seqs[20], data = "br" })
  end)

  it("give the feed the walk's bytes, text and --json", function()
    for _, json in ipairs({ false, true }) do
      local args = { "changes", "--data", "data" }
      if json then args[#args + 1] = "--json" end
      local rec = vh(dir, { VEDHOST_TEST_FEED_STATS = "1" },
                     table.unpack(args))
      local walk = vh(dir, { VEDHOST_TEST_FEED_STATS = "1",
                             VEDHOST_TEST_CHANGE_RECORDS = "0" },
                      table.unpack(args))
      assert.are.equal(0, rec.code, rec.log)
      assert.are.equal(0, walk.code, walk.log)
      assert.are.equal(walk.out, rec.out)
      assert.truthy(walk.log:find(", 0 versions from records", 1, true),
                    walk.log)
      local n = tonumber(rec.log:match("(%d+) versions from records"))
      assert.is_true(n >= #seqs - 9, rec.log)
      -- resuming from each version: the same tail either way
      for _, from in ipairs({ seqs[7], seqs[20], noload }) do
        local a2 = { table.unpack(args) }
        a2[#a2 + 1] = "--from"
        a2[#a2 + 1] = from
        local r2 = vh(dir, nil, table.unpack(a2))
        local w2 = vh(dir, { VEDHOST_TEST_CHANGE_RECORDS = "0" },
                      table.unpack(a2))
        assert.are.equal(0, r2.code, r2.log)
        assert.are.equal(w2.out, r2.out)
      end
    end
  end)

  it("are not written for a slice over the key cap", function()
    local d2 = proc.tmpdir()
    proc.write(d2 .. "/s.lua", SCRIPT)
    local p = start(d2, { VEDHOST_TEST_CHREC_KEYS = "2" })
    repl(d2, "domains.a.state.x = 1")
    repl(d2, "domains.a.state.y = 2")
    repl(d2, "domains.a.state.x = 3; domains.a.state.y = 4; "
             .. "domains.b.state.z = 5")
    proc.stop_host(p, 30, true)
    local s = seqs_of(d2)
    local function used(a, b)
      local r = vh(d2, { VEDHOST_TEST_CHANGE_RECORDS = "1" }, "diff",
                   "--data", "data", a, b)
      assert.are.equal(0, r.code, r.log)
      return tonumber(r.log:match("diff records: (%d+)")), r.out
    end
    assert.are.equal(1, (used(s[#s - 2], s[#s - 1])))
    local n, out = used(s[#s - 1], s[#s])
    assert.are.equal(0, n)
    assert.are.equal("~ a.x: 1 -> 3\n~ a.y: 2 -> 4\n+ b.z = 5\n", out)
    proc.rmdir(d2)
  end)

  it("give the REPL's diff() the walk's records and lines", function()
    local code = { "local t = {}" }
    for i = 2, #seqs do
      for _, pair in ipairs({ { seqs[i - 1], seqs[i] },
                              { seqs[i], seqs[i - 1] } }) do
        code[#code + 1] = "for _, c in ipairs(diff(" .. pair[1] .. ", "
                          .. pair[2] .. ")) do t[#t + 1] = c.line .. ' | ' "
                          .. ".. pretty.format({c.op, c.path, c.value, "
                          .. "c.old, c.new}) end"
      end
    end
    code[#code + 1] = "print(table.concat(t, '\\n'))"
    code = table.concat(code, "\n")
    local outs = {}
    for i, env in ipairs({ "0", "1" }) do
      local p = start(dir, { VEDHOST_TEST_CHANGE_RECORDS = env })
      outs[i] = repl(dir, code)
      proc.stop_host(p, 30, true)
    end
    assert.is_true(#outs[1] > 1000, outs[1])
    assert.are.equal(outs[1], outs[2])
  end)
end)
