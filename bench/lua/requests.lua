-- wrk script: cycle through pre-built requests, print a JSON summary.
-- Usage: wrk -t2 -c32 -d10s -s bench/lua/requests.lua http://127.0.0.1:8000 -- REQUESTS_FILE [THREADS]
-- REQUESTS_FILE has one request per line: METHOD<TAB>PATH<TAB>BODY (BODY may be empty).

local counter = 0
local threads = {}

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local reqs = {}
local index = 1

function init(args)
   local headers = {["Accept"] = "application/fhir+json", ["Content-Type"] = "application/fhir+json"}
   for line in io.lines(args[1]) do
      local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
      if method then
         if body == "" then body = nil end
         reqs[#reqs + 1] = wrk.format(method, path, headers, body)
      end
   end
   -- Each thread starts at the head of its own share of the list (THREADS = wrk's -t), so no
   -- request is sent twice before the list runs out: a replayed write is not the same work as a
   -- new one (a household visit sent again re-judges the child's day).
   local threads = tonumber(args[2]) or 1
   index = math.floor(tid * #reqs / threads) % #reqs + 1
end

function request()
   local r = reqs[index]
   index = index % #reqs + 1
   return r
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
