-- hello_spec.lua - hello.lua tested with ved.testing.
local vt = require "ved.testing"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

describe("hello", function()
  it("ticks five times 100 ms apart, stops by itself, and counts its runs", function()
    local h = vt.host { scripts = { here .. "hello.lua" }, now = 0 }
    assert.equal(1, h.state.hello.runs)
    h:advance "1s"
    assert.is_false(h:running()) -- ved.exit(0) after the fifth tick
    local s = h.state.hello
    assert.equal(5, s.ticks)
    assert.equal(0, s.left)
    assert.same({ 100, 200, 300, 400, 500 },
                { s.log[1].at, s.log[2].at, s.log[3].at, s.log[4].at, s.log[5].at })
    h:restart() -- the second run carries on from the stored state
    assert.equal(2, h.state.hello.runs)
    h:advance "1s"
    assert.equal(10, h.state.hello.ticks)
  end)
end)
