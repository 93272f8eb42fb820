-- import_limits_spec.lua - `vedhost import` refuses what the host refuses
-- (issue 13, item 14): invalid or reserved domain names, versions above
-- the host's maximum, tables nested deeper than the limit (a crafted 1M
-- level stream). Each is one line, a non-zero exit, and the target dir
-- exactly as it was (files listed before and after): a refused import
-- leaves no LOCK file behind either.
local proc = require "support.proc"

local one_line = proc.one_line

local function have(cmd)
  local ok = os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

-- CRC-32C (Castagnoli, reflected 0x82F63B78), as persist/format/crc32c.c.
local CRC = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c & 1 == 1 then c = (c >> 1) ~ 0x82F63B78 else c = c >> 1 end
  end
  CRC[i] = c
end
local function crc32c(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = CRC[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8)
  end
  return c ~ 0xFFFFFFFF
end

local function u32(x) return string.pack("<I4", x) end
local function u64(x) return string.pack("<i8", x) end

-- The raw bytes of an export stream (persist/trie/vh_export.h) with one domain
-- `name` at `version` whose state nests `levels` tables below the state
-- table (each at key 1 of its parent).
local function craft(name, version, levels)
  local parts = { "VEDXPORT", u32(1), u32(0), u64(7), u32(1),
                  string.char(#name), name, u64(version) }
  parts[#parts + 1] = string.rep("\6\1\0", levels) .. "\6\0\0"
  local body = table.concat(parts)
  local trailer = "VEDXEND." .. u64(levels) .. u64(levels + 1) .. u64(#body)
  local raw = body .. trailer
  return raw .. u32(crc32c(raw))
end

-- Every path under dir (relative), sorted, one per line.
local function listing(dir)
  local p = io.popen("cd " .. proc.quote(dir) .. " && find . | sort")
  local s = p:read("a")
  p:close()
  return s
end

describe("import refuses what the host refuses", function()
  local dir
  before_each(function() dir = proc.tmpdir() end)
  after_each(function() proc.rmdir(dir) end)

  -- Writes the stream for raw as FILE (zstd CLI), returns the file name.
  local function stream(raw, file)
    proc.write(dir .. "/" .. file .. ".raw", raw)
    local ok = os.execute("zstd -q -f " .. proc.quote(dir .. "/" .. file
      .. ".raw") .. " -o " .. proc.quote(dir .. "/" .. file))
    assert.is_true(ok == true or ok == 0)
    os.remove(dir .. "/" .. file .. ".raw")
    return file
  end

  -- Import file into a missing dir, an empty dir, and a dir with an old
  -- LOCK only: refused with one line containing want, nothing changed.
  local function refused(file, want)
    local r = proc.run({ "import", "--data", "missing", file }, { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    local line = one_line(r)
    assert.truthy(line:find(want, 1, true), line)
    assert.truthy(line:find("nothing was changed", 1, true), line)
    assert.is_nil(io.open(dir .. "/missing", "r"))
    os.execute("mkdir -p " .. proc.quote(dir .. "/empty") .. " "
      .. proc.quote(dir .. "/locked"))
    proc.write(dir .. "/locked/LOCK", "")
    for _, target in ipairs({ "empty", "locked" }) do
      local before = listing(dir .. "/" .. target)
      r = proc.run({ "import", "--data", target, file }, { cwd = dir })
      assert.are.equal(1, r.code, r.log)
      assert.truthy(one_line(r):find(want, 1, true), r.log)
      assert.are.equal(before, listing(dir .. "/" .. target))
    end
    return line
  end

  it("accepts a crafted stream the host would accept", function()
    if not have("zstd") then return pending("needs the zstd command") end
    local f = stream(craft("fine", 3, 5), "ok.vx")
    local r = proc.run({ "import", "--data", "t", f }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    r = proc.run({ "inspect", "--data", "t", "fine.1.1.1.1.1" }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    assert.are.equal("{}", (r.out:gsub("%s+$", "")))
  end)

  it("refuses invalid and reserved domain names", function()
    if not have("zstd") then return pending("needs the zstd command") end
    for i, name in ipairs({ "a b", "../../x", "__ved", "__other", "9lives",
                            "new\nline" }) do
      local f = stream(craft(name, 1, 1), "n" .. i .. ".vx")
      refused(f, "not a valid domain name")
    end
  end)

  it("refuses a version the host would refuse forever", function()
    if not have("zstd") then return pending("needs the zstd command") end
    local f = stream(craft("big", math.maxinteger, 1), "v.vx")
    local line = refused(f, "version " .. math.maxinteger)
    assert.truthy(line:find("1000000000", 1, true), line)
    -- the largest version is accepted, and the host then runs the domain
    f = stream(craft("big", 1000000000, 1), "v2.vx")
    local r = proc.run({ "import", "--data", "t", f }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    proc.write(dir .. "/big.lua", 'local ved = require "ved"\n'
      .. 'ved.domain "big" { version = 1000000000,\n'
      .. '  start = function(s) assert(s[1]) ved.exit(0) end }\n')
    r = proc.run({ "run", "--data", "t", "--no-watch", "big.lua" },
                 { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    -- and a script cannot declare more than the maximum
    proc.write(dir .. "/big.lua", 'local ved = require "ved"\n'
      .. 'ved.domain "big" { version = 1000000001 }\n')
    r = proc.run({ "run", "--data", "t", "--no-watch", "big.lua" },
                 { cwd = dir })
    assert.are_not.equal(0, r.code)
    assert.truthy(r.log:find("from 1 to 1000000000", 1, true), r.log)
  end)

  it("refuses a crafted stream nesting 1M levels", function()
    if not have("zstd") then return pending("needs the zstd command") end
    local f = stream(craft("deep", 1, 1000000), "deep.vx")
    refused(f, "deeper than 20000 levels")
    -- the limit itself is fine (the state table is level 1)
    f = stream(craft("deep", 1, 19999), "ok.vx")
    local r = proc.run({ "import", "--data", "t", f }, { cwd = dir })
    assert.are.equal(0, r.code, r.log)
    f = stream(craft("deep", 1, 20000), "over.vx")
    refused(f, "deeper than 20000 levels")
  end)

  it("leaves a non-empty target as it was, without a new LOCK", function()
    if not have("zstd") then return pending("needs the zstd command") end
    local f = stream(craft("fine", 1, 1), "ok.vx")
    os.execute("mkdir -p " .. proc.quote(dir .. "/full"))
    proc.write(dir .. "/full/notes.txt", "mine")
    local before = listing(dir .. "/full")
    local r = proc.run({ "import", "--data", "full", f }, { cwd = dir })
    assert.are.equal(1, r.code, r.log)
    local line = one_line(r)
    assert.truthy(line:find("not empty; nothing was changed", 1, true), line)
    assert.are.equal(before, listing(dir .. "/full"))
    assert.is_nil(io.open(dir .. "/full/LOCK", "r"))
  end)
end)
