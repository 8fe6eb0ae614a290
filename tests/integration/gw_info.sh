#!/bin/bash
# gw_info.sh -- the gateway's key authentication and its informational endpoints through lighttpd: model
# lists (with the policy), one model, the public list, health, the IDE config generators, disabled and
# expired keys and deactivated tenants taking effect at once (shared-memory invalidation), the tenant
# request limit exact across two worker processes, and the official openai npm client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "trusted_proxies = 127.0.0.1" || { t_fail "server started"; t_done; exit; }
TOKEN=$ADM_TOKEN

# --- a provider on the fake upstream, two tenants with keys ---------------------------------------------------
node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/up.port" --key up-secret-key-123 >"$T_TMP/up.log" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/up.port"
UP=http://127.0.0.1:$(cat "$T_TMP/up.port")
api POST /api/prism/admin/providers "{\"name\":\"Fake OpenAI\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"up-secret-key-123\"}}}"
t_is "provider created" "$T_STATUS" 201
PID=$(jget _id)
PSLUG=$(jget slug)
api POST "/api/prism/admin/providers/$PID/discover"
t_is "its models discovered" "$(jget count)" 4
api GET "/api/prism/admin/providers/$PID"
PCREATED=$(jget createdAt)
api POST /api/prism/admin/tenants "{\"slug\":\"team-a\",\"name\":\"Team \\\"A\\\"\",\"providerIds\":[\"$PID\"]}"
t_is "tenant team-a" "$T_STATUS" 201
TA=$(jget _id)
KA=$(jget apiKey)
api POST /api/prism/admin/tenants "{\"slug\":\"team-b\",\"name\":\"Team B\",\"providerIds\":[\"$PID\"]}"
TB=$(jget _id)
KB=$(jget apiKey)
api POST /api/prism/admin/tenants "{\"slug\":\"team-c\",\"name\":\"Team C\"}"
TC=$(jget _id)
KC=$(jget apiKey)

# g PATH [curl args...]: a GET with $KEY as bearer (when set)
g() {
	local p=$1 args=()
	shift
	[ -n "${KEY:-}" ] && args+=(-H "Authorization: Bearer $KEY")
	t_http "${args[@]}" "$@" "$T_BASE$p"
}
ids() { printf '%s' "$T_BODY" | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>console.log(JSON.parse(d).data.map(m=>m.id).join(",")))'; }

# --- GET models ------------------------------------------------------------------------------------------------
KEY=$KA g /api/team-a/v1/models
t_is "models with the key" "$T_STATUS" 200
t_is "an OpenAI list of provider-prefixed ids" "$(jget object) $(ids)" \
	"list $PSLUG/gpt-4o-mini,$PSLUG/gpt-4o,$PSLUG/claude-3-5-sonnet-20241022,$PSLUG/some-unknown-model-xyz"
t_is "entry shape" "$(printf '%s' "$T_BODY" | t_json data.0 | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>console.log(Object.keys(JSON.parse(d)).join()))')" "id,object,created,owned_by"
t_is "owned by the provider's name" "$(jget data.1.owned_by)" "Fake OpenAI"
t_is "created is the provider's creation time, not now" "$(jget data.0.created)" \
	"$(node -e 'console.log(Math.floor(Date.parse(process.argv[1])/1000))' "$PCREATED")"
KEY= g /api/team-a/v1/models
t_is "no key: 401" "$T_STATUS" 401
t_is "missing_api_key in the OpenAI shape" "$(jget error.code)/$(jget error.type)/$(jget error.message)" \
	"missing_api_key/authentication_error/API key required"
KEY=omp-0000000000000000000000000000000000000000000000000000000000000000 g /api/team-a/v1/models
t_is "unknown key: 401 invalid_api_key" "$T_STATUS $(jget error.code)" "401 invalid_api_key"
UNKNOWN_MSG=$(jget error.message)
KEY= g /api/team-a/v1/models -H 'Authorization: Basic dXNlcjpwdw=='
t_is "another scheme is no key" "$T_STATUS $(jget error.code)" "401 missing_api_key"
KEY= g /api/team-a/v1/models -H "Authorization: bearer   $KA  "
t_is "the Bearer scheme case-insensitive, the key trimmed" "$T_STATUS" 200
KEY= g /api/team-a/v1/models -H "x-api-key: $KA"
t_is "x-api-key (Anthropic SDKs)" "$T_STATUS" 200
KEY= g /api/team-a/v1/models -H "api-key: $KA"
t_is "api-key (Azure SDKs)" "$T_STATUS" 200
KEY=$KB g /api/team-a/v1/models
t_is "another tenant's key on /api/team-a/v1: 401" "$T_STATUS $(jget error.code)" "401 invalid_api_key"
t_is "with the unknown key's message (no oracle)" "$(jget error.message)" "$UNKNOWN_MSG"
KEY=$KA g /api/team-b/v1/models
t_is "and the other way round" "$T_STATUS" 401
KEY=$KB g /v1/models
t_is "any tenant's key on /v1 selects its tenant" "$T_STATUS" 200
t_like "the access log names it" "$(sleep 0.2; grep 'access GET /v1/models 200' "$T_TMP/prism.log" | tail -n1)" 'tenant=team-b'
KEY=$KA g /api/v1/models
t_is "and on /api/v1" "$T_STATUS $(jget data.length)" "200 4"
KEY=$ADM_KEY g /v1/models
t_is "the default tenant's key on /v1" "$T_STATUS" 200
KEY=$ADM_KEY g /api/api/v1/models
t_is "and on its own /api/api/v1" "$T_STATUS" 200

