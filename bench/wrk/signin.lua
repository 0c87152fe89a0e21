-- The sign-ins of the `signin` scenario: every connection signs in back to back, alternating
-- the right and a wrong password, so both of Tablestack's argon2 paths run. Arguments after `--`:
--   path         the token route, /api/auth/token
--   good_body    the form body with the right password (already form-encoded)
--   wrong_body   the same with a wrong password
-- done() prints one line: BENCH_RESULT {json}, read by bench/signin.py; "answers" counts the
-- 200s, the 401s and anything else (wrk's own "status" error counts the expected 401s too).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local path
local bodies = {}
local headers = {}
local counter = 0
-- Globals, so that done() can read them from each thread with thread:get().
accepted = 0
refused = 0
other = 0

function init(args)
  path = args[1]
  bodies = {args[2], args[3]}
  headers["Accept"] = "application/json"
  headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, bodies[counter % 2 + 1])
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + 1
  elseif status == 401 then
    refused = refused + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local counts = {accepted = 0, refused = 0, other = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(counts) do
      counts[name] = counts[name] + (thread:get(name) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d},'
      .. '"answers":{"accepted":%d,"refused":%d,"other":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, counts.accepted, counts.refused, counts.other))
end
