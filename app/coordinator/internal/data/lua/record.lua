-- record: a wave's branch results and the status change that follows, while the transaction is
-- in the expected status (else 0, nothing written); a branch it does not know stops it first.
-- KEYS: global hash, branch list, branch states, unfinished queue, expiry index
-- ARGV: gid, expected status, now (ms), n, then per branch: state field, state; then the change:
--       to ('' for none), at (ms), has reason ('1'), reason, rolls back ('1'), expire (s, '' if not
--       final), has result ('1'), result
local global, branches, states, queue, expiring = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local gid, expected, n = ARGV[1], ARGV[2], tonumber(ARGV[4])
local to, at, has_reason, reason, rolls_back, expire, has_result, result =
  unpack(ARGV, 5 + 2 * n, 12 + 2 * n)
if redis.call('HGET', global, 'status') ~= expected then return 0 end
for i = 5, 4 + 2 * n, 2 do
  if redis.call('HEXISTS', states, ARGV[i]) == 0 then return 0 end
end
for i = 5, 4 + 2 * n, 2 do redis.call('HSET', states, ARGV[i], ARGV[i + 1]) end
if to == '' then return 1 end
redis.call('HSET', global, 'status', to, 'update_time', at)
if has_reason == '1' then redis.call('HSET', global, 'rollback_reason', reason) end
if has_result == '1' then redis.call('HSET', global, 'result', result) end
if rolls_back == '1' then redis.call('HSETNX', global, 'rollback_time', at) end
if expire ~= '' then
  -- Final: out of the poller's queue; the data expires, the index entry with it.
  redis.call('HSET', global, 'finish_time', at)
  redis.call('ZREM', queue, gid)
  for _, key in ipairs({global, branches, states}) do redis.call('EXPIRE', key, expire) end
  redis.call('ZADD', expiring, math.floor(at / 1000) + expire, gid)
end
return 1
