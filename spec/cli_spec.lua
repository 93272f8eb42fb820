-- cli_spec.lua - the command line of `vedhost run`: usage errors are one
-- line on stderr and exit code 2, found before anything is opened (no data
-- dir is created); a data dir whose parent is missing is refused as mkdir
-- would; scripts that are not regular files (a FIFO named *.lua) are
-- refused with one line at start and fail a reload without hanging it.
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'
local SCRIPT = HEAD .. [[
ved.domain "d" {
  state = { n = 0 },
  start = function(state, ctx)
    state.n = state.n + 1
    ctx:log("started", state.n)
  end,
  on = { get = function(state) return state.n end },
}
]]

local function exists(path)
  local ok = os.execute("test -e " .. proc.quote(path))
  return ok == true
end

-- Run `vedhost run ARGS... a.lua` in a fresh dir holding a.lua; returns
-- the result and the dir (the caller removes it).
local function run_in_dir(args)
  local dir = proc.tmpdir()
  proc.write(dir .. "/a.lua", SCRIPT)
  local full = { "run", "--no-watch" }
  for _, a in ipairs(args) do full[#full + 1] = a end
  full[#full + 1] = "a.lua"
  return proc.run(full, { cwd = dir }), dir
end

-- A usage error: exit 2, one line (which is returned), and nothing in the
-- dir but a.lua (no data dir was created or opened).
local function usage_error(args)
  local r, dir = run_in_dir(args)
  local listing = io.popen("ls -A " .. proc.quote(dir)):read("a")
  proc.rmdir(dir)
  assert.are.equal(2, r.code, r.log)
  local line = proc.one_line(r)
  assert.are.equal("a.lua\n", listing, "a data dir was created: " .. listing)
  return line
end

local function mkfifo(path)
  assert(os.execute("mkfifo " .. proc.quote(path)))
end

describe("vedhost run command line", function()
  it("refuses a bad --http port before opening the data dir", function()
    local line = usage_error({ "--http", "99999" })
    assert.truthy(line:find("--http", 1, true), line)
    assert.truthy(line:find("99999", 1, true), line)
    line = usage_error({ "--http=localhost:x" })
    assert.truthy(line:find("localhost:x", 1, true), line)
  end)

  it("refuses an option given twice", function()
    local line = usage_error({ "--http", "0", "--http", "0" })
    assert.truthy(line:find("--http given twice", 1, true), line)
    line = usage_error({ "--data", "x", "--data=y" })
    assert.truthy(line:find("--data given twice", 1, true), line)
    line = usage_error({ "--durability", "sync", "--durability", "nosync" })
    assert.truthy(line:find("--durability given twice", 1, true), line)
  end)

  it("does not take the next option as a value", function()
    local line = usage_error({ "--http", "--data", "X" })
    assert.truthy(line:find("--http needs a value", 1, true), line)
    line = usage_error({ "--data", "--no-watch" })
    assert.truthy(line:find("--data needs a value", 1, true), line)
    line = usage_error({ "--log-level", "--durability", "sync" })
    assert.truthy(line:find("--log-level needs a value", 1, true), line)
    line = usage_error({ "--data=" })
    assert.truthy(line:find("--data needs a value", 1, true), line)
  end)

  it("refuses a value for a flag and an unknown option", function()
    local line = usage_error({ "--no-watch=1" })
    assert.truthy(line:find("--no-watch takes no value", 1, true), line)
    line = usage_error({ "--nope" })
    assert.truthy(line:find("unknown option '--nope'", 1, true), line)
    line = usage_error({ "--handler-timeout", "0" })
    assert.truthy(line:find("--handler-timeout", 1, true), line)
  end)

  it("refuses the same plugin twice before opening anything", function()
    local build = os.getenv("VEDHOST_BUILD") or "build"
    local hello = build .. "/plugins/hello.so"
    local line = usage_error({ "--plugin", hello .. "=d/get", "--plugin",
                               hello .. "=d/get" })
    assert.truthy(line:find("given twice", 1, true), line)
    -- the same file through a symlink and a config
    local dir = proc.tmpdir()
    assert(os.execute("ln -s " .. proc.quote(hello) .. " " ..
                      proc.quote(dir .. "/other.so")))
    line = usage_error({ "--plugin", hello, "--plugin",
                         dir .. "/other.so=d/get" })
    proc.rmdir(dir)
    assert.truthy(line:find("other.so", 1, true), line)
    assert.truthy(line:find("same file", 1, true), line)
  end)

  it("keeps --data=--odd and the usual forms working", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
      ved.domain "d" { start = function() ved.exit(0) end }
    ]])
    local r = proc.run({ "run", "--no-watch", "--data=--odd", "--durability",
                         "nosync", "--log-level=warn", "a.lua" },
                       { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.is_true(exists(dir .. "/--odd/LOCK"))
    proc.rmdir(dir)
  end)

  it("refuses a data dir whose parent is missing, as mkdir does", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local r = proc.run({ "run", "--no-watch", "--data", "missing/x/y",
                         "a.lua" }, { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("missing/x/y", 1, true), line)
    assert.truthy(line:find("missing/x does not exist", 1, true), line)
    assert.is_false(exists(dir .. "/missing"))
    -- the last component alone is created, mode 0700
    proc.write(dir .. "/b.lua", HEAD .. [[
      ved.domain "d" { start = function() ved.exit(0) end }
    ]])
    r = proc.run({ "run", "--no-watch", "--data", "new", "b.lua" },
                 { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    local mode = io.popen("stat -c %a " .. proc.quote(dir .. "/new")):read("l")
    assert.are.equal("700", mode)
    proc.rmdir(dir)
  end)
end)

describe("scripts that are not regular files", function()
  it("refuses a FIFO named on the command line", function()
    local dir = proc.tmpdir()
    mkfifo(dir .. "/f.lua")
    local r = proc.run({ "run", "--no-watch", "f.lua" }, { cwd = dir })
    local data = exists(dir .. "/vedhost.data")
    proc.rmdir(dir)
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("f.lua", 1, true), line)
    assert.truthy(line:find("not a regular file", 1, true), line)
    assert.is_false(data)
  end)

  it("refuses a FIFO in a script directory at start", function()
    local dir = proc.tmpdir()
    os.execute("mkdir " .. proc.quote(dir .. "/s"))
    proc.write(dir .. "/s/a.lua", SCRIPT)
    mkfifo(dir .. "/s/f.lua")
    local r = proc.run({ "run", "--no-watch", "s" }, { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("s/f.lua", 1, true), line)
    assert.truthy(line:find("not a regular file", 1, true), line)
  end)

  it("fails a reload on a FIFO and keeps serving", function()
    local dir = proc.tmpdir()
    os.execute("mkdir " .. proc.quote(dir .. "/s"))
    proc.write(dir .. "/s/a.lua", SCRIPT)
    local p = proc.start({ "run", "--durability", "nosync", "s" },
                         { cwd = dir })
    assert.is_true(proc.wait_log(p, "] started"), proc.logtext(p))
    mkfifo(dir .. "/s/f.lua")
    assert.is_true(proc.wait_log(p, "the old code keeps running", 20),
                   proc.logtext(p))
    local log = proc.logtext(p)
    local line = proc.lines_with(log, "reload (")[1] or ""
    assert.truthy(line:find("failed", 1, true), log)
    assert.truthy(line:find("s/f.lua", 1, true), log)
    assert.truthy(line:find("not a regular file", 1, true), log)
    -- the host still answers, and stops cleanly
    local r = proc.run({ "repl", "-e", "return 40 + 2" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("42\n", r.out)
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p, 20), proc.logtext(p))
    proc.cleanup(p)
    proc.rmdir(dir)
  end)
end)
