-- wrk script: ingest.lua's pre-signed deliveries at a steady rate rather than flat out.
--
-- Usage: wrk -s paced.lua URL -- PREFIX PER_THREAD_RATE
-- Used by benchmarks.console to hold intake at 1,000 events/s beside the pages
-- it times. Each thread hands out send slots PER_THREAD_RATE a second to
-- whichever of its connections is free, so the rate holds whatever the latency,
-- as long as there are enough connections to cover it.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "ingest.lua")

local ffi = require("ffi")
ffi.cdef [[
   typedef struct { long tv_sec; long tv_nsec; } hl_timespec;
   int clock_gettime(int clock_id, hl_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local moment = ffi.new("hl_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, moment)
   return tonumber(moment.tv_sec) * 1000 + tonumber(moment.tv_nsec) / 1e6
end

local ingest_init = init

function init(args)
   ingest_init(args)
   interval_ms = 1000 / tonumber(args[2])
   next_slot = nil
end

function delay()
   local now = now_ms()
   if next_slot == nil or next_slot < now - 1000 then
      -- The first slot, or a stall of over a second: start afresh rather than
      -- burst to make up for it.
      next_slot = now
   end
   next_slot = next_slot + interval_ms
   local wait = next_slot - now
   if wait < 0 then
      return 0
   end
   return math.floor(wait)
end
