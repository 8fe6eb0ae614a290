#!/bin/bash
# admin_routing.sh -- the routing admin API: rule sets (the seed of the setup, seed-defaults, CRUD, the PUT
# merge, validation, one rule set per tenant, the protected default, set-default, the audit trail, the
# tenant delete cascade), the benchmark over stored request logs, test suites and RBAC spot checks.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node sqlite3

adm_start "ratelimit_admin = 0" "offline = true" || { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN
R=/api/prism/admin/routing
RS=$R/rule-sets
DEF_TENANT=$(jget defaultTenant._id)
NOPE=0123456789abcdef01234567
DB=$(sed -n 's/^store *= *sqlite://p' "$T_CONF" | tail -n1)
[ -n "$DB" ] || DB=$T_TMP/data/prism.db
sql() { sqlite3 -cmd '.timeout 10000' "$DB" "$@"; }
jnode() { printf '%s' "$T_BODY" | node -e "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const b=JSON.parse(d);process.stdout.write(String(($1)(b)))})"; }

# --- the default rule set: seeded by the setup, seed-defaults idempotent ---------------------------------
api GET $RS
t_is "list: 200" "$T_STATUS" 200
t_is "the setup seeded one rule set" "$(jnode 'b=>b.length')" 1
t_is "it is the protected global default" "$(jnode 'b=>[b[0].name,b[0].isGlobalDefault,b[0].isDefault].join("/")')" \
	"Default Rule Set/true/true"
t_is "with the seeded weights and rules" \
	"$(jnode 'b=>[b[0].signalWeights.contentKeywords,b[0].turnUpgrade.enabled,b[0].classifier.contextLimitTokens,b[0].keywordRules.length,b[0].systemPromptRoles.length,b[0].keywordRules[0].searchIn].join("/")')" \
	"0.62/false/6000/5/6/user"
t_like "sub-documents have ids" "$(jnode 'b=>b[0].keywordRules.map(r=>r._id).concat(b[0].systemPromptRoles.map(r=>r._id)).join(" ")')" \
	'^([0-9a-f]{24} ){10}[0-9a-f]{24}$'
DEFAULT_ID=$(jnode 'b=>b[0]._id')
api POST $RS/seed-defaults
t_is "seed-defaults with a default: 200" "$T_STATUS" 200
t_is "seed-defaults: created false, the existing one" "$(jnode 'b=>b.created+"/"+b.ruleSet._id')" "false/$DEFAULT_ID"
api GET $RS
t_is "seed-defaults created nothing" "$(jnode 'b=>b.length')" 1

api GET $RS/$DEFAULT_ID
t_is "get: 200" "$T_STATUS" 200
t_is "get: the rule set" "$(jget name)" "Default Rule Set"
api GET $RS/$NOPE
t_is "get unknown: 404" "$T_STATUS" 404
t_is "get unknown: message" "$(jget error)" "Rule set not found"
api GET $RS/not-an-id
t_is "get a malformed id: 404" "$T_STATUS" 404

# --- create ------------------------------------------------------------------------------------------------
api POST $RS '{"name":"Economy","costMode":"economy","tierBoost":-1,"unknownField":1,"isDefault":true,
	"tokenThresholds":{"micro":200},"keywordRules":[{"name":"K8s","keywords":["kubernetes","helm chart*"],"effect":{"tierMin":"medium","domain":"tech"}}],
	"systemPromptRoles":[{"name":"Doc","pattern":"\\bdoctor\\b","effect":{"category":"medical_analysis","tierMin":"critical"}}]}'
t_is "create: 201" "$T_STATUS" 201
ECO=$(jget _id)
t_like "create: an id" "$ECO" '^[0-9a-f]{24}$'
t_is "create: the given fields" "$(jnode 'b=>[b.name,b.costMode,b.tierBoost,b.tokenThresholds.micro,b.keywordRules[0].keywords.join("|"),b.systemPromptRoles[0].pattern].join(";")')" \
	'Economy;economy;-1;200;kubernetes|helm chart*;\bdoctor\b'
