/* check_pipeline.c -- the pure parts of the gateway request path: prefix, alias, glob and policy matching,
 * the provider plan and its order, the larger-context search, the thinking filter across chunk boundaries,
 * the stream relay (usage, empty chunks, [DONE]), body validation, error mapping and session ids. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "gateway/pipeline.h"
#include "gateway/plan.h"
#include "gateway/relay.h"
#include "util/clock.h"
#include "util/config.h"

#define PA "65a1b2c3d4e5f60718293a01"
#define PB "65a1b2c3d4e5f60718293a02"
#define PC "65a1b2c3d4e5f60718293a03"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	ck_assert_msg(j != NULL, "bad test JSON: %s: %s", e.text, text);
	return j;
}

/* Three providers: A lists gpt-4o and a hidden model, B lists gpt-4o and big-model, C (not the tenant's)
 * lists gpt-4o. */
static json_t *
providers(void)
{
	return J("[{\"_id\":\"" PA "\",\"slug\":\"alpha\",\"name\":\"Alpha\",\"type\":\"openai\",\"discoveredModels\":["
		 "{\"id\":\"gpt-4o\",\"contextWindow\":8000,\"maxOutputTokens\":1000,\"tier\":\"medium\"},"
		 "{\"id\":\"hidden-one\",\"visible\":false},"
		 "{\"id\":\"mid-model\",\"contextWindow\":32000,\"tier\":\"high\"},"
		 "{\"id\":\"embed-x\",\"visible\":false}]},"
		 "{\"_id\":\"" PB "\",\"slug\":\"beta\",\"name\":\"Beta\",\"type\":\"vllm\",\"discoveredModels\":["
		 "{\"id\":\"gpt-4o\",\"contextWindow\":8000,\"tier\":\"medium\"},"
		 "{\"id\":\"big-model\",\"contextWindow\":200000,\"tier\":\"medium\"},"
		 "{\"id\":\"huge-model\",\"contextWindow\":1000000,\"tier\":\"ultra\"}]},"
		 "{\"_id\":\"" PC "\",\"slug\":\"gamma\",\"name\":\"Gamma\",\"type\":\"openai\",\"discoveredModels\":["
		 "{\"id\":\"gpt-4o\"}]}]");
}

static json_t *
tenant(const char *extra)
{
	char text[2048];
	snprintf(text, sizeof text, "{\"slug\":\"t1\",\"providerIds\":[\"" PB "\",\"" PA "\"]%s%s}", extra ? "," : "",
		 extra ? extra : "");
	return J(text);
}

/* --- prefix, alias, glob ------------------------------------------------------------------------------------ */

static const struct {
	const char *model, *slug, *bare;
} prefix_cases[] = {
	{ "alpha/gpt-4o", "alpha", "gpt-4o" },
	{ "gamma/gpt-4o", "gamma", "gpt-4o" },          /* any provider's slug, not only the tenant's */
	{ "meta-llama/Llama-3-8b", "", "meta-llama/Llama-3-8b" },
	{ "gpt-4o", "", "gpt-4o" },
	{ "alpha/", "", "alpha/" },
	{ "/gpt-4o", "", "/gpt-4o" },
	{ "alpha/openai/gpt-4o", "alpha", "openai/gpt-4o" },   /* split at the first '/' */
};

START_TEST(prefix_split)
{
	json_t *p = providers();
	for (size_t i = 0; i < sizeof prefix_cases / sizeof prefix_cases[0]; i++) {
		char slug[PLAN_MAX_SLUG + 1];
		const char *bare = plan_split_prefix(p, prefix_cases[i].model, slug);
		ck_assert_msg(strcmp(slug, prefix_cases[i].slug) == 0, "%s: slug '%s'", prefix_cases[i].model, slug);
		ck_assert_msg(strcmp(bare, prefix_cases[i].bare) == 0, "%s: bare '%s'", prefix_cases[i].model, bare);
	}
	json_decref(p);
}
END_TEST

START_TEST(alias_single_lookup)
{
	json_t *t = tenant("\"modelConfig\":{\"aliases\":{\"fast\":\"gpt-4o\",\"gpt-4o\":\"big-model\",\"empty\":\"\"}}");
	ck_assert_str_eq(plan_alias(t, "fast"), "gpt-4o");       /* not chained to big-model */
	ck_assert_str_eq(plan_alias(t, "gpt-4o"), "big-model");
	ck_assert_ptr_null(plan_alias(t, "other"));
	ck_assert_ptr_null(plan_alias(t, "empty"));
	json_decref(t);
	ck_assert(plan_is_auto_model("auto"));
	ck_assert(plan_is_auto_model("auto-prism"));
	ck_assert(plan_is_auto_model("model-prism"));
	ck_assert(!plan_is_auto_model("automatic"));
	ck_assert(!plan_is_auto_model("gpt-4o"));
}
END_TEST

