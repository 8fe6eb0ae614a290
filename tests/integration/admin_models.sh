#!/bin/bash
# admin_models.sh -- the model registry endpoints and the models.dev policy.
#
# OFFLINE proof: a fake models.dev (tests/fixtures/fake_modelsdev.js) logs every request it gets.  With
# offline = true and models_dev_url pointing at it, every path that could fetch is exercised and the fake must
# have received nothing; the daemon also runs under strace (connect calls of every process and thread), which
# must show no connection except to loopback, and none to the fake.  Then, with offline = false, the fake
# is fetched from (source "online", its data in lookups, and strace sees the connection: the check above can
# fail); with the URL pointing at a closed port, the bundled snapshot serves (source "snapshot").
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

SNAPSHOT=$top_srcdir/data/modelsdev.json
[ -f "$SNAPSHOT" ] || t_skip_all "no models.dev snapshot at $SNAPSHOT"
M=/api/prism/admin/models
FAKE_LOG=$T_TMP/fake-requests.log

jnode() { printf '%s' "$T_BODY" | node -e "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const b=JSON.parse(d);process.stdout.write(String(($1)(b)))})"; }

# --- the fake models.dev --------------------------------------------------------------------------------
node "$top_srcdir/tests/fixtures/fake_modelsdev.js" "$T_TMP/fake.port" "$FAKE_LOG" >>"$T_TMP/fake.out" 2>&1 &
FAKE_PID=$!
t_track "$FAKE_PID"
t_wait_for test -s "$T_TMP/fake.port" || { t_fail "fake models.dev started"; t_done; exit; }
FAKE_PORT=$(cat "$T_TMP/fake.port")
FAKE_URL=http://127.0.0.1:$FAKE_PORT/api.json
fake_requests() { local n; n=$(grep -c . "$FAKE_LOG" 2>/dev/null); echo "${n:-0}"; }
curl -s -o /dev/null "http://127.0.0.1:$FAKE_PORT/self-test"
t_is "the fake logs what it receives" "$(fake_requests)" 1
: >"$FAKE_LOG"

# --- the daemon, optionally under strace ----------------------------------------------------------------
# Replaces lib.sh's t_start_prism: with STRACE_LOG set, the daemon runs under strace -f (all processes and
# threads, connect(2) only); the daemon's own pid is strace's child.
STRACE=$(command -v strace || true)
# ptrace may be forbidden (some containers): then only the fake's request log is the proof.
if [ -n "$STRACE" ] && ! "$STRACE" -f -qq -e trace=connect -o /dev/null true >/dev/null 2>&1; then
	t_diag "strace cannot trace here; the connection checks are skipped"
	STRACE=
