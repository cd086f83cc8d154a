-- schedule: sets when an unfinished transaction is due next while the owner holds its lease
-- (else 0).
-- KEYS: global hash, unfinished queue
-- ARGV: gid, owner, next cron time (ms), next cron interval ('' keeps it), now (ms)
local global, queue = KEYS[1], KEYS[2]
local gid, owner, next_time, interval, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not redis.call('ZSCORE', queue, gid) then return 0 end
if redis.call('HGET', global, 'owner') ~= owner then return 0 end
redis.call('HSET', global, 'next_cron_time', next_time, 'update_time', now)
if interval ~= '' then redis.call('HSET', global, 'next_cron_interval', interval) end
redis.call('ZADD', queue, next_time, gid)
return 1
