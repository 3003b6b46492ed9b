-- GET slices of one blob with a Range header per request.
-- args: <blob size> <slice size> <seed> [<requests to pre-generate per thread>]
-- Requests are pre-generated in init() (random offsets from a seeded generator, the
-- same sequence for every target) and replayed round-robin.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

local reqs = {}
local idx = 0

function init(args)
  local size = tonumber(args[1])
  local slice = tonumber(args[2])
  local seed = tonumber(args[3] or "1")
  local n = tonumber(args[4] or "4096")
  math.randomseed(seed * 1000 + (thread_id or 0))
  local max_start = size - slice
  for i = 1, n do
    local start = math.floor(math.random() * (max_start + 1))
    reqs[i] = wrk.format("GET", nil,
      { Range = string.format("bytes=%d-%d", start, start + slice - 1) })
  end
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
