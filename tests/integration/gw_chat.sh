#!/bin/bash
# The gateway's POST endpoints through lighttpd against fake upstreams, with curl: chat completions (plain and
# streamed event by event), legacy and fill-in-the-middle completions, embeddings; cost_info and session ids;
# usage chunks (reported and estimated); failover before the first byte and none after it; a client that
# disconnects; upstream errors mapped (429 + Retry-After, credentials, 400, context, max_tokens, timeouts,
# malformed and huge answers); context pre-flight and fallback; max_tokens clamped; the model policy on
# fallback candidates; circuit breakers; bad input; auto-routing ids with routing disabled; one RequestLog per request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" "ratelimit_gateway = 100000" "offline = true" \
	"max_body_size = 1m" || { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN

# calls FILE: the LLM requests an upstream received so far.
calls() { rec "$1" 'r.filter(x=>x.method==="POST").length'; }
# last FILE EXPR: EXPR over the body `b` of the last POST an upstream received.
last() { rec "$1" "(b=>($2))(JSON.parse(r.filter(x=>x.method===\"POST\").slice(-1)[0].body))"; }

up() {
	local name=$1; shift
	node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/$name.port" --record "$T_TMP/$name.jsonl" "$@" \
		>"$T_TMP/$name.log" 2>&1 &
	t_track $!
	t_wait_for test -s "$T_TMP/$name.port" || return 1
	: >>"$T_TMP/$name.jsonl"
	printf -v "UP_$name" 'http://127.0.0.1:%s' "$(cat "$T_TMP/$name.port")"
}
KA=sk-a-$RANDOM$RANDOM
KB=sk-b-$RANDOM$RANDOM
up A --key "$KA" --chunk-delay-ms 20 --slow-ms 8000 --huge-mb 40 || { t_fail "fake upstream started"; t_done; exit; }
up B --key "$KB"
up F --fail-status 500

# mkprov NAME URL KEY MODELS-JSON: creates a provider and prints its id.
mkprov() {
	api POST /api/prism/admin/providers "{\"name\":\"$1\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$2\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"$3\"},\"options\":{\"timeoutMs\":5000}},\"discoveredModels\":$4}"
	[ "$T_STATUS" = 201 ] || { t_diag "provider $1: $T_STATUS $T_BODY"; return 1; }
	jget _id
}
M='{"id":"fake-echo","contextWindow":200000,"maxOutputTokens":1000,"tier":"medium","inputPer1M":2,"outputPer1M":10},
   {"id":"fake-stream","tier":"medium"},{"id":"fake-nousage"},{"id":"fake-slow"},{"id":"fake-stall"},{"id":"fake-cut"},
   {"id":"fake-badsse"},{"id":"fake-streamerror"},{"id":"fake-huge"},{"id":"fake-think"},{"id":"fake-400"},
   {"id":"fake-401"},{"id":"fake-429"},{"id":"fake-maxtokens"},{"id":"fake-embed"},{"id":"fake-fim"},
   {"id":"fake-context","contextWindow":8192,"tier":"medium"},{"id":"tiny-ctx","contextWindow":60,"tier":"medium"},
   {"id":"hidden-model","visible":false},{"id":"fake-nostream"},{"id":"fake-500"},
   {"id":"fake-429date"},{"id":"fake-502html"},{"id":"fake-200error"},{"id":"fake-pretty"}'
PA=$(mkprov "Prov A" "$UP_A" "$KA" "[$M]")
PF=$(mkprov "Flaky" "$UP_F" "none" '[{"id":"shared-model"},{"id":"flaky-only"}]')
PB=$(mkprov "Prov B" "$UP_B" "$KB" '[{"id":"shared-model"}]')
[ -n "$PA" ] && [ -n "$PF" ] && [ -n "$PB" ] || { t_fail "providers created"; t_done; exit; }
api POST /api/prism/admin/tenants "{\"slug\":\"gw\",\"name\":\"Gateway\",\"providerIds\":[\"$PF\",\"$PA\",\"$PB\"],\"modelConfig\":{\"aliases\":{\"echo\":\"fake-echo\",\"robot\":\"auto\"}}}"
KEY=$(jget apiKey)
api POST /api/prism/admin/tenants "{\"slug\":\"strict\",\"name\":\"Strict\",\"providerIds\":[\"$PF\",\"$PA\",\"$PB\"],\"modelConfig\":{\"mode\":\"blacklist\",\"list\":[\"flaky/shared-model\",\"fake-echo\",\"fake-401\"]}}"
SKEY=$(jget apiKey)
[ -n "$KEY" ] && [ "$KEY" != "<undefined>" ] && [ -n "$SKEY" ] || { t_fail "tenants created"; t_done; exit; }

N_LOGGED=0          # gateway requests of a known tenant: each must leave exactly one RequestLog
# gw PATH BODY [curl args]: POST with the tenant's key.
gw() {
	local path=$1 body=$2; shift 2
	N_LOGGED=$((N_LOGGED + 1))
	t_http -X POST -H "Authorization: Bearer ${GWKEY:-$KEY}" -H 'Content-Type: application/json' --data-binary "$body" "$@" "$T_BASE$path"
}
CHAT=/api/gw/v1/chat/completions
msg() { printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2" "${3:+,$3}"; }

# --- non-streaming --------------------------------------------------------------------------------------------
gw $CHAT "$(msg fake-echo 'hello gateway')" -H 'X-User: alice'
t_is "chat: 200" "$T_STATUS" 200
t_is "chat: the upstream's answer" "$(jget choices.0.message.content)" "hello gateway"
t_is "chat: cost_info" "$(jeval '[d.cost_info.model,d.cost_info.provider,d.cost_info.input_tokens>0,d.cost_info.tokens_used===d.cost_info.input_tokens+d.cost_info.output_tokens,typeof d.cost_info.cost_usd].join()')" \
	"fake-echo,Prov A,true,true,number"
# the provider's price for the model: 2 and 10 USD per million tokens
t_is "chat: cost_usd from the provider's price" "$(jeval 'Math.abs(d.cost_info.cost_usd-(d.usage.prompt_tokens*2+d.usage.completion_tokens*10)/1e6)<1e-9')" true
SID=$(t_header x-session-id)
t_like "chat: x-session-id header, a UUID of version 7" "$SID" '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
t_is "chat: session_id in the body" "$(jget session_id)" "$SID"
t_is "the upstream got the bare model and the tenant's provider key" \
	"$(rec "$T_TMP/A.jsonl" 'r.filter(x=>x.method==="POST").slice(-1).map(x=>JSON.parse(x.body).model+" "+x.headers.authorization)[0]')" "fake-echo Bearer $KA"
t_is "stream:false upstream" "$(last "$T_TMP/A.jsonl" 'b.stream')" false

gw $CHAT "$(msg fake-echo 'latin-1 user')" -H $'X-User: J\xfcrgen'
t_is "a user name that is not UTF-8" "$T_STATUS" 200
gw $CHAT "$(msg fake-echo 'again')" -H 'x-session-id: my-session-42'
t_is "a client session id is kept" "$(t_header x-session-id)/$(jget session_id)" "my-session-42/my-session-42"
CONV='{"model":"fake-echo","messages":[{"role":"system","content":"You are a coding agent"},{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}'
gw $CHAT "$CONV"; S1=$(jget session_id)
gw $CHAT "$CONV"; S2=$(jget session_id)
t_like "a conversation gets a derived session id" "$S1" '^sp-[0-9a-f]{16}-gw$'
t_is "stable across its requests" "$S2" "$S1"

gw /api/gw/v1/chat/completions "$(msg prov-a/fake-echo 'prefixed')"
t_is "provider prefix: 200" "$T_STATUS" 200
t_is "provider prefix: the bare id upstream" "$(last "$T_TMP/A.jsonl" 'b.model')" fake-echo
gw $CHAT "$(msg echo 'aliased')"
t_is "alias: served by its target" "$(jget cost_info.model)/$(last "$T_TMP/A.jsonl" 'b.model')" "fake-echo/fake-echo"
for p in /v1/chat/completions /api/v1/chat/completions; do
	gw $p "$(msg fake-echo "via $p")"
	t_is "$p selects the key's tenant" "$T_STATUS $(jget choices.0.message.content)" "200 via $p"
done

# The provider's answer goes out as it came, with the gateway's members added at its end; one that shows
# reasoning to strip goes through a parse and comes out re-serialised.
gw $CHAT "$(msg fake-pretty 'as it came')"
t_is "an indented answer: 200 and its content" "$T_STATUS $(jget choices.0.message.content)" "200 as it came"
t_like "the provider's text kept (its indentation), the gateway's members after its own" \
	"$(head -c 40 "$T_TMP/last-body" | tr '\n' '~')" '^\{~  "id": "chatcmpl-fake'
t_like "cost_info and session_id appended before the closing brace" "$(tail -c 300 "$T_TMP/last-body" | tr '\n' '~')" \
	'~  \}~,"cost_info":\{"model":"fake-pretty",.*\},"session_id":"[0-9a-f-]{36}"\}~$'
t_is "and counted from the provider's usage" "$(jeval '[d.cost_info.input_tokens===d.usage.prompt_tokens, d.cost_info.output_tokens===d.usage.completion_tokens, d.cost_info.estimated===undefined].join()')" "true,true,true"
gw $CHAT "$(msg fake-think 'think')"
t_is "non-streaming: thinking stripped" "$(jeval '[d.choices[0].message.content, "reasoning_content" in d.choices[0].message].join("|")')" "The answer is 42.|false"
gw $CHAT "$(msg fake-nousage 'no usage please')"
t_is "usage estimated when the provider sends none" \
	"$(jeval '[Number.isInteger(d.usage.prompt_tokens),d.usage.prompt_tokens>0,d.usage.total_tokens===d.usage.prompt_tokens+d.usage.completion_tokens,d.cost_info.estimated].join()')" "true,true,true,true"

# max_tokens above the model's limit (1000) is clamped; so is max_completion_tokens
gw $CHAT "$(msg fake-echo 'clamp' '"max_tokens":5000')"
t_is "max_tokens clamped to the model's limit" "$T_STATUS $(last "$T_TMP/A.jsonl" 'b.max_tokens')" "200 1000"
gw $CHAT "$(msg fake-echo 'clamp' '"max_completion_tokens":4000')"
t_is "max_completion_tokens clamped" "$(last "$T_TMP/A.jsonl" 'b.max_completion_tokens')" 1000
gw $CHAT "$(msg fake-echo 'small' '"max_tokens":10,"stream_options":{"include_usage":true}')"
t_is "a smaller max_tokens passes; stream_options dropped without stream" "$(last "$T_TMP/A.jsonl" '[b.max_tokens,"stream_options" in b].join()')" "10,false"

# --- legacy and fill-in-the-middle completions, embeddings -----------------------------------------------------
gw /api/gw/v1/completions '{"model":"fake-fim","prompt":"def add(a, b):","suffix":"return c","max_tokens":20}'
t_is "FIM completion" "$T_STATUS $(jget choices.0.text)" "200 [prompt=def add(a, b):][suffix=return c]"
t_is "completions: cost_info" "$(jeval 'd.cost_info.model+" "+(d.cost_info.tokens_used>0)')" "fake-fim true"
t_is "completions: the upstream path" "$(rec "$T_TMP/A.jsonl" 'r.filter(x=>x.method==="POST").slice(-1)[0].path')" "/v1/completions"
gw /v1/completions '{"model":"fake-echo","prompt":["legacy ","prompt"]}'
t_is "legacy completion with a prompt array" "$T_STATUS $(jget choices.0.text)" "200 legacy prompt"
gw /api/gw/v1/embeddings '{"model":"fake-embed","input":["one","two"]}'
t_is "embeddings" "$T_STATUS $(jeval 'd.data.length+" "+d.data[0].embedding.length')" "200 2 8"
t_is "embeddings: cost_info without output tokens" "$(jeval 'd.cost_info.output_tokens+" "+d.cost_info.model')" "0 fake-embed"
gw /api/gw/v1/embeddings '{"model":"hidden-model","input":"x"}'
t_is "embeddings may use a hidden model" "$T_STATUS" 200
gw $CHAT "$(msg hidden-model 'x')"
t_is "chat may not" "$T_STATUS $(jget error.code)" "400 model_not_found"
gw $CHAT "$(msg prov-a/hidden-model 'x')"
t_is "nor with the provider named: a prefix opens no hidden model" "$T_STATUS $(jget error.code)" "400 model_not_found"
gw $CHAT "$(msg prov-a/never-discovered-model 'x')"
t_is "nor an undiscovered one" "$T_STATUS $(jget error.code)" "400 model_not_found"
gw /api/gw/v1/embeddings '{"model":"fake-embed","input":"x","stream":true}'
t_is "embeddings do not stream" "$T_STATUS $(jget error.type)" "400 invalid_request_error"

# --- streaming -------------------------------------------------------------------------------------------------
# sse BODY [curl args]: "MILLISECONDS DATA" for every data: line as it arrived, into $out.
sse() {
	local body=$1; shift
	N_LOGGED=$((N_LOGGED + 1))
	curl -sN --max-time 30 -H "Authorization: Bearer ${GWKEY:-$KEY}" -H 'Content-Type: application/json' \
		--data-binary "$body" "$@" "$T_BASE${SSE_PATH:-$CHAT}" | while IFS= read -r line; do
		case $line in data:*) echo "$(date +%s%3N) ${line#data: }" ;; esac
	done >"$T_TMP/sse.out"
	out=$(cat "$T_TMP/sse.out")
}
sse '{"model":"fake-stream","stream":true,"stream_options":{"include_usage":true},"fake_chunks":5,"fake_delay_ms":250,"messages":[{"role":"user","content":"go"}]}'
n=$(printf '%s\n' "$out" | grep -c '"content":"chunk ')
first=$(printf '%s\n' "$out" | grep '"content":"chunk 0' | cut -d' ' -f1)
lastc=$(printf '%s\n' "$out" | grep '"content":"chunk 4' | cut -d' ' -f1)
if [ "$n" = 5 ] && [ $((lastc - first)) -ge 800 ]; then t_ok "stream: 5 chunks arrive one by one ($((lastc - first)) ms)"
else t_fail "stream: 5 chunks arrive one by one" "$out"; fi
usage=$(printf '%s\n' "$out" | tail -n2 | head -n1 | cut -d' ' -f2-)
t_is "stream: ends with one well-formed usage chunk" "$(T_BODY=$usage jeval '[d.object,d.model,Array.isArray(d.choices)&&d.choices.length===0,Number.isInteger(d.usage.prompt_tokens),d.usage.completion_tokens,d.usage.total_tokens===d.usage.prompt_tokens+d.usage.completion_tokens,typeof d.id,typeof d.created].join()')" \
	"chat.completion.chunk,fake-stream,true,true,5,true,string,number"
t_is "stream: exactly one usage chunk" "$(printf '%s\n' "$out" | grep -c '"usage"')" 1
t_like "stream: then [DONE]" "$(printf '%s\n' "$out" | tail -n1)" ' \[DONE\]$'
t_is "stream: usage asked for upstream" "$(last "$T_TMP/A.jsonl" '[b.stream,b.stream_options.include_usage].join()')" "true,true"

sse '{"model":"fake-stream","stream":true,"fake_chunks":3,"fake_delay_ms":1,"messages":[{"role":"user","content":"go"}]}'
t_is "stream without include_usage: no usage chunk" "$(printf '%s\n' "$out" | grep -c '"usage"')" 0
t_like "stream without include_usage: [DONE]" "$(printf '%s\n' "$out" | tail -n1)" ' \[DONE\]$'
t_is "usage requested upstream anyway" "$(last "$T_TMP/A.jsonl" 'b.stream_options.include_usage')" true

sse '{"model":"fake-nousage","stream":true,"stream_options":{"include_usage":true},"fake_chunks":4,"fake_delay_ms":1,"messages":[{"role":"user","content":"estimate me"}]}'
usage=$(printf '%s\n' "$out" | grep '"usage"' | cut -d' ' -f2-)
t_is "stream without upstream usage: estimated integers" "$(T_BODY=$usage jeval '[Number.isInteger(d.usage.prompt_tokens),d.usage.prompt_tokens>0,Number.isInteger(d.usage.completion_tokens),d.usage.completion_tokens>0,d.usage.total_tokens===d.usage.prompt_tokens+d.usage.completion_tokens].join()')" \
	"true,true,true,true,true"

sse '{"model":"fake-think","stream":true,"messages":[{"role":"user","content":"think"}]}'
text=$(printf '%s\n' "$out" | cut -d' ' -f2- | grep -v DONE | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{let t="";for(const l of s.split("\n").filter(Boolean)){const j=JSON.parse(l);for(const c of j.choices||[])if(c.delta&&typeof c.delta.content==="string")t+=c.delta.content}process.stdout.write(t)})')
t_is "stream: thinking removed across chunk boundaries" "$text" "The answer is 42."
t_unlike "stream: no reasoning deltas" "$out" 'reasoning_content|Let me|hidden'

SSE_PATH=/api/gw/v1/completions
sse '{"model":"fake-stream","stream":true,"stream_options":{"include_usage":true},"fake_chunks":3,"fake_delay_ms":1,"prompt":"go"}'
SSE_PATH=
t_is "completions stream: the text" "$(printf '%s\n' "$out" | grep -o '"text":"chunk [0-9] "' | tr -d '\n')" '"text":"chunk 0 ""text":"chunk 1 ""text":"chunk 2 "'
t_like "completions stream: a text_completion usage chunk, then [DONE]" "$(printf '%s\n' "$out" | tail -n2 | cut -d' ' -f2- | tr '\n' '|')" \
	'^\{"id":"cmpl-[^"]*","object":"text_completion","created":[0-9]+,"model":"fake-stream","choices":\[\],"usage":\{"prompt_tokens":[0-9]+,"completion_tokens":3,"total_tokens":[0-9]+\}\}\|\[DONE\]\|$'

# A stream cut after output reached the client: one error event and [DONE], no failover, no repeat.
before_b=$(calls "$T_TMP/B.jsonl")
sse '{"model":"fake-cut","stream":true,"messages":[{"role":"user","content":"cut"}]}'
t_is "cut stream: the output once" "$(printf '%s\n' "$out" | grep -c 'part one')" 1
t_like "cut stream: an error event" "$(printf '%s\n' "$out" | tail -n2 | head -n1)" '"error":\{"message":"Provider .Prov A. failed during the stream[^"]*","type":"provider_error","code":"upstream_error"\}'
t_like "cut stream: then [DONE]" "$(printf '%s\n' "$out" | tail -n1)" ' \[DONE\]$'
t_is "cut stream: no other provider called" "$(calls "$T_TMP/B.jsonl")" "$before_b"
sse '{"model":"fake-badsse","stream":true,"messages":[{"role":"user","content":"bad"}]}'
t_like "malformed SSE: error event after the good part" "$(printf '%s\n' "$out" | cut -d' ' -f2- | tr '\n' '|')" '"content":"good ".*\{"error":\{.*\}\}\|\[DONE\]\|$'
sse '{"model":"fake-streamerror","stream":true,"fake_delay_ms":1,"messages":[{"role":"user","content":"x"}]}'
t_like "in-stream error: error event and [DONE]" "$(printf '%s\n' "$out" | cut -d' ' -f2- | tr '\n' '|')" 'chunk 0 .*\{"error":\{.*\}\}\|\[DONE\]\|$'

sse '{"model":"fake-stall","stream":true,"fake_delay_ms":1,"messages":[{"role":"user","content":"x"}]}'
t_like "a stream that stalls after output: timeout error event, then [DONE]" "$(printf '%s\n' "$out" | cut -d' ' -f2- | tr '\n' '|')" \
	'chunk 0 .*\{"error":\{"message":"[^"]*timed out[^"]*","type":"timeout_error","code":"upstream_timeout"\}\}\|\[DONE\]\|$'
gw $CHAT '{"model":"fake-nostream","stream":true,"messages":[{"role":"user","content":"plain json"}]}'
t_is "a JSON answer to a streaming request: 502 before the stream starts" "$T_STATUS $(jget error.code)" "502 upstream_error"

# A stream that fails before its first byte is an ordinary error answer.
gw $CHAT '{"model":"fake-500","stream":true,"messages":[{"role":"user","content":"x"}]}'
t_is "stream failing before the first byte: a JSON error with its status" "$T_STATUS $(jget error.code)" "502 upstream_error"
gw $CHAT '{"model":"fake-401","stream":true,"messages":[{"role":"user","content":"x"}]}'
t_is "stream failing before the first byte: 502 upstream_auth_failed" "$T_STATUS $(jget error.code)" "502 upstream_auth_failed"

# The client goes away in the middle of a stream: the upstream transfer is aborted.
N_LOGGED=$((N_LOGGED + 1))
curl -sN --max-time 1 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	--data-binary '{"model":"fake-stream","stream":true,"fake_chunks":60,"fake_delay_ms":100,"messages":[{"role":"user","content":"bye"}]}' \
	"$T_BASE$CHAT" >/dev/null 2>&1
closed() { [ "$(rec "$T_TMP/A.jsonl" 'r.filter(x=>x.event==="closed_early"&&x.model==="fake-stream").length')" -ge 1 ]; }
if t_wait_for closed; then
	t_ok "client gone: the upstream stream was closed early ($(rec "$T_TMP/A.jsonl" 'r.filter(x=>x.event==="closed_early").slice(-1)[0].sent') of 60 events sent)"
else
	t_fail "client gone: the upstream stream was closed early" "$(tail -n 3 "$T_TMP/A.jsonl")"
fi

# --- upstream errors ---------------------------------------------------------------------------------------------
gw $CHAT "$(msg fake-429 x)"
t_is "429 stays 429" "$T_STATUS $(jget error.type)" "429 rate_limit_error"
t_is "with the provider's Retry-After" "$(t_header retry-after)" 7
gw $CHAT "$(msg fake-429date x)"
t_is "429 with an HTTP-date Retry-After: seconds" "$T_STATUS $(t_header retry-after | grep -Ec '^([1-9]|[12][0-9]|3[01])$')" "429 1"
gw $CHAT "$(msg fake-502html x)"
t_is "an HTML 502 page: 502 upstream_error" "$T_STATUS $(jget error.code)" "502 upstream_error"
t_unlike "without the page" "$T_BODY" 'DOCTYPE|<html'
gw $CHAT "$(msg fake-200error x)"
t_is "an error body with status 200: 502" "$T_STATUS $(jget error.code)" "502 upstream_error"
gw $CHAT "$(msg fake-401 x)"
t_is "credentials refused: 502 upstream_auth_failed" "$T_STATUS $(jget error.code)" "502 upstream_auth_failed"
t_is "and says so" "$(jget error.message)" "Provider 'Prov A' rejected the gateway's credentials"
gw $CHAT "$(msg fake-400 x)"
t_is "400 stays 400" "$T_STATUS $(jget error.type)" "400 invalid_request_error"
t_like "with the provider's message" "$(jget error.message)" "Invalid value for 'temperature'"
t_unlike "sanitised (no control characters)" "$(jeval 'JSON.stringify(d.error.message)')" '\\[nt]'
gw $CHAT "$(msg fake-maxtokens x '"max_tokens":100000')"
t_is "max_tokens refused: 400 max_tokens_exceeded" "$T_STATUS $(jget error.code)" "400 max_tokens_exceeded"
t_is "after one retry with the provider's limit" "$(last "$T_TMP/A.jsonl" 'b.max_tokens')" 4096
gw $CHAT "$(msg fake-slow x)"
t_is "no answer in time: 504 upstream_timeout" "$T_STATUS $(jget error.code)" "504 upstream_timeout"
t_like "naming the provider" "$(jget error.message)" "'Prov A' \(timed out\)"
gw $CHAT "$(msg fake-huge x)"
t_is "a huge answer: 502" "$T_STATUS $(jget error.code)" "502 upstream_error"
hwm=0
for pid in $(t_prism_workers); do
	v=$(awk '/VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
	[ "${v:-0}" -gt "$hwm" ] && hwm=$v
done
if [ "$hwm" -lt 262144 ]; then t_ok "a huge answer: memory stays bounded (peak ${hwm} kB)"; else t_fail "a huge answer: memory stays bounded" "peak ${hwm} kB"; fi
gw $CHAT '{"model":"fake-huge","stream":true,"messages":[{"role":"user","content":"x"}]}'
t_is "a huge event before the first byte: 502 JSON" "$T_STATUS $(jget error.code)" "502 upstream_error"

# --- failover, breakers, policy ----------------------------------------------------------------------------------
gw $CHAT "$(msg shared-model 'fail over')"
t_is "failover: served by the second provider" "$T_STATUS $(jget cost_info.provider)" "200 Prov B"
t_is "failover: the first one was tried" "$(calls "$T_TMP/F.jsonl")" 1
sse '{"model":"shared-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"stream over"}]}'
t_is "stream failover before the first byte: the second provider's stream" \
	"$(printf '%s\n' "$out" | grep -c '"content":"stream ')/$(printf '%s\n' "$out" | grep -c '"error"')/$(calls "$T_TMP/F.jsonl")" "1/0/2"
t_like "stream failover: usage and [DONE]" "$(printf '%s\n' "$out" | tail -n2 | cut -d' ' -f2- | tr '\n' '|')" '"usage":\{.*\|\[DONE\]\|$'
gw $CHAT "$(msg flaky-only 'x')"
t_is "every provider failed: 502 naming them" "$T_STATUS $(jget error.code)" "502 upstream_error"
t_like "with the outcome" "$(jget error.message)" "'Flaky' \(HTTP 500\)"
for i in 1 2; do gw $CHAT "$(msg shared-model "again $i")"; done
t_is "five failures: the flaky provider was called five times" "$(calls "$T_TMP/F.jsonl")" 5
api GET /api/prism/admin/system/circuit-breaker
t_is "its breaker is open" "$(jeval "d.filter(b=>b.providerId===\"$PF\").map(b=>b.state+' '+b.failures)[0]")" "open 5"
gw $CHAT "$(msg shared-model 'skip it')"
t_is "an open breaker is skipped" "$T_STATUS $(jget cost_info.provider) $(calls "$T_TMP/F.jsonl")" "200 Prov B 5"
gw $CHAT "$(msg flaky-only 'x')"
t_is "all candidates open: 503 providers_unavailable" "$T_STATUS $(jget error.code)" "503 providers_unavailable"
t_like "naming them" "$(jget error.message)" "'Flaky'"
# the flaky provider's breaker is closed again for the policy test
api POST /api/prism/admin/system/circuit-breaker/reset "{\"providerId\":\"$PF\"}"

GWKEY=$SKEY
before_f=$(calls "$T_TMP/F.jsonl")
gw /api/strict/v1/chat/completions "$(msg shared-model 'policy')"
t_is "policy: a blocked candidate is dropped" "$T_STATUS $(jget cost_info.provider) $(calls "$T_TMP/F.jsonl")" "200 Prov B $before_f"
gw /api/strict/v1/chat/completions "$(msg fake-echo 'policy')"
t_is "policy: a blocked model is 403" "$T_STATUS $(jget error.code)" "403 model_not_allowed"
gw /api/strict/v1/chat/completions "$(msg fake-context 'long')"
t_is "context overflow without a larger model: 400" "$T_STATUS $(jget error.code)" "400 context_length_exceeded"
BIG=$(head -c 40000 /dev/zero | tr '\0' 'w')
before_a=$(calls "$T_TMP/A.jsonl")
gw /api/strict/v1/chat/completions "$(msg tiny-ctx "$BIG" '"max_tokens":50')"
t_is "pre-flight: too long and no larger model allowed: 400 before any call" "$T_STATUS $(jget error.code) $(calls "$T_TMP/A.jsonl")" \
	"400 context_length_exceeded $before_a"
GWKEY=

gw $CHAT "$(msg fake-context 'long')"
t_is "context overflow: a larger model of the tenant" "$T_STATUS $(jeval '[d.context_fallback.original_model,d.context_fallback.fallback_model,d.context_fallback.reason,d.cost_info.model].join()')" \
	"200 fake-context,fake-echo,context_length_exceeded,fake-echo"
before_a=$(calls "$T_TMP/A.jsonl")
gw $CHAT "$(msg tiny-ctx "$BIG")"
t_is "pre-flight: switched before the call" "$T_STATUS $(jget context_fallback.fallback_model) $(last "$T_TMP/A.jsonl" 'b.model') $(( $(calls "$T_TMP/A.jsonl") - before_a ))" \
	"200 fake-echo fake-echo 1"

# --- bad input -----------------------------------------------------------------------------------------------------
bad() {   # NAME BODY STATUS CODE [curl args]
	local name=$1 body=$2 status=$3 code=$4; shift 4
	gw $CHAT "$body" "$@"
	t_is "bad input: $name" "$T_STATUS $(jget error.code)" "$status $code"
	t_is "bad input: $name: OpenAI shape" "$(jeval '[typeof d.error.message,typeof d.error.type].join()')" "string,string"
}
bad "malformed JSON" '{"model":"fake-echo","messages":[' 400 invalid_json
bad "not an object" '[1,2]' 400 invalid_json
bad "no model" '{"messages":[{"role":"user","content":"x"}]}' 400 invalid_request
bad "model not a string" '{"model":7,"messages":[{"role":"user","content":"x"}]}' 400 invalid_request
bad "empty messages" '{"model":"fake-echo","messages":[]}' 400 invalid_request
bad "unknown role" '{"model":"fake-echo","messages":[{"role":"wizard","content":"x"}]}' 400 invalid_request
bad "temperature out of range" "$(msg fake-echo x '"temperature":3')" 400 invalid_request
bad "max_tokens not an integer" "$(msg fake-echo x '"max_tokens":"lots"')" 400 invalid_request
bad "stream not a boolean" "$(msg fake-echo x '"stream":"yes"')" 400 invalid_request
bad "unknown model" "$(msg no-such-model x)" 400 model_not_found
bad "a slug that is not the tenant's" "$(msg nobody/fake-echo x)" 400 model_not_found
gw $CHAT '{"model":"fake-echo","messages":[{"role":"user","content":"x"}],"temperature":3}'
t_like "bad input: the message names the field" "$(jget error.message)" '^temperature: '
printf '{"model":"fake-echo","messages":[{"role":"user","content":"\xff\xfe"}]}' >"$T_TMP/badutf8.json"
gw $CHAT "@$T_TMP/badutf8.json"
t_is "bad input: invalid UTF-8" "$T_STATUS $(jget error.code)" "400 invalid_json"
head -c 2000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"model":"fake-echo","messages":[{"role":"user","content":"/; s/$/"}]}/' >"$T_TMP/huge.json"
gw $CHAT "@$T_TMP/huge.json"
t_is "bad input: a body over max_body_size: 413" "$T_STATUS $(jget error.type)" "413 invalid_request_error"
for m in auto auto-prism model-prism robot; do
	gw $CHAT "$(msg $m x)"
	t_is "model $m with routing disabled: 400 auto_routing_disabled" "$T_STATUS $(jget error.code)" "400 auto_routing_disabled"
done
t_like "auto-routing disabled: a clear message" "$(jget error.message)" "not enabled for this tenant"
gw /api/gw/v1/embeddings '{"model":"auto","input":"x"}'
t_is "auto-routing on embeddings: 400 auto_routing_unavailable" "$T_STATUS $(jget error.code)" "400 auto_routing_unavailable"
t_http -X POST -H 'Content-Type: application/json' --data-binary "$(msg fake-echo x)" "$T_BASE$CHAT"
t_is "no key: 401 in the OpenAI shape" "$T_STATUS $(jget error.type)" "401 authentication_error"
t_http -X POST -H "Authorization: Bearer $SKEY" -H 'Content-Type: application/json' --data-binary "$(msg fake-echo x)" "$T_BASE$CHAT"
t_is "another tenant's key: 401" "$T_STATUS $(jget error.code)" "401 invalid_api_key"

# --- metrics ----------------------------------------------------------------------------------------------------------
t_http "$T_BASE/metrics"
t_like "metrics: requests by tenant, model and outcome" "$T_BODY" 'prism_gateway_requests_total\{tenant="gw",model="fake-echo",status="success"\} [0-9]+'
t_unlike "metrics: a model name a client made up is no label" "$T_BODY" 'model="no-such-model"'
t_like "metrics: it is counted as other" "$T_BODY" 'prism_gateway_requests_total\{tenant="gw",model="other",status="error"\} [1-9]'
t_like "metrics: tokens" "$T_BODY" 'prism_gateway_tokens_total\{tenant="gw",direction="output"\} [1-9]'
t_like "metrics: cost" "$T_BODY" 'prism_gateway_cost_microdollars_total\{tenant="gw"\} [1-9]'
t_like "metrics: upstream latency" "$T_BODY" 'prism_upstream_duration_seconds_count\{provider="prov-a"\} [1-9]'
t_like "metrics: upstream errors by class" "$T_BODY" 'prism_upstream_errors_total\{provider="flaky",class="server"\} 5'
if command -v promtool >/dev/null 2>&1; then
	printf '%s\n' "$T_BODY" | promtool check metrics >"$T_TMP/promtool.out" 2>&1
	t_is "metrics: promtool accepts them" "$?" 0
fi

# --- accounting ----------------------------------------------------------------------------------------------------
logs() { "$PRISMCTL" dump requestlogs --config "$T_CONF" --limit 10000 2>/dev/null; }
nlogs() { logs | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{let n=0;try{n=JSON.parse(s).length}catch(e){}process.stdout.write(String(n))})'; }
for _ in $(seq 1 100); do [ "$(nlogs)" -ge "$N_LOGGED" ] && break; sleep 0.2; done
sleep 0.5
logs >"$T_TMP/logs.json"
t_is "one RequestLog per request" "$(nlogs)" "$N_LOGGED"
ljs() { node -e 'const L=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
	const v=(new Function("L","return ("+process.argv[2]+")"))(L);process.stdout.write(typeof v==="string"?v:JSON.stringify(v))' "$T_TMP/logs.json" "$1"; }
t_is "a success: the fields" "$(ljs 'L.filter(l=>l.userName==="alice").map(l=>[l.status,l.requestedModel,l.routedModel,l.providerId==="'"$PA"'",l.inputTokens>0,l.outputTokens>0,l.actualCostUsd>0,l.streaming,/^[0-9a-f]{16}$/.test(l.clientIpHash),l.attempts.length,l.attempts[0].errorClass,l.attempts[0].status].join())[0]')" \
	"success,fake-echo,fake-echo,true,true,true,true,false,true,1,none,200"
t_is "a user name is stored as valid UTF-8" "$(ljs 'L.filter(l=>/rgen$/.test(l.userName||"")).map(l=>l.userName)[0]')" "J?rgen"
t_is "failover: two attempts in one log" "$(ljs 'L.filter(l=>l.status==="success"&&l.attempts.length===2&&l.attempts[0].errorClass==="server"&&l.routedModel==="shared-model").map(l=>l.attempts.map(a=>a.providerName+":"+a.errorClass+":"+a.status).join(" ")+" "+l.fallbackType)[0]')" \
	"Flaky:server:500 Prov B:none:200 provider_chain"
t_is "a provider skipped for its open breaker is in the attempts" "$(ljs 'L.filter(l=>l.requestedModel==="shared-model"&&l.attempts[0].errorClass==="circuit_open").map(l=>l.attempts.map(a=>a.providerName+":"+a.errorClass).join(" "))[0]')" \
	"Flaky:circuit_open Prov B:none"
t_is "an error: type and message" "$(ljs 'L.filter(l=>l.requestedModel==="fake-401"&&!l.streaming).map(l=>[l.status,l.errorType,/^\[502\] provider_error: /.test(l.errorMessage)].join())[0]')" \
	"error,upstream_auth_failed,true"
t_is "the client that went away" "$(ljs 'L.filter(l=>l.errorType==="client_gone").map(l=>[l.status,l.streaming,l.outputTokens>0].join())[0]')" "error,true,true"
t_is "a context fallback" "$(ljs 'L.filter(l=>l.requestedModel==="fake-context"&&l.status==="success").map(l=>[l.contextFallback,l.originalModel,l.routedModel,l.fallbackType,l.attempts.length].join())[0]')" \
	"true,fake-context,fake-echo,context_overflow,2"
t_is "bad input is logged as such" "$(ljs 'L.filter(l=>l.errorType==="invalid_json").length')" 3
t_is "no log without a tenant" "$(ljs 'L.filter(l=>!l.tenantId).length')" 0

t_done
