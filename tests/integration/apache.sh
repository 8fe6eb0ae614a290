#!/bin/bash
# Apache 2.4 in front of prism.fcgi, configured with the shipped examples: mod_proxy_fcgi to the daemon
# (conf-examples/apache-proxy-fcgi.conf) and mod_fcgid spawning it (conf-examples/apache-fcgid.conf).
# Checks what the web server does to prism.fcgi's traffic: streaming, routing on REQUEST_URI, request bodies
# (chunked, oversize), headers, error shapes, compression, client disconnects, and that Apache's graceful
# restart and stop take prism.fcgi down cleanly.
. "$(dirname "$0")/lib.sh"

MODDIR=${APACHE_MODDIR:-/usr/lib/apache2/modules}
MODULES="mpm_event authz_core mime alias dir env filter deflate proxy proxy_fcgi fcgid"

[ -n "$APACHE2" ] && [ -x "$APACHE2" ] || t_skip_all "apache2 is not installed"
for m in $MODULES; do
	[ -f "$MODDIR/mod_$m.so" ] || t_skip_all "mod_$m is not installed in $MODDIR"
done

AS_ROOT=0
[ "$(id -u)" -eq 0 ] && AS_ROOT=1
HTTP_USER=www-data

# JSON field of stdin ("a.b"): the harness's t_json where node is installed, else jq.
jget() {
	if command -v node >/dev/null 2>&1; then
		t_json "$1"
	else
		jq -r ".$1 | if type == \"string\" then . else tojson end" 2>/dev/null
	fi
}

# --- scratch set-up: everything Apache's children (www-data) touch must be reachable by them --------------
t_make_config "socket_mode = 0666" "max_body_size = 64k" "access_log = true"
chmod 644 "$T_CONF"                        # a throwaway config; real ones are 0640 root:www-data
chmod 755 "$T_TMP/etc" "$T_TMP/run"        # www-data must reach the config and the daemon's socket
mkdir -p "$T_TMP/htdocs" "$T_TMP/bin" "$T_TMP/apache-run" "$T_TMP/fcgid"
cp -r "$top_srcdir/htdocs/." "$T_TMP/htdocs/"
chmod -R a+rX "$T_TMP/htdocs"
# mod_fcgid runs prism.fcgi through this link: its command line then names $T_TMP, which lets the harness
# find (and, on failure, kill) exactly the processes this test started.
ln -s "$PRISM_FCGI" "$T_TMP/bin/prism.fcgi"
if [ "$AS_ROOT" = 1 ]; then
	chown -R "$HTTP_USER:$HTTP_USER" "$T_TMP/data" "$T_TMP/fcgid"
	as_http() { runuser -u "$HTTP_USER" -- "$@"; }
	t_run "prism.fcgi is executable by $HTTP_USER" as_http test -x "$PRISM_FCGI"
	t_run "the test configuration is readable by $HTTP_USER" as_http test -r "$T_CONF"
	t_run "the admin UI files are readable by $HTTP_USER" as_http test -r "$T_TMP/htdocs/index.html"
fi

# The shipped example with its Define lines pointed at the scratch directory, on stdout.
example() {
	local src=$top_builddir/conf-examples/apache-$1.conf
	if [ ! -f "$src" ]; then
		src=$top_srcdir/conf-examples/apache-$1.conf.in
		[ -f "$src" ] || return 1
	fi
	sed -e "s|@sbindir@|$top_builddir/fcgi-bin|g" -e "s|@sysconfdir@|$T_TMP/etc|g" \
	    -e "s|@runstatedir@|$T_TMP/run|g" -e "s|@pkgdatadir@|$T_TMP|g" -e "s|@localstatedir@|$T_TMP|g" \
	    -e "s|^Define PRISM_SOCKET .*|Define PRISM_SOCKET $T_TMP/run/prism.sock|" \
	    -e "s|^Define PRISM_HTDOCS .*|Define PRISM_HTDOCS $T_TMP/htdocs|" \
	    -e "s|^Define PRISM_FCGI .*|Define PRISM_FCGI $T_TMP/bin/prism.fcgi|" \
	    -e "s|^Define PRISM_CONFIG .*|Define PRISM_CONFIG $T_CONF|" \
	    "$src"
}

