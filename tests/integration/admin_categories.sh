#!/bin/bash
# admin_categories.sh -- routing categories: the built-in seed, CRUD, validation, seed and reset-defaults,
# preset profiles and apply-preset, RBAC and the audit trail.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_admin = 0" "offline = true" || { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN
C=/api/prism/admin/categories

# node one-liners over the last body: jq-like checks without jq.
jnode() { printf '%s' "$T_BODY" | node -e "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const b=JSON.parse(d);process.stdout.write(String(($1)(b)))})"; }
# The _id of the category with this key (from a fresh list).
cat_id() { api GET $C; jnode "b=>(b.find(c=>c.key==='$1')||{})._id"; }

# --- the seed that setup ran ----------------------------------------------------------------------------
api GET $C
t_is "list: 200" "$T_STATUS" 200
count=$(jnode 'b=>b.length')
api POST $C/seed "{}"
t_is "seed: 200" "$T_STATUS" 200
total=$(jget total)
t_is "setup seeded every built-in (the list has total entries)" "$count" "$total"
t_like "the catalog has its ~50 built-ins" "$total" '^5[0-9]$'
t_is "seeding again creates nothing" "$(jget created)" 0
t_is "and updates nothing" "$(jget updated)" 0

api GET $C
t_is "the list is sorted by order" "$(jnode 'b=>b.every((c,i)=>i==0||b[i-1].order<=c.order)')" true
t_is "first: coding_autocomplete" "$(jnode 'b=>b[0].key+"/"+b[0].costTier+"/"+b[0].order')" coding_autocomplete/micro/1
t_is "coding_complex: advanced, order 61, with a target prompt" \
	"$(jnode 'b=>{const c=b.find(x=>x.key==="coding_complex");return c.costTier+"/"+c.order+"/"+(c.targetSystemPrompt.length>20)}')" \
	advanced/61/true
t_is "vision_simple requires vision" "$(jnode 'b=>b.find(x=>x.key==="vision_simple").requiresVision')" true
t_is "medical_analysis: critical, 91" "$(jnode 'b=>{const c=b.find(x=>x.key==="medical_analysis");return c.costTier+"/"+c.order}')" critical/91
t_is "built-ins are marked" "$(jnode 'b=>b.every(c=>c.isBuiltIn===true)')" true
t_is "built-ins carry examples" "$(jnode 'b=>b.every(c=>Array.isArray(c.examples)&&c.examples.length>0)')" true
t_like "documents have _id and __v" "$(jnode 'b=>b[0]._id+" "+b[0].__v')" '^[0-9a-f]{24} [0-9]+$'
maxorder=$(jnode 'b=>Math.max(...b.map(c=>c.order))')

# --- create ---------------------------------------------------------------------------------------------
api POST $C '{"key":"legal_contracts","name":"Contract review","costTier":"high","description":"Contracts","examples":["Review this NDA","Find risky clauses"],"requiresVision":false,"targetSystemPrompt":"You are a contracts lawyer.","defaultModel":"gpt-4o"}'
t_is "create: 201" "$T_STATUS" 201
CID=$(jget _id)
t_like "create: an id" "$CID" '^[0-9a-f]{24}$'
t_is "create: the fields" "$(jnode 'b=>[b.key,b.name,b.costTier,b.description,b.examples.join("|"),b.requiresVision,b.targetSystemPrompt,b.defaultModel].join(";")')" \
	"legal_contracts;Contract review;high;Contracts;Review this NDA|Find risky clauses;false;You are a contracts lawyer.;gpt-4o"
t_is "create: not built-in" "$(jget isBuiltIn)" false
t_is "create: order = max + 1" "$(jget order)" "$((maxorder + 1))"
t_like "create: timestamps" "$(jget createdAt)" '^20[0-9]{2}-'

