#!lua
-- cancel: marks a person's live booking cancelled and returns its seat, atomically.
-- Cancelling twice answers the cancelled booking and changes nothing; an attended or
-- no-show booking is final (its seat was used) and answers 'final'.
--
-- KEYS[1] person's live bookings     HASH phase -> booking
-- KEYS[2] counter revision           STRING integer
-- ARGV: prefix, person, booking
--
-- Reply: {outcome, remaining seats of the booking's slot (-1: not read), revision,
--         booking fields}
local prefix, person, id = ARGV[1], ARGV[2], ARGV[3]
local booking = prefix .. ':booking:' .. id

local rev = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('HGET', booking, 'person') ~= person then
  return {'unknown', -1, rev, {}}
end
local slot = redis.call('HGET', booking, 'slot')
local phase = redis.call('HGET', booking, 'phase')
local seats = prefix .. ':slot:' .. slot .. ':remaining'
local status = redis.call('HGET', booking, 'status')
if status == 'attended' or status == 'no-show' then
  return {'final', tonumber(redis.call('GET', seats) or '-1'), rev,
    redis.call('HGETALL', booking)}
end
if status ~= 'booked' then
  return {'already-cancelled', tonumber(redis.call('GET', seats) or '-1'), rev,
    redis.call('HGETALL', booking)}
end

redis.call('HSET', booking, 'status', 'cancelled')
local remaining = redis.call('INCR', seats)
rev = redis.call('INCR', KEYS[2])
if redis.call('HGET', KEYS[1], phase) == id then
  redis.call('HDEL', KEYS[1], phase)
end
redis.call('XADD', prefix .. ':phase:' .. phase .. ':ledger', '*',
  'e', 'cancelled', 'b', id, 'p', person, 's', slot)
return {'cancelled', remaining, rev, redis.call('HGETALL', booking)}