t_is "create: defaults filled in" "$(jnode 'b=>[b.description,b.isGlobalDefault,String(b.tenantId),b.tokenThresholds.low,b.signalWeights.contentKeywords,b.turnUpgrade.enabled,b.classifier.contextLimitTokens,b.keywordRules[0].match,b.keywordRules[0].searchIn,b.keywordRules[0].effect.tierMax].join(";")')" \
	';false;null;2000;0.85;true;4000;any;all;'
t_is "create: isDefault cannot be set, unknown fields are dropped" "$(jnode 'b=>b.isDefault+"/"+("unknownField" in b)')" "false/false"
t_like "create: timestamps" "$(jget createdAt)" '^20[0-9]{2}-'
RULE_ID=$(jnode 'b=>b.keywordRules[0]._id')

# --- validation: 400 naming the field ------------------------------------------------------------------
bad() { # NAME BODY EXPECTED-ERROR-REGEX [METHOD PATH]
	api "${4:-POST}" "${5:-$RS}" "$2"
	t_is "$1: 400" "$T_STATUS" 400
	t_like "$1: names the field" "$(jget error)" "$3"
}
bad "missing name" '{"description":"x"}' '^name: is required$'
bad "bad regex" '{"name":"x","systemPromptRoles":[{"name":"r","pattern":"security.*(auditor"}]}' \
	'^systemPromptRoles\[0\]\.pattern: invalid regular expression at offset 18: missing closing parenthesis$'
bad "tierBoost 5" '{"name":"x","tierBoost":5}' '^tierBoost: must be an integer between -2 and 2$'
bad "tierBoost not a number" '{"name":"x","tierBoost":"2"}' '^tierBoost: '
bad "thresholds decreasing" '{"name":"x","tokenThresholds":{"low":100}}' \
	'^tokenThresholds\.low: must not be below tokenThresholds\.minimal \(500\)'
bad "negative threshold" '{"name":"x","tokenThresholds":{"micro":-5}}' '^tokenThresholds\.micro: must be a non-negative integer$'
bad "weight above 1" '{"name":"x","signalWeights":{"contentKeywords":2}}' '^signalWeights\.contentKeywords: must be a number between 0 and 1$'
bad "unknown tier in an effect" '{"name":"x","keywordRules":[{"name":"k","keywords":["a"],"effect":{"tierMin":"premium"}}]}' \
	'^keywordRules\[0\]\.effect\.tierMin: must be one of'
bad "empty keyword list" '{"name":"x","keywordRules":[{"name":"k","keywords":[]}]}' '^keywordRules\[0\]\.keywords: '
bad "bad costMode" '{"name":"x","costMode":"cheap"}' '^costMode: must be one of balanced, economy, quality$'
bad "bad strategy" '{"name":"x","classifier":{"contextStrategy":"all"}}' '^classifier\.contextStrategy: '
bad "malformed tenantId" '{"name":"x","tenantId":"abc"}' '^tenantId: must be a 24-hex id or null$'
bad "unknown tenant" "{\"name\":\"x\",\"tenantId\":\"$NOPE\"}" "^tenantId: no tenant has the id $NOPE\$"
bad "PUT: a bad regex" '{"systemPromptRoles":[{"name":"r","pattern":"(?<"}]}' '^systemPromptRoles\[0\]\.pattern: invalid regular expression' PUT "$RS/$ECO"
bad "PUT: tierBoost 3" '{"tierBoost":3}' '^tierBoost: ' PUT "$RS/$ECO"
api PUT $RS/$NOPE '{"name":"x"}'
t_is "PUT unknown: 404" "$T_STATUS" 404
api GET $RS
t_is "nothing invalid was stored" "$(jnode 'b=>b.length')" 2

# --- PUT keeps what it omits ---------------------------------------------------------------------------
api PUT $RS/$ECO '{"description":"cheaper","tokenThresholds":{"low":2500}}'
t_is "PUT: 200" "$T_STATUS" 200
t_is "PUT: omitted fields keep their values (the original reset costMode and tierBoost)" \
	"$(jnode 'b=>[b.name,b.description,b.costMode,b.tierBoost,b.tokenThresholds.micro,b.tokenThresholds.low,b.keywordRules.length,b.keywordRules[0]._id].join(";")')" \
	"Economy;cheaper;economy;-1;200;2500;1;$RULE_ID"
