-- http_spec.lua - the HTTP ingress (`vedhost run --http ADDR:PORT`):
-- every endpoint and error code, JSON rules, keep-alive, pipelining, a
-- slow client, a load test with wrk from a second process, the output
-- gate (kill -9 right after a POST response: the write is there after a
-- restart) and a clean stop. Hosts listen on port 0 and the spec reads the
-- port from the log line "http: listening on 127.0.0.1:PORT". Every curl
-- and wrk run is bounded (--max-time, -d, timeout).
local proc = require "support.proc"
local q = proc.quote

local SCRIPT = [[
local ved = require "ved"
ved.domain "counter" {
  state = { count = 0, nested = { a = { b = 1 } }, list = { "x", "y" } },
  on = {
    add = function(state, p)
      state.count = state.count + ((p and p.by) or 1)
      return { count = state.count }
    end,
    fail = function(state, p)
      state.count = 999
      error("boom " .. tostring(p and p.why))
    end,
    echo = function(state, p) return p end,
    raise = function(state, p) error(p.msg, 0) end, -- the text as given
    raise_bytes = function(state, p) -- escapes, UTF-8 kept, bad bytes
      error("q\"b\\s\tc\1\127\195\169\255\224\128x\237\160\128", 0)
    end,
    nothing = function(state, p) end,
    odd = function(state, p)
      return { bin = "\255ok", holes = { [1] = "a", [3] = "c" },
               keys = { [true] = 1, [2.5] = 2 }, inf = math.huge }
    end,
  },
}
]]

