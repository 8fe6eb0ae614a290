-- chat.lua -- the wrk script of bench/run-gateway.sh: every request is the same small non-streaming chat
-- completion, and the result is printed as one parseable line.
--
-- Settings come from the environment, because wrk passes script arguments only to init() of each thread,
-- and the request must be known before the threads start (wrk.format in the main state is cheapest: the
-- request bytes are built once and reused):
--   CHAT_PATH     request path (default: the path of the URL given to wrk)
--   CHAT_MODEL    the "model" of the body (default fake-model)
--   CHAT_HEADERS  extra request headers, one "Name: value" per line (e.g. Authorization: Bearer KEY)
--   CHAT_PROMPT   the user message (default "Say hello."); a fake:... directive in it shapes the fake's answer
--
-- done() prints:
--   WRK requests=N duration_us=N rps=F p50=US p75=US p90=US p99=US max=US mean=US
--       err_connect=N err_read=N err_write=N err_timeout=N err_status=N
-- (latencies in microseconds; err_status counts answers that were not 2xx or 3xx).

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == '\\' then return '\\\\' end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

local model = env("CHAT_MODEL", "fake-model")
local prompt = env("CHAT_PROMPT", "Say hello.")
-- Into wrk's own table, which also carries the Host header and any -H options.
local headers = wrk.headers
headers["Content-Type"] = "application/json"
for line in env("CHAT_HEADERS", ""):gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then headers[name] = value end
end

wrk.method = "POST"
wrk.body = '{"model":' .. json_string(model) ..
  ',"messages":[{"role":"user","content":' .. json_string(prompt) .. '}],"max_tokens":64}'
local path = env("CHAT_PATH", nil)
if path then wrk.path = path end

done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK requests=%d duration_us=%d rps=%.1f p50=%d p75=%d p90=%d p99=%d max=%d mean=%.0f " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.timeout, e.status))
end
