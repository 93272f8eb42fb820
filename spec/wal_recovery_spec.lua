-- wal_recovery_spec.lua - a damaged write-ahead log after kill -9 (issue 13
-- item 1): a corrupt record with intact records after it is refused by
-- run, fsck and inspect with one line, and nothing in DIR/db is touched;
-- `vedhost recover` accepts the loss and names the dropped slices, after
-- which run and fsck are happy; a torn tail (the last record cut short) is
-- normal: run starts and logs one line saying what was dropped.
--
-- The crash images are real: a host writes a slice every 5 ms (sync), is
-- killed with -9 while its WAL holds many records, and the WAL
-- (DIR/db/NNNNNN.log, RocksDB's log format: 32 KiB blocks of records with
-- 7-byte headers) is then damaged here.
local proc = require "support.proc"

local q = proc.quote

local COUNTER = [[
local ved = require "ved"
ved.domain "c" {
  state = { n = 0, pad = {} },
  start = function(s, ctx) ctx:every(5, "tick") end,
  on = {
    tick = function(s)
      s.n = s.n + 1
      s.pad[s.n % 20 + 1] = string.rep("x", 200) .. s.n
    end,
  },
}
]]

local sh = proc.sh

-- The WAL file with the most bytes in dir/db, and its size.
local function wal_of(dir)
  local out = sh("cd " .. q(dir .. "/db") .. " && ls *.log")
  local best, size = nil, -1
  for name in out:gmatch("%S+") do
    local f = io.open(dir .. "/db/" .. name, "rb")
    local n = f:seek("end")
    f:close()
    if n > size then best, size = dir .. "/db/" .. name, n end
  end
  return best, size
end

-- Names and contents of every file in dir/db, as one hash.
local function db_hash(dir)
  local out = sh("cd " .. q(dir .. "/db") ..
                 " && for f in *; do echo \"$f\"; sha1sum <\"$f\"; done" ..
                 " | sha1sum")
  return out
end

