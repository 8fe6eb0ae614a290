#!/bin/bash
# Providers of the admin API against fake upstreams: CRUD shapes, secrets encrypted at rest and never
# answered, slugs, validation of every body, test/check/discover (right key, wrong key, upstream down or
# slow, /api/v1 probing, Ollama tags, a per-provider proxy), discovery merged with the registry, model
# metadata (PATCH, reorder-tier, models/all, suggest), list order, the delete cascade into tenants, roles,
# the audit trail, and what the upstream received.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" "offline = true" || { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN
P=/api/prism/admin/providers
NOPE=0123456789abcdef01234567
KEY=sk-prov-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
WRONG=sk-wrong-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# Every response body is kept for the final "no secrets" checks.
eval "$(declare -f api | sed '1s/^api/_api_orig/')"
api() { _api_orig "$@"; printf '%s\n' "$T_BODY" >>"$T_TMP/all-bodies"; }
# jeval EXPR: a JavaScript expression over the last body `d`.
jeval() {
	printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const d=JSON.parse(s);
		const r=(new Function("d","return ("+process.argv[1]+")"))(d);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$1"
}
# rec FILE EXPR: a JavaScript expression over the upstream's recorded requests `r` (an array).
rec() {
	node -e 'const fs=require("fs");const r=fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse);
		const v=(new Function("r","return ("+process.argv[2]+")"))(r);
		process.stdout.write(typeof v==="string"?v:JSON.stringify(v))' "$1" "$2"
}
now_ms() { date +%s%3N; }

# up NAME ARGS...: starts a fake upstream; sets UP_<NAME> to its base URL, its record is $T_TMP/NAME.jsonl.
up() {
	local name=$1; shift
	node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/$name.port" --record "$T_TMP/$name.jsonl" "$@" \
		>"$T_TMP/$name.log" 2>&1 &
	t_track $!
	t_wait_for test -s "$T_TMP/$name.port" || return 1
	: >>"$T_TMP/$name.jsonl"
	printf -v "UP_$name" 'http://127.0.0.1:%s' "$(cat "$T_TMP/$name.port")"
}
up main --key "$KEY" || { t_fail "fake upstream started"; t_done; exit; }
up apiv1 --key "$KEY" --api-path /api/v1 --no-ollama
up slow --key "$KEY" --delay-ms 3000
up ollama --models should-not-be-used
up many --models "$(seq -s, -f 'bulk-model-%02g' 1 95)"
DOWN=http://127.0.0.1:$(t_free_port)

# --- create, read, list --------------------------------------------------------------------------------------
api POST $P "{\"name\":\"Fake OpenAI\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP_main/\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"$KEY\"},\"options\":{\"extraHeaders\":{\"X-Org\":\"acme\"}}}}"
t_is "create: 201" "$T_STATUS" 201
A=$(jget _id)
t_like "create: _id" "$A" '^[0-9a-f]{24}$'
t_is "create: slug derived from the name" "$(jget slug)" fake-openai
t_is "create: status unchecked" "$(jget status)" unchecked
t_is "create: the key is masked" "$(jget config.auth.apiKey)" '***'
t_is "create: hasCredentials" "$(jget config.auth.hasCredentials)" true
t_is "create: auth type" "$(jget config.auth.type)" api_key
t_is "create: options kept" "$(jget config.options.extraHeaders.X-Org)" acme
t_is "create: no models yet" "$(jget discoveredModels)" '[]'
t_is "create: first in the list order" "$(jget order)" 0
t_unlike "create: neither key nor ciphertext in the answer" "$T_BODY" "$KEY|enc:"
stored=$("$PRISMCTL" dump providers --config "$T_CONF")
t_like "the key is stored encrypted" "$stored" '"apiKey": ?"enc:[0-9a-f]{32}:[0-9a-f]{32}:[0-9a-f]+"'
t_unlike "and never in clear" "$stored" "$KEY"

api GET "$P/$A"
t_is "get: 200" "$T_STATUS" 200
t_is "get: masked" "$(jget config.auth.apiKey)/$(jget config.auth.hasCredentials)" '***/true'
t_is "get: baseUrl as given" "$(jget config.baseUrl)" "$UP_main/"
api GET $P
t_is "list: 200" "$T_STATUS" 200
t_is "list: one provider, masked" "$(jeval 'd.length+" "+d[0].config.auth.apiKey')" '1 ***'
api GET "$P/$NOPE"
t_is "get unknown: 404" "$T_STATUS" 404
t_is "get unknown: message" "$(jget error)" "Provider not found"
api GET "$P/not-an-id"
t_is "get malformed id: 404" "$T_STATUS" 404

# --- slugs --------------------------------------------------------------------------------------------------
api POST $P '{"name":"Fake OpenAI","type":"openai"}'
t_is "same name: 201" "$T_STATUS" 201
t_is "same name: slug -2" "$(jget slug)" fake-openai-2
t_is "no key: hasCredentials false" "$(jget config.auth.hasCredentials)" false
t_is "no key: no apiKey field" "$(jget config.auth.apiKey)" '<undefined>'
B=$(jget _id)
api POST $P '{"name":"Fake OpenAI","type":"openai"}'
t_is "third: slug -3" "$(jget slug)" fake-openai-3
C=$(jget _id)
api POST $P '{"name":"  ***  ","type":"custom"}'
t_is "nothing usable in the name: slug provider" "$(jget slug)" provider
api DELETE "$P/$(jget _id)"
api POST $P '{"name":"Ünïcode  Name__X","type":"custom"}'
t_is "non-ASCII and punctuation become one dash" "$(jget slug)" n-code-name-x
api DELETE "$P/$(jget _id)"
long=$(printf 'Abcdefghij%.0s' 1 2 3 4 5 6)
api POST $P "{\"name\":\"$long\",\"type\":\"custom\"}"
t_is "long names: the slug is cut at 48" "$(jget slug)" "$(printf '%s' "${long,,}" | cut -c1-48)"
LONG1=$(jget _id)
api POST $P "{\"name\":\"$long\",\"type\":\"custom\"}"
t_is "a suffixed long slug stays within 48" "$(jget slug)" "$(printf '%s' "${long,,}" | cut -c1-46)-2"
LONG2=$(jget _id)
api DELETE "$P/$LONG1"; api DELETE "$P/$LONG2"
api POST $P '{"name":"Dup","type":"openai","slug":"fake-openai"}'
t_is "duplicate supplied slug: 409" "$T_STATUS" 409
t_like "duplicate supplied slug: message" "$(jget error)" "slug 'fake-openai' already exists"
api POST $P '{"name":"Own","type":"vllm","slug":"own-slug-1"}'
t_is "supplied slug: kept" "$T_STATUS/$(jget slug)" 201/own-slug-1
OWN=$(jget _id)

