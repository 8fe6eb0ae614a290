#!/bin/bash
# Automatic routing through lighttpd against a fake upstream: auto, auto-prism and model-prism routed to the
# tenant's models by tier; the decision in the answer (auto_routing, plain and streamed), in headers and in
# the RequestLog; the category's system prompt injected; force-route modes with the opt-out token and the tier
# cap; the model policy and open breakers respected; no route; the LLM classifier answering well, with
# malformed JSON, with an unknown category, and too slowly (routing goes on from the rules within the
# timeout); the test-route dry run and its trace; a test suite run; RBAC on the routing admin API.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" "ratelimit_gateway = 100000" "offline = true" \
	|| { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN

# last EXPR: EXPR over the body `b` of the last chat request the upstream received.
last() { rec "$T_TMP/up.jsonl" "(b=>($1))(JSON.parse(r.filter(x=>x.method===\"POST\").slice(-1)[0].body))"; }
# nth_last N EXPR: the same for the Nth last one (1 = last).
nth_last() { rec "$T_TMP/up.jsonl" "(b=>($2))(JSON.parse(r.filter(x=>x.method===\"POST\").slice(-$1)[0].body))"; }
posts() { rec "$T_TMP/up.jsonl" 'r.filter(x=>x.method==="POST").length'; }

KU=sk-up-$RANDOM$RANDOM
node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/up.port" --record "$T_TMP/up.jsonl" --key "$KU" \
	--slow-ms 6000 >"$T_TMP/up.log" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/up.port" || { t_fail "fake upstream started"; t_done; exit; }
: >>"$T_TMP/up.jsonl"
UP="http://127.0.0.1:$(cat "$T_TMP/up.port")"

M='{"id":"tiny-micro","tier":"micro","inputPer1M":0.05,"outputPer1M":0.1},
   {"id":"small-minimal","tier":"minimal","inputPer1M":0.2,"outputPer1M":0.8},
   {"id":"mid-low","tier":"low","inputPer1M":0.5,"outputPer1M":2},
   {"id":"main-medium","tier":"medium","inputPer1M":3,"outputPer1M":15},
   {"id":"big-high","tier":"high","inputPer1M":10,"outputPer1M":40},
   {"id":"huge-ultra","tier":"ultra","inputPer1M":15,"outputPer1M":75},
   {"id":"fake-classify","visible":false,"inputPer1M":1,"outputPer1M":2},
   {"id":"fake-slow","visible":false},{"id":"fake-500","visible":false}'
api POST /api/prism/admin/providers "{\"name\":\"Up\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"$KU\"},\"options\":{\"timeoutMs\":20000}},\"discoveredModels\":[$M]}"
P=$(jget _id)
t_is "provider created" "$T_STATUS" 201
# tenant TENANT-JSON-FIELDS: creates a tenant with the provider and routing on; prints "id key"
tenant() {
	api POST /api/prism/admin/tenants "{\"providerIds\":[\"$P\"],$1}"
	[ "$T_STATUS" = 201 ] || { t_diag "tenant: $T_STATUS $T_BODY"; return 1; }
	echo "$(jget _id) $(jget apiKey)"
}
read -r TR KR <<<"$(tenant '"slug":"rt","name":"Routed","routing":{"enabled":true},"defaultSystemPrompt":"Be kind."')"
read -r TF KF <<<"$(tenant '"slug":"forced","name":"Forced","routing":{"enabled":true,"forceAutoRouteMode":"all"}')"
read -r TS KS <<<"$(tenant '"slug":"smart","name":"Smart","routing":{"enabled":true,"forceAutoRouteMode":"smart"}')"
read -r TO KO <<<"$(tenant '"slug":"off","name":"Force without routing","routing":{"enabled":false,"forceAutoRouteMode":"all"}')"
read -r TW KW <<<"$(tenant '"slug":"wl","name":"Whitelist","routing":{"enabled":true},"modelConfig":{"mode":"whitelist","list":["big-high"]}')"
read -r TN KN <<<"$(tenant '"slug":"none","name":"Nothing allowed","routing":{"enabled":true},"modelConfig":{"mode":"whitelist","list":["nothing"]}')"
[ -n "$KR" ] && [ -n "$KN" ] || { t_fail "tenants created"; t_done; exit; }

# chat SLUG KEY BODY [curl args]
chat() {
	local slug=$1 key=$2 body=$3; shift 3
	t_http -X POST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' --data-binary "$body" "$@" \
		"$T_BASE/api/$slug/v1/chat/completions"
}
msg() { printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2" "${3:+,$3}"; }

# --- routed requests --------------------------------------------------------------------------------------------
chat rt "$KR" "$(msg auto Hello)" -D "$T_TMP/h1"
t_is "auto: 200" "$T_STATUS" 200
t_is "auto: the hint tier raised to medium (the original's worked example)" \
	"$(jeval 'd.auto_routing.selected_model+" "+d.auto_routing.cost_tier+" "+d.auto_routing.overrides.join("+")')" \
	"main-medium medium confidence_fallback"
t_is "auto: the upstream was called with the routed model" "$(last 'b.model')" "main-medium"
t_is "auto: the answer names the routed model" "$(jeval 'd.cost_info.model')" "main-medium"
t_is "auto: category and selection method" "$(jeval 'd.auto_routing.category+" "+d.auto_routing.selection_method')" \
	"chat_title_generation benchmark_balanced"
t_like "auto: routing time reported" "$(jeval 'd.auto_routing.routing_time_ms')" '^[0-9.]+(e-?[0-9]+)?$'
t_like "auto: the routed model in a header" "$(tr -d '\r' <"$T_TMP/h1")" $'x-prism-routed-model: main-medium'
t_like "auto: the tier in a header" "$(tr -d '\r' <"$T_TMP/h1")" $'x-prism-route-tier: medium'
for m in auto-prism model-prism; do
	chat rt "$KR" "$(msg $m Hello)"
	t_is "$m routes like auto" "$T_STATUS $(jeval 'd.auto_routing.selected_model')" "200 main-medium"
done
chat rt "$KR" '{"model":"auto","messages":[{"role":"user","content":"<fim_prefix>def add(a, b):<fim_suffix><fim_middle>"}]}'
t_is "FIM: the micro tier" "$(jeval 'd.auto_routing.selected_model+" "+d.auto_routing.category')" "tiny-micro coding_autocomplete"
chat rt "$KR" "$(msg auto 'Please review the NDA clause for GDPR compliance before we sign')"
t_is "legal keywords: advanced is empty, the nearest tier above" \
	"$(jeval 'd.auto_routing.selected_model+" "+d.auto_routing.category+" "+d.auto_routing.overrides.join("+")')" \
	"big-high legal_analysis tier_step:high"
chat rt "$KR" "$(msg auto 'Our standard calendar for Monday is the source of the android resource')"
t_is "'standard', 'source', 'android' are no domain keywords" "$(jeval 'd.auto_routing.domain+" "+d.auto_routing.cost_tier')" \
	"general medium"
chat rt "$KR" '{"model":"auto","messages":[{"role":"user","content":[{"type":"text","text":"What is on this picture?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}'
t_is "image: a vision category, at least low" "$(jeval 'd.auto_routing.category+" "+d.auto_routing.cost_tier')" "vision_simple low"
chat rt "$KR" "$(msg auto Hello '"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]')"
t_is "tools: raised to the tool-call minimum" "$(jeval 'd.auto_routing.overrides.join("+")')" "tool_call_upgrade"

# streamed: the decision is one more chunk before [DONE]
chat rt "$KR" "$(msg auto Hello '"stream":true')" -N
t_is "stream: 200" "$T_STATUS" 200
t_like "stream: an auto_routing chunk" "$T_BODY" '"auto_routing":\{[^}]*"selected_model":"main-medium"'
t_like "stream: it ends with [DONE]" "$(printf '%s' "$T_BODY" | tail -c 20)" 'data: \[DONE\]'
t_is "stream: the auto_routing chunk comes last, before [DONE]" \
	"$(printf '%s' "$T_BODY" | grep '^data: ' | tail -n 2 | head -n 1 | grep -c auto_routing)" 1

# the category's system prompt goes to the model (string and array system content), not to FIM requests
api GET /api/prism/admin/categories
CAT=$(jeval 'd.find(c=>c.key==="chat_title_generation")._id')
api PUT "/api/prism/admin/categories/$CAT" '{"targetSystemPrompt":"Answer with a short title only."}'
t_is "category prompt set" "$T_STATUS" 200
chat rt "$KR" "$(msg auto Hello)"
t_is "the tenant's and the category's prompts injected as a system message" \
	"$(last 'b.messages[0].role+": "+b.messages[0].content')" $'system: Be kind.\n\nAnswer with a short title only.'
chat rt "$KR" '{"model":"auto","messages":[{"role":"system","content":[{"type":"text","text":"You are terse."}]},{"role":"user","content":"Hello"}]}'
t_is "system prompt: array system content keeps its blocks" "$(last 'JSON.stringify(b.messages[0].content)')" \
	'[{"type":"text","text":"You are terse."},{"type":"text","text":"Be kind.\n\nAnswer with a short title only."}]'
chat rt "$KR" '{"model":"auto","messages":[{"role":"system","content":"You help."},{"role":"user","content":"Hello"}]}'
t_is "system prompt: appended to a string system message" "$(last 'b.messages[0].content')" \
	$'You help.\n\nBe kind.\n\nAnswer with a short title only.'
chat rt "$KR" "$(msg main-medium Hello)"
t_is "system prompt: a named model gets the tenant's prompt only" "$(last 'b.messages.length+" "+b.messages[0].content')" \
	"2 Be kind."
chat rt "$KR" '{"model":"auto","messages":[{"role":"user","content":"<fim_prefix>def add(a, b):<fim_suffix><fim_middle>"}]}'
t_is "system prompt: none for a routed fill-in-the-middle request" "$(last 'b.messages.length+" "+b.messages[0].role')" "1 user"

# --- force-route modes --------------------------------------------------------------------------------------------
chat forced "$KF" "$(msg huge-ultra Hello)"
t_is "force all: a named model is routed" "$(jeval 'd.auto_routing.selected_model+" "+d.auto_routing.requested_model')" \
	"main-medium huge-ultra"
t_is 'force all: the model is told the client asked for "huge-ultra"' \
	"$(last 'b.messages[0].content.startsWith("Always respond in the same language")+" "+/asked for .huge-ultra./.test(b.messages[0].content)')" "true true"
chat forced "$KF" "$(msg small-minimal Hello)"
t_is "force all: never dearer than the user's own choice" \
	"$(jeval 'd.auto_routing.selected_model+" "+d.auto_routing.overrides.join("+")')" \
	"small-minimal confidence_fallback+tier_cap:small-minimal"
chat forced "$KF" "$(msg huge-ultra 'Hello --model-prism-accept-model please')"
t_is "opt-out token: the named model is kept" "$(jeval 'd.cost_info.model+" "+(d.auto_routing===undefined)')" "huge-ultra true"
t_is "opt-out token: taken out of the message, and no routing note" \
	"$(last 'b.messages[b.messages.length-1].content+" "+/Routing note/.test(JSON.stringify(b))')" "Hello please false"
chat forced "$KF" "$(msg up/huge-ultra Hello)"
t_is "force all: an explicit provider prefix is not routed" "$(jeval 'd.cost_info.model+" "+(d.auto_routing===undefined)')" \
	"huge-ultra true"
chat smart "$KS" "$(msg huge-ultra Hello)"
t_is "smart: a trivial task is rerouted" "$(jeval 'd.auto_routing.selected_model')" "main-medium"
chat smart "$KS" "$(msg huge-ultra 'Please review the NDA clause for GDPR compliance before we sign')"
t_is "smart: a substantial task keeps the named model" \
	"$(jeval 'd.auto_routing.selected_model+" "+d.auto_routing.selection_method')" "huge-ultra strictness_smart_keep_user"
chat off "$KO" "$(msg huge-ultra Hello)"
t_is "force mode with routing disabled: the request is served as named (the original broke it)" \
	"$T_STATUS $(jeval 'd.cost_info.model') $(jeval 'd.auto_routing===undefined')" "200 huge-ultra true"
chat off "$KO" "$(msg auto Hello)"
t_is "auto with routing disabled: 400 auto_routing_disabled" "$T_STATUS $(jeval 'd.error.code')" "400 auto_routing_disabled"

# --- policy, breakers, no route -----------------------------------------------------------------------------------
chat wl "$KW" "$(msg auto Hello)"
t_is "policy: only an allowed model is chosen" "$(jeval 'd.auto_routing.selected_model')" "big-high"
chat none "$KN" "$(msg auto Hello)"
t_is "nothing allowed: 503 no_route" "$T_STATUS $(jeval 'd.error.code')" "503 no_route"
t_like "no route: the message says why" "$(jeval 'd.error.message')" "no model"

# --- the LLM classifier -------------------------------------------------------------------------------------------
# fake-classify answers with the JSON that follows "ECHO_JSON:" in the request it gets (the classifier's context
# quotes the user's message).
read -r TC KC <<<"$(tenant "\"slug\":\"cls\",\"name\":\"Classified\",\"routing\":{\"enabled\":true,\"classifierProvider\":\"$P\",\"classifierModel\":\"fake-classify\"}")"
GOOD='{"category":"coding_complex","confidence":0.9,"complexity":"complex","cost_tier":"high","domain":"tech","language":"en","estimated_output_length":"long","reasoning":"a hard coding task"}'
GOOD_ESC=$(printf '%s' "$GOOD" | sed 's/"/\\"/g')
chat cls "$KC" "$(msg auto "Refactor this module ECHO_JSON:$GOOD_ESC")"
t_is "classifier: 200" "$T_STATUS" 200
t_is "classifier: its category and tier decide" \
	"$(jeval 'd.auto_routing.category+" "+d.auto_routing.cost_tier+" "+d.auto_routing.selected_model')" "coding_complex high big-high"
