-- qa_contract_spec.lua - regressions found by checking vedhost against
-- DESIGN.md's contract and the README as a new user would (bad input of
-- every kind gets one clear error and changes nothing; what is
-- acknowledged stays). One describe per defect.
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'

local function repl(p, code)
  return proc.run({ "repl", "--data", "vedhost.data", "-e", code },
                  { cwd = p.wdir, timeout = 60 })
end

describe("REPL :reload with bad arguments", function()
  after_each(proc.reap)

  it("is refused with the usage line and reloads nothing", function()
    local p = proc.start_host(HEAD .. [[
ved.domain "c" {
  state = { n = 0 },
  on = { get = function(s) return s.n end },
}
]], { args = { "--no-watch" } })
    -- a script whose reload would be visible: a new event handler
    proc.write(p.wdir .. "/a.lua", HEAD .. [[
ved.domain "c" {
  state = { n = 0 },
  on = { get = function(s) return s.n end,
         new = function() return "new code" end },
}
]])
    for _, args in ipairs({ "--bogus", "--rehearse", "--rehearse abc",
                            "--rehearse 0", "--yes", "--confirm" }) do
      local r = repl(p, ":reload " .. args)
      assert.are.equal(1, r.code, args .. ": " .. r.out .. r.log)
      assert.matches("usage: :reload", r.out .. r.log, 1, true)
      assert.is_nil(proc.logtext(p):find("reload: 1 script", 1, true),
                    args .. ": " .. proc.logtext(p))
    end
    local r = repl(p, 'return send("c", "new")')
    assert.are.equal(1, r.code, r.out .. r.log) -- still the old code
    r = repl(p, ":reload")
    assert.are.equal(0, r.code, r.out .. r.log)
    r = repl(p, 'return send("c", "new")')
    assert.are.equal('"new code"', (r.out:gsub("%s+$", "")))
    assert.are.equal(0, proc.stop_host(p, 60))
  end)
end)

describe("vedhost without a command, or --help/--version with more", function()
  it("refuses each with one line and exit 2", function()
    local dir = proc.tmpdir()
    for _, args in ipairs({ {}, { "--version", "extra" },
                            { "--help", "a", "b" }, { "-V", "x" } }) do
      local r = proc.run(args, { cwd = dir })
      local what = "`vedhost " .. table.concat(args, " ") .. "`"
      assert.are.equal(2, r.code, what .. ": " .. r.log)
      local line = proc.one_line(r)
      assert.matches("see vedhost --help", line, 1, true)
      assert.are.equal("", r.out, what)
    end
    proc.rmdir(dir)
  end)

  it("prints a command's own help for `help CMD` and `--help CMD`", function()
    local own = proc.run({ "diff", "--help" })
    assert.are.equal(0, own.code)
    for _, h in ipairs({ "help", "--help", "-h" }) do
      local r = proc.run({ h, "diff" })
      assert.are.equal(0, r.code, r.log)
      assert.are.equal(own.out, r.out)
    end
    local top = proc.run({ "--help" })
    local r = proc.run({ "help", "help" })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal(top.out, r.out)
    r = proc.run({ "help", "nonsense" })
    assert.are.equal(2, r.code)
    assert.matches("unknown command 'nonsense'", proc.one_line(r), 1, true)
  end)
end)

describe("a result printed into a full disk", function()
  it("is an error (exit 1, one line), not exit 0", function()
    local f = io.open("/dev/full", "w")
    if not f then
      pending("no /dev/full here")
      return
    end
    f:close()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
ved.domain "c" { state = { n = 1 }, start = function(s) s.n = 2; ved.exit(0) end }
]])
    assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
    for _, args in ipairs({ { "inspect" }, { "log" }, { "inspect", "c.n" },
                            { "changes" }, { "fsck" }, { "--help" },
                            { "--version" }, { "diff", "--help" } }) do
      local what = table.concat(args, " ")
      local cmd = "cd " .. proc.quote(dir) .. " && " .. proc.quote(proc.bin)
      for _, a in ipairs(args) do cmd = cmd .. " " .. proc.quote(a) end
      local p = io.popen(cmd .. " >/dev/full 2>err; echo $?")
      local code = tonumber(p:read("a"):match("(%d+)%s*$"))
      p:close()
      local err = proc.read(dir .. "/err")
      assert.are.equal(1, code, what .. ": " .. err)
      assert.are.equal(1, select(2, err:gsub("\n", "")), what .. ": " .. err)
      assert.matches("^vedhost: .*cannot write the output", err)
    end
    proc.rmdir(dir)
  end)
