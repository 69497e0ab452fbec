#!lua
-- reserve: the whole decision to take a seat, atomically (Redis runs one script at a time).
-- Order of the rules, as in the embedded store: idempotency key, the person's live booking
-- in the phase, invitation, capacity. Every check comes before the first write, so a
-- refused request changes nothing; the shebang makes Redis refuse the whole script up front
-- when it is out of memory, rather than fail half-way through the writes.
--
-- KEYS[1] person's idempotency keys  HASH key -> "<booking>\t<fingerprint>"
-- KEYS[2] person's key order         LIST of keys, oldest first (bounded by ARGV[10])
-- KEYS[3] person's live bookings     HASH phase -> booking
-- KEYS[4] person's bookings          LIST of booking ids, oldest first
-- KEYS[5] slot's remaining seats     STRING integer
-- KEYS[6] phase's invited people     SET of id numbers
-- KEYS[7] phase's ledger             STREAM
-- KEYS[8] booking sequence           STRING integer
-- KEYS[9] counter revision           STRING integer, bumped by every change of a seat counter
-- KEYS[10] phase's bookings          LIST of booking ids in booking order (the audit's,
--                                    settlement's and close-out's index: the ledger is trimmed)
-- ARGV: prefix, phase, slot, person, channel, booked_at, invitation_required (1/0),
--       idempotency key ('' for none), fingerprint, keys kept per person,
--       kiosk partner ('' for none), seconds a person's keys live after their last use
--
-- Reply: {outcome, remaining seats of the slot (-1: unknown slot), revision, booking fields}
local prefix, phase, slot, person = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local channel, booked_at, invitation_required = ARGV[5], ARGV[6], ARGV[7]
local key, fingerprint, keep = ARGV[8], ARGV[9], tonumber(ARGV[10])
local partner = ARGV[11] or ''
local key_ttl = tonumber(ARGV[12])

local function booking_key(id)
  return prefix .. ':booking:' .. id
end

local remaining = tonumber(redis.call('GET', KEYS[5]))
local rev = tonumber(redis.call('GET', KEYS[9]) or '0')
if remaining == nil then
  return {'unknown-slot', -1, rev, {}}
end

if key ~= '' then
  local held = redis.call('HGET', KEYS[1], key)
  if held then
    local tab = string.find(held, '\t', 1, true)
    local id, fp = string.sub(held, 1, tab - 1), string.sub(held, tab + 1)
    if fp ~= fingerprint then
      return {'key-reused', remaining, rev, {}}
    end
    local fields = redis.call('HGETALL', booking_key(id))
    if #fields > 0 then
      return {'replayed', remaining, rev, fields}
    end
  end
end

local live = redis.call('HGET', KEYS[3], phase)
if live then
  local fields = redis.call('HGETALL', booking_key(live))
  if redis.call('HGET', booking_key(live), 'slot') == slot then
    return {'held', remaining, rev, fields}
  end
  return {'already-booked', remaining, rev, fields}
end

if invitation_required == '1' and redis.call('SISMEMBER', KEYS[6], person) == 0 then
  return {'not-invited', remaining, rev, {}}
end

if remaining <= 0 then
  return {'full', 0, rev, {}}
end

remaining = redis.call('DECR', KEYS[5])
rev = redis.call('INCR', KEYS[9])
local seq = redis.call('INCR', KEYS[8])
local id = string.format('r%x', seq)
local fields = {
  'booking', id, 'seq', string.format('%d', seq), 'phase', phase, 'slot', slot,
  'person', person, 'channel', channel, 'status', 'booked', 'booked_at', booked_at,
}
local entry = {'e', 'booked', 'b', id, 'seq', string.format('%d', seq),
  'p', person, 's', slot, 'c', channel, 't', booked_at}
if partner ~= '' then
  table.insert(fields, 'partner'); table.insert(fields, partner)
  table.insert(entry, 'k'); table.insert(entry, partner)
end
redis.call('HSET', booking_key(id), unpack(fields))
redis.call('HSET', KEYS[3], phase, id)
redis.call('RPUSH', KEYS[4], id)
redis.call('RPUSH', KEYS[10], id)
if key ~= '' then
  redis.call('HSET', KEYS[1], key, id .. '\t' .. fingerprint)
  redis.call('RPUSH', KEYS[2], key)
  if redis.call('LLEN', KEYS[2]) > keep then
    redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2]))
  end
  redis.call('EXPIRE', KEYS[1], key_ttl)
  redis.call('EXPIRE', KEYS[2], key_ttl)
end
redis.call('XADD', KEYS[7], '*', unpack(entry))
return {'booked', remaining, rev, fields}