api PUT $RS/$ECO "{\"keywordRules\":[{\"_id\":\"$RULE_ID\",\"name\":\"K8s\",\"keywords\":[\"kubernetes\"]},{\"name\":\"New\",\"keywords\":[\"x\"]}]}"
t_is "PUT: a rule sent back keeps its _id, a new one gets one" \
	"$(jnode "b=>b.keywordRules[0]._id==='$RULE_ID'&&/^[0-9a-f]{24}\$/.test(b.keywordRules[1]._id)&&b.keywordRules[1]._id!=='$RULE_ID'")" true
api PUT $RS/$DEFAULT_ID '{"isDefault":false,"description":"edited"}'
t_is "PUT on the default: 200" "$T_STATUS" 200
t_is "isDefault is not settable" "$(jget isDefault)" true

# --- one rule set per tenant ----------------------------------------------------------------------------
api POST /api/prism/admin/tenants '{"slug":"rs-team","name":"RS Team"}'
t_is "tenant created" "$T_STATUS" 201
TEN=$(jget _id)
api POST $RS "{\"name\":\"Team rules\",\"tenantId\":\"$TEN\"}"
t_is "a tenant's rule set: 201" "$T_STATUS" 201
TEAM_RS=$(jget _id)
t_is "it names its tenant" "$(jget tenantId)" "$TEN"
api POST $RS "{\"name\":\"Second\",\"tenantId\":\"$TEN\"}"
t_is "a second rule set for the tenant: 409" "$T_STATUS" 409
t_like "409 says why" "$(jget error)" '^Tenant already has a rule set \(Team rules\)'
api PUT $RS/$ECO "{\"tenantId\":\"$TEN\"}"
t_is "moving another rule set to the tenant: 409" "$T_STATUS" 409
api PUT $RS/$TEAM_RS "{\"tenantId\":\"$TEN\",\"name\":\"Team rules 2\"}"
t_is "its own rule set may keep the tenant" "$T_STATUS" 200
api PUT $RS/$DEFAULT_ID "{\"tenantId\":\"$TEN\"}"
t_is "the default rule set cannot belong to a tenant" "$T_STATUS" 400
api PUT $RS/$TEAM_RS '{"isGlobalDefault":true}'
t_is "a tenant's rule set cannot become the global default (it would serve every tenant): 400" \
	"$T_STATUS $(jget error)" "400 isGlobalDefault: a tenant's rule set cannot be the global default (clear tenantId)"
api POST $RS/$TEAM_RS/set-default
t_is "nor through set-default" "$T_STATUS $(jget error)" "400 A tenant's rule set cannot be the global default"

# --- the protected default, set-default -----------------------------------------------------------------
api DELETE $RS/$DEFAULT_ID
t_is "delete the default: 403" "$T_STATUS" 403
t_is "delete the default: message" "$(jget error)" "Cannot delete the default rule set"
api POST $RS/$ECO/set-default
t_is "set-default: 200" "$T_STATUS" 200
t_is "set-default: it is the global default" "$(jget isGlobalDefault)" true
api GET $RS
t_is "exactly one global default, listed first" \
	"$(jnode 'b=>b.filter(r=>r.isGlobalDefault).length+"/"+b[0]._id')" "1/$ECO"
