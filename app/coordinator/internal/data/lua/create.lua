-- create: stores a new transaction with its branches, unless its gid exists (returns 0).
-- KEYS: global hash, branch list, branch states, unfinished queue, id index, id counter, expiry index
-- ARGV: now (s), gid, prune limit, id ('': take the next from the id counter), 2n, n hash
--       fields and values, expire (s, '' while unfinished), then per branch: state field, state,
--       fixed part (JSON)
local global, branches, states, queue, all, counter, expiring =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local now, gid, prune, given, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local expire = ARGV[6 + n]
if redis.call('EXISTS', global) == 1 then return 0 end
-- Forget up to `prune` transactions whose data has expired.
for _, old in ipairs(redis.call('ZRANGEBYSCORE', expiring, '-inf', now, 'LIMIT', 0, prune)) do
  redis.call('ZREM', all, old)
  redis.call('ZREM', expiring, old)
end
local id = given
if id == '' then id = redis.call('INCR', counter) end
redis.call('HSET', global, 'id', id, unpack(ARGV, 6, 5 + n))
for i = 7 + n, #ARGV, 3 do
  redis.call('HSET', states, ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', branches, ARGV[i + 2])
end
redis.call('ZADD', all, id, gid)
redis.call('ZREM', expiring, gid)
if expire == '' then
  redis.call('ZADD', queue, redis.call('HGET', global, 'next_cron_time'), gid)
else
  for _, key in ipairs({global, branches, states}) do redis.call('EXPIRE', key, expire) end
  redis.call('ZADD', expiring, now + expire, gid)
end
return 1
