-- counter.lua - the smallest useful domain: count ticks, remember the last
-- few tick times.
--
--   vedhost run examples/counter.lua
--
-- Every second the `tick` timer (started by start(), which runs at every
-- boot) adds one to `count` and appends ctx.now to `recent`, which keeps
-- only the last 10 entries. Stop it with Ctrl-C: the slice in progress
-- finishes and the host exits 0.
local ved = require "ved"

local KEEP = 10

ved.domain "counter" {
  version = 1,
  state = { count = 0, recent = {} },
  start = function(state, ctx)
    ctx:log("starting at count", state.count)
    ctx:every(1000, "tick")
  end,
  on = {
    tick = function(state, payload, ctx)
      state.count = state.count + 1
      table.insert(state.recent, ctx.now)
      while #state.recent > KEEP do
        table.remove(state.recent, 1)
      end
      ctx:log("count =", state.count, "recent:", #state.recent)
    end,
    -- ask the counter (e.g. from the REPL later): returns the count
    get = function(state)
      return { count = state.count, last = state.recent[#state.recent] }
    end,
  },
}