t_is "classifier: the classifier model and its tokens are reported" \
	"$(jeval 'd.auto_routing.classifier.model+" "+(d.auto_routing.classifier.input_tokens>0)+" "+(d.auto_routing.classifier.error==null)')" \
	"fake-classify true true"
t_is "classifier: its cost is counted, at the classifier's price (\$1/\$2 per 1M)" \
	"$(jeval 'Math.abs(d.auto_routing.routing_cost_usd-(d.auto_routing.classifier.input_tokens*1+d.auto_routing.classifier.output_tokens*2)/1e6)<1e-9 && d.auto_routing.routing_cost_usd>0')" true
t_is "classifier: called with temperature 0, max_tokens 512, its own prompt" \
	"$(nth_last 2 'b.model+" "+b.temperature+" "+b.max_tokens+" "+b.messages[0].content.includes("## Categories")')" \
	"fake-classify 0 512 true"
chat cls "$KC" "$(msg auto 'Hello ECHO_JSON:this is not json')"
t_is "classifier: malformed JSON -> the rules decide" \
	"$T_STATUS $(jeval 'd.auto_routing.overrides.includes("classifier_fallback")+" "+d.auto_routing.classifier.error')" \
	"200 true invalid_json"
t_is "classifier: malformed JSON -> still a sensible tier" "$(jeval 'd.auto_routing.cost_tier')" "medium"
BADCAT='{"category":"premium_stuff","confidence":0.9,"cost_tier":"premium"}'
chat cls "$KC" "$(msg auto "Hello ECHO_JSON:$(printf '%s' "$BADCAT" | sed 's/"/\\"/g')")"
t_like "classifier: an unknown category -> fallback, never the cheapest tier" \
	"$(jeval 'd.auto_routing.classifier.error+" "+d.auto_routing.cost_tier')" "^unknown_(category|tier)[^ ]* medium$"
