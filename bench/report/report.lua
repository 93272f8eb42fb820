-- bench/report/report.lua OUT_DIR REPORT_MD
--
-- Turns the rows bench/run collected into REPORT.md and the chart data.
-- Input (all tab-separated, written by bench/lib/common.sh):
--   results.tsv  system setting K N metric value unit repeat note
--   checks.tsv   system setting K N what expected got ok|MISMATCH
--   settings.tsv system setting text
--   meta.tsv     key value
-- Output: REPORT_MD, and OUT_DIR/plot/*.dat + *.gp (bench/run draws them).
--
-- Nothing here is hard-coded about who wins: every sentence that says a
-- peer is better is generated from the medians. Ratios are written as the
-- "vedhost advantage": peer / vedhost for times, bytes and memory (lower is
-- better), vedhost / peer for throughput (higher is better); above 1 means
-- vedhost is better, below 1 that the peer is.

local here = arg[0]:match("(.*/)") or "./"
package.path = here .. "../lib/?.lua;" .. package.path
local stats = require "stats"

local out_dir, report_path = arg[1], arg[2]
assert(out_dir and report_path, "usage: report.lua OUT_DIR REPORT_MD")

local function split(line)
  local f = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
  return f
end

local function read_tsv(name)
  local rows = {}
  local f = io.open(out_dir .. "/" .. name, "r")
  if not f then return rows end
  for line in f:lines() do
    if line ~= "" then rows[#rows + 1] = split(line) end
  end
  f:close()
  return rows
end

-- Results grouped: groups[metric][system/setting][K/N] =
--   {values = {...}, na = {reason = true}}.
local groups, sizes_seen, meta, meta_order = {}, {}, {}, {}
for _, r in ipairs(read_tsv("results.tsv")) do
  local sys, set, k, n, metric, value, note = r[1], r[2], tonumber(r[3]),
      tonumber(r[4]), r[5], r[6], r[9] or ""
  local key = sys .. "/" .. set
  groups[metric] = groups[metric] or {}
  local g = groups[metric]
  g[key] = g[key] or {}
  local cell_key = k .. "/" .. n
  g[key][cell_key] = g[key][cell_key] or { values = {}, na = {}, notes = {} }
  local cell = g[key][cell_key]
  local x = tonumber(value)
  if x then
    cell.values[#cell.values + 1] = x
    if note ~= "" then cell.notes[note] = true end
  else
    cell.na[note ~= "" and note or "n/a"] = true
  end
  if k and n and k > 0 then sizes_seen[cell_key] = { k = k, n = n } end
end
for _, r in ipairs(read_tsv("meta.tsv")) do
  if meta[r[1]] == nil then meta_order[#meta_order + 1] = r[1] end
  meta[r[1]] = r[2]
end
local checks = read_tsv("checks.tsv")
local settings = read_tsv("settings.tsv")

local sizes = {}
for _, s in pairs(sizes_seen) do sizes[#sizes + 1] = s end
table.sort(sizes, function(a, b)
  if a.k ~= b.k then return a.k < b.k end
  return a.n < b.n
end)
local ks = {}
for _, s in ipairs(sizes) do
  if ks[#ks] ~= s.k then ks[#ks + 1] = s.k end
end

local NAMES = {
  ["vedhost/clean"] = "vedhost, after clean stop",
  ["vedhost/kill9"] = "vedhost, after kill -9",
  ["vedhost/kill9load"] = "vedhost, after kill -9 under load",
  ["vedhost/empty"] = "vedhost, empty data dir",
  ["vedhost/sync"] = "vedhost --durability sync",
  ["vedhost/nosync"] = "vedhost --durability nosync",
  ["vedhost/rss"] = "vedhost (VmRSS)",
  ["redis/aof-always"] = "Redis AOF, appendfsync always",
  ["redis/aof-everysec"] = "Redis AOF, appendfsync everysec",
  ["redis/rdb"] = "Redis RDB snapshot",
  ["redis/aof-preamble"] = "Redis RDB-preamble AOF",
  ["redis/native"] = "Redis (INFO used_memory)",
  ["redis/rss"] = "Redis (VmRSS)",
  ["tarantool/fsync"] = "Tarantool wal_mode=fsync",
  ["tarantool/write"] = "Tarantool wal_mode=write",
  ["tarantool/snapshot"] = "Tarantool snapshot",
  ["tarantool/native"] = "Tarantool (box.info.memory data+index)",
  ["tarantool/rss"] = "Tarantool (VmRSS)",
  ["eventlog/write"] = "event log (append, replay)",
  ["lua/table"] = "plain Lua table",
  ["lua/native"] = "plain Lua table (collectgarbage count)",
  ["lua/rss"] = "plain Lua table (VmRSS)",
}
-- In the restart table the settings name how the peer recovers.
local RESTART_NAMES = {
  ["redis/aof-always"] = "Redis AOF replay (written with always)",
  ["redis/aof-everysec"] = "Redis AOF replay (written with everysec)",
  ["redis/rdb"] = "Redis RDB load",
  ["redis/aof-preamble"] = "Redis RDB-preamble AOF load",
  ["tarantool/fsync"] = "Tarantool xlog replay (wal fsync)",
  ["tarantool/write"] = "Tarantool xlog replay (wal write)",
  ["tarantool/snapshot"] = "Tarantool snapshot load",
  ["eventlog/write"] = "event log replay",
}
local ORDER = {
  "vedhost/clean", "vedhost/kill9", "vedhost/kill9load", "vedhost/empty", "vedhost/sync",
  "vedhost/nosync", "vedhost/rss", "redis/aof-always", "redis/aof-everysec",
  "redis/rdb", "redis/aof-preamble", "redis/native", "redis/rss",
  "tarantool/fsync", "tarantool/write", "tarantool/snapshot",
  "tarantool/native", "tarantool/rss", "eventlog/write", "lua/table",
  "lua/native", "lua/rss",
}
local function name_of(key, metric)
  if metric == "restart" and RESTART_NAMES[key] then
    return RESTART_NAMES[key]
  end
  return NAMES[key] or key
end

-- Formatting ---------------------------------------------------------------
local function sig(x)
  if x == 0 then return "0" end
  local a = math.abs(x)
  if a >= 100 then return string.format("%.0f", x) end
  if a >= 10 then return string.format("%.1f", x) end
  if a >= 1 then return string.format("%.2f", x) end
  return string.format("%.3g", x)
end
local function si(x)
  local a = math.abs(x)
  if a >= 1e9 then return sig(x / 1e9) .. "G" end
  if a >= 1e6 then return sig(x / 1e6) .. "M" end
  if a >= 1e3 then return sig(x / 1e3) .. "k" end
  return sig(x)
end
local function bytes(x)
  local a = math.abs(x)
  if a >= 1024 ^ 3 then return sig(x / 1024 ^ 3) .. " GiB" end
  if a >= 1024 ^ 2 then return sig(x / 1024 ^ 2) .. " MiB" end
  if a >= 1024 then return sig(x / 1024) .. " KiB" end
  return sig(x) .. " B"
end
local METRICS = {
  restart = { title = "Restart time to first served request", unit = "ms",
              scale = 1000, fmt = sig, lower = true, verb = "restarts faster" },
  tput = { title = "Update throughput", unit = "updates/s", scale = 1,
           fmt = si, lower = false, verb = "has higher throughput" },
  mem_bpk = { title = "Resident memory per key", unit = "bytes/key", scale = 1,
              fmt = sig, lower = true, verb = "uses less memory per key" },
  disk = { title = "Bytes on disk", unit = "", scale = 1, fmt = bytes,
           lower = true, verb = "uses less disk" },
}

local function summary(metric, key, k, n)
  local g = groups[metric] and groups[metric][key]
  local cell = g and g[k .. "/" .. n]
  if not cell then return nil end
  local s = stats.summary(cell.values)
  if s then
    local sc = METRICS[metric].scale
    return { median = s.median * sc, min = s.min * sc, max = s.max * sc,
             n = s.n, notes = cell.notes }
  end
  local reasons = {}
  for r in pairs(cell.na) do reasons[#reasons + 1] = r end
  table.sort(reasons)
  return { na = table.concat(reasons, "; ") }
end

local function cell_text(metric, s)
  if not s then return "" end
  if s.na then return "n/a: " .. s.na end
  local f = METRICS[metric].fmt
  if s.n > 1 then
    return string.format("%s [%s–%s]", f(s.median), f(s.min), f(s.max))
  end
  return f(s.median)
end

-- count(1000000) -> "1M", count(2000) -> "2k", count(1500) -> "1500".
local function count(x)
  if x >= 1e6 and x % 1e6 == 0 then return string.format("%dM", x // 1e6) end
  if x >= 1e3 and x % 1e3 == 0 then return string.format("%dk", x // 1e3) end
  return tostring(x)
end

local function size_label(s)
  return string.format("K=%s N=%s", count(s.k), count(s.n))
end

-- Comparisons for the ratio table: {metric, vedhost key, {peer keys}}. The
-- table shows the largest K at its largest N (memory: at its smallest N);
-- the "peer wins" sentences look at every size.
local COMPARE = {
  { "restart", "vedhost/clean", { "redis/aof-always", "redis/aof-everysec",
    "redis/rdb", "redis/aof-preamble", "tarantool/fsync", "tarantool/snapshot",
    "eventlog/write" } },
  { "restart", "vedhost/kill9", { "redis/aof-always", "redis/aof-everysec",
    "tarantool/fsync", "tarantool/write", "eventlog/write" } },
  { "restart", "vedhost/kill9load", { "redis/aof-always",
    "redis/aof-everysec", "tarantool/fsync", "tarantool/write" } },
  { "tput", "vedhost/sync", { "redis/aof-always", "tarantool/fsync" } },
  { "tput", "vedhost/nosync", { "redis/aof-everysec", "redis/rdb",
    "tarantool/write", "eventlog/write", "lua/table" } },
  { "mem_bpk", "vedhost/rss", { "redis/rss", "tarantool/rss", "lua/rss" } },
  { "disk", "vedhost/sync", { "redis/aof-everysec", "redis/rdb",
    "redis/aof-preamble", "tarantool/fsync", "tarantool/snapshot",
    "eventlog/write" } },
}

-- advantage(metric, v, p): >1 when vedhost is better.
local function advantage(metric, v, p)
  if METRICS[metric].lower then return p / v end
  return v / p
end

local md = {}
local function w(...) md[#md + 1] = table.concat({ ... }) end

w("# vedhost vs peers: benchmark report")
w("")
w("Generated by `", meta.command or "bench/run", "` on ", meta.date or "?",
  " (", meta.mode or "?", " mode). Every number below was measured in this ",
  "one run on this machine; nothing is copied from elsewhere.")
if meta.mode == "quick" then
  w("")
  w("**Quick mode**: tiny sizes and one repeat, run only to prove that the ",
    "harness works end to end. These numbers say nothing about performance; ",
    "run `bench/run` without `--quick` for the real report.")
end
local function unavailable_lines()
  local out = {}
  for _, key in ipairs(meta_order) do
    local sys = key:match("^unavailable (.*)")
    if sys then out[#out + 1] = "- " .. sys .. ": " .. meta[key] end
  end
  if meta.vedhost_persist then
    out[#out + 1] = "- vedhost: restart and disk rows are n/a because the " ..
                    "build does not persist (a restart saw an empty state)."
  end
  return out
end
local missing = unavailable_lines()
if #missing > 0 then
  w("")
  w("Not measured in this run:")
  for _, l in ipairs(missing) do w(l) end
end

-- Ratio table ---------------------------------------------------------------
local largest = sizes[#sizes]
local smallest_n_of_largest_k
for _, s in ipairs(sizes) do
  if largest and s.k == largest.k then
    smallest_n_of_largest_k = smallest_n_of_largest_k or s
  end
end
w("")
w("## Ratios: vedhost vs each peer")
w("")
if not largest then
  w("No measurement was recorded.")
else
  w("Measured at the largest size of the run (", size_label(largest),
    "; memory at ", size_label(smallest_n_of_largest_k), "). The ratio is ",
    "the *vedhost advantage*: peer ÷ vedhost for restart time, memory and ",
    "disk, vedhost ÷ peer for throughput. Above 1 vedhost is better, below 1 ",
    "the peer is. Medians of ", meta.repeats or "?", " repeat(s).")
  w("")
  w("| metric | vedhost | value | peer | value | vedhost advantage |")
  w("| --- | --- | ---: | --- | ---: | ---: |")
  local last_metric
  for _, c in ipairs(COMPARE) do
    local metric, vkey = c[1], c[2]
    local at = metric == "mem_bpk" and smallest_n_of_largest_k or largest
    local v = summary(metric, vkey, at.k, at.n)
    for _, pkey in ipairs(c[3]) do
      local p = summary(metric, pkey, at.k, at.n)
      if p then
        local ratio = "n/a"
        if v and not v.na and not p.na and v.median > 0 and p.median > 0 then
          local a = advantage(metric, v.median, p.median)
          ratio = string.format("%s×%s", sig(a),
                                a < 1 and " (peer wins)" or "")
        end
        local unit = METRICS[metric].unit
        local sp = unit ~= "" and " " or ""
        local vt, pt = "n/a", "n/a: " .. (p.na or "")
        if v and v.na then vt = "n/a: " .. v.na end
        if v and not v.na then
          vt = METRICS[metric].fmt(v.median) .. sp .. unit
        end
        if not p.na then pt = METRICS[metric].fmt(p.median) .. sp .. unit end
        w("| ", metric == last_metric and "" or METRICS[metric].title:lower(),
          " | ", name_of(vkey, metric),
          " | ", vt, " | ", name_of(pkey, metric), " | ", pt, " | ", ratio,
          " |")
        last_metric = metric
      end
    end
  end

  -- Where a peer wins, say so: one sentence per pair, listing every size
  -- of the run at which the peer's median is better.
  local wins, compared, pairs_won = {}, 0, 0
  for _, c in ipairs(COMPARE) do
    local metric, vkey = c[1], c[2]
    local f, unit = METRICS[metric].fmt, METRICS[metric].unit
    unit = unit ~= "" and (" " .. unit) or ""
    for _, pkey in ipairs(c[3]) do
      local at, n_cmp = {}, 0
      for _, s in ipairs(sizes) do
        local v = summary(metric, vkey, s.k, s.n)
        local p = summary(metric, pkey, s.k, s.n)
        if v and p and not v.na and not p.na and v.median > 0 and p.median > 0
        then
          compared, n_cmp = compared + 1, n_cmp + 1
          if advantage(metric, v.median, p.median) < 1 then
            at[#at + 1] = string.format("%s (%s vs %s%s)", size_label(s),
                                        f(p.median), f(v.median), unit)
          end
        end
      end
      if #at > 0 then
        pairs_won = pairs_won + #at
        wins[#wins + 1] = string.format("- %s %s than %s at %s%s.",
          name_of(pkey, metric), METRICS[metric].verb, name_of(vkey, metric),
          #at == n_cmp and n_cmp > 1 and "every size: " or "",
          table.concat(at, ", "))
      end
    end
  end
  w("")
  if compared == 0 then
    w("No vedhost-to-peer comparison could be made in this run (the vedhost ",
      "rows are n/a; the reasons are in the tables below).")
  elseif #wins == 0 then
    w("In all ", compared, " comparisons of this run (every size), vedhost ",
      "was better than the peer.")
  else
    w("Where a peer wins: ", pairs_won, " of the ", compared,
      " comparisons over every size of this run (peer vs vedhost):")
    w("")
    for _, l in ipairs(wins) do w(l) end
  end
end

-- Detail tables -------------------------------------------------------------
local function detail(metric, intro)
  local m = METRICS[metric]
  w("")
  w("## ", m.title, m.unit ~= "" and (" (" .. m.unit .. ")") or "")
  w("")
  w(intro)
  w("")
  local head, rule = { "| system / setting |" }, { "| --- |" }
  for _, s in ipairs(sizes) do
    head[#head + 1] = " " .. size_label(s) .. " |"
    rule[#rule + 1] = " ---: |"
  end
  w(table.concat(head))
  w(table.concat(rule))
  local g = groups[metric] or {}
  local keys = {}
  for _, key in ipairs(ORDER) do if g[key] then keys[#keys + 1] = key end end
  for key in pairs(g) do
    local known = false
    for _, o in ipairs(ORDER) do if o == key then known = true end end
    if not known then keys[#keys + 1] = key end
  end
  for _, key in ipairs(keys) do
    local row = { "| ", name_of(key, metric), " |" }
    for _, s in ipairs(sizes) do
      row[#row + 1] = " " .. cell_text(metric, summary(metric, key, s.k, s.n))
                      .. " |"
    end
    w(table.concat(row))
  end
end

local floor_ms = tonumber(meta.spawn_floor or "")
detail("restart", "Median [min–max]. Redis: from exec of redis-server " ..
  "until " ..
  "PING returns PONG (not LOADING), polled with redis-cli every ~2 ms. " ..
  "Tarantool, the event log and vedhost: a script that recovers, serves " ..
  "one request (it reads the count and the last key written), prints the " ..
  "reply as one line and exits; timed from exec until that line arrives " ..
  "on the harness's pipe, so process start is included and the exit after " ..
  "the reply is not. Starting a process that does nothing (`true`) costs " ..
  (floor_ms and (sig(floor_ms * 1000) .. " ms") or "?") ..
  " on this machine with the same method.")
detail("tput", "N updates divided by the time they took. Redis: wall time " ..
  "of the one redis-cli that sends the EVALSHA calls. Tarantool, event " ..
  "log, Lua: the update loop timed inside the process (monotonic clock). " ..
  "vedhost: the writer's exec-to-exit time minus an empty host's, so it " ..
  "also counts the final flush (conservative for vedhost).")
detail("mem_bpk", "Bytes per key: (memory with the K keys - memory of the " ..
  "same process empty) / K. VmRSS rows compare processes; native rows are " ..
  "each system's own accounting.")
detail("disk", "Apparent size of the files each system keeps after the " ..
  "run: Redis appendonlydir + dump.rdb, Tarantool .snap + .xlog, the event " ..
  "log file, vedhost's data dir.")

-- Crash restart against clean restart (issue 16: <= 2x) -------------------
do
  local rows = {}
  for _, s in ipairs(sizes) do
    local c = summary("restart", "vedhost/clean", s.k, s.n)
    local function r(key)
      local v = summary("restart", key, s.k, s.n)
      if not (c and v) or c.na or v.na or c.median <= 0 then return "n/a" end
      return string.format("%s ms, %sx", sig(v.median),
                           sig(v.median / c.median))
    end
    if c and not c.na then
      rows[#rows + 1] = string.format("| %s | %s ms | %s | %s |",
        size_label(s), sig(c.median), r("vedhost/kill9"),
        r("vedhost/kill9load"))
    end
  end
  if #rows > 0 then
    w("")
    w("## vedhost: crash restart against clean restart")
    w("")
    w("Medians of the same run; the ratio is crash ÷ clean (target <= 2x). ",
      "kill -9: the idle writer, killed once its N updates were ",
      "acknowledged; under load: a writer with 2N updates to do, killed ",
      "in the middle of its flood (after the sync writer's time for N).")
    w("")
    w("| size | clean stop | kill -9 (idle) | kill -9 under load |")
    w("| --- | ---: | ---: | ---: |")
    for _, l in ipairs(rows) do w(l) end
  end
end

-- Checks --------------------------------------------------------------------
w("")
w("## Correctness checks")
w("")
local bad = {}
for _, c in ipairs(checks) do
  if c[8] ~= "ok" then bad[#bad + 1] = c end
end
w("After every restart the harness read the state back: the number of ",
  "keys (or vedhost's update count) and the value of the last key written. ",
  #checks, " checks, ", #checks - #bad, " matched.")
if #bad > 0 then
  w("")
  w("| system / setting | K | N | what | expected | got |")
  w("| --- | ---: | ---: | --- | --- | --- |")
  for _, c in ipairs(bad) do
    w("| ", name_of(c[1] .. "/" .. c[2], "restart"), " | ", c[3], " | ", c[4],
      " | ", c[5], " | ", c[6], " | ", c[7], " |")
  end
end

-- Settings and machine ------------------------------------------------------
w("")
w("## Exact settings")
w("")
w("Workload: N updates over K keys, update j sets key `\"k\" .. (j % K)` to ",
  "j, inside each system's own scripting, ", meta.batch or "?",
  " updates per call/transaction/handler. K in {", meta.sizes or "?",
  "}, N = K × {", meta.mults or "?", "}, ", meta.repeats or "?",
  " repeat(s) with fresh data each.")
w("")
w("| system | setting | configuration |")
w("| --- | --- | --- |")
for _, s in ipairs(settings) do
  w("| ", s[1], " | ", s[2], " | ", (s[3] or ""):gsub("|", "\\|"), " |")
end
w("")
w("## Machine and versions")
w("")
w("| | |")
w("| --- | --- |")
for _, key in ipairs({ "date", "os", "kernel", "cpu", "nproc", "memory",
                       "filesystem", "overcommit", "lua", "redis",
                       "tarantool", "vedhost", "gnuplot" }) do
  if meta[key] then w("| ", key, " | ", meta[key], " |") end
end

-- Chart data ----------------------------------------------------------------
local series, titles, nved = {}, {}, 0
local restart = groups.restart or {}
for _, key in ipairs(ORDER) do
  if restart[key] and key ~= "vedhost/empty" then
    local rows = {}
    for _, s in ipairs(sizes) do
      local sm = summary("restart", key, s.k, s.n)
      if sm and not sm.na then
        rows[#rows + 1] = string.format("%d %d %.6f %.6f %.6f", s.k, s.n,
                                        sm.median, sm.min, sm.max)
      end
    end
    if #rows > 0 then
      local file = "restart_" .. key:gsub("[^%w]", "_") .. ".dat"
      local f = assert(io.open(out_dir .. "/plot/" .. file, "w"))
      f:write(table.concat(rows, "\n"), "\n")
      f:close()
      series[#series + 1] = file
      if key:match("^vedhost/") then nved = nved + 1 end
      titles[#titles + 1] = name_of(key, "restart"):gsub("'", "")
    end
  end
end
if #series > 0 then
  local ktext = {}
  for _, k in ipairs(ks) do ktext[#ktext + 1] = tostring(k) end
  local f = assert(io.open(out_dir .. "/plot/restart.gp", "w"))
  f:write(string.format("out = 'restart.png'\nks = '%s'\nseries = '%s'\n" ..
                        "titles = '%s'\nsubtitle = '%s'\nnved = %d\n" ..
                        "load '%s'\n",
                        table.concat(ktext, " "), table.concat(series, " "),
                        table.concat(titles, "|"),
                        string.format(
                          "%s mode, median of %s, bars = min-max, %s%s",
                          meta.mode or "?", meta.repeats or "?",
                          meta.date or "", nved > 0 and "" or
                          " (no vedhost line: its restart rows are n/a)"),
                        nved,
                        here .. "restart.gp"))
  f:close()
  w("")
  w("## Chart")
  w("")
  w("![restart time vs history length](restart.png)")
  w("")
  w("One line per system; log-log axes; one panel per K.")
end

-- Bar chart: throughput, memory per key (VmRSS rows only, so that every
-- bar measures the same thing) and disk at the largest K, each at the
-- size the ratio table uses.
local PANELS = {
  { metric = "tput", size = largest, unit = "updates/s", log = 1,
    keep = function(key) return key ~= "vedhost/empty" end },
  { metric = "mem_bpk", size = smallest_n_of_largest_k, unit = "bytes/key",
    log = 0, keep = function(key) return key:match("/rss$") ~= nil end },
  { metric = "disk", size = largest, unit = "MiB", log = 1, div = 1024 ^ 2,
    keep = function() return true end },
}
local panels = {}
for _, p in ipairs(PANELS) do
  local g, rows = groups[p.metric] or {}, {}
  for _, key in ipairs(ORDER) do
    local sm = p.size and g[key] and p.keep(key) and
               summary(p.metric, key, p.size.k, p.size.n)
    if sm and not sm.na and sm.median > 0 then
      local d = p.div or 1
      rows[#rows + 1] = string.format("%s\t%.6g\t%.6g\t%.6g\t%d",
                                      name_of(key, p.metric), sm.median / d,
                                      sm.min / d, sm.max / d,
                                      key:match("^vedhost/") and 1 or 2)
    end
  end
  if #rows > 0 then
    local file = "bars_" .. p.metric .. ".dat"
    local f = assert(io.open(out_dir .. "/plot/" .. file, "w"))
    f:write(table.concat(rows, "\n"), "\n")
    f:close()
    panels[#panels + 1] = {
      file = file, log = p.log,
      title = METRICS[p.metric].title .. ", " .. size_label(p.size),
      ylabel = p.unit .. (p.log == 1 and " (log scale)" or ""),
    }
  end
end
if #panels > 0 then
  local function arr(name, field, quote)
    local items = {}
    for _, p in ipairs(panels) do
      local v = tostring(p[field])
      items[#items + 1] = quote and ('"' .. v:gsub('"', "'") .. '"') or v
    end
    return string.format("array %s[%d] = [%s]\n", name, #panels,
                         table.concat(items, ", "))
  end
  local f = assert(io.open(out_dir .. "/plot/bars.gp", "w"))
  f:write("out = 'peers.png'\n", string.format("np = %d\n", #panels),
          arr("F", "file", true), arr("T", "title", true),
          arr("Y", "ylabel", true), arr("L", "log", false),
          string.format("subtitle = '%s mode, median of %s, bars = min-max, " ..
                        "%s'\n", meta.mode or "?", meta.repeats or "?",
                        meta.date or ""),
          string.format("load '%s'\n", here .. "bars.gp"))
  f:close()
  w("")
  w("![throughput, memory and disk at the largest K](peers.png)")
  w("")
  w("`peers.png`: the throughput, memory-per-key (VmRSS) and disk tables ",
    "above at the largest K, one bar per system and setting (vedhost red, ",
    "peers blue), log scale where values span orders of magnitude.")
end

local f = assert(io.open(report_path, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
