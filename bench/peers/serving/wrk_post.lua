-- wrk script of the serving bench: POST the request body to /invocations, each request
-- with its own X-Request-Id, and record which requests were answered with 200.
--
-- Environment: HR_BENCH_BODY (the body's file), HR_BENCH_PREFIX (the ids' prefix; ids
-- are PREFIX-THREAD-N, N counting from 1 in each thread), HR_BENCH_OUT (where done()
-- writes its JSON summary; the ids answered with 200 go to HR_BENCH_OUT .. ".ids", one a
-- line, taken from the response's x-request-id header when the server echoes it).
--
-- The summary: requests answered, duration, latency percentiles (microseconds), socket
-- errors and timeouts, the responses by status, and how many requests each thread sent
-- (a request still in flight when wrk stops is sent but never answered).

local body_path = os.getenv("HR_BENCH_BODY")
local prefix = os.getenv("HR_BENCH_PREFIX") or "r"
local threads = {}

local f = assert(io.open(body_path, "rb"))
local body = f:read("*a")
f:close()

-- in the main state, once per thread
function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

-- in each thread's own state
function init(args)
   sent = 0
   statuses = {}
   answered = {}
   headers = { ["Content-Type"] = "application/json" }
end

function request()
   sent = sent + 1
   headers["X-Request-Id"] = prefix .. "-" .. tid .. "-" .. sent
   return wrk.format("POST", nil, headers, body)
end

function response(status, response_headers, response_body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   if status == 200 then
      local id = response_headers["x-request-id"] or response_headers["X-Request-Id"]
      if id then
         answered[#answered + 1] = id
      end
   end
end

function done(summary, latency, requests)
   local out = assert(os.getenv("HR_BENCH_OUT"))
   local ids = assert(io.open(out .. ".ids", "w"))
   local per_thread = {}
   local merged = {}
   for i, thread in ipairs(threads) do
      per_thread[#per_thread + 1] = string.format('"%d": %d', i, thread:get("sent") or 0)
      for code, n in pairs(thread:get("statuses") or {}) do
         merged[code] = (merged[code] or 0) + n
      end
      for _, id in ipairs(thread:get("answered") or {}) do
         ids:write(id, "\n")
      end
   end
   ids:close()
   local codes = {}
   for code, n in pairs(merged) do
      codes[#codes + 1] = string.format('"%s": %d', code, n)
   end
   local e = summary.errors
   local text = string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "stdev": %.1f, ' ..
      '"p50": %d, "p90": %d, "p99": %d, "p999": %d}, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
      '"status_errors": %d, "statuses": {%s}, "sent": {%s}}',
      summary.requests, summary.duration, summary.bytes,
      latency.min, latency.mean, latency.max, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9),
      e.connect, e.read, e.write, e.timeout,
      e.status, table.concat(codes, ", "), table.concat(per_thread, ", "))
   local fh = assert(io.open(out, "w"))
   fh:write(text)
   fh:close()
end
