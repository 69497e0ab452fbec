#!lua
-- epoch: after Redis restarted, moves the booking sequence past anything a lost second
-- of writes may have issued. In the fast profile (AOF everysec) a crash can lose the
-- last second of scripts, increments of the sequence included; numbering on from the
-- rolled-back value would issue booking ids and codes a second time. Each run of Redis
-- has its own run_id; the first instance to see a new one (at connect, or after any
-- connection error) adds it to the set of runs seen and, unless it is the very first
-- run, moves the sequence forward by a margin far above a second of bookings.
--
-- KEYS[1] run ids seen        SET
-- KEYS[2] booking sequence    STRING integer
-- ARGV: this run's run_id, margin
--
-- Reply: the margin added (0 when this run was seen before, or is the first)
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('SCARD', KEYS[1]) == 1 then
  return 0
end
redis.call('INCRBY', KEYS[2], ARGV[2])
return tonumber(ARGV[2])