static const struct {
	const char *pat, *s;
	bool match;
} glob_cases[] = {
	{ "*", "anything", true },      { "gpt-*", "gpt-4o", true },      { "gpt-*", "claude", false },
	{ "*-mini", "gpt-4o-mini", true }, { "*4o*", "gpt-4o-mini", true }, { "gpt-4o", "gpt-4o", true },
	{ "gpt-4o", "gpt-4o-mini", false }, { "a*b*c", "aXbYc", true },   { "a*b*c", "aXbY", false },
	{ "**", "", true },             { "a*", "", false },               { "*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false },
};

START_TEST(glob)
{
	for (size_t i = 0; i < sizeof glob_cases / sizeof glob_cases[0]; i++)
		ck_assert_msg(plan_glob(glob_cases[i].pat, glob_cases[i].s) == glob_cases[i].match, "%s ~ %s",
			      glob_cases[i].pat, glob_cases[i].s);
}
END_TEST

static const struct {
	const char *config, *model, *slug;
	bool allowed;
} policy_cases[] = {
	{ "{\"mode\":\"all\",\"list\":[\"x\"]}", "gpt-4o", "alpha", true },
	{ "{\"mode\":\"whitelist\",\"list\":[]}", "gpt-4o", "alpha", true },
	{ "{\"mode\":\"whitelist\",\"list\":[\"gpt-4o\"]}", "gpt-4o", "alpha", true },
	{ "{\"mode\":\"whitelist\",\"list\":[\"gpt-4o\"]}", "big-model", "beta", false },
	{ "{\"mode\":\"whitelist\",\"list\":[\"alpha/gpt-4o\"]}", "gpt-4o", "alpha", true },   /* as listed */
	{ "{\"mode\":\"whitelist\",\"list\":[\"alpha/gpt-4o\"]}", "gpt-4o", "beta", false },
	{ "{\"mode\":\"blacklist\",\"list\":[\"gpt-4o\"]}", "gpt-4o", "beta", false },
	{ "{\"mode\":\"blacklist\",\"list\":[\"beta/gpt-4o\"]}", "gpt-4o", "alpha", true },
	{ "{\"mode\":\"blacklist\",\"list\":[\"beta/gpt-4o\"]}", "gpt-4o", "beta", false },
};

START_TEST(policy)
{
	for (size_t i = 0; i < sizeof policy_cases / sizeof policy_cases[0]; i++) {
		char extra[512];
		snprintf(extra, sizeof extra, "\"modelConfig\":%s", policy_cases[i].config);
		json_t *t = tenant(extra);
		ck_assert_msg(plan_policy_allows(t, policy_cases[i].model, policy_cases[i].slug) == policy_cases[i].allowed,
			      "case %zu", i);
		json_decref(t);
	}
}
END_TEST

/* --- the plan ---------------------------------------------------------------------------------------------- */

static void
assert_plan(const struct plan *p, const char *expect)
{
	char got[256] = "";
	for (size_t i = 0; i < p->n; i++) {
		strcat(got, i ? "," : "");
		strcat(got, p->c[i].slug);
	}
	ck_assert_str_eq(got, expect);
}

START_TEST(plan_order)
{
	json_t *all = providers();
	json_t *t = tenant(NULL);
	json_t *tp = plan_tenant_providers(t, all);
	ck_assert_int_eq(json_array_size(tp), 2);
	struct plan p = { 0 };

	/* providerIds order (beta before alpha), only the tenant's providers */
	plan_build(&p, t, tp, "gpt-4o", NULL, false);
	assert_plan(&p, "beta,alpha");
	ck_assert_int_eq(p.c[1].context_window, 8000);
	ck_assert_int_eq(p.c[1].max_output, 1000);
	ck_assert_str_eq(p.c[1].id, PA);

	/* an explicit slug: that provider alone, and only for a model it lists (a prefix opens nothing) */
	plan_free(&p);
	plan_build(&p, t, tp, "gpt-4o", "alpha", false);
	assert_plan(&p, "alpha");
	plan_free(&p);
	plan_build(&p, t, tp, "not-listed", "alpha", false);
	assert_plan(&p, "");
	plan_free(&p);
	plan_build(&p, t, tp, "hidden-one", "alpha", false);
	assert_plan(&p, "");
	ck_assert_uint_eq(p.n, 0);
	plan_free(&p);
	plan_build(&p, t, tp, "gpt-4o", "gamma", false);   /* not the tenant's */
	assert_plan(&p, "");

	/* hidden models are not planned, except for embeddings */
	plan_free(&p);
	plan_build(&p, t, tp, "hidden-one", NULL, false);
	assert_plan(&p, "");
	plan_free(&p);
	plan_build(&p, t, tp, "embed-x", NULL, true);
	assert_plan(&p, "alpha");
	plan_free(&p);
	plan_build(&p, t, tp, "unknown", NULL, false);
	assert_plan(&p, "");
	json_decref(tp);
	json_decref(t);

	/* fallback chains: exact beats glob beats "*"; chain order first, then the others listing the model */
	const char *chains[][2] = {
		{ "\"fallbackChains\":[{\"modelPattern\":\"gpt-4o\",\"providers\":[\"" PA "\"]}]", "alpha,beta" },
		{ "\"fallbackChains\":[{\"modelPattern\":\"*\",\"providers\":[\"" PB "\"]},"
		  "{\"modelPattern\":\"gpt-*\",\"providers\":[\"" PA "\"]}]", "alpha,beta" },
		{ "\"fallbackChains\":[{\"modelPattern\":\"*\",\"providers\":[\"" PA "\",\"" PB "\"]}]", "alpha,beta" },
		{ "\"fallbackChains\":[{\"modelPattern\":\"claude*\",\"providers\":[\"" PA "\"]}]", "beta,alpha" },
		/* a chain naming a provider that is not the tenant's, or does not list the model */
		{ "\"fallbackChains\":[{\"modelPattern\":\"gpt-4o\",\"providers\":[\"" PC "\"]}]", "beta,alpha" },
		{ "\"fallbackChains\":[{\"modelPattern\":\"gpt-4o\",\"providers\":[]},"
		  "{\"modelPattern\":\"*\",\"providers\":[\"" PA "\"]}]", "alpha,beta" },
	};
	for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
		t = tenant(chains[i][0]);
		tp = plan_tenant_providers(t, all);
		plan_free(&p);
		plan_build(&p, t, tp, "gpt-4o", NULL, false);
		char got[64] = "";
		for (size_t k = 0; k < p.n; k++) {
			strcat(got, k ? "," : "");
			strcat(got, p.c[k].slug);
		}
		ck_assert_msg(strcmp(got, chains[i][1]) == 0, "chain case %zu: %s", i, got);
		json_decref(tp);
		json_decref(t);
	}
	plan_free(&p);
	json_decref(all);
}
END_TEST

