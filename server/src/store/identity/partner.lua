#!lua
-- partner: registers or updates a kiosk partner; its previous key stops working.
--
-- KEYS[1] the partner                   STRING json
-- KEYS[2] the new key's hash → partner  STRING
-- ARGV: prefix, partner id, partner json, new key hash
local old = redis.call('GET', KEYS[1])
if old then
  local old_hash = string.match(old, '"key_hash":"(%x+)"')
  if old_hash and old_hash ~= ARGV[4] then
    redis.call('DEL', ARGV[1] .. ':id:pkey:' .. old_hash)
  end
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
return 1