t_is "then by creation" "$(jnode 'b=>b.slice(1).map(r=>r.name).join("|")')" "Default Rule Set|Team rules 2"
api POST $RS/$NOPE/set-default
t_is "set-default unknown: 404" "$T_STATUS" 404
api POST $RS/seed-defaults
t_is "seed-defaults while another set is the default: 200" "$T_STATUS" 200
t_is "seed-defaults answers the global default" "$(jnode 'b=>b.created+"/"+b.ruleSet._id')" "false/$ECO"
api POST $RS '{"name":"Takeover","isGlobalDefault":true}'
t_is "creating a global default: 201" "$T_STATUS" 201
TAKE=$(jget _id)
api GET $RS/$ECO
t_is "the previous default lost the flag" "$(jget isGlobalDefault)" false
api DELETE $RS/$TAKE
t_is "delete: 200" "$T_STATUS" 200
t_is "delete: answer" "$T_BODY" '{"deleted":true}'
api DELETE $RS/$TAKE
t_is "delete again: 404" "$T_STATUS" 404
api POST $RS/seed-defaults
t_is "no global default left: seed-defaults seeds a new one" "$T_STATUS" 201
t_is "seed-defaults: created, not protected (the protected one exists)" \
	"$(jnode 'b=>b.created+"/"+b.ruleSet.name+"/"+b.ruleSet.isDefault+"/"+b.ruleSet.isGlobalDefault')" "true/Default Rule Set/false/true"
SEEDED=$(jnode 'b=>b.ruleSet._id')
api POST $RS/seed-defaults
t_is "and then not again" "$(jnode 'b=>b.created+"/"+b.ruleSet._id')" "false/$SEEDED"

# --- the audit trail ---------------------------------------------------------------------------------------
api GET "/api/prism/admin/audit?target=rule-set&limit=500"
t_is "audit: 200" "$T_STATUS" 200
t_is "audit: create, update, delete, set-default recorded" \
	"$(jnode 'b=>["create","update","delete","set-default"].every(a=>b.changes.some(c=>c.action===a))')" true
t_is "audit: the delete names the rule set (the original did not audit deletes)" \
	"$(jnode 'b=>b.changes.some(c=>c.action==="delete"&&c.targetName==="Takeover")')" true
t_is "audit: losing the default flag is recorded" \
	"$(jnode "b=>b.changes.some(c=>c.action==='update'&&c.targetId==='$ECO'&&c.changes.some(x=>x.field==='isGlobalDefault'&&x.after===false))")" true
t_is "audit: the seed of the setup is recorded" \
	"$(jnode "b=>b.changes.some(c=>c.action==='create'&&c.targetId==='$DEFAULT_ID')")" true

# --- a deleted tenant takes its rule set along -----------------------------------------------------------
api DELETE /api/prism/admin/tenants/$TEN
t_is "tenant delete: 200" "$T_STATUS" 200
t_is "tenant delete: one rule set in the cascade" "$(jget cascade.ruleSets)" 1
api GET $RS/$TEAM_RS
t_is "the tenant's rule set is gone" "$T_STATUS" 404

# --- benchmark ----------------------------------------------------------------------------------------------
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\"}"
t_is "benchmark on an empty log: 200" "$T_STATUS" 200
t_is "benchmark on an empty log: simulated 0" "$(jnode 'b=>b.simulated+"/"+b.message')" \
	"0/No auto-routed requests found in this period"
api POST $R/benchmark '{}'
t_is "benchmark without ruleSetId: 400" "$T_STATUS" 400
t_like "benchmark without ruleSetId: names it" "$(jget error)" '^ruleSetId: '
api POST $R/benchmark "{\"ruleSetId\":\"$NOPE\"}"
t_is "benchmark with an unknown rule set: 404" "$T_STATUS" 404
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"days\":0}"
t_is "benchmark days 0: 400" "$T_STATUS" 400
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"days\":366}"
t_like "benchmark days 366: 400 naming days" "$T_STATUS $(jget error)" '^400 days: '
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"limit\":2001}"
t_like "benchmark limit 2001: 400 naming limit" "$T_STATUS $(jget error)" '^400 limit: '
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"simulateTenantId\":\"$NOPE\"}"
t_is "benchmark simulating an unknown tenant: 404" "$T_STATUS" 404

NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
OLD=2000-01-01T00:00:00.000Z
sql "INSERT INTO requestlogs (id, v, doc) VALUES
	('aaaaaaaaaaaaaaaaaaaaaa01', 0, '{\"tenantId\":\"$DEF_TENANT\",\"timestamp\":\"$NOW\",\"isAutoRouted\":true,\"costTier\":\"medium\",\"actualCostUsd\":0.01,\"inputTokens\":11,\"routedModel\":\"m1\",\"category\":\"smalltalk_simple\",\"routingSignals\":{\"totalTokens\":11,\"conversationTurns\":1,\"detectedDomains\":[]}}'),
	('aaaaaaaaaaaaaaaaaaaaaa02', 0, '{\"tenantId\":\"$DEF_TENANT\",\"timestamp\":\"$NOW\",\"isAutoRouted\":true,\"costTier\":\"medium\",\"actualCostUsd\":0.1,\"inputTokens\":60000,\"routedModel\":\"m2\"}'),
	('aaaaaaaaaaaaaaaaaaaaaa03', 0, '{\"tenantId\":\"$DEF_TENANT\",\"timestamp\":\"$NOW\",\"isAutoRouted\":true,\"costTier\":\"micro\",\"actualCostUsd\":0.001,\"inputTokens\":30,\"routingSignals\":{\"totalTokens\":30,\"isFimRequest\":true}}'),
	('aaaaaaaaaaaaaaaaaaaaaa04', 0, '{\"tenantId\":\"$DEF_TENANT\",\"timestamp\":\"$NOW\",\"isAutoRouted\":false,\"costTier\":\"high\",\"actualCostUsd\":1}'),
	('aaaaaaaaaaaaaaaaaaaaaa05', 0, '{\"tenantId\":\"$DEF_TENANT\",\"timestamp\":\"$OLD\",\"isAutoRouted\":true,\"costTier\":\"high\",\"actualCostUsd\":1}')"
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"days\":30}"
t_is "benchmark: 200" "$T_STATUS" 200
t_is "benchmark: only recent auto-routed requests" "$(jnode 'b=>b.simulated+"/"+b.fullSignalRequests+"/"+b.partialSignalRequests+"/"+b.dataQuality')" "3/2/1/full"
t_is "benchmark: current distribution" "$(jnode 'b=>b.current.tierDistribution.medium+"/"+b.current.tierDistribution.micro+"/"+b.current.classifierCallRate')" "2/1/1"
t_is "benchmark: proposed (Hello-sized -> micro, 60000 tokens -> high, FIM -> micro)" \
	"$(jnode 'b=>[b.proposed.tierDistribution.micro,b.proposed.tierDistribution.high,b.diff.tierShifts,b.diff.classifierBypasses,b.diff.classifierBypassRate,b.proposed.classifierCallRate].join("/")')" \
	"2/1/2/1/33%/0.67"
t_is "benchmark: costs with the tier multipliers" "$(jnode 'b=>b.current.estimatedCost+"/"+b.proposed.estimatedCost+"/"+b.diff.costDelta')" \
	"0.111/0.6011/0.4901"
t_is "benchmark: the changed decisions" "$(jnode 'b=>b.changes.map(c=>c.requestId.slice(-2)+":"+c.currentTier+">"+c.proposedTier+":"+c.signalSource).sort().join(" ")')" \
	"01:medium>micro:full 02:medium>high:partial"
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"simulateTenantId\":\"$DEF_TENANT\"}"
t_is "benchmark with the default tenant's overrides: the confidence fallback keeps medium" \
	"$(jnode 'b=>b.simulateTenant.id+"/"+b.diff.tierShifts+"/"+b.proposed.tierDistribution.medium')" "$DEF_TENANT/1/1"
api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\",\"tenantId\":\"$NOPE\"}"
t_is "benchmark for an unknown tenant: 404" "$T_STATUS" 404

# --- test suites -------------------------------------------------------------------------------------------
S=$R/test-suites
api GET $S
t_is "suites: empty list" "$T_STATUS $T_BODY" "200 []"
api POST $S '{"name":"Smoke","description":"d","testCases":[{"prompt":"Hello","expectedTierMax":"low","tags":["greet"]},{"prompt":"Review this NDA","expectedCategory":"legal_analysis","expectedTierMin":"advanced"}]}'
t_is "suite create: 201" "$T_STATUS" 201
SID=$(jget _id)
t_is "suite create: fields and defaults" \
	"$(jnode 'b=>[b.name,b.description,b.category,b.testCases.length,b.testCases[0].systemPrompt,b.testCases[0].expectedTierMin,b.testCases[0].tags.join(),b.testCases[1].expectedCategory].join(";")')" \
	"Smoke;d;;2;;;greet;legal_analysis"
