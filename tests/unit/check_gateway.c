/* check_gateway.c -- the gateway's foundations (gw.h): the token estimator, the price resolution and the
 * micro-dollar arithmetic, the key extraction, the model policy, and authentication and the tenant limits
 * against a real SQLite store and a shared-memory segment. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#define SHM_FIXTURE_PREFIX "prism-gwtest-"
#include "shm_fixture.h"

#include "core/response.h"
#include "data/registry.h"
#include "gateway/gw.h"
#include "shm/tenantcache.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/crypto.h"

/* --- tokens ------------------------------------------------------------------------------------------- */

static const struct {
	const char *text;
	long tokens;
	const char *why;
} text_cases[] = {
	{ "", 0, "empty" },
	{ "a", 1, "one character" },
	{ "hello", 2, "ceil(5 / 3.5)" },
	{ "1234567", 2, "7 / 3.5 exactly" },
	{ "12345678", 3, "8 / 3.5 rounds up" },
	{ "{}", 1, "all code: ceil(2 / 3)" },
	{ "a=b;c", 2, "40 % code: ceil(5 / 3)" },
	/* the 15 % boundary: 3 of 20 is not more than 0.15 (3.5 per token), 4 of 20 is (3.0) */
	{ "abcdefghijklmnopq...", 6, "exactly 15 % code: prose" },
	{ "abcdefghijklmnop....", 7, "20 % code: code" },
	{ "The quick brown fox jumps over the lazy dog", 13, "prose" },
	{ "for (i = 0; i < n; i++) { x[i] = y[i] * 2; }", 15, "code" },
	/* Unicode: code points, not bytes (and not UTF-16 units) */
	{ "h\xc3\xa9llo", 2, "5 code points in 6 bytes" },
	{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 1, "3 CJK code points in 9 bytes" },
	{ "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 2,
	  "4 emoji: 4 code points (the original counted 8 UTF-16 units: 3)" },
	{ "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 2, "Cyrillic: 6 code points" },
};

START_TEST(estimate_text)
{
	const char *t = text_cases[_i].text;
	ck_assert_msg(tokens_estimate_text(t, strlen(t)) == text_cases[_i].tokens, "%s: got %ld, want %ld",
		      text_cases[_i].why, tokens_estimate_text(t, strlen(t)), text_cases[_i].tokens);
}
END_TEST

START_TEST(estimate_text_len)
{
	/* the length is explicit: embedded NULs count, and a prefix can be measured */
	ck_assert_int_eq(tokens_estimate_text("hello world", 5), 2);
	ck_assert_int_eq(tokens_estimate_text("a\0b\0c\0d", 7), 2);
	ck_assert_int_eq(tokens_estimate_text(NULL, 4), 0);
}
END_TEST

static const struct {
	const char *messages;
	long tokens;
	const char *why;
} msg_cases[] = {
	{ "[]", 0, "no messages" },
	{ "{\"role\":\"user\"}", 0, "not an array" },
	{ "[{\"role\":\"user\",\"content\":\"hello\"}]", 11, "3 + 4 + user 2 + 2" },
	{ "[{\"role\":\"system\",\"content\":\"hello\"}]", 11, "system costs 2" },
	{ "[{\"role\":\"assistant\",\"content\":\"hello\"}]", 12, "assistant costs 3" },
	{ "[{\"role\":\"tool\",\"content\":\"hello\"}]", 11, "tool costs 2" },
	{ "[{\"content\":\"hello\"}]", 9, "no role" },
	{ "[{\"role\":\"user\",\"content\":\"hello\"},{\"role\":\"assistant\",\"content\":\"hi\"}]", 19, "two messages" },
	{ "[{\"role\":\"user\",\"content\":null}]", 9, "null content" },
	{ "[{\"role\":\"user\",\"content\":\"\"}]", 9, "empty content" },
	{ "[{\"role\":\"user\",\"content\":0}]", 9, "0 is falsy" },
	{ "[{\"role\":\"user\",\"content\":42}]", 10, "a number as JSON: \"42\"" },
	{ "[{\"role\":\"user\",\"content\":{\"x\":\"y\"}}]", 12, "an object as JSON: {\"x\":\"y\"} (9 chars, 33 % code)" },
	/* content arrays: pieces joined with one space */
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"},"
	  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]",
	  14, "\"hello [IMAGE]\": 13 chars, 2 code (15.4 %): ceil(13 / 3) = 5" },
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]", 12,
	  "an image alone: [IMAGE] (7 chars, 2 code): 3" },
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ab\"},{\"type\":\"input_audio\"}]}]", 10,
	  "unknown blocks are empty strings: \"ab \"" },
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":\"result text\"}]}]", 13,
	  "tool_result with a string: 11 chars" },
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
	  "{\"type\":\"image\"}]}]}]", 10, "tool_result with parts: \"ok \"" },
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":{\"a\":1}}]}]", 12,
	  "tool_result with an object: {\"a\":1} (7 chars, 3 code)" },
	{ "[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"name\":\"f\",\"input\":{\"a\":1}}]}]", 13,
	  "tool_use: f {\"a\":1} (9 chars, 3 code)" },
	{ "[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"name\":\"lookup\"}]}]", 12,
	  "tool_use without input: \"lookup \"" },
	{ "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}]}]", 11,
	  "Unicode inside a block: 6 code points" },
};