local function start(args)
  local argv = { "--no-watch", "--http", "0" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return proc.start_host(SCRIPT, { args = argv, ready = "running 1 domain",
                                   timeout = 10, http = true })
end

local function stop(p)
  return proc.stop_host(p, 10)
end

-- curl: returns status (number), body.
local function curl(p, method, path, body)
  local bodyf = os.tmpname()
  local args = { "curl", "-s", "--max-time", "10", "-o", bodyf, "-w",
                 "%{http_code}", "-X", method }
  if body then
    local inf = os.tmpname()
    proc.write(inf, body)
    args[#args + 1] = "--data-binary"
    args[#args + 1] = "@" .. inf
    args[#args + 1] = "-H"
    args[#args + 1] = "Content-Type: application/json"
    args.inf = inf
  end
  args[#args + 1] = p.url .. path
  local parts = {}
  for i, a in ipairs(args) do parts[i] = q(a) end
  local h = io.popen(table.concat(parts, " "))
  local code = tonumber(h:read("a"))
  h:close()
  local out = proc.read(bodyf) or ""
  os.remove(bodyf)
  if args.inf then os.remove(args.inf) end
  return code, out
end

-- Send raw bytes over one connection (bash /dev/tcp) and read what comes
-- back until the server closes (bounded).
local function raw(p, bytes, secs)
  local f = os.tmpname()
  proc.write(f, bytes)
  local sh = string.format(
    "timeout %d bash -c 'exec 3<>/dev/tcp/127.0.0.1/%s; cat %s >&3; cat <&3'",
    secs or 5, p.port, f)
  local h = io.popen(sh)
  local out = h:read("a")
  h:close()
  os.remove(f)
  return out
end

describe("vedhost http ingress", function()
  local p
  setup(function() p = start() end)
  teardown(function()
    local code, log = stop(p)
    assert.are.equal(0, code, log)
  end)

  it("answers /healthz and /metrics", function()
    local c, b = curl(p, "GET", "/healthz")
    assert.are.equal(200, c)
    assert.are.equal('{"status":"ok"}', b)
    c, b = curl(p, "GET", "/metrics")
    assert.are.equal(200, c)
    assert.truthy(b:find("\nvedhost_slices_total %d+\n"), b)
    assert.truthy(b:find("vedhost_handler_calls_total %d+"), b)
    assert.truthy(b:find('vedhost_http_responses_total{code="200"} %d+'), b)
    assert.truthy(b:find("# TYPE vedhost_slices_total counter", 1, true), b)
  end)

  it("runs a POSTed event and shows the committed state", function()
    local c, b = curl(p, "POST", "/domains/counter/events/add", '{"by":5}')
    assert.are.equal(200, c, b)
    local n = tonumber(b:match('^{"count":(%d+)}$'))
    assert.truthy(n, b)
    c, b = curl(p, "GET", "/domains/counter/state/count")
    assert.are.equal(200, c)
    assert.are.equal(tostring(n), b)
    c, b = curl(p, "GET", "/domains/counter/state/nested/a/b")
    assert.are.equal(200, c)
    assert.are.equal("1", b)
    c, b = curl(p, "GET", "/domains/counter/state/list")
    assert.are.equal('["x","y"]', b)
    c, b = curl(p, "GET", "/domains/counter/state/list/2")
    assert.are.equal('"y"', b)
    c, b = curl(p, "GET", "/domains/counter/state")
    assert.are.equal(200, c)
    assert.truthy(b:find('"nested":{"a":{"b":1}}', 1, true), b)
    c = curl(p, "GET", "/domains/counter/state/missing")
    assert.are.equal(404, c)
    c = curl(p, "GET", "/domains/nope/state")
    assert.are.equal(404, c)
  end)

  it("maps JSON both ways under the documented rules", function()
    local c, b = curl(p, "POST", "/domains/counter/events/echo",
      '{"a":[1,2.5,"x",true,{"b":false}],"e":{},"ea":[],"s":"\\u00e9",' ..
      '"big":9223372036854775807,"f":2.0,"gone":null}')
    assert.are.equal(200, c, b)
    assert.truthy(b:find('"a":[1,2.5,"x",true,{"b":false}]', 1, true), b)
    assert.truthy(b:find('"e":{}', 1, true), b)
    assert.truthy(b:find('"ea":{}', 1, true), b) -- empty table is {}
    assert.truthy(b:find('"s":"\195\169"', 1, true), b)
    assert.truthy(b:find('"big":9223372036854775807', 1, true), b)
    assert.truthy(b:find('"f":2.0', 1, true), b) -- float subtype kept
    assert.falsy(b:find("gone", 1, true), b)     -- null member = absent
    c, b = curl(p, "POST", "/domains/counter/events/echo", "")
    assert.are.equal(200, c)
    assert.are.equal("null", b) -- empty body = nil payload
    c, b = curl(p, "POST", "/domains/counter/events/nothing", "{}")
    assert.are.equal(200, c)
    assert.are.equal("null", b)
    c, b = curl(p, "POST", "/domains/counter/events/echo", '"a\\u0000b"')
    assert.are.equal('"a\\u0000b"', b) -- binary-safe strings
    c, b = curl(p, "POST", "/domains/counter/events/odd", "")
    assert.are.equal(200, c, b)
    assert.truthy(b:find('"bin":"\239\191\189ok"', 1, true), b) -- U+FFFD
    assert.truthy(b:find('"holes":{"1":"a","3":"c"}', 1, true), b)
    assert.truthy(b:find('"true":1', 1, true), b)
    assert.truthy(b:find('"2.5":2', 1, true), b)
    assert.truthy(b:find('"inf":null', 1, true), b)
  end)

  it("refuses bad JSON with 400 and changes nothing", function()
    local _, before = curl(p, "GET", "/domains/counter/state/count")
    local c, b = curl(p, "POST", "/domains/counter/events/add", '{"by":')
    assert.are.equal(400, c)
    assert.truthy(b:find('"error":"bad JSON', 1, true), b)
    c, b = curl(p, "POST", "/domains/counter/events/echo", "[1,null,3]")
    assert.are.equal(400, c)
    assert.truthy(b:find("null inside an array", 1, true), b)
    c, b = curl(p, "POST", "/domains/counter/events/echo",
                "99999999999999999999")
    assert.are.equal(400, c)
    assert.truthy(b:find("too big integer", 1, true), b)
    c = curl(p, "POST", "/domains/counter/events/echo", '"\255"')
    assert.are.equal(400, c) -- invalid UTF-8
    local _, after = curl(p, "GET", "/domains/counter/state/count")
    assert.are.equal(before, after)
  end)

  it("answers 404, 405, 413 and 500 (rolled back)", function()
    local _, before = curl(p, "GET", "/domains/counter/state/count")
    local c, b = curl(p, "POST", "/domains/nope/events/add", "{}")
    assert.are.equal(404, c)
    assert.truthy(b:find("no domain 'nope'", 1, true), b)
    c, b = curl(p, "POST", "/domains/counter/events/nope", "{}")
    assert.are.equal(404, c)
    assert.truthy(b:find("no handler for event 'nope'", 1, true), b)
    c = curl(p, "GET", "/nothing/here")
    assert.are.equal(404, c)
    c = curl(p, "GET", "/domains/counter/events/add")
    assert.are.equal(405, c)
    c = curl(p, "POST", "/domains/counter/state", "{}")
    assert.are.equal(405, c)
    c, b = curl(p, "POST", "/domains/counter/events/echo",
                '"' .. string.rep("a", 2 * 1024 * 1024) .. '"')
    assert.are.equal(413, c)
    c, b = curl(p, "POST", "/domains/counter/events/fail", '{"why":"x"}')
    assert.are.equal(500, c)
    assert.truthy(b:find('"error":"a.lua:%d+: boom x"'), b)
    local _, after = curl(p, "GET", "/domains/counter/state/count")
    assert.are.equal(before, after) -- the 999 was rolled back
    assert.are_not.equal("999", after)
    -- the failure is counted host-wide, and boot time is exported
    c, b = curl(p, "GET", "/metrics")
    assert.are.equal(200, c)
    local errs = tonumber(b:match("\nvedhost_handler_errors_total (%d+)\n"))
    assert.truthy(errs and errs >= 1, b)
    assert.truthy(b:find("\nvedhost_boot_ms %d+\n"), b)
  end)

  it("answers 500 for a handler error whatever its text says", function()
    -- the status comes from the error code, never from the message: these
    -- are the host's own words for 404 and 503 cases
    for _, msg in ipairs({ "the domain is gone",
                           "vedhost stopped before the call ran",
                           "domain 'x' has no handler for event 'y'",
                           "no domain 'x'" }) do
      local c, b = curl(p, "POST", "/domains/counter/events/raise",
                        '{"msg":"' .. msg .. '"}')
      assert.are.equal(500, c, msg)
      assert.truthy(b:find('"error":"' .. msg .. '"', 1, true), b)
    end
  end)

  it("writes an error's text as JSON: escaped, bad UTF-8 bytes as U+FFFD",
     function()
    local c, b = curl(p, "POST", "/domains/counter/events/raise_bytes", "")
    assert.are.equal(500, c)
    local r = "\239\191\189" -- U+FFFD, one per byte of a bad sequence
    assert.are.equal('{"error":"q\\"b\\\\s\\tc\\u0001\127\195\169' ..
                     r .. r .. r .. "x" .. r .. r .. r .. '"}', b)
  end)

  it("keeps connections alive and answers pipelined requests in order",
     function()
    -- curl reuses one connection for both URLs: 1 connect, then 0
    local h = io.popen("curl -s --max-time 10 -o /dev/null -o /dev/null " ..
                       "-w '%{num_connects}\\n' " .. q(p.url .. "/healthz") ..
                       " " .. q(p.url .. "/domains/counter/state/count"))
    local out = h:read("a")
    h:close()
    assert.are.same({ "1", "0" }, { out:match("(%d+)\n(%d+)") })
    local req = "POST /domains/counter/events/echo HTTP/1.1\r\nHost: x\r\n" ..
                "Content-Length: 3\r\n\r\n\"a\"" ..
                "POST /domains/counter/events/echo HTTP/1.1\r\nHost: x\r\n" ..
                "Content-Length: 3\r\n\r\n\"b\"" ..
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    local resp = raw(p, req)
    local bodies = {}
    for b in resp:gmatch("\r\n\r\n([^H]*)") do bodies[#bodies + 1] = b end
    assert.are.same({ '"a"', '"b"', '{"status":"ok"}' }, bodies)
  end)

  it("answers a garbled request with 400 and closes", function()
    local resp = raw(p, "BLAH BLAH\r\n\r\n")
    assert.truthy(resp:find("^HTTP/1.1 400"), resp)
    assert.truthy(resp:find("Connection: close", 1, true), resp)
  end)

  it("is not blocked by a slow client", function()
    -- a client that sends half a request and then waits
    local pidf = os.tmpname()
    os.execute(string.format(
      "(timeout 8 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%s; " ..
      "printf \"POST /domains/counter/events/add HTTP/1.1\\r\\nContent-" ..
      "Length: 100\\r\\n\\r\\n{\" >&3; sleep 6' & echo $! >%s) " ..
      ">/dev/null 2>&1", p.port, pidf))
    proc.sleep(0.3)
    for _ = 1, 5 do
      local c = curl(p, "POST", "/domains/counter/events/add", "{}")
      assert.are.equal(200, c)
    end
    local pid = (proc.read(pidf) or ""):match("%d+")
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.remove(pidf)
  end)

  it("survives a load test from wrk with no errors", function()
    local _, before = curl(p, "GET", "/domains/counter/state/count")
    local lua = os.tmpname()
    proc.write(lua, 'wrk.method = "POST"\nwrk.body = \'{"by":1}\'\n' ..
               'wrk.headers["Content-Type"] = "application/json"\n')
    local h = io.popen(string.format(
      "timeout 20 wrk -t2 -c32 -d3s --timeout 5s -s %s %s 2>&1", q(lua),
      q(p.url .. "/domains/counter/events/add")))
    local out = h:read("a")
    h:close()
    os.remove(lua)
    local n = tonumber(out:match("(%d+) requests in"))
    assert.truthy(n and n > 0, out)
    assert.falsy(out:find("Non%-2xx"), out)
    assert.falsy(out:find("Socket errors"), out)
    local c, b = curl(p, "GET", "/healthz")
    assert.are.equal(200, c, b)
    local _, after = curl(p, "GET", "/domains/counter/state/count")
    -- every answered request was applied (requests still in flight when
    -- wrk stopped may have been applied too)
    assert.is_true(tonumber(after) >= tonumber(before) + n, out)
  end)
end)

describe("vedhost http ingress output gate", function()
  it("keeps a POST answered just before kill -9", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local function boot()
      local h = proc.start({ "run", "--no-watch", "--http", "0", "a.lua" },
                           { cwd = dir })
      assert.is_true(proc.wait_log(h, "http: listening", 10), proc.logtext(h))
      local port = proc.logtext(h):match("listening on 127%.0%.0%.1:(%d+)")
      h.url = "http://127.0.0.1:" .. port
      return h
    end
    local h = boot()
    local c, b = curl(h, "POST", "/domains/counter/events/add", '{"by":41}')
    assert.are.equal(200, c, b)
    proc.signal(h, "KILL")
    proc.wait(h, 10)
    proc.cleanup(h)
    h = boot()
    c, b = curl(h, "GET", "/domains/counter/state/count")
    assert.are.equal(200, c)
    assert.are.equal("41", b)
    proc.signal(h, "TERM")
    assert.are.equal(0, proc.wait(h, 10), proc.logtext(h))
    proc.cleanup(h)
    proc.rmdir(dir)
  end)

  it("shows no state through GET before it is durable", function()
    -- A domain writes every millisecond; whatever value a GET showed must
    -- survive a kill -9 right after the response (read back offline).
    local dir = proc.tmpdir()
    proc.write(dir .. "/t.lua", [[
local ved = require "ved"
ved.domain "tick" {
  state = { n = 0 },
  start = function(state, ctx) ctx:every(1, "t") end,
  on = { t = function(state) state.n = state.n + 1 end },
}
]])
    for round = 1, 5 do
      local h = proc.start({ "run", "--no-watch", "--http", "0", "t.lua" },
                           { cwd = dir })
      assert.is_true(proc.wait_log(h, "http: listening", 10), proc.logtext(h))
      local port = proc.logtext(h):match("listening on 127%.0%.0%.1:(%d+)")
      h.url = "http://127.0.0.1:" .. port
      proc.sleep(0.05 * round)
      local c, b = curl(h, "GET", "/domains/tick/state/n")
      proc.signal(h, "KILL")
      proc.wait(h, 10)
      proc.cleanup(h)
      assert.are.equal(200, c, b)
      local r = proc.run({ "inspect", "tick.n" }, { cwd = dir })
      assert.are.equal(0, r.code, r.log)
      local shown, kept = tonumber(b), tonumber(r.out:match("%d+"))
      assert.truthy(kept and shown and kept >= shown,
                    "round " .. round .. ": GET showed " .. b ..
                    ", the store kept " .. r.out)
    end
    proc.rmdir(dir)
  end)

  it("refuses a port in use with one line", function()
    local h = start()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    local r = proc.run({ "run", "--http", h.port, "a.lua" }, { cwd = dir })
    proc.rmdir(dir)
    stop(h)
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("vedhost: http: cannot listen on 127.0.0.1:" ..
                             h.port .. ": address already in use", 1, true),
                  r.log)
  end)
end)
