-- fault_slow_spec.lua - fault injection in the style of SQLite's I/O-error
-- tests (issue 13, item 2, item 6 and "Also"): a host under a steady write
-- load whose disk fills up and frees again, and whose store sees injected
-- I/O errors (write, fsync, open) from an LD_PRELOAD shim
-- (spec/support/faultfs.c, built as lib/vh_faultfs.so). Every case asserts
-- that nothing acknowledged is lost (an HTTP POST answered 200 is an
-- acknowledged write), that /healthz answers throughout, and that
-- `vedhost fsck` is clean afterwards. The disk-full cases mount a small
-- tmpfs and are pending when that is not allowed (not root, no mount).
-- Labelled `slow` (spec/CMakeLists.txt: the name holds "slow").
local proc = require "support.proc"
local q = proc.quote

local SCRIPT = [[
local ved = require "ved"
ved.domain "load" {
  state = { count = 0, n = 0, vals = {} },
  start = function(state, ctx) ctx:every(5, "tick") end,
  on = {
    tick = function(state, p, ctx)
      local base = (state.n * 10) % 2000
      for i = 1, 10 do state.vals[base + i] = string.rep("v", 200) end
      state.n = state.n + 1
    end,
    add = function(state, p)
      state.count = state.count + 1
      return { count = state.count }
    end,
  },
}
]]

