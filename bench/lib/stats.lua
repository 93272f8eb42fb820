-- bench/lib/stats.lua: median and spread of repeated measurements.
--
-- A module (require "stats" with bench/lib on package.path) used by
-- bench/report/report.lua. Run directly it reads numbers, one per line, from
-- stdin and prints "median min max count" (handy from bash).
--
-- The median of an even count is the mean of the two middle values. The
-- spread is reported as the full range (min-max), not a standard deviation:
-- with three repeats a range is what can honestly be said.

local M = {}

-- M.summary(values) -> {median=, min=, max=, n=} or nil for an empty list.
-- values: array of numbers (borrowed, not modified).
function M.summary(values)
  local v = {}
  for i = 1, #values do v[i] = values[i] end
  if #v == 0 then return nil end
  table.sort(v)
  local n = #v
  local med
  if n % 2 == 1 then
    med = v[(n + 1) // 2]
  else
    med = (v[n // 2] + v[n // 2 + 1]) / 2
  end
  return { median = med, min = v[1], max = v[n], n = n }
end

if arg and arg[0] and arg[0]:match("stats%.lua$") then
  local values = {}
  for line in io.lines() do
    local x = tonumber(line)
    if x then values[#values + 1] = x end
  end
  local s = M.summary(values)
  if not s then
    print("n/a n/a n/a 0")
  else
    print(string.format("%.9g %.9g %.9g %d", s.median, s.min, s.max, s.n))
  end
end

return M
