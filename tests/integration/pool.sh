#!/bin/bash
# pool.sh -- the request threads of a worker follow the load: few while idle, as many as the concurrent
# requests need up to `threads`, never more, back down once the load is gone, and not ended and started
# again at every pause of a bursty load; the store connections the threads used return to a small pool
# instead of staying one per thread.  Real lighttpd, real SQLite, the fake upstream answering after a delay.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require node curl "$LIGHTTPD"

MAX=40
SLOW_MS=1500
# The operator's own tcache setting: the daemon starts with it as it is (it executes itself again only to
# turn the caches off when nothing says otherwise; lighttpd_binpath.sh has that case).
GLIBC_TUNABLES=glibc.malloc.tcache_count=1 ADM_PRISM_ARGS="--processes 1 --threads $MAX" \
	adm_start "ratelimit_gateway = 0" "ratelimit_admin = 0" || { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN
WORKER=$(t_prism_workers | head -n1)
# (glibc writes NULs over the ':' of GLIBC_TUNABLES in the area /proc/PID/environ shows: an added
# setting would be an entry of its own there.)
t_is "the operator's GLIBC_TUNABLES is kept as it is" \
	"$(tr '\0' '\n' <"/proc/$WORKER/environ" | grep -c -e '^GLIBC_TUNABLES=glibc\.malloc\.tcache_count=1$' \
		-e 'tcache_count=0')" 1
threads() { ls "/proc/$WORKER/task" 2>/dev/null | wc -l; }
db_fds() { ls -l "/proc/$WORKER/fd" 2>/dev/null | grep -c 'prism\.db$'; }

node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/up.port" --key up-key-123 --slow-ms "$SLOW_MS" \
	>"$T_TMP/up.log" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/up.port"
api POST /api/prism/admin/providers "{\"name\":\"Fake\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"http://127.0.0.1:$(cat "$T_TMP/up.port")\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"up-key-123\"}},\"discoveredModels\":[{\"id\":\"fake-slow\"},{\"id\":\"fake-echo\"}]}"
t_is "provider created" "$T_STATUS" 201
PID=$(jget _id)

IDLE=$(threads)
t_diag "worker $WORKER: $IDLE threads while idle (at most $MAX request threads)"
t_like "idle: a handful of threads, not the $MAX the pool may grow to" "$IDLE" '^([1-9]|1[0-2])$'

# burst N SLUG KEY: N concurrent slow chat requests; their status codes go to $T_TMP/codes.N, the largest
# thread count seen meanwhile to PEAK, the wall time (ms) to WALL.
burst() {
	local n=$1 slug=$2 key=$3 i t0 pids=()
	: >"$T_TMP/codes.$n"
	t0=$(date +%s%3N)
	for i in $(seq 1 "$n"); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST -H "Authorization: Bearer $key" \
			-H 'Content-Type: application/json' \
			--data '{"model":"fake-slow","messages":[{"role":"user","content":"hello"}]}' \
			"$T_BASE/api/$slug/v1/chat/completions" >>"$T_TMP/codes.$n" &
		pids+=($!)
	done
	PEAK=0
	while kill -0 "${pids[@]}" 2>/dev/null; do
		local c; c=$(threads)
		[ "$c" -gt "$PEAK" ] && PEAK=$c
		sleep 0.1
	done
	wait "${pids[@]}" 2>/dev/null
	WALL=$(( $(date +%s%3N) - t0 ))
}

# A fresh tenant: its key is in no cache yet, so every request of the burst reads the store.
api POST /api/prism/admin/tenants "{\"slug\":\"pool\",\"name\":\"Pool\",\"providerIds\":[\"$PID\"]}"
t_is "tenant created" "$T_STATUS" 201
KEY=$(jget apiKey)

burst 30 pool "$KEY"
t_is "30 concurrent slow requests: all answered" "$(sort -u "$T_TMP/codes.30" | tr '\n' ' ')" "200 "
t_diag "30 requests of ${SLOW_MS} ms: ${WALL} ms, up to $PEAK threads"
t_like "served at once, not one after another (wall time under 2 x ${SLOW_MS} ms)" \
	"$([ "$WALL" -lt $((2 * SLOW_MS)) ] && echo yes || echo "no: $WALL ms")" '^yes$'
t_like "the pool grew to hold them" "$([ "$PEAK" -ge 30 ] && echo yes || echo "no: $PEAK")" '^yes$'

# Twice the maximum: every request is answered, the pool stays at its maximum, the rest wait their turn.
burst 80 pool "$KEY"
t_is "80 concurrent slow requests: all answered" "$(sort -u "$T_TMP/codes.80" | tr '\n' ' ')" "200 "
t_diag "80 requests of ${SLOW_MS} ms: ${WALL} ms, up to $PEAK threads"
t_like "never more than $MAX request threads (plus the process's own few)" \
	"$([ "$PEAK" -le $((MAX + IDLE)) ] && echo yes || echo "no: $PEAK")" '^yes$'
t_like "so the requests beyond them waited (at least 2 rounds)" \
	"$([ "$WALL" -ge $((2 * SLOW_MS)) ] && echo yes || echo "no: $WALL ms")" '^yes$'

# Quiet again: the threads that waited a whole second beyond the 16 spare ones end (the main thread looks
# once a second).
for _ in $(seq 1 60); do [ "$(threads)" -le $((IDLE + 16)) ] && break; sleep 0.1; done
AFTER=$(threads)
t_diag "after the load: $AFTER threads"
t_like "the pool shrank back (at most 16 spare threads)" \
	"$([ "$AFTER" -le $((IDLE + 16)) ] && [ "$AFTER" -lt "$PEAK" ] && echo yes || echo "no: $AFTER")" '^yes$'
FDS=$(db_fds)
t_diag "SQLite connections open in the worker: $FDS"
t_like "store connections returned to a small pool, not kept one per thread" \
	"$([ "$FDS" -le 8 ] && echo yes || echo "no: $FDS")" '^yes$'

# And it still serves, the shrunk pool growing again.
t_http -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	--data '{"model":"fake-echo","messages":[{"role":"user","content":"still there?"}]}' \
	"$T_BASE/api/pool/v1/chat/completions"
t_is "a request after the shrink is answered" "$T_STATUS" 200

# A load that comes in bursts (36 requests at once, every few tens of milliseconds, for 4 seconds) keeps
# its threads: the pool does not end threads in every pause and start new ones at every burst.
for _ in $(seq 1 36); do
	printf 'url = "%s"\noutput = "/dev/null"\n' "$T_BASE/api/pool/v1/chat/completions"
done >"$T_TMP/burst.cfg"
BEFORE=$(ls "/proc/$WORKER/task" | sort)
END=$(( $(date +%s%3N) + 4000 ))
: >"$T_TMP/tids"
(
	while [ "$(date +%s%3N)" -lt "$END" ]; do
		curl -s -Z --parallel-max 36 --max-time 10 -w '%{http_code}\n' -X POST \
			-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
			--data '{"model":"fake-echo","messages":[{"role":"user","content":"burst"}]}' -K "$T_TMP/burst.cfg"
		sleep 0.05
	done >"$T_TMP/codes.bursts"
) &
LOAD=$!
while kill -0 "$LOAD" 2>/dev/null; do ls "/proc/$WORKER/task" >>"$T_TMP/tids" 2>/dev/null; sleep 0.05; done
wait "$LOAD"
NEW=$(comm -13 <(printf '%s\n' "$BEFORE") <(sort -u "$T_TMP/tids") | wc -l)
SEEN=$(sort -u "$T_TMP/tids" | wc -l)
t_diag "bursts: $(wc -l <"$T_TMP/codes.bursts") requests, $SEEN threads seen, $NEW started during the load"
t_is "bursts: every request answered" "$(sort -u "$T_TMP/codes.bursts" | tr '\n' ' ')" "200 "
t_like "bursts: threads are kept, not ended and started again (at most 36 new ones)" \
	"$([ "$NEW" -le 36 ] && echo yes || echo "no: $NEW threads started")" '^yes$'
t_like "the pool's log has no errors" "$(grep -c 'error:' "$T_TMP/prism.log")" '^0$'

# A clean stop with the pool at rest.
kill -TERM "$T_PRISM_PID"
for _ in $(seq 1 100); do kill -0 "$T_PRISM_PID" 2>/dev/null || break; sleep 0.1; done
t_like "the daemon stopped on SIGTERM" "$(kill -0 "$T_PRISM_PID" 2>/dev/null && echo running || echo stopped)" '^stopped$'
t_done