# --- bad input: POST -----------------------------------------------------------------------------------------
bad_post() {   # NAME BODY FIELD-REGEX
	api POST $P "$2"
	t_is "POST $1: 400" "$T_STATUS" 400
	t_like "POST $1: names the field" "$(jget error)" "$3"
}
t_http -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary '{"name":' "$T_BASE$P"
t_is "POST not JSON: 400" "$T_STATUS" 400
bad_post "array body" '[1,2]' 'object'
bad_post "no name" '{"type":"openai"}' '^name: is required'
bad_post "name not a string" '{"name":5,"type":"openai"}' '^name: must be a string'
bad_post "oversize name" "{\"name\":\"$(printf 'x%.0s' $(seq 1 201))\",\"type\":\"openai\"}" '^name: must be at most 200 bytes'
bad_post "no type" '{"name":"x"}' '^type: is required'
bad_post "unknown type" '{"name":"x","type":"anthropic"}' '^type: must be one of openai, ollama'
bad_post "type not a string" '{"name":"x","type":["openai"]}' '^type: must be a string'
bad_post "bad slug" '{"name":"x","type":"openai","slug":"Bad_Slug"}' '^slug: must match'
bad_post "slug with a leading dash" '{"name":"x","type":"openai","slug":"-abc"}' '^slug: must match'
bad_post "slug over 48" "{\"name\":\"x\",\"type\":\"openai\",\"slug\":\"$(printf 'a%.0s' $(seq 1 49))\"}" '^slug: must match'
bad_post "config not an object" '{"name":"x","type":"openai","config":"http://x"}' '^config: must be an object'
bad_post "ftp baseUrl" '{"name":"x","type":"openai","config":{"baseUrl":"ftp://host/v1"}}' '^config\.baseUrl: must be an http'
bad_post "file baseUrl" '{"name":"x","type":"openai","config":{"baseUrl":"file:///etc/passwd"}}' '^config\.baseUrl: '
bad_post "baseUrl with credentials" '{"name":"x","type":"openai","config":{"baseUrl":"http://u:p@host/"}}' '^config\.baseUrl: '
bad_post "baseUrl with a space" '{"name":"x","type":"openai","config":{"baseUrl":"http://ho st/"}}' '^config\.baseUrl: '
bad_post "oversize baseUrl" "{\"name\":\"x\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"http://h/$(printf 'a%.0s' $(seq 1 2050))\"}}" '^config\.baseUrl: must be at most'
bad_post "auth not an object" '{"name":"x","type":"openai","config":{"auth":"key"}}' '^config\.auth: must be an object'
bad_post "unknown auth type" '{"name":"x","type":"openai","config":{"auth":{"type":"oauth"}}}' '^config\.auth\.type: must be one of'
bad_post "apiKey not a string" '{"name":"x","type":"openai","config":{"auth":{"apiKey":42}}}' '^config\.auth\.apiKey: must be a string'
bad_post "apiKey with a line break" '{"name":"x","type":"openai","config":{"auth":{"apiKey":"abc\ndef"}}}' '^config\.auth\.apiKey: must not contain control'
bad_post "apiKey already encrypted" '{"name":"x","type":"openai","config":{"auth":{"apiKey":"enc:00:11:22"}}}' '^config\.auth\.apiKey: must be the secret itself'
bad_post "oversize secret" "{\"name\":\"x\",\"type\":\"bedrock\",\"config\":{\"auth\":{\"secretAccessKey\":\"$(head -c 8193 /dev/zero | tr '\0' a)\"}}}" '^config\.auth\.secretAccessKey: must be at most 8192'
bad_post "proxy with another scheme" '{"name":"x","type":"openai","config":{"options":{"httpProxy":"socks5://127.0.0.1:1080"}}}' '^config\.options\.httpProxy: must be an http'
bad_post "proxy without a port" '{"name":"x","type":"openai","config":{"options":{"httpProxy":"http://proxy.example"}}}' '^config\.options\.httpProxy: '
bad_post "proxy with a path" '{"name":"x","type":"openai","config":{"options":{"httpProxy":"http://proxy:3128/x"}}}' '^config\.options\.httpProxy: '
bad_post "proxy with credentials" '{"name":"x","type":"openai","config":{"options":{"httpProxy":"http://u:p@proxy:3128"}}}' '^config\.options\.httpProxy: '
bad_post "tlsVerify not a bool" '{"name":"x","type":"openai","config":{"options":{"tlsVerify":"no"}}}' '^config\.options\.tlsVerify: must be true or false'
bad_post "caFile relative" '{"name":"x","type":"openai","config":{"options":{"caFile":"ca.pem"}}}' '^config\.options\.caFile: must be an absolute path'
bad_post "timeoutMs too small" '{"name":"x","type":"openai","config":{"options":{"timeoutMs":10}}}' '^config\.options\.timeoutMs: must be between 1000 and 600000'
bad_post "connectTimeoutMs not an integer" '{"name":"x","type":"openai","config":{"options":{"connectTimeoutMs":1.5}}}' '^config\.options\.connectTimeoutMs: must be an integer'
bad_post "apiPath not a known path" '{"name":"x","type":"openai","config":{"options":{"apiPath":"/v2"}}}' '^config\.options\.apiPath: must be one of'
bad_post "extraHeaders not an object" '{"name":"x","type":"openai","config":{"options":{"extraHeaders":["a"]}}}' '^config\.options\.extraHeaders: must be an object'
bad_post "header name with CR/LF" '{"name":"x","type":"openai","config":{"options":{"extraHeaders":{"X-A\r\nX-B":"v"}}}}' '^config\.options\.extraHeaders\.'
bad_post "header value with LF" '{"name":"x","type":"openai","config":{"options":{"extraHeaders":{"X-A":"v\nX-B: w"}}}}' '^config\.options\.extraHeaders\.X-A: '
bad_post "header value not a string" '{"name":"x","type":"openai","config":{"options":{"extraHeaders":{"X-A":1}}}}' '^config\.options\.extraHeaders\.X-A: '
bad_post "Authorization as an extra header" '{"name":"x","type":"openai","config":{"options":{"extraHeaders":{"authorization":"Bearer x"}}}}' '^config\.options\.extraHeaders\.authorization: this header cannot be set here'
bad_post "a key in an extra header" '{"name":"x","type":"openai","config":{"options":{"extraHeaders":{"X-Api-Key":"k"}}}}' '^config\.options\.extraHeaders\.X-Api-Key: '
bad_post "an option that is an object" '{"name":"x","type":"openai","config":{"options":{"custom":{"a":1}}}}' '^config\.options\.custom: must be a string, number or boolean'
bad_post "order negative" '{"name":"x","type":"openai","order":-1}' '^order: must be between'
bad_post "discoveredModels with a bad tier" '{"name":"x","type":"openai","discoveredModels":[{"id":"m","tier":"mega"}]}' '^discoveredModels\[0\]\.tier: must be one of'
bad_post "discoveredModels without an id" '{"name":"x","type":"openai","discoveredModels":[{"tier":"low"}]}' '^discoveredModels\[0\]\.id: is required'
api GET $P
t_is "nothing was created by the bad requests" "$(jeval 'd.length')" 4