START_TEST(plan_policy_drops)
{
	json_t *all = providers();
	json_t *t = tenant("\"modelConfig\":{\"mode\":\"blacklist\",\"list\":[\"beta/gpt-4o\"]}");
	json_t *tp = plan_tenant_providers(t, all);
	struct plan p = { 0 };
	plan_build(&p, t, tp, "gpt-4o", NULL, false);
	ck_assert_int_eq(plan_apply_policy(&p, t), 1);
	assert_plan(&p, "alpha");
	ck_assert_int_eq(p.dropped_policy, 1);
	json_decref(tp);
	json_decref(t);

	t = tenant("\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"big-model\"]}");
	tp = plan_tenant_providers(t, all);
	plan_free(&p);
	plan_build(&p, t, tp, "gpt-4o", NULL, false);
	ck_assert_int_eq(plan_apply_policy(&p, t), 2);
	ck_assert_int_eq(p.n, 0);
	json_decref(tp);
	json_decref(t);
	plan_free(&p);
	json_decref(all);
}
END_TEST

static bool
beta_open(void *arg, const char *id)
{
	(void)arg;
	return strcmp(id, PB) == 0;
}

START_TEST(larger_model)
{
	json_t *all = providers();
	json_t *t = tenant(NULL);
	json_t *tp = plan_tenant_providers(t, all);
	char out[PLAN_MAX_MODEL + 1];
	long ctx = 0;
	/* same tier (medium) first, smallest window that fits */
	ck_assert(plan_larger_model(t, tp, "gpt-4o", 10000, NULL, NULL, out, &ctx));
	ck_assert_str_eq(out, "big-model");
	ck_assert_int_eq(ctx, 200000);
	/* too big for the medium tier: one tier above (high) is mid-model but too small; then any tier */
	ck_assert(plan_larger_model(t, tp, "gpt-4o", 500000, NULL, NULL, out, &ctx));
	ck_assert_str_eq(out, "huge-model");
	ck_assert(!plan_larger_model(t, tp, "gpt-4o", 5000000, NULL, NULL, out, &ctx));
	/* the breaker of beta is open: only alpha's models */
	ck_assert(plan_larger_model(t, tp, "gpt-4o", 10000, beta_open, NULL, out, &ctx));
	ck_assert_str_eq(out, "mid-model");
	json_decref(tp);
	json_decref(t);
	/* the policy is respected */
	t = tenant("\"modelConfig\":{\"mode\":\"blacklist\",\"list\":[\"big-model\"]}");
	tp = plan_tenant_providers(t, all);
	ck_assert(plan_larger_model(t, tp, "gpt-4o", 10000, NULL, NULL, out, &ctx));
	ck_assert_str_eq(out, "mid-model");
	json_decref(tp);
	json_decref(t);
	json_decref(all);
}
END_TEST