# httpd.conf for MODE (proxy-fcgi or fcgid) on stdout; the example is included at top level, or inside a
# <VirtualHost> when the third argument is "vhost".
httpd_conf() {
	local mode=$1 port=$2 where=${3:-top} modules global
	case $mode in
	proxy-fcgi)
		modules="LoadModule proxy_module       $MODDIR/mod_proxy.so
LoadModule proxy_fcgi_module  $MODDIR/mod_proxy_fcgi.so"
		global="" ;;
	fcgid)
		modules="LoadModule fcgid_module       $MODDIR/mod_fcgid.so"
		global="FcgidIPCDir \"$T_TMP/fcgid\"
FcgidProcessTableFile \"$T_TMP/fcgid/shm\"" ;;
	esac
	sed -e "s|@TMP@|$T_TMP|g" -e "s|@PORT@|$port|g" -e "s|@MODDIR@|$MODDIR|g" -e "s|@LOGLEVEL@|info|g" \
	    -e "s|@MODE@|$mode|g" \
	    "$top_srcdir/tests/integration/apache.conf.in" |
		awk -v modules="$modules" -v global="$global" \
		    '/^@MODE_MODULES@$/ { print modules; next } /^@MODE_GLOBAL@$/ { print global; next } { print }'
	if [ "$where" = vhost ]; then
		printf '<VirtualHost 127.0.0.1:%s>\n    ServerName prism.test\n    Include "%s"\n</VirtualHost>\n' \
			"$port" "$T_TMP/apache-$mode.conf"
	else
		printf 'Include "%s"\n' "$T_TMP/apache-$mode.conf"
	fi
}

# Starts Apache with the example for MODE on a free port; sets T_BASE and T_APACHE_PID.
start_apache() {
	local mode=$1 port
	if ! example "$mode" >"$T_TMP/apache-$mode.conf"; then
		t_fail "$mode: example configuration exists"
		return 1
	fi
	t_is "$mode: every Define of the example points into the test directory" \
		"$(grep -E '^[[:space:]]*Define ' "$T_TMP/apache-$mode.conf" | grep -v " $T_TMP/")" ""
	port=$(t_free_port)
	httpd_conf "$mode" "$port" >"$T_TMP/httpd-$mode-top.conf"
	t_run "$mode: the example is valid at top level" "$APACHE2" -t -f "$T_TMP/httpd-$mode-top.conf"
	T_ERRLOG=$T_TMP/apache-$mode-error.log
	t_log "$T_ERRLOG"
	local try up=0
	# A parallel test may take the chosen port first: then Apache exits at once, and another port is tried.
	for try in 1 2 3; do
		# Served as documented: included inside a <VirtualHost>.
		httpd_conf "$mode" "$port" vhost >"$T_TMP/httpd-$mode.conf"
		[ "$try" = 1 ] && t_run "$mode: the example is valid inside a <VirtualHost>" "$APACHE2" -t -f "$T_TMP/httpd-$mode.conf"
		"$APACHE2" -f "$T_TMP/httpd-$mode.conf" -DFOREGROUND >>"$T_ERRLOG" 2>&1 &
		T_APACHE_PID=$!
		t_track "$T_APACHE_PID"
		T_BASE=http://127.0.0.1:$port
		for _ in $(seq 1 100); do
			curl -sf -o /dev/null --max-time 2 "$T_BASE/health" && { up=1; break; }
			kill -0 "$T_APACHE_PID" 2>/dev/null || break
			sleep 0.1
		done
		[ "$up" = 1 ] && break
		kill "$T_APACHE_PID" 2>/dev/null
		wait "$T_APACHE_PID" 2>/dev/null
		port=$(t_free_port)
	done
	if [ "$up" = 1 ]; then
		t_ok "$mode: Apache is up and reaches prism.fcgi"
	else
		t_fail "$mode: Apache is up and reaches prism.fcgi"
		return 1
	fi
}

# wait_gone PID: up to 10 s for PID to exit.
wait_gone() {
	for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	return 1
}

stop_apache() {
	kill -TERM "$T_APACHE_PID" 2>/dev/null
	wait_gone "$T_APACHE_PID"
}