api POST $P '{"name":"Seeded","type":"custom","discoveredModels":[{"id":"seed-a","tier":"low","inputPer1M":1},{"id":"seed-b"}]}'
t_is "create with discoveredModels: 201" "$T_STATUS" 201
t_is "seeded models: shape" "$(jeval 'd.discoveredModels.map(m=>[m.id,m.name,m.tier,m.priority,m.visible,m.manualPricing,m.inputPer1M].join("/")).join()')" \
	"seed-a/seed-a/low/50/true/true/1,seed-b/seed-b//50/true/false/"
api DELETE "$P/$(jget _id)"

# --- update ---------------------------------------------------------------------------------------------------
secret_of() { "$PRISMCTL" dump providers --config "$T_CONF" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{
	const p=JSON.parse(s).find(x=>x._id===process.argv[1]);process.stdout.write(String(p&&p.config&&p.config.auth&&p.config.auth.apiKey))})' "$1"; }
enc0=$(secret_of "$A")
api PUT "$P/$A" '{"name":"Fake OpenAI (renamed)","config":{"auth":{"type":"api_key","apiKey":"***"}}}'
t_is "update: 200" "$T_STATUS" 200
t_is "update: name" "$(jget name)" "Fake OpenAI (renamed)"
t_is "update: slug unchanged" "$(jget slug)" fake-openai
t_is "update: masked" "$(jget config.auth.apiKey)" '***'
t_is "update with \"***\": the stored secret is kept" "$(secret_of "$A")" "$enc0"
api PUT "$P/$A" '{"config":{"auth":{"apiKey":""}}}'
t_is "update with \"\": kept" "$(secret_of "$A")" "$enc0"
api PUT "$P/$A" '{"config":{"baseUrl":"'"$UP_main"'"}}'
t_is "update without auth: kept" "$(secret_of "$A")" "$enc0"
t_is "update of baseUrl: options untouched" "$(jget config.options.extraHeaders.X-Org)" acme
# The stored key goes nowhere else: moving the provider means entering it again.
api PUT "$P/$A" '{"config":{"baseUrl":"http://attacker.example:8080"}}'
t_is "moving a provider that keeps its stored key is refused" "$T_STATUS" 400
t_like "  and says why" "$(jget error)" 'enter the credentials again'
api PUT "$P/$A" '{"config":{"options":{"httpProxy":"http://127.0.0.1:3128"}}}'
t_is "so is a new proxy" "$T_STATUS" 400
api PUT "$P/$A" '{"config":{"options":{"tlsVerify":false}}}'
t_is "and switching TLS verification off" "$T_STATUS" 400
t_is "  the stored key is unchanged" "$(secret_of "$A")" "$enc0"
api PUT "$P/$A" "{\"config\":{\"auth\":{\"apiKey\":\"$WRONG\"}}}"
enc1=$(secret_of "$A")
t_like "update with a new key: replaced, encrypted" "$enc1" '^enc:'
t_is "update with a new key: a new ciphertext" "$([ "$enc1" != "$enc0" ] && echo changed)" changed
t_unlike "update: no key in the answer" "$T_BODY" "$WRONG|enc:"
api PUT "$P/$B" "{\"config\":{\"auth\":{\"apiKey\":\"$KEY\"}}}"
api PUT "$P/$B" '{"config":{"auth":{"apiKey":null}}}'
t_is "update with null: cleared" "$(jget config.auth.hasCredentials)/$(secret_of "$B")" "false/undefined"
api PUT "$P/$B" '{"config":{"options":{"timeoutMs":5000,"apiPath":"/v1"}}}'
api PUT "$P/$B" '{"config":{"options":{"apiPath":null}}}'
t_is "options are merged; null removes one" "$(jget config.options.timeoutMs)/$(jget config.options.apiPath)" "5000/<undefined>"
api PUT "$P/$B" '{"slug":"fake-openai"}'
t_is "update to a taken slug: 409" "$T_STATUS" 409
t_like "update to a taken slug: message" "$(jget error)" "slug 'fake-openai' already exists"
api PUT "$P/$B" '{"slug":"BAD SLUG"}'
t_is "update to a bad slug: 400" "$T_STATUS/$(jget error | cut -c1-6)" "400/slug: "
api PUT "$P/$B" '{"type":"gemini"}'
t_is "update to a bad type: 400" "$T_STATUS/$(jget error | cut -c1-6)" "400/type: "
api PUT "$P/$B" '{"name":""}'
t_is "update to an empty name: 400" "$T_STATUS/$(jget error)" "400/name: must not be empty"
api PUT "$P/$B" '{"config":{"options":{"httpProxy":"ftp://p:21"}}}'
t_is "update with a bad proxy: 400" "$T_STATUS" 400
t_like "update with a bad proxy: names it" "$(jget error)" '^config\.options\.httpProxy: '
api PUT "$P/$B" '{"config":{"baseUrl":"gopher://x"}}'
t_like "update with a bad baseUrl: 400" "$T_STATUS $(jget error)" '^400 config\.baseUrl: '
api PUT "$P/$B" '{"order":"first"}'
t_like "update with a bad order: 400" "$T_STATUS $(jget error)" '^400 order: '
t_http -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary 'nope' "$T_BASE$P/$B"
t_is "update not JSON: 400" "$T_STATUS" 400
api PUT "$P/$NOPE" '{"name":"x"}'
t_is "update unknown: 404" "$T_STATUS" 404

