-- wrk script for benchmarks.ingest (load.py): replays pre-signed webhook requests.
--
-- Usage: wrk -s ingest.lua URL -- PREFIX
-- Thread N streams PREFIX.N, records of "<length>\n<raw HTTP request>". The
-- requests are built and signed in Python beforehand so that request() costs one
-- buffered read: the load generator shares two cores with the server and Postgres.
-- Reading on demand rather than loading everything in init() keeps wrk's memory
-- flat however many requests the file holds.

local next_index = 0
local threads = {}

function setup(thread)
   thread:set("index", next_index)
   table.insert(threads, thread)
   next_index = next_index + 1
end

function init(args)
   source = assert(io.open(args[1] .. "." .. index, "rb"))
   served = 0
   -- Wrapping around replays requests the server has already recorded (they
   -- come back as idempotent duplicates); the harness warns when it happens.
   wrapped = 0
   -- Answers by kind: accepted (2xx), refused with 503 or 429, any other status,
   -- and refusals that did not say when to come back (Retry-After).
   accepted, shed, limited, other, no_retry_after = 0, 0, 0, 0, 0
end

function response(status, headers, body)
   if status < 300 then
      accepted = accepted + 1
   elseif status == 503 or status == 429 then
      if status == 503 then shed = shed + 1 else limited = limited + 1 end
      if headers["retry-after"] == nil and headers["Retry-After"] == nil then
         no_retry_after = no_retry_after + 1
      end
   else
      other = other + 1
   end
end

function request()
   local length = source:read("*l")
   if length == nil then
      wrapped = wrapped + 1
      source:seek("set", 0)
      length = source:read("*l")
   end
   served = served + 1
   return source:read(tonumber(length))
end

function done(summary, latency, requests)
   local served_total, wrapped_total = 0, 0
   local answers = {accepted = 0, shed = 0, limited = 0, other = 0, no_retry_after = 0}
   for _, thread in ipairs(threads) do
      served_total = served_total + thread:get("served")
      wrapped_total = wrapped_total + thread:get("wrapped")
      for name, count in pairs(answers) do
         answers[name] = count + thread:get(name)
      end
   end
   local errors = summary.errors
   -- One machine-readable line; the harness looks for the HLBENCH marker.
   io.write(string.format(
      'HLBENCH {"duration_us": %d, "requests": %d, "status_errors": %d, '
         .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
         .. '"served": %d, "wrapped": %d, "accepted": %d, "shed": %d, "limited": %d, '
         .. '"other": %d, "no_retry_after": %d}\n',
      summary.duration, summary.requests, errors.status,
      errors.connect, errors.read, errors.write, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      served_total, wrapped_total, answers.accepted, answers.shed, answers.limited,
      answers.other, answers.no_retry_after
   ))
end