START_TEST(estimate_messages)
{
	json_error_t je;
	json_t *m = json_loads(msg_cases[_i].messages, 0, &je);
	ck_assert_msg(m != NULL, "%s", je.text);
	long got = tokens_estimate_messages(m);
	ck_assert_msg(got == msg_cases[_i].tokens, "%s: got %ld, want %ld", msg_cases[_i].why, got,
		      msg_cases[_i].tokens);
	json_decref(m);
}
END_TEST

START_TEST(estimate_prompt)
{
	static const struct {
		const char *prompt;
		long tokens;
	} c[] = {
		{ "\"hello\"", 2 },
		{ "[\"hello\",\"world\"]", 4 },
		{ "[1,2,3]", 3 },
		{ "[[1,2],[3]]", 3 },
		{ "5", 0 },
		{ "null", 0 },
		{ "\"\"", 0 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		json_t *p = json_loads(c[i].prompt, JSON_DECODE_ANY, NULL);
		ck_assert_msg(tokens_estimate_prompt(p) == c[i].tokens, "%s", c[i].prompt);
		json_decref(p);
	}
	ck_assert_int_eq(tokens_estimate_prompt(NULL), 0);
}
END_TEST

/* --- prices and cost ----------------------------------------------------------------------------------- */

START_TEST(price_order)
{
	json_t *tenant = json_loads("{\"pricing\":{\"gpt-4o\":{\"input\":1.5,\"output\":2},\"half\":{\"input\":3}}}", 0,
				    NULL);
	json_t *prov = json_loads("{\"discoveredModels\":[{\"id\":\"gpt-4o\",\"inputPer1M\":7,\"outputPer1M\":8},"
				  "{\"id\":\"own\",\"inputPer1M\":0.25,\"outputPer1M\":null},"
				  "{\"id\":\"gpt-4o-mini\",\"inputPer1M\":null,\"outputPer1M\":9}]}", 0, NULL);
	struct price p;
	/* 1. the tenant's override wins over everything */
	cost_price(tenant, prov, "gpt-4o", &p);
	ck_assert_str_eq(p.source, "tenant");
	ck_assert(p.input_per_1m == 1.5 && p.output_per_1m == 2);
	cost_price(tenant, NULL, "half", &p);
	ck_assert_str_eq(p.source, "tenant");
	ck_assert(p.input_per_1m == 3 && p.output_per_1m == 0);
	/* 2. the provider's price; a null output counts 0 */
	cost_price(NULL, prov, "gpt-4o", &p);
	ck_assert_str_eq(p.source, "provider");
	ck_assert(p.input_per_1m == 7 && p.output_per_1m == 8);
	cost_price(tenant, prov, "own", &p);
	ck_assert_str_eq(p.source, "provider");
	ck_assert(p.input_per_1m == 0.25 && p.output_per_1m == 0);
	/* 3. a provider entry with a null input price does not count: the default table */
	cost_price(tenant, prov, "gpt-4o-mini", &p);
	double in, out;
	ck_assert(registry_default_price("gpt-4o-mini", &in, &out));
	ck_assert_str_eq(p.source, "default");
	ck_assert(p.input_per_1m == in && p.output_per_1m == out);
	/* 5. unknown: 0 */
	cost_price(tenant, prov, "zz-no-such-model-qq", &p);
	ck_assert_str_eq(p.source, "none");
	ck_assert(p.input_per_1m == 0 && p.output_per_1m == 0);
	cost_price(NULL, NULL, NULL, &p);
	ck_assert_str_eq(p.source, "none");
	json_decref(tenant);
	json_decref(prov);
}
END_TEST

START_TEST(price_registry)
{
	/* 4. a model the default table does not know but the registry does */
	const struct registry_model *hit = NULL;
	double in, out;
	for (size_t i = 0; i < registry_nmodels && !hit; i++)
		if (registry_models[i].input_per_1m >= 0 && !registry_default_price(registry_models[i].id, &in, &out) &&
		    registry_find(registry_models[i].id) == &registry_models[i])
			hit = &registry_models[i];
	ck_assert_msg(hit != NULL, "no registry-only model to test with");
	struct price p;
	cost_price(NULL, NULL, hit->id, &p);
	ck_assert_str_eq(p.source, "registry");
	ck_assert(p.input_per_1m == hit->input_per_1m);
	ck_assert(p.output_per_1m == (hit->output_per_1m >= 0 ? hit->output_per_1m : 0));
}
END_TEST

static const struct {
	double in_price, out_price;
	long in, out;
	int64_t micro;
	const char *why;
} cost_cases[] = {
	{ 1, 0, 1, 0, 1, "1 token at $1/1M is one micro-dollar" },
	{ 1, 1, 1000000, 0, 1000000, "1M tokens at $1/1M is $1" },
	{ 2.5, 10, 1000, 500, 7500, "2.5 * 1000 + 10 * 500" },
	{ 0.15, 0, 10, 0, 2, "0.15 * 10 = 1.5: half up (a double would give 1.4999...)" },
	{ 0.15, 0, 3, 0, 0, "0.45 rounds down" },
	{ 0.5, 0, 1, 0, 1, "0.5 rounds up" },
	{ 0.075, 0.3, 1234, 567, 263, "92.55 + 170.1 = 262.65" },
	{ 3, 15, 0, 0, 0, "no tokens" },
	{ 3, 15, -5, -1, 0, "negative token counts count 0" },
	{ -3, 15, 100, 0, 0, "a negative price counts 0" },
	{ 1e9, 1e9, 9000000000000L, 9000000000000L, INT64_MAX, "saturates instead of overflowing" },
	{ 0.000001, 0, 500000, 0, 1, "the smallest price unit: 0.5 rounds up" },
};

START_TEST(micro_usd)
{
	struct price p = { cost_cases[_i].in_price, cost_cases[_i].out_price, "test" };
	int64_t got = cost_micro_usd(&p, cost_cases[_i].in, cost_cases[_i].out);
	ck_assert_msg(got == cost_cases[_i].micro, "%s: got %lld, want %lld", cost_cases[_i].why, (long long)got,
		      (long long)cost_cases[_i].micro);
}
END_TEST

START_TEST(usd)
{
	ck_assert(cost_usd(0) == 0);
	ck_assert(cost_usd(1234567) == 1.234567);
	ck_assert(cost_usd(1) == 0.000001);
	ck_assert_int_eq(cost_micro_usd(NULL, 10, 10), 0);
	/* what the JSON answer shows: 6 decimals exactly */
	json_t *v = json_real(cost_usd(263));
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	ck_assert_str_eq(s, "0.000263");
	free(s);
	json_decref(v);
}
END_TEST

/* --- requests ------------------------------------------------------------------------------------------ */

static struct config *cfg;
static struct request *req;
static char *env[16];
static size_t nenv;
static char *out;
static size_t outlen;

static void
req_setup(void)
{
	struct buf e;
	buf_init(&e, 1024);
	cfg = config_load(NULL, NULL, &e);
	buf_free(&e);
	req = calloc(1, sizeof *req);
	memset(env, 0, sizeof env);
	nenv = 0;
	env[nenv++] = "REQUEST_METHOD=GET";
	env[nenv++] = "REQUEST_URI=/v1/models";
	out = NULL;
	outlen = 0;
}

static void
req_teardown(void)
{
	if (req->cgi_out)
		fclose(req->cgi_out);
	request_end(req);
	buf_free(&req->arena);
	free(req);
	free(out);
	config_release(cfg);
}

/* Starts a request with these extra params ("HTTP_AUTHORIZATION=Bearer x", ...). */
static void
begin(const char *const *params)
{
	if (req->cgi_out) {
		fclose(req->cgi_out);
		request_end(req);
		free(out);
		out = NULL;
		struct buf arena = req->arena;
		memset(req, 0, sizeof *req);
		req->arena = arena;
	}
	size_t n = 2;
	for (; params && *params && n < 15; params++)
		env[n++] = (char *)*params;
	env[n] = NULL;
	request_begin(req, NULL, env, cfg);
	req->kind = RK_GATEWAY;
	req->cgi_out = open_memstream(&out, &outlen);
}

/* The answer so far: status and error code ("" when none). */
static int
answered(const char **code)
{
	fflush(req->cgi_out);
	int status = 0;
	if (out)
		sscanf(out, "Status: %d", &status);
	static char c[64];
	c[0] = '\0';
	const char *b = out ? strstr(out, "\r\n\r\n") : NULL;
	json_t *j = b ? json_loads(b + 4, 0, NULL) : NULL;
	const char *s = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	snprintf(c, sizeof c, "%s", s ? s : "");
	json_decref(j);
	if (code)
		*code = c;
	return status;
}

static const char *
header_of(const char *name)
{
	static char v[256];
	fflush(req->cgi_out);
	char pat[64];
	snprintf(pat, sizeof pat, "\r\n%s: ", name);
	const char *h = out ? strstr(out, pat) : NULL;
	if (!h)
		return NULL;
	h += strlen(pat);
	size_t n = strcspn(h, "\r");
	snprintf(v, sizeof v, "%.*s", (int)n, h);
	return v;
}

static const struct {
	const char *params[3];
	const char *key;       /* NULL: none */
} key_cases[] = {
	{ { "HTTP_AUTHORIZATION=Bearer abc", NULL }, "abc" },
	{ { "HTTP_AUTHORIZATION=bearer   abc  ", NULL }, "abc" },
	{ { "HTTP_AUTHORIZATION=BEARER\tk-1", NULL }, "k-1" },
	{ { "HTTP_AUTHORIZATION=Bearer ", NULL }, NULL },
	{ { "HTTP_AUTHORIZATION=Bearerabc", NULL }, NULL },
	{ { "HTTP_AUTHORIZATION=Basic dXNlcjpwdw==", NULL }, NULL },
	{ { "HTTP_AUTHORIZATION=Basic dXNlcjpwdw==", "HTTP_X_API_KEY=sk-ant", NULL }, "sk-ant" },
	{ { "HTTP_API_KEY= azure-key ", NULL }, "azure-key" },
	{ { "HTTP_AUTHORIZATION=Bearer first", "HTTP_X_API_KEY=second", NULL }, "first" },
	{ { "HTTP_X_API_KEY=   ", NULL }, NULL },
	{ { NULL }, NULL },
};

START_TEST(request_key)
{
	begin(key_cases[_i].params);
	const char *k = NULL;
	size_t n = 0;
	bool got = gw_request_key(req, &k, &n);
	if (!key_cases[_i].key) {
		ck_assert_msg(!got, "case %d: a key where none is", _i);
	} else {
		ck_assert_msg(got, "case %d: no key", _i);
		ck_assert_uint_eq(n, strlen(key_cases[_i].key));
		ck_assert_int_eq(strncmp(k, key_cases[_i].key, n), 0);
	}
}
END_TEST

START_TEST(error_answer)
{
	begin(NULL);
	gw_error_reset();
	enum prism_err e = gw_error(req, 429, "rate_limit_error", "tenant_rate_limit_exceeded", "Limit: %d req/min.", 3);
	ck_assert_int_eq(e, PRISM_E_RATE_LIMITED);
	const char *code;
	ck_assert_int_eq(answered(&code), 429);
	ck_assert_str_eq(code, "tenant_rate_limit_exceeded");
	ck_assert_str_eq(req->errdetail, "Limit: 3 req/min.");
	int st;
	const char *type, *c2;
	gw_error_last(&st, &type, &c2);
	ck_assert_int_eq(st, 429);
	ck_assert_str_eq(type, "rate_limit_error");
	ck_assert_str_eq(c2, "tenant_rate_limit_exceeded");
	ck_assert(strstr(out, "\"type\":\"rate_limit_error\"") && strstr(out, "\"message\":\"Limit: 3 req/min.\""));
	gw_error_reset();
	gw_error_last(&st, NULL, &c2);
	ck_assert_int_eq(st, 0);
	ck_assert_str_eq(c2, "");
	static const int map[][2] = { { 400, PRISM_E_BAD_REQUEST }, { 401, PRISM_E_UNAUTHORIZED },
				      { 403, PRISM_E_FORBIDDEN }, { 404, PRISM_E_NOT_FOUND },
				      { 502, PRISM_E_UPSTREAM }, { 503, PRISM_E_UNAVAILABLE },
				      { 504, PRISM_E_TIMEOUT }, { 418, PRISM_E_BAD_REQUEST } };
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		begin(NULL);
		ck_assert_int_eq(gw_error(req, map[i][0], "t", "c", "x"), map[i][1]);
	}
}
END_TEST

