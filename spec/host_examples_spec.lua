-- host_examples_spec.lua - every script in examples/ runs under a real
-- vedhost and does what its header says.
local proc = require "support.proc"

local function example(name)
  return proc.source .. "/examples/" .. name
end

describe("examples", function()
  it("hello.lua ticks five times and exits 0 by itself", function()
    local dir = proc.tmpdir()
    local r = proc.run({ "run", example("hello.lua") }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("hello: run 1, tick 5 (0 left)", 1, true), r.out)
    -- a second run in the same data dir carries on from the stored state
    r = proc.run({ "run", example("hello.lua") }, { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("hello: run 2, tick 10 (0 left)", 1, true), r.out)
  end)

  it("counter.lua ticks every second and stops on SIGTERM", function()
    local dir = proc.tmpdir()
    local p = proc.start({ "run", example("counter.lua") }, { cwd = dir })
    local ok = proc.wait_log(p, "count = 2 recent: 2")
    proc.signal(p, "TERM")
    local code = proc.wait(p)
    local log = proc.logtext(p)
    proc.cleanup(p)
    proc.rmdir(dir)
    assert.is_true(ok, log)
    assert.are.equal(0, code, log)
    assert.truthy(log:find("[counter] starting at count 0", 1, true), log)
  end)

  it("jobs.lua deploys, retries with backoff and exits when asked",
     function()
    local r = proc.run({ "run", example("jobs.lua") },
                       { env = { JOBS_EXIT_WHEN_DONE = "1" } })
    assert.are.equal(0, r.code, r.log)
    local log = r.log
    -- exponential backoff for the job that needs four attempts
    local delays = {}
    local pat = "db%-migrate: attempt %d failed %b(); retry in (%d+) ms"
    for d in log:gmatch(pat) do delays[#delays + 1] = tonumber(d) end
    assert.are.same({ 40, 80, 160 }, delays)
    assert.truthy(log:find("db-migrate: deployed on attempt 4", 1, true))
    assert.truthy(log:find("cache-legacy: giving up after 4 attempts", 1,
                           true))
    assert.truthy(log:find("wave 1 finished: 5 done, 1 failed", 1, true))
    -- each job finished exactly once
    for id = 1, 6 do
      local n = 0
      for _ in log:gmatch("job " .. id .. " [%w-]+: deployed") do n = n + 1 end
      for _ in log:gmatch("job " .. id .. " [%w-]+: giving up") do n = n + 1 end
      assert.are.equal(1, n, "job " .. id)
    end
  end)

  it("jobs.lua keeps running without the option", function()
    local dir = proc.tmpdir()
    local p = proc.start({ "run", example("jobs.lua") }, { cwd = dir })
    local ok = proc.wait_log(p, "wave 1 finished")
    proc.sleep(0.3)
    local alive = os.execute("kill -0 " .. p.pid .. " 2>/dev/null")
    proc.signal(p, "TERM")
    local code = proc.wait(p)
    local log = proc.logtext(p)
    proc.cleanup(p)
    proc.rmdir(dir)
    assert.is_true(ok, log)
    assert.is_true(alive == true, log)
    assert.are.equal(0, code, log)
  end)
end)