end)

describe("mark/unmark on a stopped data dir", function()
  local TESTBIN = (os.getenv("VEDHOST_BUILD") or "build") ..
                  "/host/host_test_durable"

  it("refuses a manifest of a newer format or a damaged one", function()
    for _, how in ipairs({ "--newer-manifest", "--corrupt-manifest" }) do
      local dir = proc.tmpdir()
      proc.write(dir .. "/a.lua", HEAD .. [[
ved.domain "c" { state = { n = 1 }, start = function(s) s.n = 2; ved.exit(0) end }
]])
      assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
      assert.are.equal(0, proc.run({ "mark", "old" }, { cwd = dir }).code)
      local _, _, code = os.execute(proc.quote(TESTBIN) .. " " .. how .. " " ..
                                    proc.quote(dir .. "/vedhost.data"))
      assert.are.equal(0, code)
      for _, args in ipairs({ { "mark", "m1" }, { "unmark", "old" } }) do
        local r = proc.run(args, { cwd = dir })
        local what = how .. " " .. args[1]
        assert.are.equal(1, r.code, what .. ": " .. r.out .. r.log)
        assert.matches("manifest", proc.one_line(r), 1, true)
        assert.are.equal("", r.out, what)
      end
      proc.rmdir(dir)
    end
  end)
end)

describe("repl with its input from a pipe", function()
  after_each(proc.reap)

  local function piped(p, input)
    local cmd = "cd " .. proc.quote(p.wdir) .. " && printf '%s' " ..
                proc.quote(input) .. " | VEDHOST_HISTORY= " ..
                -- libedit's known leak (ASan trees): see that file
                "LSAN_OPTIONS=suppressions=" .. proc.quote(proc.source ..
                "/host/control/tests/lsan.supp") .. ":print_suppressions=0 " ..
                proc.quote(proc.bin) .. " repl --data vedhost.data " ..
                "2>err; echo \"::$?\""
    local f = io.popen(cmd)
    local out = f:read("a")
    f:close()
    local body, code = out:match("^(.-)::(%d+)%s*$")
    return tonumber(code), body, proc.read(p.wdir .. "/err")
  end

  it("exits 1 when a chunk failed or the input ended mid-chunk", function()
    local p = proc.start_host(HEAD .. [[
ved.domain "c" { state = { n = 0 } }
]], { args = { "--no-watch" } })
    local code, out, err = piped(p, "return 1 + 1\n:domains\n")
    assert.are.equal(0, code, out .. err)
    assert.matches("^2\n", out)
    code, out, err = piped(p, "return 1\nerror('bad')\nreturn 3\n")
    assert.are.equal(1, code, out .. err)
    assert.matches("bad", err, 1, true)
    assert.matches("3", out, 1, true) -- later chunks still ran
    code, out, err = piped(p, ":nonsense\n")
    assert.are.equal(1, code, out .. err)
    code, out, err = piped(p, "domains.c.state.n = 5\nlocal x =\n")
    assert.are.equal(1, code, out .. err)
    assert.matches("incomplete", err, 1, true)
    assert.are.equal("5", proc.run({ "repl", "-e", "return domains.c.state.n" },
                                   { cwd = p.wdir }).out:match("%S+"))
    assert.are.equal(0, proc.stop_host(p, 60))
  end)
end)