START_TEST(target_from_document)
{
	struct buf err;
	buf_init(&err, 1024);
	struct config *cfg = config_load(NULL, NULL, &err);
	buf_free(&err);
	json_t *doc = J("{\"_id\":\"" PA "\",\"name\":\"Alpha\",\"type\":\"vllm\",\"config\":{\"baseUrl\":\"http://h:1/\","
			"\"auth\":{\"type\":\"bearer\",\"apiKey\":\"plain-key\"},\"options\":{\"apiPath\":\"/api/v1\","
			"\"httpProxy\":\"http://proxy:3128\",\"tlsVerify\":false,\"timeoutMs\":5000,\"connectTimeoutMs\":7}}}");
	struct plan_target pt;
	char e[128];
	ck_assert_int_eq(plan_target_open(cfg, doc, &pt, e, sizeof e), PRISM_OK);
	ck_assert_str_eq(pt.t.base_url, "http://h:1");
	ck_assert_str_eq(pt.t.api_path, "/api/v1");
	ck_assert_str_eq(pt.t.api_key, "plain-key");
	ck_assert_str_eq(pt.t.http_proxy, "http://proxy:3128");
	ck_assert(!pt.t.tls_verify);
	ck_assert_int_eq(pt.t.total_timeout_ms, 5000);
	ck_assert_int_eq(pt.t.connect_timeout_ms, 0);    /* out of range: the default */
	plan_target_close(&pt);
	ck_assert_ptr_null(pt.api_key);
	json_decref(doc);
	/* a key that no configured encryption key opens */
	doc = J("{\"_id\":\"" PA "\",\"name\":\"Alpha\",\"type\":\"openai\",\"config\":{\"auth\":{\"apiKey\":"
		"\"enc:00000000000000000000000000000000:00000000000000000000000000000000:abcd\"}}}");
	ck_assert_int_eq(plan_target_open(cfg, doc, &pt, e, sizeof e), PRISM_E_CONFIG);
	plan_target_close(&pt);
	json_decref(doc);
	config_release(cfg);
}
END_TEST

/* --- the thinking filter ----------------------------------------------------------------------------------- */

static char *
filter_chunks(const char *const *chunks, size_t n)
{
	struct think_filter f;
	struct buf out;
	think_filter_init(&f);
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < n; i++)
		think_filter_feed(&f, chunks[i], strlen(chunks[i]), &out);
	think_filter_finish(&f, &out);
	return buf_take(&out, NULL);
}

static const struct {
	const char *in, *out;
} think_cases[] = {
	{ "plain text", "plain text" },
	{ "<think>secret</think>The answer", "The answer" },
	{ "<think>\nreasoning\n</think>\n\nThe answer is 42.", "The answer is 42." },
	{ "<thinking>x</thinking>ok", "ok" },
	{ "Hello <think>secret</think> world", "Hello  world" },      /* never glued, never trimmed */
	{ "a<think>x</think>b<think>y</think>c", "abc" },
	{ "a < b and c<d", "a < b and c<d" },
	{ "x <thin", "x <thin" },                                     /* held, then released at the end */
	{ "<think>never closed", "" },
	{ "before</think>after", "before</think>after" },            /* a stray closing tag is text */
	{ "<think>a</thinking>b", "b" },                              /* open and close variants are independent */
	{ "<think><think>x</think>y", "y" },
	{ "", "" },
};

START_TEST(think_whole)
{
	for (size_t i = 0; i < sizeof think_cases / sizeof think_cases[0]; i++) {
		char *got = think_strip_text(think_cases[i].in);
		ck_assert_msg(strcmp(got, think_cases[i].out) == 0, "'%s' -> '%s'", think_cases[i].in, got);
		free(got);
	}
}
END_TEST

/* Every way of cutting the text into two or three chunks gives the same result as the whole text. */
START_TEST(think_any_boundary)
{
	for (size_t c = 0; c < sizeof think_cases / sizeof think_cases[0]; c++) {
		const char *s = think_cases[c].in;
		size_t n = strlen(s);
		for (size_t i = 0; i <= n; i++) {
			for (size_t j = i; j <= n; j++) {
				char a[128], b[128], d[128];
				snprintf(a, sizeof a, "%.*s", (int)i, s);
				snprintf(b, sizeof b, "%.*s", (int)(j - i), s + i);
				snprintf(d, sizeof d, "%s", s + j);
				const char *chunks[] = { a, b, d };
				char *got = filter_chunks(chunks, 3);
				ck_assert_msg(strcmp(got, think_cases[c].out) == 0, "'%s' cut at %zu,%zu -> '%s'", s, i, j, got);
				free(got);
			}
		}
	}
}
END_TEST

