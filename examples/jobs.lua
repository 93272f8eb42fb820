-- jobs.lua - a small deploy controller: a scheduler hands deploy jobs to a
-- worker, retries failures with exponential backoff, and reports progress.
--
--   vedhost run examples/jobs.lua                       # runs until Ctrl-C
--   JOBS_EXIT_WHEN_DONE=1 vedhost run examples/jobs.lua # exits after wave 1
--
-- Two domains talk only through messages:
--
--   scheduler --run {id, target, attempt}--> worker
--   scheduler <--result {id, ok, err}------- worker
--
-- The worker simulates a deploy that takes a while (a ctx:after timer) and
-- fails deterministically for "flaky" targets on their first attempts, and
-- always for a "broken" one. The scheduler retries a failed job after
-- BASE_MS * 2^(attempt-1) ms (a durable ctx:after timer: with persistence,
-- a pending retry survives a restart), gives up after MAX_ATTEMPTS, and
-- logs a summary when a wave ends. Without JOBS_EXIT_WHEN_DONE it starts a
-- new wave every WAVE_MS, like a controller reconciling forever.
local ved = require "ved"

local BASE_MS = 40      -- first retry delay
local MAX_ATTEMPTS = 4  -- then the job is marked failed
local WORK_MS = 15      -- how long one simulated deploy takes
local WAVE_MS = 5000    -- pause between waves when running forever

-- target -> how many first attempts fail (math.huge: always)
local FLEET = {
  { target = "web-1", fails = 0 },
  { target = "web-2", fails = 1 },
  { target = "api-1", fails = 2 },
  { target = "api-2", fails = 0 },
  { target = "db-migrate", fails = 3 },
  { target = "cache-legacy", fails = math.huge },
}

local exit_when_done = os.getenv("JOBS_EXIT_WHEN_DONE") == "1"

local function submit_wave(state, ctx)
  state.wave = state.wave + 1
  state.open = #FLEET
  ctx:log(string.format("wave %d: deploying %d targets", state.wave, #FLEET))
  for _, f in ipairs(FLEET) do
    state.next_id = state.next_id + 1
    local id = state.next_id
    state.jobs[id] = { target = f.target, attempts = 1, status = "running",
                       wave = state.wave }
    ctx:send("worker", "run", { id = id, target = f.target, attempt = 1 })
  end
end

local function finish(state, job, ctx)
  state.open = state.open - 1
  if state.open > 0 then return end
  local done, failed = 0, 0
  for _, j in pairs(state.jobs) do
    if j.wave == state.wave then
      if j.status == "done" then done = done + 1 else failed = failed + 1 end
    end
  end
  ctx:log(string.format("wave %d finished: %d done, %d failed", state.wave,
                        done, failed))
  if exit_when_done then
    ved.exit(0)
  else
    ctx:after(WAVE_MS, "wave")
  end
end

ved.domain "scheduler" {
  state = { jobs = {}, next_id = 0, wave = 0, open = 0 },
  start = function(state, ctx)
    -- Restarted with jobs still open (persistence, later): their retry
    -- timers and messages are durable, so nothing to resubmit here.
    if state.open == 0 then submit_wave(state, ctx) end
  end,
  on = {
    wave = function(state, _, ctx) submit_wave(state, ctx) end,

    result = function(state, r, ctx)
      local job = state.jobs[r.id]
      if r.ok then
        job.status = "done"
        ctx:log(string.format("job %d %s: deployed on attempt %d", r.id,
                              job.target, job.attempts))
        return finish(state, job, ctx)
      end
      if job.attempts >= MAX_ATTEMPTS then
        job.status = "failed"
        ctx:log(string.format("job %d %s: giving up after %d attempts (%s)",
                              r.id, job.target, job.attempts, r.err))
        return finish(state, job, ctx)
      end
      local delay = BASE_MS * 2 ^ (job.attempts - 1)
      ctx:log(string.format("job %d %s: attempt %d failed (%s); retry in "
                            .. "%d ms", r.id, job.target, job.attempts,
                            r.err, delay))
      ctx:after(delay, "retry", { id = r.id })
    end,

    retry = function(state, p, ctx)
      local job = state.jobs[p.id]
      job.attempts = job.attempts + 1
      ctx:send("worker", "run", { id = p.id, target = job.target,
                                  attempt = job.attempts })
    end,
  },
}

ved.domain "worker" {
  state = { busy = {}, deploys = 0 },
  on = {
    run = function(state, job, ctx)
      state.busy[job.id] = job.target
      ctx:after(WORK_MS, "finished", job)
    end,

    finished = function(state, job, ctx)
      state.busy[job.id] = nil
      state.deploys = state.deploys + 1
      local fails = 0
      for _, f in ipairs(FLEET) do
        if f.target == job.target then fails = f.fails end
      end
      local ok = job.attempt > fails
      ctx:send("scheduler", "result", {
        id = job.id, ok = ok,
        err = (not ok) and "health check timed out" or nil,
      })
    end,
  },
}