api POST $C '{"key":"tiny","name":"Tiny","costTier":"micro"}'
t_is "minimal create: 201" "$T_STATUS" 201
TID=$(jget _id)
t_is "minimal create: defaults" "$(jnode 'b=>JSON.stringify([b.examples,b.requiresVision,b.targetSystemPrompt,b.isBuiltIn,b.order])')" \
	"[[],false,\"\",false,$((maxorder + 2))]"

api POST $C '{"key":"legal_contracts","name":"Again","costTier":"low"}'
t_is "duplicate key: 409" "$T_STATUS" 409
t_is "duplicate key: message" "$(jget error)" "Category key already exists"

# --- validation: 400 naming the field -------------------------------------------------------------------
bad() { # NAME BODY FIELD-REGEX [METHOD PATH]
	api "${4:-POST}" "${5:-$C}" "$2"
	t_is "$1: 400" "$T_STATUS" 400
	t_like "$1: names the field" "$(jget error)" "$3"
}
long65=$(printf 'k%.0s' $(seq 1 65))
bad "missing key" '{"name":"x","costTier":"low"}' '^key: is required'
bad "key with capitals" '{"key":"Bad_Key","name":"x","costTier":"low"}' '^key: '
bad "key with a dash" '{"key":"bad-key","name":"x","costTier":"low"}' '^key: '
bad "key too long" "{\"key\":\"$long65\",\"name\":\"x\",\"costTier\":\"low\"}" '^key: must be at most 64'
bad "key not a string" '{"key":5,"name":"x","costTier":"low"}' '^key: must be a string'
bad "missing name" '{"key":"a1","costTier":"low"}' '^name: is required'
bad "blank name" '{"key":"a1","name":"  ","costTier":"low"}' '^name: '
bad "missing costTier" '{"key":"a1","name":"x"}' '^costTier: is required'
bad "unknown costTier" '{"key":"a1","name":"x","costTier":"premium"}' '^costTier: must be one of micro, minimal, low, medium, advanced, high, ultra, critical'
bad "costTier not a string" '{"key":"a1","name":"x","costTier":3}' '^costTier: '
bad "examples not an array" '{"key":"a1","name":"x","costTier":"low","examples":"one"}' '^examples: '
bad "examples with a number" '{"key":"a1","name":"x","costTier":"low","examples":["a",2]}' '^examples\[1\]: '
many=$(node -e 'process.stdout.write(JSON.stringify(Array.from({length:51},(_, i)=>"e"+i)))')
bad "51 examples" "{\"key\":\"a1\",\"name\":\"x\",\"costTier\":\"low\",\"examples\":$many}" '^examples: must have at most 50'
bad "requiresVision not a boolean" '{"key":"a1","name":"x","costTier":"low","requiresVision":"yes"}' '^requiresVision: '
bad "defaultModel not a string" '{"key":"a1","name":"x","costTier":"low","defaultModel":{}}' '^defaultModel: '
bigprompt=$(head -c 16385 /dev/zero | tr '\0' 'p')
bad "targetSystemPrompt over 16 KiB" "{\"key\":\"a1\",\"name\":\"x\",\"costTier\":\"low\",\"targetSystemPrompt\":\"$bigprompt\"}" '^targetSystemPrompt: must be at most 16384'
api POST $C '{"key":'
t_is "broken JSON: 400" "$T_STATUS" 400
api POST $C '[1,2]'
t_is "a JSON array: 400" "$T_STATUS" 400
api GET $C
t_is "nothing invalid was created" "$(jnode 'b=>b.length')" "$((total + 2))"

# --- update ---------------------------------------------------------------------------------------------
api PUT "$C/$CID" '{"name":"Contracts","costTier":"advanced","examples":["Check this lease"],"order":500}'
t_is "update: 200" "$T_STATUS" 200
t_is "update: merged" "$(jnode 'b=>[b.key,b.name,b.costTier,b.examples.join("|"),b.order,b.description,b.defaultModel].join(";")')" \
	"legal_contracts;Contracts;advanced;Check this lease;500;Contracts;gpt-4o"
