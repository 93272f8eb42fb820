-- host_errors_spec.lua - every bad input of `vedhost run` (issue 3): one
-- clear line on stderr naming the file (and line) or the option, a
-- non-zero exit, never a crash; bad payloads are logged errors and the
-- host carries on.
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'

-- Write files { name = src } into a fresh dir and run vedhost with args.
local function run_in(files, args, opts)
  local dir = proc.tmpdir()
  for name, src in pairs(files) do proc.write(dir .. "/" .. name, src) end
  opts = opts or {}
  opts.cwd = dir
  local r = proc.run(args, opts)
  r.dir = dir
  proc.rmdir(dir)
  return r
end

local one_line = proc.one_line

describe("vedhost bad input", function()
  it("reports a missing script", function()
    local r = run_in({}, { "run", "missing.lua" })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("missing.lua", 1, true))
  end)

  it("reports a script that does not compile, with file:line", function()
    local r = run_in({ ["bad.lua"] = HEAD .. "ved.domain 'a' {\n  on = {\n" ..
                       "    x = function( end,\n  },\n}\n" },
                     { "run", "bad.lua" })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("bad.lua:4:", 1, true), r.log)
  end)

  it("reports a script that raises while loading, with file:line",
     function()
    local r = run_in({ ["rt.lua"] = HEAD .. "local t = nil\nprint(t.x)\n" },
                     { "run", "rt.lua" })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("rt.lua:3:", 1, true), r.log)
  end)

  it("reports a script that declares no domain", function()
    local r = run_in({ ["none.lua"] = HEAD .. "local x = 1\n" },
                     { "run", "none.lua" })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("none.lua declares no domain", 1, true))
  end)

  it("reports a domain declared by two scripts, naming both", function()
    local r = run_in({ ["one.lua"] = HEAD .. "ved.domain 'dup' {}\n",
                       ["two.lua"] = HEAD .. "\nved.domain 'dup' {}\n" },
                     { "run", "one.lua", "two.lua" })
    assert.are.equal(1, r.code)
    local l = one_line(r)
    assert.truthy(l:find("one.lua:2", 1, true), l)
    assert.truthy(l:find("two.lua:3", 1, true), l)
    assert.truthy(l:find("'dup'", 1, true), l)
  end)

  it("validates the fields of ved.domain", function()
    local cases = {
      { "ved.domain 'a' { verison = 2 }", "unknown field 'verison'" },
      { "ved.domain 'a' { version = 0 }", "'version' must be an integer" },
      { "ved.domain 'a' { state = 5 }", "'state' must be a table" },
      { "ved.domain 'a' { start = 1 }", "'start' must be a function" },
      { "ved.domain 'a' { on = { x = 1 } }", "handler 'x' must be a function" },
      { "ved.domain 'a' { state = { f = print } }",
        "cannot store a function at state.f" },
      { "ved.domain '__x' {}", "invalid domain name '__x'" },
      { "ved.domain 'a b' {}", "invalid domain name 'a b'" },
    }
    for _, c in ipairs(cases) do
      local r = run_in({ ["v.lua"] = HEAD .. c[1] .. "\n" }, { "run", "v.lua" })
      assert.are.equal(1, r.code, c[1])
      local l = one_line(r)
      assert.truthy(l:find("v.lua:2:", 1, true), l)
      assert.truthy(l:find(c[2], 1, true), l)
    end
  end)

  it("rejects unknown flags and commands with exit 2", function()
    local r = run_in({}, { "run", "--bogus", "x.lua" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("unknown option '--bogus'", 1, true))
    r = run_in({}, { "frobnicate" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("unknown command 'frobnicate'", 1, true))
    r = run_in({}, { "run" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("SCRIPT_OR_DIR", 1, true))
  end)

  it("rejects a bad --durability value, in both option forms", function()
    for _, args in ipairs({ { "run", "--durability", "maybe", "a.lua" },
                            { "run", "--durability=maybe", "a.lua" } }) do
      local r = run_in({ ["a.lua"] = HEAD .. "ved.domain 'a' {}\n" }, args)
      assert.are.equal(2, r.code)
      assert.truthy(one_line(r):find("--durability must be sync or nosync",
                                     1, true))
    end
  end)

  it("validates numeric options", function()
    local r = run_in({}, { "run", "--handler-timeout", "soon", "a.lua" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("--handler-timeout", 1, true))
    r = run_in({}, { "run", "--memory-limit=-3", "a.lua" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("--memory-limit", 1, true))
  end)

  it("export and import: bad usage and a missing data dir", function()
    local r = run_in({}, { "import" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("import needs a FILE", 1, true))
    r = run_in({}, { "export", "--bogus" })
    assert.are.equal(2, r.code)
    assert.truthy(one_line(r):find("--bogus", 1, true))
    r = run_in({}, { "export", "--data", "nodir", "out.vx" })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("nodir", 1, true))
  end)

  it("repl without a running host says how to start one", function()
    local r = run_in({}, { "repl", "--data", "nohost.data", "-e", "1" })
    assert.are.equal(1, r.code)
    assert.truthy(one_line(r):find("no host is running on nohost.data", 1,
                                   true))
  end)

  it("prints --help and --version", function()
    local r = run_in({}, { "--version" })
    assert.are.equal(0, r.code)
    assert.are.equal("vedhost 0.1.0\n", r.out)
    r = run_in({}, { "--help" })
    assert.are.equal(0, r.code)
    for _, word in ipairs({ "run", "repl", "inspect", "fsck", "export",
                            "import", "--durability", "--no-watch" }) do
      assert.truthy(r.out:find(word, 1, true), word)
    end
  end)

  it("refuses a second host on the same data dir", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
      ved.domain "a" { start = function(state, ctx) ctx:log("up") end }
    ]])
    local p = proc.start({ "run", "--data", "dd", "a.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "] up"))
    local r = proc.run({ "run", "--data", "dd", "a.lua" }, { cwd = dir })
    proc.signal(p, "TERM")
    local code = proc.wait(p)
    proc.cleanup(p)
    -- the lock is released at exit: a new host may start
    local r2 = proc.run({ "run", "--data=dd", "a.lua" }, {
      cwd = dir, timeout = 2 })
    proc.rmdir(dir)
    assert.are.equal(0, code)
    assert.are.equal(1, r.code)
    local l = one_line(r)
    assert.truthy(l:find("data dir dd is in use by another vedhost (pid " ..
                         p.pid .. ")", 1, true), l)
    assert.are.equal(137, r2.code) -- ran until killed: it got the lock
    assert.truthy(r2.log:find("] up", 1, true))
  end)

  it("creates the data dir with mode 0700 and a LOCK file", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. "ved.domain 'a' {}\nved.exit(0)\n")
    os.execute("mkdir " .. proc.quote(dir .. "/x")) -- only y is created
    local r = proc.run({ "run", "--data", "x/y", "a.lua" }, { cwd = dir })
    local p = io.popen("stat -c %a " .. proc.quote(dir .. "/x/y"))
    local mode = p:read("l")
    p:close()
    local lock = proc.read(dir .. "/x/y/LOCK")
    proc.rmdir(dir)
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("700", mode)
    assert.truthy(lock and lock:match("^%d+\n$"))
  end)

  it("logs a non-storable payload with a clear message and goes on",
     function()
    local r = run_in({ ["a.lua"] = HEAD .. [[
      ved.domain "a" {
        start = function(state, ctx)
          ctx:send("a", "x", { f = function() end })
        end,
        on = { x = function() end },
      }
      ved.domain "b" {
        start = function(state, ctx)
          ctx:send("a", "x", { co = coroutine.create(print) })
        end,
      }
      ved.domain "c" {
        start = function(state, ctx)
          ctx:send("nowhere", "x")
        end,
      }
      ved.domain "d" {
        start = function(state, ctx) ctx:log("still here"); ved.exit(0) end,
      }
    ]] }, { "run", "a.lua" })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("error [a] start failed: a.lua:4: cannot " ..
                             "store a function at payload.f", 1, true), r.log)
    assert.truthy(r.log:find("cannot store a thread at payload.co", 1, true),
                  r.log)
    assert.truthy(r.log:find("ctx:send: no domain 'nowhere'", 1, true), r.log)
    assert.truthy(r.log:find("still here", 1, true))
  end)
end)
