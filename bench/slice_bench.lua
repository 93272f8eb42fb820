-- slice_bench.lua - throughput of the host's handler calls, against plain
-- Lua doing the same work in the same process (ratios, not tests).
--
--   bench/slice_bench.sh            (or: vedhost run --handler-timeout
--                                    600000 bench/slice_bench.lua)
--   BENCH_N=200000 bench/slice_bench.sh   (smaller run)
--
-- What is measured (CPU time with os.clock, single loop thread):
--   calls   N handler calls, one state write each (state.n = state.n + 1),
--           driven by messages a domain queued for itself: many calls per
--           slice (up to 4096). The time counts delivery + call + write,
--           not the sends (reported apart as "send").
--   send    the same N ctx:send calls inside handlers (payload {i = i}).
--   events  two domains bounce BALLS messages back and forth (2 * ROUNDS
--           events per ball);
--           each event is one handler call with one write and one
--           ctx:send: events/s through ctx:send between two domains.
--   slices  one message bouncing between the two domains: every event is
--           its own slice (libuv turn), so this is slices/s with one
--           write each.
-- Baselines, plain Lua in this same process (outside handlers, at load
-- time): a function call doing the write; a FIFO of {to, event, payload}
-- tables dispatched to handler functions.
local ved = require "ved"

local N = tonumber(os.getenv("BENCH_N")) or 1000000
local BALLS = 1000
local ROUNDS = math.max(1, N // BALLS)
local SLICES = math.max(1000, N // 10)

local results = {}
local clock = os.clock

-- ---- plain Lua baselines ----

local function plain_calls(n)
  local state, ctx = { n = 0 }, { now = 0 }
  local function hit(s, p, c) s.n = s.n + 1 end
  local t0 = clock()
  for i = 1, n do hit(state, nil, ctx) end
  assert(state.n == n)
  return clock() - t0
end

local function plain_events(balls, bounces)
  local q, head, tail = {}, 1, 0
  local states = { ping = { n = 0 }, pong = { n = 0 } }
  local done = 0
  local function send(to, ev, p)
    tail = tail + 1
    q[tail] = { to = to, event = ev, payload = p }
  end
  local function ball(other)
    return function(s, p)
      s.n = s.n + 1
      if p.left > 0 then
        send(other, "ball", { left = p.left - 1 })
      else
        done = done + 1
      end
    end
  end
  local handlers = { ping = { ball = ball("pong") },
                     pong = { ball = ball("ping") } }
  local t0 = clock()
  for _ = 1, balls do send("pong", "ball", { left = bounces - 1 }) end
  while head <= tail do
    local m = q[head]
    q[head] = nil
    head = head + 1
    handlers[m.to][m.event](states[m.to], m.payload, nil)
  end
  assert(done == balls)
  return clock() - t0, states.ping.n + states.pong.n
end

local base_calls = plain_calls(N)
local base_events_t, base_events_n = plain_events(BALLS, 2 * ROUNDS)

-- ---- in the host ----

local function report()
  local function line(name, n, t, base_n, base_t)
    local rate, base_rate = n / t, base_n / base_t
    ved.log(string.format("%-7s %10.0f /s   plain Lua %12.0f /s   ratio %6.1fx",
                          name, rate, base_rate, base_rate / rate))
  end
  ved.log(string.format("N = %d, balls = %d, rounds = %d", N, BALLS, ROUNDS))
  line("calls", N, results.calls, N, base_calls)
  line("send", N, results.send, N, base_calls)
  line("events", results.events_n, results.events, base_events_n,
       base_events_t)
  ved.log(string.format("%-7s %10.0f /s   (one event per slice)", "slices",
                        SLICES / results.slices))
  ved.exit(0)
end

ved.domain "bench" {
  state = { n = 0 },
  start = function(state, ctx) ctx:send("bench", "send_all") end,
  on = {
    -- queue N hits in one handler call; they are delivered in the next
    -- slices, up to 4096 per slice
    send_all = function(state, p, ctx)
      local t0 = clock()
      for i = 1, N do ctx:send("bench", "hit", { i = i }) end
      results.send = clock() - t0
      results.t_calls0 = clock()
    end,
    hit = function(state, p, ctx)
      state.n = state.n + 1
      if state.n == N then
        results.calls = clock() - results.t_calls0
        ctx:send("ping", "go")
      end
    end,
  },
}

-- A ball bounces between ping and pong until `left` reaches 0.
local function ball(other)
  return function(state, p, ctx)
    state.n = state.n + 1
    if p.left > 0 then
      return ctx:send(other, "ball", { left = p.left - 1 })
    end
    results.done = (results.done or 0) + 1
    if results.done == BALLS then
      results.events = clock() - results.t_events0
      results.events_n = BALLS * 2 * ROUNDS
      results.t_slices0 = clock()
      ctx:send("pong", "solo", { left = SLICES - 1 })
    end
  end
end

-- One message bouncing: every event is its own slice.
local function solo(other)
  return function(state, p, ctx)
    state.n = state.n + 1
    if p.left == 0 then
      results.slices = clock() - results.t_slices0
      return report()
    end
    ctx:send(other, "solo", { left = p.left - 1 })
  end
end

ved.domain "ping" {
  state = { n = 0 },
  on = {
    go = function(state, p, ctx)
      results.t_events0 = clock()
      for _ = 1, BALLS do
        ctx:send("pong", "ball", { left = 2 * ROUNDS - 1 })
      end
    end,
    ball = ball("pong"),
    solo = solo("pong"),
  },
}

ved.domain "pong" {
  state = { n = 0 },
  on = { ball = ball("ping"), solo = solo("ping") },
}
