#!/bin/bash
# Tenants, their API keys and the tenant portal: shapes of every answer, slug rules, PUT merging and
# validation (400 naming the field), concurrent updates, the one key system (a key is shown once, stored
# only as its SHA-256, apiKeyHashes exact), migration of the original's single-key fields, the delete
# cascade, portal scoping for each tenant role, and the audit trail without key material.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node sqlite3 sha256sum

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" "offline = true" || { t_fail "started"; t_done; exit; }
DEF=$(jget defaultTenant._id)
DEF_KEY=$(jget defaultTenant.apiKey)
t_like "the default tenant from the setup" "$DEF" '^[0-9a-f]{24}$'

# Every response body is kept for the final "no key material" checks.
adm_keep_bodies
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# An extended regex matching the text literally.
re_quote() { printf '%s' "$1" | sed -e 's/\./\\./g' -e 's/\[/\\[/g' -e 's/]/\\]/g'; }
# stored KEY: "yes" when the store holds the key's SHA-256 (in apiKeys[].hash and apiKeyHashes), else "no".
stored() { if dump | grep -q "$(sha "$1")"; then echo yes; else echo no; fi; }
dump() { "$PRISMCTL" dump --config "$T_CONF" --limit 1000 tenants 2>&1; }
# dump_eval SLUG EXPR: a JavaScript expression over the stored document `t` of that tenant.
dump_eval() {
	dump | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const t=JSON.parse(s).find(x=>x.slug===process.argv[1]);
		const r=(new Function("t","return ("+process.argv[2]+")"))(t);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$1" "$2"
}
DB=$(sed -n 's/^store *= *sqlite://p' "$T_CONF" | tail -n1)
[ -n "$DB" ] || DB=$T_TMP/data/prism.db
sql() { sqlite3 -cmd '.timeout 10000' "$DB" "$@"; }
T=/api/prism/admin/tenants
PORTAL=/api/prism/tenant-portal
NOPE=0123456789abcdef01234567
NOW=2026-01-01T00:00:00.000Z
# Keys that must never appear in an answer after the one that created them.
SECRETS=()

# --- providers (store documents, as discovery would leave them) ----------------------------------------------
P1=aaaaaaaaaaaaaaaaaaaaaaa1
P2=aaaaaaaaaaaaaaaaaaaaaaa2
sql "INSERT INTO providers (id, v, doc) VALUES
 ('$P1', 0, '{\"name\":\"Prov One\",\"slug\":\"prov-one\",\"type\":\"openai\",\"discoveredModels\":[{\"id\":\"gpt-a\",\"visible\":true,\"tier\":\"low\"},{\"id\":\"gpt-b\"},{\"id\":\"gpt-hidden\",\"visible\":false}],\"createdAt\":\"$NOW\",\"updatedAt\":\"$NOW\"}'),
 ('$P2', 0, '{\"name\":\"Prov Two\",\"slug\":\"prov-two\",\"type\":\"ollama\",\"discoveredModels\":[{\"id\":\"llama-x\"}],\"createdAt\":\"$NOW\",\"updatedAt\":\"$NOW\"}');"
t_is "providers stored" "$(sql 'SELECT count(*) FROM providers')" 2

# --- create ---------------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api POST $T "{\"slug\":\"team-a\",\"name\":\"Team A\",\"providerIds\":[\"$P1\",\"$P1\"],\"keyLifetimeDays\":30,\"routing\":{\"enabled\":false}}"
t_is "create: 201" "$T_STATUS" 201
TA=$(jget _id)
KEY_A=$(jget apiKey)
SECRETS+=("$KEY_A")
t_like "create: _id" "$TA" '^[0-9a-f]{24}$'
t_like "create: a generated key, once" "$KEY_A" '^omp-[0-9a-f]{64}$'
t_is "create: keyPrefix = the first 12 characters" "$(jget keyPrefix)" "${KEY_A:0:12}"
t_is "create: slug and name" "$(jeval 'd.slug+"/"+d.name')" "team-a/Team A"
t_is "create: providerIds deduplicated" "$(jget providerIds)" "[\"$P1\"]"
t_is "create: schema defaults" "$(jeval '[d.modelConfig.mode,d.routing.forceAutoRouteMode,d.routing.overrides.toolCallMinTier,d.active,d.isDefault,d.keyLifetimeDays,d.stripThinking].join()')" "all,off,medium,true,false,30,true"
t_is "create: one key, the primary" "$(jeval 'd.apiKeys.map(k=>[k.label,k.prefix,k.enabled,k.custom,k.isPrimary].join("|")).join()')" "Primary key|${KEY_A:0:12}|true|false|true"
t_like "create: the key expires in 30 days" "$(jeval 'Math.round((Date.parse(d.apiKeys[0].expiresAt)-Date.now())/864e5)')" '^(29|30)$'
t_is "create: no hash, encrypted copy or hash list" "$(jeval 'JSON.stringify(d).match(/"(hash|encrypted|apiKeyHash|apiKeyEncrypted|apiKeyHashes|apiKeyPlaintext)"/g)')" null
t_is "create: stored only as its SHA-256" "$(stored "$KEY_A")" yes
t_is "create: the key itself is not stored" "$(dump | grep -c -- "$KEY_A")" 0

TOKEN=$ADM_TOKEN api GET $T
t_is "list: 200" "$T_STATUS" 200
t_is "list: a bare array with both tenants" "$(jeval 'd.map(t=>t.slug).join()')" "api,team-a"
t_is "list: no apiKey, no hashes" "$(jeval 'JSON.stringify(d).match(/"(apiKey|hash|encrypted|apiKeyHash|apiKeyHashes)"/g)')" null
TOKEN=$ADM_TOKEN api GET "$T/$TA"
t_is "get: 200" "$T_STATUS" 200
t_is "get: the same view" "$(jeval '[d._id,d.slug,d.apiKeys.length,"apiKey" in d,"__v" in d].join()')" "$TA,team-a,1,false,true"
TOKEN=$ADM_TOKEN api GET "$T/$NOPE"
t_is "get unknown: 404" "$T_STATUS" 404
t_is "get unknown: message" "$(jget error)" "Tenant not found"
TOKEN=$ADM_TOKEN api GET "$T/not-an-id"
t_is "get malformed id: 404" "$T_STATUS" 404