START_TEST(model_policy)
{
	json_t *white = json_loads("{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"gpt-4o\",\"p1/claude\"]}}", 0, NULL);
	json_t *black = json_loads("{\"modelConfig\":{\"mode\":\"blacklist\",\"list\":[\"gpt-4o\",\"p1/claude\"]}}", 0, NULL);
	json_t *empty = json_loads("{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[]}}", 0, NULL);
	json_t *all = json_loads("{\"modelConfig\":{\"mode\":\"all\",\"list\":[\"gpt-4o\"]}}", 0, NULL);
	ck_assert(gw_model_allowed(white, "p1", "gpt-4o"));        /* bare id names it under any provider */
	ck_assert(gw_model_allowed(white, NULL, "gpt-4o"));
	ck_assert(gw_model_allowed(white, "p1", "claude"));        /* slug/id names it under that provider */
	ck_assert(!gw_model_allowed(white, "p2", "claude"));
	ck_assert(!gw_model_allowed(white, NULL, "claude"));
	ck_assert(!gw_model_allowed(white, "p1", "gpt-4o-mini"));  /* exact, not a prefix or substring */
	ck_assert(!gw_model_allowed(black, "p9", "gpt-4o"));
	ck_assert(!gw_model_allowed(black, "p1", "claude"));
	ck_assert(gw_model_allowed(black, "p2", "claude"));
	ck_assert(gw_model_allowed(black, "p1", "gpt-4o-mini"));
	ck_assert(gw_model_allowed(empty, "p1", "anything"));      /* an empty list allows all */
	ck_assert(gw_model_allowed(all, "p1", "gpt-4o"));
	ck_assert(gw_model_allowed(NULL, "p1", "gpt-4o"));
	json_decref(white);
	json_decref(black);
	json_decref(empty);
	json_decref(all);
}
END_TEST

