-- add_branches (registerBranch): while the transaction is in the expected status (else 0);
-- -1 if one of the branches exists already (nothing written).
-- KEYS: global hash, branch list, branch states
-- ARGV: expected status, then per branch: state field, state, fixed part (JSON)
local global, branches, states = KEYS[1], KEYS[2], KEYS[3]
local expected = ARGV[1]
if redis.call('HGET', global, 'status') ~= expected then return 0 end
local seen = {}
for i = 2, #ARGV, 3 do
  if seen[ARGV[i]] or redis.call('HEXISTS', states, ARGV[i]) == 1 then return -1 end
  seen[ARGV[i]] = true
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', states, ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', branches, ARGV[i + 2])
end
return 1
