-- counter_spec.lua - counter.lua tested with ved.testing (README "Testing
-- your domains"). Run it: vedhost test examples/counter_spec.lua
local vt = require "ved.testing"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

describe("counter", function()
  local h
  before_each(function()
    h = vt.host { scripts = { here .. "counter.lua" }, now = "2026-01-01T00:00:00Z" }
  end)
  after_each(function() h:close() end)

  it("counts one tick per second, remembering the last 10 tick times", function()
    h:advance "5s"
    assert.equal(5, h.state.counter.count)
    assert.same({ count = 5, last = h:now() }, h:send("counter", "get"))
    h:advance "1m"
    local s = h.state.counter
    assert.equal(65, s.count)
    assert.equal(10, #s.recent)
    assert.equal(h:now(), s.recent[10])
    assert.equal(h:now() - 9000, s.recent[1])
    assert.matches("count = 65 recent: 10", h:logs()[#h:logs()])
  end)

  it("keeps its count across a restart and starts ticking again", function()
    h:advance "3s"
    h:restart()
    assert.equal(3, h.state.counter.count)
    assert.equal(2, #h:logs("starting at count")) -- start() ran again
    h:advance "2s"
    assert.equal(5, h.state.counter.count)
  end)

  it("shows what one tick changed", function()
    h:advance "2s"
    local changes = {}
    for _, c in ipairs(h:diff(-1)) do changes[#changes + 1] = table.concat(c.path, ".") .. c.op end
    assert.same({ "counter.count~", "counter.recent.2+" }, changes)
  end)
end)
