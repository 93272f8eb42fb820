-- sandbox_spec.lua - what domain code and REPL chunks may not do (issue 13
-- items 5, 7, 10, 15, 16): the debug library without writes, text-only
-- load, no __gc finalizers, protected metatables, bounded first loads,
-- clear timer-argument errors, error objects that are not strings, and
-- the one rule for a refused domain. Each escape must raise a clear error
-- and leave the host serving. Every wait is bounded (support/proc.lua).
local proc = require "support.proc"

local SCRIPT = [[
local ved = require "ved"
ved.domain "t" {
  state = { n = 0 },
  on = {
    bump = function(state) state.n = state.n + 1; return state.n end,
    try = function(state, code, ctx)
      local f = assert(load(code, "=try", "t", setmetatable({ state = state,
        ctx = ctx }, { __index = _ENV })))
      return f()
    end,
  },
}
]]

local function start_host(args, script)
  local argv = { "--data", "data", "--no-watch" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local p = proc.start_host(script or SCRIPT, { name = "app.lua", args = argv })
  return p.wdir, p
end

local function stop_host(dir, p)
  return (proc.stop_host(p))
end

local function repl(dir, ...)
  local argv = { "repl", "--data", "data" }
  for _, code in ipairs({ ... }) do
    argv[#argv + 1] = "-e"
    argv[#argv + 1] = code
  end
  return proc.run(argv, { cwd = dir, env = { NO_COLOR = "1" } })
end

-- A chunk that must fail with text in its message.
local function fails(dir, code, text)
  local r = repl(dir, code)
  assert.are_not.equal(0, r.code, r.out .. r.log)
  assert.truthy((r.out .. r.log):find(text, 1, true),
                "expected '" .. text .. "' in: " .. r.out .. r.log)
  return r
end

local function ok(dir, code)
  local r = repl(dir, code)
  assert.are.equal(0, r.code, r.out .. r.log)
  return r.out
end

-- Run a script to completion (bounded); returns the result of proc.run.
local function run_script(src, args)
  local dir = proc.tmpdir()
  proc.write(dir .. "/a.lua", src)
  local argv = { "run", "--data", "data", "--no-watch" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "a.lua"
  local r = proc.run(argv, { cwd = dir, timeout = 60 })
  proc.rmdir(dir)
  return r
end

describe("sandbox: REPL chunks and handlers", function()
  local dir, host

  setup(function()
    dir, host = start_host({ "--handler-timeout", "500" })
  end)
  teardown(function() assert.are.equal(0, stop_host(dir, host)) end)

  after_each(function()
    -- the host keeps serving, the domain keeps working
    local before = tonumber(ok(dir, "domains.t.state.n"))
    assert.are.equal(tostring(before + 1) .. "\n", ok(dir, "send('t', 'bump')"))
  end)

  it("has no debug.getregistry (item 5)", function()
    fails(dir, [[debug.getregistry()["ved.roots"] = 5]],
          "debug.getregistry is not available")
    fails(dir, [[require("debug").getregistry()["ved.roots"] = 5]],
          "debug.getregistry is not available")
    fails(dir, [[return package.loaded.debug.getregistry()]],
          "debug.getregistry is not available")
  end)

  it("has no debug.setmetatable / getmetatable / upvalue writes", function()
    fails(dir, "debug.setmetatable(domains.t.state, nil)",
          "debug.setmetatable is not available")
    fails(dir, "debug.getmetatable(domains.t.state)",
          "debug.getmetatable is not available")
    fails(dir, "debug.setupvalue(print, 1, nil)",
          "debug.setupvalue is not available")
    fails(dir, "debug.upvaluejoin(print, 1, print, 1)",
          "debug.upvaluejoin is not available")
    fails(dir, "debug.setlocal(1, 1, nil)", "debug.setlocal is not available")
    fails(dir, "debug.sethook(function() end, 'l')",
          "debug.sethook is not available")
    fails(dir, "debug.setuservalue(domains.t.state, 1)",
          "debug.setuservalue is not available")
    fails(dir, "debug.debug()", "debug.debug is not available")
  end)

  it("keeps debug.traceback and debug.getinfo", function()
    assert.truthy(ok(dir, "debug.traceback('here')"):find("here", 1, true))
    assert.are.equal('"main"\n', ok(dir, "debug.getinfo(1, 'S').what"))
    assert.are.equal('"Lua"\n', ok(dir, "(function() return " ..
                     "debug.getinfo(1, 'S').what end)()"))
    -- the host's C functions on the stack are not handed out
    assert.are.equal('"C"\n', ok(dir, "debug.getinfo(2, 'S').what"))
    assert.are.equal('"C"\n', ok(dir, "debug.getinfo(2.0, 'S').what"))
    assert.are.equal("true\n", ok(dir, "debug.getinfo(2, 'f').func == nil"))
  end)

  it("loads text chunks only", function()
    local out = ok(dir, "load(string.dump(function() return 1 end))")
    assert.truthy(out:find("binary chunk", 1, true), out)
    out = ok(dir, "load(string.dump(function() return 1 end), 'x', 'b')")
    assert.truthy(out:find("binary chunk", 1, true), out)
    assert.are.equal("3\n", ok(dir, "load('return 1 + 2')()"))
    -- no file name would read the host's stdin
    fails(dir, "loadfile()", "bad argument #1 to 'loadfile'")
    fails(dir, "dofile()", "bad argument #1 to 'dofile'")
    fails(dir, "require('x_sandbox_missing')", "module 'x_sandbox_missing' " ..
          "not found")
    -- a Lua module file holding bytecode (the host runs in dir)
    fails(dir, "local f = io.open('binmod.lua', 'wb'); f:write(string.dump(" ..
          "function() return 42 end)); f:close(); return require('binmod')",
          "attempt to load a binary chunk")
    fails(dir, "return loadfile('binmod.lua', 'b')()", "attempt to call a nil")
    fails(dir, "send('t', 'try', 'return load(string.dump(load(\"return " ..
          "1\")))()')",
          "attempt to call a nil value")
  end)

  it("protects metatables of proxies and the ctx", function()
    fails(dir, "getmetatable(domains.t.state).__index = nil",
          "attempt to index a string value")
    fails(dir, "setmetatable(domains.t.state, {})", "table expected")
    fails(dir, "rawset(domains.t.state, 'n', 5)", "table expected")
    fails(dir, "send('t', 'try', 'setmetatable(ctx, nil)')",
          "cannot change a protected metatable")
    -- getmetatable(ctx) is the string "ved.ctx": its __index is nil
    fails(dir, "send('t', 'try', 'getmetatable(ctx).__index.send = nil')",
          "attempt to index a nil value (field '__index')")
    assert.are.equal('"ved.ctx"\n',
                     ok(dir, "send('t', 'try', 'return getmetatable(ctx)')"))
    fails(dir, "setmetatable(_ENV, nil)", "cannot change a protected metatable")
  end)

  it("refuses collectgarbage options that change the collector", function()
    fails(dir, "collectgarbage('stop')", "collectgarbage('stop') is not")
    fails(dir, "collectgarbage('generational')",
          "collectgarbage('generational') is not")
    fails(dir, "collectgarbage('incremental', 1000)",
          "collectgarbage('incremental') is not")
    assert.truthy(ok(dir, "collectgarbage('count')"):match("^%d"))
    assert.are.equal("0\n", ok(dir, "collectgarbage()"))
  end)

  it("refuses __gc metamethods (item 7)", function()
    local spin = "setmetatable({}, {__gc = function() while true do end end})"
    fails(dir, spin, "__gc metamethods are not allowed")
    fails(dir, "send('t', 'try', '" .. spin .. "')",
          "__gc metamethods are not allowed")
    ok(dir, "collectgarbage(); collectgarbage()")
    -- the same table gaining __gc after a first setmetatable
    fails(dir, "local mt = {}; setmetatable({}, mt); mt.__gc = print; " ..
          "setmetatable({}, mt)", "__gc metamethods are not allowed")
  end)

  it("refuses __gc at a reloaded script's top level", function()
    proc.write(dir .. "/app.lua", "setmetatable({}, {__gc = function() " ..
               "while true do end end})\n" .. SCRIPT)
    fails(dir, ":reload", "__gc metamethods are not allowed")
    proc.write(dir .. "/app.lua", SCRIPT)
  end)

  it("bounds a looping __close with the watchdog", function()
    fails(dir, "do local x <close> = setmetatable({}, {__close = function() " ..
          "while true do end end}) end", "time budget")
  end)

  it("gives timer arguments a clear error with file:line (item 15)",
     function()
    for _, v in ipairs({ "0", "-5", "0/0" }) do
      local r = fails(dir, "send('t', 'try', 'ctx:every(" .. v .. ", \"x\")')",
                      "try:1: ctx:every: ")
      assert.is_nil((r.out .. r.log):find("invalid option", 1, true))
      assert.truthy((r.out .. r.log):find("finite number of ms > 0", 1, true))
    end
    for _, v in ipairs({ "2^62", "math.huge", "-1" }) do
      local r = fails(dir, "send('t', 'try', 'ctx:after(" .. v .. ", \"x\")')",
                      "try:1: ctx:after: ")
      assert.is_nil((r.out .. r.log):find("invalid option", 1, true))
    end
    fails(dir, "send('t', 'try', 'ctx:after(\"soon\", \"x\")')",
          "number expected")
  end)
end)

describe("sandbox: first load (item 10, 16)", function()
  it("bounds a top level that loops", function()
    local r = run_script([[
local ved = require "ved"
while true do end
]], { "--handler-timeout", "300" })
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("a.lua", 1, true), line)
    assert.truthy(line:find("took longer than 300 ms", 1, true), line)
  end)

  it("bounds a top level that allocates", function()
    local r = run_script([[
local t = {}
for i = 1, 1e9 do t[i] = string.rep("x", 1000000) .. i end
]], { "--memory-limit", "64", "--handler-timeout", "600000" })
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("a.lua", 1, true), line)
    assert.truthy(line:find("--memory-limit of 64 MB", 1, true), line)
  end)

  it("does not hang on an error object whose __tostring loops", function()
    local r = run_script([[
error(setmetatable({}, {__tostring = function() while true do end end}))
]], { "--handler-timeout", "300" })
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("a.lua", 1, true), line)
  end)

  it("gives a script's top level the same debug", function()
    local r = run_script('debug.getregistry()["ved.roots"] = 5\n')
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("a.lua:1: debug.getregistry is not available",
                            1, true), line)
  end)

  it("refuses __gc at a script's top level", function()
    local r = run_script([[
setmetatable({}, {__gc = function() while true do end end})
]])
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("a.lua:1: ", 1, true), line)
    assert.truthy(line:find("__gc metamethods are not allowed", 1, true), line)
  end)

  it("names the script and describes a table error object", function()
    local r = run_script("\n\nerror({code = 1})\n")
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find("a.lua:3: error object is a table: {code = 1}",
                            1, true), line)
    r = run_script("error()\n")
    assert.are.equal(1, r.code, r.log)
    line = proc.one_line(r)
    assert.truthy(line:find("a.lua:1: error object is nil", 1, true), line)
  end)

  it("quotes a string version", function()
    local r = run_script('require("ved").domain "x" { version = "2" }\n')
    assert.are.equal(1, r.code, r.log)
    local line = proc.one_line(r)
    assert.truthy(line:find('(got "2")', 1, true), line)
  end)
