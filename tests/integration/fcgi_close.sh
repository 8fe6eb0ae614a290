#!/bin/bash
# fcgi_close.sh -- how a worker ends a FastCGI connection on its unix socket.  When the web server's input of
# the request has ended (the empty FCGI_STDIN record that closes it), the worker closes the connection at
# once after the answer: nothing unread can be lost.  A handler reads exactly CONTENT_LENGTH bytes, so that
# record is read at the end of the request.  When it has not come after such a body (a peer that breaks the
# protocol or is slow), the worker must neither wait for it before answering nor close while input may
# still come: it answers, shuts its side down and lets the peer close first (libfcgi's way).
# A client speaks FastCGI to the socket itself, so that it can withhold the record and see how the worker
# closed: a write after the answer fails with EPIPE only when the worker's socket is closed, not merely
# shut down for writing.
. "$(dirname "$0")/lib.sh"
t_require node

t_make_config || { t_fail "config"; t_done; exit; }
t_start_prism --processes 1 --threads 4 || { t_fail "daemon started"; t_done; exit; }

# fcgi METHOD URI BODY-BYTES END(yes|no): prints "STATUS BODY-BYTES-ECHOED closed|open" or what went wrong.
fcgi() {
	node -e '
const net = require("net");
const [sock, method, uri, size, end] = process.argv.slice(1);
function rec(type, body) {
	const out = [];
	for (let i = 0; i < body.length || (i === 0 && body.length === 0); i += 65535) {
		const part = body.subarray(i, i + 65535);
		out.push(Buffer.from([1, type, 0, 1, part.length >> 8, part.length & 255, 0, 0]), part);
		if (body.length === 0) break;
	}
	return Buffer.concat(out);
}
function pair(n, v) {
	const len = (x) => x.length < 128 ? Buffer.from([x.length]) :
		Buffer.from([0x80 | (x.length >> 24), (x.length >> 16) & 255, (x.length >> 8) & 255, x.length & 255]);
	return Buffer.concat([len(n), len(v), Buffer.from(n), Buffer.from(v)]);
}
const body = Number(size) > 0 ? Buffer.from(JSON.stringify({ blob: "x".repeat(Number(size)) })) : Buffer.alloc(0);
const env = [["REQUEST_METHOD", method], ["REQUEST_URI", uri], ["QUERY_STRING", ""],
	["SERVER_PROTOCOL", "HTTP/1.1"], ["REMOTE_ADDR", "127.0.0.1"], ["GATEWAY_INTERFACE", "CGI/1.1"]];
if (body.length)
	env.push(["CONTENT_LENGTH", String(body.length)], ["CONTENT_TYPE", "application/json"]);
const params = Buffer.concat(env.map(([n, v]) => pair(n, v)));
const parts = [rec(1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])), rec(4, params), rec(4, Buffer.alloc(0))];
if (body.length)
	parts.push(rec(5, body));
if (end === "yes")
	parts.push(rec(5, Buffer.alloc(0)));
const got = [];
const c = net.connect({ path: sock, allowHalfOpen: true }, () => c.write(Buffer.concat(parts)));
const timer = setTimeout(() => { console.log("no answer within 5 s"); process.exit(0); }, 5000);
c.on("data", (d) => got.push(d));
c.on("error", () => {});
c.on("end", () => {
	clearTimeout(timer);
	const all = Buffer.concat(got);
	let text = "", ended = false;
	for (let i = 0; i + 8 <= all.length;) {
		const type = all[i + 1], len = all.readUInt16BE(i + 4), pad = all[i + 6];
		if (type === 6) text += all.subarray(i + 8, i + 8 + len).toString("latin1");
		if (type === 3) ended = true;
		i += 8 + len + pad;
	}
	const m = /^Status: (\d+)/m.exec(text);
	let echoed = 0;
	const json = text.indexOf("\r\n\r\n");
	try { echoed = JSON.parse(text.slice(json + 4)).body.blob.length; } catch (e) {}
	const answer = ended && m ? m[1] + " " + echoed : "ended without an answer";
	/* After the worker closed its side: is its socket closed, or only shut down for writing? */
	setTimeout(() => c.write(Buffer.from([1, 5, 0, 1, 0, 0, 0, 0]), (err) => {
		console.log(answer + " " + (err && err.code === "EPIPE" ? "closed" : err ? err.code : "open"));
		c.destroy();
	}), 100);
});
' "$T_PRISM_SOCK" "$@"
}

t_is "GET, input ended: answered, the socket closed at once" "$(fcgi GET /health 0 yes)" "200 0 closed"
t_is "POST with CONTENT_LENGTH, input ended: answered, the socket closed at once" \
	"$(fcgi POST /_diag/echo 100 yes)" "200 100 closed"
# A body over libfcgi's 8 KB buffer: the record that ends the input is read from the socket itself.
t_is "a 200 KB body, input ended: answered, the socket closed at once" \
	"$(fcgi POST /_diag/echo 200000 yes)" "200 200000 closed"

# The record withheld: the answer is not held back waiting for it, and the worker does not close under it.
t0=$(date +%s%3N)
out=$(fcgi POST /_diag/echo 100 no)
ms=$(( $(date +%s%3N) - t0 ))
t_is "input not ended: still answered, the socket only shut down for writing" "$out" "200 100 open"
t_like "and at once (${ms} ms), not after a wait for the record" "$ms" '^[0-9]{1,3}$|^1[0-9]{3}$'

# The worker is not stuck on any of them.
t_is "the worker still answers" "$(fcgi GET /health 0 yes)" "200 0 closed"
t_done