fi
t_start_prism() {
	T_PRISM_SOCK=$T_TMP/run/prism.sock
	if [ -n "${STRACE_LOG:-}" ]; then
		"$STRACE" -f -qq -e trace=connect -o "$STRACE_LOG" \
			"$PRISM_FCGI" --config "$T_CONF" --listen "unix:$T_PRISM_SOCK" "$@" >>"$T_TMP/prism.log" 2>&1 &
		STRACE_PID=$!
		t_track "$STRACE_PID"
		T_PRISM_PID=
		t_wait_for pgrep -P "$STRACE_PID" || return 1
		T_PRISM_PID=$(pgrep -P "$STRACE_PID" | head -n1)
	else
		"$PRISM_FCGI" --config "$T_CONF" --listen "unix:$T_PRISM_SOCK" "$@" >>"$T_TMP/prism.log" 2>&1 &
		T_PRISM_PID=$!
	fi
	t_track "$T_PRISM_PID"
	t_log "$T_TMP/prism.log"
	local i
	for i in $(seq 1 100); do
		grep -q "\[$T_PRISM_PID\] info: prism.fcgi .* listening on" "$T_TMP/prism.log" && return 0
		kill -0 "$T_PRISM_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Stops what start_run started and forgets the store, so the next run begins with a fresh setup.
stop_run() {
	local p
	for p in "$T_LIGHTTPD_PID" "$T_PRISM_PID" "${STRACE_PID:-}"; do
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done
	for p in "$T_LIGHTTPD_PID" "$T_PRISM_PID" "${STRACE_PID:-}"; do
		[ -n "$p" ] || continue
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	STRACE_PID=
	rm -rf "$T_TMP/data" "$T_TMP/run"
	rm -f "/dev/shm/$T_SHM"
}

# start_run CONFIG-LINES...: a fresh store whose data_dir holds the snapshot (how a build-tree daemon finds
# it; an installed one also has it in its data directory).
start_run() {
	mkdir -p "$T_TMP/data"
	cp "$SNAPSHOT" "$T_TMP/data/modelsdev.json"
	adm_start "ratelimit_admin = 0" "$@"
}

# The connect(2) calls strace saw to IPv4/IPv6 addresses other than loopback.
outbound() {
	grep -E 'connect\(' "$1" | grep -E 'AF_INET6?' |
		grep -vE 'inet_addr\("127\.[0-9.]+"\)|inet_pton\(AF_INET6, "::1"|inet_pton\(AF_INET6, "::ffff:127\.' || true
}

# The daemon's tasks (processes and threads) that strace does not trace; empty when all are traced.
untraced() {
	local pid task tracer
	for pid in "$T_PRISM_PID" $(t_prism_workers); do
		for task in /proc/"$pid"/task/*; do
			tracer=$(awk '/^TracerPid:/ { print $2 }' "$task/status" 2>/dev/null)
			[ "$tracer" = "$STRACE_PID" ] || echo "$pid/${task##*/}:$tracer"
		done
	done
}

# --- 1. offline = true: nothing is ever fetched ---------------------------------------------------------
STRACE_LOG=
[ -n "$STRACE" ] && STRACE_LOG=$T_TMP/strace-offline.log
start_run "offline = true" "models_dev_url = $FAKE_URL" || { t_fail "started offline"; t_done; exit; }
TOKEN=$ADM_TOKEN

api GET $M/enrichment
t_is "enrichment: 200" "$T_STATUS" 200
t_is "enrichment offline: the snapshot" "$(jget source)/$(jget offline)" snapshot/true
t_like "enrichment: the snapshot's models" "$(jget models)" '^[0-9]{4,}$'
t_is "enrichment: the configured url" "$(jget url)" "$FAKE_URL"

# Every process answers (2 workers): ask several times.
for i in 1 2 3 4 5 6; do
	api GET "$M/lookup?modelId=zephyrine-omega-7b"
	[ "$T_STATUS" = 200 ] || break
	[ "$(jnode 'b=>b.modelsDev&&b.modelsDev.providerId')" = prism-fake-cloud ] && break
done
t_is "lookup of a model only the fake knows: 200" "$T_STATUS" 200
t_unlike "offline: the fake's data is never used" "$(jget modelsDev.providerId)" '^prism-fake-cloud$'
api GET "$M/lookup?modelId=mimo-v2-flash"
t_is "lookup of a snapshot-only model: no registry entry" "$(jget registry)" null
t_is "lookup of a snapshot-only model: models.dev data" "$(jget modelsDev.source)" models_dev
t_is "with its provider and tier" "$(jget modelsDev.providerId)/$(jget modelsDev.tier)" xiaomi/minimal
for i in 1 2 3 4; do api POST $M/enrichment/refresh '{}'; codes="${codes:-}$T_STATUS "; done
t_is "refresh while offline: 409 (every time, every process)" "$codes" "409 409 409 409 "
t_is "refresh while offline: the reason" "$(jget error)" "offline mode: models.dev is never contacted"
api GET $M/enrichment
t_is "still the snapshot" "$(jget source)" snapshot