# --- test: wrong key, right key, down, slow -------------------------------------------------------------------
api POST "$P/$A/test" "{}"
t_is "test with a wrong key: 400" "$T_STATUS" 400
t_is "test with a wrong key: success false" "$(jget success)" false
t_like "test with a wrong key: the upstream's 401" "$(jget error)" 'HTTP 401'
t_unlike "test with a wrong key: the key is not in the message" "$T_BODY" "$WRONG"
api GET "$P/$A"
t_is "after a failed test: status error" "$(jget status)" error
t_like "after a failed test: statusMessage" "$(jget statusMessage)" 'HTTP 401'
t_like "after a failed test: lastChecked" "$(jget lastChecked)" '^20[0-9]{2}-'
t_is "a 401 stops the probing (no /api/v1 try)" "$(rec "$T_TMP/main.jsonl" 'r.filter(x=>x.path==="/api/v1/models").length')" 0

api PUT "$P/$A" "{\"config\":{\"auth\":{\"apiKey\":\"$KEY\"}}}"
api POST "$P/$A/test" "{}"
t_is "test with the right key: 200" "$T_STATUS" 200
t_is "test: answer" "$T_BODY" '{"success":true,"message":"Connection successful"}'
api GET "$P/$A"
t_is "after the test: connected, no message" "$(jget status)/$(jget statusMessage)" "connected/null"
t_is "the upstream got the decrypted key" "$(rec "$T_TMP/main.jsonl" 'r[r.length-1].headers.authorization')" "Bearer $KEY"
t_like "and our User-Agent" "$(rec "$T_TMP/main.jsonl" 'r[r.length-1].headers["user-agent"]')" '^model-prism/'
t_is "and the extra header" "$(rec "$T_TMP/main.jsonl" 'r[r.length-1].headers["x-org"]')" acme
t_is "at <base>/v1/models" "$(rec "$T_TMP/main.jsonl" 'r[r.length-1].method+" "+r[r.length-1].path')" "GET /v1/models"

api POST $P "{\"name\":\"Down\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$DOWN\",\"auth\":{\"apiKey\":\"$KEY\"}}}"
D=$(jget _id)
t0=$(now_ms); api POST "$P/$D/test" "{}"; t1=$(now_ms)
t_is "upstream down: 400" "$T_STATUS" 400
t_like "upstream down: connection error" "$(jget error)" 'cannot connect'
t_is "upstream down: answered quickly" "$(( t1 - t0 < 3000 ))" 1
t_unlike "upstream down: no key in the message" "$T_BODY" "$KEY"

api POST $P "{\"name\":\"Slow\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP_slow\",\"auth\":{\"apiKey\":\"$KEY\"},\"options\":{\"timeoutMs\":1000}}}"
S=$(jget _id)
t0=$(now_ms); api POST "$P/$S/test" "{}"; t1=$(now_ms)
t_is "slow upstream: 400" "$T_STATUS" 400
t_like "slow upstream: timed out" "$(jget error)" 'timed out'
t_is "slow upstream: after the provider's timeoutMs, not the upstream's delay" "$(( t1 - t0 < 2800 ))" 1

api POST $P "{\"name\":\"Via proxy\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"http://upstream.invalid\",\"auth\":{\"apiKey\":\"$KEY\"},\"options\":{\"httpProxy\":\"$UP_main\"}}}"
X=$(jget _id)
api POST "$P/$X/test" "{}"
t_is "through the provider's proxy: 200" "$T_STATUS" 200
t_is "the proxy got the absolute URL" "$(rec "$T_TMP/main.jsonl" 'r[r.length-1].headers.host')" upstream.invalid
api DELETE "$P/$X"

# --- check: log lines, /api/v1 probing, http -> https ---------------------------------------------------------
api POST $P "{\"name\":\"Under api v1\",\"type\":\"openrouter\",\"config\":{\"baseUrl\":\"$UP_apiv1\",\"auth\":{\"type\":\"bearer\",\"apiKey\":\"$KEY\"}}}"
V=$(jget _id)
api POST "$P/$V/check" "{}"
t_is "check: 200" "$T_STATUS" 200
t_is "check: success" "$(jget success)" true
t_is "check: the log" "$(jeval 'd.log.join("|")')" \
	"→ Trying base: $UP_apiv1  (will probe: /v1, /api/v1)|   ✓ Responded on path: /api/v1/models|✓ Connection successful (4 models)"
