-- repl_spec.lua - `vedhost repl -e` against a real running host (issue 6):
-- reads, writes seen by the next event, atomic rollback of a failing
-- multi-domain chunk, expressions and statements, several results, nil,
-- send() returning the handler's reply, :domains, :stats, the socket's
-- mode, the watchdog and memory limit on chunks, and no host at all.
-- Raw frames on the socket and the console on a pseudo-terminal are in
-- host/tests/test_repl_host.c. Every wait is bounded (support/proc.lua).
local proc = require "support.proc"

local SCRIPT = [[
local ved = require "ved"
ved.domain "counter" {
  state = { count = 0, recent = {} },
  on = {
    bump = function(state, n, ctx)
      state.count = state.count + (n or 1)
      table.insert(state.recent, state.count)
      return state.count
    end,
    show = function(state, p, ctx) ctx:log("count", state.count) end,
    fail = function(state)
      state.count = -1
      error("bump refused")
    end,
    spin = function(state)
      state.count = -2
      while true do end
    end,
    relay = function(state, p, ctx)
      state.relayed = p
      ctx:send("clock", "tick")
      return { got = p }
    end,
  },
}
ved.domain "clock" {
  state = { ticks = 0 },
  on = {
    tick = function(state, p, ctx)
      state.ticks = state.ticks + 1
      ctx:log("ticks", state.ticks)
    end,
  },
}
]]