# --- slug rules and create validation ------------------------------------------------------------------------
create_fails() {   # NAME BODY STATUS FIELD
	TOKEN=$ADM_TOKEN api POST $T "$2"
	t_is "create $1: $3" "$T_STATUS" "$3"
	[ -n "${4:-}" ] && t_like "create $1: names $4" "$(jget error)" "^$4"
}
create_fails "bad slug (capitals, underscore)" '{"slug":"Team_B","name":"B"}' 400 'slug:'
create_fails "slug with a leading dash" '{"slug":"-b","name":"B"}' 400 'slug:'
create_fails "slug of 49 characters" "{\"slug\":\"$(printf 'b%.0s' $(seq 1 49))\",\"name\":\"B\"}" 400 'slug:'
create_fails "reserved slug" '{"slug":"admin","name":"B"}' 400 'slug: "admin" is reserved'
create_fails "reserved slug tenant-portal" '{"slug":"tenant-portal","name":"B"}' 400 'slug:'
create_fails "duplicate slug" '{"slug":"team-a","name":"B"}' 409
create_fails "the default tenant's slug" '{"slug":"api","name":"B"}' 409
create_fails "without a name" '{"slug":"team-b"}' 400 'name: is required'
create_fails "slug of the wrong type" '{"slug":5,"name":"B"}' 400 'slug: must be a string'
create_fails "with an unknown provider" "{\"slug\":\"team-b\",\"name\":\"B\",\"providerIds\":[\"$NOPE\"]}" 400 'providerIds\[0\]: no provider'
create_fails "with a lifetime over 10 years" '{"slug":"team-b","name":"B","keyLifetimeDays":3651}' 400 'keyLifetimeDays:'
create_fails "with a past expiry" '{"slug":"team-b","name":"B","expiresAt":"2001-01-01"}' 400 'expiresAt: must be in the future'
create_fails "not JSON" '{"slug":' 400
t_is "failed creates left nothing behind" "$(sql 'SELECT count(*) FROM tenants')" 2

TOKEN=$ADM_TOKEN api POST $T "{\"slug\":\"team-b\",\"name\":\"Team B\",\"providerIds\":[\"$P2\"],\"expiresAt\":\"2099-12-31\"}"
t_is "create team-b with an expiry date: 201" "$T_STATUS" 201
TB=$(jget _id)
SECRETS+=("$(jget apiKey)")
t_is "create: expiresAt as given" "$(jeval 'd.apiKeys[0].expiresAt')" "2099-12-31T00:00:00.000Z"

# --- PUT: merge ---------------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api PUT "$T/$TA" '{"routing":{"enabled":true,"defaultModel":"gpt-a","overrides":{"toolCallMinTier":"high"}}}'
t_is "put routing: 200" "$T_STATUS" 200
t_is "put routing: sub-fields set, defaults kept" "$(jeval '[d.routing.enabled,d.routing.defaultModel,d.routing.overrides.toolCallMinTier,d.routing.overrides.visionUpgrade].join()')" "true,gpt-a,high,true"
TOKEN=$ADM_TOKEN api PUT "$T/$TA" '{"routing":{"forceAutoRouteMode":"smart"}}'
t_is "put routing again: omitted sub-fields kept" "$(jeval '[d.routing.forceAutoRouteMode,d.routing.enabled,d.routing.defaultModel,d.routing.overrides.toolCallMinTier].join()')" "smart,true,gpt-a,high"
TOKEN=$ADM_TOKEN api PUT "$T/$TA" '{"routing":{"defaultModel":null}}'
t_is "put routing: null clears a model" "$(jeval '"defaultModel" in d.routing')" false
TOKEN=$ADM_TOKEN api PUT "$T/$TA" '{"name":"Team A2","bogus":1,"isDefault":true,"apiKeyHash":"abc","slug":"team-a"}'
t_is "put name: 200" "$T_STATUS" 200
t_is "put name: others kept, unknown and protected fields ignored" "$(jeval '[d.name,d.routing.forceAutoRouteMode,d.isDefault,"bogus" in d,d.providerIds.length].join()')" "Team A2,smart,false,false,1"
t_is "put: apiKeyHash not written" "$(dump_eval team-a '"apiKeyHash" in t')" false
TOKEN=$ADM_TOKEN api PUT "$T/$TA" "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"gpt-a\"],\"aliases\":{\"fast\":\"gpt-a\"}},\"pricing\":{\"gpt-a\":{\"input\":1.5,\"output\":2}},\"rateLimit\":{\"requestsPerMinute\":60},\"budgetLimits\":{\"dailyUsd\":5},\"budgetGuard\":{\"enabled\":true,\"blockTiers\":[\"high\",\"premium\"]},\"fallbackChains\":[{\"modelPattern\":\"*\",\"providers\":[\"$P1\",\"$P2\"],\"maxRetries\":3}],\"modelFallbacks\":[{\"type\":\"next-tier\",\"sourcePattern\":\"gpt-*\",\"fallbacks\":[{\"model\":\"llama-x\",\"providerId\":\"$P2\"},{\"model\":\"gpt-b\"}]}],\"defaultSystemPrompt\":\"\",\"stripThinking\":false,\"printRoutedModel\":true,\"routing\":{\"classifierProvider\":\"$P1\",\"classifierModel\":\"gpt-b\",\"classifierFallbacks\":[{\"model\":\"llama-x\",\"provider\":\"$P2\"}]}}"
t_is "put everything: 200" "$T_STATUS" 200
t_is "put: modelConfig" "$(jget modelConfig)" '{"mode":"whitelist","list":["gpt-a"],"aliases":{"fast":"gpt-a"}}'
t_is "put: pricing" "$(jget pricing)" '{"gpt-a":{"input":1.5,"output":2}}'
t_is "put: rateLimit merged" "$(jget rateLimit)" '{"requestsPerMinute":60,"tokensPerMinute":0}'
t_is "put: budgetLimits merged" "$(jeval '[d.budgetLimits.dailyUsd,d.budgetLimits.weeklyUsd].join()')" "5,0"
t_is "put: budgetGuard merged" "$(jeval '[d.budgetGuard.enabled,d.budgetGuard.thresholdPct,d.budgetGuard.blockTiers.join("+"),d.budgetGuard.guardCostMode].join()')" "true,80,high+premium,economy"
t_is "put: fallbackChains" "$(jget fallbackChains)" "[{\"modelPattern\":\"*\",\"providers\":[\"$P1\",\"$P2\"],\"maxRetries\":3}]"
t_is "put: modelFallbacks" "$(jget modelFallbacks)" "[{\"type\":\"next-tier\",\"sourcePattern\":\"gpt-*\",\"fallbacks\":[{\"model\":\"llama-x\",\"providerId\":\"$P2\"},{\"model\":\"gpt-b\",\"providerId\":null}]}]"
t_is "put: flags and prompt" "$(jeval '[JSON.stringify(d.defaultSystemPrompt),d.stripThinking,d.printRoutedModel].join()')" '"",false,true'
t_is "put: classifier" "$(jeval '[d.routing.classifierProvider,d.routing.classifierModel,d.routing.classifierFallbacks[0].provider,d.routing.enabled].join()')" "$P1,gpt-b,$P2,true"

