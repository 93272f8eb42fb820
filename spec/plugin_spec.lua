-- plugin_spec.lua - native plugins (`vedhost run --plugin PATH.so`): the
-- example plugin (examples/plugins/hello.c) loads, gives domain scripts
-- its Lua module, calls a domain through the ABI and gets the reply, and
-- stops cleanly; bad plugins (wrong ABI, not a plugin, missing file,
-- failing init) are refused at start with one line and exit code 1.
local proc = require "support.proc"

local build = os.getenv("VEDHOST_BUILD") or "build"
local HELLO = build .. "/plugins/hello.so"
local BAD_ABI = build .. "/plugins/bad_abi.so"
local OLD_ABI = build .. "/plugins/old_abi.so"

local SCRIPT = [[
local ved = require "ved"
local hello = require "hello"
ved.domain "counter" {
  state = { pings = 0 },
  on = {
    ping = function(state, p)
      state.pings = state.pings + 1
      return { greet = hello.greet(p.from), n = p.n, count = hello.count(),
               pings = state.pings }
    end,
  },
}
]]

local function vedhost_lines(log)
  return proc.lines_with(log, "vedhost: ")
end

describe("vedhost plugins", function()
  it("loads the example plugin: module, call, reply, stop", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local p = proc.start({ "run", "--no-watch", "--plugin",
                           HELLO .. "=counter/ping", "a.lua" }, { cwd = dir })
    local ok = proc.wait_log(p, "hello: counter/ping replied", 10)
    local log = proc.logtext(p)
    assert.is_true(ok, log)
    assert.truthy(log:find("plugin hello loaded", 1, true), log)
    local reply = log:match("hello: counter/ping replied ([^\n]*)")
    assert.truthy(reply:find('"greet":"hello, hello"', 1, true), reply)
    assert.truthy(reply:find('"n":1', 1, true), reply)
    assert.truthy(reply:find('"count":1', 1, true), reply)
    assert.truthy(reply:find('"pings":1', 1, true), reply)
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p, 10), proc.logtext(p))
    assert.truthy(proc.logtext(p):find("hello: stopped", 1, true))
    proc.cleanup(p)
    proc.rmdir(dir)
  end)

  it("gives the module to scripts without a call target", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", [[
      local ved = require "ved"
      local hello = require "hello"
      ved.domain "d" {
        start = function(state, ctx)
          ctx:log("greet", hello.greet("x"), hello.count())
          ved.exit(0)
        end,
      }
    ]])
    local r = proc.run({ "run", "--no-watch", "--plugin", HELLO, "a.lua" },
                       { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("greet\thello, x\t1", 1, true)
                  or r.log:find("greet hello, x 1", 1, true), r.log)
  end)

  it("refuses a plugin built for another ABI", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT:gsub('local hello = require "hello"\n',
                                            "local hello = {}\n"))
    local r = proc.run({ "run", "--no-watch", "--plugin", BAD_ABI, "a.lua" },
                       { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(1, r.code, r.log)
    local lines = vedhost_lines(r.log)
    assert.are.equal(1, #lines, r.log)
    assert.truthy(lines[1]:find("built for plugin ABI 2.0", 1, true), r.log)
    assert.truthy(lines[1]:find("has ABI 1%.%d+"), r.log)
    assert.truthy(lines[1]:find("rebuild", 1, true), r.log)
  end)

  it("loads a plugin built for an older minor ABI (1.2)", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", 'local ved = require "ved"\n' ..
               'ved.domain "x" { start = function() ved.exit(0) end }\n')
    local r = proc.run({ "run", "--no-watch", "--plugin", OLD_ABI, "a.lua" },
                       { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.log:find("minor 2 plugin runs", 1, true), r.log)
    assert.truthy(r.log:find("ABI 1.2)", 1, true), r.log)
  end)

  it("refuses a shared object that is not a plugin", function()
    local p = io.popen("ls /usr/lib/*/liblua5.4.so.0 | head -1")
    local lib = p:read("l")
    p:close()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local r = proc.run({ "run", "--plugin", lib, "a.lua" }, { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("missing symbol vedhost_plugin_abi", 1, true),
                  r.log)
  end)

  it("refuses a missing file and a failing init", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local r = proc.run({ "run", "--plugin", dir .. "/nope.so", "a.lua" },
                       { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("nope.so: cannot load", 1, true), r.log)
    r = proc.run({ "run", "--plugin", HELLO .. "=fail", "a.lua" },
                 { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    assert.are.equal(1, #vedhost_lines(r.log), r.log)
    assert.truthy(r.log:find("init failed: asked to fail by its config", 1,
                             true), r.log)
    proc.rmdir(dir)
  end)
end)
