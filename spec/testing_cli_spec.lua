-- testing_cli_spec.lua - `vedhost test`: the one command a user types to
-- run specs written with ved.testing (README "Testing your domains").
local proc = require "support.proc"

describe("vedhost test", function()
  local dir
  before_each(function() dir = proc.tmpdir() end)
  after_each(function() proc.rmdir(dir) end)

  local DOMAIN = [[
local ved = require "ved"
ved.domain "c" {
  state = { n = 0 },
  start = function(state, ctx) ctx:every(1000, "tick") end,
  on = { tick = function(state) state.n = state.n + 1 end },
}
]]
  local function spec(expect)
    return ([[
local vt = require "ved.testing"
describe("c", function()
  it("ticks", function()
    local h = vt.host { scripts = { "domains/c.lua" } }
    h:advance "10s"
    assert.equal(%d, h.state.c.n)
  end)
end)
]]):format(expect)
  end

  it("runs the project's specs with the harness on the paths, passing busted's exit code", function()
    os.execute("mkdir -p " .. proc.quote(dir .. "/domains") .. " " .. proc.quote(dir .. "/spec"))
    proc.write(dir .. "/domains/c.lua", DOMAIN)
    proc.write(dir .. "/spec/c_spec.lua", spec(10))
    local r = proc.run({ "test" }, { cwd = dir, timeout = 120 })
    assert.equal(0, r.code, r.log .. r.out)
    assert.matches("1 success", r.out)
    proc.write(dir .. "/spec/c_spec.lua", spec(11))
    r = proc.run({ "test", "-o", "TAP" }, { cwd = dir, timeout = 120 })
    assert.equal(1, r.code, r.log .. r.out)
    assert.matches("not ok 1", r.out)
    assert.matches("Expected objects to be equal", r.out)
  end)

  it("says in one line when busted is missing", function()
    local r = proc.run({ "test" }, { cwd = dir, env = { VEDHOST_BUSTED = "/nonexistent/busted" } })
    assert.equal(1, r.code)
    assert.matches("^vedhost: test: busted not found", r.log)
  end)
end)
