-- One controller step, once per tick: sets the window, raises admitted (never lowers it).
-- KEYS: state (hash), pre (list). ARGV: tick, window, admitted.
local tick = tonumber(redis.call('HGET', KEYS[1], 'tick') or '0')
if tonumber(ARGV[1]) > tick then
  redis.call('HSET', KEYS[1], 'tick', ARGV[1], 'window', ARGV[2])
  local admitted = tonumber(redis.call('HGET', KEYS[1], 'admitted') or '0')
  if tonumber(ARGV[3]) > admitted then
    redis.call('HSET', KEYS[1], 'admitted', ARGV[3])
  end
end
return state(KEYS[1], KEYS[2])