-- Start a host on a fresh dir; returns the dir and the process handle.
local function start_host(args)
  local argv = { "--data", "data" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local p = proc.start_host(SCRIPT, { name = "app.lua", args = argv })
  return p.wdir, p
end

local function stop_host(dir, p)
  return (proc.stop_host(p))
end

-- Wait until the host's log has text at least n times.
local function wait_count(p, text, n)
  for _ = 1, 500 do
    if #proc.lines_with(proc.logtext(p), text) >= n then return true end
    proc.sleep(0.02)
  end
  return false
end

-- vedhost repl --data DIR/data -e CODE... ; returns { code, out, log }.
local function repl(dir, ...)
  local argv = { "repl", "--data", "data" }
  for _, code in ipairs({ ... }) do
    argv[#argv + 1] = "-e"
    argv[#argv + 1] = code
  end
  return proc.run(argv, { cwd = dir, env = { NO_COLOR = "1" } })
end

-- The output of a chunk that must succeed.
local function ok(dir, ...)
  local r = repl(dir, ...)
  assert.are.equal(0, r.code, r.log)
  return r.out
end

describe("vedhost repl -e", function()
  local dir, host

  setup(function() dir, host = start_host() end)
  teardown(function() assert.are.equal(0, stop_host(dir, host)) end)

  before_each(function()
    -- a known state for every test, made through the REPL itself
    ok(dir, "domains.counter.state.count = 0; domains.counter.state.recent" ..
         " = {}; domains.clock.state.ticks = 0; domains.counter.state" ..
         ".relayed = nil")
  end)

  it("reads a value", function()
    assert.are.equal("0\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal('{count = 0, recent = {}}\n',
                     ok(dir, "domains.counter.state"))
  end)

  it("writes a value that later chunks and the next event see", function()
    assert.are.equal("", ok(dir, "domains.counter.state.count = 41"))
    assert.are.equal("41\n", ok(dir, "domains.counter.state.count"))
    -- the domain's own handler sees the write
    assert.are.equal("42\n", ok(dir, 'send("counter", "bump")'))
    assert.are.equal("{42}\n", ok(dir, "domains.counter.state.recent"))
    -- and so does an event delivered through the queue
    assert.are.equal("", ok(dir, 'ved.send("counter", "show")'))
    assert.is_true(proc.wait_log(host, "count 42"), proc.logtext(host))
  end)

  it("prints expressions; statements print nothing", function()
    assert.are.equal("3\n", ok(dir, "1 + 2"))
    assert.are.equal("", ok(dir, "answer = 6 * 7"))
    -- globals stay between inputs, locals do not
    assert.are.equal("42\n", ok(dir, "answer"))
    assert.are.equal("nil\n", ok(dir, "local gone = 1", "gone"))
  end)

  it("prints every result on its own line, nil included", function()
    assert.are.equal('1\n"two"\n{3, x = true}\nnil\n',
                     ok(dir, '1, "two", {3, x = true}, nil'))
    assert.are.equal("nil\n", ok(dir, "nil"))
    assert.are.equal("nil\nnil\n", ok(dir, "nil, nil"))
    assert.are.equal('"a\\nb"\n2.0\n', ok(dir, '"a\\nb", 2.0'))
  end)

  it("elides long tables with a count", function()
    local out = ok(dir, "local t = {} for i = 1, 10000 do t[i] = i end " ..
                   "return t")
    local tail = "\n  100,\n  -- 9900 more\n}\n"
    assert.are.equal(tail, out:sub(-#tail))
    local head = "{\n  1,\n  2,\n"
    assert.are.equal(head, out:sub(1, #head))
  end)

  it("sends print output with the reply", function()
    assert.are.equal("hello\t1\n2\n", ok(dir, 'print("hello", 1) return 2'))
  end)

  it("returns the handler's reply from send()", function()
    assert.are.equal("5\n", ok(dir, 'send("counter", "bump", 5)'))
    local ticks = #proc.lines_with(proc.logtext(host), "] ticks ")
    assert.are.equal('{got = "p"}\n', ok(dir, 'send("counter", "relay", "p")'))
    assert.are.equal('"p"\n', ok(dir, "domains.counter.state.relayed"))
    -- the handler's ctx:send is delivered after the chunk's slice
    assert.is_true(wait_count(host, "] ticks ", ticks + 1), proc.logtext(host))
    assert.are.equal("1\n", ok(dir, "domains.clock.state.ticks"))
  end)

  it("exits 1 with the message and rolls every domain back", function()
    local r = repl(dir, "domains.clock.state.ticks = 99; " ..
                   "domains.counter.state.count = 99; " ..
                   'table.insert(domains.counter.state.recent, 1); ' ..
                   'error("changed my mind")')
    assert.are.equal(1, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.log:find("changed my mind", 1, true), r.log)
    assert.truthy(r.log:find("stack traceback", 1, true), r.log)
    assert.are.equal("0\n0\n{}\n", ok(dir, "domains.clock.state.ticks, " ..
                     "domains.counter.state.count, " ..
                     "domains.counter.state.recent"))
  end)

  it("undoes a failing handler and fails the chunk", function()
    local r = repl(dir, 'domains.clock.state.ticks = 5; send("counter", "fail")')
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("handler 'fail' of domain 'counter' failed", 1,
                             true), r.log)
    assert.truthy(r.log:find("bump refused", 1, true), r.log)
    assert.are.equal("0\n0\n", ok(dir, "domains.counter.state.count, " ..
                     "domains.clock.state.ticks"))
    -- caught with pcall: only the handler is undone, the chunk commits
    local out = ok(dir, "domains.clock.state.ticks = 5; " ..
                   'local ok = pcall(send, "counter", "fail"); return ok')
    assert.are.equal("false\n", out)
    assert.are.equal("0\n5\n", ok(dir, "domains.counter.state.count, " ..
                     "domains.clock.state.ticks"))
  end)

  it("drops the messages of a chunk that fails", function()
    local r = repl(dir, 'ved.send("clock", "tick"); ' ..
                   'send("counter", "relay", 1); error("no")')
    assert.are.equal(1, r.code)
    -- a later committed tick proves delivery runs; the dropped ones never
    -- ran (ticks counts only this one)
    local before = #proc.lines_with(proc.logtext(host), "] ticks ")
    ok(dir, 'ved.send("clock", "tick")')
    assert.is_true(wait_count(host, "] ticks ", before + 1),
                   proc.logtext(host))
    assert.are.equal("1\nnil\n", ok(dir, "domains.clock.state.ticks, " ..
                     "domains.counter.state.relayed"))
  end)

  it("reports syntax errors and incomplete chunks", function()
    local r = repl(dir, "x = = 1")
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("unexpected symbol", 1, true), r.log)
    r = repl(dir, "for i = 1, 2 do")
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("incomplete chunk", 1, true), r.log)
  end)

  it("lists domains with version, keys and bytes", function()
    local out = ok(dir, ":domains")
    assert.truthy(out:find("^name +version +keys +bytes\n"), out)
    assert.truthy(out:find("\ncounter +1 +2 +%d+\n"), out)
    assert.truthy(out:find("\nclock +1 +1 +%d+\n"), out)
    local ok2 = repl(dir, ":nonsense")
    assert.are.equal(1, ok2.code)
    assert.truthy(ok2.log:find("unknown command ':nonsense'", 1, true))
  end)

  it("shows stats", function()
    local out = ok(dir, ":stats")
    for _, field in ipairs({ "slices: +%d+\n", "slice rate: +[%d.]+/s",
                             "flush lag: +%d+ slice%(s%), [%d.]+ ms",
                             "bytes written: +[%d.]+ MB in %d+ batch",
                             "store writes: +ok",
                             "last error: " }) do
      assert.truthy(out:find(field), field .. " in\n" .. out)
    end
    assert.truthy(ok(dir, ":help"):find(":domains", 1, true))
    -- a handler that fails in the host shows up as the last error
    local errors = #proc.lines_with(proc.logtext(host), "bump refused")
    ok(dir, 'ved.send("counter", "fail")')
    assert.is_true(wait_count(host, "bump refused", errors + 1))
    out = ok(dir, ":stats")
    assert.truthy(out:find("last error: +[%d.]+ s ago: %[counter%] handler " ..
                           "'fail' failed: app.lua:%d+: bump refused"), out)
  end)

  it("reloads the scripts and keeps the state", function()
    ok(dir, "domains.counter.state.count = 12")
    proc.write(dir .. "/app.lua", SCRIPT:gsub("state.count %+ %(n or 1%)",
                                              "state.count + 100 * (n or 1)"))
    local out = ok(dir, ":reload")
    assert.truthy(out:find("reload:", 1, true), out)
    assert.are.equal("112\n", ok(dir, 'send("counter", "bump")'))
    proc.write(dir .. "/app.lua", SCRIPT)
    ok(dir, ":reload")
    assert.are.equal("113\n", ok(dir, 'send("counter", "bump")'))
  end)

  it("creates the control socket with mode 0600", function()
    local p = io.popen("stat -c %a " .. proc.quote(dir .. "/data/control.sock"))
    local mode = p:read("l")
    p:close()
    assert.are.equal("600", mode)
  end)
end)

describe("vedhost repl limits", function()
  it("aborts an endless chunk, rolls it back and stays healthy", function()
    local dir, host = start_host({ "--handler-timeout", "200" })
    local r = repl(dir, "domains.counter.state.count = 7; while true do end")
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("time budget of 200 ms", 1, true), r.log)
    assert.are.equal("0\n", ok(dir, "domains.counter.state.count"))
    -- the same inside a handler run by send(), even under pcall
    r = repl(dir, 'domains.clock.state.ticks = 3; pcall(send, "counter", ' ..
             '"spin"); domains.clock.state.ticks = 4')
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("time budget of 200 ms", 1, true), r.log)
    assert.are.equal("0\n0\n", ok(dir, "domains.clock.state.ticks, " ..
                     "domains.counter.state.count"))
    assert.are.equal(0, stop_host(dir, host))
  end)

  it("aborts a chunk past the memory limit", function()
    -- A generous time budget and 1 MB strings: the memory limit must be what
    -- stops the chunk, however slow the machine (ASan under load).
    local dir, host = start_host({ "--memory-limit", "32",
                                   "--handler-timeout", "600000" })
    local r = repl(dir, "domains.counter.state.count = 7; local t = {} " ..
                   "for i = 1, 1e8 do t[i] = ('x'):rep(1 << 20) .. i end")
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("not enough memory", 1, true), r.log)
    assert.are.equal("0\n", ok(dir, "domains.counter.state.count"))
    assert.are.equal(0, stop_host(dir, host))
  end)

  it("stops the host with ved.exit after replying", function()
    local dir, host = start_host()
    assert.are.equal("", ok(dir, "domains.counter.state.count = 1; " ..
                            "ved.exit(3)"))
    assert.are.equal(3, proc.wait(host))
    proc.cleanup(host)
    proc.rmdir(dir)
  end)

  it("says so when no host runs on the data dir", function()
    local dir = proc.tmpdir()
    local r = proc.run({ "repl", "--data", "data", "-e", "1" }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.truthy(r.log:find("no host is running on data", 1, true), r.log)
    assert.truthy(r.log:find("vedhost run", 1, true), r.log)
    proc.rmdir(dir)
  end)

  -- "the value persists after kill -9 right after the reply": see
  -- spec/persist_restart_spec.lua (it needs the store, host/runtime/durable.c).
end)