local live = {} -- hosts started by the running test (killed after it)

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function curl(p, method, path, body, max_time)
  local bodyf = os.tmpname()
  local args = { "curl", "-s", "--max-time", tostring(max_time or 10), "-o",
                 bodyf, "-w", "%{http_code}", "-X", method }
  if body then
    args[#args + 1] = "--data-binary"
    args[#args + 1] = body
  end
  args[#args + 1] = p.url .. path
  local parts = {}
  for i, a in ipairs(args) do parts[i] = q(a) end
  local f = io.popen(table.concat(parts, " ") .. " 2>/dev/null")
  local code = tonumber(f:read("a")) or 0
  f:close()
  local b = proc.read(bodyf) or ""
  os.remove(bodyf)
  return code, b
end

-- Start a host on data dir data (under wdir) with --http; extra env.
local function start(wdir, data, env)
  local argv = { "run", "--no-watch", "--http", "0", "--data", data, "a.lua" }
  local p = proc.start(argv, { cwd = wdir, env = env })
  live[#live + 1] = p
  assert.is_true(proc.wait_log(p, "running 1 domain", 20), proc.logtext(p))
  proc.http_url(p)
  return p
end

-- POST n adds; records every acknowledged count in acked. Returns the
-- number of 200s.
local function adds(p, n, acked, max_time)
  local ok = 0
  for _ = 1, n do
    local c, b = curl(p, "POST", "/domains/load/events/add", "", max_time)
    if c == 200 then
      local v = tonumber(b:match('"count":(%d+)'))
      assert.truthy(v, b)
      acked[#acked + 1] = v
      ok = ok + 1
    end
  end
  return ok
end

local function healthz(p)
  return curl(p, "GET", "/healthz", nil, 10)
end

-- After the host stopped: fsck clean and every acknowledged count there.
local function check_after(wdir, data, acked)
  local r = proc.run({ "fsck", "--data", data }, { cwd = wdir, timeout = 60 })
  assert.are.equal(0, r.code, r.log .. r.out)
  r = proc.run({ "inspect", "--data", data, "load.count" },
               { cwd = wdir, timeout = 30 })
  assert.are.equal(0, r.code, r.log)
  local count = tonumber(r.out:match("%d+"))
  local max = 0
  for _, v in ipairs(acked) do if v > max then max = v end end
  assert.truthy(count and count >= max,
                "count " .. tostring(count) .. " < acknowledged " .. max)
  -- acknowledged counts are distinct: no acknowledged add was undone
  local seen = {}
  for _, v in ipairs(acked) do
    assert.is_nil(seen[v], "count " .. v .. " acknowledged twice")
    seen[v] = true
  end
end

local function kill_live()
  for _, p in ipairs(live) do
    if not p.cleaned and not proc.read(p.rcf) then
      proc.signal(p, "KILL")
      proc.wait(p, 10)
    end
    p.cleaned = true
    proc.cleanup(p)
  end
  live = {}
end

local function wait_health(p, want, secs)
  local deadline = os.time() + secs
  while os.time() <= deadline do
    local c = healthz(p)
    if c == want then return true end
    proc.sleep(0.1)
  end
  return false
end

describe("disk full on a small tmpfs", function()
  local wdir, mnt
  before_each(function()
    wdir = proc.tmpdir()
    proc.write(wdir .. "/a.lua", SCRIPT)
    mnt = wdir .. "/mnt"
    sh("mkdir -p " .. q(mnt))
  end)
  after_each(function()
    kill_live()
    sh("umount " .. q(mnt) .. " 2>/dev/null")
    proc.rmdir(wdir)
  end)

  local function mount(size)
    return sh("mount -t tmpfs -o size=" .. size .. " tmpfs " .. q(mnt) ..
              " 2>/dev/null")
  end

  local function fill()
    -- fills the file system to the last byte (dd stops at ENOSPC)
    sh("dd if=/dev/zero of=" .. q(mnt .. "/filler") ..
       " bs=1M 2>/dev/null; sync")
  end

  it("survives fill, free, refill, free under load; loses nothing acknowledged",
     function()
    if not mount("64m") then
      pending("cannot mount a tmpfs here (needs root and mount)")
      return
    end
    local data = mnt .. "/data"
    local p = start(wdir, data)
    local acked = {}
    assert.is_true(adds(p, 20, acked) == 20, proc.logtext(p))
    for round = 1, 2 do
      fill()
      -- the host keeps answering: /healthz says why it is unhealthy
      assert.is_true(wait_health(p, 503, 20), proc.logtext(p))
      local c, b = healthz(p)
      assert.are.equal(503, c)
      assert.truthy(b:find("space", 1, true) or b:find("store", 1, true), b)
      -- writes are not acknowledged while the disk is full (held or 503)
      adds(p, 3, acked, 2)
      proc.sleep(1) -- the tick handler keeps queueing slices meanwhile
      assert.is_true(healthz(p) == 503, proc.logtext(p))
      os.remove(mnt .. "/filler")
      assert.is_true(wait_health(p, 200, 30), "round " .. round .. ": " ..
                     proc.logtext(p))
      assert.are.equal(10, adds(p, 10, acked), proc.logtext(p))
    end
    proc.signal(p, "TERM")
    local code = proc.wait(p, 30)
    local log = proc.logtext(p)
    p.cleaned = true
    proc.cleanup(p)
    assert.are.equal(0, code, log)
    assert.truthy(log:find("writes to the store are failing", 1, true), log)
    check_after(wdir, data, acked)
  end)

  it("a store that outgrows its disk holds slices, answers, and a second "
     .. "SIGTERM stops it with a non-zero exit naming the dropped slices",
     function()
    if not mount("64m") then
      pending("cannot mount a tmpfs here (needs root and mount)")
      return
    end
    local data = mnt .. "/data"
    local p = start(wdir, data, { VEDHOST_TEST_QUEUE_BYTES = "262144" })
    local acked = {}
    assert.are.equal(5, adds(p, 5, acked), proc.logtext(p))
    fill()
    -- the writer cannot write; the queue fills; slices are held
    assert.is_true(proc.wait_log(p, "store backpressure: hold", 30),
                   proc.logtext(p))
    local c, b = healthz(p)
    assert.are.equal(503, c)
    assert.truthy(b:find("hold", 1, true), b)
    c, b = curl(p, "POST", "/domains/load/events/add", "", 5)
    assert.are.equal(503, c, b)
    assert.truthy(b:find("hold", 1, true), b)
    c, b = curl(p, "GET", "/metrics", nil, 5)
    assert.are.equal(200, c)
    assert.truthy(b:find("vedhost_store_accepting 0", 1, true), b)
    -- the REPL: read-only chunks answer, writing chunks are refused
    local r = proc.run({ "repl", "--data", data, "-e",
                         "return domains.load.state.count" },
                       { cwd = wdir, timeout = 10 })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("5", (r.out:gsub("%s+$", "")))
    r = proc.run({ "repl", "--data", data, "-e",
                   "domains.load.state.count = 0" },
                 { cwd = wdir, timeout = 10 })
    assert.are.equal(1, r.code, r.out .. r.log)
    assert.truthy((r.out .. r.log):find("hold", 1, true), r.out .. r.log)
    r = proc.run({ "repl", "--data", data, "-e", ":stats" },
                 { cwd = wdir, timeout = 10 })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("store hold:     HELD: ", 1, true), r.out)
    -- first SIGTERM waits for the store and says so; the second stops now
    proc.signal(p, "TERM")
    assert.is_true(proc.wait_log(p, "waiting for", 10), proc.logtext(p))
    assert.are.equal(503, (healthz(p))) -- stopping, still answering
    proc.signal(p, "TERM")
    local code = proc.wait(p, 30)
    local log = proc.logtext(p)
    p.cleaned = true
    proc.cleanup(p)
    assert.is_not_nil(code, log)
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find("slice%(s%) dropped"), log)
    os.remove(mnt .. "/filler")
    check_after(wdir, data, acked)
  end)
end)

describe("injected I/O errors (LD_PRELOAD shim)", function()
  local shim = os.getenv("VEDHOST_BUILD") .. "/lib/vh_faultfs.so"
  local wdir, ctl
  before_each(function()
    wdir = proc.tmpdir()
    proc.write(wdir .. "/a.lua", SCRIPT)
    ctl = wdir .. "/faults"
  end)
  after_each(function()
    kill_live()
    proc.rmdir(wdir)
  end)

  local function env()
    return { LD_PRELOAD = shim, VH_FAULT_DIR = "data/db/",
             ASAN_OPTIONS = "verify_asan_link_order=0:abort_on_error=1",
             VH_FAULT_CTL = ctl }
  end

  -- A transient error (ENOSPC) on the given calls for a while, then none.
  local function transient(ops)
    if not io.open(shim) then
      pending("the fault shim was not built")
      return
    end
    local p = start(wdir, "data", env())
    local acked = {}
    assert.are.equal(10, adds(p, 10, acked), proc.logtext(p))
    proc.write(ctl, ops .. " ENOSPC\n")
    assert.is_true(wait_health(p, 503, 20), proc.logtext(p))
    adds(p, 2, acked, 2)
    assert.is_true(healthz(p) == 503)
    os.remove(ctl)
    assert.is_true(wait_health(p, 200, 30), proc.logtext(p))
    assert.are.equal(10, adds(p, 10, acked), proc.logtext(p))
    proc.signal(p, "TERM")
    local code = proc.wait(p, 30)
    local log = proc.logtext(p)
    p.cleaned = true
    proc.cleanup(p)
    assert.are.equal(0, code, log)
    assert.truthy(log:find("writes to the store work again", 1, true), log)
    -- RocksDB saw the failure: the writer reopened it (store_writer.c)
    assert.truthy(log:find("[1-9]%d* reopen%(s%)"), log)
    check_after(wdir, "data", acked)
  end

  it("ENOSPC on write: held, recovers when it clears", function()
    transient("write")
  end)
  it("ENOSPC on fsync: held, recovers when it clears", function()
    transient("fsync")
  end)
  it("ENOSPC on open: held, recovers when it clears", function()
    transient("open")
  end)

  it("EIO on fsync is not retried forever: read-only, unhealthy, a stop "
     .. "exits non-zero and says how many slices were dropped", function()
    if not io.open(shim) then
      pending("the fault shim was not built")
      return
    end
    local p = start(wdir, "data", env())
    local acked = {}
    assert.are.equal(10, adds(p, 10, acked), proc.logtext(p))
    proc.write(ctl, "fsync,write EIO\n")
    assert.is_true(proc.wait_log(p, "writes STOPPED", 20), proc.logtext(p))
    local c, b = healthz(p)
    assert.are.equal(503, c)
    assert.truthy(b:find("stopped", 1, true), b)
    c, b = curl(p, "POST", "/domains/load/events/add", "", 5)
    assert.are.equal(503, c, b)
    -- state shown over HTTP must be durable: nothing more will be
    c, b = curl(p, "GET", "/domains/load/state/count", nil, 5)
    assert.are.equal(503, c, b)
    local r = proc.run({ "repl", "--data", "data", "-e",
                         "return domains.load.state.count" },
                       { cwd = wdir, timeout = 10 })
    assert.are.equal(0, r.code, r.log)
    -- reported once, not once per retry
    assert.are.equal(1, #proc.lines_with(proc.logtext(p), "writes STOPPED"))
    os.remove(ctl)
    proc.signal(p, "TERM")
    local code = proc.wait(p, 30)
    local log = proc.logtext(p)
    p.cleaned = true
    proc.cleanup(p)
    assert.is_not_nil(code, log)
    assert.are_not.equal(0, code, log)
    assert.truthy(log:find("slice%(s%) dropped"), log)
    check_after(wdir, "data", acked)
  end)
end)