read -r TSL KSL <<<"$(tenant "\"slug\":\"slowcls\",\"name\":\"Slow classifier\",\"routing\":{\"enabled\":true,\"classifierProvider\":\"$P\",\"classifierModel\":\"fake-slow\",\"classifierTimeoutMs\":1000}")"
t0=$(date +%s%N)
chat slowcls "$KSL" "$(msg auto Hello)"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
t_is "classifier too slow: answered from the rules" \
	"$T_STATUS $(jeval 'd.auto_routing.classifier.error+" "+d.auto_routing.selected_model')" "200 timeout main-medium"
t_ok_if() { if [ "$2" ]; then t_ok "$1"; else t_fail "$1" "$3"; fi; }
t_ok_if "classifier too slow: cut at its timeout (1 s), the request took ${ms} ms" "$([ "$ms" -lt 3000 ] && echo y)" "took $ms ms"
read -r TFB KFB <<<"$(tenant "\"slug\":\"fbcls\",\"name\":\"Fallback classifier\",\"routing\":{\"enabled\":true,\"classifierProvider\":\"$P\",\"classifierModel\":\"fake-500\",\"classifierFallbacks\":[{\"provider\":\"$P\",\"model\":\"fake-classify\"}]}")"
chat fbcls "$KFB" "$(msg auto "Refactor this module ECHO_JSON:$GOOD_ESC")"
t_is "classifier fallback: the next classifier answers" \
	"$(jeval 'd.auto_routing.classifier.model+" "+d.auto_routing.cost_tier')" "fake-classify high"

