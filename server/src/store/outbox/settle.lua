#!lua
-- settle: invites people to a phase, each with the one message that tells them, in one
-- script: joining the invited set is the decision, and the message, its due entry, the
-- counters and the settled record are written with it or not at all. Someone already
-- invited (an earlier run, an uploaded list) is skipped and gets no second message.
--
-- KEYS[1] phase's invited people   SET of id numbers
-- KEYS[2] phase's settled people   HASH id number -> "<unix seconds>\t<message id>"
-- KEYS[3] message sequence         STRING integer
-- KEYS[4] due messages             ZSET message id -> due (unix ms)
-- KEYS[5] outbox counters          HASH queued / sent / failed / dead
-- KEYS[6] every message id         LIST, oldest first
-- ARGV: prefix, phase, at (unix seconds), then (person, mobile, tag) triples; a message id
--       is 'm' .. hex(sequence) .. '-' .. tag
--
-- Reply: how many were invited
local prefix, phase, at = ARGV[1], ARGV[2], ARGV[3]
local added = 0
for i = 4, #ARGV, 3 do
  local person, to, tag = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('SADD', KEYS[1], person) == 1 then
    local id = string.format('m%x', redis.call('INCR', KEYS[3])) .. '-' .. tag
    redis.call('HSET', prefix .. ':sms:msg:' .. id, 'id', id, 'phase', phase,
      'person', person, 'to', to, 'at', at, 'state', 'queued', 'attempts', '0', 'due', '0')
    redis.call('ZADD', KEYS[4], 0, id)
    redis.call('RPUSH', KEYS[6], id)
    redis.call('HSET', KEYS[2], person, at .. '\t' .. id)
    redis.call('HINCRBY', KEYS[5], 'queued', 1)
    added = added + 1
  end
end
return added
