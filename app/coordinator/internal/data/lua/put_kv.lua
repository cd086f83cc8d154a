-- put_kv: writes a KV entry if its version is still the expected one (0: absent), incrementing
-- it; 1 if written, 0 if someone changed it meanwhile.
-- KEYS: the category's hash
-- ARGV: key, expected version, new value
local kv = KEYS[1]
local key, expected, value = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local stored = redis.call('HGET', kv, key)
local version = 0
if stored then version = cjson.decode(stored).version end
if version ~= expected then return 0 end
redis.call('HSET', kv, key, cjson.encode({ v = value, version = version + 1 }))
return 1