-- Offsets of the logical records (FULL or FIRST fragments) of a WAL.
local function record_offsets(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  local offs, pos = {}, 0
  while pos + 7 <= #s do
    local left = 32768 - pos % 32768
    if left < 7 then
      pos = pos + left
    else
      local len, t = string.unpack("<I2B", s, pos + 5)
      if t == 1 or t == 2 then offs[#offs + 1] = pos end
      pos = pos + 7 + len
    end
  end
  return offs
end

local function flip(path, off, n)
  local f = assert(io.open(path, "r+b"))
  f:seek("set", off)
  local b = f:read(n)
  f:seek("set", off)
  f:write((b:gsub(".", function(c) return string.char(c:byte() ~ 0xff) end)))
  f:close()
end

-- A crash image: a host killed with -9 while its WAL holds at least
-- min_records records. Returns dir (with c.lua in it).
local function crash_image(min_records)
  local dir = proc.tmpdir()
  proc.write(dir .. "/c.lua", COUNTER)
  for _ = 1, 5 do
    local p = proc.start({ "run", "--data", "data", "--no-watch", "c.lua" },
                         { cwd = dir })
    assert(proc.wait_log(p, "running", 30), proc.logtext(p))
    -- wait until the WAL has many records, then kill at once
    local ok = false
    for _ = 1, 500 do
      local wal = wal_of(dir .. "/data")
      if wal and #record_offsets(wal) >= min_records then
        ok = true
        break
      end
      proc.sleep(0.02)
    end
    proc.signal(p, "KILL")
    proc.wait(p, 30)
    proc.cleanup(p)
    local wal = wal_of(dir .. "/data")
    -- a memtable flush may have emptied the WAL just before the kill
    if ok and wal and #record_offsets(wal) >= min_records then return dir end
    os.execute("rm -rf " .. q(dir .. "/data"))
  end
  error("no crash image with " .. min_records .. " WAL records")
end

local function run_briefly(dir)
  local p = proc.start({ "run", "--data", "data", "--no-watch", "c.lua" },
                       { cwd = dir })
  local ok = proc.wait_log(p, "running", 30)
  proc.signal(p, "TERM")
  local code = proc.wait(p, 30)
  local log = proc.logtext(p)
  proc.cleanup(p)
  return ok, code, log
end

describe("a corrupt WAL record with intact records after it", function()
  local dir, data, wal, offs
  before_each(function()
    dir = crash_image(40)
    data = dir .. "/data"
    wal = wal_of(data)
    offs = record_offsets(wal)
    -- 4 bytes inside the payload of a record in the middle
    local k = #offs // 2
    flip(wal, offs[k] + 20, 4)
  end)
  after_each(function() proc.rmdir(dir) end)

  it("is refused by run, fsck and inspect, and nothing is touched",
     function()
    local before = db_hash(data)
    local name = wal:match("[^/]+$")
    for _, args in ipairs({
      { "run", "--data", "data", "--no-watch", "c.lua" },
      { "fsck", "--data", "data" },
      { "inspect", "--data", "data" },
      { "export", "--data", "data", "out.zst" },
    }) do
      local r = proc.run(args, { cwd = dir, timeout = 60 })
      assert.are.equal(1, r.code, args[1] .. ": " .. r.log)
      local line = proc.one_line(r)
      assert.truthy(line:find("db/" .. name, 1, true), line)
      assert.truthy(line:find("write%-ahead log is corrupt at offset %d+"),
                    line)
      assert.truthy(line:find("intact record%(s%) follow it, slices %d+%.%.%d+"),
                    line)
      assert.truthy(line:find("vedhost recover --data data", 1, true), line)
      assert.are.equal(before, db_hash(data), args[1] .. " changed db/")
    end
  end)

  it("is accepted by recover, which names the dropped slices", function()
    -- not while a host runs on the dir
    local other = proc.tmpdir()
    proc.write(other .. "/c.lua", COUNTER)
    local p = proc.start({ "run", "--data", "data", "--no-watch", "c.lua" },
                         { cwd = other })
    assert(proc.wait_log(p, "running", 30))
    local busy = proc.run({ "recover", "--data", "data" }, { cwd = other })
    proc.signal(p, "TERM")
    proc.wait(p, 30)
    proc.cleanup(p)
    proc.rmdir(other)
    assert.are.equal(1, busy.code)
    assert.truthy(proc.one_line(busy):find("in use by another vedhost", 1,
                                           true), busy.log)

    local r = proc.run({ "recover", "--data", "data" },
                       { cwd = dir, timeout = 60 })
    assert.are.equal(0, r.code, r.log)
    local at, lo, hi, n, file = r.out:match(
      "^recovered to slice (%d+); slices (%d+)%.%.(%d+) %((%d+)%) in " ..
      "(db/%d+%.log) after offset %d+ were dropped\n$")
    assert.truthy(at, r.out)
    at, lo, hi, n = tonumber(at), tonumber(lo), tonumber(hi), tonumber(n)
    assert.are.equal(at + 1, lo)
    assert.are.equal(hi - at, n)
    assert.truthy(n >= 10, r.out) -- about half of >= 40 records
    assert.are.equal("db/" .. wal:match("[^/]+$"), file)

    -- the store is at slice `at`, and fsck and run accept it
    local f = proc.run({ "fsck", "--data", "data" },
                       { cwd = dir, timeout = 60 })
    assert.are.equal(0, f.code, f.out .. f.log)
    assert.truthy(f.out:find("manifest seq " .. at .. ",", 1, true), f.out)
    local ok, code, log = run_briefly(dir)
    assert.truthy(ok, log)
    assert.are.equal(0, code, log)
    f = proc.run({ "fsck", "--data", "data" }, { cwd = dir, timeout = 60 })
    assert.are.equal(0, f.code, f.out .. f.log)
    -- and recover has nothing more to do
    r = proc.run({ "recover", "--data", "data" }, { cwd = dir, timeout = 60 })
    assert.are.equal(0, r.code, r.log)
    assert.truthy(r.out:find("^nothing to recover"), r.out)
  end)
end)

describe("a torn WAL tail after kill -9", function()
  it("is normal: run starts and logs which record was dropped", function()
    local dir = crash_image(10)
    local data = dir .. "/data"
    local wal = wal_of(data)
    local offs = record_offsets(wal)
    local last = offs[#offs]
    -- cut the last record short, inside its payload
    sh("truncate -s " .. (last + 10) .. " " .. q(wal))
    local ok, code, log = run_briefly(dir)
    assert.truthy(ok, log)
    assert.are.equal(0, code, log)
    local lines = proc.lines_with(log, "was cut short by a crash")
    assert.are.equal(1, #lines, log)
    assert.truthy(lines[1]:find(wal:match("[^/]+$") .. ": the last record " ..
                                "(offset " .. last .. ",", 1, true), lines[1])
    assert.truthy(lines[1]:find("never acknowledged in sync mode; the " ..
                                "store is at slice %d+"), lines[1])
    local f = proc.run({ "fsck", "--data", "data" },
                       { cwd = dir, timeout = 60 })
    assert.are.equal(0, f.code, f.out .. f.log)
    proc.rmdir(dir)
  end)
end)
