-- versions_diff_spec.lua - diff and the change feed (issue 15, the "diff"
-- part) against real vedhost processes: `vedhost diff`, the REPL's diff(),
-- `vedhost changes` (with kill -9 and resume), HTTP GET /changes, and bad
-- input.
--
-- Differential: a random workload; at random points a plain-Lua copy of
-- the state is recorded with its version seq; for pairs of recorded
-- versions, `vedhost diff` (text and --json) and diff() must equal the
-- difference of the two copies computed here in plain Lua, line for line
-- and in order. The change feed: a consumer killed many times while the
-- host writes, resumed each time with the last seq it applied whole,
-- rebuilds a plain-Lua mirror equal to the final state.
local proc = require "support.proc"
local json = require "dkjson"
local q = proc.quote or function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local SCRIPT = [[
local ved = require "ved"
ved.domain "kv" {
  state = {},
  on = {
    apply = function(state, ops)
      for _, op in ipairs(ops) do
        if op.del then state[op.k] = nil else state[op.k] = op.v end
      end
      return #ops
    end,
  },
}
ved.domain "other" {
  state = { n = 0 },
  on = { bump = function(state) state.n = state.n + 1 end },
}
]]

local literal = require "support.literal"
local SER_SRC, ser = literal.SER_SRC, literal.ser
local deep_eq, parse = literal.deep_eq, literal.parse

-- The REPL's key order: numbers, then strings (bytes), then false, true.
local RANK = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ra, rb = RANK[type(a)], RANK[type(b)]
  if ra ~= rb then return ra < rb end
  if ra == 3 then return (not a) and b end
  return a < b
end