# --- the model policy ------------------------------------------------------------------------------------------
api PUT "/api/prism/admin/tenants/$TA" "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"gpt-4o\",\"$PSLUG/claude-3-5-sonnet-20241022\"]}}"
t_is "whitelist set" "$T_STATUS" 200
KEY=$KA g /api/team-a/v1/models
t_is "whitelist: bare ids and slug/id entries" "$(ids)" "$PSLUG/gpt-4o,$PSLUG/claude-3-5-sonnet-20241022"
KEY=$KA g /api/team-a/v1/models/$PSLUG/gpt-4o-mini
t_is "a model outside the whitelist is not found" "$T_STATUS $(jget error.code)" "404 model_not_found"
api PUT "/api/prism/admin/tenants/$TA" '{"modelConfig":{"mode":"blacklist","list":["gpt-4o","some-unknown-model-xyz"]}}'
KEY=$KA g /api/team-a/v1/models
t_is "blacklist" "$(ids)" "$PSLUG/gpt-4o-mini,$PSLUG/claude-3-5-sonnet-20241022"
api PUT "/api/prism/admin/tenants/$TA" '{"modelConfig":{"mode":"all","list":[]},"routing":{"enabled":true}}'
KEY=$KA g /api/team-a/v1/models
t_is "routing enabled: auto-prism first" "$(jget data.0.id)/$(jget data.0.owned_by) $(jget data.length)" "auto-prism/open-model-prism 5"

# --- GET models/<id> ---------------------------------------------------------------------------------------------
KEY=$KA g "/v1/models/$PSLUG/gpt-4o"
t_is "one model, its id as two segments" "$T_STATUS $(jget id) $(jget object)" "200 $PSLUG/gpt-4o model"
KEY=$KA g /api/team-a/v1/models/claude-3-5-sonnet-20241022
t_is "one model by its bare id" "$T_STATUS $(jget id)" "200 $PSLUG/claude-3-5-sonnet-20241022"
KEY=$KA g /api/team-a/v1/models/no-such-model
t_is "an unknown model: 404" "$T_STATUS" 404
t_is "model_not_found in the OpenAI shape" "$(jget error.code)/$(jget error.type)" "model_not_found/invalid_request_error"
KEY= g /api/team-a/v1/models/gpt-4o
t_is "one model needs a key" "$T_STATUS" 401

# --- the public list and health ---------------------------------------------------------------------------------
KEY= g /api/team-a/v1/models/public
t_is "public list without a key" "$T_STATUS $(jget data.length)" "200 5"
t_is "without created" "$(jget data.1.created)" "<undefined>"
KEY= g /api/no-such-tenant/v1/models/public
t_is "public list of an unknown tenant: 404" "$T_STATUS $(jget error.message)" "404 Tenant not found"
KEY= g /v1/models/public
t_is "the default tenant's public list on /v1" "$T_STATUS $(jget object)" "200 list"
KEY= g /api/team-a/v1/health
t_is "health" "$T_STATUS $(jget status) $(jget tenant)" "200 ok team-a"
t_is "provider statuses" "$(jget providers)" '[{"name":"Fake OpenAI","status":"connected"}]'
t_unlike "no key details" "$T_BODY" 'keyEnabled|keyExpired'
KEY= g /api/team-c/v1/health
t_is "health without providers" "$T_STATUS $(jget providers)" "200 []"
KEY= g /api/no-such-tenant/v1/health
t_is "health of an unknown tenant" "$T_STATUS $(jget status)" "404 not_found"
KEY= g /v1/health
t_is "health of the default tenant" "$T_STATUS $(jget tenant)" "200 api"

# --- IDE config endpoints ---------------------------------------------------------------------------------------
for ep in models continue opencode; do
	KEY= g /api/team-a/v1/config/$ep
	t_is "config/$ep without a key: 401" "$T_STATUS $(jget error.code)" "401 missing_api_key"
	KEY= g "/api/team-a/v1/config/$ep?apiKey=just-any-string"
	t_is "config/$ep with a made-up key: 401 (the original accepted any string)" "$T_STATUS" 401
	KEY=$KB g /api/team-a/v1/config/$ep
	t_is "config/$ep with another tenant's key: 401" "$T_STATUS" 401