START_TEST(strip_completion)
{
	json_t *b = J("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"reasoning_content\":\"hmm\",\"reasoning\":\"r\","
		      "\"content\":\"<think>x</think>\\n\\nHi there\"}},{\"message\":{\"content\":[{\"type\":\"thinking\","
		      "\"thinking\":\"t\"},{\"type\":\"text\",\"text\":\"ok\"}]}}]}");
	relay_strip_completion(b);
	json_t *m0 = json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message");
	ck_assert_ptr_null(json_object_get(m0, "reasoning_content"));
	ck_assert_ptr_null(json_object_get(m0, "reasoning"));
	ck_assert_str_eq(json_string_value(json_object_get(m0, "content")), "Hi there");
	json_t *m1 = json_object_get(json_array_get(json_object_get(b, "choices"), 1), "message");
	ck_assert_int_eq(json_array_size(json_object_get(m1, "content")), 1);
	json_decref(b);
}
END_TEST

/* --- the relay, through a CGI-mode request writing to memory ----------------------------------------------- */

static struct config *rcfg;
static struct request *rreq;
static char *rout;
static size_t routlen;

static void
relay_setup(void)
{
	struct buf err;
	buf_init(&err, 1024);
	rcfg = config_load(NULL, NULL, &err);
	buf_free(&err);
	rreq = calloc(1, sizeof *rreq);
	static char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/v1/chat/completions", NULL };
	request_begin(rreq, NULL, env, rcfg);
	rout = NULL;
	routlen = 0;
	rreq->cgi_out = open_memstream(&rout, &routlen);
}

static void
relay_teardown(void)
{
	if (rreq->cgi_out)
		fclose(rreq->cgi_out);
	request_end(rreq);
	buf_free(&rreq->arena);
	free(rreq);
	free(rout);
	config_release(rcfg);
}

static const char *
relay_output(void)
{
	fflush(rreq->cgi_out);
	const char *b = strstr(rout ? rout : "", "\r\n\r\n");
	return b ? b + 4 : "";
}

static bool
feed(struct relay *r, const char *chunk)
{
	json_t *j = J(chunk);
	bool ok = relay_on_event(r, j);
	json_decref(j);
	return ok;
}

START_TEST(relay_thinking_stream)
{
	struct relay r;
	relay_init(&r, rreq, RELAY_CHAT, true, true);
	/* a usage-only first chunk, reasoning deltas, a tag split over chunks */
	ck_assert(feed(&r, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
			   "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}"));
	ck_assert(feed(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"deep\"}}]}"));
	ck_assert(!r.started || r.events_out == 1);
	ck_assert(feed(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"<thi\"}}]}"));
	ck_assert(feed(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"nk>hidden</th\"}}]}"));
	ck_assert(feed(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ink>\\n\\nThe answer\"}}]}"));
	ck_assert(feed(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" is 42. <\"}}]}"));
	ck_assert(feed(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
			   "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7}}"));
	ck_assert(r.usage_seen);
	ck_assert_int_eq(r.prompt_tokens, 11);
	ck_assert(relay_finish(&r, "m", 11, 7));
	const char *o = relay_output();
	ck_assert_msg(strstr(o, "hidden") == NULL && strstr(o, "deep") == NULL && strstr(o, "think") == NULL, "%s", o);
	ck_assert_msg(strstr(o, "\"content\":\"The answer\"") != NULL, "%s", o);
	ck_assert_msg(strstr(o, "\"content\":\" is 42. \"") != NULL, "%s", o);
	ck_assert_msg(strstr(o, "\"content\":\"<\"}") != NULL, "held '<' released with finish_reason: %s", o);
	ck_assert_msg(strstr(o, "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}") != NULL, "%s", o);
	ck_assert_msg(strstr(o, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":[],\"usage\"") != NULL,
		      "a well-formed usage chunk: %s", o);
	/* the usage is sent once, at the end, and [DONE] closes */
	const char *u = strstr(o, "\"usage\"");
	ck_assert_ptr_nonnull(u);
	ck_assert_ptr_null(strstr(u + 1, "\"usage\""));
	size_t n = strlen(o);
	ck_assert(n > 14 && strcmp(o + n - 14, "data: [DONE]\n\n") == 0);
	relay_free(&r);
}
END_TEST

START_TEST(relay_no_usage_unless_asked)
{
	struct relay r;
	relay_init(&r, rreq, RELAY_CHAT, false, false);
	ck_assert(feed(&r, "{\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"<think>kept</think>hi\","
			   "\"reasoning_content\":\"r\"}}]}"));
	ck_assert(feed(&r, "{\"id\":\"c2\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}"));
	ck_assert_int_eq(r.events_out, 1);        /* the usage-only chunk is not forwarded */
	ck_assert(relay_finish(&r, "m", 1, 2));
	const char *o = relay_output();
	ck_assert_msg(strstr(o, "<think>kept</think>hi") && strstr(o, "reasoning_content"), "stripThinking off: %s", o);
	ck_assert_msg(strstr(o, "usage") == NULL, "%s", o);
	ck_assert_msg(strstr(o, "data: [DONE]") != NULL, "%s", o);
	relay_free(&r);
}
END_TEST