t_is "check: no https suggestion" "$(jget suggestUrl)" null
api GET "$P/$V"
t_is "check: the discovered apiPath is saved" "$(jget config.options.apiPath)" /api/v1
t_is "check: connected" "$(jget status)" connected
t_is "probed /v1 first, then /api/v1" "$(rec "$T_TMP/apiv1.jsonl" 'r.map(x=>x.path).join()')" "/v1/models,/api/v1/models"
api POST "$P/$V/discover" "{}"
t_is "discover under /api/v1: 200" "$T_STATUS" 200
t_is "discover under /api/v1: apiPath" "$(jget apiPath)" /api/v1
t_is "the saved apiPath is used directly" "$(rec "$T_TMP/apiv1.jsonl" 'r.slice(2).map(x=>x.path).join()')" "/api/v1/models"

api POST "$P/$D/check" "{}"
t_is "check of a down upstream: 400" "$T_STATUS" 400
t_is "check of a down upstream: success false" "$(jget success)" false
t_like "check: tried https after http" "$(jeval 'd.log.join("|")')" '^→ Trying base: http://127\.0\.0\.1:[0-9]+  \(will probe: /v1, /api/v1\)\|✗ Failed: Failed to list models \(tried: /v1\): cannot connect.*\|→ Retrying with HTTPS\.\.\.\|→ Trying base: https://127\.0\.0\.1:[0-9]+  .*\|✗ HTTPS also failed: '
t_like "check: the error" "$(jget error)" '^Failed to list models'
api POST $P '{"name":"No URL","type":"openai"}'
NOURL=$(jget _id)
api POST "$P/$NOURL/check" "{}"
t_is "check without a baseUrl: 400" "$T_STATUS" 400
t_is "check without a baseUrl: the answer" "$T_BODY" '{"success":false,"error":"No base URL configured","log":["✗ No base URL configured"]}'
api POST "$P/$NOPE/check" "{}"
t_is "check unknown: 404" "$T_STATUS" 404

# --- discover: merged with the registry ----------------------------------------------------------------------
api POST "$P/$A/discover" "{}"
t_is "discover: 200" "$T_STATUS" 200
t_is "discover: count" "$(jget count)" 4
t_is "discover: the models" "$(jeval 'd.models.map(m=>m.id).join()')" "gpt-4o-mini,gpt-4o,claude-3-5-sonnet-20241022,some-unknown-model-xyz"
t_is "discover: apiPath" "$(jget apiPath)" /v1
t_is "discover: enrichedCount counts the tiered models" "$(jget enrichedCount)" "$(jeval 'd.models.filter(m=>m.tier).length')"
t_like "discover: registry models got tiers" "$(jeval 'd.models.slice(0,3).map(m=>m.tier).join()')" '^[a-z]+,[a-z]+,[a-z]+$'
t_is "discover: shape of a new model" "$(jeval 'Object.keys(d.models[0]).sort().join()')" \
	"capabilities,categories,contextWindow,id,inputPer1M,manualContext,manualPricing,maxOutputTokens,name,notes,outputPer1M,ownedBy,priority,tier,visible"
t_is "discover: ownedBy from the upstream" "$(jeval 'd.models[0].ownedBy')" fake-upstream
t_is "discover: an unknown model stays untiered and unpriced" "$(jeval '[d.models[3].tier,d.models[3].inputPer1M,d.models[3].priority].join("/")')" "//50"
disc=$T_BODY
api GET "$P/models/suggest?modelId=gpt-4o-mini"
t_is "suggest: 200" "$T_STATUS" 200
t_is "suggest: from the local registry" "$(jget source)" local_registry
sugg=$T_BODY
t_is "discover took the registry's tier" "$(T_BODY=$disc jeval 'd.models[0].tier')" "$(T_BODY=$sugg jeval 'd.tier')"
t_is "and its context window" "$(T_BODY=$disc jeval 'd.models[0].contextWindow')" "$(T_BODY=$sugg jeval 'd.contextWindow')"
t_is "and prices (openai table or registry)" "$(T_BODY=$disc jeval 'd.models[0].inputPer1M+"/"+d.models[0].outputPer1M')" "0.15/0.6"
api GET "$P/$A"
t_is "discover: the document holds the merged list" "$(jeval 'd.discoveredModels.map(m=>m.id+":"+(m.tier||"-")).join()')" \
	"$(T_BODY=$disc jeval 'd.models.map(m=>m.id+":"+(m.tier||"-")).join()')"
t_is "discover: connected" "$(jget status)" connected

api POST $P "{\"name\":\"Local Ollama\",\"type\":\"ollama\",\"config\":{\"baseUrl\":\"$UP_ollama\",\"auth\":{\"apiKey\":\"$KEY\"}}}"
O=$(jget _id)
api POST "$P/$O/discover" "{}"
t_is "Ollama: 200" "$T_STATUS" 200
t_is "Ollama: models from /api/tags" "$(jeval 'd.models.map(m=>m.id+"@"+m.ownedBy).join()')" "llama3.1:8b@ollama,qwen2.5-coder:7b@ollama"
t_is "Ollama: only /api/tags was asked" "$(rec "$T_TMP/ollama.jsonl" 'r.map(x=>x.path).join()')" "/api/tags"
t_is "Ollama: no key sent" "$(rec "$T_TMP/ollama.jsonl" 'String(r[0].headers.authorization)')" undefined

api POST $P '{"name":"Azure native","type":"azure","config":{"baseUrl":"https://example.openai.azure.com"}}'
AZ=$(jget _id)
for verb in test check discover; do
	api POST "$P/$AZ/$verb" "{}"
	t_is "azure $verb: 400" "$T_STATUS" 400
	t_like "azure $verb: not supported yet" "$(jget error)" 'not supported yet for type azure'
