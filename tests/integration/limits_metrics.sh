#!/bin/bash
# Per-client-address limits exact across the pool (shared memory), the 429 answer and its headers, IPv6
# grouping, and /metrics: its content, its access rules, and promtool's verdict on its format.
. "$(dirname "$0")/lib.sh"
t_require "$LIGHTTPD" curl node

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
t_make_config "ratelimit_gateway = 30" "trusted_proxies = 127.0.0.1" "metrics_token = $TOKEN"
t_start_prism --processes 2 --threads 4 || { t_fail "daemon started"; t_done; exit; }
t_start_lighttpd daemon || { t_fail "lighttpd started"; t_done; exit; }
t_is "the daemon created its segment" "$(test -e "/dev/shm/$T_SHM" && echo yes)" yes

# 45 requests from one address, spread over two worker processes: exactly 30 pass.
: >"$T_TMP/codes"
for i in $(seq 1 45); do
	curl -s -o /dev/null -w '%{http_code}\n' -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' \
		"$T_BASE/v1/_diag/echo" >>"$T_TMP/codes"
done
t_is "exactly the limit passes across the pool" "$(grep -c '^200$' "$T_TMP/codes")" 30
t_is "the rest is refused" "$(grep -c '^429$' "$T_TMP/codes")" 15

t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' "$T_BASE/v1/_diag/echo"
t_is "over the limit: 429" "$T_STATUS" 429
t_is "in the OpenAI error shape" "$(printf '%s' "$T_BODY" | t_json error.type)" rate_limit_error
t_is "with a stable code" "$(printf '%s' "$T_BODY" | t_json error.code)" rate_limit_exceeded
t_like "Retry-After in seconds" "$(t_header Retry-After)" '^[1-9][0-9]*$'
t_like "RateLimit field" "$(t_header RateLimit)" '^limit=30, remaining=0, reset=[1-9][0-9]*$'
t_is "RateLimit-Policy field" "$(t_header RateLimit-Policy)" '30;w=60'
t_is "Retry-After and reset agree" "$(t_header RateLimit | sed 's/.*reset=//')" "$(t_header Retry-After)"

t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.2' "$T_BASE/v1/_diag/echo"
t_is "another address has its own budget" "$T_STATUS" 200
t_like "and sees it in RateLimit" "$(t_header RateLimit)" '^limit=30, remaining=29, '

# IPv6: one /64 is one client.
for a in 2001:db8:1:2::1 2001:db8:1:2::ffff 2001:db8:1:2:aaaa::7; do
	for i in $(seq 1 10); do
		curl -s -o /dev/null -w '%{http_code}\n' -X POST --data-binary '{}' -H "X-Forwarded-For: $a" \
			"$T_BASE/v1/_diag/echo"
	done
done >"$T_TMP/v6codes"
t_is "addresses of one IPv6 /64 share a budget" "$(grep -c '^200$' "$T_TMP/v6codes")" 30
t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 2001:db8:1:2::99' "$T_BASE/v1/_diag/echo"
t_is "the /64 is exhausted" "$T_STATUS" 429
t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 2001:db8:1:3::1' "$T_BASE/v1/_diag/echo"
t_is "the next /64 is not" "$T_STATUS" 200

# prismctl shm shows the busiest keys; --reset forgets every window while the pool runs.
out=$("$PRISMCTL" shm --config "$T_CONF" 2>&1)
t_like "prismctl shm lists the busiest keys" "$out" 'ip:gateway:198\.51\.100\.1 3[01] in 60 s'
t_like "IPv6 keys by network" "$out" 'ip:gateway:2001:db8:1:2::/64 3[01] in 60 s'
t_run "prismctl shm --reset while the pool runs" "$PRISMCTL" shm --config "$T_CONF" --reset
t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' "$T_BASE/v1/_diag/echo"
t_is "after --reset the address has its budget again" "$T_STATUS" 200
t_like "counted afresh" "$(t_header RateLimit)" '^limit=30, remaining=29, '
for i in $(seq 1 29); do curl -s -o /dev/null -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' "$T_BASE/v1/_diag/echo"; done
t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' "$T_BASE/v1/_diag/echo"
t_is "and limited again at the limit" "$T_STATUS" 429

