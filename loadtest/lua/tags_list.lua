-- Full tag listings, one after another on each connection: every response's
-- Link rel="next" names the next request, and a response without one ends a
-- listing (the next request starts over). Each listing's tags are counted from
-- the body (a tag is a quoted string; the document's other strings are "name",
-- the repository and "tags"), so an incomplete listing is reported, not timed.
-- Arguments: the first page's path, and the number of tags a listing must have.
local first, expected, path
local seen, current = 0, 0  -- tags and pages of the listing under way
-- Requests are formatted once per distinct path: listings repeat the same pages,
-- and the client's own cost per request should be as small as it can be.
local formatted = {}

listings, pages, bad_listings, bad_status = 0, 0, 0, 0

function init(args)
  first, expected = args[1], tonumber(args[2])
  path = first
end

function request()
  local req = formatted[path]
  if req == nil then
    req = wrk.format("GET", path)
    formatted[path] = req
  end
  return req
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    path, seen, current = first, 0, 0
    return
  end
  current = current + 1
  local _, quotes = body:gsub('"', "")
  seen = seen + (quotes - 6) / 2
  local link = headers["Link"] or headers["link"]
  if link then
    path = link:match("<([^>]*)>"):gsub("^https?://[^/]*", "")
    return
  end
  if seen == expected then
    listings = listings + 1
    pages = pages + current  -- pages of complete listings only
  else
    bad_listings = bad_listings + 1
  end
  path, seen, current = first, 0, 0
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Extra fields for the WRK_JSON line (see common.lua).
function extra_json()
  local l, p, b, s = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    l = l + t:get("listings")
    p = p + t:get("pages")
    b = b + t:get("bad_listings")
    s = s + t:get("bad_status")
  end
  return string.format('"listings":%d,"pages":%d,"bad_listings":%d,"bad_status":%d', l, p, b, s)
end