t_like "suite create: case ids and dates" "$(jnode 'b=>b.testCases.map(c=>c._id).join(" ")+" "+b.createdAt')" '^[0-9a-f]{24} [0-9a-f]{24} 20'
CASE1=$(jnode 'b=>b.testCases[0]._id')
bads() { api "${4:-POST}" "${5:-$S}" "$2"; t_is "$1: 400" "$T_STATUS" 400; t_like "$1: names the field" "$(jget error)" "$3"; }
bads "suite without name" '{"testCases":[]}' '^name: is required'
bads "case without prompt" '{"name":"x","testCases":[{"expectedCategory":"a"}]}' '^testCases\[0\]\.prompt: is required'
bads "case with a bad tier" '{"name":"x","testCases":[{"prompt":"p","expectedTierMin":"premium"}]}' '^testCases\[0\]\.expectedTierMin: must be one of'
bads "case with min above max" '{"name":"x","testCases":[{"prompt":"p","expectedTierMin":"high","expectedTierMax":"low"}]}' '^testCases\[0\]\.expectedTierMax: '
bads "case category too long" "{\"name\":\"x\",\"testCases\":[{\"prompt\":\"p\",\"expectedCategory\":\"$(printf 'c%.0s' $(seq 1 65))\"}]}" '^testCases\[0\]\.expectedCategory: must be at most 64 bytes'
bads "cases not an array" '{"name":"x","testCases":{}}' '^testCases: must be an array'
node -e 'process.stdout.write(JSON.stringify({name:"big",testCases:[{prompt:"x".repeat(100001)}]}))' >"$T_TMP/big.json"
api POST $S "$(cat "$T_TMP/big.json")"
t_like "a prompt over 100000 bytes: 400 (or 413 over max_body_size)" "$T_STATUS" '^(400|413)$'
node -e 'process.stdout.write(JSON.stringify({name:"many",testCases:Array.from({length:501},()=>({prompt:"p"}))}))' >"$T_TMP/many.json"
api POST $S "$(cat "$T_TMP/many.json")"
t_is "501 cases: 400" "$T_STATUS $(jget error)" "400 testCases: must have at most 500 cases"
api PUT $S/$SID "{\"description\":\"edited\",\"testCases\":[{\"_id\":\"$CASE1\",\"prompt\":\"Hello again\"}]}"
t_is "suite update: 200" "$T_STATUS" 200
t_is "suite update: merged, case id kept" "$(jnode "b=>[b.name,b.description,b.testCases.length,b.testCases[0]._id==='$CASE1',b.testCases[0].prompt].join(';')")" \
	"Smoke;edited;1;true;Hello again"
api GET $S/$SID
t_is "suite get: 200" "$T_STATUS/$(jget name)" "200/Smoke"
api GET $S/$NOPE
t_is "suite get unknown: 404" "$T_STATUS/$(jget error)" "404/Test suite not found"
api POST $S '{"name":"Second"}'
S2=$(jget _id)
api GET $S
t_is "suites: newest update first" "$(jnode 'b=>b.map(s=>s.name).join("|")')" "Second|Smoke"
sql "INSERT INTO testruns (id, v, doc) VALUES ('bbbbbbbbbbbbbbbbbbbbbb01', 0, '{\"testSuiteId\":\"$SID\",\"tenantId\":\"$DEF_TENANT\",\"createdAt\":\"2026-01-01T00:00:00.000Z\",\"summary\":{\"total\":1}}'),
	('bbbbbbbbbbbbbbbbbbbbbb02', 0, '{\"testSuiteId\":\"$SID\",\"tenantId\":\"$DEF_TENANT\",\"createdAt\":\"2026-02-01T00:00:00.000Z\",\"summary\":{\"total\":2}}'),
	('bbbbbbbbbbbbbbbbbbbbbb03', 0, '{\"testSuiteId\":\"$S2\",\"tenantId\":\"$DEF_TENANT\",\"createdAt\":\"2026-02-01T00:00:00.000Z\"}')"
