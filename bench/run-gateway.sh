#!/bin/bash
# The gateway benchmark, in one go on one machine; writes bench/RESULTS.md and prints it.
#
# Targets, measured one after another against the same fake upstream (bench/fake_llm):
#   direct   the fake upstream called directly (the baseline of "added" figures)
#   floor    lighttpd + bench/floor_fcgi, a FastCGI responder that answers a fixed JSON: the stack's cost
#   prism    the same lighttpd configuration + the prism.fcgi daemon (SQLite store, analytics on)
#   peers    Portkey, LiteLLM, Bifrost through bench/peers.sh (installed into the cache directory)
# Per target: wrk at concurrency 1, 16 and 64 (bench/chat.lua); CPU time of the target's processes and
# their resident memory during the c=64 run; added latency at c=16 against the direct upstream in
# alternating rounds; streaming (time to first token, gaps between tokens) and BENCH_STREAMS slow streams
# held at once with bench/streamclient; a perf profile of the prism.fcgi workers at c=64; instructions per
# request of the floor's and prism's FastCGI process under valgrind's callgrind.
#
# Environment: BENCH_DURATION (seconds per wrk run, 10), BENCH_STREAMS (1000), BENCH_PEERS ("portkey
# litellm bifrost"; empty = none), PRISM_BENCH_CACHE (~/.cache/model-prism-bench: peers, Go binaries),
# BENCH_PRISM_PROCS (2) and BENCH_PRISM_THREADS (enough for the streams), BENCH_OUT (the results file),
# BENCH_TARGETS (measure only these, e.g. "prism"; for trying things out, not for RESULTS.md),
# BENCH_PROFILE=0 (no perf profile), BENCH_INSTR=0 (no callgrind count), top_builddir, PRISM_FCGI, PRISMCTL, LIGHTTPD, FLOOR_FCGI, GO, WRK, PERF,
# KEEP_TMP=1 (keep the scratch directory).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${top_builddir:=$top}"
PRISM_FCGI=${PRISM_FCGI:-$top_builddir/fcgi-bin/prism.fcgi}
PRISMCTL=${PRISMCTL:-$top_builddir/fcgi-bin/prismctl}
LIGHTTPD=${LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
WRK=${WRK:-$(command -v wrk || echo /usr/bin/wrk)}
DUR=${BENCH_DURATION:-10}
STREAMS=${BENCH_STREAMS:-1000}
PEERS=${BENCH_PEERS-portkey litellm bifrost}
CACHE=${PRISM_BENCH_CACHE:-$HOME/.cache/model-prism-bench}
OUT=${BENCH_OUT:-$top/bench/RESULTS.md}
PROCS=${BENCH_PRISM_PROCS:-2}
# One request thread per open stream (prism.fcgi relays a stream on the thread that accepted it), plus room
# for the wrk connections and the probes sent while the streams are open.
THREADS=${BENCH_PRISM_THREADS:-$(((STREAMS + 64 + PROCS - 1) / PROCS))}
FLOOR_THREADS=8
# Rounds of the alternating added-latency measurement, and their length.
ROUNDS=3
RDUR=$(((DUR + 1) / 2)); [ "$RDUR" -ge 3 ] || RDUR=3
HOLD_TOKENS=20          # slow streams: 20 tokens a second apart, 20 s each
HOLD_DELAY=1000
ST_TOKENS=20            # the streaming measurement: 20 tokens 10 ms apart
ST_DELAY=10
ST_N=20
TCK=$(getconf CLK_TCK)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prism-gwbench.XXXXXX")
chmod 755 "$tmp"
mkdir -p "$tmp/peers" "$CACHE/bin"
export PRISM_BENCH_OUT=$tmp/peers PRISM_BENCH_CACHE=$CACHE
PIDS=()              # every process started here, stopped by the EXIT trap
PEERS_RUNNING=()
SHM=prism-gwbench-${tmp##*.}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
	local pid p
	for p in "${PEERS_RUNNING[@]}"; do peer_stop "$p" >/dev/null 2>&1; done
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	rm -f "/dev/shm/$SHM"
	[ "${KEEP_TMP:-0}" = 1 ] && log "scratch directory kept: $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on, below the ephemeral range (client sockets of the load could hold it).
. "$top/tests/integration/freeport.sh"

# The given pids and all their descendants (a pool's workers, a peer's children).
pid_tree() {
	local p
	for p in "$@"; do
		[ -d "/proc/$p" ] || continue
		echo "$p"
		pid_tree $(pgrep -P "$p")
	done
}
# utime + stime in clock ticks, summed over the given pids (all threads of each process are included).
cpu_ticks() {
	local p sum=0 f
	for p in "$@"; do
		# After "pid (comm) " the fields start at state: utime and stime are the 12th and 13th.
		read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		[ "${#f[@]}" -gt 13 ] && sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The machine's ticks taken by the host ("steal"), and all its ticks, from the cpu line of /proc/stat.
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
all_ticks() { awk '/^cpu / {s = 0; for (i = 2; i <= 9; i++) s += $i; print s}' /proc/stat; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# A label for a process of a target: its command name, and whether it is the root or a child.
plabel() { local c; c=$(cat "/proc/$1/comm" 2>/dev/null || echo gone); echo "$c"; }

# Arithmetic on decimals.
calc() { awk "BEGIN {printf \"%.${2:-3}f\", $1}"; }
median3() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
us2ms() { awk -v u="$1" 'BEGIN {printf "%.3f", u / 1000}'; }

# --- build the tools ----------------------------------------------------------------------------------------
[ -x "$PRISM_FCGI" ] || die "$PRISM_FCGI is not built (make)"
[ -x "$LIGHTTPD" ] || die "lighttpd is not installed"
[ -x "$WRK" ] || die "wrk is not installed (tools/install-deps)"
[ -x "$GO" ] || die "go is not installed"
command -v node >/dev/null || die "node is needed to read the admin API's JSON"
log "building bench/fake_llm and bench/streamclient"
for t in fake_llm streamclient; do
	(cd "$top/bench/$t" && GOFLAGS=-buildvcs=false "$GO" build -o "$CACHE/bin/$t" .) || die "go build $t failed"
done
FAKE=$CACHE/bin/fake_llm
SCLIENT=$CACHE/bin/streamclient
FLOOR_FCGI=${FLOOR_FCGI:-$top_builddir/bench/floor_fcgi}
if [ ! -x "$FLOOR_FCGI" ]; then
	# Until make builds it (EXTRA_PROGRAMS): the same flags by hand.
	FLOOR_FCGI=$CACHE/bin/floor_fcgi
	${CC:-cc} -O2 -o "$FLOOR_FCGI" "$top/bench/floor_fcgi.c" -lfcgi -lpthread || die "cannot build floor_fcgi"
fi

jget() { node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{let v;try{v=JSON.parse(d)}catch(e){}for(const k of process.argv[1].split(".").filter(Boolean))v=v==null?undefined:v[k];process.stdout.write(v==null?"":String(v))})' "$1"; }

# --- start the fake upstream ----------------------------------------------------------------------------------
"$FAKE" -port-file "$tmp/fake.port" >"$tmp/fake.log" 2>&1 &
FAKE_PID=$!; PIDS+=("$FAKE_PID")
for _ in $(seq 1 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
FAKE_PORT=$(cat "$tmp/fake.port" 2>/dev/null) || die "the fake upstream did not start: $(cat "$tmp/fake.log")"
FAKE_URL=http://127.0.0.1:$FAKE_PORT
fake_calls() { curl -s "$FAKE_URL/stats" | jget requests; }

# --- lighttpd from the bench configuration: lighttpd_start NAME SOCKET → sets LT_PORT, LT_PID -----------
lighttpd_start() {
	local name=$1 sock=$2 dir=$tmp/lighttpd-$1 try
	mkdir -p "$dir/htdocs"
	for try in 1 2 3; do
		LT_PORT=$(free_loopback_port)
		sed -e "s|@PORT@|$LT_PORT|" -e "s|@DIR@|$dir|g" -e "s|@SOCKET@|$sock|" \
			"$top/bench/lighttpd-bench.conf.in" >"$dir/lighttpd.conf"
		"$LIGHTTPD" -D -f "$dir/lighttpd.conf" >>"$dir/lighttpd-error.log" 2>&1 &
		LT_PID=$!; PIDS+=("$LT_PID")
		for _ in $(seq 1 50); do
			(exec 3<>"/dev/tcp/127.0.0.1/$LT_PORT") 2>/dev/null && return 0
			kill -0 "$LT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$LT_PID" 2>/dev/null
	done
	return 1
}

# --- targets ---------------------------------------------------------------------------------------------------
# T_URL: chat completions URL; T_MODEL; T_HDRS: extra headers, one per line; T_ROOTS: pids whose process trees
# are the target's own processes; T_ERR: why a target could not be measured; T_VER: version.
declare -A T_URL T_MODEL T_HDRS T_ROOTS T_ERR T_VER
TARGETS=()
T_URL[direct]=$FAKE_URL/v1/chat/completions; T_MODEL[direct]=fake-model; T_HDRS[direct]=; T_ROOTS[direct]=$FAKE_PID
T_VER[direct]="bench/fake_llm (Go $("$GO" env GOVERSION 2>/dev/null))"

log "starting the floor"
"$FLOOR_FCGI" "$tmp/floor.sock" "$FLOOR_THREADS" >"$tmp/floor.log" 2>&1 &
FLOOR_PID=$!; PIDS+=("$FLOOR_PID")
for _ in $(seq 1 50); do [ -S "$tmp/floor.sock" ] && break; sleep 0.1; done
lighttpd_start floor "$tmp/floor.sock" || die "lighttpd (floor) did not start: $(cat "$tmp/lighttpd-floor/lighttpd-error.log")"
T_URL[floor]=http://127.0.0.1:$LT_PORT/v1/chat/completions; T_MODEL[floor]=fake-model; T_HDRS[floor]=
T_ROOTS[floor]="$LT_PID $FLOOR_PID"; T_VER[floor]="bench/floor_fcgi, $FLOOR_THREADS threads"

log "starting prism.fcgi ($PROCS processes x $THREADS threads)"
mkdir -p "$tmp/prism/etc" "$tmp/prism/data" "$tmp/prism/run"
PCONF=$tmp/prism/etc/prism.conf
"$PRISMCTL" init --config "$PCONF" --data-dir "$tmp/prism/data" --run-dir "$tmp/prism/run" --force >/dev/null \
	|| die "prismctl init failed"
# The per-address gateway limit (600/min by default) would turn the load into 429s; the access log is off
# as lighttpd's is; offline: no models.dev fetch during the run.  Analytics are always on.
cat >>"$PCONF" <<EOF
ratelimit_gateway = 0
ratelimit_admin = 0
ratelimit_login = 0
access_log = false
log_level = warn
offline = true
shutdown_grace = 5s
shm_name = /$SHM
EOF
cp "$top/data/modelsdev.json" "$tmp/prism/data/" 2>/dev/null
PSOCK=$tmp/prism/run/prism.sock
"$PRISM_FCGI" --config "$PCONF" --listen "unix:$PSOCK" --processes "$PROCS" --threads "$THREADS" >>"$tmp/prism.log" 2>&1 &
PRISM_PID=$!; PIDS+=("$PRISM_PID")
for _ in $(seq 1 100); do [ -S "$PSOCK" ] && break; kill -0 "$PRISM_PID" 2>/dev/null || break; sleep 0.1; done
[ -S "$PSOCK" ] || die "prism.fcgi did not start: $(tail -n 20 "$tmp/prism.log")"
lighttpd_start prism "$PSOCK" || die "lighttpd (prism) did not start"
PBASE=http://127.0.0.1:$LT_PORT
T_ROOTS[prism]="$LT_PID $PRISM_PID"
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$PBASE/health")" = 200 ] && break; sleep 0.1; done
# The setup through the admin API, as an operator does it: first admin, login, setup complete, one provider
# (the fake upstream, model fake-model), one tenant with its API key.
papi() {   # papi METHOD PATH [JSON] → body on stdout
	local args=(-s -X "$1")
	[ -n "${PTOKEN:-}" ] && args+=(-H "Authorization: Bearer $PTOKEN")
	args+=(-H 'Content-Type: application/json' --data-binary "${3:-}")
	curl "${args[@]}" "$PBASE$2"
}
PTOKEN=
papi POST /api/prism/setup/admin '{"username":"bench","password":"bench-password-1"}' >"$tmp/setup.json"
PTOKEN=$(papi POST /api/prism/auth/login '{"username":"bench","password":"bench-password-1"}' | jget token)
[ -n "$PTOKEN" ] || die "prism setup: login failed ($(cat "$tmp/setup.json"))"
papi POST /api/prism/setup/complete '{}' >/dev/null
PROV=$(papi POST /api/prism/admin/providers "{\"name\":\"Fake\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$FAKE_URL\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"sk-fake\"}},\"discoveredModels\":[{\"id\":\"fake-model\",\"contextWindow\":128000}]}" | jget _id)
[ -n "$PROV" ] || die "prism setup: provider not created"
PKEY=$(papi POST /api/prism/admin/tenants "{\"slug\":\"bench\",\"name\":\"Bench\",\"providerIds\":[\"$PROV\"]}" | jget apiKey)
[ -n "$PKEY" ] || die "prism setup: tenant not created"
PTOKEN=
T_URL[prism]=$PBASE/v1/chat/completions; T_MODEL[prism]=fake-model; T_HDRS[prism]="Authorization: Bearer $PKEY"
T_VER[prism]="prism.fcgi $("$PRISM_FCGI" --version 2>/dev/null | awk '{print $2}') ($(git -C "$top" rev-parse --short HEAD 2>/dev/null)), $PROCS processes x $THREADS threads"
TARGETS=(direct floor prism)

# --- peers ------------------------------------------------------------------------------------------------------
PEER_LIST=()
if [ -n "$PEERS" ]; then
	if [ -f "$top/bench/peers.sh" ]; then
		. "$top/bench/peers.sh"
		for p in $PEERS; do
			log "installing peer $p"
			out=$(peer_install "$p" 2>&1); rc=$?
			if [ $rc -eq 0 ]; then
				T_VER[$p]=$(printf '%s' "$out" | tail -n1)
				PEER_LIST+=("$p")
			else
				T_ERR[$p]="install failed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"
				log "$p: ${T_ERR[$p]}"
			fi
			TARGETS+=("$p")
		done
	else
		for p in $PEERS; do T_ERR[$p]="bench/peers.sh is missing"; TARGETS+=("$p"); done
	fi
fi
peer_up() {   # peer_up NAME: starts it and fills its T_* entries; 1 when it does not answer
	local p=$1 port out req path
	port=$(free_loopback_port)
	out=$(peer_start "$p" "$port" "$FAKE_URL" "$tmp/peer-$p.log" 2>&1) || { T_ERR[$p]="start failed: $(printf '%s' "$out" | tail -n2 | tr '\n' ' ')"; return 1; }
	PEERS_RUNNING+=("$p")
	T_ROOTS[$p]=$(printf '%s\n' "$out" | tail -n1 | grep -oE '[0-9]+' | tr '\n' ' ')
	req=$(peer_request "$p")
	path=$(printf '%s\n' "$req" | sed -n 1p)
	T_MODEL[$p]=$(printf '%s\n' "$req" | sed -n 2p)
	T_HDRS[$p]=$(printf '%s\n' "$req" | sed -n '3,$p')
	T_URL[$p]=http://127.0.0.1:$port$path
	local code i hdr args=()
	while IFS= read -r hdr; do [ -n "$hdr" ] && args+=(-H "$hdr"); done <<<"${T_HDRS[$p]}"
	for i in $(seq 1 240); do
		code=$(curl -s -o "$tmp/peer-$p.first" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "${args[@]}" \
			--data-binary "{\"model\":\"${T_MODEL[$p]}\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}" "${T_URL[$p]}")
		[ "$code" = 200 ] && return 0
		sleep 0.5
	done
	T_ERR[$p]="no 200 from ${T_URL[$p]} after 120 s (last: $code $(head -c 300 "$tmp/peer-$p.first" 2>/dev/null)); log: $(tail -n 3 "$tmp/peer-$p.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
	return 1
}

# --- measurements -------------------------------------------------------------------------------------------------
declare -A R     # R[target.key] = value
COMMANDS=()
hdr_args() { local h; while IFS= read -r h; do [ -n "$h" ] && printf -- '-H\n%s\n' "$h"; done <<<"${T_HDRS[$1]}"; }

# wrk_run TARGET CONC SECONDS → sets W_rps W_p50 W_p75 W_p90 W_p99 W_req W_err (latencies in µs)
wrk_run() {
	local t=$1 c=$2 d=$3 threads=1 line
	[ "$c" -ge 16 ] && threads=2
	line=$(CHAT_MODEL=${T_MODEL[$t]} CHAT_HEADERS=${T_HDRS[$t]} \
		"$WRK" -t$threads -c"$c" -d"${d}s" --timeout 10s --latency -s "$top/bench/chat.lua" "${T_URL[$t]}" 2>&1 | grep '^WRK ')
	W_req=0 W_rps=0 W_p50=0 W_p75=0 W_p90=0 W_p99=0 W_err=0
	[ -n "$line" ] || { W_err=all; return 1; }
	local kv
	for kv in ${line#WRK }; do
		case $kv in
			requests=*) W_req=${kv#*=} ;; rps=*) W_rps=${kv#*=} ;; p50=*) W_p50=${kv#*=} ;; p75=*) W_p75=${kv#*=} ;;
			p90=*) W_p90=${kv#*=} ;; p99=*) W_p99=${kv#*=} ;; err_*) W_err=$((W_err + ${kv#*=})) ;;
		esac
	done
}

# The fixed-concurrency runs; the c=64 run is also the saturation run: CPU and RSS of the target's processes.
measure_load() {
	local t=$1 c pids before after calls0 sampler
	# Idle: as started (and set up), before any load.
	pids=$(pid_tree ${T_ROOTS[$t]})
	for p in $pids; do R[$t.idle.$p]=$(rss_kb "$p"); R[$t.name.$p]=$(plabel "$p"); done
	R[$t.pids]=$pids
	log "$t: warm-up"
	wrk_run "$t" 16 2
	for c in 1 16 64; do
		log "$t: c=$c for ${DUR}s"
		if [ "$c" = 64 ]; then
			calls0=$(fake_calls)
			R[$t.steal0]=$(steal_ticks); R[$t.all0]=$(all_ticks)
			before=$(cpu_ticks $pids)
			for p in $pids; do R[$t.cpu0.$p]=$(cpu_ticks "$p"); done
			( while :; do for p in $pids; do echo "$p $(rss_kb "$p")"; done; sleep 0.5; done ) >"$tmp/rss-$t" &
			sampler=$!
		fi
		wrk_run "$t" "$c" "$DUR"
		if [ "$c" = 64 ]; then
			after=$(cpu_ticks $pids)
			R[$t.steal]=$(calc "100 * ($(steal_ticks) - ${R[$t.steal0]}) / ($(all_ticks) - ${R[$t.all0]} + 1)" 1)
			for p in $pids; do R[$t.cpu.$p]=$(( $(cpu_ticks "$p") - R[$t.cpu0.$p] )); done
			kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
			R[$t.cpu_ticks]=$((after - before))
			R[$t.sat_req]=$W_req
			R[$t.upstream_calls]=$(( $(fake_calls) - calls0 ))
			for p in $pids; do R[$t.load.$p]=$(awk -v p="$p" '$1 == p && $2 > m {m = $2} END {print m + 0}' "$tmp/rss-$t"); done
		fi
		R[$t.c$c.rps]=$W_rps; R[$t.c$c.p50]=$W_p50; R[$t.c$c.p75]=$W_p75; R[$t.c$c.p90]=$W_p90; R[$t.c$c.p99]=$W_p99
		R[$t.c$c.err]=$W_err; R[$t.c$c.req]=$W_req
	done
}

# Added latency: ROUNDS alternating runs of direct and target at c=16; medians of each.
measure_added() {
	local t=$1 r dp50=() dp99=() tp50=() tp99=()
	for r in $(seq 1 $ROUNDS); do
		log "$t: added latency, round $r"
		wrk_run direct 16 "$RDUR"; dp50+=("$W_p50"); dp99+=("$W_p99")
		wrk_run "$t" 16 "$RDUR"; tp50+=("$W_p50"); tp99+=("$W_p99")
	done
	R[$t.add.dp50]=$(median3 "${dp50[@]}"); R[$t.add.dp99]=$(median3 "${dp99[@]}")
	R[$t.add.tp50]=$(median3 "${tp50[@]}"); R[$t.add.tp99]=$(median3 "${tp99[@]}")
	R[$t.add.p50]=$(calc "(${R[$t.add.tp50]} - ${R[$t.add.dp50]}) / 1000")
	R[$t.add.p99]=$(calc "(${R[$t.add.tp99]} - ${R[$t.add.dp99]}) / 1000")
}

# streamclient TARGET ARGS... → its output
sclient() {
	local t=$1; shift
	local -a h
	mapfile -t h < <(hdr_args "$t")
	"$SCLIENT" -url "${T_URL[$t]}" "${h[@]}" "$@" 2>&1
}
kv() { printf '%s\n' "$1" | grep "^$2 " | tr ' ' '\n' | sed -n "s/^$3=//p" | head -n1; }

measure_stream() {
	local t=$1 body out
	body="{\"model\":\"${T_MODEL[$t]}\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"fake:tokens=$ST_TOKENS,delay_ms=$ST_DELAY\"}]}"
	log "$t: streaming, $ST_N streams of $ST_TOKENS tokens ${ST_DELAY} ms apart"
	out=$(sclient "$t" -body "$body" -n $ST_N -c 1 -expect-tokens $ST_TOKENS)
	R[$t.st.raw]=$out
	R[$t.st.ok]=$(kv "$out" STREAMS complete); R[$t.st.ttft]=$(kv "$out" STREAMS ttft_p50)
	R[$t.st.gap]=$(kv "$out" STREAMS gap_mean); R[$t.st.gap99]=$(kv "$out" STREAMS gap_p99)
	R[$t.st.err]=$(printf '%s\n' "$out" | grep '^ERROR' | cut -c1-300)
}

measure_hold() {
	local t=$1 body probe out pids
	body="{\"model\":\"${T_MODEL[$t]}\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"fake:tokens=$HOLD_TOKENS,delay_ms=$HOLD_DELAY\"}]}"
	probe="{\"model\":\"${T_MODEL[$t]}\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}],\"max_tokens\":64}"
	pids=$(pid_tree ${T_ROOTS[$t]} | tr '\n' ',')
	log "$t: $STREAMS slow streams ($HOLD_TOKENS tokens, ${HOLD_DELAY} ms apart) and 20 probes"
	out=$(sclient "$t" -body "$body" -n "$STREAMS" -c "$STREAMS" -ramp-ms 2000 -expect-tokens $HOLD_TOKENS \
		-probes 20 -probe-body "$probe" -rss-pids "$pids" -timeout 120s)
	R[$t.hold.raw]=$out
	R[$t.hold.ok]=$(kv "$out" STREAMS complete); R[$t.hold.ttft]=$(kv "$out" STREAMS ttft_p50)
	R[$t.hold.ttftmax]=$(kv "$out" STREAMS ttft_max)
	R[$t.hold.pok]=$(kv "$out" PROBES ok); R[$t.hold.p50]=$(kv "$out" PROBES p50); R[$t.hold.pmax]=$(kv "$out" PROBES max)
	R[$t.hold.err]=$(printf '%s\n' "$out" | grep '^ERROR' | cut -c1-300)
	local kvp
	for kvp in $(printf '%s\n' "$out" | grep '^RSS ' | cut -d' ' -f2-); do R[$t.hold.${kvp%%=*}]=${kvp#*=}; done
}

# Where prism.fcgi spends its CPU at saturation: perf samples of its workers during one more c=64 run,
# counted per function of prism.fcgi and libfcgi including what they call (a sample counts once per
# function on its stack), and per library by where the time itself went.
PERF=${PERF:-$(command -v perf)}
measure_profile() {
	local t=prism workers
	[ "${BENCH_PROFILE:-1}" = 1 ] && [ -n "$PERF" ] || return 0
	workers=$(pgrep -P "$PRISM_PID" | tr '\n' ',' | sed 's/,$//')
	[ -n "$workers" ] || return 0
	log "prism: CPU profile of the workers at c=64 (perf, 4 s)"
	CHAT_MODEL=${T_MODEL[$t]} CHAT_HEADERS=${T_HDRS[$t]} "$WRK" -t2 -c64 -d7s --timeout 10s -s "$top/bench/chat.lua" "${T_URL[$t]}" >/dev/null 2>&1 &
	local w=$!
	sleep 2
	# The whole machine, then the workers' samples: their threads come and go with the load, which a
	# recording attached to the threads of the moment (-p) would miss.
	"$PERF" record -q -a -F 499 --call-graph dwarf,16384 -o "$tmp/perf.data" -- sleep 4 >/dev/null 2>&1
	wait "$w"
	[ -s "$tmp/perf.data" ] || { R[profile.err]="perf record failed (perf_event_paranoid = $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null))"; return 0; }
	"$PERF" script -i "$tmp/perf.data" --pid "$workers" -F ip,sym,dso 2>/dev/null | awk '
		function flush(   k) { if (!n) return; total++; for (k in seen) incl[k]++; delete seen; n = 0; np = 0 }
		function mark(s, d) { if ((d == "prism.fcgi" || d ~ /^libfcgi/) && s != "[unknown]") seen[s " (" d ")"] = 1 }
		/^[[:space:]]*$/ { flush(); next }
		{
			line = $0; sub(/^[[:space:]]*[0-9a-f]+ /, "", line)
			dso = line; sub(/^.* \(/, "", dso); sub(/\)$/, "", dso); sub(/^.*\//, "", dso)
			sym = line; sub(/ \([^(]*\)$/, "", sym); sub(/\+0x[0-9a-f]+$/, "", sym)
			# An inlined function belongs to the binary of the next real frame.
			if (dso == "inlined") { if (sym !~ /^__/) pend[++np] = sym; next }
			if (!n) self[dso]++
			n++
			mark(sym, dso)
			for (; np > 0; np--) mark(pend[np], dso)
		}
		END {
			flush()
			for (k in incl) printf "I\t%.1f\t%s\n", 100 * incl[k] / total, k
			for (k in self) printf "S\t%.1f\t%s\n", 100 * self[k] / total, k
			printf "N\t%d\n", total
		}' >"$tmp/profile.tsv"
}

# Instructions per request (valgrind's callgrind): the FastCGI process of the floor, and the worker of a
# one-process prism.fcgi on the same store, each alone under valgrind behind its own lighttpd, counted in user
# space over a wrk run after a warm-up.  Unlike CPU time, an instruction count does not move with the host's
# steal or the cache contention of the other targets, so it compares runs taken on different days.
# measure_instr NAME SOCKET COMMAND... → R[NAME.instr], R[NAME.instr_req]
measure_instr() {
	local t=$1 sock=$2 vpid f n best=0
	shift 2
	rm -f "$tmp"/cg-"$t".*
	valgrind --tool=callgrind --trace-children=yes --dump-instr=no --callgrind-out-file="$tmp/cg-$t.%p" \
		"$@" >>"$tmp/cg-$t.log" 2>&1 &
	vpid=$!; PIDS+=("$vpid")
	for _ in $(seq 1 300); do [ -S "$sock" ] && break; kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
	if [ ! -S "$sock" ] || ! lighttpd_start "$t" "$sock"; then
		T_ERR[$t]="did not start under valgrind: $(tail -n 3 "$tmp/cg-$t.log" | tr '\n' ' ')"
		kill "$vpid" 2>/dev/null; wait "$vpid" 2>/dev/null
		return 1
	fi
	T_URL[$t]=http://127.0.0.1:$LT_PORT/v1/chat/completions; T_MODEL[$t]=fake-model
	# Under valgrind prism.fcgi opens its store slowly (the WAL the main run left): until /health answers 200
	# its requests would only be 503s.  (The floor answers 200 to any path.)
	for _ in $(seq 1 600); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LT_PORT/health")" = 200 ] && break
		sleep 0.2
	done
	log "$t: instructions per request (callgrind), warm-up"
	wrk_run "$t" 4 5
	callgrind_control -z >/dev/null 2>&1
	log "$t: instructions per request (callgrind), c=4 for ${DUR}s"
	wrk_run "$t" 4 "$DUR"
	sleep 1                 # the analytics writer's last batch (it waits up to 200 ms)
	callgrind_control -d >/dev/null 2>&1
	sleep 1
	for f in "$tmp"/cg-"$t".*.1; do
		[ -f "$f" ] || continue
		n=$(awk '/^(summary|totals):/ {v = $2} END {print v + 0}' "$f")
		[ "$n" -gt "$best" ] && best=$n
	done
	kill "$LT_PID" "$vpid" 2>/dev/null; wait "$LT_PID" "$vpid" 2>/dev/null
	if [ "$best" -gt 0 ] && [ "${W_req:-0}" -gt 0 ] && [ "$W_err" = 0 ]; then
		R[$t.instr]=$best; R[$t.instr_req]=$W_req
	else
		T_ERR[$t]="no count (requests $W_req, errors $W_err)"
	fi
}

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# The streaming baseline: the fake alone.
measure_stream direct
for t in "${TARGETS[@]}"; do
	[ -z "${T_ERR[$t]:-}" ] || continue
	case " ${BENCH_TARGETS:-$t} " in *" $t "*) ;; *) T_ERR[$t]="skipped (BENCH_TARGETS)"; continue ;; esac
	case $t in direct|floor|prism) ;; *)
		log "starting peer $t"
		if ! peer_up "$t"; then log "$t: ${T_ERR[$t]}"; continue; fi ;;
	esac
	measure_load "$t"
	if [ "$t" != direct ]; then measure_added "$t"; fi
	if [ "$t" != direct ] && [ "$t" != floor ]; then
		measure_stream "$t"
		measure_hold "$t"
	fi
	[ "$t" = prism ] && measure_profile
	case $t in direct|floor|prism) ;; *)
		peer_stop "$t" >/dev/null 2>&1
		PEERS_RUNNING=() ;;
	esac
done
if [ "${BENCH_INSTR:-1}" != 0 ] && command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
	T_HDRS[floor_cg]=
	measure_instr floor_cg "$tmp/floor-cg.sock" "$FLOOR_FCGI" "$tmp/floor-cg.sock" 4
	sed -e "s|^shm_name = .*|shm_name = /${SHM}cg|" -e "s|^run_dir = .*|run_dir = $tmp/prism-cg|" "$PCONF" >"$tmp/prism-cg.conf"
	mkdir -p "$tmp/prism-cg"
	T_HDRS[prism_cg]="Authorization: Bearer $PKEY"
	measure_instr prism_cg "$tmp/prism-cg/prism.sock" "$PRISM_FCGI" --config "$tmp/prism-cg.conf" \
		--listen "unix:$tmp/prism-cg/prism.sock" --processes 1 --threads 8
else
	T_ERR[floor_cg]="valgrind is not installed (or BENCH_INSTR=0)"; T_ERR[prism_cg]=${T_ERR[floor_cg]}
fi
ELAPSED=$(( $(date +%s) - START ))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
PRISM_LOG_ERRORS=$(grep -c -E ' (error|warn):' "$tmp/prism.log" 2>/dev/null)
PRISM_LOG_SAMPLE=$(grep -E ' (error|warn):' "$tmp/prism.log" 2>/dev/null | sort | uniq -c | sort -rn | head -n 5)
LT_ERRORS=$(grep -v 'server started\|server stopped\|graceful' "$tmp/lighttpd-prism/lighttpd-error.log" 2>/dev/null | head -n 5)

# --- the report ---------------------------------------------------------------------------------------------------
ok() { [ -z "${T_ERR[$1]:-}" ] && [ -n "${R[$1.c64.rps]:-}" ]; }
pm() { if awk "BEGIN {exit !($1)}"; then echo PASS; else echo MISS; fi; }
f1() { calc "$1" 1; }
cpu_per_k() { calc "${R[$1.cpu_ticks]} / $TCK / ${R[$1.sat_req]} * 1000" 3; }
sat() {   # the best of the three concurrencies
	printf '%s\n' "${R[$1.c1.rps]}" "${R[$1.c16.rps]}" "${R[$1.c64.rps]}" | sort -g | tail -n1
}
max_rss() {   # max_rss TARGET PHASE → the largest RSS (kB) of the target's processes in that phase
	local t=$1 ph=$2 p m=0 v
	for p in ${R[$t.pids]}; do v=${R[$t.$ph.$p]:-0}; [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$m" ] && m=$v; done
	echo "$m"
}

{
echo "# Gateway benchmark"
echo
echo "Generated by \`make bench\` (bench/run-gateway.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); the run took $ELAPSED s."
echo
echo "## Machine and versions"
echo
echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r); load generator, upstream and gateway share it. Load average (1, 5, 15 min) at the start: $LOAD_START, at the end: $LOAD_END (other work on the machine shows here)."
echo "- model-prism: git $(git -C "$top" rev-parse --short HEAD 2>/dev/null)$(git -C "$top" diff --quiet HEAD -- . ':(exclude)bench/RESULTS*.md' ':(exclude)bench/ANALYSIS.md' 2>/dev/null || echo ' (with uncommitted changes)'); ${T_VER[prism]}; SQLite store, analytics on, access log off, ratelimit_gateway = 0."
echo "- $("$LIGHTTPD" -v 2>&1 | head -n1) (bench/lighttpd-bench.conf.in, the same for the floor and prism); $("$WRK" -v 2>&1 | head -n1 | cut -d' ' -f1-2); $("$GO" version | cut -d' ' -f3); node $(node -v 2>/dev/null)."
for p in $PEERS; do
	if [ -n "${T_VER[$p]:-}" ]; then echo "- $p: ${T_VER[$p]}$( [ -n "${T_ERR[$p]:-}" ] && echo " -- not measured: ${T_ERR[$p]}")"
	else echo "- $p: not measured: ${T_ERR[$p]:-unknown}"; fi
done
[ -n "$PEERS" ] || echo "- peers: none (BENCH_PEERS is empty)"
[ -d "$tmp/peers" ] && [ -n "$(ls -A "$tmp/peers" 2>/dev/null)" ] && { echo "- peer configurations as run:"; for f in "$tmp/peers"/*; do echo; echo "  \`$(basename "$f")\`:"; echo; echo '  ```'; sed 's/^/  /' "$f"; echo '  ```'; done; }
echo
echo "## Commands"
echo
echo "- Upstream: \`fake_llm -port-file F\` (16 tokens, zero delay; streams shaped per request by a \`fake:tokens=N,delay_ms=D\` directive in the prompt)."
echo "- Floor: \`floor_fcgi SOCKET $FLOOR_THREADS\`; prism: \`prism.fcgi --config C --listen unix:SOCKET --processes $PROCS --threads $THREADS\`; both behind \`lighttpd -D -f bench/lighttpd-bench.conf.in\` (placeholders filled)."
echo "- Load: \`CHAT_MODEL=M CHAT_HEADERS=H wrk -t1 -c1 | -t2 -c16 | -t2 -c64 -d${DUR}s --timeout 10s --latency -s bench/chat.lua URL\` (a 2 s c=16 warm-up first). Body: \`{\"model\":M,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}],\"max_tokens\":64}\`; answer: 16 tokens, 360 bytes from the fake."
echo "- Added latency: $ROUNDS rounds of \`wrk -t2 -c16 -d${RDUR}s\` on the fake directly, then on the target; medians of p50 and p99, target minus direct."
echo "- CPU: utime+stime from /proc/PID/stat of the target's processes (the tree under lighttpd and prism.fcgi, floor_fcgi, or the peer) before and after the c=64 run, over the requests it completed. RSS: VmRSS idle after the warm-up, the maximum sampled every 0.5 s during the c=64 run, and with the slow streams open."
echo "- Streaming: \`streamclient -n $ST_N -c 1 -expect-tokens $ST_TOKENS\` with the fake sending $ST_TOKENS tokens $ST_DELAY ms apart; TTFT p50 and the mean gap between content events, minus the same through no gateway."
echo "- Open streams: \`streamclient -n $STREAMS -c $STREAMS -ramp-ms 2000 -expect-tokens $HOLD_TOKENS -probes 20\`: $STREAMS streams of $HOLD_TOKENS tokens ${HOLD_DELAY} ms apart open at once; once all have their first token, RSS is read and 20 ordinary requests are sent one by one."
echo
echo "## Throughput and latency (non-streaming, small chat completions)"
for c in 1 16 64; do
	echo
	echo "Concurrency $c:"
	echo
	echo "| target | req/s | p50 ms | p75 ms | p90 ms | p99 ms | errors |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for t in "${TARGETS[@]}"; do
		ok "$t" || { echo "| $t | not measured | | | | | |"; continue; }
		echo "| $t | $(f1 "${R[$t.c$c.rps]}") | $(us2ms "${R[$t.c$c.p50]}") | $(us2ms "${R[$t.c$c.p75]}") | $(us2ms "${R[$t.c$c.p90]}") | $(us2ms "${R[$t.c$c.p99]}") | ${R[$t.c$c.err]} |"
	done
done
echo
echo "## Saturation throughput"
echo
echo "The best req/s of the three concurrencies."
echo
echo "| target | req/s | prism / target | target | result |"
echo "|---|---:|---:|---|---|"
psat=$(ok prism && sat prism || echo 0)
for t in "${TARGETS[@]}"; do
	ok "$t" || { echo "| $t | not measured | | | |"; continue; }
	s=$(sat "$t"); ratio=$(calc "$psat / $s" 2)
	case $t in
		portkey) echo "| $t | $(f1 "$s") | $ratio | prism >= 5x | $(pm "$ratio >= 5") |" ;;
		litellm) echo "| $t | $(f1 "$s") | $ratio | prism >= 20x | $(pm "$ratio >= 20") |" ;;
		*) echo "| $t | $(f1 "$s") | $ratio | | |" ;;
	esac
done
echo
echo "## Added latency at concurrency 16"
echo
echo "Medians of $ROUNDS alternating rounds, in ms. The last column, for comparison, is the same difference at concurrency 1"
echo "(from the runs above, not alternated): at c=16 a gateway that is saturated adds its queueing time."
echo
echo "| target | direct p50 | target p50 | added p50 | direct p99 | target p99 | added p99 | p50 < 0.3 ms | p99 < 1 ms | added p50 at c=1 |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---|---:|"
for t in "${TARGETS[@]}"; do
	[ "$t" = direct ] && continue
	ok "$t" || { echo "| $t | not measured | | | | | | | | |"; continue; }
	echo "| $t | $(us2ms "${R[$t.add.dp50]}") | $(us2ms "${R[$t.add.tp50]}") | ${R[$t.add.p50]} | $(us2ms "${R[$t.add.dp99]}") | $(us2ms "${R[$t.add.tp99]}") | ${R[$t.add.p99]} | $(pm "${R[$t.add.p50]} < 0.3") | $(pm "${R[$t.add.p99]} < 1") | $(calc "(${R[$t.c1.p50]} - ${R[direct.c1.p50]:-0}) / 1000") |"
done
echo
echo "## CPU per request (c=64 run)"
echo
echo "The last column is the share of the machine's time the host took from it during the run (\"steal\" in"
echo "/proc/stat): a run with much of it was slowed by other work on the host, and compares less well with the others."
echo
echo "| target | processes | requests | upstream calls | CPU-s | CPU-s per 1,000 req | per process | vs floor | result | host steal % |"
echo "|---|---|---:|---:|---:|---:|---|---:|---|---:|"
fk=$(ok floor && cpu_per_k floor || echo 0)
for t in "${TARGETS[@]}"; do
	ok "$t" || { echo "| $t | not measured | | | | | | | | |"; continue; }
	names=$(for p in ${R[$t.pids]}; do echo "${R[$t.name.$p]}"; done | sort | uniq -c | awk '{printf "%s%s%s", sep, ($1 > 1 ? $1 "x " : ""), $2; sep=", "}')
	k=$(cpu_per_k "$t"); vs=$( [ "$fk" != 0 ] && calc "$k / $fk" 2 || echo -)
	res=; [ "$t" = prism ] && [ "$vs" != - ] && res="$(pm "$vs <= 2") (<= 2x floor)"
	split=$(for p in ${R[$t.pids]}; do printf '%s %s\n' "${R[$t.name.$p]}" "${R[$t.cpu.$p]:-0}"; done |
		awk -v n="${R[$t.sat_req]}" -v tck="$TCK" '{s[$1] += $2} END {for (k in s) printf "%s%s %.3f", (i++ ? ", " : ""), k, s[k] / tck / n * 1000}')
	echo "| $t | $names | ${R[$t.sat_req]} | ${R[$t.upstream_calls]} | $(calc "${R[$t.cpu_ticks]} / $TCK" 2) | $k | $split | $vs | $res | ${R[$t.steal]:-} |"
done
echo
echo "## Instructions per request (callgrind)"
echo
echo "User-space instructions of the FastCGI process alone (floor_fcgi; the worker of a one-process prism.fcgi,"
echo "its analytics writer included, on the same SQLite store), counted by valgrind's callgrind over a wrk run at"
echo "c=4 after a warm-up. lighttpd and the kernel are not in it, so this is not the CPU target's measure: it"
echo "shows the gateway's own work, and does not move with the host's load."
echo
echo "| target | requests | instructions | per request | vs floor |"
echo "|---|---:|---:|---:|---:|"
for t in floor_cg prism_cg; do
	if [ -z "${R[$t.instr]:-}" ]; then echo "| ${t%_cg} | not measured: ${T_ERR[$t]:-} | | | |"; continue; fi
	per=$(( R[$t.instr] / R[$t.instr_req] ))
	vs=-; [ -n "${R[floor_cg.instr]:-}" ] && vs="$(calc "$per / (${R[floor_cg.instr]} / ${R[floor_cg.instr_req]})" 1)x"
	echo "| ${t%_cg} | ${R[$t.instr_req]} | ${R[$t.instr]} | $per | $vs |"
done
echo
echo "## Streaming: time to first token and gaps between tokens"
echo
echo "| target | complete | TTFT p50 ms | added TTFT ms | mean gap ms | added gap ms | gap p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
	[ "$t" = floor ] && continue
	[ -n "${R[$t.st.ttft]:-}" ] || { echo "| $t | not measured | | | | | |"; continue; }
	if [ "$t" = direct ]; then at=-; ag=-; else at=$(calc "${R[$t.st.ttft]} - ${R[direct.st.ttft]}"); ag=$(calc "${R[$t.st.gap]} - ${R[direct.st.gap]}"); fi
	echo "| $t | ${R[$t.st.ok]}/$ST_N | ${R[$t.st.ttft]} | $at | ${R[$t.st.gap]} | $ag | ${R[$t.st.gap99]} |"
done
for t in "${TARGETS[@]}"; do [ -n "${R[$t.st.err]:-}" ] && echo && echo "$t: ${R[$t.st.err]}"; done
echo
echo "## $STREAMS concurrent slow streams"
echo
echo "| target | streams complete | TTFT p50 / max ms | probes ok | probe p50 ms | probe max ms | largest RSS MB | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for t in "${TARGETS[@]}"; do
	case $t in direct|floor) continue ;; esac
	[ -n "${R[$t.hold.ok]:-}" ] || { echo "| $t | not measured | | | | | | |"; continue; }
	m=0; for p in ${R[$t.pids]}; do v=${R[$t.hold.$p]:-0}; [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$m" ] && m=$v; done
	echo "| $t | ${R[$t.hold.ok]}/$STREAMS | ${R[$t.hold.ttft]} / ${R[$t.hold.ttftmax]} | ${R[$t.hold.pok]}/20 | ${R[$t.hold.p50]} | ${R[$t.hold.pmax]} | $(mb "$m") | $(pm "${R[$t.hold.ok]} >= 1000 && ${R[$t.hold.pok]} == 20") |"
done
for t in "${TARGETS[@]}"; do [ -n "${R[$t.hold.err]:-}" ] && echo && echo "$t: ${R[$t.hold.err]}"; done
echo
echo "## Memory per process (RSS, MB)"
echo
echo "| target | process (pid) | idle | c=64 load | $STREAMS streams open | < 20 MB under load |"
echo "|---|---|---:|---:|---:|---|"
for t in "${TARGETS[@]}"; do
	ok "$t" || continue
	for p in ${R[$t.pids]}; do
		hk=${R[$t.hold.$p]:-}; [[ $hk =~ ^[0-9]+$ ]] || hk=0
		h=-; [ "$hk" -gt 0 ] && h=$(mb "$hk")
		l=${R[$t.load.$p]:-0}
		res=; case $t in prism|floor) res=$(pm "$l < 20480 && $hk < 20480") ;; esac
		echo "| $t | ${R[$t.name.$p]} ($p) | $(mb "${R[$t.idle.$p]:-0}") | $(mb "$l") | $h | $res |"
	done
done
echo
if [ -s "$tmp/profile.tsv" ]; then
	echo "## Where prism.fcgi's CPU goes (c=64)"
	echo
	echo "perf record -a -F 499 --call-graph dwarf for 4 s of a c=64 run, the samples of the worker processes ($(awk -F'\t' '$1 == "N" {print $2}' "$tmp/profile.tsv") samples). Inclusive share of samples per function of prism.fcgi and libfcgi (a sample counts for every function on its stack):"
	echo
	echo "| % of worker CPU | function |"
	echo "|---:|---|"
	awk -F'\t' '$1 == "I"' "$tmp/profile.tsv" | sort -t"$(printf '\t')" -k2,2gr | head -n 30 | awk -F'\t' '{printf "| %s | %s |\n", $2, $3}'
	echo
	echo "Where the time itself is spent, per binary:"
	echo
	echo "| % of worker CPU | binary |"
	echo "|---:|---|"
	awk -F'\t' '$1 == "S"' "$tmp/profile.tsv" | sort -t"$(printf '\t')" -k2,2gr | head -n 10 | awk -F'\t' '{printf "| %s | %s |\n", $2, $3}'
	echo
elif [ -n "${R[profile.err]:-}" ]; then
	echo "Profile: ${R[profile.err]}"
	echo
fi
echo "## The issue's targets"
echo
echo "| target | figure | result |"
echo "|---|---|---|"
if ok prism; then
	echo "| added latency p50 < 0.3 ms at c=16 | ${R[prism.add.p50]} ms | $(pm "${R[prism.add.p50]} < 0.3") |"
	echo "| added latency p99 < 1 ms at c=16 | ${R[prism.add.p99]} ms | $(pm "${R[prism.add.p99]} < 1") |"
	pk=$(cpu_per_k prism)
	[ "$fk" != 0 ] && echo "| CPU per request of lighttpd + prism.fcgi <= 2x the floor's | $pk vs $fk CPU-s per 1,000 req ($(calc "$pk / $fk" 2)x) | $(pm "$pk <= 2 * $fk") |"
	for p in portkey:5 litellm:20; do
		n=${p%%:*}; x=${p#*:}
		if ok "$n"; then r=$(calc "$psat / $(sat "$n")" 2); echo "| throughput >= ${x}x $n's | $(f1 "$psat") vs $(f1 "$(sat "$n")") req/s (${r}x) | $(pm "$r >= $x") |"
		else echo "| throughput >= ${x}x $n's | $n not measured: ${T_ERR[$n]:-not in BENCH_PEERS} | - |"; fi
	done
	if [ -n "${R[prism.hold.ok]:-}" ]; then
		echo "| >= 1,000 concurrent streams, still answering | ${R[prism.hold.ok]}/$STREAMS complete, ${R[prism.hold.pok]}/20 probes ok (p50 ${R[prism.hold.p50]} ms, max ${R[prism.hold.pmax]} ms) | $(pm "${R[prism.hold.ok]} >= 1000 && ${R[prism.hold.pok]} == 20") |"
	fi
	ml=$(max_rss prism load); mh=$(max_rss prism hold)
	echo "| RSS < 20 MB per process under load | largest $(mb "$ml") MB at c=64, $(mb "$mh") MB with $STREAMS streams open | $(pm "$ml < 20480 && $mh < 20480") |"
else
	echo "| all | prism was not measured | MISS |"
fi
echo
echo "prism.fcgi log: ${PRISM_LOG_ERRORS:-0} warning/error lines${PRISM_LOG_SAMPLE:+; most frequent:}"
[ -n "$PRISM_LOG_SAMPLE" ] && { echo; echo '```'; echo "$PRISM_LOG_SAMPLE" | cut -c1-200; echo '```'; }
[ -n "$LT_ERRORS" ] && { echo; echo "lighttpd (prism) error log:"; echo; echo '```'; echo "$LT_ERRORS" | cut -c1-200; echo '```'; }
} >"$OUT"
cat "$OUT"
