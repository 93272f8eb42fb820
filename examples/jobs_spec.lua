-- jobs_spec.lua - jobs.lua tested with ved.testing: two domains that talk
-- through messages, retries on durable timers, and a crash in between.
local vt = require "ved.testing"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

local function by_target(jobs)
  local out = {}
  for _, j in pairs(jobs) do out[j.target] = j.status .. "/" .. j.attempts end
  return out
end

describe("jobs", function()
  it("deploys a wave, retrying with backoff, and gives up on a broken target", function()
    local h = vt.host { scripts = { here .. "jobs.lua" } }
    h:advance "1s"
    assert.same({
      ["web-1"] = "done/1", ["web-2"] = "done/2", ["api-1"] = "done/3",
      ["api-2"] = "done/1", ["db-migrate"] = "done/4",
      ["cache-legacy"] = "failed/4",
    }, by_target(h.state.scheduler.jobs))
    assert.equal(1, #h:logs("wave 1 finished: 5 done, 1 failed"))
    -- retries wait 40, 80, 160 ms: db-migrate's last attempt starts at
    -- 15 + 40 + 15 + 80 + 15 + 160 = 325 ms and succeeds 15 ms later
    assert.equal(1, #h:logs("job %d+ db%-migrate: deployed on attempt 4"))
  end)

  it("finishes the wave exactly once after a crash in the middle of it", function()
    local h = vt.host { scripts = { here .. "jobs.lua" } }
    h:advance(100) -- some retries are pending as durable timers
    local open = h.state.scheduler.open
    assert.is_true(open > 0)
    h:restart() -- kill -9: messages and `after` timers are in the store
    h:advance "1s"
    assert.equal(0, h.state.scheduler.open)
    assert.equal(1, #h:logs("wave 1 finished: 5 done, 1 failed"))
    -- 1 + 2 + 3 + 1 + 4 + 4 attempts, no deploy run twice
    assert.equal(15, h.state.worker.deploys)
  end)
end)