describe("inspect PATH in the bracket form that diff and changes print", function()
  it("reaches keys that are not plain names", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [==[
ved.domain "c" { start = function(s)
  s.kv = { ["a.b"] = { x = 1 }, [1.5] = "f", [true] = "t", ["3"] = "s3",
           [3] = "i3", [""] = "empty", ["q\"]"] = "quote", [-2] = "neg",
           [1/0] = "inf", [math.mininteger] = "min", ["\0\n\200"] = "bin" }
  ved.exit(0)
end }
]==])
    assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
    local ch = proc.run({ "changes" }, { cwd = dir })
    assert.matches('["a.b"] = {x = 1}', ch.out, 1, true) -- the printed form
    for path, want in pairs({
      ['c.kv["a.b"]'] = "{x = 1}", ['c.kv["a.b"].x'] = "1",
      ['c.kv[1.5]'] = '"f"', ['c.kv[true]'] = '"t"', ['c.kv["3"]'] = '"s3"',
      ['c.kv[3]'] = '"i3"', ['c.kv.3'] = '"i3"', ['c.kv[""]'] = '"empty"',
      ['c.kv["q\\"]"]'] = '"quote"', ['c.kv[-2]'] = '"neg"',
      ["c.kv['a.b'].x"] = "1", ['c.kv[1/0]'] = '"inf"',
      ['c.kv[math.mininteger]'] = '"min"', ['c.kv["\\0\\n\\200"]'] = '"bin"' }) do
      local r = proc.run({ "inspect", path }, { cwd = dir })
      assert.are.equal(0, r.code, path .. ": " .. r.log)
      assert.are.equal(want .. "\n", r.out, path)
    end
    for path, msg in pairs({ ['c.kv[false]'] = 'no c.kv[false]',
                             ['c.kv["a.b"'] = "bad path",
                             ['c.kv[x]'] = "bad path",
                             ['c.kv[]'] = "bad path",
                             ['c.kv[1]x'] = "bad path" }) do
      local r = proc.run({ "inspect", path }, { cwd = dir })
      assert.are.equal(1, r.code, path)
      assert.matches(msg, proc.one_line(r), 1, true)
    end
    proc.rmdir(dir)
  end)
end)

describe("diff PATH in the bracket form diff itself prints", function()
  it("limits the diff to that key", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [==[
ved.domain "c" { start = function(s)
  s.n = (s.n or 0) + 1
  s.kv = s.kv or {}
  s.kv["a.b"] = { x = s.n }
  s.kv[1.5] = s.n
  s.kv[true] = s.n
  s.kv["q\"]\n"] = s.n
  s.kv.other = s.n
  ved.exit(0)
end }
]==])
    for _ = 1, 2 do
      assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
    end
    local all = proc.run({ "diff", "1" }, { cwd = dir })
    assert.matches('~ c.kv["a.b"].x: 1 -> 2', all.out, 1, true)
    for path, want in pairs({
      ['c.kv["a.b"]'] = '~ c.kv["a.b"].x: 1 -> 2\n',
      ['c.kv["a.b"].x'] = '~ c.kv["a.b"].x: 1 -> 2\n',
      ['c.kv[1.5]'] = '~ c.kv[1.5]: 1 -> 2\n',
      ['c.kv[true]'] = '~ c.kv[true]: 1 -> 2\n',
      ['c.kv["q\\"]\\n"]'] = '~ c.kv["q\\"]\\n"]: 1 -> 2\n',
      ['c.kv.other'] = '~ c.kv.other: 1 -> 2\n' }) do
      for _, args in ipairs({ { "diff", "1", path }, { "diff", "1", "2", path } }) do
        local r = proc.run(args, { cwd = dir })
        assert.are.equal(0, r.code, path .. ": " .. r.log)
        assert.are.equal(want, r.out, path)
      end
    end
    for _, path in ipairs({ 'c.kv["a.b"', 'c.kv[x]', 'c.kv[]', 'c.kv[1]x' }) do
      local r = proc.run({ "diff", "1", "2", path }, { cwd = dir })
      assert.are.equal(2, r.code, path .. ": " .. r.out .. r.log)
      assert.matches("bad path", proc.one_line(r), 1, true)
    end
    proc.rmdir(dir)
  end)
end)

