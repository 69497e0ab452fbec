#!lua
-- failure: counts one more login failure of a subject (an account or an address).
--
-- KEYS[1] the subject's failures        HASH count, last
-- ARGV: now (unix seconds), keep (seconds after the latest failure)
-- Reply: {count, last}
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {count, tonumber(ARGV[1])}
