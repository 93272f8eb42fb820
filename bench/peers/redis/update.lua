-- bench/peers/redis/update.lua: the workload inside Redis (EVAL/EVALSHA).
-- ARGV: first j (inclusive), last j (exclusive), K. For every j it does
-- SET "k"..(j % K) j, exactly the update every other system performs.
-- ARGV[4] (optional, > 0): the value is a string of that many bytes, the
-- digits of j padded with 'x' (bench/run --value-bytes).
-- Returns the number of updates done, which the harness checks.
local first, stop, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local vb = tonumber(ARGV[4] or '0') or 0
if vb > 0 then
  local pad = string.rep('x', vb)
  for j = first, stop - 1 do
    redis.call('SET', 'k' .. (j % k), string.sub(j .. pad, 1, vb))
  end
  return stop - first
end
for j = first, stop - 1 do
  redis.call('SET', 'k' .. (j % k), j)
end
return stop - first