/* --- authentication and limits against a store and a segment --------------------------------------------- */

static struct store *st;
static struct shm_segment *seg;
static char dbpath[64];
static char serr[512];
static char tid[25], tid_b[25], tid_off[25];

#define K_GOOD "omp-good-key-000000000000000000000000000000000000000000000000000000000"
#define K_OFF "omp-disabled-key-0000000000000000000000000000000000000000000000000000"
#define K_OLD "omp-expired-key-00000000000000000000000000000000000000000000000000000"
#define K_LEGACY "model-prism"
#define K_B "omp-tenant-b-key-0000000000000000000000000000000000000000000000000000"
#define K_INACTIVE "omp-inactive-tenant-key-000000000000000000000000000000000000000000000"
#define K_STALE "omp-stale-hash-key-00000000000000000000000000000000000000000000000000"

static json_t *
key_entry(const char *id, const char *key, bool enabled, const char *expires)
{
	char h[65];
	crypto_sha256_hex(key, strlen(key), h);
	return json_pack("{s:s, s:s, s:b, s:o, s:n}", "_id", id, "hash", h, "enabled", enabled, "expiresAt",
			 expires ? json_string(expires) : json_null(), "lastUsedAt");
}

static void
insert_tenant(json_t *doc, char id[25])
{
	ck_assert_msg(st->ops->insert(st, COLL_TENANTS, doc, id, serr, sizeof serr) == PRISM_OK, "%s", serr);
	json_decref(doc);
}