# Provider discovery (when the providers module is there) must not consult models.dev either: a fake
# provider lists a model only the fake models.dev knows, one only the snapshot knows, one of the registry.
UPSTREAM_MODELS=zephyrine-omega-7b,mimo-v2-flash,gpt-4o-mini
node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/upstream.port" --no-ollama --models "$UPSTREAM_MODELS" \
	>>"$T_TMP/upstream.out" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/upstream.port" || t_fail "fake provider started"
UPSTREAM=http://127.0.0.1:$(cat "$T_TMP/upstream.port")
discover() { # prints the discovered models as "id:tier" lines
	api POST /api/prism/admin/providers "{\"name\":\"Discovery $1\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UPSTREAM\",\"auth\":{\"type\":\"none\"}}}"
	[ "$T_STATUS" = 201 ] || { echo "create:$T_STATUS"; return; }
	local id; id=$(jget _id)
	api POST "/api/prism/admin/providers/$id/discover" '{}'
	[ "$T_STATUS" = 200 ] || { echo "discover:$T_STATUS:$T_BODY"; return; }
	jnode 'b=>b.models.map(m=>m.id+":"+m.tier).sort().join(" ")'
}
api GET /api/prism/admin/providers
if [ "$T_STATUS" = 200 ]; then
	t_is "offline discovery: the snapshot and the registry enrich, the fake models.dev does not" "$(discover offline)" \
		"gpt-4o-mini:low mimo-v2-flash:minimal zephyrine-omega-7b:null"
	api GET "/api/prism/admin/providers/models/suggest?modelId=zephyrine-omega-7b"
	t_unlike "offline providers/models/suggest: no 5xx" "$T_STATUS" '^5'
	t_unlike "offline providers/models/suggest: not the fake's data" "$T_BODY" 'prism-fake-cloud'
else
	echo "ok $((T_N + 1)) # SKIP provider discovery (no providers module: $T_STATUS)"; T_N=$((T_N + 1))
fi

t_is "offline: the fake models.dev received ZERO requests" "$(fake_requests)" 0
if [ -n "$STRACE_LOG" ]; then
	t_is "strace traces the daemon, its workers and all their threads" "$(untraced)" ""
	t_is "offline: no outbound connection (strace, all processes and threads)" "$(outbound "$STRACE_LOG")" ""
	t_is "offline: no connection to the fake's port" "$(grep -c "htons($FAKE_PORT)" "$STRACE_LOG")" 0
else
	echo "ok $((T_N + 1)) # SKIP strace is not installed or cannot trace"; T_N=$((T_N + 1))
fi

# --- the other endpoints (same run) ---------------------------------------------------------------------
api GET "$M/lookup?modelId=eu.anthropic.claude-sonnet-4-20250514-v1:0"
t_is "lookup of a Bedrock id: the registry entry" "$(jget registry.source)/$(jget registry.vendor)/$(jget registry.tier)" \
	local_registry/Anthropic/high
t_is "lookup: the default price" "$(jget defaultPrice.input)/$(jget defaultPrice.output)" 3/15
t_is "lookup: the id echoed" "$(jget modelId)" "eu.anthropic.claude-sonnet-4-20250514-v1:0"
api GET "$M/lookup?modelId=qqqq-nothing-like-it-zzzz"
t_is "lookup of an unknown id: all null" "$(jget registry)/$(jget modelsDev)/$(jget defaultPrice)" null/null/null
api GET "$M/lookup"
t_is "lookup without modelId: 400" "$T_STATUS" 400
t_is "lookup without modelId: message" "$(jget error)" "modelId required"
api GET "$M/lookup?modelId="
t_is "lookup with an empty modelId: 400" "$T_STATUS" 400

