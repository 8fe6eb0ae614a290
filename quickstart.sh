#!/bin/sh
# quickstart.sh -- from a fresh clone to a running gateway on http://127.0.0.1:8080 in one command.
#
#   ./quickstart.sh          install dependencies, build, initialise ./quickstart/, start lighttpd + prism.fcgi
#   ./quickstart.sh stop     stop both
#
# Everything lives under ./quickstart/ (configuration with fresh secrets, SQLite data, sockets, logs);
# nothing is installed system-wide except the Debian packages.  PORT=8081 ./quickstart.sh picks another port.
set -e
cd "$(dirname "$0")"
top=$(pwd)
qs=$top/quickstart
port=${PORT:-8080}

stop() {
	for p in "$qs/run/lighttpd.pid" "$qs/run/prism.pid"; do
		pid=$(cat "$p" 2>/dev/null) || continue
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		fi
		rm -f "$p"
	done
}

if [ "${1:-}" = stop ]; then
	stop
	echo "stopped"
	exit 0
fi

tools/install-deps
if [ ! -x configure ]; then ./autogen.sh >/dev/null; fi
if [ ! -f Makefile ]; then ./configure --quiet; fi
make -j"$(nproc)" >/dev/null
echo "built prism.fcgi and prismctl"

mkdir -p "$qs/etc" "$qs/data" "$qs/run" "$qs/log" "$qs/htdocs"
if [ ! -f "$qs/etc/prism.conf" ]; then
	fcgi-bin/prismctl init --config "$qs/etc/prism.conf" --data-dir "$qs/data" --run-dir "$qs/run" \
		--listen "unix:$qs/run/prism.sock" >/dev/null
	printf 'pid_file = %s\nlog_target = file\nlog_file = %s\n' "$qs/run/prism.pid" "$qs/log/prism.log" \
		>>"$qs/etc/prism.conf"
fi
fcgi-bin/prismctl check-config --config "$qs/etc/prism.conf" >/dev/null

stop
cp -r htdocs/. "$qs/htdocs/"
sed -e "s|^server.port .*|server.port = $port|" \
    -e "s|^var.prism_socket .*|var.prism_socket = \"$qs/run/prism.sock\"|" \
    -e "s|^var.prism_htdocs .*|var.prism_htdocs = \"$qs/htdocs\"|" \
    -e "s|^var.prism_statedir .*|var.prism_statedir = \"$qs/data\"|" \
    -e "s|^server.errorlog .*|server.errorlog = \"$qs/log/lighttpd-error.log\"|" \
    -e "s|^server.pid-file .*|server.pid-file = \"$qs/run/lighttpd.pid\"|" \
    conf-examples/lighttpd-daemon.conf >"$qs/etc/lighttpd.conf"

# prism.fcgi runs as a daemon in the background; setsid keeps it alive after this shell exits.
setsid env MONGOC_DISABLE_SHM=1 fcgi-bin/prism.fcgi --config "$qs/etc/prism.conf" </dev/null >>"$qs/log/prism.log" 2>&1 &
i=0
while [ ! -S "$qs/run/prism.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$qs/run/prism.sock" ] || { echo "prism.fcgi did not start; see $qs/log/prism.log" >&2; exit 1; }
/usr/sbin/lighttpd -f "$qs/etc/lighttpd.conf"
i=0
until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "lighttpd did not answer; see $qs/log/lighttpd-error.log" >&2; exit 1; }
	sleep 0.1
done

cat <<EOT

Open Model Prism is running.
  admin UI          http://127.0.0.1:$port/
  OpenAI-style API  http://127.0.0.1:$port/v1   (tenants: http://127.0.0.1:$port/api/<tenant>/v1)
  health            http://127.0.0.1:$port/health
  configuration     $qs/etc/prism.conf
  logs              $qs/log/
First run: create the first admin and complete the setup (prism-api(7), section Setup):
  curl -s -X POST -H 'Content-Type: application/json' -d '{"username":"admin","password":"CHOOSE-ONE"}' \\
       http://127.0.0.1:$port/api/prism/setup/admin
  then log in (POST /api/prism/auth/login) and POST /api/prism/setup/complete with the token;
  the answer shows the default tenant's API key once.
Stop it with:       ./quickstart.sh stop
Run the tests with: tests/run.sh
EOT
