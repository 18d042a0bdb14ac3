-- wrk script: cycle through pre-built requests, print a JSON summary.
-- Usage: wrk -t2 -c32 -d10s -s bench/lua/requests.lua http://127.0.0.1:8000 -- REQUESTS_FILE
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
   -- Threads start at different offsets so they do not replay the same ids in lockstep.
   index = (tid * 7919) % #reqs + 1
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
