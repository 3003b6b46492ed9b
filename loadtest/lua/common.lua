-- Appended to every scenario script by loadtest/wrk.py: done() prints one JSON line
-- (prefixed WRK_JSON) that the harness parses instead of wrk's human-readable text.
-- A scenario script may define extra_json() returning more `"key":value` fields.
function done(summary, latency, requests)
  local e = summary.errors
  local n = summary.requests
  local function pct(p)
    if n > 0 then return latency:percentile(p) end
    return 0
  end
  local mean, stdev, lmin, lmax = 0, 0, 0, 0
  if n > 0 then
    mean, stdev, lmin, lmax = latency.mean, latency.stdev, latency.min, latency.max
  end
  local extra = ""
  if extra_json then extra = "," .. extra_json() end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}%s}\n',
    n, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    lmin, mean, stdev, lmax, pct(50), pct(90), pct(99), extra))
end
