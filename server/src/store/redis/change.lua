#!lua
-- change: moves a live booking to another slot of its phase, atomically. The new seat is
-- taken (DECR) before the old one is returned (INCR), and both happen in this one script,
-- so no other request ever sees the booking holding two seats or none. Every check comes
-- before the first write.
--
-- KEYS[1] person's idempotency keys  HASH key -> "<booking>\t<fingerprint>"
-- KEYS[2] person's key order         LIST
-- KEYS[3] new slot's remaining seats STRING integer
-- KEYS[4] phase's ledger             STREAM
-- KEYS[5] counter revision           STRING integer
-- ARGV: prefix, person, booking, new slot, phase of the new slot,
--       idempotency key ('' for none), fingerprint, keys kept per person,
--       seconds a person's keys live after their last use
--
-- Reply: {outcome, remaining seats of the new slot (-1: not read), revision,
--         booking fields, old slot ('' unless changed), remaining seats of the old slot}
local prefix, person, id, slot, phase = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key, fingerprint, keep = ARGV[6], ARGV[7], tonumber(ARGV[8])
local key_ttl = tonumber(ARGV[9])
local booking = prefix .. ':booking:' .. id

local remaining = tonumber(redis.call('GET', KEYS[3]))
local rev = tonumber(redis.call('GET', KEYS[5]) or '0')
local function reply(outcome, fields)
  return {outcome, remaining or -1, rev, fields or {}, '', -1}
end

if key ~= '' then
  local held = redis.call('HGET', KEYS[1], key)
  if held then
    local tab = string.find(held, '\t', 1, true)
    local kid, fp = string.sub(held, 1, tab - 1), string.sub(held, tab + 1)
    if fp ~= fingerprint then
      return reply('key-reused')
    end
    if redis.call('EXISTS', prefix .. ':booking:' .. kid) == 1 then
      if kid == id then
        return reply('unchanged', redis.call('HGETALL', booking))
      end
      return reply('key-reused')
    end
  end
end

if redis.call('HGET', booking, 'person') ~= person then
  return reply('unknown')
end
local fields = redis.call('HGETALL', booking)
local status = redis.call('HGET', booking, 'status')
if status ~= 'booked' then
  return reply('not-live', fields)
end
if redis.call('HGET', booking, 'phase') ~= phase then
  return reply('other-phase')
end
local old = redis.call('HGET', booking, 'slot')
if old == slot then
  return reply('unchanged', fields)
end
if remaining == nil then
  return reply('unknown-slot')
end
if remaining <= 0 then
  return reply('full', fields)
end

remaining = redis.call('DECR', KEYS[3])
local old_remaining = redis.call('INCR', prefix .. ':slot:' .. old .. ':remaining')
rev = redis.call('INCR', KEYS[5])
redis.call('HSET', booking, 'slot', slot)
if key ~= '' then
  redis.call('HSET', KEYS[1], key, id .. '\t' .. fingerprint)
  redis.call('RPUSH', KEYS[2], key)
  if redis.call('LLEN', KEYS[2]) > keep then
    redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2]))
  end
  redis.call('EXPIRE', KEYS[1], key_ttl)
  redis.call('EXPIRE', KEYS[2], key_ttl)
end
redis.call('XADD', KEYS[4], '*', 'e', 'changed', 'b', id, 'p', person, 's', slot, 'f', old)
return {'changed', remaining, rev, redis.call('HGETALL', booking), old, old_remaining}
