#!/bin/bash
# lighttpd (conf-examples/lighttpd-daemon.conf) in front of the prism.fcgi daemon: the whole HTTP surface,
# streaming, reload without dropped requests, and a worker killed with SIGKILL.
. "$(dirname "$0")/lib.sh"
t_require "$LIGHTTPD" curl node

t_make_config "max_body_size = 64k"
t_start_prism --processes 2 --threads 4 || { t_fail "daemon started"; t_done; exit; }
t_start_lighttpd daemon || { t_fail "lighttpd started"; t_done; exit; }
t_ok "daemon and lighttpd up on port $T_PORT"

t_http "$T_BASE/health"
t_is "GET /health through lighttpd" "$T_STATUS" 200
t_is "health says ok" "$(printf '%s' "$T_BODY" | t_json status)" ok
t_like "request id header" "$(t_header X-Request-Id)" '^[0-9a-f]{32}$'
t_is "admin security header" "$(t_header X-Frame-Options)" DENY
t_is "HEAD /health" "$(curl -s -I -o /dev/null -w '%{http_code}' "$T_BASE/health")" 200
t_is "HEAD has no body" "$(curl -s --head -w '%{size_download}' -o /dev/null "$T_BASE/health")" 0
t_http "$T_BASE/health?probe=1"
t_is "routing ignores the query string" "$T_STATUS" 200

t_http "$T_BASE/"
t_is "admin UI served statically" "$T_STATUS" 200
t_like "admin UI page" "$T_BODY" 'Open Model Prism'

t_http "$T_BASE/api/prism/nothing"
t_is "unknown admin path 404" "$T_STATUS" 404
t_is "admin 404 shape" "$(printf '%s' "$T_BODY" | t_json error)" "Not found"
t_http "$T_BASE/api/team-a/v1/nothing"
t_is "unknown gateway path 404" "$T_STATUS" 404
t_is "gateway 404 shape" "$(printf '%s' "$T_BODY" | t_json error.type)" invalid_request_error
t_http -X POST --data-binary '{}' "$T_BASE/health"
t_is "POST /health is 405" "$T_STATUS" 405
t_is "405 lists Allow" "$(t_header Allow)" "GET, HEAD, OPTIONS"

t_http -X POST -H 'Content-Type: application/json' --data-binary '{"messages": [' "$T_BASE/v1/_diag/echo"
t_is "bad JSON 400 (gateway)" "$T_STATUS" 400
t_is "gateway error shape" "$(printf '%s' "$T_BODY" | t_json error.code)" invalid_json
t_http -X POST -H 'Content-Type: application/json' --data-binary '{"a":1,}' "$T_BASE/api/prism/_diag/echo"
t_is "bad JSON 400 (admin)" "$T_STATUS" 400
t_is "admin error shape" "$(printf '%s' "$T_BODY" | t_json code)" invalid_json
t_http -X POST --data-binary '' "$T_BASE/v1/_diag/echo"
t_is "empty body 400" "$T_STATUS" 400
printf '{"s":"\xff\xfe"}' >"$T_TMP/badutf8.json"
t_http -X POST --data-binary @"$T_TMP/badutf8.json" "$T_BASE/v1/_diag/echo"
t_is "invalid UTF-8 400" "$T_STATUS" 400

head -c 100000 /dev/zero | tr '\0' 'x' | sed 's/^/{"big":"/; s/$/"}/' >"$T_TMP/big.json"
t_http -X POST --data-binary @"$T_TMP/big.json" "$T_BASE/v1/_diag/echo"
t_is "body over max_body_size 413" "$T_STATUS" 413
t_is "413 in the gateway shape" "$(printf '%s' "$T_BODY" | t_json error.code)" request_too_large
head -c 50000 /dev/zero | tr '\0' 'y' | sed 's/^/{"big":"/; s/$/"}/' >"$T_TMP/ok.json"
t_http -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/ok.json" "$T_BASE/v1/_diag/echo"
t_is "chunked body accepted" "$T_STATUS" 200
t_is "whole chunked body arrived" "$(printf '%s' "$T_BODY" | t_json body_bytes)" "$(wc -c <"$T_TMP/ok.json")"

t_http -H 'X-Forwarded-For: 198.51.100.7' -X POST --data-binary '{}' "$T_BASE/_diag/echo"
t_is "X-Forwarded-For ignored from untrusted peers" "$(printf '%s' "$T_BODY" | t_json client_ip)" 127.0.0.1

