#!lua
-- registration: registers, modifies or cancels one person's intent registration,
-- atomically. The serial comes from one counter and is never handed back.
--
-- KEYS[1] the person's registration     STRING json (live or cancelled)
-- KEYS[2] the person's history          LIST of event json
-- KEYS[3] the serial counter            STRING integer
-- KEYS[4] the registration ledger       STREAM (p: person, e: event json), for the audit
-- ARGV: op (register | modify | cancel), person, now (RFC 3339), form json (not for cancel)
--
-- Reply: {changed (1 or 0), registration json or ''}. `register` with a live
-- registration answers {0, it}; `modify` and `cancel` without one answer {0, ''}.
local op, person, now, form = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local raw = redis.call('GET', KEYS[1])
local cur = nil
if raw then cur = cjson.decode(raw) end
local live = cur ~= nil and cur.status == 'registered'
local event

local function fill(f)
  cur.name, cur.mobile, cur.county, cur.district, cur.vaccines =
    f.name, f.mobile, f.county, f.district, f.vaccines
end

if op == 'register' then
  if live then return {0, raw} end
  cur = {serial = redis.call('INCR', KEYS[3]), person = person, status = 'registered',
         registered_at = now, modified_at = now}
  fill(cjson.decode(form))
  event = 'registered'
elseif op == 'modify' then
  if not live then return {0, ''} end
  fill(cjson.decode(form))
  cur.modified_at = now
  event = 'modified'
elseif op == 'cancel' then
  if not live then return {0, ''} end
  cur.status = 'cancelled'
  cur.modified_at = now
  event = 'cancelled'
else
  return redis.error_reply('unknown registration op ' .. tostring(op))
end

local json = cjson.encode(cur)
local ev = '{"event":"' .. event .. '","registration":' .. json .. '}'
redis.call('SET', KEYS[1], json)
redis.call('RPUSH', KEYS[2], ev)
redis.call('XADD', KEYS[4], '*', 'p', person, 'e', ev)
return {1, json}