static void
store_fixture(void)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/check_gateway.XXXXXX");
	int fd = mkstemp(dbpath);
	close(fd);
	unlink(dbpath);
	ck_assert_msg(store_sqlite_open(dbpath, 5000, &st, serr, sizeof serr) == PRISM_OK, "%s", serr);
	int applied;
	ck_assert_int_eq(st->ops->migrate(st, &applied, serr, sizeof serr), PRISM_OK);
	store_set_current(st);
	seg = seg_new(0);
	shm_segment_set_current(seg);
	req_setup();

	char past[32], future[32], h[65];
	clock_iso8601(clock_realtime_ms() - 1000, past, sizeof past);
	clock_iso8601(clock_realtime_ms() + 3600 * 1000, future, sizeof future);
	json_t *keys = json_array(), *hashes = json_array();
	json_array_append_new(keys, key_entry("aaaaaaaaaaaaaaaaaaaaaaa1", K_GOOD, true, future));
	json_array_append_new(keys, key_entry("aaaaaaaaaaaaaaaaaaaaaaa2", K_OFF, false, NULL));
	json_array_append_new(keys, key_entry("aaaaaaaaaaaaaaaaaaaaaaa3", K_OLD, true, past));
	const char *all[] = { K_GOOD, K_OFF, K_OLD, K_LEGACY, K_STALE };
	for (size_t i = 0; i < 5; i++) {
		crypto_sha256_hex(all[i], strlen(all[i]), h);
		json_array_append_new(hashes, json_string(h));
	}
	crypto_sha256_hex(K_LEGACY, strlen(K_LEGACY), h);
	insert_tenant(json_pack("{s:s, s:s, s:b, s:o, s:o, s:s, s:b, s:{s:i, s:i}, s:{s:s, s:[]}}", "slug", "team-a",
				"name", "A", "active", 1, "apiKeys", keys, "apiKeyHashes", hashes, "apiKeyHash", h,
				"keyEnabled", 1, "rateLimit", "requestsPerMinute", 3, "tokensPerMinute", 100,
				"modelConfig", "mode", "whitelist", "list"),
		      tid);
	crypto_sha256_hex(K_B, strlen(K_B), h);
	insert_tenant(json_pack("{s:s, s:s, s:o, s:[s]}", "slug", "team-b", "name", "B", "apiKeys",
				json_pack("[o]", key_entry("bbbbbbbbbbbbbbbbbbbbbbb1", K_B, true, NULL)), "apiKeyHashes", h),
		      tid_b);
	crypto_sha256_hex(K_INACTIVE, strlen(K_INACTIVE), h);
	insert_tenant(json_pack("{s:s, s:s, s:b, s:o, s:[s]}", "slug", "team-off", "name", "Off", "active", 0,
				"apiKeys", json_pack("[o]", key_entry("ccccccccccccccccccccccc1", K_INACTIVE, true, NULL)),
				"apiKeyHashes", h),
		      tid_off);
}

