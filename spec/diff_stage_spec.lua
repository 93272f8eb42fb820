-- diff_stage_spec.lua - a whole diff of two adjacent stored versions reads
-- the newer side's new nodes (ids born between the two versions) with one
-- range scan and stages them (host/runtime/diff_stage.c): `vedhost diff`
-- and the REPL's diff() must print the same lines with the stage as
-- without it (VEDHOST_TEST_DIFF_STAGE=0: never stage), for versions across
-- several domains, in either order; a span of several versions, a diff
-- under a path and a range over the bound (VEDHOST_TEST_DIFF_STAGE=N: at
-- most N ids) stage nothing and print the same lines too.
local proc = require "support.proc"

-- Run R: domains "a" and "b" with 3000 keys each (nested tables too);
-- later runs change a few keys, then many, add and remove tables.
local FILL = [[
local ved = require "ved"
local function fill(s, tag)
  local run = (s.run or 0) + 1
  s.run = run
  if run == 1 then
    for i = 1, 3000 do s["key:" .. i] = i end
    s.t = { x = 1, y = { z = "deep" } }
  elseif run == 2 then
    for j = 1, 5 do s["key:" .. (j * 271)] = tag .. j end
  elseif run == 3 then
    for j = 1, 400 do s["key:" .. (j * 7)] = -j end
    for j = 1, 50 do s["key:" .. (j * 13 + 1)] = nil end
    s.t = nil
    s.n = { new = { 1, 2, 3 } }
  else
    s["key:2999"] = "last"
  end
end
ved.domain "a" { state = {}, start = function(s) fill(s, "a") end }
ved.domain "b" { state = {},
  start = function(s) fill(s, "b"); ved.exit(0) end }
]]

local SERVE = [[
local ved = require "ved"
ved.domain "a" { state = {} }
ved.domain "b" { state = {} }
]]

local function vh(dir, env, ...)
  return proc.run({ ... }, { cwd = dir, env = env, timeout = 120 })
end

-- Runs script in dir's data dir (nosync, history kept) and returns the
-- newest retained seq after it.
local function run_seq(dir, script)
  local r = vh(dir, nil, "run", "--no-watch", "--durability", "nosync",
               "--retain", "1h", "--data", "data", script)
  assert.are.equal(0, r.code, r.log)
  local l = vh(dir, nil, "log", "--data", "data", "-n", "1")
  local seq = l.out:match("\n%s*(%d+)")
  assert.truthy(seq, l.out .. l.log)
  return seq
end

