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

# As an unprivileged user (the usual deployment) the program executes itself again too; started with
# raised privileges (here a file capability), for which glibc reads tunables only in part and drops
# GLIBC_TUNABLES, it must not: the second image would not know it was one, and start a third.
# nobody_setup NAME: a configuration and a copy of prism.fcgi of its own in $T_TMP/NAME, for uid 65534.
nobody_setup() {
	local d=$T_TMP/$1
	mkdir -p "$d/data" "$d/run"
	"$PRISMCTL" init --config "$d/prism.conf" --data-dir "$d/data" --run-dir "$d/run" --force >/dev/null || return 1
	echo "shm_name = /${T_SHM}$1" >>"$d/prism.conf"
	cp "$PRISM_FCGI" "$d/prism.fcgi"
	chown -R 65534:65534 "$d"     # (before any setcap: a chown clears capabilities)
}
# nobody_start NAME: starts that copy as uid 65534; sets NB_PID; 1 when it does not say it listens in 10 s.
nobody_start() {
	local d=$T_TMP/$1 i
	setpriv --reuid=65534 --regid=65534 --clear-groups "$d/prism.fcgi" --config "$d/prism.conf" \
		--listen "unix:$d/run/prism.sock" --processes 1 --threads 2 >"$d/log" 2>&1 &
	NB_PID=$!
	t_track "$NB_PID"
	for i in $(seq 1 100); do
		grep -q "\[$NB_PID\] info: prism.fcgi .* listening on" "$d/log" && return 0
		kill -0 "$NB_PID" 2>/dev/null || break
		sleep 0.1
	done
	t_diag "$(cat "$d/log")"
	return 1
}
tunables_of() { tr '\0' '\n' <"/proc/$1/environ" | sed -n 's/^GLIBC_TUNABLES=//p'; }
chmod 711 "$T_TMP"
if nobody_setup plain && nobody_start plain; then
	t_is "as an unprivileged user: executed again with the caches off" "$(tunables_of "$NB_PID")" \
		glibc.malloc.tcache_count=0
else
	t_fail "as an unprivileged user: started"
fi
if nobody_setup cap && command -v setcap >/dev/null 2>&1 &&
	setcap cap_net_bind_service+ep "$T_TMP/cap/prism.fcgi" 2>/dev/null; then
	if nobody_start cap; then
		t_is "with a file capability: started once, GLIBC_TUNABLES not set" "$(tunables_of "$NB_PID")" ""
	else
		t_fail "with a file capability: started (and not executing itself again and again)"
	fi
else
	echo "ok $((T_N + 1)) # SKIP setcap is not installed or cannot set a capability"; T_N=$((T_N + 1))
fi
t_done