read -r TL KL <<<"$(tenant "\"slug\":\"limited\",\"name\":\"Limited\",\"rateLimit\":{\"requestsPerMinute\":1},\"routing\":{\"enabled\":true,\"classifierProvider\":\"$P\",\"classifierModel\":\"fake-classify\"}")"
chat limited "$KL" "$(msg auto "Refactor this module ECHO_JSON:$GOOD_ESC")"
t_is "limits: the first request is routed with the classifier" "$T_STATUS $(jeval 'd.auto_routing.classifier.model')" "200 fake-classify"
n=$(posts)
chat limited "$KL" "$(msg auto "Refactor this module ECHO_JSON:$GOOD_ESC")"
t_is "limits: over the tenant's limit: 429 before any classifier call" "$T_STATUS $(( $(posts) - n ))" "429 0"

# --- the request log ----------------------------------------------------------------------------------------------
logs() { "$PRISMCTL" dump requestlogs --config "$T_CONF" --limit 10000 2>/dev/null; }
for _ in $(seq 1 100); do logs | grep -q 'fake-classify' && break; sleep 0.2; done
RL=$(logs)
t_is "log: routed requests are marked auto-routed with tier and category" \
	"$(printf '%s' "$RL" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const r=JSON.parse(s).filter(x=>x.isAutoRouted&&x.routedModel==="big-high"&&x.category==="coding_complex");
		const x=r[0]||{};process.stdout.write([r.length>0,x.costTier,x.classifierModel,x.routingCostUsd>0,x.actualCostUsd>x.routingCostUsd,typeof x.routingSignals].join(" "))})')" \
	"true high fake-classify true true object"