# --- PUT: validation, each 400 names the field -------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "$T/$TA"
BEFORE_V=$(jget __v)
put_fails() {   # BODY FIELD-PREFIX
	TOKEN=$ADM_TOKEN api PUT "$T/$TA" "$1"
	t_is "put $1: 400" "$T_STATUS" 400
	t_like "put $1: names $2" "$(jget error)" "^$(re_quote "$2"):"
}
put_fails '{"name":5}' name
put_fails '{"name":" "}' name
put_fails '{"active":"yes"}' active
put_fails '{"providerIds":"x"}' providerIds
put_fails "{\"providerIds\":[\"$P1\",\"$NOPE\"]}" 'providerIds[1]'
put_fails '{"providerIds":["zz"]}' 'providerIds[0]'
put_fails '{"modelConfig":[]}' modelConfig
put_fails '{"modelConfig":{"mode":"some"}}' modelConfig.mode
put_fails '{"modelConfig":{"list":[1]}}' 'modelConfig.list[0]'
put_fails '{"modelConfig":{"aliases":{"a":3}}}' modelConfig.aliases.a
put_fails '{"routing":"on"}' routing
put_fails '{"routing":{"enabled":"true"}}' routing.enabled
put_fails '{"routing":{"forceAutoRouteMode":"sometimes"}}' routing.forceAutoRouteMode
put_fails "{\"routing\":{\"classifierProvider\":\"$NOPE\"}}" routing.classifierProvider
put_fails '{"routing":{"defaultModel":7}}' routing.defaultModel
put_fails '{"routing":{"overrides":{"toolCallMinTier":"mega"}}}' routing.overrides.toolCallMinTier
put_fails '{"routing":{"overrides":{"confidenceThreshold":2}}}' routing.overrides.confidenceThreshold
put_fails '{"routing":{"classifierFallbacks":[{"provider":null}]}}' 'routing.classifierFallbacks[0].model'
put_fails '{"pricing":{"m":{"input":-1,"output":1}}}' pricing.m.input
put_fails '{"pricing":{"m":{"input":1}}}' pricing.m.output
put_fails '{"pricing":{"m":5}}' pricing.m
put_fails '{"rateLimit":{"requestsPerMinute":-5}}' rateLimit.requestsPerMinute
put_fails '{"rateLimit":{"tokensPerMinute":1.5}}' rateLimit.tokensPerMinute
put_fails '{"budgetLimits":{"dailyUsd":"5"}}' budgetLimits.dailyUsd
put_fails '{"budgetGuard":{"guardCostMode":"cheap"}}' budgetGuard.guardCostMode
put_fails '{"budgetGuard":{"blockTiers":["giant"]}}' 'budgetGuard.blockTiers[0]'
put_fails '{"budgetGuard":{"thresholdPct":101}}' budgetGuard.thresholdPct
put_fails '{"keyLifetimeDays":3651}' keyLifetimeDays
put_fails '{"stripThinking":1}' stripThinking
put_fails '{"printRoutedModel":null,"defaultSystemPrompt":false}' defaultSystemPrompt
put_fails "{\"defaultSystemPrompt\":\"$(head -c 16385 /dev/zero | tr '\0' x)\"}" defaultSystemPrompt
put_fails '{"fallbackChains":{}}' fallbackChains
put_fails '{"fallbackChains":[{"providers":[]}]}' 'fallbackChains[0].modelPattern'
put_fails '{"fallbackChains":[{"modelPattern":"*","maxRetries":11}]}' 'fallbackChains[0].maxRetries'
put_fails "{\"fallbackChains\":[{\"modelPattern\":\"*\",\"providers\":[\"$NOPE\"]}]}" 'fallbackChains[0].providers[0]'
put_fails '{"modelFallbacks":[{"type":"other","sourcePattern":"x"}]}' 'modelFallbacks[0].type'
put_fails '{"modelFallbacks":[{"sourcePattern":"x","fallbacks":[{"providerId":null}]}]}' 'modelFallbacks[0].fallbacks[0].model'
put_fails "{\"modelFallbacks\":[{\"sourcePattern\":\"x\",\"fallbacks\":[{\"model\":\"m\",\"providerId\":\"$NOPE\"}]}]}" 'modelFallbacks[0].fallbacks[0].providerId'
put_fails '{"slug":"team-z"}' slug
put_fails '{"keyEnabled":false}' keyEnabled
put_fails '{"keyEnabled":"no"}' keyEnabled
TOKEN=$ADM_TOKEN api PUT "$T/$TA" 'not json'
t_is "put not JSON: 400" "$T_STATUS" 400
TOKEN=$ADM_TOKEN api GET "$T/$TA"
t_is "failed updates changed nothing" "$(jeval '[d.__v,d.name].join()')" "$BEFORE_V,Team A2"
TOKEN=$ADM_TOKEN api PUT "$T/$NOPE" '{"name":"x"}'
t_is "put unknown tenant: 404" "$T_STATUS" 404

# Concurrent updates of different fields: none is lost (optimistic versions, retried).
conc() { curl -s -o /dev/null -X PUT -H "Authorization: Bearer $ADM_TOKEN" -H 'Content-Type: application/json' --data-binary "$1" "$T_BASE$T/$TA"; }
CONC_PIDS=()
conc '{"rateLimit":{"tokensPerMinute":1000}}' &
CONC_PIDS+=($!)
conc '{"budgetLimits":{"weeklyUsd":20}}' &
CONC_PIDS+=($!)
conc '{"routing":{"baselineModel":"gpt-b"}}' &
CONC_PIDS+=($!)
conc '{"budgetGuard":{"thresholdPct":70}}' &
CONC_PIDS+=($!)
conc '{"modelConfig":{"aliases":{"quick":"gpt-b"}}}' &
CONC_PIDS+=($!)
conc '{"keyLifetimeDays":90}' &
CONC_PIDS+=($!)
conc '{"printRoutedModel":false}' &
CONC_PIDS+=($!)
conc '{"routing":{"overrides":{"domainGate":false}}}' &
CONC_PIDS+=($!)
wait "${CONC_PIDS[@]}"   # not the servers
TOKEN=$ADM_TOKEN api GET "$T/$TA"
t_is "8 concurrent updates: all applied" "$(jeval '[d.rateLimit.tokensPerMinute,d.budgetLimits.weeklyUsd,d.routing.baselineModel,d.budgetGuard.thresholdPct,d.modelConfig.aliases.quick,d.keyLifetimeDays,d.printRoutedModel,d.routing.overrides.domainGate,d.rateLimit.requestsPerMinute].join()')" "1000,20,gpt-b,70,gpt-b,90,false,false,60"

