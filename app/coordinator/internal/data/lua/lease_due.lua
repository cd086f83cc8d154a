-- lease_due: leases the first due unfinished transaction to an owner; its gid, or false.
-- The gid is only known here, so its key is built here (the prefix's hash tag keeps it in the
-- queue's slot).
-- KEYS: unfinished queue
-- ARGV: now (ms), lease until (ms), owner, key prefix
local queue = KEYS[1]
local now, lease_until, owner, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local due = redis.call('ZRANGEBYSCORE', queue, '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then return false end
local gid = due[1]
redis.call('ZADD', queue, lease_until, gid)
redis.call('HSET', prefix .. '_g_' .. gid, 'owner', owner, 'next_cron_time', lease_until,
  'update_time', now)
return gid