static void
store_fixture_end(void)
{
	req_teardown();
	shm_segment_set_current(NULL);
	shm_segment_close(seg);
	teardown();
	store_set_current(NULL);
	store_close(st);
	char p[128];
	unlink(dbpath);
	snprintf(p, sizeof p, "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", dbpath);
	unlink(p);
}

static int
auth(const char *slug, const char *key, struct gw_tenant *t, const char **code)
{
	static char hdr[160];   /* the request borrows its params */
	snprintf(hdr, sizeof hdr, "HTTP_AUTHORIZATION=Bearer %s", key);
	const char *params[] = { hdr, NULL };
	begin(key ? params : NULL);
	enum prism_err e = gw_authenticate(req, slug, t);
	int status = e ? answered(code) : 200;
	if (!e)
		*code = "";
	return status;
}

static const struct {
	const char *slug, *key;
	int status;
	const char *code;
} auth_cases[] = {
	{ "team-a", K_GOOD, 200, "" },
	{ NULL, K_GOOD, 200, "" },                                 /* the default routes select the key's tenant */
	{ "team-a", NULL, 401, "missing_api_key" },
	{ "team-a", "omp-unknown", 401, "invalid_api_key" },
	{ "team-b", K_GOOD, 401, "invalid_api_key" },              /* another tenant's URL: like an unknown key */
	{ "team-a", K_B, 401, "invalid_api_key" },
	{ NULL, K_B, 200, "" },
	{ "team-a", K_OFF, 401, "key_disabled" },
	{ "team-a", K_OLD, 401, "key_expired" },
	{ "team-b", K_OFF, 401, "invalid_api_key" },               /* no oracle: the URL is checked first */
	{ "team-a", K_LEGACY, 200, "" },                           /* the original's single key */
	{ NULL, K_INACTIVE, 403, "tenant_disabled" },
	{ "team-a", K_STALE, 401, "invalid_api_key" },             /* in apiKeyHashes but in no key: refused */
};