api GET $M/registry
t_is "registry: 200" "$T_STATUS" 200
t_is "registry: 88 models" "$(jget count)/$(jnode 'b=>b.models.length')" 88/88
t_is "registry: first entry" "$(jnode 'b=>[b.models[0].id,b.models[0].vendor,b.models[0].tier,b.models[0].inputPer1M,b.models[0].outputPer1M].join("/")')" \
	claude-opus-4-6/Anthropic/ultra/5/25
t_is "registry: patterns and source" "$(jnode 'b=>b.models.every(m=>Array.isArray(m.patterns)&&m.patterns.length>0&&m.source==="local_registry")')" true
t_is "registry: benchmarks" "$(jnode 'b=>b.models[0].benchmarks.intelligence')" 93

api GET $M/prices
t_is "prices: 200" "$T_STATUS" 200
t_is "prices: the default table" "$(jnode 'b=>JSON.stringify(b.default.find(p=>p.model==="gpt-4o"))')" \
	'{"model":"gpt-4o","input":2.5,"output":10}'
t_is "prices: every default row" "$(jnode 'b=>b.default.length>30&&b.default.every(p=>typeof p.model==="string"&&p.input>=0&&p.output>=0)')" true
t_is "prices: provider-type tables in lookup order" "$(jnode 'b=>b.providerTypes.map(t=>t.keywords[0]).join(",")')" bedrock,azure,gemini,anthropic,openai
t_is "prices: a Bedrock price" "$(jnode 'b=>JSON.stringify(b.providerTypes[0].prices.find(p=>p.model==="claude-haiku-4-5"))')" \
	'{"model":"claude-haiku-4-5","input":1,"output":5}'

# RBAC: registry and lookups are configuration (admin, maintainer, auditor); prices are costs (+ finops).
FIN=$(adm_user finops1 finops 2>/dev/null)
if [ -n "$FIN" ]; then
	TOKEN=$FIN api GET $M/registry
	t_is "finops may not read the registry" "$T_STATUS" 403
	TOKEN=$FIN api GET $M/prices
	t_unlike "finops may read prices" "$T_STATUS" '^40[13]$'
	TOKEN=$FIN api POST $M/enrichment/refresh '{}'
	t_is "finops may not refresh" "$T_STATUS" 403
	AUD=$(adm_user auditor1 auditor)
	TOKEN=$AUD api GET "$M/lookup?modelId=gpt-4o"
	t_is "an auditor may look up" "$T_STATUS" 200
	TOKEN=$AUD api POST $M/enrichment/refresh '{}'
	t_is "an auditor may not refresh" "$T_STATUS" 403
else
	echo "ok $((T_N + 1)) # SKIP RBAC by role (no users module)"; T_N=$((T_N + 1))
fi
TOKEN= api GET $M/registry
t_is "anonymous: 401" "$T_STATUS" 401
TOKEN=$ADM_TOKEN

stop_run

# --- 2. offline = false: the fake is fetched ------------------------------------------------------------
STRACE_LOG=
[ -n "$STRACE" ] && STRACE_LOG=$T_TMP/strace-online.log
# One worker: every process keeps its own catalog and fetches it once per refresh period, so with two the
# count below would depend on which process each request reaches.
ADM_PRISM_ARGS="--processes 1 --threads 4" start_run "offline = false" "models_dev_url = $FAKE_URL" ||
	{ t_fail "started online"; t_done; exit; }
TOKEN=$ADM_TOKEN
api GET "$M/lookup?modelId=zephyrine-omega-7b"
t_is "online lookup: 200" "$T_STATUS" 200
t_is "online lookup: the fake's model" "$(jget modelsDev.providerId)/$(jget modelsDev.name)" "prism-fake-cloud/Zephyrine Omega 7B"
t_is "online lookup: converted" \
	"$(jnode 'b=>[b.modelsDev.tier,b.modelsDev.inputPer1M,b.modelsDev.outputPer1M,b.modelsDev.contextWindow,b.modelsDev.reasoning,b.modelsDev.openWeights,b.modelsDev.knowledge].join("/")')" \
	medium/4/12/131072/true/true/2025-03