api PUT "$C/$CID" '{"defaultModel":null}'
t_is "update: null clears defaultModel" "$(jget defaultModel)" "<undefined>"
okprompt=$(head -c 16384 /dev/zero | tr '\0' 'p')
api PUT "$C/$CID" "{\"targetSystemPrompt\":\"$okprompt\"}"
t_is "update: a 16 KiB prompt is accepted" "$T_STATUS" 200
api PUT "$C/$CID" '{"key":"contracts_review"}'
t_is "update: a custom category's key may change" "$(jget key)" contracts_review
api PUT "$C/$CID" '{"key":"tiny"}'
t_is "update: to an existing key: 409" "$T_STATUS" 409
bad "update: bad key" '{"key":"No Spaces"}' '^key: ' PUT "$C/$CID"
bad "update: bad costTier" '{"costTier":"extreme"}' '^costTier: ' PUT "$C/$CID"
bad "update: negative order" '{"order":-1}' '^order: ' PUT "$C/$CID"
bad "update: order not a number" '{"order":"1"}' '^order: ' PUT "$C/$CID"
bad "update: examples of objects" '{"examples":[{}]}' '^examples\[0\]: ' PUT "$C/$CID"
bad "update: blank name" '{"name":""}' '^name: ' PUT "$C/$CID"
PID=$(cat_id proofreading)
bad "update: a built-in's key cannot change" '{"key":"proof"}' '^key: ' PUT "$C/$PID"
api PUT "$C/$PID" '{"key":"proofreading","name":"Proofreading & Grammar"}'
t_is "update: a built-in sent back whole (same key) is fine" "$T_STATUS" 200
api PUT "$C/0123456789abcdef01234567" '{"name":"x"}'
t_is "update: unknown id: 404" "$T_STATUS" 404
t_is "update: unknown id: message" "$(jget error)" "Category not found"
api PUT "$C/not-an-id" '{"name":"x"}'
t_is "update: malformed id: 404" "$T_STATUS" 404

# --- delete ---------------------------------------------------------------------------------------------
api DELETE "$C/$TID"
t_is "delete: 200" "$T_STATUS" 200
t_is "delete: success" "$(jget success)" true
api DELETE "$C/$TID"
t_is "delete again: 404" "$T_STATUS" 404
api DELETE "$C/zzz"
t_is "delete a malformed id: 404" "$T_STATUS" 404
XID=$(cat_id translation)
api DELETE "$C/$XID"
t_is "a built-in may be deleted" "$T_STATUS" 200
api POST $C/seed "{}"
t_is "seed brings it back" "$(jget created)/$(jget updated)" 1/0
t_is "seed answers the total" "$(jget total)" "$total"
api GET $C
t_is "translation is back, built-in" "$(jnode 'b=>(b.find(c=>c.key==="translation")||{}).isBuiltIn')" true