t_is "log: the override trail is appended, not overwritten" \
	"$(printf '%s' "$RL" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const r=JSON.parse(s).filter(x=>x.overrideApplied==="confidence_fallback+tier_cap:small-minimal");
		process.stdout.write(String(r.length>0&&r[0].forceRouted===true&&r[0].forceRoutedFrom==="small-minimal"))})')" "true"

# --- test-route ---------------------------------------------------------------------------------------------------
api POST /api/prism/admin/routing/test-route "{\"tenantId\":\"$TR\",\"prompt\":\"Hello\"}"
t_is "test-route: 200" "$T_STATUS" 200
t_is "test-route: the steps" "$(jeval 'd.trace.map(s=>s.name).join("|")')" \
	"Signal Extraction|Fast-Path Detection|Rule-Set Pre-Routing|Classifier Decision|Tenant Override Rules|Cost Mode|Tier Boost|Model Selection"
t_is "test-route: the summary" "$(jeval 'd.summary.finalModel+" "+d.summary.finalTier+" "+d.summary.overridesApplied')" \
	"main-medium medium confidence_fallback"
n=$(posts)
api POST /api/prism/admin/routing/test-route "{\"tenantId\":\"$TC\",\"prompt\":\"Refactor ECHO_JSON:$GOOD_ESC\",\"useClassifier\":true}"
t_is "test-route with the classifier: its output is a step" \
	"$(jeval 'd.trace.filter(s=>s.name==="Classifier Output").map(s=>s.data.category+" "+s.data.costTier).join()')" "coding_complex high"
