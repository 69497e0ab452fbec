-- wrk script: POST /v1/phases/{phase}/bookings, a distinct person (token) per request.
--
--   wrk -t T -c C -d D -s scripts/wrk/book.lua URL -- TOKENS SLOTS PHASE T
--
-- TOKENS: one person token a line; thread k of T takes lines k, k+T, k+2T, ... so no two
-- threads book for one person. SLOTS: one slot id a line, cycled: the request mix is in
-- the file (scripts/bench-http writes a surge there: most lines name slots that are full).
-- When a thread runs out of tokens it starts over: those requests answer 409 (already
-- booked) or 200 (retry of the same slot), and the summary counts them apart from the 201
-- bookings. A 409 whose body says `slot-full` is counted apart from other 409s.
-- done() prints one line, `RESULT key=value ...`, that scripts/bench-http parses.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- Tokens are read as they are used, not loaded in init(): wrk starts its clock only
-- after every thread's init(), while the first threads already send requests, so a
-- slow init() would inflate requests/s (and a million tokens take a while to load).
local function next_token()
   for _ = 1, 2 do
      local token
      for k = 0, stride - 1 do
         local line = token_file:read("*l")
         if line == nil then
            break
         end
         if k == id then
            token = line
         end
      end
      if token then
         return token
      end
      -- The end of the file: start over with people who have booked already.
      token_file:close()
      token_file = assert(io.open(token_path))
   end
   error("the token file has fewer lines than wrk has threads")
end

function init(args)
   stride = tonumber(args[4])
   assert(args[3] and stride, "usage: -- TOKENS SLOTS PHASE THREADS")
   token_path = args[1]
   token_file = assert(io.open(token_path))
   slots = {}
   for line in io.lines(args[2]) do
      if line ~= "" then
         slots[#slots + 1] = line
      end
   end
   -- Requests are concatenated by hand: wrk.format builds and joins a table per call,
   -- which cost about a fifth more wrk CPU per booking (0.027 against 0.022 ms).
   local host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
   head = "POST /v1/phases/" .. args[3] .. "/bookings HTTP/1.1\r\nHost: " .. host
      .. "\r\nContent-Type: application/json\r\nAuthorization: Bearer "
   sent = 0
   counts = {}
   slot_full = 0
end

function request()
   local slot = slots[(sent * stride + id) % #slots + 1]
   sent = sent + 1
   local body = '{"slot":"' .. slot .. '"}'
   return head .. next_token() .. "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
   if status == 409 and body and string.find(body, "slot-full", 1, true) then
      slot_full = slot_full + 1
   end
end

function done(summary, latency, requests)
   local total = {}
   local full = 0
   for _, t in ipairs(threads) do
      for status, n in pairs(t:get("counts")) do
         total[status] = (total[status] or 0) + n
      end
      full = full + t:get("slot_full")
   end
   local statuses = {}
   for status, n in pairs(total) do
      statuses[#statuses + 1] = status .. ":" .. n
   end
   table.sort(statuses)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d statuses=%s slot_full=%d socket_errors=%d timeouts=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      table.concat(statuses, ","), full, e.connect + e.read + e.write, e.timeout))
end