# --- seed keeps admin edits, reset-defaults restores them ----------------------------------------------
api GET $C
orig_examples=$(jnode 'b=>JSON.stringify(b.find(c=>c.key==="proofreading").examples)')
orig_desc=$(jnode 'b=>b.find(c=>c.key==="proofreading").description')
api PUT "$C/$PID" '{"examples":["only this"],"description":"edited","targetSystemPrompt":"Be terse.","defaultModel":"gpt-4o-mini","name":"Proofing","costTier":"low"}'
t_is "edit a built-in" "$T_STATUS" 200
api POST $C/seed "{}"
t_is "seed repairs name and tier" "$(jget created)/$(jget updated)" 0/1
api GET $C
t_is "seed: name and tier back" "$(jnode 'b=>{const c=b.find(c=>c.key==="proofreading");return c.name+"/"+c.costTier}')" "Proofreading & Grammar/minimal"
t_is "seed: examples kept" "$(jnode 'b=>JSON.stringify(b.find(c=>c.key==="proofreading").examples)')" '["only this"]'
t_is "seed: a set prompt kept" "$(jnode 'b=>b.find(c=>c.key==="proofreading").targetSystemPrompt')" "Be terse."
api POST $C/reset-defaults "{}"
t_is "reset-defaults: 200" "$T_STATUS" 200
t_is "reset-defaults: one updated" "$(jget created)/$(jget updated)/$(jget total)" "0/1/$total"
api GET $C
t_is "reset: examples restored" "$(jnode 'b=>JSON.stringify(b.find(c=>c.key==="proofreading").examples)')" "$orig_examples"
t_is "reset: description restored" "$(jnode 'b=>b.find(c=>c.key==="proofreading").description')" "$orig_desc"
t_is "reset: prompt restored" "$(jnode 'b=>b.find(c=>c.key==="proofreading").targetSystemPrompt')" ""
t_is "reset: the chosen model kept" "$(jnode 'b=>b.find(c=>c.key==="proofreading").defaultModel')" gpt-4o-mini
t_is "reset: custom categories untouched" "$(jnode 'b=>b.find(c=>c.key==="contracts_review").costTier')" advanced
api POST $C/reset-defaults "{}"
t_is "reset-defaults again changes nothing" "$(jget created)/$(jget updated)" 0/0

# --- presets --------------------------------------------------------------------------------------------
api GET $C/presets
t_is "presets: 200" "$T_STATUS" 200
t_is "presets: the seven profiles" "$(jnode 'b=>b.map(p=>p.id).join(",")')" \
	software_development,customer_support,research_analysis,creative_content,data_operations,agentic_workflows,general_all
t_is "presets: shape" "$(jnode 'b=>Object.keys(b[0]).sort().join(",")')" categories,color,description,icon,id,name
t_is "presets: software_development has 12 categories" "$(jnode 'b=>b[0].categories.length')" 12
t_is "presets: general_all lists none (= all)" "$(jnode 'b=>b[6].categories.length')" 0

# --- apply-preset ---------------------------------------------------------------------------------------
A=$C/apply-preset
bad "apply-preset: no profileIds" '{}' '^profileIds: is required' POST $A
bad "apply-preset: empty profileIds" '{"profileIds":[]}' '^profileIds required$' POST $A
bad "apply-preset: profileIds a string" '{"profileIds":"general_all"}' '^profileIds: ' POST $A
bad "apply-preset: unknown profiles" '{"profileIds":["nope","nada"]}' '^No matching profiles found$' POST $A
bad "apply-preset: malformed providerId" '{"profileIds":["general_all"],"providerId":"xyz"}' '^providerId: ' POST $A
api POST $A '{"profileIds":["general_all"],"providerId":"0123456789abcdef01234567"}'
t_is "apply-preset: unknown provider: 404" "$T_STATUS" 404
api POST $A '{"profileIds":["customer_support","nope"]}'
t_is "apply-preset without a provider: 200" "$T_STATUS" 200
t_is "apply-preset without a provider: shape" \
	"$(jnode 'b=>JSON.stringify([b.profiles,b.categoriesConsidered,b.updated,b.skipped,b.assignments])')" \
	'[["Customer Support"],9,0,9,[]]'
api POST $A '{"profileIds":["general_all","customer_support"]}'
t_is "general_all with another profile still means all categories" "$(jget categoriesConsidered)" "$((total + 1))"