# The admin limit is separate from the gateway's.
t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' "$T_BASE/api/prism/_diag/echo"
t_is "admin API has its own limit" "$T_STATUS" 200
t_is "admin policy" "$(t_header RateLimit-Policy)" '300;w=60'

# /metrics from loopback.
t_http "$T_BASE/metrics"
t_is "/metrics from loopback" "$T_STATUS" 200
t_like "Prometheus content type" "$(t_header Content-Type)" '^text/plain; version=0.0.4'
printf '%s\n' "$T_BODY" >"$T_TMP/metrics.txt"
t_like "requests counted across the pool" "$T_BODY" 'prism_requests_total\{route="/v1/_diag/echo",status="429"\} 18'
t_like "rate-limited counter" "$T_BODY" 'prism_rate_limited_total\{scope="gateway"\} 18'
t_like "latency histogram" "$T_BODY" 'prism_request_duration_seconds_bucket\{route="/v1/_diag/echo",le="\+Inf"\} '
t_like "tenant cache counters" "$T_BODY" 'prism_tenant_cache_misses_total [0-9]+'
t_like "configuration generation gauge" "$T_BODY" 'prism_config_generation [0-9]+'
t_like "uptime gauge" "$T_BODY" 'prism_uptime_seconds [0-9]+'
t_like "processes gauge: the 2 workers of the daemon" "$T_BODY" 'prism_processes 2'
if command -v promtool >/dev/null 2>&1; then
	out=$(promtool check metrics <"$T_TMP/metrics.txt" 2>&1); rc=$?
	t_is "promtool check metrics accepts the exposition" "$rc" 0
	[ "$rc" = 0 ] || t_diag "$out"
else
	t_fail "promtool is installed (tools/install-deps --test installs prometheus)"
fi

# Access rules: outside metrics_allow only the token opens it.
printf 'metrics_allow = 10.0.0.0/8\n' >>"$T_CONF"
kill -HUP "$T_PRISM_PID"
t_wait_for grep -q "configuration reloaded" "$T_TMP/prism.log"
sleep 0.3
t_http "$T_BASE/metrics"
t_is "outside metrics_allow: 403" "$T_STATUS" 403
t_unlike "and no metrics" "$T_BODY" 'prism_requests_total'
t_http -H "Authorization: Bearer $TOKEN" "$T_BASE/metrics"
t_is "with the token: 200" "$T_STATUS" 200
t_http -H "Authorization: Bearer ${TOKEN%?}x" "$T_BASE/metrics"
t_is "with a wrong token: 403" "$T_STATUS" 403
t_http -H "Authorization: Bearer $TOKEN$TOKEN" "$T_BASE/metrics"
t_is "with a longer token: 403" "$T_STATUS" 403
t_unlike "the token never reaches the log" "$(cat "$T_TMP/prism.log")" "$TOKEN"

# A reload changes the limit at once.
printf 'ratelimit_gateway = 0\n' >>"$T_CONF"
sed -i 's/^ratelimit_gateway = 30$//' "$T_CONF"
kill -HUP "$T_PRISM_PID"
sleep 0.5
t_http -X POST --data-binary '{}' -H 'X-Forwarded-For: 198.51.100.1' "$T_BASE/v1/_diag/echo"
t_is "ratelimit_gateway = 0 lifts the limit after SIGHUP" "$T_STATUS" 200
t_is "and sends no RateLimit field" "$(t_header RateLimit)" ""

# The daemon removes its segment when it stops.
kill -TERM "$T_PRISM_PID"
wait "$T_PRISM_PID"
t_is "segment removed at stop" "$(test -e "/dev/shm/$T_SHM" && echo present || echo gone)" gone
t_done