# --- keys ------------------------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "$T/$TA/keys"
t_is "keys: 200" "$T_STATUS" 200
PRIMARY_ID=$(jeval 'd.keys[0]._id')
t_is "keys: {keys:[...]} with the primary" "$(jeval 'd.keys.map(k=>Object.keys(k).sort().join("+")).join()')" "_id+createdAt+custom+enabled+expiresAt+isPrimary+label+lastUsedAt+prefix"
t_is "keys: its fields" "$(jeval 'd.keys.map(k=>[k.prefix,k.label,k.enabled,k.custom,k.lastUsedAt].join("|")).join()')" "${KEY_A:0:12}|Primary key|true|false|"

TOKEN=$ADM_TOKEN api POST "$T/$TA/keys" '{"label":"ci","keyLifetimeDays":7}'
t_is "add key: 201" "$T_STATUS" 201
K2=$(jget apiKey); K2ID=$(jget _id)
SECRETS+=("$K2")
t_like "add key: generated" "$K2" '^omp-[0-9a-f]{64}$'
t_is "add key: shape" "$(jeval 'Object.keys(d).sort().join()')" "_id,apiKey,expiresAt,label,message,prefix"
t_is "add key: label and prefix" "$(jeval '[d.label,d.prefix].join()')" "ci,${K2:0:12}"
t_like "add key: 7 days" "$(jeval 'Math.round((Date.parse(d.expiresAt)-Date.now())/864e5)')" '^(6|7)$'
t_like "add key: shown once" "$(jget message)" 'will not be shown again'
t_is "add key: its hash stored" "$(stored "$K2")" yes
TOKEN=$ADM_TOKEN api POST "$T/$TA/keys"
t_is "add key without a body: 201" "$T_STATUS" 201
K3=$(jget apiKey); K3ID=$(jget _id)
SECRETS+=("$K3")
t_is "add key without a body: never expires" "$(jeval '[d.label,d.expiresAt].join("|")')" "|"
key_fails() {   # PATH BODY STATUS [FIELD]
	TOKEN=$ADM_TOKEN api POST "$T/$TA/$1" "$2"
	t_is "POST $1 $2: $3" "$T_STATUS" "$3"
	[ -n "${4:-}" ] && t_like "POST $1 $2: names $4" "$(jget error)" "^$4:"
}
key_fails keys "{\"label\":\"$(printf 'l%.0s' $(seq 1 101))\"}" 400 label
key_fails keys '{"label":5}' 400 label
key_fails keys '{"keyLifetimeDays":-1}' 400 keyLifetimeDays
key_fails keys '{"expiresAt":"tomorrow"}' 400 expiresAt
key_fails keys '{"expiresAt":"2001-01-01T00:00:00Z"}' 400 expiresAt
key_fails keys '[1]' 400
TOKEN=$ADM_TOKEN api POST "$T/$NOPE/keys" '{}'
t_is "add key to an unknown tenant: 404" "$T_STATUS" 404

CUSTOM=custom-key-0123456789-abc
key_fails keys/custom '{"apiKey":"short-key-15chr"}' 400 apiKey
key_fails keys/custom '{"apiKey":"has a space 0123456789"}' 400 apiKey
key_fails keys/custom "{\"apiKey\":\"$(printf 'k%.0s' $(seq 1 257))\"}" 400 apiKey
key_fails keys/custom '{"apiKey":1234567890123456}' 400 apiKey
key_fails keys/custom '{"label":"x"}' 400 apiKey
TOKEN=$ADM_TOKEN api POST "$T/$TA/keys/custom" "{\"apiKey\":\"$CUSTOM\",\"label\":\"custom\",\"expiresAt\":\"2099-01-01\"}"
t_is "custom key: 201" "$T_STATUS" 201
CUSTOM_ID=$(jget _id)
t_is "custom key: shape without the key" "$(jeval 'Object.keys(d).sort().join()')" "_id,expiresAt,label,message,prefix"
t_is "custom key: a short prefix (4 characters)" "$(jget prefix)" "${CUSTOM:0:4}"
t_is "custom key: hash stored" "$(stored "$CUSTOM")" yes
TOKEN=$ADM_TOKEN api POST "$T/$TA/keys/custom" "{\"apiKey\":\"$CUSTOM\"}"
t_is "custom key again on the same tenant: 409" "$T_STATUS" 409
TOKEN=$ADM_TOKEN api POST "$T/$DEF/keys/custom" "{\"apiKey\":\"$CUSTOM\"}"
t_is "custom key of another tenant: 409" "$T_STATUS" 409
TOKEN=$ADM_TOKEN api POST "$T/$DEF/keys/custom" "{\"apiKey\":\"$K2\"}"
t_is "another tenant's generated key as a custom key: 409" "$T_STATUS" 409
TOKEN=$ADM_TOKEN api POST "$T/$TB/keys/custom" "{\"apiKey\":\"$DEF_KEY\"}"
t_is "the default tenant's key as a custom key: 409" "$T_STATUS" 409
t_is "the refused key is stored for its own tenant only" "$(dump | grep -c "$(sha "$DEF_KEY")")" 2

TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/$K2ID" '{"enabled":false}'
t_is "disable key: 200" "$T_STATUS" 200
t_is "disable key: shape" "$(jeval 'Object.keys(d).sort().join()')" "_id,enabled,expiresAt,label,prefix"
t_is "disable key: disabled" "$(jeval '[d._id,d.enabled,d.label].join()')" "$K2ID,false,ci"
t_is "disable key: stored" "$(dump_eval team-a "t.apiKeys.find(k=>k._id==='$K2ID').enabled")" false
TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/$K2ID" '{"enabled":true,"label":"ci-2","expiresAt":null}'
t_is "enable, relabel, never expire" "$(jeval '[d.enabled,d.label,d.expiresAt].join("|")')" "true|ci-2|"
TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/$K2ID" '{"expiresAt":"2098-05-05"}'
t_is "patch expiry" "$(jget expiresAt)" "2098-05-05T00:00:00.000Z"
patch_fails() {   # BODY FIELD
	TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/$K2ID" "$1"
	t_is "patch $1: 400" "$T_STATUS" 400
	t_like "patch $1: names $2" "$(jget error)" "^$2:"
}
patch_fails '{"enabled":"no"}' enabled
patch_fails '{"label":5}' label
patch_fails '{"expiresAt":"2001-01-01"}' expiresAt
patch_fails '{"expiresAt":7}' expiresAt
TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/$NOPE" '{"enabled":false}'
t_is "patch unknown key: 404" "$T_STATUS" 404
t_is "patch unknown key: message" "$(jget error)" "API key not found"
TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/xyz" '{"enabled":false}'
t_is "patch malformed key id: 404" "$T_STATUS" 404
TOKEN=$ADM_TOKEN api PATCH "$T/$TA/keys/legacy" '{"enabled":false}'
t_is "patch legacy of a tenant without one: 404" "$T_STATUS" 404

