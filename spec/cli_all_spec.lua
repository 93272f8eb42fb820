-- cli_all_spec.lua - every subcommand parses its command line by the same
-- rules (host/cli/cli_args.c, README "Command line"): an unknown
-- option, an option given twice, a missing or empty value, a value taken
-- from the next argument that starts with "--", a flag given a value and
-- an extra positional argument are each refused with one line on stderr
-- ("vedhost: CMD: ...; see vedhost --help") and exit 2, before anything
-- is opened or created (the working dir stays empty: no data dir).
local proc = require "support.proc"

local HEAD = 'local ved = require "ved"\n'

-- { subcommand args..., expected text in the error line }
local CASES = {
  -- run (a.lua exists in the dir)
  { { "run", "--bogus", "a.lua" }, "run: unknown option '--bogus'" },
  { { "run", "--dat", "x", "a.lua" }, "unknown option '--dat'" },
  { { "run", "--data", "x", "--data", "y", "a.lua" }, "--data given twice" },
  { { "run", "--data", "--no-watch", "a.lua" }, "--data needs a value" },
  { { "run", "a.lua", "--data" }, "--data needs a value" },
  { { "run", "--data=", "a.lua" }, "--data needs a value" },
  { { "run", "--data", "", "a.lua" }, "--data needs a value" },
  { { "run", "--no-watch=1", "a.lua" }, "--no-watch takes no value" },
  -- repl
  { { "repl", "--bogus" }, "repl: unknown option '--bogus'" },
  { { "repl", "-x" }, "repl: unknown option '-x'" },
  { { "repl", "--data", "a", "--data=b" }, "--data given twice" },
  { { "repl", "--data", "--x" }, "--data needs a value" },
  { { "repl", "--data" }, "--data needs a value" },
  { { "repl", "--data=" }, "--data needs a value" },
  { { "repl", "-e" }, "-e needs a value" },
  { { "repl", "-e", "" }, "-e needs a value" },
  { { "repl", "extra" }, "repl: unexpected argument 'extra'" },
  -- inspect: one PATH
  { { "inspect", "--bogus" }, "inspect: unknown option '--bogus'" },
  { { "inspect", "--data", "a", "--data", "b" }, "--data given twice" },
  { { "inspect", "--data", "--x" }, "--data needs a value" },
  { { "inspect", "--data" }, "--data needs a value" },
  { { "inspect", "--data=" }, "--data needs a value" },
  { { "inspect", "a.b", "c.d" }, "inspect: unexpected argument 'c.d'" },
  -- fsck, recover: no positional argument
  { { "fsck", "--bogus" }, "fsck: unknown option '--bogus'" },
  { { "fsck", "--data", "a", "--data", "b" }, "--data given twice" },
  { { "fsck", "--data", "--x" }, "--data needs a value" },
  { { "fsck", "--data" }, "--data needs a value" },
  { { "fsck", "--data=" }, "--data needs a value" },
  { { "fsck", "extra" }, "fsck: unexpected argument 'extra'" },
  { { "recover", "--bogus" }, "recover: unknown option '--bogus'" },
  { { "recover", "--data", "a", "--data", "b" }, "--data given twice" },
  { { "recover", "--data", "--x" }, "--data needs a value" },
  { { "recover", "--data" }, "--data needs a value" },
  { { "recover", "--data=" }, "--data needs a value" },
  { { "recover", "extra" }, "recover: unexpected argument 'extra'" },
  -- export: --domain repeatable, one FILE
  { { "export", "--bogus", "f" }, "export: unknown option '--bogus'" },
  { { "export", "--data", "a", "--data", "b", "f" }, "--data given twice" },
  { { "export", "--data", "--domain", "d", "f" }, "--data needs a value" },
  { { "export", "--domain", "--data", "x", "f" }, "--domain needs a value" },
  { { "export", "f", "--domain" }, "--domain needs a value" },
  { { "export", "--domain=", "f" }, "--domain needs a value" },
  { { "export", "f", "g" }, "export: unexpected argument 'g'" },
  -- import: --replace-domain once, one FILE
  { { "import", "--bogus", "f" }, "import: unknown option '--bogus'" },
  { { "import", "--replace-domain", "a", "--replace-domain", "b", "f" },
    "--replace-domain given twice" },
  { { "import", "--data", "--x", "f" }, "--data needs a value" },
  { { "import", "f", "--data" }, "--data needs a value" },
  { { "import", "--data=", "f" }, "--data needs a value" },
  { { "import", "f", "g" }, "import: unexpected argument 'g'" },
}

describe("every subcommand's command line", function()
  for _, c in ipairs(CASES) do
    local args, want = c[1], c[2]
    it("refuses `" .. table.concat(args, " ") .. "`", function()
      local dir = proc.tmpdir()
      proc.write(dir .. "/a.lua", HEAD .. 'ved.domain "d" {}\n')
      local r = proc.run(args, { cwd = dir, timeout = 60 })
      local listing = io.popen("ls -A " .. proc.quote(dir)):read("a")
      proc.rmdir(dir)
      assert.are.equal(2, r.code, r.log)
      local line = proc.one_line(r)
      assert.truthy(line:find(want, 1, true), line)
      local tail = "; see vedhost --help"
      assert.are.equal(tail, line:sub(-#tail), line)
      assert.are.equal("", r.out)
      assert.are.equal("a.lua\n", listing, "something was created")
    end)
  end

  it("keeps the documented forms: repeats, --opt=VALUE, -eCODE, --", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
      ved.domain "d" { state = { n = 1 },
                       start = function() ved.exit(0) end }
    ]])
    local r = proc.run({ "run", "--data=--odd", "--", "a.lua" },
                       { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "inspect", "--data=--odd", "--", "d.n" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("1\n", r.out)
    r = proc.run({ "fsck", "--data", "x", "--help" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("usage: vedhost fsck", 1, true), r.out)
    r = proc.run({ "export", "--domain", "d", "--domain=d",
                   "--data=--odd", "snap" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    -- no host: repl gets past its options (-e repeated, -eCODE) and fails
    -- to connect (exit 1)
    r = proc.run({ "repl", "-e", "1", "-e2", "--data=--odd" }, { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    assert.truthy(r.log:find("no host is running on --odd", 1, true), r.log)
    proc.rmdir(dir)
  end)

  it("has one version string: --version and ved.version agree", function()
    local v = proc.run({ "--version" })
    assert.are.equal(0, v.code, v.log)
    local dir = proc.tmpdir()
    proc.write(dir .. "/a.lua", HEAD .. [[
      ved.domain "d" { start = function(s, ctx)
        ctx:log("version=" .. ved.version)
        ved.exit(0)
      end }
    ]])
    local r = proc.run({ "run", "--no-watch", "a.lua" }, { cwd = dir })
    proc.rmdir(dir)
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("vedhost " .. r.log:match("version=([^\n]+)") .. "\n",
                     v.out)
  end)
end)
