#!/bin/bash
# The gateway through the official `openai` npm client (tests/node/node_modules, PRISM_NODE_MODULES): chat
# completions plain and streamed with `for await`, the usage chunk, legacy and FIM completions, embeddings,
# the model list, on /api/<tenant>/v1 and on /v1; errors surface as the client's APIError classes with the
# gateway's status and code; automatic routing with its decision in the answer and in the stream.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node
[ -d "${PRISM_NODE_MODULES:-}/openai" ] || t_skip_all "the openai npm package is not installed (tools/install-deps --test)"

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" "ratelimit_gateway = 100000" "offline = true" ||
	{ t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN

KA=sk-a-$RANDOM$RANDOM
node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/A.port" --key "$KA" --record "$T_TMP/A.jsonl" >"$T_TMP/A.log" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/A.port" || { t_fail "fake upstream started"; t_done; exit; }
UP=http://127.0.0.1:$(cat "$T_TMP/A.port")
api POST /api/prism/admin/providers "{\"name\":\"Fake\",\"slug\":\"fake\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"$KA\"}},\"discoveredModels\":[{\"id\":\"fake-echo\",\"contextWindow\":100000},{\"id\":\"fake-stream\"},{\"id\":\"fake-think\"},{\"id\":\"fake-cut\"},{\"id\":\"fake-fim\"},{\"id\":\"fake-embed\"},{\"id\":\"fake-429\"},{\"id\":\"fake-401\"},{\"id\":\"fake-400\"}]}"
P=$(jget _id)
api POST /api/prism/admin/tenants "{\"slug\":\"sdk\",\"name\":\"SDK\",\"providerIds\":[\"$P\"]}"
KEY=$(jget apiKey)
api POST /api/prism/admin/providers "{\"name\":\"Tiered\",\"slug\":\"tiered\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"$KA\"}},\"discoveredModels\":[{\"id\":\"routed-medium\",\"tier\":\"medium\"},{\"id\":\"routed-micro\",\"tier\":\"micro\"}]}"
PT=$(jget _id)
api POST /api/prism/admin/tenants "{\"slug\":\"sdkauto\",\"name\":\"SDK routed\",\"providerIds\":[\"$PT\"],\"routing\":{\"enabled\":true}}"
AKEY=$(jget apiKey)
[ -n "$P" ] && [ -n "$KEY" ] && [ "$KEY" != "<undefined>" ] || { t_fail "provider and tenant created"; t_done; exit; }

# The client program: one line "name<TAB>value" per observation.
cat >"$T_TMP/client.js" <<'EOF'
'use strict';
const m = require(process.env.PRISM_NODE_MODULES + '/openai');
const OpenAI = m.OpenAI;
const say = (k, v) => process.stdout.write(`${k}\t${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
const client = (base, key) => new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 20000 });

async function err(name, fn) {
	try {
		await fn();
		say(name, 'no error');
	} catch (e) {
		say(name, [e instanceof m.APIError, e.constructor.name, e.status, e.code, e.type].join(','));
		return e;
	}
}

(async () => {
	const [base, root, key, abase, akey] = process.argv.slice(2);
	const c = client(base, key);

	// automatic routing: the decision in the typed answer and in the stream
	const ac = client(abase, akey);
	const ra = await ac.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hello router' }] });
	say('auto', [ra.choices[0].message.content, ra.model, ra.auto_routing.selected_model, ra.auto_routing.cost_tier].join());
	let routed = null, atext = '';
	for await (const chunk of await ac.chat.completions.create({ model: 'model-prism', stream: true, messages: [{ role: 'user', content: 'hello stream' }] })) {
		if (chunk.auto_routing) routed = chunk.auto_routing;
		for (const ch of chunk.choices) if (ch.delta && ch.delta.content) atext += ch.delta.content;
	}
	say('auto.stream', [atext.trim(), routed && routed.selected_model].join());

	const r = await c.chat.completions.create({ model: 'fake-echo', messages: [{ role: 'user', content: 'hello sdk' }] });
	say('chat', r.choices[0].message.content);
	say('chat.cost_info', [r.cost_info.model, r.cost_info.tokens_used > 0, typeof r.cost_info.cost_usd].join());
	say('chat.usage', r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens);

	const withResponse = await c.chat.completions.create({ model: 'fake-echo', messages: [{ role: 'user', content: 'x' }] }).withResponse();
	say('chat.session', withResponse.response.headers.get('x-session-id') === withResponse.data.session_id);

	let text = '', chunks = 0, usage = null;
	const stream = await c.chat.completions.create({
		model: 'fake-stream', stream: true, stream_options: { include_usage: true },
		messages: [{ role: 'user', content: 'stream please' }],
	});
	for await (const chunk of stream) {
		chunks++;
		if (chunk.usage) usage = chunk.usage;
		for (const ch of chunk.choices) if (ch.delta && ch.delta.content) text += ch.delta.content;
	}
	say('stream.text', text);
	say('stream.usage', usage && [Number.isInteger(usage.prompt_tokens), usage.completion_tokens, usage.total_tokens === usage.prompt_tokens + usage.completion_tokens].join());
	say('stream.chunks', chunks >= 7);

	text = '';
	for await (const chunk of await c.chat.completions.create({ model: 'fake-think', stream: true, messages: [{ role: 'user', content: 'q' }] }))
		for (const ch of chunk.choices) if (ch.delta && ch.delta.content) text += ch.delta.content;
	say('think.text', text);

	// the stream helper collects the whole answer too
	const runner = c.chat.completions.stream({ model: 'fake-stream', messages: [{ role: 'user', content: 'x' }] });
	const final = await runner.finalChatCompletion();
	say('stream.helper', final.choices[0].message.content);

	const comp = await c.completions.create({ model: 'fake-fim', prompt: 'def f(', suffix: 'return 1', max_tokens: 8 });
	say('fim', comp.choices[0].text);

	const emb = await c.embeddings.create({ model: 'fake-embed', input: ['one', 'two', 'three'] });
	say('embeddings', emb.data.length);
	const emb1 = await c.embeddings.create({ model: 'fake-embed', input: 'single', encoding_format: 'float' });
	say('embeddings.float', Array.isArray(emb1.data[0].embedding) && emb1.data[0].embedding.length);

	const models = [];
	for await (const mdl of c.models.list()) models.push(mdl.id);
	say('models', models.includes('fake/fake-echo'));

	const rootClient = client(root, key);
	const r2 = await rootClient.chat.completions.create({ model: 'fake/fake-echo', messages: [{ role: 'user', content: 'via /v1' }] });
	say('root.chat', r2.choices[0].message.content);

	await err('err.unknown', () => c.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
	await err('err.auto', () => c.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'x' }] }));
	await err('err.validation', () => c.chat.completions.create({ model: 'fake-echo', messages: [] }));
	const e429 = await err('err.429', () => c.chat.completions.create({ model: 'fake-429', messages: [{ role: 'user', content: 'x' }] }));
	say('err.429.retry', e429 && e429.headers && e429.headers.get('retry-after'));
	await err('err.401', () => c.chat.completions.create({ model: 'fake-401', messages: [{ role: 'user', content: 'x' }] }));
	await err('err.400', () => c.chat.completions.create({ model: 'fake-400', messages: [{ role: 'user', content: 'x' }] }));
	await err('err.key', () => client(base, 'omp-wrong').chat.completions.create({ model: 'fake-echo', messages: [{ role: 'user', content: 'x' }] }));
	await err('err.embeddings', () => c.embeddings.create({ model: 'nope', input: 'x' }));

	// a stream that breaks after output: the error event surfaces as an APIError inside the loop
	text = '';
	try {
		for await (const chunk of await c.chat.completions.create({ model: 'fake-cut', stream: true, messages: [{ role: 'user', content: 'x' }] }))
			for (const ch of chunk.choices) if (ch.delta && ch.delta.content) text += ch.delta.content;
		say('err.midstream', 'no error');
	} catch (e) {
		say('err.midstream', [e instanceof m.APIError, /failed during the stream/.test(e.message), text].join(','));
	}
})().catch((e) => { say('fatal', String(e && e.stack || e)); process.exit(1); });
EOF

PRISM_NODE_MODULES=$PRISM_NODE_MODULES node "$T_TMP/client.js" "$T_BASE/api/sdk/v1" "$T_BASE/v1" "$KEY" "$T_BASE/api/sdkauto/v1" "$AKEY" >"$T_TMP/out.tsv" 2>"$T_TMP/client.err"
t_log "$T_TMP/client.err"
got() { awk -F'\t' -v k="$1" '$1==k{print $2}' "$T_TMP/out.tsv" | tail -n1; }
t_is "client finished" "$(got fatal)" ""
t_is "chat.completions.create" "$(got chat)" "hello sdk"
t_is "cost_info kept in the typed answer" "$(got chat.cost_info)" "fake-echo,true,number"
t_is "usage adds up" "$(got chat.usage)" true
t_is "x-session-id header and session_id agree" "$(got chat.session)" true
t_is "stream with for await" "$(got stream.text)" "chunk 0 chunk 1 chunk 2 chunk 3 chunk 4 "
t_is "stream: the usage chunk" "$(got stream.usage)" "true,5,true"
t_is "stream: event by event" "$(got stream.chunks)" true
t_is "stream: thinking removed" "$(got think.text)" "The answer is 42."
t_is "stream helper: finalChatCompletion" "$(got stream.helper)" "chunk 0 chunk 1 chunk 2 chunk 3 chunk 4 "
t_is "completions.create with a suffix (FIM)" "$(got fim)" "[prompt=def f(][suffix=return 1]"
t_is "embeddings.create" "$(got embeddings)" 3
# the client asks for base64 by default (the fake answers floats either way): the field reaches the upstream
t_is "embeddings: encoding_format passed through" "$(node -e 'const r=require("fs").readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse).filter(x=>x.path==="/v1/embeddings").map(x=>JSON.parse(x.body).encoding_format);process.stdout.write(r.join())' "$T_TMP/A.jsonl")" "base64,float"
t_is "embeddings.create with floats" "$(got embeddings.float)" 8
t_is "models.list" "$(got models)" true
t_is "baseURL /v1 with a prefixed model" "$(got root.chat)" "via /v1"
t_is "unknown model: BadRequestError 400 model_not_found" "$(got err.unknown)" "true,BadRequestError,400,model_not_found,invalid_request_error"
t_is "auto with routing off: BadRequestError 400 auto_routing_disabled" "$(got err.auto)" "true,BadRequestError,400,auto_routing_disabled,invalid_request_error"
t_is "auto: routed, the decision in the typed answer" "$(got auto)" "hello router,routed-medium,routed-medium,medium"
t_is "auto: streamed with for await, the decision in the last chunk" "$(got auto.stream)" "hello stream,routed-medium"
t_is "bad input: BadRequestError 400" "$(got err.validation)" "true,BadRequestError,400,invalid_request,invalid_request_error"
t_is "upstream 429: RateLimitError" "$(got err.429)" "true,RateLimitError,429,upstream_rate_limited,rate_limit_error"
t_is "upstream 429: Retry-After" "$(got err.429.retry)" 7
t_is "provider refused our credentials: 502 upstream_auth_failed" "$(got err.401)" "true,InternalServerError,502,upstream_auth_failed,provider_error"
t_is "upstream 400: BadRequestError" "$(got err.400)" "true,BadRequestError,400,upstream_bad_request,invalid_request_error"
t_is "wrong key: AuthenticationError" "$(got err.key)" "true,AuthenticationError,401,invalid_api_key,authentication_error"
t_is "embeddings of an unknown model: 400" "$(got err.embeddings)" "true,BadRequestError,400,model_not_found,invalid_request_error"
t_is "a stream broken after output: APIError in the loop, output kept" "$(got err.midstream)" "true,true,part one part two "
[ "$T_FAILED" -gt 0 ] && t_diag "$(cat "$T_TMP/out.tsv")"

t_done