TOKEN=$ADM_TOKEN api POST "$T/$TA/keys/$K2ID/rotate"
t_is "rotate key: 200" "$T_STATUS" 200
K2NEW=$(jget apiKey)
SECRETS+=("$K2NEW")
t_is "rotate key: same id and label, new key" "$(jeval '[d._id,d.label,d.prefix].join()')" "$K2ID,ci-2,${K2NEW:0:12}"
t_unlike "rotate key: a different key" "$K2NEW" "^$K2\$"
t_like "rotate key: keeps its lifetime" "$(jeval 'd.expiresAt')" '^2098-'
t_is "rotate key: the old hash is gone" "$(stored "$K2")" no
t_is "rotate key: the new hash is stored" "$(stored "$K2NEW")" yes
TOKEN=$ADM_TOKEN api POST "$T/$TA/keys/$NOPE/rotate"
t_is "rotate unknown key: 404" "$T_STATUS" 404

TOKEN=$ADM_TOKEN api DELETE "$T/$TA/keys/$CUSTOM_ID"
t_is "revoke key: 200" "$T_STATUS" 200
t_is "revoke key: answer" "$T_BODY" '{"success":true,"message":"API key revoked"}'
t_is "revoke key: hash gone" "$(stored "$CUSTOM")" no
TOKEN=$ADM_TOKEN api DELETE "$T/$TA/keys/$CUSTOM_ID"
t_is "revoke it again: 404" "$T_STATUS" 404

TOKEN=$ADM_TOKEN api POST "$T/$TA/rotate-key"
t_is "rotate-key: 200" "$T_STATUS" 200
KEY_A2=$(jget apiKey)
SECRETS+=("$KEY_A2")
t_is "rotate-key: the primary entry keeps its id" "$(jeval '[d._id,d.label].join()')" "$PRIMARY_ID,Primary key"
t_like "rotate-key: the tenant's lifetime (90 days)" "$(jeval 'Math.round((Date.parse(d.expiresAt)-Date.now())/864e5)')" '^(89|90)$'
t_is "rotate-key: old hash gone, new stored" "$(stored "$KEY_A") $(stored "$KEY_A2")" "no yes"
SETKEY=team-a-own-primary-key-0001
TOKEN=$ADM_TOKEN api POST "$T/$TA/set-key" '{"apiKey":"x"}'
t_is "set-key too short: 400" "$T_STATUS" 400
t_like "set-key too short: names apiKey" "$(jget error)" '^apiKey:'
TOKEN=$ADM_TOKEN api POST "$T/$TA/set-key" "{\"apiKey\":\"$K3\"}"
t_is "set-key with a key already in use: 409" "$T_STATUS" 409
TOKEN=$ADM_TOKEN api POST "$T/$TA/set-key" "{\"apiKey\":\"$SETKEY\",\"keyLifetimeDays\":0}"
t_is "set-key: 200" "$T_STATUS" 200
t_is "set-key: answer without the key" "$(jeval '[d.message,d._id,d.prefix,d.expiresAt,"apiKey" in d].join("|")')" "Custom API key saved.|$PRIMARY_ID|${SETKEY:0:4}||false"
t_is "set-key: old hash gone, new stored" "$(stored "$KEY_A2") $(stored "$SETKEY")" "no yes"
t_is "apiKeyHashes is exactly the keys' hashes" "$(dump_eval team-a 'JSON.stringify(t.apiKeyHashes.slice().sort())===JSON.stringify(t.apiKeys.map(k=>k.hash).sort())&&t.apiKeyHashes.length')" 3
TOKEN=$ADM_TOKEN api GET "$T/$TA/keys"
t_is "keys after all that" "$(jeval 'd.keys.map(k=>k.label+":"+k.custom).join()')" "Primary key:true,ci-2:false,:false"

# --- the original's single key: shown as "legacy", migrated by rotate-key / set-key / PATCH / DELETE ----------
LEGACY1=legacy-secret-key-0001
EXTRA1=legacy-extra-key-0001
legacy_tenant() {   # ID SLUG SECRET EXTRA-SECRET KEY-ENABLED
	sql "INSERT INTO tenants (id, v, doc) VALUES ('$1', 0, '{\"slug\":\"$2\",\"name\":\"Legacy $2\",\"apiKeyHash\":\"$(sha "$3")\",\"apiKeyPrefix\":\"${3:0:12}\",\"apiKeyEncrypted\":\"enc:00:00:00\",\"keyEnabled\":$5,\"keyExpiresAt\":\"2097-01-01T00:00:00.000Z\",\"customApiKey\":true,\"keyLifetimeDays\":0,\"apiKeys\":[{\"_id\":\"${1:0:23}f\",\"hash\":\"$(sha "$4")\",\"prefix\":\"${4:0:12}\",\"encrypted\":\"enc:11:11:11\",\"label\":\"extra\",\"enabled\":true,\"custom\":true,\"expiresAt\":null,\"createdAt\":\"$NOW\"}],\"apiKeyHashes\":[\"$(sha "$3")\",\"$(sha "$4")\"],\"createdAt\":\"$NOW\",\"updatedAt\":\"$NOW\"}')"
}
L1=bbbbbbbbbbbbbbbbbbbbbbb1
legacy_tenant $L1 legacy-one "$LEGACY1" "$EXTRA1" true
TOKEN=$ADM_TOKEN api GET "$T/$L1/keys"
t_is "legacy: GET keys shows the synthetic entry first" "$(jeval 'd.keys.map(k=>[k._id,k.label,k.prefix,k.custom,k.enabled,k.isLegacy].join("|")).join()')" "legacy|Primary key|${LEGACY1:0:4}|true|true|true,${L1:0:23}f|extra|${EXTRA1:0:4}|true|true|"
t_is "legacy: no hash, no encrypted copy" "$(jeval 'JSON.stringify(d).match(/hash|encrypted|enc:/gi)')" null
TOKEN=$ADM_TOKEN api GET "$T/$L1"
t_is "legacy: tenant view without apiKeyHash, apiKeyEncrypted, encrypted" "$(jeval 'JSON.stringify(d).match(/apiKeyHash|apiKeyEncrypted|apiKeyPlaintext|"hash"|encrypted|enc:/g)')" null
TOKEN=$ADM_TOKEN api POST "$T/$L1/rotate-key"
t_is "legacy rotate-key: 200" "$T_STATUS" 200
L1KEY=$(jget apiKey)
SECRETS+=("$L1KEY")
t_is "legacy rotate-key: the legacy fields are gone" "$(dump_eval legacy-one '["apiKeyHash","apiKeyPrefix","apiKeyEncrypted","keyEnabled","keyExpiresAt","customApiKey"].filter(f=>f in t).join()')" ""
t_is "legacy rotate-key: the new key is the primary entry" "$(dump_eval legacy-one "t.apiKeys.filter(k=>k.hash==='$(sha "$L1KEY")').map(k=>[k.label,k.primary,k.custom].join()).join()")" "Primary key,true,false"
t_is "legacy rotate-key: the old key's hash is gone" "$(stored "$LEGACY1")" no
t_is "legacy rotate-key: no encrypted copies are left" "$(dump_eval legacy-one 'JSON.stringify(t).includes("enc:")')" false
t_is "legacy rotate-key: the extra key keeps working, with the old expiry" "$(dump_eval legacy-one "t.apiKeys.filter(k=>k.label==='extra').map(k=>[k.enabled,k.expiresAt].join()).join()")" "true,2097-01-01T00:00:00.000Z"
t_is "legacy rotate-key: apiKeyHashes exact" "$(dump_eval legacy-one 'JSON.stringify(t.apiKeyHashes.slice().sort())')" "$(node -e 'console.log(JSON.stringify(process.argv.slice(1).sort()))' "$(sha "$L1KEY")" "$(sha "$EXTRA1")")"
TOKEN=$ADM_TOKEN api GET "$T/$L1/keys"
t_is "legacy rotate-key: no legacy entry any more" "$(jeval 'd.keys.map(k=>k.label+":"+(k.isLegacy||false)+":"+(k.isPrimary||false)).join()')" "Primary key:false:true,extra:false:false"