# With a provider whose discovered models have tiers (when the providers module is there).
api POST /api/prism/admin/providers '{"name":"Preset test","type":"openai","config":{"baseUrl":"http://127.0.0.1:9/v1","auth":{"type":"api_key","apiKey":"sk-preset-test-secret"}},"discoveredModels":[{"id":"gpt-4o-mini","tier":"minimal"},{"id":"zz-unknown-minimal","tier":"minimal"},{"id":"claude-opus-4-6","tier":"advanced"},{"id":"gpt-4.1","tier":"advanced"}]}'
PROVID=$(jget _id)
if [ "$T_STATUS" = 201 ] && api GET "/api/prism/admin/providers/$PROVID" && [ "$(jnode 'b=>((b.provider||b).discoveredModels||[]).length')" = 4 ]; then
	api POST $A "{\"profileIds\":[\"software_development\"],\"providerId\":\"$PROVID\"}"
	t_is "apply-preset with a provider: 200" "$T_STATUS" 200
	t_like "the best advanced model by intelligence wins" "$(jnode 'b=>JSON.stringify(b.assignments.find(a=>a.category==="coding_complex"))')" \
		'"model":"claude-opus-4-6"'
	t_is "categories with a model are skipped" "$(jnode 'b=>b.assignments.some(a=>a.category==="contracts_review")')" false
	t_is "updated + skipped = considered" "$(jnode 'b=>b.updated+b.skipped===b.categoriesConsidered')" true
	api GET $C
	t_is "the assignment is stored" "$(jnode 'b=>b.find(c=>c.key==="coding_complex").defaultModel')" claude-opus-4-6
	t_unlike "no secret in any answer" "$T_BODY" 'sk-preset-test-secret'
else
	t_diag "providers module not available ($T_STATUS): the provider path of apply-preset is not tested"
	echo "ok $((T_N + 1)) # SKIP apply-preset with a provider (no providers module)"; T_N=$((T_N + 1))
fi

# --- RBAC -----------------------------------------------------------------------------------------------
TOKEN= api GET $C
t_is "anonymous: 401" "$T_STATUS" 401
FIN=$(adm_user finops1 finops 2>/dev/null)
if [ -n "$FIN" ]; then
	TOKEN=$FIN api GET $C
	t_is "finops may list" "$T_STATUS" 200
	TOKEN=$FIN api GET $C/presets
	t_is "finops may list presets" "$T_STATUS" 200
	TOKEN=$FIN api POST $C '{"key":"fin_cat","name":"x","costTier":"low"}'
	t_is "finops may not create" "$T_STATUS" 403
	TOKEN=$FIN api PUT "$C/$CID" '{"name":"x"}'
	t_is "finops may not update" "$T_STATUS" 403
	TOKEN=$FIN api POST $C/seed "{}"
	t_is "finops may not seed" "$T_STATUS" 403
	TOKEN=$FIN api POST $A '{"profileIds":["general_all"]}'
	t_is "finops may not apply presets" "$T_STATUS" 403
	MNT=$(adm_user maint1 maintainer)
	TOKEN=$MNT api POST $C '{"key":"maint_cat","name":"By maintainer","costTier":"low"}'
	t_is "a maintainer may create" "$T_STATUS" 201
	VIEWER=$(adm_user viewer1 tenant-viewer)
	TOKEN=$VIEWER api GET $C
	t_is "a tenant-viewer may not list" "$T_STATUS" 403
else
	echo "ok $((T_N + 1)) # SKIP RBAC by role (no users module yet)"; T_N=$((T_N + 1))
fi

# --- audit ----------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=category&limit=500"
t_is "audit: 200" "$T_STATUS" 200
acts=$(jnode 'b=>[...new Set(b.changes.map(c=>c.action))].sort().join(",")')
for a in create update delete seed reset-defaults; do
	t_like "audit: a $a entry" ",$acts," ",$a,"
done
t_is "audit: the create names the category" \
	"$(jnode "b=>b.changes.some(c=>c.action==='create'&&c.targetId==='$CID'&&c.targetName==='legal_contracts')")" true
t_is "audit: the built-in delete is recorded" "$(jnode "b=>b.changes.some(c=>c.action==='delete'&&c.targetName==='translation')")" true
t_is "audit: every entry targets category" "$(jnode 'b=>b.changes.every(c=>c.target==="category")')" true

t_done
