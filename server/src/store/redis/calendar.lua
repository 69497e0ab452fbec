#!lua
-- calendar: stores a merged calendar and applies its capacity changes, all or nothing.
-- A slot's booked seats are capacity - remaining; a new capacity keeps them booked and
-- sets remaining = capacity - booked. A capacity below the booked seats refuses the whole
-- load before anything is written. The caller merged over the version it read; if another
-- instance stored a calendar since, nothing is written and the caller merges again.
--
-- KEYS[1] merged calendar            STRING JSON
-- KEYS[2] calendar version           STRING integer
-- KEYS[3] counter revision           STRING integer
-- ARGV: prefix, expected version, calendar JSON, then pairs of slot id and new capacity
--
-- Reply: {'ok', new version} | {'conflict', current version}
--      | {'below-booked', slot, requested capacity, booked seats}
local prefix, expected, calendar = ARGV[1], ARGV[2], ARGV[3]

local current = redis.call('GET', KEYS[2]) or '0'
if current ~= expected then
  return {'conflict', current}
end

local plan = {}
for i = 4, #ARGV, 2 do
  local slot, capacity = ARGV[i], tonumber(ARGV[i + 1])
  local capacity_key = prefix .. ':slot:' .. slot .. ':capacity'
  local remaining_key = prefix .. ':slot:' .. slot .. ':remaining'
  local old = tonumber(redis.call('GET', capacity_key) or '0')
  local free = tonumber(redis.call('GET', remaining_key) or '0')
  local booked = old - free
  if capacity < booked then
    return {'below-booked', slot, string.format('%d', capacity), string.format('%d', booked)}
  end
  plan[#plan + 1] = {capacity_key, remaining_key, capacity, capacity - booked}
end

for _, p in ipairs(plan) do
  redis.call('SET', p[1], string.format('%d', p[3]))
  redis.call('SET', p[2], string.format('%d', p[4]))
end
if #plan > 0 then
  redis.call('INCR', KEYS[3])
end
redis.call('SET', KEYS[1], calendar)
return {'ok', string.format('%d', redis.call('INCR', KEYS[2]))}