L2=bbbbbbbbbbbbbbbbbbbbbbb2
legacy_tenant $L2 legacy-two legacy-secret-key-0002 legacy-extra-key-0002 false
TOKEN=$ADM_TOKEN api POST "$T/$L2/set-key" '{"apiKey":"legacy-two-new-key-0001","keyLifetimeDays":10}'
t_is "legacy set-key: 200" "$T_STATUS" 200
t_is "legacy set-key: migrated" "$(dump_eval legacy-two '["apiKeyHash","apiKeyEncrypted","keyEnabled"].filter(f=>f in t).length+":"+t.apiKeys.map(k=>k.label+"="+k.enabled).join("+")+":"+t.keyLifetimeDays')" "0:Primary key=false+extra=false:10"
t_is "legacy set-key: the old key's hash is gone" "$(stored legacy-secret-key-0002)" no

L3=bbbbbbbbbbbbbbbbbbbbbbb3
legacy_tenant $L3 legacy-three legacy-secret-key-0003 legacy-extra-key-0003 true
TOKEN=$ADM_TOKEN api PATCH "$T/$L3/keys/legacy" '{"label":"old primary"}'
t_is "legacy PATCH: 200" "$T_STATUS" 200
L3ID=$(jget _id)
t_like "legacy PATCH: moved into apiKeys[] under a new id" "$L3ID" '^[0-9a-f]{24}$'
t_is "legacy PATCH: the same key, now an entry" "$(dump_eval legacy-three "[('apiKeyHash' in t),t.apiKeys.find(k=>k._id==='$L3ID').hash===t.apiKeyHashes[0],t.apiKeys[0].label,t.apiKeys[0].expiresAt].join()")" "false,true,old primary,2097-01-01T00:00:00.000Z"
t_is "legacy PATCH: its hash is kept" "$(stored legacy-secret-key-0003)" yes

L4=bbbbbbbbbbbbbbbbbbbbbbb4
legacy_tenant $L4 legacy-four legacy-secret-key-0004 legacy-extra-key-0004 true
TOKEN=$ADM_TOKEN api DELETE "$T/$L4/keys/legacy"
t_is "legacy DELETE: 200" "$T_STATUS" 200
t_is "legacy DELETE: revoked" "$(stored legacy-secret-key-0004) $(dump_eval legacy-four 't.apiKeys.length')" "no 1"
TOKEN=$ADM_TOKEN api POST "$T/$L4/keys/legacy/rotate"
t_is "rotate legacy after its revocation: 404" "$T_STATUS" 404

# --- add-provider -----------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api POST "$T/default/add-provider" "{\"providerId\":\"$P1\"}"
t_is "add-provider: 200" "$T_STATUS" 200
t_is "add-provider: answer" "$T_BODY" "{\"added\":true,\"tenantId\":\"$DEF\",\"tenantSlug\":\"api\"}"
TOKEN=$ADM_TOKEN api POST "$T/default/add-provider" "{\"providerId\":\"$P1\"}"
t_is "add-provider again: not added" "$(jget added)" false
TOKEN=$ADM_TOKEN api GET "$T/$DEF"
t_is "add-provider: once in providerIds" "$(jget providerIds)" "[\"$P1\"]"
TOKEN=$ADM_TOKEN api POST "$T/default/add-provider" "{\"providerId\":\"$NOPE\"}"
t_is "add-provider unknown: 404" "$T_STATUS" 404
TOKEN=$ADM_TOKEN api POST "$T/default/add-provider" '{}'
t_is "add-provider without providerId: 400" "$T_STATUS" 400
t_like "add-provider without providerId: names it" "$(jget error)" '^providerId:'
TOKEN=$ADM_TOKEN api POST "$T/default/add-provider" '{"providerId":"zz"}'
t_is "add-provider malformed id: 400" "$T_STATUS" 400

# --- delete and its cascade -------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api DELETE "$T/$DEF"
t_is "delete the default tenant: 403" "$T_STATUS" 403
t_is "delete the default tenant: message" "$(jget error)" "Cannot delete the default tenant"
TOKEN=$ADM_TOKEN api PUT "$T/$DEF" '{"active":false}'
t_is "the default tenant may be deactivated" "$(jget active)" false
TOKEN=$ADM_TOKEN api PUT "$T/$DEF" '{"active":true}'

TOKEN=$ADM_TOKEN api POST $T '{"slug":"doomed","name":"Doomed"}'
TD=$(jget _id)
DOOMED_KEY=$(jget apiKey)
SECRETS+=("$DOOMED_KEY")
n=0
for tid in "$TD" "$TD" "$TA"; do
	n=$((n + 1))
	sql "INSERT INTO requestlogs (id, v, doc) VALUES ('cccccccccccccccccccccc0$n', 0, '{\"tenantId\":\"$tid\",\"timestamp\":\"$NOW\"}')"
