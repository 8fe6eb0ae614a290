#!/bin/bash
# lighttpd spawning prism.fcgi itself (conf-examples/lighttpd-binpath.conf): fd-0 mode.
. "$(dirname "$0")/lib.sh"
t_require "$LIGHTTPD" curl node

t_make_config
T_PROCS=2
# An operator's tunable that is not about the per-thread caches: kept, with tcache_count=0 added.
GLIBC_TUNABLES=glibc.malloc.arena_test=8 t_start_lighttpd binpath ||
	{ t_fail "lighttpd with bin-path started"; t_done; exit; }
t_ok "lighttpd spawned prism.fcgi"
t_is "lighttpd runs two prism.fcgi processes" "$(pgrep -f "prism.fcgi --config $T_CONF" | wc -l)" 2
# Each process executed itself again (same pid, same arguments, fd 0 still the socket) with glibc's
# per-thread malloc caches off.  (glibc writes NULs over the ':' of GLIBC_TUNABLES in the area that
# /proc/PID/environ shows, after copying it for getenv; so every NUL is read as ':'.)
for p in $(pgrep -f "prism.fcgi --config $T_CONF"); do
	t_like "pid $p runs with the tunable added" "$(tr '\0' ':' <"/proc/$p/environ")" \
		'(^|:)GLIBC_TUNABLES=glibc\.malloc\.arena_test=8:glibc\.malloc\.tcache_count=0(:|$)'
	t_is "pid $p is still named prism.fcgi (ps, pgrep, killall)" "$(cat "/proc/$p/comm")" prism.fcgi
done

t_http "$T_BASE/health"
t_is "GET /health" "$T_STATUS" 200
t_is "health body" "$(printf '%s' "$T_BODY" | t_json status)" ok
t_http -X POST --data-binary '{"broken"' "$T_BASE/api/team-x/v1/_diag/echo"
t_is "unknown gateway route 404 in the OpenAI shape" "$(printf '%s' "$T_BODY" | t_json error.code)" not_found
t_http -X POST --data-binary '{"broken"' "$T_BASE/v1/_diag/echo"
t_is "bad JSON 400" "$T_STATUS" 400
t_is "bad JSON in the OpenAI shape" "$(printf '%s' "$T_BODY" | t_json error.code)" invalid_json
t_sse_incremental "SSE through bin-path arrives one by one" 6 500 "$T_BASE/_diag/sse?events=6&interval_ms=120"

# Three streams at once are served concurrently by the threads.
start=$(date +%s%3N)
pids=()
for i in 1 2 3; do curl -s -o "$T_TMP/s$i" "$T_BASE/_diag/sse?events=5&interval_ms=200" & pids+=($!); done
wait "${pids[@]}"
took=$(( $(date +%s%3N) - start ))
t_is "three concurrent streams complete" "$(cat "$T_TMP"/s1 "$T_TMP"/s2 "$T_TMP"/s3 | grep -c '\[DONE\]')" 3
if [ "$took" -lt 2500 ]; then t_ok "in parallel ($took ms)"; else t_fail "in parallel" "took $took ms"; fi

# Stopping lighttpd stops its prism.fcgi processes (libfcgi alone would ignore SIGTERM).
kill -TERM "$T_LIGHTTPD_PID"
wait "$T_LIGHTTPD_PID" 2>/dev/null
gone=0
for _ in $(seq 1 50); do
	pgrep -f "prism.fcgi --config $T_CONF" >/dev/null || { gone=1; break; }
	sleep 0.1
done
t_is "prism.fcgi exits with lighttpd" "$gone" 1
t_done
