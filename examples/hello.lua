-- hello.lua - the first script to run: a domain that survives restarts.
--
--   vedhost run examples/hello.lua
--
-- Each run counts itself in `state.runs`, ticks five times (100 ms apart)
-- and stops with ved.exit(0). Run it again: with persistence the count of
-- runs and ticks carries on where the last run stopped (the data dir is
-- ./vedhost.data by default); with an in-memory build it starts over.
local ved = require "ved"

local TICKS = 5

ved.domain "hello" {
  state = { runs = 0, ticks = 0, log = {} },
  start = function(state, ctx)
    state.runs = state.runs + 1
    state.left = TICKS
    ctx:log(string.format("run %d starts; %d ticks so far", state.runs,
                          state.ticks))
    ctx:after(100, "tick")
  end,
  on = {
    tick = function(state, payload, ctx)
      state.ticks = state.ticks + 1
      state.left = state.left - 1
      table.insert(state.log, { run = state.runs, at = ctx.now })
      while #state.log > 20 do table.remove(state.log, 1) end
      print(string.format("hello: run %d, tick %d (%d left)", state.runs,
                          state.ticks, state.left))
      if state.left > 0 then
        ctx:after(100, "tick")
      else
        ctx:log("done; run me again to see the state carry on")
        ved.exit(0)
      end
    end,
  },
}
