#!/bin/bash
# Signals: SIGTERM/SIGINT drain in-flight requests and exit 0; the grace period bounds the wait; the
# workers of a killed supervisor stop by themselves.
. "$(dirname "$0")/lib.sh"
t_require "$LIGHTTPD" curl node

t_make_config
t_start_prism --processes 2 --threads 2 || { t_fail "daemon started"; t_done; exit; }
t_start_lighttpd daemon || { t_fail "lighttpd started"; t_done; exit; }

# 1. SIGTERM while a request is in flight: it completes, then the daemon exits 0 and removes its socket.
curl -s -o "$T_TMP/slow.out" -w '%{http_code}' "$T_BASE/_diag/sleep?ms=2000" >"$T_TMP/slow.code" &
slow=$!
sleep 0.5
workers=$(t_prism_workers)
start=$(date +%s%3N)
kill -TERM "$T_PRISM_PID"
wait "$slow"
t_is "in-flight request completed after SIGTERM" "$(cat "$T_TMP/slow.code")" 200
t_is "with its full answer" "$(t_json slept_ms <"$T_TMP/slow.out")" 2000
wait "$T_PRISM_PID"
rc=$?
t_is "daemon exit status 0" "$rc" 0
t_ok "daemon stopped $(( $(date +%s%3N) - start )) ms after SIGTERM"
t_is "socket removed" "$(test -e "$T_PRISM_SOCK" && echo present || echo gone)" gone
left=0
for w in $workers; do kill -0 "$w" 2>/dev/null && left=$((left + 1)); done
t_is "no worker left behind" "$left" 0
t_like "drain was logged" "$(cat "$T_TMP/prism.log")" 'waiting for 1 in-flight request|finishing in-flight requests'
code=$(curl -s -o /dev/null -w '%{http_code}' "$T_BASE/health")
t_unlike "nothing answers for the stopped backend" "$code" '^200$'

# 2. The grace period bounds the wait for a request that would take too long.
sed -i "s/^shutdown_grace = .*/shutdown_grace = 1s/" "$T_CONF"
t_start_prism --processes 1 --threads 2 || t_fail "daemon restarted"
t_wait_for curl -sf -o /dev/null "$T_BASE/health"
curl -s -o /dev/null "$T_BASE/_diag/sleep?ms=20000" &
long=$!
sleep 0.5
start=$(date +%s%3N)
kill -TERM "$T_PRISM_PID"
wait "$T_PRISM_PID"
rc=$?
took=$(( $(date +%s%3N) - start ))
t_is "exit status 0 after the grace period" "$rc" 0
if [ "$took" -lt 5000 ]; then t_ok "stopped within the grace period ($took ms)"; else t_fail "stopped within the grace period" "took $took ms"; fi
t_like "the cut request was logged" "$(cat "$T_TMP/prism.log")" 'still running after the grace period'
kill "$long" 2>/dev/null

# 3. SIGINT behaves like SIGTERM.
t_start_prism --processes 1 --threads 2 || t_fail "daemon restarted"
t_wait_for curl -sf -o /dev/null "$T_BASE/health"
kill -INT "$T_PRISM_PID"
wait "$T_PRISM_PID"
t_is "SIGINT: exit status 0" "$?" 0

# 4. The supervisor dies with SIGKILL: its workers notice and stop instead of lingering as orphans.
t_start_prism --processes 2 --threads 2 || t_fail "daemon restarted"
t_wait_for curl -sf -o /dev/null "$T_BASE/health"
workers=$(t_prism_workers)
kill -KILL "$T_PRISM_PID"
wait "$T_PRISM_PID" 2>/dev/null
gone=1
for _ in $(seq 1 50); do
	gone=1
	for w in $workers; do kill -0 "$w" 2>/dev/null && gone=0; done
	[ "$gone" = 1 ] && break
	sleep 0.1
done
t_is "workers of a killed supervisor exit" "$gone" 1

# 5. A second daemon on a live socket refuses to start instead of stealing it.  (The killed daemon's socket
# may still be held for a moment by a worker that is finishing; start once it is free.)
for _ in 1 2 3 4 5; do t_start_prism --processes 1 --threads 1 && break; sleep 0.5; done
t_wait_for curl -sf -o /dev/null "$T_BASE/health" || t_fail "daemon restarted"
out=$(timeout 10 "$PRISM_FCGI" --config "$T_CONF" --listen "unix:$T_PRISM_SOCK" 2>&1); rc=$?
t_is "second daemon on the same socket exits 1" "$rc" 1
t_like "and says why" "$out" 'is in use by another running process'
t_http "$T_BASE/health"
t_is "the first one still serves" "$T_STATUS" 200

