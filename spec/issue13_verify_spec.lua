-- issue13_verify_spec.lua - gaps found when re-checking issue 13 as its
-- reporter would: a Unix socket named *.lua (here a symlink to a running
-- host's control.sock) is refused as "not a regular file" like a FIFO, at
-- start and at a reload.
local proc = require "support.proc"

local SCRIPT = [[
local ved = require "ved"
ved.domain "d" {
  state = { n = 0 },
  on = { get = function(state) return state.n end },
}
]]

describe("scripts that are not regular files (sockets)", function()
  local dir, other
  before_each(function()
    dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", SCRIPT)
    -- another host, only for its control.sock
    other = proc.tmpdir()
    proc.write(other .. "/a.lua", SCRIPT)
  end)
  after_each(function()
    proc.rmdir(dir)
    proc.rmdir(other)
  end)

  local function with_socket(fn)
    local h = proc.start({ "run", "--no-watch", "--durability", "nosync",
                           "a.lua" }, { cwd = other })
    local ok, err = pcall(function()
      assert.is_true(proc.wait_log(h, "running 1 domain"), proc.logtext(h))
      fn(other .. "/vedhost.data/control.sock")
    end)
    proc.signal(h, "TERM") -- also when an assertion failed
    local code = proc.wait(h, 60)
    local log = proc.logtext(h)
    proc.cleanup(h)
    if not ok then error(err, 0) end
    assert.are.equal(0, code, log)
  end

  it("refuses a socket in a script directory at start", function()
    with_socket(function(sock)
      os.execute("mkdir " .. proc.quote(dir .. "/s"))
      proc.write(dir .. "/s/a.lua", SCRIPT)
      os.execute("ln -s " .. proc.quote(sock) .. " "
                 .. proc.quote(dir .. "/s/w.lua"))
      local r = proc.run({ "run", "--no-watch", "s" }, { cwd = dir })
      assert.are.equal(1, r.code, r.log)
      local line = proc.one_line(r)
      assert.truthy(line:find("s/w.lua", 1, true), line)
      assert.truthy(line:find("not a regular file (a socket)", 1, true),
                    line)
    end)
  end)

  it("fails a reload on a socket and keeps serving", function()
    with_socket(function(sock)
      os.execute("mkdir " .. proc.quote(dir .. "/s"))
      proc.write(dir .. "/s/a.lua", SCRIPT)
      local p = proc.start({ "run", "--durability", "nosync", "s" },
                           { cwd = dir })
      finally(function()
        proc.signal(p, "KILL")
        proc.wait(p, 60)
        proc.cleanup(p)
      end)
      assert.is_true(proc.wait_log(p, "running 1 domain"), proc.logtext(p))
      os.execute("ln -s " .. proc.quote(sock) .. " "
                 .. proc.quote(dir .. "/s/w.lua"))
      assert.is_true(proc.wait_log(p, "the old code keeps running", 30),
                     proc.logtext(p))
      local line = proc.lines_with(proc.logtext(p), "reload (")[1] or ""
      assert.truthy(line:find("s/w.lua", 1, true), line)
      assert.truthy(line:find("not a regular file (a socket)", 1, true),
                    line)
      local r = proc.run({ "repl", "-e", "return 40 + 2" }, { cwd = dir })
      assert.are.equal("42\n", r.out, r.log)
      proc.signal(p, "TERM")
      assert.are.equal(0, proc.wait(p, 60), proc.logtext(p))
    end)
  end)
end)