describe("diff with staged new nodes", function()
  local dir, seqs
  setup(function()
    dir = proc.tmpdir()
    proc.write(dir .. "/fill.lua", FILL)
    proc.write(dir .. "/serve.lua", SERVE)
    seqs = {}
    for i = 1, 4 do
      seqs[i] = run_seq(dir, "fill.lua")
    end
  end)
  teardown(function() proc.rmdir(dir) end)

  -- `vedhost diff ARGS...` with and without the stage: same output.
  local function same(args, bound)
    local base = { "diff", "--data", "data" }
    for _, a in ipairs(args) do base[#base + 1] = a end
    -- (VEDHOST_TEST_CHANGE_RECORDS=0: no change record, the walk staged)
    local off = vh(dir, { VEDHOST_TEST_DIFF_STAGE = "0",
                          VEDHOST_TEST_CHANGE_RECORDS = "0" },
                   table.unpack(base))
    local on = vh(dir, { VEDHOST_TEST_DIFF_STAGE = bound or "1000000",
                         VEDHOST_TEST_CHANGE_RECORDS = "0" },
                  table.unpack(base))
    local plain = vh(dir, nil, table.unpack(base))
    assert.are.equal(0, off.code, off.log)
    assert.are.equal(0, on.code, on.log)
    assert.are.equal(0, plain.code, plain.log)
    assert.are.equal(off.out, on.out)
    assert.are.equal(off.out, plain.out)
    assert.truthy(off.log:match("staged 0, used 0"), off.log)
    local staged, used = on.log:match("staged (%d+), used (%d+)")
    assert.truthy(staged, on.log)
    return off.out, tonumber(staged), tonumber(used)
  end

  it("prints the same lines, staged nodes serving the newer side", function()
    local out, staged, used = same({ seqs[1], seqs[2] })
    -- 5 keys and the run counter changed in each of 2 domains
    local n = select(2, out:gsub("\n", ""))
    assert.are.equal(12, n, out)
    assert.truthy(out:find('~ a["key:271"]: 271 -> "a1"', 1, true), out)
    assert.is_true(staged > 0 and used > 0, staged .. " " .. used)
    assert.is_true(used <= staged)
    -- many changes, tables added and removed, across domains
    out, staged, used = same({ seqs[2], seqs[3] })
    assert.truthy(out:find("\n- b.t\n", 1, true), out)
    assert.truthy(out:find("\n+ a.n = ", 1, true), out)
    assert.is_true(used > 0)
    -- older on the right: the newer side is a, staged the same way
    local back
    back, staged, used = same({ seqs[3], seqs[2] })
    assert.is_true(used > 0)
    assert.truthy(back:find('~ b["key:7"]: -1 -> 7', 1, true), back)
    -- the newest version against the current state (adjacent too)
    _, staged, used = same({ seqs[3] })
    assert.is_true(used > 0)
  end)

  it("reads point by point over a span, under a path, over the bound", function()
    local totals = {}
    for i, args in ipairs({ { seqs[1], seqs[3] }, { seqs[3], seqs[1] },
                            { seqs[1], seqs[4] }, { seqs[2], seqs[3], "b" },
                            { seqs[3], "a" }, { seqs[1] } }) do
      local _, staged, used = same(args)
      totals[i] = staged + used
    end
    assert.are.same({ 0, 0, 0, 0, 0, 0 }, totals)
    local _, staged, used = same({ seqs[2], seqs[3] }, "5")
    assert.are.equal(0, staged)
    assert.are.equal(0, used)
  end)

  it("gives the REPL's diff() the same lines with and without", function()
    local code = "local t = {} for _, c in ipairs(diff(" .. seqs[2] .. ", "
                 .. seqs[3] .. ")) do t[#t + 1] = c.line end "
                 .. "for _, c in ipairs(diff(" .. seqs[3] .. ", " .. seqs[2]
                 .. ")) do t[#t + 1] = c.line end "
                 .. "for _, c in ipairs(diff(" .. seqs[4] .. ", " .. seqs[2]
                 .. ", 'a')) do t[#t + 1] = c.line end "
                 .. "print(table.concat(t, '\\n'))"
    local outs = {}
    for i, bound in ipairs({ "0", "1000000", "5" }) do
      local p = proc.start_host(nil, {
        dir = dir, name = "serve.lua", ready = "running 2 domain",
        args = { "--no-watch", "--retain", "1h", "--data", "data" },
        env = { VEDHOST_TEST_DIFF_STAGE = bound,
                VEDHOST_TEST_CHANGE_RECORDS = "0" } })
      local r = vh(dir, { NO_COLOR = "1" }, "repl", "--data", "data", "-e",
                   code)
      proc.stop_host(p, 30, true)
      assert.are.equal(0, r.code, r.log .. r.out)
      outs[i] = r.out
    end
    assert.truthy(outs[1]:match("key:7"), outs[1])
    assert.are.equal(outs[1], outs[2])
    assert.are.equal(outs[1], outs[3])
    -- and the CLI prints those lines too
    local cli = vh(dir, nil, "diff", "--data", "data", seqs[2], seqs[3])
    assert.are.equal(0, cli.code, cli.log)
    assert.are.equal(cli.out, outs[1]:sub(1, #cli.out))
  end)
end)

-- The REPL's diff() formats plain values (nil, booleans, integers, floats,
-- printable ASCII strings) in C and leaves the rest to pretty.format
-- (host/repl/repl_diff.c, vh_rd_fast_format): every record's line must be
-- what pretty.format gives, and `vedhost diff` prints the same lines.
local VALUES = [[{
  0, 1, -1, 42, -987654321, math.maxinteger, math.mininteger,
  0.1, -0.0, 0.5, 1 / 3, -2.5e-8, 1e300, -1e300, 2.0 ^ 53, 2.0 ^ 63,
  123.0, 1e15, 1e16, 1e17, 18014398509481988.0, 3.0000000000000004,
  1 / 0, -1 / 0,
  "plain", "", "with space", 'q"uote', "back\\slash", "tab\t", "nl\n",
  "\0", "\127", "caf\195\169", "\200\201", "%d %s",
  true, false, { 1, 2 }, { a = { b = 1 }, [3] = "x" },
}]]

local VALS_DOMAIN = [[
local ved = require "ved"
local V = ]] .. VALUES .. [[

ved.domain "kv" { state = {},
  start = function(s)
    local run = (s.run or 0) + 1
    s.run = run
    local n = #V
    for i = 1, n do
      local j = run == 1 and i or (i % n) + 1
      s["k" .. i] = V[j]
    end
    if run == 2 then s.added = V[1]; s.k1 = nil end
    ved.exit(0)
  end }
]]

describe("diff() record lines", function()
  it("are pretty.format's, and the CLI's, for every kind of value", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/v.lua", VALS_DOMAIN)
    proc.write(dir .. "/serve.lua",
               'local ved = require "ved"\nved.domain "kv" { state = {} }\n')
    local seqs = {}
    for i = 1, 2 do
      seqs[i] = run_seq(dir, "v.lua")
    end
    local p = proc.start_host(nil, {
      dir = dir, name = "serve.lua", ready = "running 1 domain",
      args = { "--no-watch", "--retain", "1h", "--data", "data" } })
    local code = [[
      local o = { width = math.maxinteger // 2,
                  max_items = math.maxinteger // 2, max_depth = 1000000 }
      local f = function(v) return pretty.format(v, o) end
      local out, bad = {}, {}
      for _, c in ipairs(diff(]] .. seqs[1] .. ", " .. seqs[2] .. [[)) do
        local p = table.concat(c.path, ".")
        local want = c.op == "+" and "+ " .. p .. " = " .. f(c.value)
          or c.op == "-" and "- " .. p
          or "~ " .. p .. ": " .. f(c.old) .. " -> " .. f(c.new)
        if c.line ~= want then bad[#bad + 1] = c.line .. " | " .. want end
        out[#out + 1] = c.line
      end
      assert(#bad == 0, table.concat(bad, "\n"))
      print(table.concat(out, "\n"))
    ]]
    local r = vh(dir, { NO_COLOR = "1" }, "repl", "--data", "data", "-e", code)
    proc.stop_host(p, 30, true)
    assert.are.equal(0, r.code, r.log .. r.out)
    local n = select(2, r.out:gsub("\n", ""))
    assert.is_true(n >= 40, r.out)
    assert.truthy(r.out:find("~ kv.k7: math.mininteger -> 0.1\n", 1, true),
                  r.out)
    assert.truthy(r.out:find('~ kv.k29: "back\\\\slash" -> "tab\\t"\n', 1,
                             true), r.out)
    local cli = vh(dir, nil, "diff", "--data", "data", seqs[1], seqs[2])
    assert.are.equal(0, cli.code, cli.log)
    assert.are.equal(cli.out, r.out:sub(1, #cli.out))
    proc.rmdir(dir)
  end)
end)