START_TEST(relay_error_event)
{
	struct relay r;
	relay_init(&r, rreq, RELAY_CHAT, true, true);
	ck_assert(feed(&r, "{\"id\":\"c3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"part\"}}]}"));
	ck_assert(r.started);
	ck_assert(relay_error(&r, "provider_error", "upstream_error", "Provider 'A' failed"));
	const char *o = relay_output();
	ck_assert_msg(strstr(o, "data: {\"error\":{\"message\":\"Provider 'A' failed\",\"type\":\"provider_error\","
				"\"code\":\"upstream_error\"}}\n\ndata: [DONE]\n\n") != NULL, "%s", o);
	ck_assert_int_gt(relay_estimate_output(&r), 0);
	relay_free(&r);
}
END_TEST

START_TEST(relay_client_gone)
{
	struct relay r;
	relay_init(&r, rreq, RELAY_CHAT, true, false);
	rreq->client_gone = true;     /* as a failed write leaves it */
	ck_assert(!feed(&r, "{\"id\":\"c4\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}"));
	ck_assert(r.client_gone);
	ck_assert(!feed(&r, "{\"id\":\"c4\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}"));
	relay_free(&r);
}
END_TEST

/* --- validation -------------------------------------------------------------------------------------------- */

static const struct {
	enum gw_endpoint ep;
	const char *body;
	const char *param;            /* NULL: valid */
} valid_cases[] = {
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{}]}]}", NULL },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}],"
		      "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":5,\"temperature\":0,\"n\":8,"
		      "\"stop\":[\"a\",\"b\"]}", NULL },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}],\"max_tokens\":null}", NULL },
	{ GW_EP_CHAT, "[]", "body" },
	{ GW_EP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model" },
	{ GW_EP_CHAT, "{\"model\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model" },
	{ GW_EP_CHAT, "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model" },
	{ GW_EP_CHAT, "{\"model\":\"m\"}", "messages" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[]}", "messages" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":{}}", "messages" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages[0]" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"robot\",\"content\":\"b\"}]}",
	  "messages[1].role" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"a\"}]}", "messages[0].role" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null}]}", "messages[0].content" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":7}]}", "messages[0].content" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[\"x\"]}]}", "messages[0].content[0]" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream\":\"yes\"}", "stream" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":0}", "max_tokens" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":1.5}", "max_tokens" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_completion_tokens\":\"9\"}",
	  "max_completion_tokens" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":2.5}", "temperature" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":9}", "n" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":[1]}", "stop" },
	{ GW_EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream_options\":{\"include_usage\":1}}",
	  "stream_options.include_usage" },
	{ GW_EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"def f(\",\"suffix\":\"return x\",\"max_tokens\":16}", NULL },
	{ GW_EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", NULL },
	{ GW_EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[[1,2],[3]]}", NULL },
	{ GW_EP_COMPLETIONS, "{\"model\":\"m\"}", "prompt" },
	{ GW_EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":{}}", "prompt" },
	{ GW_EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":3}", "suffix" },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"text\"}", NULL },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"float\"}", NULL },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"\"}", "input" },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":[]}", "input" },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":[\"a\",\"\"]}", "input[1]" },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"a\",\"encoding_format\":\"hex\"}", "encoding_format" },
	{ GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"a\",\"stream\":true}", "stream" },
};

START_TEST(validation)
{
	for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
		json_t *b = J(valid_cases[i].body);
		char msg[GW_MAX_MESSAGE], param[64];
		enum prism_err e = pipeline_validate(valid_cases[i].ep, b, msg, sizeof msg, param, sizeof param);
		if (!valid_cases[i].param) {
			ck_assert_msg(e == PRISM_OK, "case %zu: %s", i, msg);
		} else {
			ck_assert_msg(e == PRISM_E_BAD_REQUEST, "case %zu accepted", i);
			ck_assert_msg(strcmp(param, valid_cases[i].param) == 0, "case %zu: param '%s' (%s)", i, param, msg);
			ck_assert_msg(strncmp(msg, param, strlen(param)) == 0, "case %zu: the message names the field: %s", i, msg);
		}
		json_decref(b);
	}
}
END_TEST

/* --- error mapping ----------------------------------------------------------------------------------------- */

static struct gw_attempt
att(const char *id, const char *name, enum provider_errclass c, int status, long retry)
{
	struct gw_attempt a;
	memset(&a, 0, sizeof a);
	snprintf(a.provider_id, sizeof a.provider_id, "%s", id);
	snprintf(a.provider_name, sizeof a.provider_name, "%s", name);
	snprintf(a.model, sizeof a.model, "m");
	a.errclass = c;
	a.status = status;
	a.retry_after_s = retry;
	snprintf(a.message, sizeof a.message, "upstream said no");
	return a;
}