t_sse_incremental "SSE events arrive one by one through lighttpd" 8 600 "$T_BASE/_diag/sse?events=8&interval_ms=120"

# SIGHUP: reloadable keys change while a slow request is in flight; nothing is dropped.
curl -s -o "$T_TMP/slow.out" -w '%{http_code}' "$T_BASE/_diag/sleep?ms=1500" >"$T_TMP/slow.code" &
slow=$!
sleep 0.3
printf 'trusted_proxies = 127.0.0.1\ncors_origins = https://ui.example\n' >>"$T_CONF"
kill -HUP "$T_PRISM_PID"
wait "$slow"
t_is "request in flight during SIGHUP completed" "$(cat "$T_TMP/slow.code")" 200
t_wait_for grep -q "configuration reloaded" "$T_TMP/prism.log"
sleep 0.3
t_http -H 'X-Forwarded-For: 198.51.100.7' -X POST --data-binary '{}' "$T_BASE/_diag/echo"
t_is "after reload X-Forwarded-For is trusted from 127.0.0.1" "$(printf '%s' "$T_BODY" | t_json client_ip)" 198.51.100.7
t_http -H 'Origin: https://ui.example' "$T_BASE/health"
t_is "after reload CORS allows the origin" "$(t_header Access-Control-Allow-Origin)" https://ui.example
t_http -H 'Origin: https://evil.example' "$T_BASE/health"
t_is "other origins get no CORS grant" "$(t_header Access-Control-Allow-Origin)" ""
t_http -X OPTIONS -H 'Origin: https://ui.example' -H 'Access-Control-Request-Method: POST' \
	-H 'Access-Control-Request-Headers: authorization, content-type' "$T_BASE/v1/_diag/echo"
t_is "CORS preflight 204" "$T_STATUS" 204
t_like "preflight allows POST" "$(t_header Access-Control-Allow-Methods)" 'POST'

printf 'threads = 3\n' >>"$T_CONF"
kill -HUP "$T_PRISM_PID"
t_wait_for grep -q "threads changed; it takes effect after a restart" "$T_TMP/prism.log"
t_ok "a static key change is reported, not applied"
printf 'bogus_key = 1\n' >>"$T_CONF"
kill -HUP "$T_PRISM_PID"
t_wait_for grep -q "reload failed, keeping the running configuration" "$T_TMP/prism.log"
t_http "$T_BASE/health"
t_is "a broken file on SIGHUP keeps the server running" "$T_STATUS" 200

# kill -9 a worker: the pool keeps serving and the supervisor respawns it.
before=$(t_prism_workers | tr '\n' ' ')
t_is "two workers" "$(t_prism_workers | wc -l)" 2
victim=$(t_prism_workers | head -n1)
kill -KILL "$victim"
fails=0
for _ in $(seq 1 20); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$T_BASE/health")
	[ "$code" = 200 ] || fails=$((fails + 1))
done
t_is "no failed request after kill -9 of a worker" "$fails" 0
t_wait_for sh -c "[ \$(pgrep -P $T_PRISM_PID | wc -l) -eq 2 ]"
after=$(t_prism_workers | tr '\n' ' ')
t_is "pool back to two workers" "$(t_prism_workers | wc -l)" 2
t_unlike "the killed worker was replaced" "$after" "(^| )$victim( |$)"
t_like "the death was logged" "$(cat "$T_TMP/prism.log")" "worker $victim killed by signal 9; respawning"

# Concurrency: 40 parallel requests, all answered.
pids=()
for i in $(seq 1 40); do curl -s -o /dev/null -w '%{http_code}\n' "$T_BASE/health" >>"$T_TMP/par.out" & pids+=($!); done
wait "${pids[@]}"
t_is "40 concurrent requests answered" "$(grep -c '^200$' "$T_TMP/par.out")" 40

t_like "access log line" "$(cat "$T_TMP/prism.log")" 'access POST /v1/_diag/echo 400 [0-9]+ [0-9.]+ms rid=[0-9a-f]{32} ip=127.0.0.1 tenant=-'
t_unlike "no secret in the log" "$(cat "$T_TMP/prism.log")" "$(sed -n 's/^jwt_secret = //p' "$T_CONF")"
t_done
