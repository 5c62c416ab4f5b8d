-- One benchmark operation per wrk run: `wrk ... -s ops.lua <url> -- <op> <prefix> [<token> [<path>]]`.
-- Sessions bench-00000..bench-09999 exist; every tenth (bench-00000, bench-00010, ...) has 20 runs,
-- the others none (get_empty reads those); bench-long has 10,000.
-- create makes <prefix>-<thread>-<n>; delete removes the same ids in the same order.
-- media, runs_page, runs_page_long and runs_long fetch one <path> over and over, which run.py
-- passes (see its FIXED_PATHS): media's is /sessions/bench-00000/media/<storage key> (the seeded
-- 1 MB image), whose key is agno's (session, media id, content hash); the others are a page of
-- bench-00000's runs, a page in the middle of bench-long's, and all of bench-long's.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local op, prefix, path
local counter = 0
local json = { ["Content-Type"] = "application/json" }

function init(args)
  op, prefix, path = args[1], args[2], args[4]
  -- With a token, every request carries it (wrk.headers goes with requests that set no headers).
  if args[3] and args[3] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[3]
    json["Authorization"] = "Bearer " .. args[3]
  end
  math.randomseed(os.time() * 100 + id)
end

local function any_session()
  return string.format("bench-%05d", math.random(0, 9999))
end

function request()
  counter = counter + 1
  if op == "create" then
    local body = string.format(
      '{"session_id":"%s-%d-%d","session_name":"Load %d","session_state":{"n":%d},"user_id":"user-1","agent_id":"agent-1"}',
      prefix, id, counter, counter, counter)
    return wrk.format("POST", "/sessions", json, body)
  elseif op == "get" then
    return wrk.format("GET", "/sessions/" .. any_session())
  elseif op == "get_empty" then
    return wrk.format("GET", string.format("/sessions/bench-%05d", math.random(0, 999) * 10 + math.random(1, 9)))
  elseif op == "list" then
    return wrk.format("GET", "/sessions?limit=20&page=" .. math.random(1, 50))
  elseif op == "list_filtered" then
    return wrk.format("GET", string.format("/sessions?limit=20&type=agent&user_id=user-%d&page=%d",
      math.random(0, 7), math.random(1, 5)))
  elseif op == "runs" then
    return wrk.format("GET", string.format("/sessions/bench-%05d/runs", math.random(0, 999) * 10))
  elseif op == "patch" then
    return wrk.format("PATCH", "/sessions/" .. any_session(), json,
      string.format('{"metadata":{"source":"bench","k":%d}}', counter))
  elseif op == "delete" then
    return wrk.format("DELETE", string.format("/sessions/%s-%d-%d", prefix, id, counter))
  elseif (op == "media" or op == "runs_page" or op == "runs_page_long" or op == "runs_long")
      and path and path ~= "" then
    return wrk.format("GET", path)
  end
  error("unknown op " .. tostring(op))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
