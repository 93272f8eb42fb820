-- store_codec_spec.lua - the table files' codec (persist/store/store.c,
-- TUNING, CODEC): a data dir whose bottommost level was written with zstd
-- (the codec before perf/lz4; VEDHOST_TEST_ZSTD_DICT_BYTES makes the host
-- write it so, tests only) opens with today's build: fsck clean, values,
-- versions and diff read back; a later session's clean stop rewrites it
-- with LZ4, and it still reads. Bounded waits only; nothing measures time.
local proc = require "support.proc"

-- Domain "kv": N keys "key:I" -> I * gen (VH_GEN), 1000 per slice, then
-- "done" and a clean exit. A second generation replaces every value.
local SCRIPT = [[
local ved = require "ved"
local N, GEN = tonumber(os.getenv("VH_N")), tonumber(os.getenv("VH_GEN"))
ved.domain "kv" {
  state = { k = {}, at = 0, gen = 0 },
  start = function(state, ctx)
    state.at, state.gen = 0, GEN
    ctx:send("kv", "put")
  end,
  on = {
    put = function(state, _, ctx)
      local k, stop = state.k, math.min(state.at + 1000, N)
      for i = state.at + 1, stop do k["key:" .. i] = i * GEN end
      state.at = stop
      if stop < N then
        ctx:send("kv", "put")
      else
        ctx:log("done", stop)
        ved.exit(0)
      end
    end,
  },
}
]]

local N = 20000

local function run(dir, gen, retain, env)
  env = env or {}
  env.VH_N, env.VH_GEN = tostring(N), tostring(gen)
  local r = proc.run({ "run", "--data", "data", "--no-watch", "--durability",
                       "nosync", "--retain", retain, "w.lua" },
                     { cwd = dir, env = env, timeout = 300 })
  assert.are.equal(0, r.code, r.log)
  assert.truthy(r.log:find("] done", 1, true), r.log)
end

local function vedhost(dir, args)
  local r = proc.run(args, { cwd = dir, timeout = 120 })
  assert.are.equal(0, r.code, r.out .. r.log)
  return r.out
end

-- The codec names RocksDB recorded in the table files of dir/data/db
-- ({ ZSTD = files, LZ4 = files, ... }). Each file's properties block holds
-- "rocksdb.compression" -> name right after "rocksdb.comparator", so the
-- key is stored as 12 shared bytes ("rocksdb.comp") and "ression"
-- (block entry: varint shared, non-shared, value length, bytes).
local function codecs(dir)
  local seen = {}
  local p = io.popen("ls " .. proc.quote(dir .. "/data/db"))
  for name in p:lines() do
    if name:match("%.sst$") then
      local f = assert(io.open(dir .. "/data/db/" .. name, "rb"))
      local bytes = f:read("a")
      f:close()
      local len, codec = bytes:match("\12\7(.)ression(.*)")
      assert.truthy(len, name .. ": no codec property")
      codec = codec:sub(1, len:byte())
      seen[codec] = (seen[codec] or 0) + 1
    end
  end
  p:close()
  return seen
end

describe("a store written with zstd", function()
  it("opens, reads and turns LZ4 with today's build", function()
    local dir = proc.tmpdir()
    proc.write(dir .. "/w.lua", SCRIPT)
    local zstd = { VEDHOST_TEST_ZSTD_DICT_BYTES = "16384" }
    -- Two generations with --retain 0 (the second deletes the first's
    -- nodes, so the clean stop compacts all into the bottommost level),
    -- then a third with history kept: versions to read back.
    run(dir, 1, "0", zstd)
    run(dir, 2, "0", zstd)
    local before = codecs(dir)
    assert.truthy(before.ZSTD, "no zstd table file: " .. dir)
    assert.is_nil(before.LZ4)
    local seq_b = tonumber(vedhost(dir, { "log", "--data", "data", "-n", "1" })
                           :match("(%d+)"))
    run(dir, 3, "1h", zstd)
    -- today's build: every reader of the store
    local out = vedhost(dir, { "fsck", "--data", "data" })
    assert.truthy(out:find("fsck: ok", 1, true), out)
    out = vedhost(dir, { "inspect", "--data", "data", "kv.k.key:12345" })
    assert.truthy(out:find("37035", 1, true), out)
    out = vedhost(dir, { "inspect", "--data", "data", "--at", tostring(seq_b),
                         "kv.k.key:12345" })
    assert.truthy(out:find("24690", 1, true), out)
    out = vedhost(dir, { "diff", "--data", "data", tostring(seq_b) })
    assert.truthy(out:find("~ kv.k[\"key:777\"]: 1554 -> 2331", 1, true),
                  out:sub(1, 2000))
    -- a session of today's build replaces every value; its clean stop
    -- compacts the store into LZ4
    run(dir, 4, "0")
    local after = codecs(dir)
    assert.truthy(after.LZ4, "no LZ4 table file")
    assert.is_nil(after.ZSTD)
    out = vedhost(dir, { "fsck", "--data", "data" })
    assert.truthy(out:find("fsck: ok", 1, true), out)
    out = vedhost(dir, { "inspect", "--data", "data", "kv.k.key:12345" })
    assert.truthy(out:find("49380", 1, true), out)
    proc.rmdir(dir)
  end)
end)
