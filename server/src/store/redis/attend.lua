#!lua
-- attend: checks a person's booking in, atomically with its status. A booked or no-show
-- booking becomes attended (the seat was held all along); checking in twice answers the
-- attended booking and changes nothing; a cancelled booking is refused.
--
-- ARGV: prefix, person, booking
--
-- Reply: {outcome, booking fields}
local prefix, person, id = ARGV[1], ARGV[2], ARGV[3]
local booking = prefix .. ':booking:' .. id

if redis.call('HGET', booking, 'person') ~= person then
  return {'unknown', {}}
end
local status = redis.call('HGET', booking, 'status')
if status == 'attended' then
  return {'already-attended', redis.call('HGETALL', booking)}
end
if status ~= 'booked' and status ~= 'no-show' then
  return {'cancelled', redis.call('HGETALL', booking)}
end
redis.call('HSET', booking, 'status', 'attended')
local phase = redis.call('HGET', booking, 'phase')
redis.call('XADD', prefix .. ':phase:' .. phase .. ':ledger', '*',
  'e', 'attended', 'b', id, 'p', person, 'w', status)
return {'attended', redis.call('HGETALL', booking)}
