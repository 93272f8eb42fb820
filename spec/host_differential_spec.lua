-- host_differential_spec.lua - differential_spec.lua's check, end to end:
-- random programs of table operations (spec/support/hostdiff/gen.lua) run
-- once on a plain Lua table (plain.lua, under lua5.4) and once on a
-- domain's state inside `vedhost run` (host.lua), one handler call per
-- step. A step that raises leaves the plain table untouched and is rolled
-- back in the host. Compared (as canonical dumps, spec/support/hostdiff/
-- common.lua): what each step read (R), the state at the end in memory,
-- after a restart, and after export + import into a new dir, with `fsck`
-- clean on both dirs. Then:
--   - the same program with a kill -9 at a random moment: after the
--     restart the state is the plain state after some number of steps
--     (never a torn step), and `fsck` is clean;
--   - the same program as REPL chunks (`repl -e`), killed -9 right after
--     the last one was acknowledged: the restarted state is the whole
--     program's.
-- VH_SEED=<n> replays one seed (printed on failure); VH_HOSTDIFF_SEEDS=<k>
-- runs k seeds (default 3), VH_HOSTDIFF_STEPS the steps of each (50).
local proc = require "support.proc"

local SUPPORT = proc.source .. "/spec/support/hostdiff"
local SEED0 = tonumber(os.getenv("VH_SEED") or "") or os.time()
local NSEEDS = tonumber(os.getenv("VH_HOSTDIFF_SEEDS") or "") or
               (os.getenv("VH_SEED") and 1 or 3)
local NSTEPS = tonumber(os.getenv("VH_HOSTDIFF_STEPS") or "") or 50
local q = proc.quote

local function sh(cmd, what)
  local ok = os.execute(cmd)
  assert(ok, what .. " failed: " .. cmd)
end

local function prepare(seed)
  local dir = proc.tmpdir()
  sh("cp " .. q(SUPPORT .. "/common.lua") .. " " .. q(SUPPORT .. "/host.lua")
     .. " " .. q(dir), "cp")
  sh("lua5.4 " .. q(SUPPORT .. "/gen.lua") .. " " .. seed .. " " .. NSTEPS ..
     " > " .. q(dir .. "/steps.lua"), "gen.lua")
  sh("lua5.4 " .. q(SUPPORT .. "/plain.lua") .. " " .. q(dir), "plain.lua")
  return dir
end

local function run_args(dir, data)
  return { "run", "--no-watch", "--handler-timeout", "30000", "--data",
           dir .. "/" .. (data or "data"), dir .. "/host.lua" }
end

local function host(dir, mode, data)
  return proc.run(run_args(dir, data),
                  { env = { QA_DIR = dir, QA_MODE = mode }, timeout = 180 })
end

-- The first line where two files differ, or nil when they are equal.
local function first_diff(a, b)
  local ta, tb = proc.read(a) or "<missing>", proc.read(b) or "<missing>"
  if ta == tb then return nil end
  local la, lb = {}, {}
  for l in (ta .. "\n"):gmatch("([^\n]*)\n") do la[#la + 1] = l end
  for l in (tb .. "\n"):gmatch("([^\n]*)\n") do lb[#lb + 1] = l end
  for i = 1, math.max(#la, #lb) do
    if la[i] ~= lb[i] then
      return ("line %d: %s | %s"):format(i, (la[i] or "<none>"):sub(1, 200),
                                         (lb[i] or "<none>"):sub(1, 200))
    end
  end
  return "they differ"
end

local function fsck(dir, data)
  local r = proc.run({ "fsck", "--data", dir .. "/" .. data },
                     { timeout = 120 })
  assert.are.equal(0, r.code, r.out .. r.log)
end

describe("differential: domain state in a real host vs a plain table", function()
  after_each(proc.reap)

  for i = 0, NSEEDS - 1 do
    local seed = SEED0 + i
    it("agrees in memory, after a restart and after export/import (seed "
       .. seed .. ")", function()
      local dir = prepare(seed)
      local where = "seed " .. seed .. " (VH_SEED=" .. seed .. "), " .. dir
      local r = host(dir, "apply")
      assert.are.equal(0, r.code, where .. ": " .. r.log:sub(-2000))
      assert.is_nil(first_diff(dir .. "/trace_plain.txt",
                               dir .. "/trace_host.txt"), where .. " trace")
      assert.is_nil(first_diff(dir .. "/final_plain.txt",
                               dir .. "/final_host.txt"), where .. " state")
      r = host(dir, "dump")
      assert.are.equal(0, r.code, where .. ": " .. r.log:sub(-2000))
      assert.is_nil(first_diff(dir .. "/final_plain.txt",
                               dir .. "/final_restart.txt"),
                    where .. " after a restart")
      fsck(dir, "data")
      r = proc.run({ "export", "--data", dir .. "/data", dir .. "/x.exp" })
      assert.are.equal(0, r.code, r.log)
      r = proc.run({ "import", "--data", dir .. "/data2", dir .. "/x.exp" })
      assert.are.equal(0, r.code, r.log)
      os.remove(dir .. "/final_restart.txt")
      r = host(dir, "dump", "data2")
      assert.are.equal(0, r.code, where .. ": " .. r.log:sub(-2000))
      assert.is_nil(first_diff(dir .. "/final_plain.txt",
                               dir .. "/final_restart.txt"),
                    where .. " after export/import")
      fsck(dir, "data2")
      proc.rmdir(dir)
    end)
  end

  it("restarts after kill -9 at the end of some step (seed " .. SEED0 .. ")",
     function()
    math.randomseed(SEED0)
    for round = 1, 2 do
      local dir = prepare(SEED0 + round)
      local where = "seed " .. (SEED0 + round) .. ", " .. dir
      local p = proc.start(run_args(dir),
                           { env = { QA_DIR = dir, QA_MODE = "kill" } })
      proc.track(p)
      proc.wait_log(p, "running", 60)
      proc.sleep(math.random(0, 40) / 100)
      proc.signal(p, "KILL")
      proc.wait(p, 30)
      proc.cleanup(p)
      local r = host(dir, "dump")
      assert.are.equal(0, r.code, where .. ": " .. r.log:sub(-2000))
      fsck(dir, "data")
      local got = (proc.read(dir .. "/final_restart.txt") or ""):gsub("\n$", "")
      local found = false
      for line in io.lines(dir .. "/prefix_plain.txt") do
        if line == got then found = true break end
      end
      assert.is_true(found, where .. ": the restarted state is no step's end")
      proc.rmdir(dir)
    end
  end)

  it("keeps every acknowledged REPL chunk across kill -9 (seed " .. SEED0 ..
     ")", function()
    local dir = prepare(SEED0)
    local where = "seed " .. SEED0 .. ", " .. dir
    local p = proc.start(run_args(dir),
                         { env = { QA_DIR = dir, QA_MODE = "serve" } })
    proc.track(p)
    assert.is_true(proc.wait_log(p, "running", 60), proc.logtext(p))
    for i = 1, NSTEPS do
      -- a step that raises fails its chunk, which is rolled back
      proc.run({ "repl", "--data", dir .. "/data", "-e",
                 "STEPS_RUN(domains.d.state, " .. i .. ")" }, { timeout = 120 })
    end
    proc.signal(p, "KILL")
    proc.wait(p, 30)
    proc.cleanup(p)
    local r = host(dir, "dump")
    assert.are.equal(0, r.code, where .. ": " .. r.log:sub(-2000))
    assert.is_nil(first_diff(dir .. "/final_plain.txt",
                             dir .. "/final_restart.txt"), where)
    fsck(dir, "data")
    proc.rmdir(dir)
  end)
end)