START_TEST(failure_mapping)
{
	struct gw_failure f;
	struct gw_attempt a[3];
	memset(a, 0, sizeof a);

	pipeline_map_failure(a, 0, "m", "'A', 'B'", &f);
	ck_assert_int_eq(f.status, 503);
	ck_assert_str_eq(f.code, "providers_unavailable");
	ck_assert_msg(strstr(f.message, "'A', 'B'") != NULL, "%s", f.message);

	a[0] = att(PA, "A", PE_SERVER, 500, 0);
	a[1] = att(PB, "B", PE_CONNECT, 0, 0);
	pipeline_map_failure(a, 2, "m", "", &f);
	ck_assert_int_eq(f.status, 502);
	ck_assert_str_eq(f.code, "upstream_error");
	ck_assert_msg(strstr(f.message, "'A' (HTTP 500), 'B' (connection failed)") != NULL, "%s", f.message);

	a[0] = att(PA, "A", PE_RATE_LIMITED, 429, 7);
	pipeline_map_failure(a, 1, "m", "", &f);
	ck_assert_int_eq(f.status, 429);
	ck_assert_int_eq(f.retry_after_s, 7);
	ck_assert_str_eq(f.type, "rate_limit_error");

	a[0] = att(PA, "A", PE_RATE_LIMITED, 429, 30);
	a[1] = att(PB, "B", PE_SERVER, 503, 0);
	a[2] = att(PC, "C", PE_RATE_LIMITED, 429, 9);
	pipeline_map_failure(a, 3, "m", "", &f);
	ck_assert_int_eq(f.status, 429);
	ck_assert_int_eq(f.retry_after_s, 9);          /* the soonest */

	a[0] = att(PA, "A", PE_AUTH, 401, 0);
	pipeline_map_failure(a, 1, "m", "", &f);
	ck_assert_int_eq(f.status, 502);
	ck_assert_str_eq(f.code, "upstream_auth_failed");
	ck_assert_str_eq(f.message, "Provider 'A' rejected the gateway's credentials");

	a[0] = att(PA, "A", PE_TIMEOUT, 0, 0);
	a[1] = att(PB, "B", PE_TIMEOUT, 0, 0);
	pipeline_map_failure(a, 2, "m", "", &f);
	ck_assert_int_eq(f.status, 504);
	ck_assert_str_eq(f.code, "upstream_timeout");
	ck_assert_msg(strstr(f.message, "'A' (timed out), 'B' (timed out)") != NULL, "%s", f.message);

	a[0] = att(PA, "A", PE_SERVER, 500, 0);
	a[1] = att(PB, "B", PE_BAD_REQUEST, 400, 0);
	pipeline_map_failure(a, 2, "m", "", &f);
	ck_assert_int_eq(f.status, 400);
	ck_assert_str_eq(f.message, "upstream said no");

	a[0] = att(PA, "A", PE_CONTEXT, 400, 0);
	pipeline_map_failure(a, 1, "m", "", &f);
	ck_assert_int_eq(f.status, 400);
	ck_assert_str_eq(f.code, "context_length_exceeded");
	a[0] = att(PA, "A", PE_MAX_TOKENS, 400, 0);
	pipeline_map_failure(a, 1, "m", "", &f);
	ck_assert_str_eq(f.code, "max_tokens_exceeded");

	/* skipped providers (open breakers) are not calls */
	a[0] = att(PA, "A", PE_NONE, 0, 0);
	a[0].skipped = true;
	a[1] = att(PB, "B", PE_SERVER, 503, 0);
	pipeline_map_failure(a, 2, "m", "'A'", &f);
	ck_assert_int_eq(f.status, 502);
	ck_assert_msg(strstr(f.message, "(tried 'B' (HTTP 503))") != NULL, "%s", f.message);
	a[1].skipped = true;
	pipeline_map_failure(a, 2, "m", "'A', 'B'", &f);
	ck_assert_int_eq(f.status, 503);

	/* one provider tried twice is named once */
	a[0] = att(PA, "A", PE_SERVER, 500, 0);
	a[1] = att(PA, "A", PE_CUT, 200, 0);
	pipeline_map_failure(a, 2, "m", "", &f);
	ck_assert_msg(strstr(f.message, "(tried 'A' (stream cut))") != NULL, "%s", f.message);
}
END_TEST

/* --- session ids and the stage list ------------------------------------------------------------------------ */

