#!/bin/bash
# prism.fcgi in CGI mode (no web server): routing, error shapes, limits, start-up refusals.
. "$(dirname "$0")/lib.sh"
t_require node

t_make_config "max_body_size = 2k"

# cgi METHOD URI [BODY] [extra env...]: runs one request; sets T_STATUS, T_BODY, T_RAW.
cgi() {
	local method=$1 uri=$2 body=${3-} len; shift 3 2>/dev/null || shift $#
	len=$(printf '%s' "$body" | wc -c)       # bytes, not characters
	T_RAW=$(printf '%s' "$body" | env -i PATH="$PATH" REQUEST_METHOD="$method" REQUEST_URI="$uri" \
		CONTENT_LENGTH="$len" REMOTE_ADDR=192.0.2.10 "$@" "$PRISM_FCGI" --config "$T_CONF" 2>"$T_TMP/cgi.err")
	T_STATUS=$(printf '%s' "$T_RAW" | head -n1 | sed -n 's/^Status: \([0-9]*\).*/\1/p')
	T_BODY=$(printf '%s' "$T_RAW" | sed '1,/^\r$/d')
}

cgi GET /health
t_is "health status" "$T_STATUS" 200
t_is "health body status" "$(printf '%s' "$T_BODY" | t_json status)" ok
t_is "health body role" "$(printf '%s' "$T_BODY" | t_json role)" full
t_like "health timestamp is ISO 8601" "$(printf '%s' "$T_BODY" | t_json timestamp)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$'
t_like "health version" "$(printf '%s' "$T_BODY" | t_json version)" '^[0-9]+\.[0-9]+\.[0-9]+'

cgi GET /health '' NODE_ROLE=worker
t_is "role from NODE_ROLE" "$(printf '%s' "$T_BODY" | t_json role)" worker

cgi GET /nowhere
t_is "unknown path is 404" "$T_STATUS" 404
t_is "404 admin shape" "$(printf '%s' "$T_BODY" | t_json error)" "Not found"
cgi GET /v1/nowhere
t_is "unknown gateway path is 404" "$T_STATUS" 404
t_is "404 gateway shape" "$(printf '%s' "$T_BODY" | t_json error.code)" not_found
t_is "404 gateway type" "$(printf '%s' "$T_BODY" | t_json error.type)" invalid_request_error

cgi DELETE /health
t_is "wrong method is 405" "$T_STATUS" 405
t_like "405 carries Allow" "$T_RAW" $'Allow: GET, HEAD, OPTIONS\r'

cgi POST /v1/_diag/echo '{"model": "x",'
t_is "bad JSON on the gateway is 400" "$T_STATUS" 400
t_is "gateway bad JSON code" "$(printf '%s' "$T_BODY" | t_json error.code)" invalid_json
t_like "gateway bad JSON message says where" "$(printf '%s' "$T_BODY" | t_json error.message)" 'invalid JSON at line 1'
cgi POST /api/prism/_diag/echo 'not json'
t_is "bad JSON on the admin API is 400" "$T_STATUS" 400
t_is "admin bad JSON code" "$(printf '%s' "$T_BODY" | t_json code)" invalid_json
t_like "admin error is a string" "$(printf '%s' "$T_BODY" | t_json error)" '^invalid JSON'

cgi POST /v1/_diag/echo '{"text":"héllo ✓ 😀","n":[1,2,3]}'
t_is "unicode body round-trips" "$(printf '%s' "$T_BODY" | t_json body.text)" "héllo ✓ 😀"
t_is "echo sees the client address" "$(printf '%s' "$T_BODY" | t_json client_ip)" 192.0.2.10

big=$(head -c 3000 /dev/zero | tr '\0' 'a')
cgi POST /v1/_diag/echo "{\"a\":\"$big\"}"
t_is "body over max_body_size is 413" "$T_STATUS" 413
t_is "413 gateway code" "$(printf '%s' "$T_BODY" | t_json error.code)" request_too_large

cgi GET /health '' HTTP_X_REQUEST_ID=trace-123
t_like "incoming X-Request-Id kept" "$T_RAW" $'X-Request-Id: trace-123\r'
cgi GET /health '' "HTTP_X_REQUEST_ID=bad id"
t_like "unsafe X-Request-Id replaced" "$T_RAW" $'X-Request-Id: [0-9a-f]{32}\r'

cgi GET /_diag/sleep '' DIAG=1
t_is "diag endpoints on when configured" "$T_STATUS" 200

# start-up refusals
printf 'threads = many\nbogus = 1\n' >"$T_TMP/bad.conf"
out=$(env -i PATH="$PATH" REQUEST_METHOD=GET REQUEST_URI=/health "$PRISM_FCGI" --config "$T_TMP/bad.conf" 2>&1 </dev/null); rc=$?
t_is "bad config exits 1" "$rc" 1
t_like "bad config names file and line" "$out" "$T_TMP/bad.conf:1: threads: 'many' is not an integer"
t_like "every error reported" "$out" "$T_TMP/bad.conf:2: unknown key 'bogus'"

# No secrets at all: only where the data lives.
printf 'store = sqlite:%s/data/prism.db\n' "$T_TMP" >"$T_TMP/empty.conf"
out=$(env -i PATH="$PATH" REQUEST_METHOD=GET REQUEST_URI=/health "$PRISM_FCGI" --config "$T_TMP/empty.conf" 2>&1 </dev/null); rc=$?
t_is "missing secrets refuse the start" "$rc" 1
t_like "missing jwt_secret named" "$out" 'jwt_secret is not set'
out=$(env -i PATH="$PATH" JWT_SECRET=change-me-in-production ENCRYPTION_KEY=change-me-32-chars-encryption-k! \
	REQUEST_METHOD=GET REQUEST_URI=/health "$PRISM_FCGI" --config "$T_TMP/empty.conf" 2>&1 </dev/null); rc=$?
t_is "the original's default secrets refuse the start" "$rc" 1
t_like "default secret named" "$out" 'jwt_secret is a well-known default'
out=$(env -i PATH="$PATH" JWT_SECRET=short ENCRYPTION_KEY=0123456789abcdef0123456789abcdef \
	REQUEST_METHOD=GET REQUEST_URI=/health "$PRISM_FCGI" --config "$T_TMP/empty.conf" 2>&1 </dev/null); rc=$?
t_like "short secret named" "$out" 'jwt_secret is too short'
printf '%s' 0123456789abcdef0123456789abcdef >"$T_TMP/enc"
out=$(env -i PATH="$PATH" NODE_ROLE=worker ENCRYPTION_KEY_FILE="$T_TMP/enc" \
	REQUEST_METHOD=GET REQUEST_URI=/health "$PRISM_FCGI" --config "$T_TMP/empty.conf" 2>&1 </dev/null); rc=$?
t_is "a worker needs no jwt_secret; secrets from *_FILE" "$rc" 0
t_unlike "secrets never printed" "$out$(cat "$T_TMP/cgi.err")" '0123456789abcdef0123456789abcdef'

t_done
