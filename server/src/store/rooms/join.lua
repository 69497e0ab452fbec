-- Queues a person once. KEYS: lanes (hash person -> lane), pre (list), state (hash).
-- ARGV: person. Answers the lane: 'p' before the shuffle, 'l<n>' after it.
local lane = redis.call('HGET', KEYS[1], ARGV[1])
if lane then
  return lane
end
if redis.call('HEXISTS', KEYS[3], 'seed') == 1 then
  lane = 'l' .. redis.call('HINCRBY', KEYS[3], 'late', 1)
else
  redis.call('RPUSH', KEYS[2], ARGV[1])
  lane = 'p'
end
redis.call('HSET', KEYS[1], ARGV[1], lane)
return lane