START_TEST(authenticate)
{
	struct gw_tenant t;
	const char *code;
	/* twice: from the store, then from the shared-memory cache */
	for (int pass = 0; pass < 2; pass++) {
		int status = auth(auth_cases[_i].slug, auth_cases[_i].key, &t, &code);
		ck_assert_msg(status == auth_cases[_i].status && strcmp(code, auth_cases[_i].code) == 0,
			      "case %d pass %d: %d %s, want %d %s", _i, pass, status, code, auth_cases[_i].status,
			      auth_cases[_i].code);
	}
	if (auth_cases[_i].status == 200 && auth_cases[_i].key && strcmp(auth_cases[_i].key, K_GOOD) == 0) {
		ck_assert_str_eq(t.snap.tenant_id, tid);
		ck_assert_str_eq(t.snap.slug, "team-a");
		ck_assert_str_eq(t.snap.key_id, "aaaaaaaaaaaaaaaaaaaaaaa1");
		ck_assert_str_eq(req->tenant, "team-a");
		ck_assert_int_eq(t.snap.rpm_limit, 3);
		ck_assert_int_eq(t.snap.tpm_limit, 100);
		ck_assert_int_eq(t.snap.model_policy_mode, GW_POLICY_WHITELIST);
		ck_assert(t.snap.key_expires_at_ms > clock_realtime_ms());
		char h[65];
		crypto_sha256_hex(K_GOOD, strlen(K_GOOD), h);
		ck_assert_str_eq(t.key_hash, h);
		ck_assert_int_eq(gw_tenant_load(req, &t), PRISM_OK);
		ck_assert_str_eq(json_string_value(json_object_get(t.doc, "slug")), "team-a");
		gw_tenant_free(&t);
		ck_assert_ptr_null(t.doc);
	}
	if (auth_cases[_i].key && strcmp(auth_cases[_i].key, K_LEGACY) == 0 && auth_cases[_i].status == 200)
		ck_assert_str_eq(t.snap.key_id, tid);                 /* "legacy" is recorded as the tenant id */
}
END_TEST

START_TEST(cache_invalidation)
{
	struct gw_tenant t;
	const char *code;
	ck_assert_int_eq(auth("team-b", K_B, &t, &code), 200);
	/* disable the key in the store only: the cached snapshot still answers ... */
	json_t *doc = NULL;
	ck_assert_int_eq(st->ops->get(st, COLL_TENANTS, tid_b, &doc, serr, sizeof serr), PRISM_OK);
	json_object_set_new(json_array_get(json_object_get(doc, "apiKeys"), 0), "enabled", json_false());
	ck_assert_int_eq(st->ops->update(st, COLL_TENANTS, tid_b, doc, -1, NULL, serr, sizeof serr), PRISM_OK);
	json_decref(doc);
	ck_assert_int_eq(auth("team-b", K_B, &t, &code), 200);
	/* ... until an admin change invalidates the cache, as admin_changed does */
	tenantcache_invalidate_all(seg);
	ck_assert_int_eq(auth("team-b", K_B, &t, &code), 401);
	ck_assert_str_eq(code, "key_disabled");
}
END_TEST

START_TEST(last_used)
{
	struct gw_tenant t;
	const char *code;
	ck_assert_int_eq(auth("team-a", K_GOOD, &t, &code), 200);
	json_t *doc = NULL;
	ck_assert_int_eq(st->ops->get(st, COLL_TENANTS, tid, &doc, serr, sizeof serr), PRISM_OK);
	const char *lu = json_string_value(json_object_get(json_array_get(json_object_get(doc, "apiKeys"), 0), "lastUsedAt"));
	ck_assert_ptr_nonnull(lu);
	int64_t ms;
	ck_assert_int_eq(clock_parse_iso8601(lu, &ms), 0);
	ck_assert(ms > clock_realtime_ms() - 10000);
	/* the other fields are untouched */
	ck_assert_int_eq(json_array_size(json_object_get(doc, "apiKeys")), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "modelConfig"), "mode")), "whitelist");
	long v = (long)json_integer_value(json_object_get(doc, "__v"));
	json_decref(doc);
	/* at most once a minute: the next use writes nothing */
	ck_assert_int_eq(auth("team-a", K_GOOD, &t, &code), 200);
	ck_assert_int_eq(st->ops->get(st, COLL_TENANTS, tid, &doc, serr, sizeof serr), PRISM_OK);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "__v")), v);
	json_decref(doc);
}
END_TEST

