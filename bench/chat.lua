-- bench/chat.lua - the wrk script for the small non-streaming chat point.
--
-- bench/run.sh runs wrk with this script against each path (direct, nginx,
-- ogproxyd).  Every request is the same small POST /api/chat with
-- "stream":false, so what differs between the paths is only the proxy.
-- The Host header is pinned to "localhost" because the fake backend
-- refuses other hosts, and wrk would otherwise send "127.0.0.1:PORT".
--
-- The environment passes in what varies per run:
--   BENCH_WRK_AUTH   value of an Authorization header (empty: none sent)
--   BENCH_MODEL      model name in the request body (default llama3.2)
--
-- At the end done() prints one machine-readable line that run.sh parses:
--   WRKRESULT requests=N duration_us=N rps=N p50_us=N p99_us=N ...
-- Latencies come from wrk's own histogram in microseconds.  Status errors
-- are wrk's count of responses with a status of 400 or more; socket errors
-- are listed apart.  We read them from the summary instead of defining a
-- response() hook, because a response() hook makes wrk hand every response
-- to Lua, and on two cores that would slow the client we measure with.

local model = os.getenv("BENCH_MODEL")
if model == nil or model == "" then
	model = "llama3.2"
end

wrk.method = "POST"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user",'
	.. '"content":"hi"}],"stream":false}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = "localhost"

local auth = os.getenv("BENCH_WRK_AUTH")
if auth ~= nil and auth ~= "" then
	wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format("WRKRESULT requests=%d duration_us=%d"
		.. " rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f max_us=%d"
		.. " status_errors=%d connect_errors=%d read_errors=%d"
		.. " write_errors=%d timeout_errors=%d\n",
		summary.requests, summary.duration, summary.requests / secs,
		latency:percentile(50), latency:percentile(99), latency.mean,
		latency.max, e.status, e.connect, e.read, e.write,
		e.timeout))
end
