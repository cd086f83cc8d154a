-- reset_cron_time: up to `limit` unfinished transactions due after `after` become due now;
-- returns {how many, 1 if more remain}.
-- KEYS: unfinished queue
-- ARGV: after (ms), now (ms), limit, key prefix
local queue = KEYS[1]
local after, now, limit, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local gids = redis.call('ZRANGEBYSCORE', queue, '(' .. after, '+inf', 'LIMIT', 0, limit + 1)
local n = math.min(#gids, limit)
for i = 1, n do
  redis.call('ZADD', queue, now, gids[i])
  redis.call('HSET', prefix .. '_g_' .. gids[i], 'next_cron_time', now, 'update_time', now)
end
return {n, #gids > limit and 1 or 0}