START_TEST(session_ids)
{
	char a[GW_MAX_SESSION_ID + 1], b[GW_MAX_SESSION_ID + 1];
	json_t *conv = J("[{\"role\":\"system\",\"content\":\"You are an agent\"},{\"role\":\"user\",\"content\":\"1\"},"
			 "{\"role\":\"assistant\",\"content\":\"2\"},{\"role\":\"user\",\"content\":\"3\"}]");
	json_t *single = J("[{\"role\":\"system\",\"content\":\"You are an agent\"},{\"role\":\"user\",\"content\":\"1\"}]");
	pipeline_session_id("my-session-1", conv, "k1", "t", a);
	ck_assert_str_eq(a, "my-session-1");
	pipeline_session_id("bad session\x01", conv, "k1", "t", a);
	ck_assert_msg(strncmp(a, "sp-", 3) == 0 && strlen(a) == 3 + 16 + 2, "%s", a);
	pipeline_session_id(NULL, conv, "k1", "t", b);
	ck_assert_str_eq(a, b);                         /* stable for one key */
	pipeline_session_id(NULL, conv, "k2", "t", b);
	ck_assert_str_ne(a, b);                         /* never shared across keys */
	int64_t t0 = clock_realtime_ms();
	pipeline_session_id(NULL, single, "k1", "t", a);
	usleep(2000);
	pipeline_session_id(NULL, single, "k1", "t", b);
	int64_t t1 = clock_realtime_ms();
	ck_assert_int_eq(strlen(a), 36);                /* a UUID of version 7 */
	ck_assert_int_eq(a[14], '7');
	ck_assert_msg(strchr("89ab", a[19]) != NULL, "%s", a);
	ck_assert_str_ne(a, b);
	ck_assert_msg(strcmp(a, b) < 0, "%s, then %s", a, b);          /* in the order they were made */
	char hex[13];
	snprintf(hex, sizeof hex, "%.8s%.4s", a, a + 9);
	long long ms = strtoll(hex, NULL, 16);          /* its first 48 bits: the time in milliseconds */
	ck_assert_int_ge(ms, t0);
	ck_assert_int_le(ms, t1);
	json_decref(conv);
	json_decref(single);
}
END_TEST

START_TEST(stage_order)
{
	const char *expect[] = { "auth", "parse", "prefix", "alias", "force_route", "auto_routing", "system_prompt",
				 "plan", "policy", "context", "max_tokens", "limits", "transform", "dispatch", "enrich",
				 "accounting" };
	ck_assert_int_eq(gw_nstages, sizeof expect / sizeof expect[0]);
	for (size_t i = 0; i < gw_nstages; i++)
		ck_assert_str_eq(gw_stages[i].name, expect[i]);
	ck_assert(gw_stages[gw_nstages - 1].flags & GW_STAGE_ALWAYS);
	/* embeddings have no context pre-flight and no max_tokens */
	for (size_t i = 0; i < gw_nstages; i++)
		if (!strcmp(gw_stages[i].name, "context") || !strcmp(gw_stages[i].name, "max_tokens"))
			ck_assert(!(gw_stages[i].endpoints & (1u << GW_EP_EMBEDDINGS)));
}
END_TEST

static const struct {
	const char *in, *out;
} utf8_cases[] = {
	{ "plain", "plain" },
	{ "J\xc3\xbcrgen", "J\xc3\xbcrgen" },
	{ "J\xfcrgen", "J?rgen" },                 /* latin-1 */
	{ "cut \xe2\x82", "cut " },                /* an incomplete sequence at the end */
	{ "bad \xe2\x28\xa1 x", "bad ?(? x" },
	{ "\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!" },
	{ "\xc0\xaf", "??" },                       /* overlong */
	{ "\xed\xa0\x80", "???" },                   /* a surrogate */
	{ "\xe0\x80\xaf", "???" },                   /* overlong, three bytes */
};

START_TEST(utf8_fix)
{
	for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
		char b[64];
		snprintf(b, sizeof b, "%s", utf8_cases[i].in);
		relay_utf8_fix(b);
		ck_assert_msg(strcmp(b, utf8_cases[i].out) == 0, "case %zu: '%s'", i, b);
		json_t *j = json_string(b);
		ck_assert_ptr_nonnull(j);
		json_decref(j);
	}
}
END_TEST

static Suite *
pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("plan");
	tcase_add_test(tc, prefix_split);
	tcase_add_test(tc, alias_single_lookup);
	tcase_add_test(tc, glob);
	tcase_add_test(tc, policy);
	tcase_add_test(tc, plan_order);
	tcase_add_test(tc, plan_policy_drops);
	tcase_add_test(tc, larger_model);
	tcase_add_test(tc, target_from_document);
	suite_add_tcase(s, tc);
	tc = tcase_create("thinking");
	tcase_add_test(tc, think_whole);
	tcase_add_test(tc, think_any_boundary);
	tcase_add_test(tc, strip_completion);
	tcase_add_test(tc, utf8_fix);
	suite_add_tcase(s, tc);
	tc = tcase_create("relay");
	tcase_add_checked_fixture(tc, relay_setup, relay_teardown);
	tcase_add_test(tc, relay_thinking_stream);
	tcase_add_test(tc, relay_no_usage_unless_asked);
	tcase_add_test(tc, relay_error_event);
	tcase_add_test(tc, relay_client_gone);
	suite_add_tcase(s, tc);
	tc = tcase_create("requests");
	tcase_add_test(tc, validation);
	tcase_add_test(tc, failure_mapping);
	tcase_add_test(tc, session_ids);
	tcase_add_test(tc, stage_order);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(pipeline_suite)
