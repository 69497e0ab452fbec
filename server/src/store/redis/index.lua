#!lua
-- index: finishes building a phase's booking list from its ledger, for Redis data written
-- before the lists existed (bookings were then only in the ledger). The caller has copied
-- the booked entries up to ARGV[1] into a temporary list; this adds the ones since, which
-- includes every booking the new scripts have listed meanwhile (each is also in the
-- ledger), and puts the temporary list in place, atomically. Once per phase: the marker
-- says it is done, and until then no instance trims the ledger.
--
-- KEYS[1] temporary list   LIST, this call's own
-- KEYS[2] booking list     LIST of the phase's booking ids in booking order
-- KEYS[3] ledger           STREAM
-- KEYS[4] marker           STRING, set once the list is complete
-- KEYS[5] builder's lock   STRING, released here
-- ARGV[1] the last ledger entry copied ('' for none)
--
-- Reply: 1 when this call built the list, 0 when another had already
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[5])
  return 0
end
local from = '-'
if ARGV[1] ~= '' then
  from = '(' .. ARGV[1]
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[3], from, '+')) do
  local fields, event, booking = entry[2], nil, nil
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then
      event = fields[i + 1]
    elseif fields[i] == 'b' then
      booking = fields[i + 1]
    end
  end
  if event == 'booked' and booking then
    redis.call('RPUSH', KEYS[1], booking)
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[4], '1')
redis.call('DEL', KEYS[5])
return 1
