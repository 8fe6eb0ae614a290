# lib.sh -- the integration harness, sourced by every tests/integration/*.sh.
#
# Each script prints TAP (counted one by one by make check).  Everything a test starts is registered with
# t_track and stopped by the EXIT trap, also when the test fails or is interrupted; the scratch directory is
# removed afterwards unless KEEP_TMP=1.  Servers listen on free loopback ports only.
#
# Environment (set by make check): top_srcdir, top_builddir, PRISM_FCGI, PRISMCTL, LIGHTTPD, APACHE2.

set -u
T_N=0
T_FAILED=0
T_PIDS=()
T_LOGS=()
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/prism-test.XXXXXX")
chmod 755 "$T_TMP"
T_SHM=prism-test-${T_TMP##*.}        # this test's shared-memory segment, removed at exit
# libmongoc's per-process /dev/shm counter files outlive the processes the tests kill.
export MONGOC_DISABLE_SHM=1
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${PRISM_FCGI:=$top_builddir/fcgi-bin/prism.fcgi}"
: "${PRISMCTL:=$top_builddir/fcgi-bin/prismctl}"
: "${LIGHTTPD:=$(command -v lighttpd || echo /usr/sbin/lighttpd)}"
: "${APACHE2:=$(command -v apache2 || echo /usr/sbin/apache2)}"

t_diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
t_ok() { T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
t_fail() {
	T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $1"
	shift
	[ $# -gt 0 ] && t_diag "$@"
	return 0
}
# t_is NAME GOT EXPECTED
t_is() { if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "got:      $2" "expected: $3"; fi; }
# t_like NAME GOT EXTENDED-REGEX
t_like() { if printf '%s' "$2" | grep -Eq -- "$3"; then t_ok "$1"; else t_fail "$1" "got:      $2" "expected to match: $3"; fi; }
t_unlike() { if printf '%s' "$2" | grep -Eq -- "$3"; then t_fail "$1" "got:      $2" "expected NOT to match: $3"; else t_ok "$1"; fi; }
# t_run NAME CMD... : passes when CMD exits 0
t_run() { local name=$1; shift; local out; if out=$("$@" 2>&1); then t_ok "$name"; else t_fail "$name" "$out"; fi; }
t_skip_all() { echo "1..0 # SKIP $1"; T_SKIPPED=1; exit 0; }

t_track() { T_PIDS+=("$1"); }
t_log() { T_LOGS+=("$1"); }

t_cleanup() {
	local pid
	for pid in "${T_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${T_PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	# Workers of a killed supervisor, lighttpd's bin-path children: anything still using our scratch dir.
	pkill -KILL -f "$T_TMP" 2>/dev/null
	if [ "$T_FAILED" -gt 0 ]; then
		local f
		for f in "${T_LOGS[@]}"; do
			[ -f "$f" ] || continue
			echo "# --- $f (last 40 lines)"
			tail -n 40 "$f" | sed 's/^/# /'
		done
	fi
	rm -f "/dev/shm/$T_SHM"
	[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T_TMP"
}
# The plan comes last; failures are reported per test line, so the exit status stays 0 (an early exit
# or a crash still shows up, as a missing plan).
t_done() {
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ] || t_diag "$T_FAILED of $T_N failed"
}
trap 't_cleanup' EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (freeport.sh).
. "$(dirname "${BASH_SOURCE[0]}")/freeport.sh"
t_free_port() { free_loopback_port; }

# t_wait_for CMD... : retries CMD for up to 10 s.
t_wait_for() {
	for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# A fresh configuration with random secrets in $T_TMP/etc/prism.conf; extra "key = value" lines as args.
t_make_config() {
	mkdir -p "$T_TMP/etc" "$T_TMP/data" "$T_TMP/run"
	"$PRISMCTL" init --config "$T_TMP/etc/prism.conf" --data-dir "$T_TMP/data" --run-dir "$T_TMP/run" \
		--force >/dev/null || return 1
	{
		echo "diag_endpoints = true"
		echo "shutdown_grace = 10s"
		echo "shm_name = /$T_SHM"
		local line
		for line in "$@"; do echo "$line"; done
	} >>"$T_TMP/etc/prism.conf"
	T_CONF=$T_TMP/etc/prism.conf
}

# Starts the prism.fcgi daemon on $T_TMP/run/prism.sock; extra arguments are passed on.
# Sets T_PRISM_PID and T_PRISM_SOCK; its log is $T_TMP/prism.log.
t_start_prism() {
	T_PRISM_SOCK=$T_TMP/run/prism.sock
	"$PRISM_FCGI" --config "$T_CONF" --listen "unix:$T_PRISM_SOCK" "$@" >>"$T_TMP/prism.log" 2>&1 &
	T_PRISM_PID=$!
	t_track "$T_PRISM_PID"
	t_log "$T_TMP/prism.log"
	# Up when this process says so (a socket file alone may be a stale one), down when it has exited.
	local i
	for i in $(seq 1 100); do
		grep -q "\[$T_PRISM_PID\] info: prism.fcgi .* listening on" "$T_TMP/prism.log" && return 0
		kill -0 "$T_PRISM_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# The worker pids of the daemon.
t_prism_workers() { pgrep -P "$T_PRISM_PID" | sort; }

# Starts lighttpd from one of the shipped examples (daemon or binpath) on a free port, trying another port
# when a parallel test took the chosen one first.  Sets T_PORT, T_BASE (http://127.0.0.1:PORT) and
# T_LIGHTTPD_PID.
t_start_lighttpd() {
	local try
	for try in 1 2 3; do
		t_start_lighttpd_once "$1" && return 0
		kill "$T_LIGHTTPD_PID" 2>/dev/null
		wait "$T_LIGHTTPD_PID" 2>/dev/null
	done
	return 1
}
t_start_lighttpd_once() {
	local mode=$1 src
	src=$top_builddir/conf-examples/lighttpd-$mode.conf
	[ -f "$src" ] || src=$top_srcdir/conf-examples/lighttpd-$mode.conf
	T_PORT=$(t_free_port)
	mkdir -p "$T_TMP/htdocs" "$T_TMP/run"
	cp -r "$top_srcdir/htdocs/." "$T_TMP/htdocs/"
	sed -e "s|^server.port .*|server.port = $T_PORT|" \
	    -e "s|^var.prism_socket .*|var.prism_socket = \"$T_TMP/run/prism.sock\"|" \
	    -e "s|^var.prism_htdocs .*|var.prism_htdocs = \"$T_TMP/htdocs\"|" \
	    -e "s|^var.prism_statedir .*|var.prism_statedir = \"$T_TMP/data\"|" \
	    -e "s|^var.prism_bin .*|var.prism_bin = \"$PRISM_FCGI\"|" \
	    -e "s|^var.prism_conf .*|var.prism_conf = \"$T_CONF\"|" \
	    -e "s|^var.prism_rundir .*|var.prism_rundir = \"$T_TMP/run\"|" \
	    -e "s|^var.prism_procs .*|var.prism_procs = ${T_PROCS:-2}|" \
	    -e "s|^server.errorlog .*|server.errorlog = \"$T_TMP/lighttpd-error.log\"|" \
	    -e "s|^server.breakagelog .*|server.breakagelog = \"$T_TMP/prism.log\"|" \
	    -e "s|^server.pid-file .*|server.pid-file = \"$T_TMP/lighttpd.pid\"|" \
	    "$src" >"$T_TMP/lighttpd.conf"
	t_log "$T_TMP/lighttpd-error.log"
	t_log "$T_TMP/prism.log"
	"$LIGHTTPD" -D -f "$T_TMP/lighttpd.conf" >>"$T_TMP/lighttpd-error.log" 2>&1 &
	T_LIGHTTPD_PID=$!
	t_track "$T_LIGHTTPD_PID"
	T_BASE=http://127.0.0.1:$T_PORT
	local i
	for i in $(seq 1 100); do
		# Up when prism.fcgi answers through it at all (a 503 while the store is down counts).
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$T_BASE/health")" != 000 ] && return 0
		kill -0 "$T_LIGHTTPD_PID" 2>/dev/null || return 1     # e.g. the port was taken meanwhile
		sleep 0.1
	done
	return 1
}

# curl helpers: t_get URL → "STATUS BODY" is split into T_STATUS, T_BODY, T_HEADERS (file).
t_http() {
	T_HEADERS=$T_TMP/last-headers
	local out
	out=$(curl -sS -o "$T_TMP/last-body" -D "$T_HEADERS" -w '%{http_code}' "$@" 2>"$T_TMP/last-curl-err")
	T_STATUS=$out
	T_BODY=$(cat "$T_TMP/last-body" 2>/dev/null)
}
# The value of a response header of the last t_http (case-insensitive name).
t_header() { grep -i "^$1:" "$T_HEADERS" | head -n1 | sed 's/^[^:]*: *//' | tr -d '\r'; }

# Requires commands; skips the whole script (exit 77 semantics through TAP) when one is missing.
t_require() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "$c" ]; then t_skip_all "$c is not installed"; fi
	done
}

# Reads an SSE stream and prints "MILLISECONDS DATA" for every data: line as it arrives.
t_sse_times() {
	curl -sN --max-time 30 "$@" | while IFS= read -r line; do
		case $line in data:*) echo "$(date +%s%3N) ${line#data: }" ;; esac
	done
}

# Asserts that the events of an SSE stream arrived one by one: N events, first-to-last spread of at least
# MIN_SPREAD ms, and the first event well before the last (a buffering server delivers them together).
# t_sse_incremental NAME N MIN_SPREAD URL
t_sse_incremental() {
	local name=$1 n=$2 min=$3 url=$4 times count first last
	times=$(t_sse_times "$url")
	count=$(printf '%s\n' "$times" | grep -c '"seq"')
	first=$(printf '%s\n' "$times" | grep '"seq"' | head -n1 | cut -d' ' -f1)
	last=$(printf '%s\n' "$times" | grep '"seq"' | tail -n1 | cut -d' ' -f1)
	if [ "$count" -eq "$n" ] && [ -n "$first" ] && [ $((last - first)) -ge "$min" ]; then
		t_ok "$name ($count events over $((last - first)) ms)"
	else
		t_fail "$name" "received $count of $n events; arrival times:" "$times"
	fi
	t_like "$name: stream ends with [DONE]" "$(printf '%s\n' "$times" | tail -n1)" '\[DONE\]$'
}

# JSON field extraction without extra dependencies: t_json_get JSON PATH (python-free, via node or jq).
t_json() {
	node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{let v=JSON.parse(d);for(const k of process.argv[1].split(".").filter(Boolean))v=v==null?undefined:v[k];process.stdout.write(v===undefined?"<undefined>":typeof v==="string"?v:JSON.stringify(v))})' "$1"
}

# FerretDB, the MongoDB-wire server of the tests (built by tools/install-deps --test).
FERRETDB=${FERRETDB:-$(command -v ferretdb || echo "$(go env GOPATH 2>/dev/null)/bin/ferretdb")}
# start_ferret PORT: FerretDB on 127.0.0.1:PORT, data in $T_TMP/ferret (kept across restarts).  Sets
# T_FERRET_PID.  stop_ferret stops it.
start_ferret() {
	mkdir -p "$T_TMP/ferret"
	"$FERRETDB" --handler=sqlite --sqlite-url="file:$T_TMP/ferret/" --listen-addr="127.0.0.1:$1" \
		--telemetry=disable --log-level=warn --state-dir="$T_TMP/ferret" --debug-addr=- >>"$T_TMP/ferretdb.log" 2>&1 &
	T_FERRET_PID=$!
	t_track "$T_FERRET_PID"
	t_log "$T_TMP/ferretdb.log"
	t_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"
}
stop_ferret() {
	kill "$T_FERRET_PID" 2>/dev/null
	wait "$T_FERRET_PID" 2>/dev/null
}