describe("a script that is a binary chunk", function()
  after_each(proc.reap)

  it("is refused with one line naming the file", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/bin.lua", "\27Lua\84\0garbage")
    local r = proc.run({ "run", "bin.lua" }, { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.matches("bin.lua", line, 1, true)
    assert.matches("binary chunk", line, 1, true)
    proc.rmdir(dir)
  end)

  it("fails a reload with a line naming the file", function()
    local p = proc.start_host(HEAD .. 'ved.domain "c" {}\n',
                              { args = { "--no-watch" } })
    proc.write(p.wdir .. "/a.lua", "\27Lua\84\0garbage")
    proc.signal(p, "HUP")
    assert.is_true(proc.wait_log(p, "reload (", 30), proc.logtext(p))
    assert.matches("failed: a.lua: attempt to load a binary chunk",
                   proc.logtext(p), 1, true)
    assert.are.equal(0, proc.stop_host(p, 60))
  end)
end)

describe("export to a FILE that is a FIFO or a device", function()
  after_each(proc.reap)

  it("writes into it, never replacing it with a regular file", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
ved.domain "c" { state = { n = 1 }, start = function(s) s.n = 7; ved.exit(0) end }
]])
    assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
    local q = proc.quote
    assert.is_true(os.execute("mkfifo " .. q(dir .. "/pipe")))
    os.execute("cd " .. q(dir) .. " && (timeout 60 cat pipe > got.exp &)")
    local r = proc.run({ "export", "pipe" }, { cwd = dir, timeout = 60 })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("fifo", (proc.sh("stat -c %F " .. q(dir .. "/pipe"))
                                :gsub("%s+$", "")))
    for _ = 1, 100 do -- the reader may still be writing
      if (proc.read(dir .. "/got.exp") or "") ~= "" then break end
      proc.sleep(0.1)
    end
    proc.sleep(0.2)
    r = proc.run({ "import", "--data", "copy", "got.exp" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "inspect", "--data", "copy", "c.n" }, { cwd = dir })
    assert.are.equal("7\n", r.out)
    -- a device: written to, and its errors reported (not renamed over)
    local f = io.open("/dev/full", "w")
    if f then
      f:close()
      r = proc.run({ "export", "/dev/full" }, { cwd = dir })
      assert.are.equal(1, r.code, r.log)
      assert.matches("No space left on device", proc.one_line(r), 1, true)
      assert.are.equal("character special file",
                       (proc.sh("stat -c %F /dev/full"):gsub("%s+$", "")))
    end
    proc.rmdir(dir)
  end)
end)