START_TEST(limits)
{
	struct gw_tenant t;
	const char *code;
	ck_assert_int_eq(auth("team-a", K_GOOD, &t, &code), 200);
	for (int i = 0; i < 3; i++) {
		begin(NULL);
		ck_assert_int_eq(gw_limits_check(req, &t, 10), PRISM_OK);
	}
	begin(NULL);
	ck_assert_int_eq(gw_limits_check(req, &t, 10), PRISM_E_RATE_LIMITED);
	ck_assert_int_eq(answered(&code), 429);
	ck_assert_str_eq(code, "tenant_rate_limit_exceeded");
	ck_assert_ptr_nonnull(header_of("Retry-After"));
	ck_assert_str_eq(header_of("RateLimit-Policy"), "3;w=60");
	ck_assert(strncmp(header_of("RateLimit"), "limit=3, remaining=0, reset=", 28) == 0);
	ck_assert(strstr(out, "Rate limit exceeded for tenant 'team-a'. Limit: 3 req/min."));
}
END_TEST

START_TEST(token_limits)
{
	struct gw_tenant t;
	const char *code;
	ck_assert_int_eq(auth("team-a", K_GOOD, &t, &code), 200);
	t.snap.rpm_limit = 0;                 /* tokens only */
	begin(NULL);
	ck_assert_int_eq(gw_limits_check(req, &t, 60), PRISM_OK);
	/* the call used 90: 30 more are charged, 10 remain */
	gw_limits_settle(&t, 60, 90);
	begin(NULL);
	ck_assert_int_eq(gw_limits_check(req, &t, 11), PRISM_E_RATE_LIMITED);
	ck_assert_int_eq(answered(&code), 429);
	ck_assert_str_eq(code, "tenant_token_limit_exceeded");
	ck_assert(strstr(out, "Limit: 100 tokens/min."));
	begin(NULL);
	ck_assert_int_eq(gw_limits_check(req, &t, 10), PRISM_OK);
	/* a request larger than the whole limit can never pass: 400, not a 429 that SDKs would retry */
	begin(NULL);
	ck_assert_int_eq(gw_limits_check(req, &t, 500), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(answered(NULL), 400);
	ck_assert(strstr(out, "(100 tokens/min)"));
	ck_assert(!strstr(out, "Retry-After"));
	/* an estimate of 0 is not checked against the token limit */
	begin(NULL);
	ck_assert_int_eq(gw_limits_check(req, &t, 0), PRISM_OK);
}
END_TEST

static Suite *
gateway_suite(void)
{
	Suite *s = suite_create("gateway");
	TCase *tc = tcase_create("tokens");
	tcase_add_loop_test(tc, estimate_text, 0, sizeof text_cases / sizeof text_cases[0]);
	tcase_add_test(tc, estimate_text_len);
	tcase_add_loop_test(tc, estimate_messages, 0, sizeof msg_cases / sizeof msg_cases[0]);
	tcase_add_test(tc, estimate_prompt);
	suite_add_tcase(s, tc);

	tc = tcase_create("cost");
	tcase_add_test(tc, price_order);
	tcase_add_test(tc, price_registry);
	tcase_add_loop_test(tc, micro_usd, 0, sizeof cost_cases / sizeof cost_cases[0]);
	tcase_add_test(tc, usd);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_checked_fixture(tc, req_setup, req_teardown);
	tcase_add_loop_test(tc, request_key, 0, sizeof key_cases / sizeof key_cases[0]);
	tcase_add_test(tc, error_answer);
	tcase_add_test(tc, model_policy);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_unchecked_fixture(tc, runner_setup, runner_teardown);
	tcase_add_checked_fixture(tc, store_fixture, store_fixture_end);
	tcase_add_loop_test(tc, authenticate, 0, sizeof auth_cases / sizeof auth_cases[0]);
	tcase_add_test(tc, cache_invalidation);
	tcase_add_test(tc, last_used);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, token_limits);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(gateway_suite)
