#!/bin/bash
# The MongoDB backend against a real MongoDB-wire server (FerretDB 1.24 with its SQLite handler): the
# store contract suite, a database written the way the original program writes it, and a server that is
# down at start or goes away.
. "$(dirname "$0")/lib.sh"
t_require "$FERRETDB" node

PORT=$(t_free_port)
start_ferret "$PORT" || { t_fail "FerretDB started"; t_done; exit; }
t_ok "FerretDB listening on 127.0.0.1:$PORT"
URI=mongodb://127.0.0.1:$PORT

# 1. The store contract, unchanged, against MongoDB.
CK_TAP_LOG_FILE_NAME="$T_TMP/contract.tap" CK_VERBOSITY=silent STORE_BACKEND=mongodb PRISM_TEST_MONGO_URI=$URI \
	CK_DEFAULT_TIMEOUT=120 "$top_builddir/tests/unit/check_store" >"$T_TMP/contract.out" 2>&1
t_log "$T_TMP/contract.out"
if [ -s "$T_TMP/contract.tap" ]; then
	while IFS= read -r line; do
		case $line in
		"ok "*) t_ok "mongodb contract: $(printf '%s' "$line" | sed 's/^ok [0-9]* - //')" ;;
		"not ok "*) t_fail "mongodb contract: $(printf '%s' "$line" | sed 's/^not ok [0-9]* - //')" ;;
		esac
	done <"$T_TMP/contract.tap"
else
	t_fail "mongodb contract suite ran" "$(cat "$T_TMP/contract.out")"
fi

# 2. A database as the original writes it (official Node.js driver: ObjectId, Date, Int32, Double, __v).
# The npm packages of tests/node (tools/install-deps --test); a release tarball's test run gets their
# location from the source tree through PRISM_NODE_MODULES.
NODE_PATH=${PRISM_NODE_MODULES:-$top_srcdir/tests/node/node_modules}
export NODE_PATH
[ -d "$NODE_PATH/mongodb" ] || t_fail "the mongodb npm package is installed (tools/install-deps --test)" "missing in $NODE_PATH"
t_run "original-shaped documents loaded" node "$top_srcdir/tests/fixtures/original-db.js" load "$URI/openmodelprism"
t_make_config "mongo_uri = $URI/openmodelprism"
t_log "$T_TMP/dump.err"     # prismctl's diagnostics go to stderr, kept apart from the JSON it prints
t_run "prismctl migrate creates the indexes" "$PRISMCTL" migrate --config "$T_CONF"
tenants=$("$PRISMCTL" dump --config "$T_CONF" tenants 2>>"$T_TMP/dump.err")
t_is "tenant read back" "$(printf '%s' "$tenants" | t_json 0.slug)" team-alpha
t_is "unicode name" "$(printf '%s' "$tenants" | t_json 0.name)" "Team Alpha — ünïcödé"
t_is "ObjectId array as hex" "$(printf '%s' "$tenants" | t_json 0.providerIds.0)" 65a1b2c3d4e5f60718293a13
t_is "nested ObjectId as hex" "$(printf '%s' "$tenants" | t_json 0.routing.classifierProvider)" 65a1b2c3d4e5f60718293a13
t_is "Date as ISO-8601" "$(printf '%s' "$tenants" | t_json 0.createdAt)" 2026-01-02T03:04:05.678Z
t_is "Date inside an array of subdocuments" "$(printf '%s' "$tenants" | t_json 0.apiKeys.0.expiresAt)" 2030-01-01T00:00:00.000Z
t_is "Int32 as a number" "$(printf '%s' "$tenants" | t_json 0.rateLimit.requestsPerMinute)" 60
t_is "Mongoose version key" "$(printf '%s' "$tenants" | t_json 0.__v)" 0
providers=$("$PRISMCTL" dump --config "$T_CONF" providers 2>>"$T_TMP/dump.err")
t_like "enc: credential read as stored" "$(printf '%s' "$providers" | t_json 0.config.auth.apiKey)" '^enc:[0-9a-f]{32}:[0-9a-f]{32}:[0-9a-f]+$'
t_is "Double as a number" "$(printf '%s' "$providers" | t_json 0.discoveredModels.0.inputPer1M)" 2.5
users=$("$PRISMCTL" dump --config "$T_CONF" users 2>>"$T_TMP/dump.err")
t_is "user read back" "$(printf '%s' "$users" | t_json 0.username)" alice
t_is "user tenants as hex" "$(printf '%s' "$users" | t_json 0.tenants.0)" 65a1b2c3d4e5f60718293a12
logs=$("$PRISMCTL" dump --config "$T_CONF" requestlogs 2>>"$T_TMP/dump.err")
t_is "request log tenantId" "$(printf '%s' "$logs" | t_json 0.tenantId)" 65a1b2c3d4e5f60718293a12
t_is "request log tokens" "$(printf '%s' "$logs" | t_json 0.inputTokens)" 1200
stats=$("$PRISMCTL" dump --config "$T_CONF" dailystats 2>>"$T_TMP/dump.err")
t_is "daily stat read back" "$(printf '%s' "$stats" | t_json 0.requests)" 7

# Our writes keep the original's BSON types, so the original program can keep using the database.
printf '%s' "$tenants" | node -e '
let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{const t=JSON.parse(d)[0];
t.name="Team Alpha — renamed by prism";
process.stdout.write(JSON.stringify({_meta:{type:"model-prism-settings-export"},tenants:[t]}))})' >"$T_TMP/rename.json"
t_run "prismctl import updates the tenant" "$PRISMCTL" import --config "$T_CONF" "$T_TMP/rename.json"
out=$(node "$top_srcdir/tests/fixtures/original-db.js" check "$URI/openmodelprism" 2>&1)
t_is "BSON types intact for the original program" "$out" ok

# 3. The server goes away: operations fail fast with the store error, within the configured timeout.
printf 'store_timeout = 1s\n' >>"$T_CONF"
stop_ferret
start=$(date +%s%3N)
out=$("$PRISMCTL" dump --config "$T_CONF" tenants 2>&1); rc=$?
took=$(( $(date +%s%3N) - start ))
t_is "store down: dump exits 1" "$rc" 1
if [ "$took" -lt 4000 ]; then t_ok "store down: failed within the timeout ($took ms)"; else t_fail "store down: fast failure" "took $took ms"; fi
t_unlike "store down: no password or URI credentials in the message" "$out" 'password'

# 4. prism.fcgi starts while MongoDB is down, answers /health 503, and recovers when it comes up.
sed -i '/^diag_endpoints/d' "$T_CONF"
t_start_prism --processes 1 --threads 2 || t_fail "daemon started with the store down"
t_start_lighttpd daemon >/dev/null 2>&1
code=$(curl -s -o "$T_TMP/h.json" -w '%{http_code}' "http://127.0.0.1:$T_PORT/health")
t_is "health 503 while the store is down" "$code" 503
t_is "health says db_not_ready" "$(t_json status <"$T_TMP/h.json")" db_not_ready
# The worker has seen the outage (its first attempt timed out) before the server comes back.
t_wait_for grep -q 'store unavailable (attempt 1' "$T_TMP/prism.log"
t_like "the failed attempt was logged" "$(cat "$T_TMP/prism.log")" 'store unavailable \(attempt 1'
start_ferret "$PORT" || t_fail "FerretDB restarted"
ok=0
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$T_PORT/health")" = 200 ] && { ok=1; break; }
	sleep 0.2
done
t_is "health 200 once the store is back" "$ok" 1
t_like "and the reconnection" "$(cat "$T_TMP/prism.log")" 'store: connected after [0-9]+ attempts'
t_done
