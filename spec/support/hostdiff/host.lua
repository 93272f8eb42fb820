-- host.lua: the domain script of spec/host_differential_spec.lua. QA_DIR
-- holds steps.lua and common.lua; QA_MODE says what to do:
--   apply  send one "step" event per step (each its own handler call), then
--          "fin": dump the state and ved.exit(0)
--   kill   the same without the exit (the spec kills the host)
--   serve  nothing at load; STEPS_RUN(state, i) runs a step (REPL)
--   dump   dump the restored state in start() and exit
local ved = require "ved"
local DIR = os.getenv("QA_DIR")
local mode = os.getenv("QA_MODE")
local C = dofile(DIR .. "/common.lua")
local STEPS = dofile(DIR .. "/steps.lua")
_G.ALIAS = function(x) return x end
_G.PAIRS = pairs
_G.FN = function() return function() end end
_G.CYC = function() local c = {} c.me = c return c end
local tf = io.open(DIR .. "/trace_host.txt", "a")
local function R(...)
  local l = {}
  C.rec(l)(...)
  tf:write(l[1], "\n")
  tf:flush()
end
local function out(name, s)
  local f = io.open(DIR .. "/" .. name, "w")
  f:write(s, "\n")
  f:close()
end
ved.domain "d" {
  state = {},
  start = function(state)
    if mode == "dump" then
      out("final_restart.txt", C.dump(state))
      ved.exit(0)
    end
  end,
  on = {
    step = function(state, i)
      tf:write("step " .. i .. "\n")
      local ok, e = pcall(STEPS[i], state, R)
      if not ok then tf:write("error\n") tf:flush() error(e, 0) end
    end,
    fin = function(state)
      out("final_host.txt", C.dump(state))
      if mode == "apply" then ved.exit(0) end
      out("done", "1")
    end,
  },
}
_G.STEPS_RUN = function(state, i) return STEPS[i](state, R) end
if mode ~= "dump" and mode ~= "serve" then
  for i = 1, #STEPS do ved.send("d", "step", i) end
  ved.send("d", "fin")
end
