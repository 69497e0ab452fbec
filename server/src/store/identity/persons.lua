#!lua
-- persons: upserts insured persons. A person's new card replaces their old one; a card
-- number that belongs to another person refuses the whole call (nothing is written).
--
-- KEYS[1] the count of persons          STRING integer
-- ARGV: prefix, then per person: packed id, card (12 digits), person json
--
-- Keys written: PREFIX:id:person:ID (json), PREFIX:id:card:CARD (id).
-- Reply: {how many persons were new, -1}, or {0, index of the first person (0-based)
-- whose card is another person's}.
local prefix = ARGV[1]
for i = 2, #ARGV, 3 do
  local owner = redis.call('GET', prefix .. ':id:card:' .. ARGV[i + 1])
  if owner and owner ~= ARGV[i] then return {0, (i - 2) / 3} end
end
local added = 0
for i = 2, #ARGV, 3 do
  local id, card, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('SET', prefix .. ':id:person:' .. id, json, 'GET')
  if not old then
    added = added + 1
  else
    local old_card = string.match(old, '"nhi_card":"(%d+)"')
    if old_card and old_card ~= card then
      local key = prefix .. ':id:card:' .. old_card
      if redis.call('GET', key) == id then redis.call('DEL', key) end
    end
  end
  redis.call('SET', prefix .. ':id:card:' .. card, id)
end
if added > 0 then redis.call('INCRBY', KEYS[1], added) end
return {added, -1}