done
api POST $P '{"name":"Bedrock native","type":"bedrock","config":{"auth":{"type":"aws_credentials","accessKeyId":"AKIAEXAMPLE1234","secretAccessKey":"bedrock-secret-value-1","region":"eu-west-1"}}}'
BR=$(jget _id)
t_is "bedrock: both AWS secrets masked" "$(jget config.auth.accessKeyId)/$(jget config.auth.secretAccessKey)/$(jget config.auth.region)" '***/***/eu-west-1'
t_unlike "bedrock: neither stored in clear" "$("$PRISMCTL" dump providers --config "$T_CONF")" 'AKIAEXAMPLE1234|bedrock-secret-value-1'
api POST "$P/$BR/test" "{}"
t_like "bedrock test: not supported yet" "$T_STATUS $(jget error)" '^400 .*not supported yet for type bedrock'

# A discovery next to an edit loses neither (the write is retried on the fresh document).
api PUT "$P/$S" '{"config":{"options":{"timeoutMs":10000}}}'
curl -s -o "$T_TMP/bg-discover" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADM_TOKEN" -H "Content-Type: application/json" --data-binary "{}" "$T_BASE$P/$S/discover" \
	>"$T_TMP/bg-discover.status" &
disc_pid=$!
sleep 1
api PUT "$P/$S" '{"name":"Slow but renamed"}'
t_is "an edit while a discovery runs: 200" "$T_STATUS" 200
wait "$disc_pid"
t_is "the discovery next to it: 200" "$(cat "$T_TMP/bg-discover.status")" 200
api GET "$P/$S"
t_is "the discovery landed" "$(jeval 'd.discoveredModels.length')" 4
t_is "and the edit is kept" "$(jget name)" "Slow but renamed"

# --- model metadata -------------------------------------------------------------------------------------------
api PATCH "$P/$A/models/gpt-4o-mini" '{"tier":"high","priority":77,"notes":"pinned","inputPer1M":1.5,"outputPer1M":2.5,"visible":false,"categories":["coding"]}'
t_is "PATCH model: 200" "$T_STATUS" 200
t_is "PATCH model: the model" "$(jeval '[d.id,d.tier,d.priority,d.notes,d.inputPer1M,d.outputPer1M,d.visible,d.manualPricing,d.categories].join("/")')" \
	"gpt-4o-mini/high/77/pinned/1.5/2.5/false/true/coding"
api PATCH "$P/$A/models/gpt-4o" '{"contextWindow":0,"maxOutputTokens":4096}'
t_is "PATCH context: 0 stored as null, manualContext" "$(jeval '[d.contextWindow,d.maxOutputTokens,d.manualContext].join("/")')" "/4096/true"
api PATCH "$P/$A/models/gpt-4o" '{"tier":null,"inputPer1M":null}'
t_is "PATCH null: cleared, manualPricing" "$(jeval '[d.tier,d.inputPer1M,d.manualPricing].join("/")')" "//true"
api GET "$P/$A"
t_is "GET shows the PATCH" "$(jeval 'd.discoveredModels.filter(m=>m.id==="gpt-4o-mini").map(m=>[m.tier,m.inputPer1M,m.manualPricing,m.visible].join("/")).join()')" "high/1.5/true/false"
api POST "$P/$A/discover" "{}"
t_is "rediscover keeps manual prices and the set tier" "$(jeval 'd.models.filter(m=>m.id==="gpt-4o-mini").map(m=>[m.tier,m.inputPer1M,m.outputPer1M,m.notes,m.visible].join("/")).join()')" "high/1.5/2.5/pinned/false"
t_is "rediscover keeps manual context" "$(jeval 'd.models.filter(m=>m.id==="gpt-4o").map(m=>[m.contextWindow,m.maxOutputTokens].join("/")).join()')" "/4096"
bad_patch() {   # NAME BODY REGEX
	api PATCH "$P/$A/models/gpt-4o-mini" "$2"
	t_is "PATCH $1: 400" "$T_STATUS" 400
	t_like "PATCH $1: names the field" "$(jget error)" "$3"
}
bad_patch "bad tier" '{"tier":"mega"}' '^tier: must be one of critical, ultra'
bad_patch "priority 0" '{"priority":0}' '^priority: must be between 1 and 100'
bad_patch "priority a string" '{"priority":"high"}' '^priority: must be an integer'
bad_patch "negative price" '{"inputPer1M":-1}' '^inputPer1M: must be between 0'
bad_patch "price a string" '{"outputPer1M":"1"}' '^outputPer1M: must be a number'
bad_patch "categories a string" '{"categories":"coding"}' '^categories: must be an array'
bad_patch "oversize notes" "{\"notes\":\"$(printf 'n%.0s' $(seq 1 4001))\"}" '^notes: must be at most 4000'
bad_patch "visible a string" '{"visible":"yes"}' '^visible: must be true or false'
bad_patch "contextWindow negative" '{"contextWindow":-5}' '^contextWindow: must be between'
t_http -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary '{' "$T_BASE$P/$A/models/gpt-4o-mini"
t_is "PATCH not JSON: 400" "$T_STATUS" 400
api PATCH "$P/$A/models/no-such-model" '{"priority":5}'
t_is "PATCH unknown model: 404" "$T_STATUS/$(jget error)" "404/Model not found in provider"
api PATCH "$P/$NOPE/models/gpt-4o" '{"priority":5}'
t_is "PATCH unknown provider: 404" "$T_STATUS/$(jget error)" "404/Provider not found"
api PATCH "$P/$O/models/llama3.1%3A8b" '{"priority":9}'
t_is "PATCH a model id with a percent-encoded colon" "$T_STATUS/$(jget priority)" "200/9"

api GET "$P/models/all"
t_is "models/all: 200" "$T_STATUS" 200
t_is "models/all: prefixed ids" "$(jeval 'd.filter(m=>m.providerId==="'"$A"'").map(m=>m.prefixedId).join()')" \
	"fake-openai/gpt-4o-mini,fake-openai/gpt-4o,fake-openai/claude-3-5-sonnet-20241022,fake-openai/some-unknown-model-xyz"
