-- damaged_store_spec.lua - a store whose RocksDB files are damaged (issue 13
-- item 13) is reported as damaged, naming what is missing and what to do,
-- the same way by run, fsck, inspect and export; never as "no store here"
-- or "not a vedhost store", and run never creates a new store over it.
--
-- The store is made by a real host stopped cleanly (its memtable flushed
-- into a table file), then damaged: CURRENT deleted, the table file
-- deleted, the MANIFEST truncated to half.
local proc = require "support.proc"

local q = proc.quote

local COUNTER = [[
local ved = require "ved"
ved.domain "c" {
  state = { n = 0 },
  start = function(s, ctx) ctx:every(5, "tick") end,
  on = { tick = function(s) s.n = s.n + 1 end },
}
]]

local sh = proc.sh

local function ls(dir)
  return (sh("ls " .. q(dir)))
end

-- A clean store in base/data (c.lua beside it), made by `runs` (default 1)
-- hosts one after the other: each clean stop flushes one table file.
local function make_store(runs)
  local base = proc.tmpdir()
  proc.write(base .. "/c.lua", COUNTER)
  for _ = 1, runs or 1 do
    local p = proc.start({ "run", "--data", "data", "--no-watch", "c.lua" },
                         { cwd = base })
    assert(proc.wait_log(p, "running", 30), proc.logtext(p))
    proc.sleep(0.3)
    proc.signal(p, "TERM")
    assert(proc.wait(p, 30) == 0, proc.logtext(p))
    proc.cleanup(p)
  end
  assert(ls(base .. "/data/db"):find("%d+%.sst"), "no table file")
  return base
end

-- The table files of db, oldest first.
local function tables(db)
  local t = {}
  for name in ls(db):gmatch("(%d+%.sst)") do t[#t + 1] = name end
  table.sort(t)
  return t
end

local DAMAGE = {
  {
    name = "CURRENT deleted",
    apply = function(db) os.remove(db .. "/CURRENT") end,
    what = "db/CURRENT is missing",
  },
  {
    name = "a table file deleted",
    apply = function(db)
      local sst = ls(db):match("(%d+%.sst)")
      os.remove(db .. "/" .. sst)
      return sst
    end,
    what = "%s is missing (a table file the MANIFEST lists)",
  },
  {
    name = "the MANIFEST truncated",
    apply = function(db)
      local man = ls(db):match("(MANIFEST%-%d+)")
      local f = io.open(db .. "/" .. man, "rb")
      local size = f:seek("end")
      f:close()
      sh("truncate -s " .. (size // 2) .. " " .. q(db .. "/" .. man))
      return man
    end,
    what = "%s is damaged at offset",
  },
  -- two table files (two clean stops): the secondary that fsck, inspect
  -- and export open used to call the other one "not listed", or (newest
  -- deleted, its slices still in the log) to see nothing wrong
  {
    name = "the older of two table files deleted",
    runs = 2,
    apply = function(db)
      local t = tables(db)
      assert(#t >= 2, "want two table files: " .. ls(db))
      os.remove(db .. "/" .. t[1])
      return t[1]
    end,
    what = "%s is missing (a table file the MANIFEST lists)",
  },
  {
    name = "the newest of two table files deleted",
    runs = 2,
    apply = function(db)
      local t = tables(db)
      assert(#t >= 2, "want two table files: " .. ls(db))
      os.remove(db .. "/" .. t[#t])
      return t[#t]
    end,
    what = "%s is missing (a table file the MANIFEST lists)",
  },
}

describe("a damaged store", function()
  for _, d in ipairs(DAMAGE) do
    it("is reported as damaged by run, fsck, inspect, export: " .. d.name,
       function()
      local base = make_store(d.runs)
      local db = base .. "/data/db"
      local name = d.apply(db)
      local what = d.what:format(name)
      local before = ls(db):gsub("LOG%.old%.%d+\n", "")
      for _, args in ipairs({
        { "run", "--data", "data", "--no-watch", "c.lua" },
        { "fsck", "--data", "data" },
        { "inspect", "--data", "data" },
        { "export", "--data", "data", "out.zst" },
        { "recover", "--data", "data" },
      }) do
        local r = proc.run(args, { cwd = base, timeout = 60 })
        assert.are.equal(1, r.code, args[1] .. ": " .. r.log)
        local line = proc.one_line(r)
        assert.truthy(line:find("the store is damaged: ", 1, true),
                      args[1] .. ": " .. line)
        assert.truthy(line:find(what, 1, true), args[1] .. ": " .. line)
        assert.truthy(line:find("restore the data dir from a backup", 1,
                                true), line)
        assert.falsy(line:find("not a vedhost store", 1, true), line)
        assert.falsy(line:find("no vedhost store", 1, true), line)
        -- no new database was made over the damaged one
        local now = ls(db):gsub("LOG%.old%.%d+\n", "")
        assert.are.equal(before, now, args[1] .. " changed db/")
      end
      proc.rmdir(base)
    end)
  end

  it("is still told apart from a dir without a store", function()
    local base = proc.tmpdir()
    os.execute("mkdir -p " .. q(base .. "/data/db"))
    local r = proc.run({ "fsck", "--data", "data" }, { cwd = base })
    assert.are.equal(1, r.code)
    assert.truthy(proc.one_line(r):find("no vedhost store here %(data/db " ..
                                        "holds no database%)"), r.log)
    proc.rmdir(base)
  end)
end)
