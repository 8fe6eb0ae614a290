#!/bin/bash
# gw_noloss.sh -- no request goes unaccounted: real chat requests through lighttpd while the MongoDB-wire
# store (FerretDB) is stopped and restarted; afterwards there is exactly one RequestLog per request and
# the daily totals match what the clients were answered (tokens of the successful answers, one error per
# failed one).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$FERRETDB" node curl "$LIGHTTPD"
NODE_PATH=${PRISM_NODE_MODULES:-$top_srcdir/tests/node/node_modules}
export NODE_PATH
[ -d "$NODE_PATH/mongodb" ] || t_skip_all "the mongodb npm package is not installed (tools/install-deps --test)"

PORT=$(t_free_port)
start_ferret "$PORT" || { t_fail "FerretDB started"; t_done; exit; }
URI=mongodb://127.0.0.1:$PORT/prism_noloss
adm_start "mongo_uri = $URI" "store_timeout = 1s" "ratelimit_gateway = 0" "ratelimit_admin = 0" ||
	{ t_fail "started with the MongoDB store"; t_done; exit; }
TOKEN=$ADM_TOKEN

node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/up.port" --key up-key-123 >"$T_TMP/up.log" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/up.port"
api POST /api/prism/admin/providers "{\"name\":\"Fake\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"http://127.0.0.1:$(cat "$T_TMP/up.port")\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"up-key-123\"}},\"discoveredModels\":[{\"id\":\"fake-echo\"}]}"
t_is "provider created" "$T_STATUS" 201
PID=$(jget _id)
api POST /api/prism/admin/tenants "{\"slug\":\"noloss\",\"name\":\"No loss\",\"providerIds\":[\"$PID\"]}"
t_is "tenant created" "$T_STATUS" 201
TID=$(jget _id)
KEY=$(jget apiKey)

# One request; its status and answer body are kept for the comparison.
N=0
chat() {
	N=$((N + 1))
	curl -s -o "$T_TMP/answer.$N" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' \
		--data "{\"model\":\"fake-echo\",\"messages\":[{\"role\":\"user\",\"content\":\"request number $N of the no-loss test\"}]}" \
		"$T_BASE/api/noloss/v1/chat/completions" >>"$T_TMP/codes"
}
: >"$T_TMP/codes"
for i in $(seq 1 20); do chat; done
stop_ferret
t_diag "FerretDB stopped after request 20"
for i in $(seq 1 20); do chat; done
start_ferret "$PORT" || t_fail "FerretDB restarted"
t_diag "FerretDB back after request 40"
for i in $(seq 1 20); do chat; done
t_is "60 requests sent" "$N" 60
t_like "the first ones were answered" "$(head -n 20 "$T_TMP/codes" | sort -u | tr '\n' ' ')" '^200 $'
t_like "with the store down, requests are still answered (tenant and providers cached by the process)" \
	"$(sed -n 21,40p "$T_TMP/codes" | sort -u | tr '\n' ' ')" '^200 $'

# What the clients got: answered requests and the tokens of the successful answers.
node -e '
const fs = require("fs");
let ok = 0, fail = 0, pin = 0, pout = 0;
const codes = fs.readFileSync(process.argv[1] + "/codes", "utf8").trim().split("\n");
codes.forEach((c, i) => {
	if (c !== "200") { fail++; return; }
	const u = JSON.parse(fs.readFileSync(process.argv[1] + "/answer." + (i + 1), "utf8")).usage;
	ok++; pin += u.prompt_tokens; pout += u.completion_tokens;
});
console.log(`requests=${ok + fail} errors=${fail} in=${pin} out=${pout}`);' "$T_TMP" >"$T_TMP/expected"
t_diag "clients saw: $(cat "$T_TMP/expected")"

# The store's view, polled until the writers have replayed their spools.
store_view() {
	node -e '
const { MongoClient, ObjectId } = require("mongodb");
(async () => {
	const c = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 3000 });
	await c.connect();
	const db = c.db(), t = new ObjectId(process.argv[2]);
	const logs = await db.collection("requestlogs").countDocuments({ tenantId: t });
	const s = { requests: 0, errorCount: 0, inputTokens: 0, outputTokens: 0 };
	for (const d of await db.collection("dailystats").find({ tenantId: t }).toArray())
		for (const k in s) s[k] += d[k] || 0;
	console.log(`logs=${logs} requests=${s.requests} errors=${s.errorCount} in=${s.inputTokens} out=${s.outputTokens}`);
	await c.close();
})().catch(e => { console.log("error " + e.message); process.exit(0); });' "$URI" "$TID" 2>/dev/null
}
want="logs=60 $(cat "$T_TMP/expected")"
for _ in $(seq 1 120); do
	got=$(store_view)
	[ "$got" = "$want" ] && break
	sleep 0.5
done
t_is "exactly one RequestLog per request, daily totals match the answers" "$got" "$want"
t_done