done
KEY=$KA g /api/team-a/v1/config/models
t_is "config/models" "$T_STATUS $(jget tenant.slug) $(jget formats)" '200 team-a ["continue","opencode"]'
t_is "the auto-router first, under an id the gateway accepts" "$(jget models.0.id) $(jget models.0.locked)" "auto true"
t_is "then the models with tier advice" "$(jget models.length)" 5
t_is "base URL of the tenant's prefix" "$(jget baseUrl)" "$T_BASE/api/team-a/v1"
KEY=$KA g /v1/config/continue
t_is "config/continue" "$T_STATUS" 200
t_like "as YAML" "$(t_header Content-Type)" '^text/yaml'
t_like "as a download" "$(t_header Content-Disposition)" 'attachment; filename="continue-config-team-a.yaml"'
t_like "the auto-router model is auto" "$T_BODY" 'model: "auto"'
t_like "with the /v1 base URL it was fetched from (not /api/api/v1)" "$T_BODY" "apiBase: \"$T_BASE/v1\""
t_like "and the verified key" "$T_BODY" "apiKey: \"$KA\""
t_like "the tenant name cannot break out of its comment" "$T_BODY" '# Tenant: "Team "A"" \(team-a\)'
t_is "every model listed" "$(printf '%s\n' "$T_BODY" | grep -c '^  - title:')" 5
t_like "tabAutocompleteModel block" "$T_BODY" 'tabAutocompleteModel:'
KEY= g "/api/team-a/v1/config/continue?apiKey=$KA&models=gpt-4o,%20gpt-4o-mini"
t_is "apiKey query and ?models= selection" "$T_STATUS $(printf '%s\n' "$T_BODY" | grep -c '^  - title:')" "200 3"
KEY= g "/api/team-a/v1/config/opencode?apiKey=$KA"
t_is "config/opencode" "$T_STATUS" 200
t_like "as JSON" "$(t_header Content-Type)" '^application/json'
t_like "as a download" "$(t_header Content-Disposition)" 'filename="opencode-team-a.json"'
t_is "its model and base URL" "$(jget model) $(jget provider.model-prism.options.baseURL)" \
	"model-prism/auto $T_BASE/api/team-a/v1"
t_is "the auto-router entry" "$(jget provider.model-prism.models.auto.name)" "Model Prism (Auto Router)"
KEY=$KA g /api/team-a/v1/config/opencode -H 'X-Forwarded-For: 198.51.100.7' -H 'X-Forwarded-Proto: https' \
	-H 'X-Forwarded-Host: prism.example.org'
t_is "forwarded scheme and host from a trusted proxy" "$(jget provider.model-prism.options.baseURL)" \
	"https://prism.example.org/api/team-a/v1"
KEY=$KA g "/api/team-a/v1/config/opencode?baseUrl=https://gw.example.org/v1/"
t_is "?baseUrl= overrides" "$(jget provider.model-prism.options.baseURL)" "https://gw.example.org/v1"
KEY=$KA g '/api/team-a/v1/config/continue?baseUrl=javascript:alert(1)'
t_is "a bad baseUrl is a 400" "$T_STATUS $(jget error.code)" "400 invalid_base_url"

# --- the official openai client -------------------------------------------------------------------------------------
export PRISM_NODE_MODULES=${PRISM_NODE_MODULES:-$top_srcdir/tests/node/node_modules}
if [ -d "$PRISM_NODE_MODULES/openai" ]; then
	client() {
		node -e '
const OpenAI = require(process.env.PRISM_NODE_MODULES + "/openai");
const c = new OpenAI({ apiKey: process.argv[1], baseURL: process.argv[2], maxRetries: 0 });
(async () => {
	const ids = [];
	for await (const m of c.models.list()) ids.push(m.id);
	const one = await c.models.retrieve(process.argv[3]);
	console.log(ids.length + " " + one.id);
})().catch((e) => { console.log("error " + e.status + " " + (e.error && e.error.code)); });
' "$@"
	}
	t_is "openai client: models.list and retrieve on /api/team-a/v1" "$(client "$KA" "$T_BASE/api/team-a/v1" gpt-4o)" \
		"5 $PSLUG/gpt-4o"
	t_is "openai client on /v1 with team-b's key" "$(client "$KB" "$T_BASE/v1" gpt-4o-mini)" "4 $PSLUG/gpt-4o-mini"
	t_is "openai client with a wrong key" "$(client nope "$T_BASE/v1" x)" "error 401 invalid_api_key"
else
	t_fail "the openai npm package is installed in $PRISM_NODE_MODULES"
fi