# 6. SIGTERM while a large answer waits for a slow reader (the thread blocked writing to the web server):
# the answer is finished whole, not cut short by the signals that wake idle threads.
kill -TERM "$T_PRISM_PID"
wait "$T_PRISM_PID"
echo "max_body_size = 16m" >>"$T_CONF"
sed -i "s/^shutdown_grace = .*/shutdown_grace = 20s/" "$T_CONF"
t_start_prism --processes 1 --threads 2 || t_fail "daemon restarted"
t_wait_for curl -sf -o /dev/null "$T_BASE/health"
BIG=$((6 * 1024 * 1024))
rm -f "$T_TMP/slow.started"
node -e '
const http = require("http");
const [url, size, started] = process.argv.slice(1);
const body = JSON.stringify({ blob: "x".repeat(Number(size)) });
const req = http.request(url, { method: "POST", headers: { "Content-Type": "application/json",
	"Content-Length": Buffer.byteLength(body) } }, (res) => {
	const parts = [];
	let first = true;
	res.on("data", (c) => {
		parts.push(c);
		if (first) { first = false; require("fs").writeFileSync(started, ""); }
		res.pause();
		setTimeout(() => res.resume(), 40);   /* about 1.5 MB/s: the server waits on this reader */
	});
	res.on("end", () => {
		let n = -1;
		try { n = JSON.parse(Buffer.concat(parts).toString()).body.blob.length; } catch (e) {}
		console.log(res.statusCode + " " + n);
	});
	res.on("error", (e) => console.log("error " + e.message));
});
req.on("error", (e) => console.log("error " + e.message));
req.end(body);
' "$T_BASE/_diag/echo" "$BIG" "$T_TMP/slow.started" >"$T_TMP/slow.result" 2>&1 &
reader=$!
t_wait_for test -e "$T_TMP/slow.started"
kill -TERM "$T_PRISM_PID"
wait "$reader"
t_is "SIGTERM during a large answer to a slow reader: the answer arrives whole" "$(cat "$T_TMP/slow.result")" \
	"200 $BIG"
wait "$T_PRISM_PID"
t_is "and the daemon then exits 0" "$?" 0

# 7. SIGTERM just after a thread accepted a connection whose request has not arrived yet (libfcgi waits
# for its first bytes): the request that then comes is answered.  A stopping worker used to signal its
# waiting threads, and the signal made libfcgi drop such a connection unanswered.  A client speaks
# FastCGI to the socket itself, so that it can wait between connecting and sending.
t_start_prism --processes 1 --threads 2 || t_fail "daemon restarted"
t_wait_for curl -sf -o /dev/null "$T_BASE/health"
curl -s -o /dev/null -w '%{http_code}' "$T_BASE/_diag/sleep?ms=1500" >"$T_TMP/slow.code" &
slow=$!
sleep 0.3      # in flight first: libfcgi holds the accept while it waits for the raw client's bytes
rm -f "$T_TMP/raw.connected"
node -e '
const net = require("net"), fs = require("fs");
const [sock, connected] = process.argv.slice(1);
function rec(type, body) {
	const h = Buffer.from([1, type, 0, 1, body.length >> 8, body.length & 255, 0, 0]);
	return Buffer.concat([h, body]);
}
function pair(n, v) {
	return Buffer.concat([Buffer.from([n.length, v.length]), Buffer.from(n), Buffer.from(v)]);
}
const params = Buffer.concat([["REQUEST_METHOD", "GET"], ["REQUEST_URI", "/health"], ["QUERY_STRING", ""],
	["SERVER_PROTOCOL", "HTTP/1.1"], ["REMOTE_ADDR", "127.0.0.1"], ["GATEWAY_INTERFACE", "CGI/1.1"]]
	.map(([n, v]) => pair(n, v)));
const out = [];
const c = net.connect(sock, () => {
	fs.writeFileSync(connected, "");
	setTimeout(() => c.write(Buffer.concat([rec(1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])), rec(4, params),
		rec(4, Buffer.alloc(0)), rec(5, Buffer.alloc(0))])), 700);
});
c.on("data", (d) => out.push(d));
c.on("error", (e) => console.log("error " + e.message));
c.on("close", () => {
	const all = Buffer.concat(out);
	let text = "", ended = false;
	for (let i = 0; i + 8 <= all.length;) {
		const type = all[i + 1], len = all.readUInt16BE(i + 4), pad = all[i + 6];
		if (type === 6) text += all.subarray(i + 8, i + 8 + len).toString();
		if (type === 3) ended = true;
		i += 8 + len + pad;
	}
	const m = /^Status: (\d+)/m.exec(text);
	console.log(ended && m ? m[1] : "closed without an answer");
});
' "$T_PRISM_SOCK" "$T_TMP/raw.connected" >"$T_TMP/raw.result" 2>&1 &
raw=$!
t_wait_for test -e "$T_TMP/raw.connected"
sleep 0.2
kill -TERM "$T_PRISM_PID"
wait "$raw"
t_is "SIGTERM while an accepted connection's request is on its way: it is answered" \
	"$(cat "$T_TMP/raw.result")" 200
wait "$slow"
t_is "and the request in flight too" "$(cat "$T_TMP/slow.code")" 200
wait "$T_PRISM_PID"
t_is "then the daemon exits 0" "$?" 0
t_done