done
sql "INSERT INTO dailystats (id, v, doc) VALUES ('dddddddddddddddddddddd01', 0, '{\"tenantId\":\"$TD\",\"date\":\"2026-01-01\",\"routedModel\":\"m\"}'),
	('dddddddddddddddddddddd02', 0, '{\"tenantId\":\"$TA\",\"date\":\"2026-01-01\",\"routedModel\":\"m\"}')"
sql "INSERT INTO dailycategorystats (id, v, doc) VALUES ('eeeeeeeeeeeeeeeeeeeeee01', 0, '{\"tenantId\":\"$TD\",\"date\":\"2026-01-01\",\"category\":\"c\",\"costTier\":\"low\"}')"
sql "INSERT INTO quotas (id, v, doc) VALUES ('ffffffffffffffffffffff01', 0, '{\"tenantId\":\"$TD\",\"quotaType\":\"tokens\",\"limit\":5}')"
sql "INSERT INTO routingrulesets (id, v, doc) VALUES ('ababababababababababab01', 0, '{\"tenantId\":\"$TD\",\"name\":\"doomed rules\"}'),
	('ababababababababababab02', 0, '{\"tenantId\":null,\"name\":\"global rules\"}')"
TOKEN=$(adm_user both-user tenant-viewer "[\"$TD\",\"$TA\"]")
[ -n "$TOKEN" ] || t_diag "no users module yet: the users cascade check below will fail"
BOTH_ID=$(TOKEN=$ADM_TOKEN _api_orig GET /api/prism/admin/users; jeval 'd.find(u=>u.username==="both-user")._id')
MAINT=$(adm_user maint-user maintainer)
TOKEN=$MAINT api DELETE "$T/$TD"
t_is "delete as maintainer: 403" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api DELETE "$T/$TD"
t_is "delete: 200" "$T_STATUS" 200
t_is "delete: cascade counts" "$(jeval 'JSON.stringify(d)')" '{"success":true,"cascade":{"requestLogs":2,"dailyStats":1,"dailyCategoryStats":1,"dailyUserStats":0,"quotas":1,"ruleSets":1,"users":1}}'
t_is "delete: nothing of the tenant is left" "$(sql "SELECT (SELECT count(*) FROM requestlogs WHERE json_extract(doc,'\$.tenantId')='$TD') + (SELECT count(*) FROM dailystats WHERE json_extract(doc,'\$.tenantId')='$TD') + (SELECT count(*) FROM dailycategorystats) + (SELECT count(*) FROM quotas) + (SELECT count(*) FROM routingrulesets WHERE json_extract(doc,'\$.tenantId')='$TD')")" 0
t_is "delete: other tenants' data is kept (and the seeded default rule set)" "$(sql "SELECT (SELECT count(*) FROM requestlogs) || ',' || (SELECT count(*) FROM dailystats) || ',' || (SELECT count(*) FROM routingrulesets)")" "1,1,2"
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/users/$BOTH_ID"
t_is "delete: the tenant is pulled from its users" "$(jeval 'd.tenants.map(t=>t._id||t).join()')" "$TA"
t_is "delete: its key is gone" "$(stored "$DOOMED_KEY")" no
TOKEN=$ADM_TOKEN api GET "$T/$TD"
t_is "deleted tenant: 404" "$T_STATUS" 404
TOKEN=$ADM_TOKEN api DELETE "$T/$TD"
t_is "delete again: 404" "$T_STATUS" 404

# --- RBAC finer points --------------------------------------------------------------------------------------------
AUD=$(adm_user aud-user auditor)
TOKEN=$AUD api GET "$T/$TA/keys"
t_is "auditor reads keys: 200" "$T_STATUS" 200
TOKEN=$AUD api POST "$T/$TA/keys" '{}'
t_is "auditor adds a key: 403" "$T_STATUS" 403
TOKEN=$MAINT api POST "$T/$TA/keys" '{"label":"by maintainer"}'
t_is "maintainer adds a key: 201" "$T_STATUS" 201
SECRETS+=("$(jget apiKey)")

# --- tenant portal --------------------------------------------------------------------------------------------------
TADM=$(adm_user t-admin tenant-admin "[\"$TA\"]")
TVIEW=$(adm_user t-viewer tenant-viewer "[\"$TA\"]")
TMAINT=$(adm_user t-maint tenant-maintainer "[\"$TB\"]")
FIN=$(adm_user fin-user finops)
t_like "tenant users created" "${#TADM}:${#TVIEW}:${#TMAINT}" '^[1-9][0-9]*:[1-9][0-9]*:[1-9][0-9]*$'

TOKEN=$TADM api GET "$PORTAL/$TA"
t_is "tenant-admin, own tenant: 200" "$T_STATUS" 200
t_is "portal view: no key material" "$(jeval 'JSON.stringify(d).match(/apiKeyHash|apiKeyEncrypted|apiKeyHashes|"hash"|encrypted|"apiKey"/g)')" null
t_is "portal view: the keys' public fields" "$(jeval 'd.apiKeys.length>0&&d.apiKeys.every(k=>k.prefix!==undefined&&k.label!==undefined)')" true
TOKEN=$TADM api GET "$PORTAL/$TB"
t_is "tenant-admin, other tenant: 403" "$T_STATUS" 403
t_is "tenant-admin, other tenant: message" "$(jget error)" "Access denied — not your tenant"
TOKEN=$TADM api GET "$PORTAL/$TB/models"
t_is "tenant-admin, other tenant's models: 403" "$T_STATUS" 403
TOKEN=$TADM api PUT "$PORTAL/$TB/model-config" '{"mode":"all"}'
t_is "tenant-admin, other tenant's policy: 403" "$T_STATUS" 403
TOKEN=$TADM api GET "$PORTAL/mine"
t_is "tenant-admin /mine: only its tenant" "$(jeval 'd.map(t=>t.slug).join()')" "team-a"
TOKEN=$TADM api GET "$PORTAL/$NOPE"
t_is "tenant-admin, unknown tenant: 403 (no existence leak)" "$T_STATUS" 403

TOKEN=$TVIEW api GET "$PORTAL/$TA"
t_is "tenant-viewer, own tenant: 200" "$T_STATUS" 200
TOKEN=$TVIEW api GET "$PORTAL/$TA/models"
t_is "tenant-viewer, own models: 200" "$T_STATUS" 200
TOKEN=$TVIEW api PUT "$PORTAL/$TA/model-config" '{"mode":"all"}'
t_is "tenant-viewer writes the policy: 403" "$T_STATUS" 403
t_like "tenant-viewer writes the policy: role message" "$(jget error)" 'Required role'
TOKEN=$TVIEW api GET "$PORTAL/mine"
t_is "tenant-viewer /mine: only its tenant" "$(jeval 'd.map(t=>t._id).join()')" "$TA"
TOKEN=$TVIEW api GET "$PORTAL/$TB"
t_is "tenant-viewer, other tenant: 403" "$T_STATUS" 403

