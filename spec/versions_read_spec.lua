-- versions_read_spec.lua - reading old versions (issue 15, the "read"
-- part): `vedhost log`, `inspect --at V`, `export --at V`, the REPL's
-- at(V) and HTTP `?at=V`, against real vedhost processes.
--
-- The differential test runs a random workload, records plain-table
-- copies of the state at random points (with the version seq the copy
-- is), and then checks that at(V), inspect --at V and GET ?at=V give the
-- recorded copy for every recorded V that is retained. Views must never
-- make the store delete live nodes: fsck is clean afterwards.
local proc = require "support.proc"
local q = proc.quote

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

-- The values a REPL chunk printed, one per line (each a one-line literal
-- of a ser() string or a number), parsed.
local function lines(out)
  local vals = {}
  for l in out:gmatch("[^\n]+") do vals[#vals + 1] = parse(l) end
  return vals
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
  local argv = {}
  for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
  return proc.run(argv, { cwd = dir, timeout = 60 })
end

local function curl(url)
  local bodyf = os.tmpname()
  local h = io.popen(table.concat({ "curl", "-s", "--max-time", "20", "-o",
                                    q(bodyf), "-w", "%{http_code}", q(url) },
                                  " "))
  local code = tonumber(h:read("a"))
  h:close()
  local out = proc.read(bodyf) or ""
  os.remove(bodyf)
  return code, out
end

-- Does this build keep history? (`run --retain` exists.)
local function has_retain()
  local r = proc.run({ "run", "--help" }, {})
  return r.out:find("--retain", 1, true) ~= nil
end

-- A random op list over keys k1..k30: set a scalar, a nested table, or
-- delete. Small enough that no table passes the printer's 100 items.
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

describe("reading old versions", function()
  local dir, p, retain
  setup(function()
    retain = has_retain()
    dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    p = start(dir, retain and { "--retain", "1h" } or {})
    ok(dir, "ser = (function() " .. SER_SRC .. " end)()")
  end)
  teardown(function()
    if p then assert.are.equal(0, stop(p)) end
    proc.rmdir(dir)
  end)

  it("at(V), inspect --at V and GET ?at=V equal recorded copies", function()
    math.randomseed(tonumber(os.getenv("VH_SEED") or "") or os.time())
    local rng = math.random
    local copies = {} -- { seq, kv, other }
    for round = 1, 40 do
      local ops = random_ops(rng)
      ok(dir, "send('kv', 'apply', " .. ser(ops) .. ")")
      if rng(1, 4) == 1 then ok(dir, "send('other', 'bump')") end
      if round % 3 == 0 or rng(1, 3) == 1 then
        -- The chunk above was answered once its slice was durable, and
        -- nothing else runs: the newest version is the live state.
        local v = lines(ok(dir, "local v = at(0); return v.seq, " ..
                                "ser(domains.kv.state), " ..
                                "ser(domains.other.state), " ..
                                "ser(v.domains.kv.state)"))
        assert.are.equal(4, #v)
        assert.are.same(parse(v[2]), parse(v[4])) -- at(0) is the present
        copies[#copies + 1] = { seq = v[1], kv = parse(v[2]),
                                other = parse(v[3]) }
      end
    end
    assert.truthy(#copies >= 10)
    local checked = 0
    for _, c in ipairs(copies) do
      if retain then -- else only the newest is kept, and it moved on
        -- REPL at(V), a number and a string
        local v = lines(ok(dir, "return ser(at(" .. c.seq ..
                                ").domains.kv.state), ser(at('" .. c.seq ..
                                "').domains.other.state)"))
        assert.is_true(deep_eq(c.kv, parse(v[1])), "at(" .. c.seq .. ")")
        assert.is_true(deep_eq(c.other, parse(v[2])))
        -- inspect --at V beside the running host
        local r = vh(dir, "inspect", "--data", "data", "--at",
                     tostring(c.seq), "kv")
        assert.are.equal(0, r.code, r.log)
        assert.is_true(deep_eq(c.kv, parse(r.out)), "inspect --at " .. c.seq)
        -- HTTP ?at=V (JSON: compare a scalar and the key set)
        local code, body = curl(p.url .. "/domains/other/state/n?at=" .. c.seq)
        assert.are.equal(200, code, body)
        assert.are.equal(tostring(c.other.n), body)
        checked = checked + 1
      end
    end
    if retain then assert.are.equal(#copies, checked) end
    -- -0 (and the integer 0) is the newest
    local v = lines(ok(dir, "return at(0).seq, at('-0').seq, at(-0).seq"))
    assert.are.equal(v[1], v[2])
    assert.are.equal(v[1], v[3])
  end)

  it("refuses writes through a view: version N is read-only", function()
    local r = repl(dir, "at(0).domains.kv.state.k1 = 5")
    assert.are.equal(1, r.code)
    assert.truthy((r.log .. r.out):find(
                      "cannot write kv.k1: version %d+ is read%-only"),
                  r.log .. r.out)
    ok(dir, "send('kv', 'apply', {{k = 'nest', v = {a = {b = 1}}}})")
    r = repl(dir, "local s = at(0).domains.kv.state; s.nest.a.b = 2")
    assert.are.equal(1, r.code)
    assert.truthy((r.log .. r.out):find("cannot write kv.nest.a.b: version",
                                        1, true), r.log .. r.out)
    -- the live state is untouched, and writable
    assert.are.equal("1\n", ok(dir, "return domains.kv.state.nest.a.b"))
    ok(dir, "domains.kv.state.nest.a.b = 3")
    assert.are.equal("3\n", ok(dir, "return domains.kv.state.nest.a.b"))
  end)

  it("gives one clear error for a version that is not there", function()
    local out = ok(dir, "return at(0).seq")
    local newest = tonumber(out:match("%d+"))
    local bad = tostring(newest + 1000)
    -- REPL
    local r = repl(dir, "return at(" .. bad .. ")")
    assert.are.equal(1, r.code)
    assert.truthy((r.log .. r.out):find("at: unknown version " .. bad, 1, true))
    r = repl(dir, "return at('nosuchmark')")
    assert.truthy((r.log .. r.out):find("at: no mark named nosuchmark", 1,
                                        true))
    r = repl(dir, "return at('-30d')")
    assert.truthy((r.log .. r.out):find("no version at or before", 1, true))
    r = repl(dir, "return at(1.5)")
    assert.truthy((r.log .. r.out):find("integer or a string", 1, true))
    -- CLI: exit 1 (runtime) with one line; a malformed time: exit 2
    r = vh(dir, "inspect", "--data", "data", "--at", bad, "kv")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("unknown version " .. bad, 1, true))
    r = vh(dir, "inspect", "--data", "data", "--at", "nosuchmark")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("no mark named nosuchmark", 1, true))
    r = vh(dir, "inspect", "--data", "data", "--at", "-30d")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("no version at or before", 1, true))
    r = vh(dir, "inspect", "--data", "data", "--at", "25:00")
    assert.are.equal(2, r.code)
    assert.truthy(proc.one_line(r):find("no such time of day", 1, true))
    r = vh(dir, "export", "--data", "data", "--at", bad, "out.vhx")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("unknown version " .. bad, 1, true))
    assert.is_nil(proc.read(dir .. "/out.vhx"))
    -- HTTP: 404 with the reason
    local code, body = curl(p.url .. "/domains/kv/state?at=" .. bad)
    assert.are.equal(404, code)
    assert.truthy(body:find("unknown version " .. bad, 1, true), body)
    code, body = curl(p.url .. "/domains/kv/state?at=nosuchmark")
    assert.are.equal(404, code)
    assert.truthy(body:find("no mark named nosuchmark", 1, true), body)
    code, body = curl(p.url .. "/domains/nodom/state?at=-0")
    assert.are.equal(404, code)
    assert.truthy(body:find("no domain 'nodom' in version", 1, true), body)
    code, body = curl(p.url .. "/domains/kv/state?at=%zz")
    assert.are.equal(400, code)
  end)

  it("export --at V restores V", function()
    ok(dir, "send('kv', 'apply', {{k = 'exp', v = 'before'}})")
    local v = lines(ok(dir, "return at(0).seq, ser(domains.kv.state)"))
    local seq, kv = tostring(v[1]), v[2]
    ok(dir, "send('kv', 'apply', {{k = 'exp', v = 'after'}})")
    local r = vh(dir, "export", "--data", "data", "--at", seq, "snap.vhx")
    if not retain then
      -- only the newest version is kept: seq is gone
      assert.are.equal(1, r.code)
      return
    end
    assert.are.equal(0, r.code, r.log)
    r = vh(dir, "import", "--data", "restored", "snap.vhx")
    assert.are.equal(0, r.code, r.log)
    r = vh(dir, "inspect", "--data", "restored", "kv")
    assert.are.equal(0, r.code, r.log)
    assert.is_true(deep_eq(parse(kv), parse(r.out)))
    assert.are.equal("\"before\"\n",
                     vh(dir, "inspect", "--data", "restored", "kv.exp").out)
  end)

  it("vedhost log lists versions newest first", function()
    if not retain then
      pending("this build keeps no version history (no run --retain)")
      return
    end
    ok(dir, "send('other', 'bump')")
    ok(dir, "send('kv', 'apply', {{k = 'logged', v = 1}, {k = 'x', v = 2}})")
    -- the kv slice is the newest durable version when this chunk runs
    local kvseq = tonumber(ok(dir, "return at(0).seq"):match("%d+"))
    local function rows(out)
      local t = {}
      for l in out:gmatch("[^\n]+") do
        local s, tm, ev, keys, doms =
            l:match("^%s*(%d+)%s+(%S+)%s+(%d+)%s+(%d+)%s+(.-)%s*$")
        if s then
          t[#t + 1] = { seq = tonumber(s), time = tm, events = tonumber(ev),
                        keys = tonumber(keys), doms = doms }
        end
      end
      return t
    end
    local r = vh(dir, "log", "--data", "data", "-n", "2")
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:match("^%s*SEQ%s+TIME %(UTC%)%s+EVENTS%s+KEYS%s+" ..
                              "DOMAINS\n"), r.out)
    local two = rows(r.out)
    assert.are.equal(2, #two, r.out)
    assert.truthy(two[1].seq > two[2].seq) -- newest first
    r = vh(dir, "log", "--data", "data", "-n", "50")
    local all, kvrow, otherrow = rows(r.out), nil, nil
    for _, row in ipairs(all) do
      if row.seq == kvseq then kvrow = row end
      if row.seq < kvseq and not otherrow and row.doms == "other" then
        otherrow = row
      end
    end
    assert.truthy(kvrow, r.out)
    assert.are.equal("kv", kvrow.doms)
    assert.are.equal(2, kvrow.keys)
    assert.truthy(kvrow.events >= 1)
    assert.truthy(kvrow.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
    assert.truthy(otherrow, r.out)
    assert.are.equal(1, otherrow.keys)
    -- --domain keeps versions that changed it
    r = vh(dir, "log", "--data", "data", "--domain", "other", "-n", "1")
    assert.are.equal(0, r.code, r.log)
    local only = rows(r.out)
    assert.are.equal(1, #only, r.out)
    assert.are.equal(otherrow.seq, only[1].seq)
    -- --since a seq: only versions at or after it, kvseq included
    r = vh(dir, "log", "--data", "data", "--since", tostring(kvseq))
    local since = rows(r.out)
    assert.truthy(#since >= 1, r.out)
    for _, row in ipairs(since) do assert.truthy(row.seq >= kvseq) end
    assert.are.equal(kvseq, since[#since].seq)
    -- --since a time in the future: the header alone
    r = vh(dir, "log", "--data", "data", "--since", "2099-01-01T00:00:00Z")
    assert.are.equal(0, r.code, r.log)
    assert.is_nil(r.out:find("\n%s*%d"))
    -- bad input
    r = vh(dir, "log", "--data", "data", "-n", "0")
    assert.are.equal(2, r.code)
    proc.one_line(r)
    r = vh(dir, "log", "--data", "data", "--since", "25:99")
    assert.are.equal(2, r.code)
    proc.one_line(r)
    r = vh(dir, "log", "--data", "data", "--since", "nosuchmark")
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("no mark named", 1, true))
  end)

  it("reads a marked version by its name everywhere", function()
    local r = vh(dir, "mark", "--help")
    if r.code ~= 0 then
      pending("this build has no `vedhost mark`")
      return
    end
    ok(dir, "send('kv', 'apply', {{k = 'm', v = 'marked'}})")
    r = vh(dir, "mark", "--data", "data", "readmark")
    assert.are.equal(0, r.code, r.log .. r.out)
    local seq = tonumber((r.out .. r.log):match("version (%d+)"))
    assert.truthy(seq, r.out .. r.log)
    ok(dir, "send('kv', 'apply', {{k = 'm', v = 'later'}})")
    local v = lines(ok(dir, "local a = at('readmark'); " ..
                            "return a.seq, a.domains.kv.state.m"))
    assert.are.same({ seq, "marked" }, v)
    r = vh(dir, "inspect", "--data", "data", "--at", "readmark", "kv.m")
    assert.are.equal(0, r.code, r.log)
    assert.are.equal('"marked"\n', r.out)
    local code, body = curl(p.url .. "/domains/kv/state/m?at=readmark")
    assert.are.equal(200, code, body)
    assert.are.equal('"marked"', body)
    r = vh(dir, "log", "--data", "data", "-n", "20")
    assert.truthy(r.out:find("\n%s*" .. seq .. "%s[^\n]*%[readmark%]"), r.out)
  end)

  it("views leave the store sound (fsck clean after reads and GC)", function()
    ok(dir, "views = {}; for i = 0, " .. (retain and 3 or 0) ..
            " do views[#views + 1] = at(-i) end")
    ok(dir, "for _, v in ipairs(views) do local n = 0; " ..
            "for k in pairs(v.domains.kv.state) do n = n + 1 end end")
    for i = 1, 10 do
      ok(dir, "send('kv', 'apply', {{k = 'k" .. i .. "', v = {z = " .. i ..
              "}}})")
    end
    ok(dir, "views = nil; collectgarbage(); collectgarbage()")
    ok(dir, "send('kv', 'apply', {{k = 'final', v = 1}})")
    assert.are.equal(0, stop(p))
    p = nil
    local r = vh(dir, "fsck", "--data", "data")
    assert.are.equal(0, r.code, r.out .. r.log)
  end)
end)