end)

describe("sandbox: a handler's table error object (item 16)", function()
  it("is described in the log", function()
    local dir, host = start_host(nil, [[
local ved = require "ved"
ved.domain "t" { on = { boom = function() error({code = 1}) end } }
]])
    local r = fails(dir, "send('t', 'boom')",
                    "error object is a table: {code = 1}")
    assert.truthy((r.out .. r.log):find("app.lua:2:", 1, true), r.out .. r.log)
    assert.are.equal(0, stop_host(dir, host))
  end)
end)

-- curl METHOD URL: status (number), body.
local function curl(method, url)
  local bodyf = os.tmpname()
  local h = io.popen(string.format(
    "curl -s --max-time 10 -o %s -w '%%{http_code}' -X %s %s",
    proc.quote(bodyf), method, proc.quote(url)))
  local code = tonumber(h:read("a"))
  h:close()
  local out = proc.read(bodyf) or ""
  os.remove(bodyf)
  return code, out
end

describe("sandbox: refused domain (item 16)", function()
  it("is readable but not writable, and says why", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/app.lua", [[
require("ved").domain "t" { version = 2, state = { n = 7 },
  on = { bump = function(s) s.n = s.n + 1 end } }
]])
    local r
    local p = proc.start({ "run", "--data", "data", "--no-watch", "app.lua" },
                         { cwd = dir })
    assert.is_true(proc.wait_log(p, "running"), proc.logtext(p))
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p))
    proc.cleanup(p)
    proc.write(dir .. "/app.lua", [[
require("ved").domain "t" { version = 1, state = { n = 0 },
  on = { bump = function(s) s.n = s.n + 1 end } }
]])
    p = proc.start({ "run", "--data", "data", "--no-watch", "--http", "0",
                     "app.lua" }, { cwd = dir })
    assert.is_true(proc.wait_log(p, "running"), proc.logtext(p))
    assert.is_true(proc.wait_log(p, "downgrade refused"), proc.logtext(p))
    assert.is_true(proc.wait_log(p, "http: listening"), proc.logtext(p))
    local url = "http://127.0.0.1:" ..
      proc.logtext(p):match("http: listening on 127%.0%.0%.1:(%d+)")
    local code, body = curl("GET", url .. "/domains/t/state")
    assert.are.equal(200, code, body)
    assert.truthy(body:find('"n"', 1, true), body)
    code, body = curl("POST", url .. "/domains/t/events/bump")
    assert.are.equal(503, code, body)
    assert.truthy(body:find("domain 't' is refused: ", 1, true), body)
    r = repl(dir, "domains.t.state.n")
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("7\n", r.out)
    r = repl(dir, "domains.t.state.n = 8")
    assert.are_not.equal(0, r.code)
    assert.truthy((r.out .. r.log):find("domain 't' is refused: ", 1, true),
                  r.out .. r.log)
    r = repl(dir, "send('t', 'bump')")
    assert.are_not.equal(0, r.code)
    assert.truthy((r.out .. r.log):find("domain 't' is refused: ", 1, true),
                  r.out .. r.log)
    r = repl(dir, "domains.t.state.n")
    assert.are.equal("7\n", r.out)
    proc.signal(p, "TERM")
    assert.are.equal(0, proc.wait(p))
    proc.cleanup(p)
    proc.rmdir(dir)
  end)
end)