describe("diff PATH through a scalar", function()
  it("is refused like inspect when no version can have it", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [==[
ved.domain "c" { start = function(s)
  s.k = (s.k or 0) + 1
  s.n = 5
  if s.k == 2 then s.m = { x = { y = 1 } } else s.m = 7 end
  ved.exit(0)
end }
]==])
    for _ = 1, 2 do
      assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
    end
    for _, args in ipairs({ { "diff", "1", "2", "c.n.x.y" },
                            { "diff", "1", "c.n.x" },
                            { "diff", "1", "2", "c.k.x" } }) do
      local what = table.concat(args, " ")
      local r = proc.run(args, { cwd = dir })
      assert.are.equal(1, r.code, what .. ": " .. r.out .. r.log)
      assert.are.equal("", r.out, what)
      local line = proc.one_line(r)
      assert.matches("is a number, not a table: no " .. args[#args], line, 1,
                     true)
      local ins = proc.run({ "inspect", args[#args] }, { cwd = dir })
      assert.are.equal(1, ins.code)
    end
    -- a scalar in one version, a table in the other: a normal diff
    local r = proc.run({ "diff", "1", "2", "c.m.x.y" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.matches("c.m", r.out, 1, true)
    r = proc.run({ "diff", "2", "1", "c.m.x" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.matches("c.m", r.out, 1, true)
    -- a missing key is still an empty diff
    r = proc.run({ "diff", "1", "2", "c.nosuch.x" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("", r.out)
    proc.rmdir(dir)
  end)
end)

describe("a data dir whose db is a regular file", function()
  it("is named not a directory by inspect and fsck", function()
    local dir = proc.tmpdir()
    os.execute("mkdir " .. proc.quote(dir .. "/d"))
    proc.write(dir .. "/d/db", "not a dir\n")
    for _, args in ipairs({ { "inspect", "--data", "d" },
                            { "fsck", "--data", "d" } }) do
      local what = table.concat(args, " ")
      local r = proc.run(args, { cwd = dir })
      assert.are_not.equal(0, r.code, what)
      local line = proc.one_line(r)
      assert.matches("d/db is not a directory", line, 1, true)
      assert.is_nil(line:find("does not exist", 1, true), what .. ": " .. line)
      assert.are.equal("not a dir\n", proc.read(dir .. "/d/db"))
    end
    proc.rmdir(dir)
  end)
end)

describe("mark, unmark, rollback, recover on an empty data dir", function()
  it("leave the dir as they found it (no LOCK, no db)", function()
    local dir = proc.tmpdir()
    for _, args in ipairs({ { "mark", "m" }, { "unmark", "m" },
                            { "rollback", "--domain", "c", "--to", "1" },
                            { "recover" } }) do
      local what = table.concat(args, " ")
      os.execute("mkdir " .. proc.quote(dir .. "/e"))
      local argv = { args[1], "--data", "e" }
      for i = 2, #args do argv[#argv + 1] = args[i] end
      local r = proc.run(argv, { cwd = dir })
      assert.are.equal(1, r.code, what .. ": " .. r.out .. r.log)
      assert.matches("e/db does not exist", proc.one_line(r), 1, true)
      -- the dir is named once, not "e: e: no vedhost store here"
      assert.is_nil(proc.one_line(r):find("e: e:", 1, true), what)
      assert.are.equal("", proc.sh("ls -A " .. proc.quote(dir .. "/e")),
                       what)
      os.execute("rmdir " .. proc.quote(dir .. "/e"))
      argv[3] = "none"
      r = proc.run(argv, { cwd = dir })
      assert.are.equal(1, r.code, what .. ": " .. r.out .. r.log)
      assert.is_nil(io.open(dir .. "/none"), what)
    end
    proc.rmdir(dir)
  end)
end)

describe("log --domain naming no domain", function()
  it("is one error line and exit 1; a known domain stays exit 0", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
ved.domain "a" { state = { n = 1 }, start = function(s) s.n = s.n + 1 end }
ved.domain "b" { state = { n = 1 }, start = function(s) ved.exit(0) end }
]])
    assert.are.equal(0, proc.run({ "run", "a.lua" }, { cwd = dir }).code)
    -- the version that changed b is dropped: b only in the state now
    assert.are.equal(0, proc.run({ "run", "--retain", "1", "a.lua" },
                                 { cwd = dir }).code)
    local r = proc.run({ "log", "--domain", "nosuch" }, { cwd = dir })
    assert.are.equal(1, r.code, r.out .. r.log)
    assert.are.equal("", r.out)
    assert.matches("no domain 'nosuch' in ./vedhost.data (domains: a, b)",
                   proc.one_line(r), 1, true)
    r = proc.run({ "log", "--domain", "a" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.matches("\n%s+%d+.*a", r.out)
    -- b exists but no retained version changed it: the header alone, exit 0
    r = proc.run({ "log", "--domain", "b" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal(1, select(2, r.out:gsub("\n", "")), r.out)
    proc.rmdir(dir)
  end)
end)

describe("REPL commands that take no arguments, given some", function()
  after_each(proc.reap)

  it("are refused with the command's usage line", function()
    local p = proc.start_host(HEAD .. 'ved.domain "c" { state = { n = 0 } }\n',
                              { args = { "--no-watch" } })
    for _, c in ipairs({ "stats", "domains", "help", "marks", "fork",
                         "unfork", "quit" }) do
      local r = repl(p, ":" .. c .. " x")
      assert.are.equal(1, r.code, c .. ": " .. r.out .. r.log)
      assert.matches("usage: :" .. c, r.out .. r.log, 1, true)
    end
    for _, c in ipairs({ ":stats", ":stats ", ":domains  " }) do
      local r = repl(p, c)
      assert.are.equal(0, r.code, c .. ": " .. r.log)
    end
    assert.are.equal(0, proc.stop_host(p, 60))
  end)
end)
