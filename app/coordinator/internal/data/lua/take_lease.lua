-- take_lease: gives the lease of an unfinished transaction to an owner, whoever held it (else 0).
-- KEYS: global hash, unfinished queue
-- ARGV: gid, owner, lease until (ms), now (ms)
local global, queue = KEYS[1], KEYS[2]
local gid, owner, lease_until, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not redis.call('ZSCORE', queue, gid) then return 0 end
redis.call('HSET', global, 'owner', owner, 'next_cron_time', lease_until, 'update_time', now)
redis.call('ZADD', queue, lease_until, gid)
return 1
