-- wrk script: GET the URL as given (the bare-server ceiling, `GET /health/live`),
-- counting statuses like book.lua so both runs pay the same client-side costs.
-- done() prints one line, `RESULT key=value ...`, that scripts/bench-http parses.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   counts = {}
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
