#!/bin/bash
# analytics_spool.sh -- no analytics record is lost, against a real MongoDB-wire server (FerretDB):
#  1. records submitted at a steady pace while the server is stopped for a few seconds and restarted all
#     arrive, once, and the daily aggregates add up to what was submitted;
#  2. a daemon stopped (SIGTERM) with records queued while the server is down leaves them in its spool,
#     and the next start replays them.
# Records are submitted through POST /_diag/analytics (diag_endpoints = true), which queues one synthetic
# RequestLog with the process's analytics writer.
. "$(dirname "$0")/lib.sh"
t_require "$FERRETDB" node curl "$LIGHTTPD"
NODE_PATH=${PRISM_NODE_MODULES:-$top_srcdir/tests/node/node_modules}
export NODE_PATH
[ -d "$NODE_PATH/mongodb" ] || t_skip_all "the mongodb npm package is not installed (tools/install-deps --test)"

PORT=$(t_free_port)
start_ferret "$PORT" || { t_fail "FerretDB started"; t_done; exit; }
URI=mongodb://127.0.0.1:$PORT/prism_analytics
TENANT=65a1b2c3d4e5f60718293aa1
SPOOL=$T_TMP/data/spool

t_make_config "mongo_uri = $URI" "store_timeout = 1s"
t_start_prism --processes 2 --threads 4 || t_fail "daemon started"
t_start_lighttpd daemon || t_fail "lighttpd started"
ok=0
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$T_BASE/health")" = 200 ] && { ok=1; break; }
	sleep 0.1
done
t_is "store connected" "$ok" 1

# What was submitted, summed: records, input and output tokens, cost in micro-dollars.
N_SENT=0 IN_SENT=0 OUT_SENT=0 COST_SENT=0 BAD=0
submit() {
	local i=$1 in=$((100 + $1)) out=$(($1 % 7)) micro=$((($1 % 9 + 1) * 1000)) code
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data "{\"tenantId\":\"$TENANT\",\"routedModel\":\"m$((i % 3))\",\"inputTokens\":$in,\"outputTokens\":$out,\"cost\":0.00$((i % 9 + 1))}" \
		"$T_BASE/_diag/analytics")
	if [ "$code" = 202 ]; then
		N_SENT=$((N_SENT + 1)) IN_SENT=$((IN_SENT + in)) OUT_SENT=$((OUT_SENT + out)) COST_SENT=$((COST_SENT + micro))
	else
		BAD=$((BAD + 1))
	fi
}

# The store's view: requestlogs of the tenant and the sums of its dailystats (the official driver).
store_view() {
	node -e '
const { MongoClient, ObjectId } = require("mongodb");
(async () => {
	const c = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 3000 });
	await c.connect();
	const db = c.db(), t = new ObjectId(process.argv[2]);
	const logs = await db.collection("requestlogs").countDocuments({ tenantId: t });
	const s = { requests: 0, inputTokens: 0, outputTokens: 0, actualCostUsd: 0 };
	for (const d of await db.collection("dailystats").find({ tenantId: t }).toArray())
		for (const k in s) s[k] += d[k] || 0;
	console.log(`logs=${logs} requests=${s.requests} in=${s.inputTokens} out=${s.outputTokens} cost=${Math.round(s.actualCostUsd * 1e6)}`);
	await c.close();
})().catch(e => { console.log("error " + e.message); process.exit(0); });' "$URI" "$TENANT" 2>/dev/null
}
expected() { echo "logs=$N_SENT requests=$N_SENT in=$IN_SENT out=$OUT_SENT cost=$COST_SENT"; }
# Waits up to 90 s until the store holds what was sent.
wait_store() {
	local want got
	want=$(expected)
	for _ in $(seq 1 180); do
		got=$(store_view)
		[ "$got" = "$want" ] && break
		sleep 0.5
	done
	printf '%s' "$got"
}
spool_lines() { cat "$SPOOL"/analytics-*.jsonl 2>/dev/null | wc -l | tr -d ' '; }
# The spool lines once the replays are over (a chunk's file is emptied just after its last insert).
spool_drained() {
	for _ in $(seq 1 50); do
		[ "$(spool_lines)" = 0 ] && break
		sleep 0.2
	done
	spool_lines
}

# 1. 200 records at a steady pace; the server is away for a few seconds in the middle.
for i in $(seq 1 200); do
	submit "$i"
	[ "$i" = 60 ] && { stop_ferret; t_diag "FerretDB stopped after record 60"; }
	[ "$i" = 150 ] && { start_ferret "$PORT" || t_fail "FerretDB restarted"; t_diag "FerretDB back after record 150"; }
	sleep 0.03
done
t_is "200 records accepted (202)" "$N_SENT/$BAD" "200/0"
t_like "the outage went to the spool" "$(cat "$T_TMP/prism.log")" 'analytics: the store is unavailable'
t_is "every record arrived once, the daily sums are exact" "$(wait_store)" "$(expected)"
t_like "the spool was replayed" "$(cat "$T_TMP/prism.log")" 'analytics: the store answers again'
t_is "the spools are empty again" "$(spool_drained)" 0

# 2. Records queued while the server is down, then a clean stop: nothing is lost.
stop_ferret
for i in $(seq 201 230); do submit "$i"; done
t_is "30 more records accepted" "$N_SENT/$BAD" "230/0"
kill -TERM "$T_PRISM_PID"
wait "$T_PRISM_PID" 2>/dev/null
t_is "daemon stopped" "$(kill -0 "$T_PRISM_PID" 2>/dev/null && echo running || echo stopped)" stopped
t_is "the 30 records are in the spool" "$(spool_lines)" 30
left=$(ls "$SPOOL"/analytics-*.jsonl 2>/dev/null)
start_ferret "$PORT" || t_fail "FerretDB restarted"
t_start_prism --processes 2 --threads 4 || t_fail "daemon restarted"
t_is "after the restart they arrived, once, with their aggregates" "$(wait_store)" "$(expected)"
t_like "the spool of the stopped worker was adopted" "$(cat "$T_TMP/prism.log")" 'analytics: adopted .*analytics-[0-9-]+\.jsonl'
t_is "and removed" "$(spool_drained)" 0
gone=1
for f in $left; do [ -e "$f" ] && gone=0; done
t_is "the stopped workers' spool files are deleted" "$gone" 1
t_done