api GET $S/$SID/runs
t_is "runs: the suite's, newest first" "$(jnode 'b=>b.map(r=>r.summary.total).join(",")')" "2,1"
api GET $S/$NOPE/runs
t_is "runs of an unknown suite: 404" "$T_STATUS" 404
api DELETE $S/$SID
t_is "suite delete: 200 with its runs" "$T_STATUS $(jnode 'b=>b.deleted+"/"+b.runsDeleted')" "200 true/2"
t_is "the other suite's run stays" "$(sql "SELECT count(*) FROM testruns")" 1
api DELETE $S/$SID
t_is "suite delete again: 404" "$T_STATUS" 404
api GET "/api/prism/admin/audit?target=test-suite&limit=100"
t_is "suites audited (cases summarised)" \
	"$(jnode 'b=>["create","update","delete"].every(a=>b.changes.some(c=>c.action===a))&&b.changes.some(c=>c.changes.some(x=>x.field==="testCases"&&/^1 cases/.test(x.after)))')" true

# --- RBAC spot checks ----------------------------------------------------------------------------------------
FIN=$(adm_user fin finops)
AUD=$(adm_user aud auditor)
MNT=$(adm_user mnt maintainer)
TV=$(adm_user tv tenant-viewer "[\"$DEF_TENANT\"]")
TOKEN=$FIN api GET $RS
t_is "finops lists rule sets" "$T_STATUS" 200
TOKEN=$FIN api POST $R/benchmark "{\"ruleSetId\":\"$DEFAULT_ID\"}"
t_is "finops runs the benchmark" "$T_STATUS" 200
TOKEN=$FIN api POST $RS '{"name":"nope"}'
t_is "finops cannot create" "$T_STATUS" 403
TOKEN=$FIN api PUT $RS/$ECO '{"name":"nope"}'
t_is "finops cannot update" "$T_STATUS" 403
TOKEN=$FIN api DELETE $RS/$ECO
t_is "finops cannot delete" "$T_STATUS" 403
TOKEN=$FIN api POST $RS/seed-defaults
t_is "finops cannot seed" "$T_STATUS" 403
TOKEN=$AUD api GET $S
t_is "auditor lists suites" "$T_STATUS" 200
TOKEN=$AUD api POST $S '{"name":"nope"}'
t_is "auditor cannot create suites" "$T_STATUS" 403
TOKEN=$MNT api POST $RS '{"name":"By maintainer"}'
t_is "maintainer creates rule sets" "$T_STATUS" 201
TOKEN=$TV api GET $RS
t_is "tenant roles do not see rule sets" "$T_STATUS" 403
TOKEN= api GET $RS
t_is "anonymous: 401" "$T_STATUS" 401

# --- settings export and import carry the rule sets ----------------------------------------------------------
"$PRISMCTL" export --config "$T_CONF" --output "$T_TMP/export.json" 2>"$T_TMP/export.err"
t_is "export: the rule sets are in it" \
	"$(node -e 'const d=require(process.argv[1]);process.stdout.write(d.routingRuleSets.map(r=>r.name).sort().join("|"))' "$T_TMP/export.json")" \
	"By maintainer|Default Rule Set|Default Rule Set|Economy"
MAINT_RS=$(node -e 'const d=require(process.argv[1]);process.stdout.write(d.routingRuleSets.find(r=>r.name==="By maintainer")._id)' "$T_TMP/export.json")
TOKEN=$ADM_TOKEN api DELETE $RS/$MAINT_RS
t_is "a rule set deleted after the export" "$T_STATUS" 200
"$PRISMCTL" import --config "$T_CONF" "$T_TMP/export.json" >"$T_TMP/import.out" 2>&1
t_is "import: exit 0" "$?" 0
TOKEN=$ADM_TOKEN api GET $RS/$MAINT_RS
t_is "import: the rule set is back" "$T_STATUS/$(jget name)" "200/By maintainer"
t_done