# The checks both modes share; LOG is where prism.fcgi's log lines end up.
common_checks() {
	local m=$1 log=$2 f t0 first last n size rc

	t_http --max-time 10 "$T_BASE/health"
	t_is "$m: GET /health is 200" "$T_STATUS" 200
	t_is "$m: /health says ok" "$(printf '%s' "$T_BODY" | jget status)" ok
	t_http --max-time 10 "$T_BASE/health?x=1"
	t_is "$m: GET /health?x=1 is 200 (routing ignores the query)" "$T_STATUS" 200

	t_http --max-time 10 -H 'X-Request-Id: apache-rid-42' "$T_BASE/health"
	t_is "$m: X-Request-Id comes back" "$(t_header X-Request-Id)" apache-rid-42
	t_http --max-time 10 "$T_BASE/health"
	t_like "$m: a request id is made up when none is sent" "$(t_header X-Request-Id)" '^[0-9a-f]{16,}$'

	t_http --max-time 10 --compressed "$T_BASE/"
	t_is "$m: / serves the admin UI" "$T_STATUS" 200
	t_like "$m: the admin UI is HTML" "$(t_header Content-Type)" '^text/html'
	t_is "$m: mod_deflate is active for static files" "$(t_header Content-Encoding)" gzip
	t_is "$m: the admin UI is not prism.fcgi's" "$(t_header X-Request-Id)" ""
	t_http --max-time 10 "$T_BASE/apix"
	t_is "$m: /apix is not an API path" "$(t_header X-Request-Id)" ""
	t_http --max-time 10 "$T_BASE/v1/nowhere"
	t_is "$m: unknown /v1 path is prism.fcgi's 404" "$T_STATUS" 404
	t_is "$m: 404 in the gateway shape" "$(printf '%s' "$T_BODY" | jget error.code)" not_found

	# Streaming: six events 200 ms apart must arrive one by one (the first at once), not all at the end.
	# The client accepts gzip, as browsers do.
	f=$T_TMP/sse-$m.txt
	t0=$(date +%s%3N)
	t_sse_times --compressed "$T_BASE/_diag/sse?events=6&interval_ms=200" >"$f"
	t_is "$m: SSE delivers 6 events" "$(grep -c '"seq"' "$f")" 6
	t_is "$m: SSE ends with [DONE]" "$(tail -n1 "$f" | cut -d' ' -f2-)" "[DONE]"
	first=$(grep '"seq":0' "$f" | cut -d' ' -f1)
	last=$(grep '"seq":5' "$f" | cut -d' ' -f1)
	if [ -n "$first" ] && [ -n "$last" ] && [ $((last - first)) -ge 700 ] && [ $((first - t0)) -lt 600 ]; then
		t_ok "$m: SSE arrives incrementally (first after $((first - t0)) ms, last $((last - first)) ms later)"
	else
		t_fail "$m: SSE arrives incrementally" "request sent at $t0; arrivals:" "$(cat "$f")"
	fi
	curl -s --compressed -o /dev/null -D "$T_TMP/sse-headers" --max-time 10 \
		"$T_BASE/_diag/sse?events=1&interval_ms=0"
	T_HEADERS=$T_TMP/sse-headers
	t_like "$m: SSE content type" "$(t_header Content-Type)" '^text/event-stream'
	t_is "$m: SSE is not compressed" "$(t_header Content-Encoding)" ""
	t_http --max-time 10 --compressed "$T_BASE/health"
	t_is "$m: API responses are not compressed" "$(t_header Content-Encoding)" ""

	# Error shapes.
	t_http --max-time 10 -H 'Content-Type: application/json' --data-binary '{"model": "x",' "$T_BASE/v1/_diag/echo"
	t_is "$m: bad JSON on /v1 is 400" "$T_STATUS" 400
	t_is "$m: gateway error code" "$(printf '%s' "$T_BODY" | jget error.code)" invalid_json
	t_is "$m: gateway error type" "$(printf '%s' "$T_BODY" | jget error.type)" invalid_request_error
	t_like "$m: gateway error message" "$(printf '%s' "$T_BODY" | jget error.message)" '^invalid JSON'
	t_http --max-time 10 -H 'Content-Type: application/json' --data-binary 'not json' \
		"$T_BASE/api/prism/_diag/echo"
	t_is "$m: bad JSON on /api/prism is 400" "$T_STATUS" 400
	t_is "$m: admin error code" "$(printf '%s' "$T_BODY" | jget code)" invalid_json
	t_like "$m: admin error is a string" "$(printf '%s' "$T_BODY" | jget error)" '^invalid JSON'

	# What reaches the application: REQUEST_URI unchanged, the client address, the Authorization header.
	t_http --max-time 10 -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-apache-test' \
		--data-binary '{"hello":"wörld"}' "$T_BASE/v1/_diag/echo?x=a%20b&y=%2F&z"
	t_is "$m: echo is 200" "$T_STATUS" 200
	t_is "$m: path reaches prism.fcgi unchanged" "$(printf '%s' "$T_BODY" | jget path)" /v1/_diag/echo
	t_is "$m: query string reaches prism.fcgi unchanged" "$(printf '%s' "$T_BODY" | jget query)" 'x=a%20b&y=%2F&z'
	t_is "$m: the body arrives" "$(printf '%s' "$T_BODY" | jget body.hello)" wörld
	t_is "$m: client address is the client's" "$(printf '%s' "$T_BODY" | jget client_ip)" 127.0.0.1
	t_is "$m: Authorization reaches prism.fcgi (CGIPassAuth)" \
		"$(printf '%s' "$T_BODY" | jget headers.authorization)" "[redacted]"
	t_is "$m: X-Request-Id on the gateway" "$(t_header X-Request-Id)" "$(printf '%s' "$T_BODY" | jget request_id)"

	# Request bodies: chunked (no Content-Length) and over max_body_size (64k).
	f=$T_TMP/body-40k.json
	{ printf '{"pad":"'; head -c 40000 /dev/zero | tr '\0' a; printf '"}'; } >"$f"
	size=$(wc -c <"$f")
	t_http --max-time 10 -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
		--data-binary "@$f" "$T_BASE/v1/_diag/echo"
	t_is "$m: chunked body is accepted" "$T_STATUS" 200
	t_is "$m: chunked body arrives whole" "$(printf '%s' "$T_BODY" | jget body_bytes)" "$size"
	t_http --max-time 10 -H 'Content-Type: application/json' --data-binary "@$f" "$T_BASE/v1/_diag/echo"
	t_is "$m: body with Content-Length arrives whole" "$(printf '%s' "$T_BODY" | jget body_bytes)" "$size"

	f=$T_TMP/body-100k.json
	{ printf '{"pad":"'; head -c 102400 /dev/zero | tr '\0' a; printf '"}'; } >"$f"
	t_http --max-time 10 -H 'Content-Type: application/json' --data-binary "@$f" "$T_BASE/v1/_diag/echo"
	t_is "$m: body over max_body_size is 413" "$T_STATUS" 413
	t_is "$m: 413 from prism.fcgi in the gateway shape" "$(printf '%s' "$T_BODY" | jget error.code)" \
		request_too_large
	t_http --max-time 10 -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
		--data-binary "@$f" "$T_BASE/v1/_diag/echo"
	t_is "$m: chunked body over max_body_size is 413" "$T_STATUS" 413
	t_is "$m: chunked 413 from prism.fcgi" "$(printf '%s' "$T_BODY" | jget error.code)" request_too_large
	# mod_fcgid's own limit, FcgidMaxRequestLen, defaults to 131072 and answers 500 above it.
	f=$T_TMP/body-200k.json
	{ printf '{"pad":"'; head -c 204800 /dev/zero | tr '\0' a; printf '"}'; } >"$f"
	t_http --max-time 10 -H 'Content-Type: application/json' --data-binary "@$f" "$T_BASE/v1/_diag/echo"
	t_is "$m: a body over 128 KiB is still prism.fcgi's 413" "$T_STATUS" 413
	t_http --max-time 10 "$T_BASE/health"
	t_is "$m: still healthy after the oversize bodies" "$T_STATUS" 200

	# An answer sent before the body was read (here a 404), to a body larger than the socket buffers.
	# mod_fcgid has read the whole body already; mod_proxy_fcgi streams it and would hold the end of the
	# response until Apache's Timeout if prism.fcgi did not read and drop the rest of the body.
	f=$T_TMP/body-3m.json
	{ printf '{"pad":"'; head -c 3000000 /dev/zero | tr '\0' a; printf '"}'; } >"$f"
	n=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H 'Content-Type: application/json' \
		--data-binary "@$f" "$T_BASE/v1/nowhere")
	rc=$?
	if [ "$rc" = 0 ] && { [ "$n" = 404 ] || [ "$n" = 413 ]; }; then
		t_ok "$m: an early answer to a large body completes ($n)"
	else
		t_fail "$m: an early answer to a large body completes" "curl exit $rc, status $n"
	fi

	# A client that goes away ends its stream: prism.fcgi notices on its next write.
	curl -sN --max-time 0.5 -H "X-Request-Id: gone-$m" "$T_BASE/_diag/sse?events=100&interval_ms=100" \
		>/dev/null 2>&1
	if t_wait_for grep -q "rid=gone-$m .*client_gone" "$log"; then
		t_ok "$m: a client disconnect stops the stream"
	else
		t_fail "$m: a client disconnect stops the stream" "$(grep "rid=gone-$m" "$log")"
	fi
}