t_is "models/all: shape" "$(jeval 'Object.keys(d[0]).sort().join()')" \
	"capabilities,categories,contextWindow,id,inputPer1M,maxOutputTokens,name,notes,outputPer1M,prefixedId,priority,providerId,providerName,providerSlug,providerStatus,providerType,tier,visible"
t_is "models/all: the PATCHed model" "$(jeval 'd.filter(m=>m.prefixedId==="fake-openai/gpt-4o-mini").map(m=>[m.priority,m.visible,m.providerStatus].join("/")).join()')" "77/false/connected"
api GET "$P/models/suggest"
t_is "suggest without modelId: 400" "$T_STATUS/$(jget error)" "400/modelId required"
api GET "$P/models/suggest?modelId=zzqx-nothing-like-it-9q9q"
t_is "suggest unknown: 404" "$T_STATUS/$(jget error)" "404/No suggestion found for this model ID"
api GET "$P/models/suggest?modelId=$(printf 'm%.0s' $(seq 1 300))"
t_like "suggest with an oversize id: 400" "$T_STATUS $(jget error)" '^400 modelId: '

# reorder-tier: 100 - i*floor(90/n).
api POST "$P/models/reorder-tier" "{\"items\":[{\"providerId\":\"$A\",\"modelId\":\"gpt-4o\"},{\"providerId\":\"$A\",\"modelId\":\"gpt-4o-mini\"},{\"providerId\":\"$V\",\"modelId\":\"gpt-4o\"},{\"providerId\":\"$NOPE\",\"modelId\":\"x\"}]}"
t_is "reorder-tier: 200" "$T_STATUS" 200
t_is "reorder-tier: answer" "$T_BODY" '{"success":true,"updated":3}'
api GET "$P/$A"
t_is "reorder-tier: priorities 100, 78" "$(jeval '["gpt-4o","gpt-4o-mini"].map(i=>d.discoveredModels.find(m=>m.id===i).priority).join()')" "100,78"
api GET "$P/$V"
t_is "reorder-tier: across providers (third: 56)" "$(jeval 'd.discoveredModels.find(m=>m.id==="gpt-4o").priority')" 56
api POST $P "{\"name\":\"Many\",\"type\":\"vllm\",\"config\":{\"baseUrl\":\"$UP_many\"}}"
M=$(jget _id)
api POST "$P/$M/discover" "{}"
t_is "95 models discovered" "$(jget count)" 95
items=$(for i in $(seq -f '%02g' 1 95); do printf '{"providerId":"%s","modelId":"bulk-model-%s"},' "$M" "$i"; done)
api POST "$P/models/reorder-tier" "{\"items\":[${items%,}]}"
t_is "reorder-tier of 95: 200" "$T_STATUS" 200
api GET "$P/$M"
t_is "more than 90 items still get distinct decreasing priorities" \
	"$(jeval 'd.discoveredModels.map(m=>m.priority).every((p,i,a)=>i===0||p<a[i-1])+" "+d.discoveredModels[0].priority+" "+d.discoveredModels[94].priority')" "true 100 6"
api POST "$P/models/reorder-tier" '{"items":[]}'
t_like "reorder-tier without items: 400" "$T_STATUS $(jget error)" '^400 items: '
api POST "$P/models/reorder-tier" '{"items":[{"providerId":"zz","modelId":"m"}]}'
t_like "reorder-tier with a bad id: 400 naming it" "$T_STATUS $(jget error)" '^400 items\[0\]\.providerId: '
api POST "$P/models/reorder-tier" "{\"items\":[{\"providerId\":\"$A\"}]}"
t_like "reorder-tier without modelId: 400" "$T_STATUS $(jget error)" '^400 items\[0\]\.modelId: is required'

# --- list order -----------------------------------------------------------------------------------------------
api GET $P
t_is "list in creation order" "$(jeval 'd.slice(0,3).map(p=>p._id).join()')" "$A,$B,$C"
api POST "$P/reorder" "{\"ids\":[\"$C\",\"$A\"]}"
t_is "reorder: 200" "$T_STATUS" 200
api GET $P
t_is "reorder: listed ones first, the rest after in their order" "$(jeval 'd.slice(0,3).map(p=>p._id).join()+" "+d.map(p=>p.order).join()')" \
	"$C,$A,$B $(seq -s, 0 $(( $(jeval 'd.length') - 1 )))"
api POST "$P/reorder" "{\"ids\":[\"$C\",\"$C\"]}"
t_like "reorder with a duplicate: 400" "$T_STATUS $(jget error)" '^400 ids\[1\]: '
api POST "$P/reorder" "{\"ids\":[\"$NOPE\"]}"
t_is "reorder with an unknown id: 404" "$T_STATUS" 404
api POST "$P/reorder" '{"ids":"x"}'
t_like "reorder with a bad body: 400" "$T_STATUS $(jget error)" '^400 ids: '

# --- roles ----------------------------------------------------------------------------------------------------
AUD=$(adm_user audrey auditor)
if [ -n "$AUD" ]; then
	TOKEN=$AUD api GET $P
	t_is "auditor: list 200" "$T_STATUS" 200
	t_unlike "auditor: no secrets" "$T_BODY" "$KEY|enc:"
	TOKEN=$AUD api GET "$P/$A"
	t_is "auditor: get 200" "$T_STATUS" 200
	TOKEN=$AUD api GET "$P/models/all"
	t_is "auditor: models/all 200" "$T_STATUS" 200
	TOKEN=$AUD api POST $P '{"name":"x","type":"openai"}'
	t_is "auditor: create 403" "$T_STATUS" 403
	TOKEN=$AUD api PUT "$P/$A" '{"name":"x"}'
	t_is "auditor: update 403" "$T_STATUS" 403
	TOKEN=$AUD api DELETE "$P/$A"
	t_is "auditor: delete 403" "$T_STATUS" 403
	TOKEN=$AUD api POST "$P/$A/test" "{}"
	t_is "auditor: test 403" "$T_STATUS" 403
	TOKEN=$AUD api PATCH "$P/$A/models/gpt-4o" '{"priority":1}'
	t_is "auditor: PATCH model 403" "$T_STATUS" 403
	TOKEN=$AUD api POST "$P/models/reorder-tier" '{"items":[]}'
	t_is "auditor: reorder-tier 403" "$T_STATUS" 403
	FIN=$(adm_user fiona finops)
	TOKEN=$FIN api GET $P
	t_is "finops: list 403" "$T_STATUS" 403
	MNT=$(adm_user marty maintainer)
	TOKEN=$MNT api POST $P '{"name":"By maintainer","type":"custom"}'
	t_is "maintainer: create 201" "$T_STATUS" 201
	TOKEN=$MNT api DELETE "$P/$(jget _id)"
	t_is "maintainer: delete 200" "$T_STATUS" 200
