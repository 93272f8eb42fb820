-- http_limits_spec.lua - what a hostile or broken client cannot do to the
-- HTTP ingress and the REPL socket (issue 13, items 8 and 12): slowloris
-- and idle connections time out, the connection cap holds under a low fd
-- limit while the store goes on writing, clients that never read a big
-- GET (or pipelined REPL replies) do not grow the host's memory, /healthz
-- answers while a big GET is being written, a GET shows the version it
-- started from, a half-closed client gets its reply, and a client that
-- resets with answers still to write does not kill the host (SIGPIPE). The
-- clients are build/bin/vh_net_probe (host/tests/net_probe.c). Waits are
-- bounded; no assertion depends on timing.
local proc = require "support.proc"
local q = proc.quote

local PROBE = (os.getenv("VEDHOST_BUILD") or "build") .. "/bin/vh_net_probe"
-- ASan's quarantine keeps freed memory resident: RSS bounds get room
local SLACK = os.getenv("VEDHOST_SANITIZE") and 512 * 1024 or 0

local SCRIPT = [[
local ved = require "ved"
ved.domain "big" {
  state = { n = 0, items = {} },
  on = {
    fill = function(state, p)
      local t = state.items
      for i = p.from, p.to do t["k" .. i] = string.rep(p.ch or "v", 100) end
      return p.to
    end,
    add = function(state, p)
      state.n = state.n + 1
      return { n = state.n }
    end,
  },
}
]]