# --- key and tenant state take effect at once ------------------------------------------------------------------
api POST "/api/prism/admin/tenants/$TA/keys" '{"label":"to-disable"}'
K3=$(jget apiKey)
K3ID=$(jget _id)
KEY=$K3 g /api/team-a/v1/models
t_is "a new key works" "$T_STATUS" 200
KEY=$K3 g /api/team-a/v1/models
t_is "(now cached)" "$T_STATUS" 200
api PATCH "/api/prism/admin/tenants/$TA/keys/$K3ID" '{"enabled":false}'
t_is "the key is disabled" "$(jget enabled)" false
fails=0
for i in 1 2 3 4 5 6; do
	KEY=$K3 g /api/team-a/v1/models
	[ "$T_STATUS $(jget error.code)" = "401 key_disabled" ] || fails=$((fails + 1))
done
t_is "at once, in every worker: 401 key_disabled" "$fails" 0
KEY=$KA g /api/team-a/v1/models
t_is "the tenant's other key still works" "$T_STATUS" 200

api POST "/api/prism/admin/tenants/$TA/keys" '{"label":"short-lived"}'
K4=$(jget apiKey)
K4ID=$(jget _id)
EXP=$(node -e 'console.log(new Date(Date.now() + 2500).toISOString())')
api PATCH "/api/prism/admin/tenants/$TA/keys/$K4ID" "{\"expiresAt\":\"$EXP\"}"
t_is "a key that expires in 2.5 s" "$T_STATUS" 200
KEY=$K4 g /api/team-a/v1/models
t_is "works before" "$T_STATUS" 200
sleep 3
KEY=$K4 g /api/team-a/v1/models
t_is "after its expiry (still cached): 401 key_expired" "$T_STATUS $(jget error.code) $(jget error.message)" \
	"401 key_expired API key has expired"

KEY=$KB g /v1/models
t_is "team-b works" "$T_STATUS" 200
api PUT "/api/prism/admin/tenants/$TB" '{"active":false}'
t_is "team-b deactivated" "$(jget active)" false
KEY=$KB g /v1/models
t_is "its key: 403 tenant_disabled" "$T_STATUS $(jget error.code) $(jget error.type)" "403 tenant_disabled permission_error"
KEY= g /api/team-b/v1/health
t_is "a deactivated tenant has no public health" "$T_STATUS" 404

api GET "/api/prism/admin/tenants/$TA/keys"
t_like "lastUsedAt recorded for the used key" \
	"$(printf '%s' "$T_BODY" | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{const k=JSON.parse(d).keys.find(k=>k.isPrimary);console.log(k.lastUsedAt)})')" \
	'^20[0-9]{2}-[0-9]{2}-[0-9]{2}T'

# --- the tenant request limit, exact across the worker processes ----------------------------------------------
api PUT "/api/prism/admin/tenants/$TC" '{"rateLimit":{"requestsPerMinute":3}}'
t_is "team-c: 3 requests a minute" "$(jget rateLimit.requestsPerMinute)" 3
: >"$T_TMP/rpm"
cpids=()
for i in $(seq 1 12); do
	curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $KC" "$T_BASE/api/team-c/v1/models" >>"$T_TMP/rpm" &
	cpids+=($!)
done
wait "${cpids[@]}"
t_is "12 parallel requests: exactly 3 answered" "$(grep -c '^200$' "$T_TMP/rpm")" 3
t_is "the other 9 refused with 429" "$(grep -c '^429$' "$T_TMP/rpm")" 9
# Which worker took which request is the kernel's choice; the count is exact whichever it is (the
# cross-process exactness itself is tested with forked processes in check_shm).
t_diag "served by $(sleep 0.2; grep 'access GET /api/team-c/v1/models' "$T_TMP/prism.log" | grep -o '\[[0-9]*\]' | sort -u | wc -l | tr -d ' ') worker process(es)"
KEY=$KC g /api/team-c/v1/models
t_is "the 4th: 429 tenant_rate_limit_exceeded" "$T_STATUS $(jget error.code) $(jget error.type)" \
	"429 tenant_rate_limit_exceeded rate_limit_error"
t_is "naming the tenant and the limit" "$(jget error.message)" "Rate limit exceeded for tenant 'team-c'. Limit: 3 req/min."
t_like "with Retry-After" "$(t_header Retry-After)" '^[1-9][0-9]*$'
t_like "and the RateLimit fields" "$(t_header RateLimit) / $(t_header RateLimit-Policy)" '^limit=3, remaining=0, reset=[0-9]+ / 3;w=60$'
KEY=$KA g /api/team-a/v1/models
t_is "other tenants are not affected" "$T_STATUS" 200
t_like "refusals counted in the metrics" "$(curl -s "$T_BASE/metrics" | grep '^prism_rate_limited_total{scope="tenant"}')" ' (9|1[0-9])$'
t_done
