#!lua
-- attempt: begins a login attempt against an account, atomically. When the account is
-- neither locked nor throttled, the attempt is counted as a failure at once (a success
-- clears the count afterwards), so parallel attempts each take a count of their own.
-- The rules are LoginPolicy::account's (server/src/identity/login.rs); the contract
-- suite holds the two together.
--
-- KEYS[1] the subject's failures        HASH count, last
-- ARGV: now, keep (seconds after the latest failure), throttle_after, throttle_seconds,
--       lock_after, lock_seconds
-- Reply: {'open' | 'throttled' | 'locked', retry_after seconds}
local now = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local throttle_after, throttle_seconds = tonumber(ARGV[3]), tonumber(ARGV[4])
local lock_after, lock_seconds = tonumber(ARGV[5]), tonumber(ARGV[6])
local f = redis.call('HMGET', KEYS[1], 'count', 'last')
local count, last = tonumber(f[1] or '0'), tonumber(f[2] or '0')

if count >= lock_after then
  if now < last + lock_seconds then return {'locked', last + lock_seconds - now} end
elseif count >= throttle_after then
  if now < last + throttle_seconds then return {'throttled', last + throttle_seconds - now} end
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last', now)
redis.call('EXPIRE', KEYS[1], keep)
return {'open', 0}
