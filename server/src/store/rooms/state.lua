-- The room's state: seed (hex, '' while the pre-queue is open), late, admitted, window,
-- tick, pre-queue length. Shared tail of every room script.
local function state(skey, prekey)
  local s = redis.call('HMGET', skey, 'seed', 'late', 'admitted', 'window', 'tick')
  return {s[1] or '', tonumber(s[2] or '0'), tonumber(s[3] or '0'), tonumber(s[4] or '0'),
          tonumber(s[5] or '0'), redis.call('LLEN', prekey)}
end
