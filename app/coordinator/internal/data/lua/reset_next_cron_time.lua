-- reset_next_cron_time: one unfinished transaction becomes due now (else 0).
-- KEYS: global hash, unfinished queue
-- ARGV: gid, now (ms)
local global, queue = KEYS[1], KEYS[2]
local gid, now = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', queue, gid) then return 0 end
redis.call('ZADD', queue, now, gid)
redis.call('HSET', global, 'next_cron_time', now, 'update_time', now)
return 1
