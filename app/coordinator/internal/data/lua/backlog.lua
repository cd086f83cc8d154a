-- backlog: the unfinished transactions by status, and the earliest next_cron_time among them.
-- Reads every queued gid's status: O(unfinished), run once per metrics scrape.
-- KEYS: unfinished queue (a sorted set scored by next_cron_time)
-- ARGV: key prefix
-- Returns: earliest score (or ''), then status, count pairs.
local queue = KEYS[1]
local prefix = ARGV[1]
local queued = redis.call('ZRANGE', queue, 0, -1, 'WITHSCORES')
local counts = {}
local earliest = ''
for i = 1, #queued, 2 do
  if earliest == '' then earliest = queued[i + 1] end
  local status = redis.call('HGET', prefix .. '_g_' .. queued[i], 'status')
  if status then counts[status] = (counts[status] or 0) + 1 end
end
local out = {earliest}
for status, n in pairs(counts) do
  table.insert(out, status)
  table.insert(out, tostring(n))
end
return out
