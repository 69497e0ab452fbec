#!lua
-- close_out: marks the named bookings of one day no-show where they are still booked;
-- their seats stay taken. Each booking is decided here, atomically with any check-in or
-- cancel, so a booking checked in since the caller read it stays attended.
--
-- KEYS[1] the phase's ledger   STREAM
-- ARGV: prefix, N, the day's N slot ids, then booking ids...
--
-- Reply: the status of each named booking after the script, in order ('' if none, or if
-- it moved to a slot of another day since the caller read it)
local prefix, n = ARGV[1], tonumber(ARGV[2])
local day = {}
for i = 3, 2 + n do
  day[ARGV[i]] = true
end
local out = {}
for i = 3 + n, #ARGV do
  local id = ARGV[i]
  local booking = prefix .. ':booking:' .. id
  local status = redis.call('HGET', booking, 'status')
  if not day[redis.call('HGET', booking, 'slot') or ''] then
    status = ''
  elseif status == 'booked' then
    redis.call('HSET', booking, 'status', 'no-show')
    redis.call('XADD', KEYS[1], '*', 'e', 'no-show', 'b', id,
      'p', redis.call('HGET', booking, 'person'))
    status = 'no-show'
  end
  out[#out + 1] = status or ''
end
return out