local function start(http, extra, bin)
  local argv = { "--no-watch", "--handler-timeout", "20000", "--http",
                 http or "0" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  return proc.start_host(SCRIPT, { args = argv, bin = bin, timeout = 10,
                                   ready = "running 1 domain", http = true })
end

local function stop(p)
  return proc.stop_host(p, 20, true) -- the dir: removed by the caller
end

local function sh(cmd)
  local h = io.popen(cmd)
  local out = h:read("a")
  h:close()
  return out
end

-- curl: status (number), body.
local function curl(p, method, path, body, maxtime)
  local bodyf = os.tmpname()
  local cmd = string.format("curl -s --max-time %d -o %s -w '%%{http_code}' "
                            .. "-X %s %s %s", maxtime or 10, q(bodyf), method,
                            body and ("--data-binary " .. q(body)) or "",
                            q(p.url .. path))
  local code = tonumber(sh(cmd))
  local out = proc.read(bodyf) or ""
  os.remove(bodyf)
  return code, out
end

local function metric(p, name)
  local _, b = curl(p, "GET", "/metrics")
  return tonumber(b:match("\n" .. name:gsub("[%-%.%[%]{}\"]", "%%%0") ..
                          " (%d+)"))
end

local function rss_kb(p)
  local s = proc.read("/proc/" .. p.pid .. "/status") or ""
  return tonumber(s:match("VmRSS:%s+(%d+)")) or 0
end

-- A probe in the background: its stdin is a pipe (closing it ends the
-- probe), its stdout a file. Returns { h = popen handle, out = path }.
local function probe_bg(args)
  local out = os.tmpname()
  local parts = { q(PROBE) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(tostring(a)) end
  local h = io.popen(table.concat(parts, " ") .. " >" .. q(out), "w")
  return { h = h, out = out }
end

local function probe_wait(pb, pat, secs)
  local deadline = os.time() + (secs or 20)
  while os.time() <= deadline do
    local s = proc.read(pb.out) or ""
    local m = { s:match(pat) }
    if #m > 0 then return table.unpack(m) end
    proc.sleep(0.05)
  end
  return nil
end

local function probe_end(pb)
  pb.h:close()
  local s = proc.read(pb.out) or ""
  os.remove(pb.out)
  return s
end

-- Fill the state with n keys of 100 bytes (in calls of 50000).
local function fill(p, n, ch)
  for from = 1, n, 50000 do
    local to = math.min(n, from + 49999)
    local c, b = curl(p, "POST", "/domains/big/events/fill",
                      string.format('{"from":%d,"to":%d,"ch":"%s"}', from, to,
                                    ch or "v"), 60)
    assert.are.equal(200, c, b)
  end
end

describe("http limits", function()
  it("closes slowloris and idle connections after their timeouts", function()
    local p = start("0,header-timeout=1s,idle-timeout=1s")
    local out = sh(string.format("%s slow %s 10 20", q(PROBE), p.port))
    assert.truthy(out:find("closed 10 of 10, 408 10", 1, true), out)
    out = sh(string.format("%s idle %s 5 20", q(PROBE), p.port))
    assert.truthy(out:find("closed 5 of 5", 1, true), out)
    local c = curl(p, "GET", "/healthz")
    assert.are.equal(200, c)
    assert.are.equal(10, metric(p, 'vedhost_http_timeouts_total{kind="header"}'))
    assert.are.equal(5, metric(p, 'vedhost_http_timeouts_total{kind="idle"}'))
    local code, log = stop(p)
    assert.are.equal(0, code, log)
  end)

  it("refuses bad options with one line", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    for _, spec in ipairs({ "0,header-timeout=0", "0,nope=1",
                            "0,max-output=lots" }) do
      local r = proc.run({ "run", "--http", spec, "a.lua" }, { cwd = dir })
      assert.are_not.equal(0, r.code, r.log)
      local line = proc.one_line(r)
      assert.truthy(line:find("--http option", 1, true), line)
    end
    proc.rmdir(dir)
  end)

  it("caps connections under a low fd limit; the store still writes",
     function()
    -- 256 fds: a quarter (128) is kept for the store, 128 connections
    local wrap = os.tmpname()
    proc.write(wrap, "#!/bin/sh\nulimit -n 256 || exit 9\nexec " ..
               q(proc.bin) .. ' "$@"\n')
    os.execute("chmod +x " .. q(wrap))
    local p = start("0", { "--durability", "sync" }, wrap)
    local pb = probe_bg({ "hold", p.port, 300, 60 })
    local open, refused = probe_wait(pb, "open (%d+) refused (%d+)", 30)
    assert.are.equal("128", open, proc.logtext(p))
    assert.are.equal("172", refused)
    -- the REPL (another fd) writes state through the store (more fds)
    for i = 1, 3 do
      local r = proc.run({ "repl", "--data", p.wdir .. "/vedhost.data", "-e",
                           "domains.big.state.n = " .. (100 + i) })
      assert.are.equal(0, r.code, r.log)
    end
    probe_end(pb)
    local c, b
    for _ = 1, 100 do -- the probe's connections are closing
      c, b = curl(p, "GET", "/domains/big/state/n")
      if c == 200 then break end
      proc.sleep(0.1)
    end
    assert.are.equal(200, c, b)
    assert.are.equal("103", b)
    assert.are.equal(200, (curl(p, "GET", "/healthz")))
    local code, log = stop(p)
    os.remove(wrap)
    assert.are.equal(0, code, log)
    assert.are.equal(1, #proc.lines_with(log, "at the limit"), log)
    assert.falsy(log:find("Too many open files", 1, true), log)
    local r = proc.run({ "fsck" }, { cwd = p.wdir })
    assert.are.equal(0, r.code, r.log .. r.out)
    proc.rmdir(p.wdir)
  end)

  it("does not buffer a big GET for clients that never read", function()
    local p = start("0")
    fill(p, 200000) -- ~25 MB of JSON
    local c = curl(p, "GET", "/domains/big/state", nil, 60)
    assert.are.equal(200, c)
    local base = rss_kb(p)
    local pb = probe_bg({ "noread", p.port, 20, "/domains/big/state", 120 })
    assert.truthy(probe_wait(pb, "sent (%d+)"))
    local peak = 0
    for _ = 1, 100 do -- until the 20 responses are under way (bounded)
      peak = math.max(peak, rss_kb(p))
      if metric(p, "vedhost_http_streaming_responses") == 20 then break end
      proc.sleep(0.1)
    end
    for _ = 1, 10 do
      peak = math.max(peak, rss_kb(p))
      proc.sleep(0.1)
    end
    assert.are.equal(20, metric(p, "vedhost_http_streaming_responses"))
    probe_end(pb)
    -- 20 clients x (1 MB output limit + one 256 KB step) at most
    assert.is_true(peak - base < 150 * 1024 + SLACK,
                   string.format("RSS grew from %d kB to %d kB", base, peak))
    local code, log = stop(p)
    assert.are.equal(0, code, log)
    proc.rmdir(p.wdir)
  end)

  it("answers /healthz while a big GET is being written, and the GET shows "
     .. "the version it started from", function()
    -- the client reads nothing while the state is rewritten (slow under
    -- ASan): no write timeout meanwhile
    local p = start("0,idle-timeout=10m")
    fill(p, 200000)
    local _, whole = curl(p, "GET", "/domains/big/state", nil, 60)
    local pb = probe_bg({ "lazyget", p.port, "/domains/big/state", 60 })
    assert.truthy(probe_wait(pb, "(sent)"))
    local streaming
    for _ = 1, 200 do
      streaming = metric(p, "vedhost_http_streaming_responses")
      if streaming == 1 then break end
      proc.sleep(0.05)
    end
    assert.are.equal(1, streaming)
    local c, b = curl(p, "GET", "/healthz")
    assert.are.equal(200, c, b)
    -- later slices change every value; the GET under way does not see it
    fill(p, 200000, "w")
    -- still under way: it is answered after /healthz and the writes
    assert.are.equal(1, metric(p, "vedhost_http_streaming_responses"))
    pb.h:write("go\n")
    pb.h:flush()
    local st, bytes, complete, nw = probe_wait(pb,
      "status (%d+) bytes (%d+) complete (%d) w (%d+)", 60)
    probe_end(pb)
    assert.are.equal("200", st, proc.logtext(p))
    assert.are.equal("1", complete, bytes .. "\n" .. proc.logtext(p))
    -- the old version: all of it (and chunk framing), none of the new
    assert.is_true(tonumber(bytes) > #whole, bytes)
    assert.are.equal("0", nw)
    local _, now = curl(p, "GET", "/domains/big/state/items/k1")
    assert.are.equal('"' .. string.rep("w", 100) .. '"', now)
    -- a stop while a GET is under way cuts it, and the store stays clean
    pb = probe_bg({ "lazyget", p.port, "/domains/big/state", 60 })
    assert.truthy(probe_wait(pb, "(sent)"))
    for _ = 1, 200 do
      if metric(p, "vedhost_http_streaming_responses") == 1 then break end
      proc.sleep(0.05)
    end
    fill(p, 200000, "x")
    local code, log = stop(p)
    pb.h:write("go\n")
    pb.h:flush()
    local _, _, done = probe_wait(pb,
      "status (%d+) bytes (%d+) complete (%d) w (%d+)", 60)
    probe_end(pb)
    assert.are.equal(0, code, log)
    assert.are.equal("0", done)
    -- (fsck walks the retained history too: 3 x 200k values replaced)
    local r = proc.run({ "fsck" }, { cwd = p.wdir, timeout = 120 })
    assert.are.equal(0, r.code, r.log .. r.out)
    proc.rmdir(p.wdir)
  end)

  it("answers a client that half-closed after its POST", function()
    local p = start("0")
    local out = sh(string.format("%s halfclose %s %s %s", q(PROBE), p.port,
                                 "/domains/big/events/add", "{}"))
    assert.truthy(out:find("^HTTP/1.1 200 OK"), out)
    assert.truthy(out:find('{"n":1}', 1, true), out)
    assert.truthy(out:find("Connection: close", 1, true), out)
    local _, b = curl(p, "GET", "/domains/big/state/n")
    assert.are.equal("1", b)
    local code, log = stop(p)
    assert.are.equal(0, code, log)
    proc.rmdir(p.wdir)
  end)

  it("ends a change feed followed by a request it cannot parse", function()
    -- The feed is the connection's last response (Connection: close); the
    -- bad request behind it stops reading, so the client's EOF was never
    -- seen and the feed went on forever. Now it ends with its last chunk
    -- and the connection closes, as after any request that cannot be
    -- parsed. (The wait only bounds a hang.)
    local p = start("0")
    local c = curl(p, "POST", "/domains/big/events/add", "{}")
    assert.are.equal(200, c)
    local out = sh(string.format("%s rawhalf %s 60 %s", q(PROBE), p.port,
      q("GET /changes HTTP/1.1\r\nHost: x\r\n\r\n" ..
        "POST /x HTTP/1.1\r\nHost\" x\r\n\r\n")))
    assert.truthy(out:find("^closed %d+ last%-chunk 1"), out)
    -- a plain half-close after GET /changes still ends it too
    out = sh(string.format("%s rawhalf %s 60 %s", q(PROBE), p.port,
      q("GET /changes HTTP/1.1\r\nHost: x\r\n\r\n")))
    assert.truthy(out:find("^closed %d+"), out)
    c = curl(p, "GET", "/healthz")
    assert.are.equal(200, c)
    local code, log = stop(p)
    assert.are.equal(0, code, log)
    proc.rmdir(p.wdir)
  end)

  it("lives on when a client resets with answers still to write, REPL or "
     .. "not", function()
    -- A regular file where the control socket goes: the host runs without
    -- the REPL, whose start used to be the only thing ignoring SIGPIPE.
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    assert.is_true(os.execute("mkdir " .. q(dir .. "/vedhost.data")))
    proc.write(dir .. "/vedhost.data/control.sock", "not a socket")
    local p = proc.start_host(nil, { dir = dir, http = true,
                                     args = { "--no-watch", "--http", "0" },
                                     ready = "running 1 domain" })
    assert.truthy(proc.logtext(p):find("no REPL", 1, true), proc.logtext(p))
    -- 50 pipelined GETs and the reset reach the host while it is stopped:
    -- it reads them all, and its first answer meets the reset (ECONNRESET),
    -- the second a closed socket (EPIPE: SIGPIPE, by default a silent death)
    local pb = probe_bg({ "reset", p.port, 50, "/healthz", 30 })
    assert.are.equal("ready", probe_wait(pb, "(ready)"))
    proc.signal(p, "STOP")
    pb.h:write("go\n")
    pb.h:flush()
    local reset = probe_wait(pb, "(reset)")
    proc.signal(p, "CONT")
    probe_end(pb)
    assert.are.equal("reset", reset)
    local c, b = curl(p, "GET", "/healthz")
    assert.are.equal(200, c, b .. proc.logtext(p))
    local code, log = stop(p)
    assert.are.equal(0, code, log)
    proc.rmdir(dir)
  end)
end)

describe("repl limits", function()
  it("holds one reply per client that pipelines and never reads", function()
    local p = start("0")
    proc.sleep(0.5)
    local base = rss_kb(p)
    local sock = p.wdir .. "/vedhost.data/control.sock"
    local pb = probe_bg({ "repl", sock, 4, 64, 60,
                          'return ("x"):rep(2 * 1024 * 1024)' })
    assert.truthy(probe_wait(pb, "sent (%d+)"))
    local peak = 0
    for _ = 1, 50 do -- the host would work through 256 chunks in this time
      peak = math.max(peak, rss_kb(p))
      proc.sleep(0.1)
    end
    probe_end(pb)
    -- 4 clients x one 2 MB reply (and the chunks' own garbage), not 256
    assert.is_true(peak - base < 64 * 1024 + SLACK,
                   string.format("RSS grew from %d kB to %d kB", base, peak))
    local r = proc.run({ "repl", "--data", p.wdir .. "/vedhost.data", "-e",
                         "return 1 + 1" })
    assert.are.equal(0, r.code, r.log)
    local code, log = stop(p)
    assert.are.equal(0, code, log)
    proc.rmdir(p.wdir)
  end)
end)