# === mod_proxy_fcgi to the prism.fcgi daemon ================================================================
if t_start_prism --processes 1 --threads 4; then
	t_ok "proxy-fcgi: prism.fcgi daemon started"
	t_is "proxy-fcgi: socket mode from socket_mode" "$(stat -c %a "$T_PRISM_SOCK")" 666
	if start_apache proxy-fcgi; then
		common_checks proxy-fcgi "$T_TMP/prism.log"
		t_unlike "proxy-fcgi: no worker sharing warnings" "$(cat "$T_ERRLOG")" 'AH01145'
	fi
	t_run "proxy-fcgi: Apache stops" stop_apache
	kill -TERM "$T_PRISM_PID"
	t_run "proxy-fcgi: prism.fcgi daemon stops on SIGTERM" wait_gone "$T_PRISM_PID"
else
	t_fail "proxy-fcgi: prism.fcgi daemon started" "$(cat "$T_TMP/prism.log" 2>/dev/null)"
fi

# === mod_fcgid spawning prism.fcgi ==========================================================================
fcgid_pids() { pgrep -f "^$T_TMP/bin/prism.fcgi" | sort; }
# The daemon of the first part ran as root and created the database; mod_fcgid's processes run as
# www-data, which must own the data (prism.fcgi refuses to start on a store it cannot write).
[ "$AS_ROOT" = 1 ] && chown -R "$HTTP_USER:$HTTP_USER" "$T_TMP/data"
if start_apache fcgid; then
	pids=$(fcgid_pids)
	t_like "fcgid: mod_fcgid started prism.fcgi" "$pids" '^[0-9]+'
	if [ "$AS_ROOT" = 1 ] && [ -n "$pids" ]; then
		t_is "fcgid: prism.fcgi runs as $HTTP_USER" \
			"$(ps -o user= -p "$(echo "$pids" | head -n1)" | tr -d ' ')" "$HTTP_USER"
	fi
	common_checks fcgid "$T_ERRLOG"

	# A graceful restart lets a running stream finish: mod_fcgid sends SIGTERM, and prism.fcgi completes its
	# in-flight request before it exits.
	t_sse_times "$T_BASE/_diag/sse?events=8&interval_ms=100" >"$T_TMP/sse-graceful.txt" &
	sse_pid=$!
	sleep 0.3
	kill -USR1 "$T_APACHE_PID"
	wait "$sse_pid"
	t_is "fcgid: a stream survives a graceful restart" "$(grep -c '"seq"' "$T_TMP/sse-graceful.txt")" 8
	if t_wait_for curl -sf -o /dev/null --max-time 2 "$T_BASE/health"; then
		t_ok "fcgid: serving again after the graceful restart"
	else
		t_fail "fcgid: serving again after the graceful restart"
	fi

	t_run "fcgid: Apache stops" stop_apache
	if t_wait_for sh -c "! pgrep -f '^$T_TMP/bin/prism.fcgi'"; then
		t_ok "fcgid: prism.fcgi processes exit with Apache"
	else
		t_fail "fcgid: prism.fcgi processes exit with Apache" "left: $(fcgid_pids | tr '\n' ' ')"
		for p in $(fcgid_pids); do kill -KILL "$p" 2>/dev/null; done
	fi
	exits=$(grep 'mod_fcgid: process .*exit(' "$T_ERRLOG")
	t_like "fcgid: mod_fcgid saw prism.fcgi exit" "$exits" 'exit\('
	t_is "fcgid: every prism.fcgi exited by itself with status 0" \
		"$(printf '%s\n' "$exits" | grep -v 'terminated by calling exit(), return code: 0')" ""
fi

t_done
