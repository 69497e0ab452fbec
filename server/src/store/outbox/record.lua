#!lua
-- record: what became of sends. Sent and dead are final: a late report for a message
-- another dispatcher finished changes nothing.
--
-- KEYS[1] due messages     ZSET message id -> due (unix ms)
-- KEYS[2] outbox counters  HASH queued / sent / failed / dead
-- ARGV: prefix, then (id, state, attempts, due ms, error) per outcome
--
-- Reply: how many changed
local prefix = ARGV[1]
local changed = 0
for i = 2, #ARGV, 5 do
  local id, state, attempts, due, err = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = prefix .. ':sms:msg:' .. id
  local before = redis.call('HGET', key, 'state')
  if before and before ~= 'sent' and before ~= 'dead' then
    if state == 'failed' then
      redis.call('ZADD', KEYS[1], due, id)
      redis.call('HSET', key, 'state', state, 'attempts', attempts, 'due', due, 'error', err)
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('HSET', key, 'state', state, 'attempts', attempts, 'due', '0', 'error', err)
    end
    redis.call('HINCRBY', KEYS[2], before, -1)
    redis.call('HINCRBY', KEYS[2], state, 1)
    changed = changed + 1
  end
end
return changed