-- The difference of two plain tables, as `vedhost diff` must list it:
-- { op, path = {domain, keys...}, old, new } in order.
local function plain_diff(domain, a, b)
  local out = {}
  local function walk(x, y, path)
    local keys, seen = {}, {}
    for k in pairs(x) do if not seen[k] then seen[k] = 1; keys[#keys + 1] = k end end
    for k in pairs(y) do if not seen[k] then seen[k] = 1; keys[#keys + 1] = k end end
    table.sort(keys, key_less)
    for _, k in ipairs(keys) do
      local p = { table.unpack(path) }
      p[#p + 1] = k
      local u, v = x[k], y[k]
      if type(u) == "table" and type(v) == "table" then
        walk(u, v, p)
      elseif u == nil then
        out[#out + 1] = { op = "+", path = p, new = v }
      elseif v == nil then
        out[#out + 1] = { op = "-", path = p, old = u }
      elseif not deep_eq(u, v) then
        out[#out + 1] = { op = "~", path = p, old = u, new = v }
      end
    end
  end
  walk(a, b, { domain })
  return out
end

-- The text line of a change (keys here are plain names and integers).
local function path_text(p)
  local s = p[1]
  for i = 2, #p do s = s .. "." .. tostring(p[i]) end
  return s
end

-- Parse `vedhost diff` text output into changes (values as Lua values).
local function parse_text(out)
  local res = {}
  for l in out:gmatch("[^\n]+") do
    local op, rest = l:match("^([%+%-~]) (.*)$")
    assert(op, "bad line: " .. l)
    local c = { op = op }
    local path
    if op == "+" then
      local pth, v = rest:match("^(%S+) = (.*)$")
      path, c.new = pth, parse(v)
    elseif op == "-" then
      path = rest
    else
      local pth, o, n = rest:match("^(%S+): (.-) %-> (.*)$")
      path, c.old, c.new = pth, parse(o), parse(n)
    end
    c.path = {}
    for e in path:gmatch("[^.]+") do
      c.path[#c.path + 1] = math.tointeger(tonumber(e)) or e
    end
    res[#res + 1] = c
  end
  return res
end

-- Compare changes (ignoring '-' values, which text does not print).
local function same_changes(want, got, what)
  assert.are.equal(#want, #got, what .. ": " .. ser(want) .. " vs " .. ser(got))
  for i = 1, #want do
    local w, g = want[i], got[i]
    assert.are.equal(w.op, g.op, what .. " #" .. i)
    assert.is_true(deep_eq(w.path, g.path), what .. " #" .. i .. " path " ..
                   ser(w.path) .. " vs " .. ser(g.path))
    if w.op ~= "-" then
      assert.is_true(deep_eq(w.new, g.new), what .. " #" .. i .. " new")
    end
    if w.op == "~" then
      assert.is_true(deep_eq(w.old, g.old), what .. " #" .. i .. " old")
    end
  end
end

local function start(dir, extra)
  local argv = { "run", "--no-watch", "--data", "data", "--http", "0" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "a.lua"
  local p = proc.start(argv, { cwd = dir })
  assert.is_true(proc.wait_log(p, "running 2 domain", 20), proc.logtext(p))
  local port = proc.logtext(p):match("http: listening on 127%.0%.0%.1:(%d+)")
  assert.truthy(port, proc.logtext(p))
  p.url = "http://127.0.0.1:" .. port
  return p
end

local function stop(p)
  proc.signal(p, "TERM")
  local code = proc.wait(p, 30)
  proc.cleanup(p)
  return code
end

local function repl(dir, code)
  return proc.run({ "repl", "--data", "data", "-e", code },
                  { cwd = dir, env = { NO_COLOR = "1" }, timeout = 60 })
end

local function ok(dir, code)
  local r = repl(dir, code)
  assert.are.equal(0, r.code, code .. "\n" .. r.log .. r.out)
  return r.out
end

local function vh(dir, ...)
  return proc.run({ ... }, { cwd = dir, timeout = 60 })
end

local function lines(out)
  local vals = {}
  for l in out:gmatch("[^\n]+") do vals[#vals + 1] = parse(l) end
  return vals
end

local function random_ops(rng)
  local ops = {}
  for _ = 1, rng(1, 6) do
    local k = "k" .. rng(1, 30)
    local r = rng(1, 10)
    if r <= 2 then
      ops[#ops + 1] = { k = k, del = true }
    elseif r <= 5 then
      ops[#ops + 1] = { k = k, v = rng(-1000, 1000) }
    elseif r <= 7 then
      ops[#ops + 1] = { k = k, v = "s" .. rng(1, 1e6) }
    else
      local list = {}
      for i = 1, rng(0, 5) do list[i] = rng(1, 100) end
      ops[#ops + 1] = { k = k, v = { a = rng(1, 9), list = list,
                                     deep = { x = { y = rng(1, 5) } } } }
    end
  end
  return ops
end

local function curl(url, max)
  local bodyf = os.tmpname()
  local h = io.popen(table.concat({ "curl", "-sN", "--max-time",
                                    tostring(max or 20), "-o", q(bodyf), "-w",
                                    "%{http_code}", q(url) }, " "))
  local code = tonumber(h:read("a"))
  h:close()
  local out = proc.read and proc.read(bodyf) or io.open(bodyf):read("a")
  os.remove(bodyf)
  return code, out or ""
end

-- Apply feed changes (decoded JSON objects) to a mirror { domain = {} }.
local function apply(mirror, c)
  mirror[c.domain] = mirror[c.domain] or {}
  local t = mirror[c.domain]
  for i = 1, #c.path - 1 do
    local k = c.path[i]
    if type(t[k]) ~= "table" then t[k] = {} end
    t = t[k]
  end
  local last = c.path[#c.path]
  if c.op == "-" then
    t[last] = nil
  elseif c.op == "+" then
    t[last] = c.value
  else
    t[last] = c.new
  end
end

describe("diff and the change feed", function()
  local dir, p
  setup(function()
    dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    p = start(dir, { "--retain", "1h" })
    ok(dir, "ser = (function() " .. SER_SRC .. " end)()")
  end)
  teardown(function()
    if p then assert.are.equal(0, stop(p)) end
    proc.rmdir(dir)
  end)

  it("diff equals the difference of recorded plain-Lua copies", function()
    math.randomseed(tonumber(os.getenv("VH_SEED") or "") or os.time())
    local rng = math.random
    local copies = {}
    for round = 1, 30 do
      ok(dir, "send('kv', 'apply', " .. ser(random_ops(rng)) .. ")")
      if rng(1, 4) == 1 then ok(dir, "send('other', 'bump')") end
      if round % 3 == 0 or rng(1, 3) == 1 then
        local v = lines(ok(dir, "return at(0).seq, ser(domains.kv.state), " ..
                                "ser(domains.other.state)"))
        copies[#copies + 1] = { seq = v[1], kv = parse(v[2]),
                                other = parse(v[3]) }
      end
    end
    assert.truthy(#copies >= 6)
    local function expected(a, b)
      local want = plain_diff("kv", a.kv, b.kv)
      for _, c in ipairs(plain_diff("other", a.other, b.other)) do
        want[#want + 1] = c
      end
      return want
    end
    for n = 1, 6 do
      local a = copies[rng(1, #copies)]
      local b = copies[rng(1, #copies)]
      if n == 1 then a, b = copies[1], copies[#copies] end
      local want = expected(a, b)
      -- CLI text, beside the running host
      local r = vh(dir, "diff", "--data", "data", tostring(a.seq),
                   tostring(b.seq))
      assert.are.equal(0, r.code, r.log)
      same_changes(want, parse_text(r.out), "diff " .. a.seq .. " " .. b.seq)
      -- CLI JSON
      r = vh(dir, "diff", "--data", "data", "--json", tostring(a.seq),
             tostring(b.seq))
      assert.are.equal(0, r.code, r.log)
      local got = {}
      for l in r.out:gmatch("[^\n]+") do
        local c = json.decode(l)
        local path = { c.domain }
        for _, k in ipairs(c.path) do path[#path + 1] = k end
        got[#got + 1] = { op = c.op, path = path, old = c.old,
                          new = c.op == "+" and c.value or c.new }
      end
      same_changes(want, got, "diff --json")
      -- REPL diff(a, b)
      local out = ok(dir, "local t = {} for i, c in ipairs(diff(" .. a.seq ..
                          ", " .. b.seq .. ")) do t[i] = {op = c.op, " ..
                          "path = c.path, old = c.old, new = c.op == '+' " ..
                          "and c.value or c.new} end return ser(t)")
      same_changes(want, parse(parse(out)), "REPL diff")
    end
    -- TO defaults to the present; PATH limits it.
    local last = copies[#copies]
    local r = vh(dir, "diff", "--data", "data", tostring(copies[1].seq))
    assert.are.equal(0, r.code, r.log)
    local cur = lines(ok(dir, "return ser(domains.kv.state), " ..
                              "ser(domains.other.state)"))
    local now = { kv = parse(cur[1]), other = parse(cur[2]) }
    same_changes(expected(copies[1], now), parse_text(r.out), "diff FROM")
    r = vh(dir, "diff", "--data", "data", tostring(copies[1].seq),
           tostring(last.seq), "other")
    assert.are.equal(0, r.code, r.log)
    same_changes(plain_diff("other", copies[1].other, last.other),
                 parse_text(r.out), "diff FROM TO other")
    r = vh(dir, "diff", "--data", "data", tostring(last.seq), "other.n")
    assert.are.equal(0, r.code, r.log)
    same_changes(plain_diff("other", { n = last.other.n }, { n = now.other.n }),
                 parse_text(r.out), "diff FROM other.n")
  end)

  it("a consumer killed and resumed many times rebuilds the state", function()
    local rng = math.random
    local mirror, last, partials = {}, nil, 0
    local outf = dir .. "/feed.out"
    local function consume(follow)
      local argv = { proc.bin, "changes", "--data", "data", "--json" }
      if follow then argv[#argv + 1] = "--follow" end
      if last then
        argv[#argv + 1] = "--from"
        argv[#argv + 1] = tostring(last)
      end
      local cmd = {}
      for i, a in ipairs(argv) do cmd[i] = q(a) end
      if follow then
        local pidf = dir .. "/feed.pid"
        os.execute("cd " .. q(dir) .. " && (" .. table.concat(cmd, " ") ..
                   " > " .. q(outf) .. " 2>" .. q(outf .. ".err") ..
                   " & echo $! > " .. q(pidf) .. ")")
        local f = io.open(pidf)
        local pid = tonumber(f:read("a"))
        f:close()
        return pid
      end
      os.execute("cd " .. q(dir) .. " && timeout -s KILL 60 " ..
                 table.concat(cmd, " ") .. " > " .. q(outf) .. " 2>" ..
                 q(outf .. ".err"))
    end
    -- Apply the versions seen whole (n == of) and remember the last one.
    local function absorb()
      local f = io.open(outf)
      local text = f and f:read("a") or ""
      if f then f:close() end
      local pending = {}
      for l in text:gmatch("([^\n]*)\n") do
        local c = json.decode(l)
        if c then -- a line cut by kill -9 has no newline: never here
          pending[#pending + 1] = c
          if c.n == c.of then
            for _, x in ipairs(pending) do apply(mirror, x) end
            assert.truthy(last == nil or c.seq > last, "seq went back")
            last = c.seq
            pending = {}
          end
        end
      end
      if #pending > 0 then partials = partials + 1 end
    end
    for _ = 1, 12 do
      local pid = consume(true)
      for _ = 1, rng(1, 3) do
        ok(dir, "send('kv', 'apply', " .. ser(random_ops(rng)) .. ")")
        if rng(1, 3) == 1 then ok(dir, "send('other', 'bump')") end
      end
      proc.sleep(rng(0, 30) / 100)
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      proc.sleep(0.05)
      absorb()
    end
    consume(false) -- the rest, without --follow
    absorb()
    local cur = lines(ok(dir, "return ser(domains.kv.state), " ..
                              "ser(domains.other.state)"))
    assert.is_true(deep_eq(parse(cur[1]), mirror.kv or {}),
                   ser(mirror.kv) .. "\nvs\n" .. cur[1])
    assert.is_true(deep_eq(parse(cur[2]), mirror.other or {}))
    -- The text form: SEQ TIME and the diff line.
    local r = vh(dir, "changes", "--data", "data", "--from", "-1")
    assert.are.equal(0, r.code, r.log)
    for l in r.out:gmatch("[^\n]+") do
      assert.truthy(l:match("^%d+ %d%d%d%d%-%d%d%-%d%dT[%d:.]+Z [%+%-~] %a"), l)
    end
  end)

  it("streams GET /changes as JSON lines", function()
    local seq = tonumber(ok(dir, "return at(0).seq"):match("%d+"))
    ok(dir, "send('kv', 'apply', {{k = 'http', v = 'yes'}})")
    local code, body = curl(p.url .. "/changes?from=" .. seq, 2)
    assert.are.equal(200, code)
    local got = {}
    for l in body:gmatch("[^\n]+") do got[#got + 1] = json.decode(l) end
    assert.are.equal(1, #got, body)
    assert.are.equal("kv", got[1].domain)
    assert.are.same({ "http" }, got[1].path)
    assert.are.equal("yes", got[1].new or got[1].value)
    assert.truthy(got[1].seq > seq)
    code, body = curl(p.url .. "/changes?from=abc", 5)
    assert.are.equal(400, code)
    code, body = curl(p.url .. "/changes?from=" .. (seq + 100000), 5)
    assert.are.equal(404, code, body)
    assert.truthy(body:find("unknown version", 1, true), body)
  end)

  -- HTTP asks api->changes for 8 versions a call and the host keeps the
  -- feed between calls (vh_feed_resume: the old side stays loaded): a
  -- stream of 30 versions over 4 calls must be `vedhost changes --json`'s
  -- lines, in order, each once.
  it("streams many versions over GET /changes as `vedhost changes` does", function()
    local seq = tonumber(ok(dir, "return at(0).seq"):match("%d+"))
    for i = 1, 30 do
      local ops = {}
      for j = 1, 20 do
        ops[#ops + 1] = string.format("{k = 'many%d', v = %d}", (i * 7 + j) % 45, i)
      end
      if i % 5 == 0 then ops[#ops + 1] = "{k = 'many3', del = true}" end
      ok(dir, "send('kv', 'apply', {" .. table.concat(ops, ", ") .. "})")
    end
    local want = {}
    local r = vh(dir, "changes", "--data", "data", "--json", "--from", tostring(seq))
    assert.are.equal(0, r.code, r.log)
    for l in r.out:gmatch("[^\n]+") do want[#want + 1] = l end
    assert.truthy(#want >= 30 * 10, #want)
    -- The stream does not end: curl runs until n lines came (its
    -- --max-time only bounds a hang), then is stopped by its pid.
    local function stream(from, n)
      local h = io.popen("f=$(mktemp); curl -sN --max-time 120 " ..
        q(p.url .. "/changes?from=" .. from) .. " > \"$f\" & c=$!; " ..
        "while [ \"$(wc -l < \"$f\")\" -lt " .. n .. " ] && " ..
        "kill -0 $c 2>/dev/null; do sleep 0.05; done; kill $c 2>/dev/null; " ..
        "wait $c 2>/dev/null; head -n " .. n .. " \"$f\"; rm -f \"$f\"")
      local got = {}
      for l in h:lines() do got[#got + 1] = l end
      h:close()
      return got
    end
    local got = stream(seq, #want)
    assert.are.equal(#want, #got)
    for i = 1, #want do
      assert.are.same(json.decode(want[i]), json.decode(got[i]), "line " .. i)
    end
    -- Resumed from the middle (the kept feed is reset: another position).
    local mid = json.decode(want[#want // 2]).seq
    local tail = {}
    for i = 1, #want do
      if json.decode(want[i]).seq > mid then tail[#tail + 1] = want[i] end
    end
    got = stream(mid, #tail)
    assert.are.equal(#tail, #got)
    for i = 1, #tail do
      assert.are.same(json.decode(tail[i]), json.decode(got[i]), "line " .. i)
    end
  end)

  it("reads versions ahead on a second thread (opt-in), the output unchanged", function()
    -- Versions of 150 new keys each: enough new nodes (>= 32) that the
    -- read-ahead stages them with a range scan.
    local seq = tonumber(ok(dir, "return at(0).seq"):match("%d+"))
    for i = 1, 8 do
      local ops = {}
      for j = 1, 150 do
        ops[#ops + 1] = string.format("{k = 'ahead%d_%d', v = %d}", i, j, j)
      end
      ok(dir, "send('kv', 'apply', {" .. table.concat(ops, ", ") .. "})")
    end
    local args = { "changes", "--data", "data", "--json", "--from", tostring(seq) }
    local off = proc.run(args, { cwd = dir, timeout = 60,
      env = { VEDHOST_TEST_FEED_STATS = "1" } })
    local on = proc.run(args, { cwd = dir, timeout = 60,
      env = { VEDHOST_FEED_AHEAD = "1", VEDHOST_TEST_FEED_STATS = "1" } })
    assert.are.equal(0, off.code, off.log)
    assert.are.equal(0, on.code, on.log)
    local _, n = on.out:gsub("\n", "")
    assert.truthy(n >= 8 * 150, n)
    assert.are.equal(off.out, on.out)
    assert.truthy(off.log:find("read ahead 0 versions, 0 nodes staged", 1, true),
                  off.log)
    local v, staged = on.log:match("read ahead (%d+) versions, (%d+) nodes staged")
    assert.truthy(v, on.log)
    assert.truthy(tonumber(v) >= 8, on.log)
    assert.truthy(tonumber(staged) >= 8 * 32, on.log)
  end)

  it("refuses bad input with one line and changes nothing", function()
    local before = vh(dir, "log", "--data", "data").out
    local function refused(code, pat, ...)
      local r = vh(dir, ...)
      assert.are.equal(code, r.code, r.log)
      assert.truthy(proc.one_line(r):find(pat, 1, true), r.log)
      assert.are.equal("", r.out)
    end
    refused(1, "unknown version 9999999", "diff", "--data", "data", "9999999")
    refused(1, "no mark named nosuchmark", "diff", "--data", "data",
            "nosuchmark")
    refused(2, "FROM is missing", "diff", "--data", "data")
    refused(2, "unknown option", "diff", "--data", "data", "--bogus", "-1")
    refused(2, "bad path", "diff", "--data", "data", "-1", "kv..x")
    refused(1, "no domain \"nodom\"", "diff", "--data", "data", "-1", "-0",
            "nodom.x")
    refused(1, "neither a version", "diff", "--data", "data", "-1", "zz.x")
    refused(2, "unexpected argument", "diff", "--data", "data", "1", "2",
            "kv", "x")
    refused(1, "no mark named nosuchmark", "changes", "--data", "data",
            "--from", "nosuchmark")
    refused(1, "unknown version 9999999", "changes", "--data", "data",
            "--from", "9999999")
    refused(2, "unexpected argument", "changes", "--data", "data", "x")
    refused(2, "--follow", "changes", "--data", "data", "--follow=1")
    refused(1, "diff:", "diff", "--data", dir .. "/nodata", "-1")
    assert.are.equal(before, vh(dir, "log", "--data", "data").out)
  end)
end)

describe("the change feed past retention", function()
  it("refuses a resume past retention, naming the oldest seq", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local p = start(dir, { "--retain", "5" })
    for i = 1, 20 do
      ok(dir, "send('kv', 'apply', {{k = 'k', v = " .. i .. "}})")
    end
    local r = vh(dir, "changes", "--data", "data", "--from", "1")
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    local oldest = line:match("the oldest seq you can resume from is (%d+)")
    assert.truthy(oldest, line)
    assert.truthy(line:find("seq 1 is past retention", 1, true), line)
    -- resuming from that oldest seq works
    r = vh(dir, "changes", "--data", "data", "--from", oldest)
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("kv.k", 1, true), r.out)
    -- HTTP: 410 Gone with the same message
    local code, body = curl(p.url .. "/changes?from=1", 5)
    assert.are.equal(410, code, body)
    assert.truthy(body:find("the oldest seq you can resume from is", 1, true))
    -- diff from a dropped version: one line
    r = vh(dir, "diff", "--data", "data", "1")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("unknown version 1", 1, true))
    assert.are.equal(0, stop(p))
    proc.rmdir(dir)
  end)
end)

describe("the change feed's JSON integers", function()
  it("prints 0, negatives and the int64 limits exactly", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/i.lua", [[
local ved = require "ved"
ved.domain "ints" { state = {},
  start = function(s)
    s.zero, s.neg, s.min, s.max = 0, -7, math.mininteger, math.maxinteger
    s[-12] = 345
    ved.exit(0)
  end }
]])
    local r = proc.run({ "run", "--no-watch", "--data", "data", "i.lua" },
                       { cwd = dir, timeout = 60 })
    assert.are.equal(0, r.code, r.log)
    r = vh(dir, "changes", "--data", "data", "--json")
    assert.are.equal(0, r.code, r.log)
    local want = {
      zero = "0", neg = "-7", min = "-9223372036854775808",
      max = "9223372036854775807" }
    for k, v in pairs(want) do
      assert.truthy(r.out:find('"path":["' .. k .. '"],"value":' .. v .. ',',
                               1, true), k .. "\n" .. r.out)
    end
    assert.truthy(r.out:find('"path":[-12],"value":345,', 1, true), r.out)
    local seq, time = r.out:match('^{"seq":(%d+),"time":(%d+),')
    assert.truthy(seq and tonumber(seq) > 0 and tonumber(time) > 0, r.out)
    assert.truthy(r.out:find(',"n":1,"of":5}\n', 1, true), r.out)
    proc.rmdir(dir)
  end)
end)
