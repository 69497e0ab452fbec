-- wrk script: POST one prepared request body per line, each at most once.
--
--   wrk -t T -c C -d D -s scripts/wrk/post-lines.lua URL -- FILE T
--
-- FILE: one request a line, `TOKEN<TAB>JSON BODY` (TOKEN may be empty: no Authorization
-- header). Thread k of T takes lines k, k+T, k+2T, ... so no two threads send the same
-- line (a registration token registers once; a captcha answers once). A thread that runs
-- out of lines starts over; those repeats answer 409 or 422 and are counted apart from
-- the expected status. done() prints `RESULT key=value ...` (scripts/bench-identity
-- parses it).

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local stride = tonumber(args[2])
   assert(args[1] and stride, "usage: -- FILE THREADS")
   lines = {}
   local n = 0
   for line in io.lines(args[1]) do
      if n % stride == id and line ~= "" then
         local tab = string.find(line, "\t", 1, true)
         lines[#lines + 1] = { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) }
      end
      n = n + 1
   end
   assert(#lines > 0, "the request file has fewer lines than wrk has threads")
   local host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
   head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Type: application/json\r\n"
   sent = 0
   counts = {}
end

function request()
   local l = lines[sent % #lines + 1]
   sent = sent + 1
   local auth = ""
   if l[1] ~= "" then
      auth = "Authorization: Bearer " .. l[1] .. "\r\n"
   end
   return head .. auth .. "Content-Length: " .. #l[2] .. "\r\n\r\n" .. l[2]
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      for status, n in pairs(t:get("counts")) do
         total[status] = (total[status] or 0) + n
      end
   end
   local statuses = {}
   for status, n in pairs(total) do
      statuses[#statuses + 1] = status .. ":" .. n
   end
   table.sort(statuses)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d statuses=%s socket_errors=%d timeouts=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      table.concat(statuses, ","), e.connect + e.read + e.write, e.timeout))
end