else
	t_fail "users can be created for the role checks"
fi
TOKEN= api GET $P
t_is "no token: 401" "$T_STATUS" 401

# --- delete cascade -------------------------------------------------------------------------------------------
api POST /api/prism/admin/tenants "{\"slug\":\"team-p\",\"name\":\"Team P\",\"providerIds\":[\"$A\",\"$B\"]}"
if [ "$T_STATUS" = 201 ]; then
	TID=$(jget _id)
	api PUT "/api/prism/admin/tenants/$TID" "{\"routing\":{\"classifierProvider\":\"$A\",\"classifierModel\":\"gpt-4o-mini\",\"classifierFallbacks\":[{\"model\":\"gpt-4o\",\"provider\":\"$A\"},{\"model\":\"m\",\"provider\":\"$B\"}]},\"fallbackChains\":[{\"modelPattern\":\"*\",\"providers\":[\"$A\",\"$B\"]}],\"modelFallbacks\":[{\"sourcePattern\":\"*\",\"fallbacks\":[{\"model\":\"gpt-4o\",\"providerId\":\"$A\"},{\"model\":\"m\",\"providerId\":\"$B\"}]}]}"
	t_is "tenant with every kind of provider reference: 200" "$T_STATUS" 200
	api POST /api/prism/admin/tenants "{\"slug\":\"team-q\",\"name\":\"Team Q\",\"providerIds\":[\"$B\"]}"
	api DELETE "$P/$A"
	t_is "delete: 200" "$T_STATUS" 200
	t_is "delete: answer" "$T_BODY" '{"success":true,"cascade":{"tenantsUpdated":1}}'
	api GET "/api/prism/admin/tenants/$TID"
	t=$(printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const j=JSON.parse(s);const d=j.tenant||j;
		process.stdout.write(JSON.stringify([d.providerIds,d.routing.classifierProvider||null,d.routing.classifierModel||null,
		d.routing.classifierFallbacks.map(f=>f.provider),d.fallbackChains[0].providers,d.modelFallbacks[0].fallbacks.map(f=>f.providerId)]))})')
	t_is "delete: every reference to it is gone" "$t" "[[\"$B\"],null,null,[\"$B\"],[\"$B\"],[null,\"$B\"]]"
else
	t_diag "tenants endpoint not usable ($T_STATUS $T_BODY): the cascade into tenants is not tested"
	echo "ok $((T_N + 1)) # SKIP delete cascade (no tenants module)"; T_N=$((T_N + 1))
	api DELETE "$P/$A"
	t_is "delete: 200" "$T_STATUS" 200
	t_is "delete: answer" "$T_BODY" '{"success":true,"cascade":{"tenantsUpdated":0}}'
fi
api GET "$P/$A"
t_is "deleted: 404" "$T_STATUS" 404
api DELETE "$P/$A"
t_is "delete again: 404" "$T_STATUS" 404

# --- audit ----------------------------------------------------------------------------------------------------
api GET "/api/prism/admin/audit?target=provider&limit=1000"
t_is "audit: 200" "$T_STATUS" 200
t_is "audit: create, update, delete, test, check, discover, reorder recorded" \
	"$(jeval '["create","update","delete","test","check","discover","reorder"].filter(a=>d.changes.some(c=>c.action===a)).join()')" \
	"create,update,delete,test,check,discover,reorder"
t_like "audit: the URL a test called" "$(jeval 'd.changes.filter(c=>c.action==="test").map(c=>c.summary).join("|")')" "$UP_main"
t_like "audit: a key change is recorded as such" "$(jeval 'd.changes.filter(c=>c.action==="update").map(c=>JSON.stringify(c.changes)).join()')" '"field":"config\.auth\.apiKey","before":"\(set\)","after":"\(changed\)"'
api GET "/api/prism/admin/audit?target=model&limit=1000"
t_like "audit: model changes" "$(jeval 'd.changes.map(c=>c.action+" "+c.targetName).join("|")')" 'update gpt-4o-mini \(Fake OpenAI \(renamed\)\)'
t_like "audit: reorder-tier" "$(jeval 'd.changes.map(c=>c.action).join()')" 'reorder'
api GET "/api/prism/admin/audit?limit=1000"
t_unlike "audit: no key, no ciphertext" "$T_BODY" "$KEY|$WRONG|AKIAEXAMPLE1234|bedrock-secret-value-1|enc:"

# --- secrets never answered -----------------------------------------------------------------------------------
t_unlike "no response carried a key or a ciphertext" "$(cat "$T_TMP/all-bodies")" "$KEY|$WRONG|AKIAEXAMPLE1234|bedrock-secret-value-1|enc:[0-9a-f]"
t_unlike "the log has no key" "$(cat "$T_TMP/prism.log")" "$KEY|$WRONG|bedrock-secret-value-1"
t_is "every request to the keyed upstream carried the decrypted key or the wrong one" \
	"$(rec "$T_TMP/main.jsonl" 'r.filter(x=>x.path.endsWith("/models")).every(x=>x.headers.authorization==="Bearer '"$KEY"'"||x.headers.authorization==="Bearer '"$WRONG"'")')" true
t_done
