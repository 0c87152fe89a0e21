-- One wrk script for every scenario, configured by the arguments after `--`:
--   mode      get | list | filter | create | patch
--   path      the request path; in `filter`, {category} is replaced by a random category id
--   token     a Bearer token sent on every request, or "-" for none
--   max_id    ids of the loaded products are 1..max_id (get, patch)
--   categories  category ids are 1..categories (filter, create)
--   tag       makes this run's SKUs unique (create)
-- done() prints one line: BENCH_RESULT {json}, read by bench/run.py.
-- The environment variable BENCH_DELAY_MS, when set, paces every connection: it waits that
-- many ms after each response before its next request (the `signin` scenario's steady GETs).
-- It is read here, at load time, because wrk decides whether a script has a delay() before it
-- calls init(); left unset, no delay() exists and the scenarios run flat out as before.

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

local thread_counter = 0
local threads = {}

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_id", thread_counter)
  table.insert(threads, thread)
end

local mode, path, max_id, categories, tag
local headers = {}
local counter = 0

function init(args)
  mode = args[1]
  path = args[2]
  local token = args[3]
  max_id = tonumber(args[4])
  categories = tonumber(args[5])
  tag = args[6]
  headers["Accept"] = "application/json"
  if token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  if mode == "create" or mode == "patch" then
    headers["Content-Type"] = "application/json"
  end
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function request()
  if mode == "get" then
    return wrk.format("GET", path .. math.random(1, max_id), headers)
  elseif mode == "list" then
    return wrk.format("GET", path, headers)
  elseif mode == "filter" then
    local p = string.gsub(path, "{category}", tostring(math.random(1, categories)))
    return wrk.format("GET", p, headers)
  elseif mode == "create" then
    counter = counter + 1
    local body = string.format(
      '{"sku":"B%s-%d-%d","name":"Bench product %d","description":"Created by the benchmark.",'
        .. '"price":"%d.%02d","stock":%d,"is_active":true,"category_id":%d}',
      tag, thread_id, counter, counter, math.random(1, 999), math.random(0, 99),
      math.random(0, 500), math.random(1, categories))
    return wrk.format("POST", path, headers, body)
  elseif mode == "patch" then
    local body = string.format('{"price":"%d.%02d"}', math.random(1, 999), math.random(0, 99))
    return wrk.format("PATCH", path .. math.random(1, max_id), headers, body)
  end
  error("unknown mode " .. tostring(mode))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