t_is "test-route: only the classifier was called, never the target model" "$(( $(posts) - n )) $(last 'b.model')" "1 fake-classify"
api POST /api/prism/admin/routing/test-route "{\"tenantId\":\"$TC\",\"prompt\":\"Refactor ECHO_JSON:$GOOD_ESC\"}"
t_is "test-route without useClassifier: a dry run" "$(jeval 'd.trace[3].data.skipped')" "dry-run"
api POST /api/prism/admin/routing/test-route '{"prompt":"x"}'
t_is "test-route: tenantId is required" "$T_STATUS $(jget error)" "400 tenantId is required"
api POST /api/prism/admin/routing/test-route "{\"tenantId\":\"$TR\"}"
t_is "test-route: prompt is required" "$T_STATUS" 400
api POST /api/prism/admin/routing/test-route '{"tenantId":"64b000000000000000000099","prompt":"x"}'
t_is "test-route: unknown tenant 404" "$T_STATUS" 404

# --- a test suite run ---------------------------------------------------------------------------------------------
api POST /api/prism/admin/routing/test-suites '{"name":"smoke","testCases":[{"prompt":"Hello","expectedTierMin":"medium","expectedTierMax":"medium"},{"prompt":"<fim_prefix>x<fim_suffix><fim_middle>","expectedCategory":"coding_autocomplete","expectedTierMax":"micro"},{"prompt":"Hello","expectedTierMin":"ultra"}]}'
SUITE=$(jget _id)
t_is "suite created" "$T_STATUS" 201
api POST "/api/prism/admin/routing/test-suites/$SUITE/run" "{\"tenantId\":\"$TR\"}"
t_is "suite run: stored and answered" "$T_STATUS $(jeval 'd.summary.total+" "+d.summary.tierMatches+" "+d.summary.categoryMatches')" "201 3 2 3"
t_is "suite run: per case" "$(jeval 'd.results.map(r=>r.routedModel+":"+r.tierMatch).join(" ")')" \
	"main-medium:true tiny-micro:true main-medium:false"
api GET "/api/prism/admin/routing/test-suites/$SUITE/runs"
t_is "suite run: listed" "$(jeval 'd.length')" 1

# --- RBAC ---------------------------------------------------------------------------------------------------------
FT=$(adm_user fin finops)
TOKEN=$FT api POST /api/prism/admin/routing/test-route "{\"tenantId\":\"$TR\",\"prompt\":\"Hello\"}"
t_is "finops cannot run test-route" "$T_STATUS" 403
t_done