t_is "online lookup: inferred categories" "$(jnode 'b=>b.modelsDev.categories.join(",")')" reasoning_deep,vision_complex,tool_use
api GET $M/enrichment
t_is "online: source online" "$(jget source)/$(jget models)/$(jget offline)" online/2/false
t_is "the fake received the fetch" "$(fake_requests)" 1
t_like "as GET /api.json with our User-Agent" "$(head -n1 "$FAKE_LOG")" '^GET /api\.json model-prism/'
before=$(fake_requests)
for i in 1 2 3; do api GET "$M/lookup?modelId=quillborne-mini"; done
t_is "lookups within the refresh period do not fetch again" "$(fake_requests)" "$before"
t_is "online: a second model" "$(jget modelsDev.tier)" minimal
api POST $M/enrichment/refresh '{}'
t_is "refresh: 200" "$T_STATUS" 200
t_is "refresh: online" "$(jget source)/$(jget models)" online/2
t_is "refresh fetched once more" "$(fake_requests)" "$((before + 1))"
api GET /api/prism/admin/providers
if [ "$T_STATUS" = 200 ]; then
	t_is "online discovery: the fake models.dev enriches" "$(discover online)" \
		"gpt-4o-mini:low mimo-v2-flash:null zephyrine-omega-7b:medium"
fi
if [ -n "$STRACE_LOG" ]; then
	t_like "strace sees the connection to the fake (the offline check can fail)" \
		"$(grep -c "htons($FAKE_PORT)" "$STRACE_LOG")" '^[1-9]'
fi
stop_run

# --- 3. offline = false, models.dev unreachable: the snapshot ------------------------------------------
CLOSED=$(t_free_port)
STRACE_LOG=
start_run "offline = false" "models_dev_url = http://user:pw@127.0.0.1:$CLOSED/api.json" ||
	{ t_fail "started unreachable"; t_done; exit; }
TOKEN=$ADM_TOKEN
api GET "$M/lookup?modelId=mimo-v2-flash"
t_is "unreachable: lookups use the snapshot" "$(jget modelsDev.source)" models_dev
api GET $M/enrichment
t_is "unreachable: source snapshot" "$(jget source)/$(jget offline)" snapshot/false
t_is "the url's credentials are masked" "$(jget url)" "http://***@127.0.0.1:$CLOSED/api.json"
api POST $M/enrichment/refresh '{}'
t_is "refresh of an unreachable source: 502" "$T_STATUS" 502
t_like "refresh: the reason" "$(jget error)" '^models\.dev fetch failed: '
t_is "refresh: the snapshot still serves" "$(jget source)" snapshot
t_like "the failure is logged at warn" "$(grep -c 'warn: models.dev fetch from http://\*\*\*@127.0.0.1' "$T_TMP/prism.log")" '^[1-9]'
t_is "credentials never logged" "$(grep -c 'user:pw' "$T_TMP/prism.log")" 0
t_unlike "credentials never answered" "$T_BODY" 'user:pw'
stop_run

# --- 4. offline = false, models_dev_url empty: only the snapshot, never a fetch ------------------------
before=$(fake_requests)
start_run "offline = false" "models_dev_url =" || { t_fail "started without a url"; t_done; exit; }
TOKEN=$ADM_TOKEN
api GET "$M/lookup?modelId=mimo-v2-flash"
t_is "no url: lookups use the snapshot" "$(jget modelsDev.providerId)" xiaomi
api GET $M/enrichment
t_is "no url: source snapshot" "$(jget source)/$(jget offline)/$(jget url)" snapshot/false/
api POST $M/enrichment/refresh '{}'
t_is "no url: refresh is 409" "$T_STATUS" 409
t_like "no url: the reason" "$(jget error)" '^models_dev_url is empty'
t_is "no url: nothing fetched" "$(fake_requests)" "$before"

t_done
