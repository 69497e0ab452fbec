#!lua
-- claim: leases up to N due messages to the calling dispatcher. A leased message is due
-- again only when the lease runs out, so exactly one dispatcher holds it at a time.
--
-- KEYS[1] due messages   ZSET message id -> due (unix ms)
-- ARGV: prefix, now (unix ms), max, lease (ms)
--
-- Reply: the claimed messages' fields
local prefix, now, max, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max)
local out = {}
for _, id in ipairs(ids) do
  local until_ms = string.format('%d', now + lease)
  redis.call('ZADD', KEYS[1], until_ms, id)
  redis.call('HSET', prefix .. ':sms:msg:' .. id, 'due', until_ms)
  out[#out + 1] = redis.call('HGETALL', prefix .. ':sms:msg:' .. id)
end
return out
