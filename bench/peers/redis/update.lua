-- bench/peers/redis/update.lua: the workload inside Redis (EVAL/EVALSHA).
-- ARGV: first j (inclusive), last j (exclusive), K. For every j it does
-- SET "k"..(j % K) j, exactly the update every other system performs.
-- Returns the number of updates done, which the harness checks.
local first, stop, k = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for j = first, stop - 1 do
  redis.call('SET', 'k' .. (j % k), j)
end
return stop - first