TOKEN=$TMAINT api GET "$PORTAL/mine"
t_is "tenant-maintainer /mine: only its tenant" "$(jeval 'd.map(t=>t.slug).join()')" "team-b"
TOKEN=$TMAINT api GET "$PORTAL/$TA"
t_is "tenant-maintainer, other tenant: 403" "$T_STATUS" 403
TOKEN=$TMAINT api PUT "$PORTAL/$TB/model-config" '{"mode":"blacklist","list":["llama-x"]}'
t_is "tenant-maintainer sets its policy: 200" "$T_STATUS" 200
t_is "tenant-maintainer sets its policy: applied" "$(jeval '[d.modelConfig.mode,d.modelConfig.list.join("+")].join()')" "blacklist,llama-x"
TOKEN=$TMAINT api GET "$PORTAL/$TB/models"
t_is "blacklisted models are not offered" "$(jeval 'd.length')" 0
portal_fails() {   # BODY FIELD
	TOKEN=$TMAINT api PUT "$PORTAL/$TB/model-config" "$1"
	t_is "portal policy $1: 400" "$T_STATUS" 400
	t_like "portal policy $1: names $2" "$(jget error)" "^$(re_quote "$2"):"
}
portal_fails '{"mode":"any"}' mode
portal_fails '{"list":"gpt-a"}' list
portal_fails '{"list":[1]}' 'list[0]'
TOKEN=$TMAINT api PUT "$PORTAL/$TB/model-config" 'nope'
t_is "portal policy not JSON: 400" "$T_STATUS" 400

TOKEN=$ADM_TOKEN api GET "$PORTAL/mine"
t_is "admin /mine: every tenant" "$(jeval 'd.length')" "$(sql 'SELECT count(*) FROM tenants')"
TOKEN=$MAINT api GET "$PORTAL/$TB"
t_is "maintainer, any tenant: 200" "$T_STATUS" 200
TOKEN=$FIN api GET "$PORTAL/mine"
t_is "finops /mine: 403" "$T_STATUS" 403
TOKEN=$AUD api GET "$PORTAL/$TA"
t_is "auditor, portal: 403" "$T_STATUS" 403

# models: the tenant's visible models (hidden ones excluded), filtered by its policy
TOKEN=$TADM api GET "$PORTAL/$TA/models"
t_is "whitelist: only the listed model" "$(jeval 'd.map(m=>m.id+"@"+m.providerName).join()')" "gpt-a@Prov One"
t_is "models: providerId and the model's fields" "$(jeval '[d[0].providerId,d[0].tier].join()')" "$P1,low"
TOKEN=$TADM api PUT "$PORTAL/$TA/model-config" '{"mode":"all"}'
t_is "tenant-admin sets mode all: list kept" "$(jeval '[d.modelConfig.mode,d.modelConfig.list.join()].join("|")')" "all|gpt-a"
TOKEN=$TADM api GET "$PORTAL/$TA/models"
t_is "mode all: every visible model, hidden excluded" "$(jeval 'd.map(m=>m.id).join()')" "gpt-a,gpt-b"
TOKEN=$TADM api PUT "$PORTAL/$TA/model-config" '{"mode":"blacklist","list":["prov-one/gpt-b"]}'
TOKEN=$TADM api GET "$PORTAL/$TA/models"
t_is "blacklist by provider-prefixed id" "$(jeval 'd.map(m=>m.id).join()')" "gpt-a"
TOKEN=$ADM_TOKEN api GET "$T/$TA"
t_is "the portal's change is the tenant's" "$(jeval '[d.modelConfig.mode,d.modelConfig.aliases.quick].join()')" "blacklist,gpt-b"

# --- audit trail ----------------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=tenant&limit=1000"
t_is "audit (tenant): 200" "$T_STATUS" 200
t_like "audit (tenant): create, update and delete" "$(jeval '[...new Set(d.changes.map(c=>c.action))].sort().join()')" '^create,delete,update$'
t_is "audit (tenant): the deletion" "$(jeval 'd.changes.filter(c=>c.action==="delete").map(c=>c.targetId+"/"+c.targetName).join()')" "$TD/doomed"
t_is "audit (tenant): the portal change by its user" "$(jeval 'd.changes.filter(c=>c.user==="t-maint"&&c.targetId==="'"$TB"'").length>0')" true
t_is "audit (tenant): no hash in a diff" "$(jeval 'JSON.stringify(d).match(/[0-9a-f]{64}|omp-[0-9a-f]/g)')" null
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=api-key&limit=1000"
t_is "audit (api-key): 200" "$T_STATUS" 200
t_is "audit (api-key): every kind of key change" "$(jeval '[...new Set(d.changes.map(c=>c.action))].sort().join()')" "create,delete,rotate,set-key,update"
t_is "audit (api-key): by tenant" "$(jeval 'd.changes.filter(c=>c.targetId==="'"$TA"'").length>=8')" true
t_is "audit (api-key): no hash or key" "$(jeval 'JSON.stringify(d).match(/[0-9a-f]{64}|omp-[0-9a-f]{20}/g)')" null
TOKEN=$TVIEW api GET "/api/prism/admin/audit?target=api-key&limit=1000"
t_is "audit seen by a tenant-viewer: only its tenant" "$(jeval 'd.changes.every(c=>c.targetId==="'"$TA"'")&&d.changes.length>0')" true

# --- a key is shown once, and a custom key never ------------------------------------------------------------------
shown=0
for k in "${SECRETS[@]}"; do
	c=$(grep -c -- "$k" "$T_TMP/all-bodies")
	[ "$c" = 1 ] || { t_diag "key ${k:0:12}... appears in $c answers"; shown=$((shown + 1)); }
done
t_is "every generated key appears in exactly one answer (${#SECRETS[@]} keys)" "$shown" 0
for k in "$CUSTOM" "$SETKEY" "$LEGACY1" "$EXTRA1" "legacy-two-new-key-0001"; do
	t_is "custom key ${k:0:6}... never in an answer" "$(grep -c -- "$k" "$T_TMP/all-bodies")" 0
done
t_is "no SHA-256 of a key in any answer" "$(grep -c -E '"[0-9a-f]{64}"' "$T_TMP/all-bodies")" 0
leak=0
for k in "${SECRETS[@]}" "$CUSTOM" "$SETKEY"; do grep -q -- "$k" "$T_TMP/prism.log" && leak=$((leak + 1)); done
t_is "no key in the server log" "$leak" 0
t_is "no key in the store (hashes only)" "$(dump | grep -c -E 'omp-[0-9a-f]{64}|custom-key-0123|team-a-own-primary')" 0
t_done
