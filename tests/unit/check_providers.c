/* check_providers.c -- the provider layer: the SSE parser (every chunk boundary), error classes and
 * predicates, sanitising, Retry-After, the adapter table, and the OpenAI-compatible adapter against the
 * real fake upstream (tests/fixtures/fake_upstream.js): every behaviour, timeouts, aborts, keep-alive,
 * proxy and credentials. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "check_main.h"
#include "fake_upstream.h"
#include "loopback.h"
#include "providers/openai_compat.h"
#include "providers/provider.h"
#include "providers/sse.h"
#include "util/buf.h"
#include "util/clock.h"

/* --- the SSE parser --------------------------------------------------------------------------------------- */

/* Every dispatched event as "<event>#<id>:<data>|". */
static bool
sse_collect(void *arg, const struct sse_event *ev)
{
	struct buf *b = arg;
	ck_assert_uint_eq(strlen(ev->data), ev->data_len);
	buf_printf(b, "%s#%s:%s|", ev->event, ev->id, ev->data);
	return true;
}

static const struct {
	const char *name, *in, *want;
	bool partial;
} sse_cases[] = {
	{ "lf", "data: a\n\ndata: b\n\n", "#:a|#:b|", false },
	{ "crlf", "data: a\r\n\r\ndata: b\r\n\r\n", "#:a|#:b|", false },
	{ "cr", "data: a\r\rdata: b\r\r", "#:a|#:b|", false },
	{ "mixed line ends", "data: a\r\n\ndata: b\n\r\n", "#:a|#:b|", false },
	{ "multi-line data", "data: one\ndata: two\ndata:\n\n", "#:one\ntwo\n|", false },
	{ "comments", ": ping\n\ndata: x\n: in the middle\n\n:\n\n", "#:x|", false },
	{ "event and id", "event: delta\nid: 7\ndata: {}\n\ndata: y\n\n", "delta#7:{}|#7:y|", false },
	{ "one space dropped", "data:nospace\n\ndata:  two\n\n", "#:nospace|#: two|", false },
	{ "field without colon", "data\n\n", "#:|", false },
	{ "colons in the value", "data: a:b: c\n\n", "#:a:b: c|", false },
	{ "unknown fields", "retry: 10\nfoo: bar\ndata: z\n\n", "#:z|", false },
	{ "event without data", "event: x\n\ndata: q\n\n", "#:q|", false },
	{ "bom", "\xEF\xBB\xBF" "data: b\n\n", "#:b|", false },
	{ "half a bom", "\xEF\xBB" "data: b\n\ndata: c\n\n", "#:c|", false },
	{ "no closing blank line", "data: a\n\ndata: last\n", "#:a|#:last|", false },
	{ "incomplete last line", "data: a\n\ndata: cut", "#:a|", true },
	{ "empty", "", "", false },
	{ "blank lines only", "\n\n\r\n\r", "", false },
	{ "openai stream",
	  "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
	  ": OPENROUTER PROCESSING\n\n"
	  "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
	  "data: [DONE]\n\n",
	  "#:{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}|#:{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}|"
	  "#:[DONE]|", false },
};

/* Feeds in pieces cut at the given positions (sorted, within the input). */
static void
sse_run(const char *in, const size_t *cuts, size_t ncuts, struct buf *got, bool *partial)
{
	struct sse_parser p;
	sse_init(&p, PROVIDER_MAX_EVENT);
	size_t len = strlen(in), at = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		ck_assert_int_eq(sse_feed(&p, in + at, end - at, sse_collect, got), SSE_OK);
		at = end;
	}
	ck_assert_int_eq(sse_finish(&p, sse_collect, got, partial), SSE_OK);
	sse_free(&p);
}

START_TEST(sse_table)
{
	const char *in = sse_cases[_i].in, *want = sse_cases[_i].want;
	size_t len = strlen(in);
	struct buf got;
	bool partial;
	buf_init(&got, 1 << 20);

	sse_run(in, NULL, 0, &got, &partial);
	ck_assert_msg(strcmp(buf_cstr(&got), want) == 0, "%s whole: got '%s'", sse_cases[_i].name, buf_cstr(&got));
	ck_assert_int_eq(partial, sse_cases[_i].partial);

	/* One cut at every position. */
	for (size_t i = 0; i <= len; i++) {
		buf_reset(&got);
		sse_run(in, &i, 1, &got, &partial);
		ck_assert_msg(strcmp(buf_cstr(&got), want) == 0, "%s cut at %zu: got '%s'", sse_cases[_i].name, i,
			      buf_cstr(&got));
		ck_assert_int_eq(partial, sse_cases[_i].partial);
	}
	/* Two cuts at every pair of positions. */
	for (size_t i = 0; i <= len && len <= 64; i++)
		for (size_t j = i; j <= len; j++) {
			size_t cuts[2] = { i, j };
			buf_reset(&got);
			sse_run(in, cuts, 2, &got, &partial);
			ck_assert_msg(strcmp(buf_cstr(&got), want) == 0, "%s cuts %zu,%zu: got '%s'", sse_cases[_i].name, i,
				      j, buf_cstr(&got));
		}
	/* Byte by byte. */
	size_t *cuts = calloc(len + 1, sizeof *cuts);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	buf_reset(&got);
	sse_run(in, cuts, len ? len - 1 : 0, &got, &partial);
	ck_assert_msg(strcmp(buf_cstr(&got), want) == 0, "%s bytewise: got '%s'", sse_cases[_i].name, buf_cstr(&got));
	free(cuts);
	buf_free(&got);
}
END_TEST

/* A stream of many events split at every byte position: events arrive complete and in order. */
START_TEST(sse_every_boundary)
{
	struct buf in, want, got;
	buf_init(&in, 1 << 20);
	buf_init(&want, 1 << 20);
	buf_init(&got, 1 << 20);
	for (int i = 0; i < 12; i++) {
		buf_printf(&in, "%sdata: {\"n\":%d}%s%s", i % 4 == 0 ? ": keep-alive\r\n" : "", i,
			   i % 3 == 0 ? "\r\n" : "\n", i % 2 ? "\r\n" : "\n");
		buf_printf(&want, "#:{\"n\":%d}|", i);
	}
	for (size_t cut = 0; cut <= in.len; cut++) {
		buf_reset(&got);
		bool partial;
		sse_run(buf_cstr(&in), &cut, 1, &got, &partial);
		ck_assert_str_eq(buf_cstr(&got), buf_cstr(&want));
		ck_assert(!partial);
	}
	buf_free(&in);
	buf_free(&want);
	buf_free(&got);
}
END_TEST

START_TEST(sse_oversize)
{
	struct buf got;
	buf_init(&got, 4096);
	struct sse_parser p;

	/* Exactly at the bound: fine; one byte more: too large, and it stays so. */
	sse_init(&p, 16);
	ck_assert_int_eq(sse_feed(&p, "data: 0123456789\n\n", 18, sse_collect, &got), SSE_OK);
	ck_assert_int_eq(sse_feed(&p, "data: 01234\ndata: 56789\n\n", 26, sse_collect, &got), SSE_OK);
	ck_assert_str_eq(buf_cstr(&got), "#:0123456789|#:01234\n56789|");
	ck_assert_int_eq(sse_feed(&p, "data: 01234567890\n\n", 19, sse_collect, &got), SSE_TOO_LARGE);
	ck_assert_int_eq(sse_feed(&p, "data: a\n\n", 9, sse_collect, &got), SSE_TOO_LARGE);
	ck_assert_int_eq(sse_finish(&p, sse_collect, &got, NULL), SSE_TOO_LARGE);
	sse_free(&p);

	/* Data accumulated over lines counts, also when fed byte by byte. */
	sse_init(&p, 16);
	const char *s = "data: 0123\ndata: 4567\ndata: 89ab\n\n";
	enum sse_status st = SSE_OK;
	for (size_t i = 0; s[i] && st == SSE_OK; i++)
		st = sse_feed(&p, s + i, 1, sse_collect, &got);
	ck_assert_int_eq(st, SSE_TOO_LARGE);
	sse_free(&p);

	/* A comment line is a line: bounded too (no unbounded buffering without an event). */
	sse_init(&p, 16);
	ck_assert_int_eq(sse_feed(&p, ": this comment is far too long\n", 31, sse_collect, &got), SSE_TOO_LARGE);
	sse_free(&p);

	/* The real bound: one event of PROVIDER_MAX_EVENT + 1 bytes fails, in 64 KiB chunks. */
	sse_init(&p, PROVIDER_MAX_EVENT);
	char *chunk = malloc(65536);
	memset(chunk, 'x', 65536);
	ck_assert_int_eq(sse_feed(&p, "data: ", 6, sse_collect, &got), SSE_OK);
	long fed = 6;
	st = SSE_OK;
	while (st == SSE_OK && fed <= PROVIDER_MAX_EVENT) {
		st = sse_feed(&p, chunk, 65536, sse_collect, &got);
		fed += 65536;
	}
	ck_assert_int_eq(st, SSE_TOO_LARGE);
	free(chunk);
	sse_free(&p);
	buf_free(&got);
}
END_TEST

static bool
sse_stop_first(void *arg, const struct sse_event *ev)
{
	(*(int *)arg)++;
	return false;
}

START_TEST(sse_stop)
{
	int n = 0;
	struct sse_parser p;
	sse_init(&p, 1024);
	ck_assert_int_eq(sse_feed(&p, "data: a\n\ndata: b\n\n", 18, sse_stop_first, &n), SSE_STOPPED);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(p.events, 1);
	sse_free(&p);
	sse_free(&p);   /* twice is harmless */
}
END_TEST

/* --- classes, predicates, sanitising ------------------------------------------------------------------------ */

START_TEST(errclass_names)
{
	static const struct {
		enum provider_errclass c;
		const char *name;
		bool unhealthy;
	} t[] = {
		{ PE_NONE, "none", false }, { PE_BAD_REQUEST, "bad_request", false }, { PE_AUTH, "auth", false },
		{ PE_RATE_LIMITED, "rate_limited", false }, { PE_CONTEXT, "context", false },
		{ PE_MAX_TOKENS, "max_tokens", false }, { PE_SERVER, "server", true }, { PE_TIMEOUT, "timeout", true },
		{ PE_CONNECT, "connect", true }, { PE_CUT, "cut", true }, { PE_PROTOCOL, "protocol", false },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ck_assert_str_eq(provider_errclass_name(t[i].c), t[i].name);
		ck_assert_int_eq(provider_errclass_unhealthy(t[i].c), t[i].unhealthy);
	}
	ck_assert_str_eq(provider_errclass_name((enum provider_errclass)99), "unknown");

	struct provider_result r = { 0 };
	provider_result_clear(&r);
	r.body = json_object();
	r.events = 3;
	provider_result_clear(&r);
	ck_assert_ptr_null(r.body);
	ck_assert_int_eq(r.events, 0);
	provider_result_clear(NULL);
}
END_TEST

static const struct {
	int status;
	const char *type, *code, *msg;
	enum provider_errclass want;
	long limit;
} classify_cases[] = {
	{ 400, "invalid_request_error", "invalid_value", "Invalid value for 'temperature'", PE_BAD_REQUEST, 0 },
	{ 404, NULL, NULL, "The model `x` does not exist", PE_BAD_REQUEST, 0 },
	{ 422, NULL, NULL, "Unprocessable", PE_BAD_REQUEST, 0 },
	{ 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided", PE_AUTH, 0 },
	{ 403, NULL, NULL, "Forbidden", PE_AUTH, 0 },
	{ 429, "requests", "rate_limit_exceeded", "Rate limit reached", PE_RATE_LIMITED, 0 },
	/* "Request too large" on a 429 is OpenAI's token rate limit, not a context overflow. */
	{ 429, "tokens", "rate_limit_exceeded", "Request too large for gpt-4o on tokens per min", PE_RATE_LIMITED, 0 },
	{ 408, NULL, NULL, "Request Timeout", PE_TIMEOUT, 0 },
	{ 500, "server_error", NULL, "The server had an error", PE_SERVER, 0 },
	{ 502, NULL, NULL, "Bad Gateway", PE_SERVER, 0 },
	{ 503, NULL, NULL, "Service Unavailable", PE_SERVER, 0 },
	{ 301, NULL, NULL, "Moved", PE_PROTOCOL, 0 },
	/* OpenAI */
	{ 400, "invalid_request_error", "context_length_exceeded",
	  "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", PE_CONTEXT, 0 },
	{ 400, "invalid_request_error", "context_length_exceeded", "(no text)", PE_CONTEXT, 0 },
	{ 400, "invalid_request_error", "invalid_value",
	  "max_tokens is too large: 100000. This model supports at most 4096 completion tokens, whereas you provided 100000.",
	  PE_MAX_TOKENS, 4096 },
	/* Anthropic */
	{ 400, "invalid_request_error", NULL, "prompt is too long: 215000 tokens > 200000 maximum", PE_CONTEXT, 0 },
	{ 400, "invalid_request_error", NULL,
	  "max_tokens: 100000 > 8192, which is the maximum allowed number of output tokens for claude-3-5-sonnet",
	  PE_MAX_TOKENS, 8192 },
	/* Bedrock (through a proxy) */
	{ 400, NULL, NULL, "The maximum tokens you requested exceeds the model limit of 4096", PE_MAX_TOKENS, 4096 },
	{ 400, NULL, NULL, "ValidationException: Input is too long for requested model.", PE_CONTEXT, 0 },
	{ 400, NULL, NULL, "ValidationException: messages.1.content: field required (input)", PE_BAD_REQUEST, 0 },
	/* vLLM */
	{ 400, "BadRequestError", "400",
	  "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, "
	  "1000 in the completion).", PE_CONTEXT, 0 },
	{ 400, "BadRequestError", "400",
	  "'max_tokens' or 'max_completion_tokens' is too large: 5000. This model's maximum context length is 4096 tokens",
	  PE_MAX_TOKENS, 0 },
	/* Ollama */
	{ 500, NULL, NULL, "the input length exceeds the context length", PE_CONTEXT, 0 },
	/* Azure / Gemini wording */
	{ 400, NULL, NULL, "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
	  PE_BAD_REQUEST, 0 },
	{ 400, NULL, NULL, "input tokens exceeded the maximum context window", PE_CONTEXT, 0 },
	{ 400, NULL, NULL, "max_tokens is invalid: the limit is 2048", PE_MAX_TOKENS, 2048 },
	{ 400, NULL, NULL, "Output token limit reached: maximum of 1024", PE_MAX_TOKENS, 1024 },
	/* Errors inside a 200 stream: by code, then type; unknown = server. */
	{ 0, "server_error", "internal_error", "boom", PE_SERVER, 0 },
	{ 0, "invalid_request_error", NULL, "bad", PE_BAD_REQUEST, 0 },
	{ 0, "BadRequestError", "400", "bad", PE_BAD_REQUEST, 0 },
	{ 0, NULL, "503", "overloaded", PE_SERVER, 0 },
	{ 0, NULL, "rate_limit_exceeded", "slow down", PE_RATE_LIMITED, 0 },
	{ 0, "authentication_error", NULL, "key", PE_AUTH, 0 },
	{ 200, "overloaded_error", NULL, "Overloaded", PE_SERVER, 0 },
	{ 0, NULL, NULL, "something odd", PE_SERVER, 0 },
	{ 0, "invalid_request_error", "context_length_exceeded", "too long", PE_CONTEXT, 0 },
	{ 0, NULL, NULL, NULL, PE_SERVER, 0 },
};

START_TEST(classify_table)
{
	long limit = -1;
	enum provider_errclass c = provider_classify(classify_cases[_i].status, classify_cases[_i].type,
						     classify_cases[_i].code, classify_cases[_i].msg, &limit);
	ck_assert_msg(c == classify_cases[_i].want, "case %d (%s): got %s, want %s", _i,
		      classify_cases[_i].msg ? classify_cases[_i].msg : "NULL", provider_errclass_name(c),
		      provider_errclass_name(classify_cases[_i].want));
	ck_assert_int_eq(limit, classify_cases[_i].limit);
	ck_assert_int_eq(provider_classify(classify_cases[_i].status, classify_cases[_i].type, classify_cases[_i].code,
					   classify_cases[_i].msg, NULL), c);
}
END_TEST

START_TEST(predicates)
{
	ck_assert(!provider_is_max_tokens_error(NULL));
	ck_assert(!provider_is_context_error(NULL));
	ck_assert_int_eq(provider_max_tokens_limit(NULL), 0);
	/* A max_tokens message is never also an overflow. */
	ck_assert(provider_is_max_tokens_error("MAX_TOKENS exceeds the context length"));
	ck_assert(!provider_is_context_error("MAX_TOKENS exceeds the context length"));
	ck_assert(provider_is_context_error("Context Window exceeded"));
	ck_assert(provider_is_context_error("mantle streaming error: BadRequestError: input too big"));
	ck_assert(!provider_is_context_error("Invalid value for 'temperature'"));
	ck_assert_int_eq(provider_max_tokens_limit("the limit of 0 tokens"), 0);
	ck_assert_int_eq(provider_max_tokens_limit("maximum is 99999999999999 tokens"), 0);
	ck_assert_int_eq(provider_max_tokens_limit("limitof 12"), 0);
	ck_assert_int_eq(provider_max_tokens_limit("Maximum  Is\t321 and limit of 5"), 321);
}
END_TEST

static const struct {
	const char *in, *secret, *want;
} excerpt_cases[] = {
	{ "plain", NULL, "plain" },
	{ "  lead\r\n\tand   trail \n", NULL, "lead and trail" },
	{ "bell\x07" "esc\x1b[31m", NULL, "bell esc [31m" },
	{ "key sk-secret-123 leaked twice sk-secret-123", "sk-secret-123", "key *** leaked twice ***" },
	{ "Authorization: Bearer sk-abcdef, more", NULL, "Authorization: Bearer ***, more" },
	{ "\"authorization\":\"bearer xyz\"", NULL, "\"authorization\":\"bearer ***\"" },
	{ "bad \xff\xfe utf8 \xc3\x28 and \xed\xa0\x80 surrogate", NULL, "bad ?? utf8 ?( and ??? surrogate" },
	{ "short key abc", "abc", "short key abc" },
	{ "ünïcödé ✓", NULL, "ünïcödé ✓" },
};

START_TEST(excerpt_table)
{
	char out[PROVIDER_MAX_MESSAGE];
	provider_excerpt(excerpt_cases[_i].in, strlen(excerpt_cases[_i].in), excerpt_cases[_i].secret, out, sizeof out);
	ck_assert_str_eq(out, excerpt_cases[_i].want);
	json_t *j = json_string(out);
	ck_assert_ptr_nonnull(j);   /* always valid UTF-8 */
	json_decref(j);
}
END_TEST

START_TEST(excerpt_bounds)
{
	char out[PROVIDER_MAX_MESSAGE];
	/* Long text: cut at PROVIDER_MAX_EXCERPT with "...", at a character boundary. */
	char in[2000];
	size_t n = 0;
	while (n + 2 < sizeof in) {
		in[n++] = '\xc3';
		in[n++] = '\xa9';   /* é */
	}
	provider_excerpt(in, n, NULL, out, sizeof out);
	ck_assert_uint_le(strlen(out), PROVIDER_MAX_EXCERPT);
	ck_assert_str_eq(out + strlen(out) - 3, "...");
	json_t *j = json_string(out);
	ck_assert_ptr_nonnull(j);
	json_decref(j);
	/* A secret right at the cut is redacted before the cut: no prefix of it survives. */
	const char *secret = "sk-live-0123456789abcdef";
	char msg[600];
	memset(msg, 'a', 290);
	snprintf(msg + 290, sizeof msg - 290, "%s tail", secret);
	provider_excerpt(msg, strlen(msg), secret, out, sizeof out);
	ck_assert_ptr_null(strstr(out, "sk-live"));
	/* Small output buffers and empty input. */
	char small[8];
	provider_excerpt("0123456789abc", 13, NULL, small, sizeof small);
	ck_assert_str_eq(small, "0123...");
	provider_excerpt("", 0, NULL, small, sizeof small);
	ck_assert_str_eq(small, "");
	provider_excerpt(NULL, 5, NULL, small, sizeof small);
	ck_assert_str_eq(small, "");
	/* Control characters only. */
	provider_excerpt("\r\n\t", 3, NULL, out, sizeof out);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(error_message)
{
	static const struct {
		const char *json, *want;
	} t[] = {
		{ "{\"error\":{\"message\":\"m1\",\"type\":\"x\"}}", "m1" },
		{ "{\"error\":\"m2\"}", "m2" },
		{ "{\"message\":\"m3\"}", "m3" },
		{ "{\"detail\":\"m4\"}", "m4" },
		{ "{\"error\":{\"code\":1}}", NULL },
		{ "[1]", NULL },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		json_t *j = json_loads(t[i].json, 0, NULL);
		const char *m = provider_error_message(j);
		if (t[i].want)
			ck_assert_str_eq(m, t[i].want);
		else
			ck_assert_ptr_null(m);
		json_decref(j);
	}
	ck_assert_ptr_null(provider_error_message(NULL));
}
END_TEST

START_TEST(retry_after)
{
	int64_t now = 1700000000;   /* Tue, 14 Nov 2023 22:13:20 GMT */
	ck_assert_int_eq(provider_retry_after("7", now), 7);
	ck_assert_int_eq(provider_retry_after(" 120 ", now), 120);
	ck_assert_int_eq(provider_retry_after("0", now), 0);
	ck_assert_int_eq(provider_retry_after("999999", now), 86400);
	ck_assert_int_eq(provider_retry_after("99999999999999999999", now), 86400);
	ck_assert_int_eq(provider_retry_after("-5", now), 0);
	ck_assert_int_eq(provider_retry_after("7s", now), 0);
	ck_assert_int_eq(provider_retry_after("", now), 0);
	ck_assert_int_eq(provider_retry_after(NULL, now), 0);
	ck_assert_int_eq(provider_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now), 30);
	ck_assert_int_eq(provider_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now), 0);
	ck_assert_int_eq(provider_retry_after("Fri, 14 Nov 2025 22:13:00 GMT", now), 86400);
	ck_assert_int_eq(provider_retry_after("next tuesday", now), 0);
}
END_TEST

START_TEST(ops_table)
{
	static const char *const compat[] = { "openai", "openrouter", "vllm", "custom", "bedrock-proxy", "azure-proxy",
					      "litellm", "something-new", "", NULL };
	for (size_t i = 0; i < sizeof compat / sizeof compat[0]; i++) {
		const struct provider_ops *o = provider_ops_for(compat[i]);
		ck_assert_ptr_eq(o, &openai_compat_ops);
		ck_assert_str_eq(o->name, "openai_compat");
		ck_assert_ptr_nonnull(o->call);
		ck_assert_ptr_nonnull(o->list_models);
	}
	ck_assert_ptr_eq(provider_ops_for("ollama"), &ollama_compat_ops);
	ck_assert_ptr_eq(ollama_compat_ops.call, openai_compat_ops.call);
	ck_assert_ptr_null(provider_ops_for("azure"));
	ck_assert_ptr_null(provider_ops_for("bedrock"));
}
END_TEST

/* --- against the fake upstream ------------------------------------------------------------------------------ */

#define KEY "sk-test-key-0123456789"

static struct fake_up up;
static int up_port;
static const char *rec_path = up.record;
static char base_url[64];

static void
up_setup(void)
{
	fake_up_start(&up, "check_providers", KEY, (const char *const[]){ "--slow-ms", "4000", "--chunk-delay-ms", "10", NULL });
	up_port = up.port;
	snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", up_port);
}

static void
up_teardown(void)
{
	fake_up_stop(&up);
}

static json_t *extra_headers;

static struct provider_target
target(void)
{
	if (!extra_headers)
		extra_headers = json_pack("{s:s}", "X-Org", "acme");
	struct provider_target t = {
		.id = "p1", .name = "fake", .type = "openai", .base_url = base_url, .api_path = "",
		.auth_type = "api_key", .api_key = KEY, .http_proxy = "", .tls_verify = true, .ca_file = "",
		.extra_headers = extra_headers,
	};
	return t;
}

/* {"model", "user": tag, "messages": [{"role": "user", "content": text}]} */
static json_t *
chat_req(const char *model, const char *tag, const char *text)
{
	return json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "model", model, "user", tag, "messages", "role", "user", "content",
			 text);
}

/* The fake's records: requests whose body has "user": tag (each with its parsed body as "json"), or with
 * tag NULL the closed_early lines.  A new array. */
static json_t *
records(const char *tag)
{
	json_t *out = json_array();
	FILE *f = fopen(rec_path, "r");
	if (!f)
		return out;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		json_t *r = json_loads(line, 0, NULL);
		if (!r)
			continue;
		if (!tag) {
			if (json_is_string(json_object_get(r, "event")))
				json_array_append(out, r);
		} else {
			json_t *b = json_loads(json_string_value(json_object_get(r, "body")) ? json_string_value(json_object_get(r, "body")) : "", 0, NULL);
			const char *u = json_string_value(json_object_get(b, "user"));
			if (u && strcmp(u, tag) == 0) {
				json_object_set(r, "json", b);
				json_array_append(out, r);
			}
			json_decref(b);
		}
		json_decref(r);
	}
	free(line);
	fclose(f);
	return out;
}

/* The one record of tag (asserts there is exactly one); borrowed from *all (free it). */
static json_t *
record1(const char *tag, json_t **all)
{
	*all = records(tag);
	ck_assert_msg(json_array_size(*all) == 1, "%zu records for %s", json_array_size(*all), tag);
	return json_array_get(*all, 0);
}

static const char *
rec_header(const json_t *r, const char *name)
{
	return json_string_value(json_object_get(json_object_get(r, "headers"), name));
}

struct collect {
	int n, stop_after;
	struct buf content, reasoning;
	bool nested;   /* make a provider call from inside on_event */
	enum prism_err nested_err;
};

static bool
on_event(void *arg, json_t *chunk)
{
	struct collect *c = arg;
	ck_assert(json_is_object(chunk));
	c->n++;
	const json_t *ch = json_array_get(json_object_get(chunk, "choices"), 0);
	const json_t *d = json_object_get(ch, "delta");
	const char *s = json_string_value(json_object_get(d, "content"));
	if (!s)
		s = json_string_value(json_object_get(ch, "text"));
	if (s)
		buf_puts(&c->content, s);
	s = json_string_value(json_object_get(d, "reasoning_content"));
	if (s)
		buf_puts(&c->reasoning, s);
	if (c->nested && c->n == 2) {
		struct provider_target t = target();
		struct provider_result r = { 0 };
		json_t *req = chat_req("fake-echo", "nested-inner", "inner call");
		c->nested_err = openai_compat_ops.call(&t, PROVIDER_CHAT, req, NULL, &r);
		json_decref(req);
		provider_result_clear(&r);
	}
	return !(c->stop_after && c->n >= c->stop_after);
}

static void
collect_init(struct collect *c)
{
	memset(c, 0, sizeof *c);
	buf_init(&c->content, 1 << 20);
	buf_init(&c->reasoning, 1 << 20);
}

static void
collect_free(struct collect *c)
{
	buf_free(&c->content);
	buf_free(&c->reasoning);
}

/* One call of model with a tag; streaming when c != NULL. */
static enum prism_err
call(const struct provider_target *t, enum provider_kind kind, json_t *req, struct collect *c,
     struct provider_result *r)
{
	struct provider_stream_cb cb = { on_event, c };
	enum prism_err e = openai_compat_ops.call(t, kind, req, c ? &cb : NULL, r);
	json_decref(req);
	return e;
}

/* The answer's tree: kept as text when jscan read it, parsed here as the gateway would when it needs to. */
static const char *
answer_content(struct provider_result *r)
{
	const json_t *ch = json_array_get(json_object_get(provider_result_json(r), "choices"), 0);
	const char *s = json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
	return s ? s : json_string_value(json_object_get(ch, "text"));
}

START_TEST(echo_plain)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	/* Extra headers: invalid names, non-strings and the ones we own are skipped. */
	json_t *extra = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "X-Org", "acme", "Bad\nName", "x", "X-Num", 5,
				  "Content-Type", "text/plain", "Authorization", "Basic Zm9v", "X-Empty", "");
	t.extra_headers = extra;
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "echo-1", "hello there"), NULL, &r), PRISM_OK);
	json_decref(extra);
	ck_assert_int_eq(r.errclass, PE_NONE);
	ck_assert_int_eq(r.http_status, 200);
	ck_assert_str_eq(answer_content(&r), "hello there");
	ck_assert(r.usage_reported);
	ck_assert_int_gt(r.prompt_tokens, 0);
	ck_assert_int_eq(r.completion_tokens, 2);
	ck_assert_str_eq(r.finish_reason, "stop");
	ck_assert_int_ge(r.first_byte_ms, 0);
	ck_assert_int_ge(r.duration_ms, r.first_byte_ms);
	ck_assert_int_eq(r.events, 0);
	provider_result_clear(&r);

	json_t *all;
	json_t *rec = record1("echo-1", &all);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "method")), "POST");
	ck_assert_str_eq(json_string_value(json_object_get(rec, "path")), "/v1/chat/completions");
	ck_assert_str_eq(rec_header(rec, "authorization"), "Bearer " KEY);
	ck_assert_str_eq(rec_header(rec, "user-agent"), "model-prism/" PACKAGE_VERSION);
	ck_assert_str_eq(rec_header(rec, "content-type"), "application/json");
	ck_assert_str_eq(rec_header(rec, "accept"), "application/json");
	ck_assert_str_eq(rec_header(rec, "x-org"), "acme");
	ck_assert_ptr_null(rec_header(rec, "x-num"));    /* not a string: skipped */
	ck_assert_ptr_null(rec_header(rec, "expect"));
	ck_assert_str_eq(rec_header(rec, "x-empty"), "");
	const json_t *body = json_object_get(rec, "json");
	ck_assert(json_is_false(json_object_get(body, "stream")));
	ck_assert_ptr_null(json_object_get(body, "stream_options"));
	ck_assert_str_eq(json_string_value(json_object_get(body, "model")), "fake-echo");
	json_decref(all);
}
END_TEST

START_TEST(auth_none_and_paths)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	/* auth none: no Authorization although a key is configured (the fake then says 401). */
	t.auth_type = "none";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "auth-none", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_AUTH);
	ck_assert_int_eq(r.http_status, 401);
	provider_result_clear(&r);
	json_t *all;
	json_t *rec = record1("auth-none", &all);
	ck_assert_ptr_null(rec_header(rec, "authorization"));
	json_decref(all);

	/* bearer and an unset auth type send the key; a trailing slash and an explicit API path are joined. */
	static char slash[80];
	snprintf(slash, sizeof slash, "%s/", base_url);
	t.base_url = slash;
	t.auth_type = "bearer";
	t.api_path = "/v1/";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "auth-bearer", "x"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	t.auth_type = NULL;
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "auth-unset", "x"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	rec = record1("auth-unset", &all);
	ck_assert_str_eq(rec_header(rec, "authorization"), "Bearer " KEY);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "path")), "/v1/chat/completions");
	json_decref(all);

	/* A wrong key: PE_AUTH, and the message never carries the key. */
	t.api_key = "sk-wrong-key-987654321";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "auth-wrong", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_AUTH);
	ck_assert_str_eq(r.message, "Incorrect API key provided.");
	provider_result_clear(&r);

	/* A key with a line break is never sent. */
	t.api_key = "sk-bad\r\nX-Injected: 1";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "auth-crlf", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_AUTH);
	ck_assert_ptr_null(strstr(r.message, "sk-bad"));
	provider_result_clear(&r);
	all = records("auth-crlf");
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);
}
END_TEST

START_TEST(stream_usage)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	json_t *req = chat_req("fake-stream", "stream-1", "go");
	json_object_set_new(req, "stream_options", json_pack("{s:b, s:i}", "include_usage", 0, "client_field", 3));
	json_object_set_new(req, "stream", json_false());
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, req, &c, &r), PRISM_OK);
	ck_assert_str_eq(buf_cstr(&c.content), "chunk 0 chunk 1 chunk 2 chunk 3 chunk 4 ");
	/* role, 5 contents, finish, usage */
	ck_assert_int_eq(c.n, 8);
	ck_assert_int_eq(r.events, 8);
	ck_assert(r.usage_reported);
	ck_assert_int_eq(r.completion_tokens, 5);
	ck_assert_int_gt(r.prompt_tokens, 0);
	ck_assert_str_eq(r.finish_reason, "stop");
	ck_assert_ptr_null(r.body);
	ck_assert_int_ge(r.first_byte_ms, 0);
	ck_assert_int_ge(r.duration_ms, 40);   /* 4 pauses of 10 ms */
	provider_result_clear(&r);
	collect_free(&c);

	json_t *all;
	json_t *rec = record1("stream-1", &all);
	const json_t *body = json_object_get(rec, "json");
	ck_assert(json_is_true(json_object_get(body, "stream")));
	ck_assert(json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(body, "stream_options"), "client_field")), 3);
	ck_assert_str_eq(rec_header(rec, "accept"), "text/event-stream");
	json_decref(all);
}
END_TEST

START_TEST(stream_nousage)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-nousage", "nousage", "go"), &c, &r), PRISM_OK);
	ck_assert(!r.usage_reported);
	ck_assert_int_eq(r.prompt_tokens, 0);
	ck_assert_int_eq(r.completion_tokens, 0);
	ck_assert_str_eq(r.finish_reason, "stop");
	ck_assert_int_eq(r.events, 7);
	provider_result_clear(&r);
	/* Non-streaming without usage. */
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-nousage", "nousage-2", "go"), NULL, &r), PRISM_OK);
	ck_assert(!r.usage_reported);
	provider_result_clear(&r);
	collect_free(&c);
}
END_TEST

START_TEST(stream_think)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-think", "think", "q"), &c, &r), PRISM_OK);
	ck_assert_str_eq(buf_cstr(&c.content), "<think>hidden thoughts</think>The answer is 42.");
	ck_assert_str_eq(buf_cstr(&c.reasoning), "Let me think.");
	provider_result_clear(&r);
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-think", "think-2", "q"), NULL, &r), PRISM_OK);
	ck_assert_str_eq(answer_content(&r), "<think>hidden thoughts</think>The answer is 42.");
	provider_result_clear(&r);
	collect_free(&c);
}
END_TEST

static const struct {
	const char *model;
	int status;
	enum provider_errclass want;
	enum prism_err err;
	const char *msg;      /* a substring of the message */
	long limit, retry_min, retry_max;
} error_cases[] = {
	{ "fake-500", 500, PE_SERVER, PRISM_E_UPSTREAM, "The server had an error", 0, 0, 0 },
	{ "fake-502html", 502, PE_SERVER, PRISM_E_UPSTREAM, "502 Bad Gateway", 0, 0, 0 },
	{ "fake-429", 429, PE_RATE_LIMITED, PRISM_E_UPSTREAM, "Rate limit reached", 0, 7, 7 },
	{ "fake-429date", 429, PE_RATE_LIMITED, PRISM_E_UPSTREAM, "Rate limit", 0, 25, 31 },
	{ "fake-401", 401, PE_AUTH, PRISM_E_UPSTREAM, "Incorrect API key", 0, 0, 0 },
	{ "fake-400", 400, PE_BAD_REQUEST, PRISM_E_UPSTREAM, "Invalid value for 'temperature': must be between 0 and 2.",
	  0, 0, 0 },
	{ "fake-context", 400, PE_CONTEXT, PRISM_E_UPSTREAM, "maximum context length is 8192", 0, 0, 0 },
	{ "fake-maxtokens", 400, PE_MAX_TOKENS, PRISM_E_UPSTREAM, "max_tokens is too large", 4096, 0, 0 },
	{ "fake-200error", 200, PE_SERVER, PRISM_E_UPSTREAM, "The model is overloaded.", 0, 0, 0 },
	{ "fake-huge", 200, PE_PROTOCOL, PRISM_E_UPSTREAM, "larger than", 0, 0, 0 },
	{ "fake-cut", 200, PE_CUT, PRISM_E_UPSTREAM, "connection broke", 0, 0, 0 },
};

/* Non-streaming, and (for the error answers) streaming too: the same classification. */
START_TEST(error_table)
{
	struct provider_target t = target();
	for (int streaming = 0; streaming < 2; streaming++) {
		if (streaming && (error_cases[_i].status == 200))
			break;
		struct provider_result r = { 0 };
		struct collect c;
		collect_init(&c);
		char tag[64];
		snprintf(tag, sizeof tag, "err-%d-%d", _i, streaming);
		enum prism_err e = call(&t, PROVIDER_CHAT, chat_req(error_cases[_i].model, tag, "x"), streaming ? &c : NULL, &r);
		ck_assert_msg(r.errclass == error_cases[_i].want, "%s: %s (%s)", error_cases[_i].model,
			      provider_errclass_name(r.errclass), r.message);
		ck_assert_int_eq(e, error_cases[_i].err);
		ck_assert_int_eq(r.http_status, error_cases[_i].status);
		ck_assert_msg(strstr(r.message, error_cases[_i].msg), "%s: message '%s'", error_cases[_i].model, r.message);
		ck_assert_int_eq(r.max_tokens_limit, error_cases[_i].limit);
		ck_assert_int_ge(r.retry_after_s, error_cases[_i].retry_min);
		ck_assert_int_le(r.retry_after_s, error_cases[_i].retry_max);
		ck_assert_ptr_null(r.body);
		ck_assert_ptr_null(r.body_text);
		ck_assert_int_eq(c.n, 0);
		for (const char *p = r.message; *p; p++)
			ck_assert_int_ge((unsigned char)*p, 0x20);
		ck_assert_uint_le(strlen(r.message), PROVIDER_MAX_EXCERPT);
		provider_result_clear(&r);
		collect_free(&c);
	}
}
END_TEST

static const struct {
	const char *model;
	enum provider_errclass want;
	const char *msg;
	int min_events;
} stream_error_cases[] = {
	{ "fake-cut", PE_CUT, "", 3 },
	{ "fake-badsse", PE_PROTOCOL, "malformed JSON", 2 },
	{ "fake-streamerror", PE_SERVER, "error while streaming", 2 },
	{ "fake-nostream", PE_PROTOCOL, "JSON body", 0 },
	{ "fake-huge", PE_PROTOCOL, "larger than", 0 },
};

START_TEST(stream_error_table)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	char tag[64];
	snprintf(tag, sizeof tag, "serr-%d", _i);
	enum prism_err e = call(&t, PROVIDER_CHAT, chat_req(stream_error_cases[_i].model, tag, "x"), &c, &r);
	ck_assert_int_eq(e, PRISM_E_UPSTREAM);
	ck_assert_msg(r.errclass == stream_error_cases[_i].want, "%s: %s (%s)", stream_error_cases[_i].model,
		      provider_errclass_name(r.errclass), r.message);
	ck_assert_int_eq(r.http_status, 200);
	ck_assert_msg(strstr(r.message, stream_error_cases[_i].msg), "%s: '%s'", stream_error_cases[_i].model, r.message);
	ck_assert_int_eq(c.n, r.events);
	ck_assert_int_ge(c.n, stream_error_cases[_i].min_events);
	provider_result_clear(&r);
	collect_free(&c);
}
END_TEST

/* Streams that are complete but whose response does not end, and two chunks in one event. */
START_TEST(stream_endings)
{
	struct provider_target t = target();
	t.idle_timeout_ms = 1500;
	static const char *const models[] = { "fake-donehang", "fake-finishhang", "fake-multidata" };
	for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
		struct provider_result r = { 0 };
		struct collect c;
		collect_init(&c);
		int64_t t0 = clock_monotonic_ms();
		ck_assert_msg(call(&t, PROVIDER_CHAT, chat_req(models[i], models[i], "a b"), &c, &r) == PRISM_OK, "%s: %s",
			      models[i], r.message);
		int64_t took = clock_monotonic_ms() - t0;
		ck_assert_msg(took < 3500, "%s took %lld ms", models[i], (long long)took);
		ck_assert_str_eq(r.finish_reason, "stop");
		if (i == 2)
			ck_assert_str_eq(buf_cstr(&c.content), "one two");
		else
			ck_assert_str_eq(buf_cstr(&c.content), "a b");
		provider_result_clear(&r);
		collect_free(&c);
	}
}
END_TEST

START_TEST(completions_and_embeddings)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:i}", "model", "fake-fim", "user", "fim-1", "prompt", "def f(",
				"suffix", "return x", "max_tokens", 64);
	ck_assert_int_eq(call(&t, PROVIDER_COMPLETIONS, req, NULL, &r), PRISM_OK);
	ck_assert_str_eq(answer_content(&r), "[prompt=def f(][suffix=return x]");
	ck_assert_str_eq(json_string_value(json_object_get(provider_result_json(&r), "object")), "text_completion");
	ck_assert(r.usage_reported);
	provider_result_clear(&r);
	json_t *all;
	json_t *rec = record1("fim-1", &all);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "path")), "/v1/completions");
	json_decref(all);

	struct collect c;
	collect_init(&c);
	req = json_pack("{s:s, s:s, s:s, s:s}", "model", "fake-fim", "user", "fim-2", "prompt", "a", "suffix", "b");
	ck_assert_int_eq(call(&t, PROVIDER_COMPLETIONS, req, &c, &r), PRISM_OK);
	ck_assert_str_eq(buf_cstr(&c.content), "[prompt=a][suffix=b]");
	ck_assert(r.usage_reported);
	ck_assert_str_eq(r.finish_reason, "stop");
	provider_result_clear(&r);
	collect_free(&c);

	/* Embeddings never stream, and their body goes out unchanged. */
	collect_init(&c);
	req = json_pack("{s:s, s:s, s:[s, s]}", "model", "fake-embed", "user", "emb-1", "input", "a", "bb");
	ck_assert_int_eq(call(&t, PROVIDER_EMBEDDINGS, req, &c, &r), PRISM_OK);
	ck_assert_int_eq(c.n, 0);
	const json_t *data = json_object_get(provider_result_json(&r), "data");
	ck_assert_uint_eq(json_array_size(data), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(data, 1), "embedding")), 8);
	ck_assert(r.usage_reported);
	ck_assert_int_gt(r.prompt_tokens, 0);
	ck_assert_int_eq(r.completion_tokens, 0);
	provider_result_clear(&r);
	collect_free(&c);
	rec = record1("emb-1", &all);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "path")), "/v1/embeddings");
	ck_assert_ptr_null(json_object_get(json_object_get(rec, "json"), "stream"));
	json_decref(all);

	/* Not an object: refused before any traffic. */
	json_t *arr = json_array();
	ck_assert_int_eq(openai_compat_ops.call(&t, PROVIDER_CHAT, arr, NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_BAD_REQUEST);
	provider_result_clear(&r);
	json_decref(arr);
}
END_TEST

START_TEST(timeout_first_byte)
{
	struct provider_target t = target();
	t.first_byte_timeout_ms = 500;
	struct provider_result r = { 0 };
	int64_t t0 = clock_monotonic_ms();
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-slow", "slow-1", "x"), NULL, &r), PRISM_E_TIMEOUT);
	int64_t took = clock_monotonic_ms() - t0;
	ck_assert_int_eq(r.errclass, PE_TIMEOUT);
	ck_assert_msg(strstr(r.message, "first-byte"), "%s", r.message);
	ck_assert_int_eq(r.first_byte_ms, -1);
	ck_assert_int_eq(r.http_status, 0);
	ck_assert_msg(took >= 450 && took < 2500, "took %lld ms", (long long)took);
	provider_result_clear(&r);
	/* Without the limit it answers (after --slow-ms). */
	t.first_byte_timeout_ms = 0;
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-slow", "slow-2", "late"), NULL, &r), PRISM_OK);
	ck_assert_int_ge(r.first_byte_ms, 3900);
	ck_assert_str_eq(answer_content(&r), "late");
	provider_result_clear(&r);
}
END_TEST

START_TEST(timeout_idle_and_total)
{
	struct provider_target t = target();
	t.idle_timeout_ms = 500;
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	int64_t t0 = clock_monotonic_ms();
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-stall", "stall-1", "x"), &c, &r), PRISM_E_TIMEOUT);
	int64_t took = clock_monotonic_ms() - t0;
	ck_assert_int_eq(r.errclass, PE_TIMEOUT);
	ck_assert_msg(strstr(r.message, "idle"), "%s", r.message);
	ck_assert_int_eq(c.n, 2);   /* role and the first chunk, then the stall */
	ck_assert_int_eq(r.http_status, 200);
	ck_assert_msg(took >= 450 && took < 2500, "took %lld ms", (long long)took);
	provider_result_clear(&r);
	collect_free(&c);

	/* The total timeout, while events keep the idle timer happy. */
	t.idle_timeout_ms = 0;
	t.total_timeout_ms = 800;
	collect_init(&c);
	json_t *req = chat_req("fake-stream", "total-1", "x");
	json_object_set_new(req, "fake_chunks", json_integer(100));
	json_object_set_new(req, "fake_delay_ms", json_integer(50));
	t0 = clock_monotonic_ms();
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, req, &c, &r), PRISM_E_TIMEOUT);
	took = clock_monotonic_ms() - t0;
	ck_assert_int_eq(r.errclass, PE_TIMEOUT);
	ck_assert_msg(strstr(r.message, "total"), "%s", r.message);
	ck_assert_int_gt(c.n, 3);
	ck_assert_msg(took >= 750 && took < 2000, "took %lld ms", (long long)took);
	provider_result_clear(&r);
	collect_free(&c);
}
END_TEST

/* A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs. */
static int
blackhole(int *port, int *fillers, int nfill)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(s, 0), 0);
	socklen_t alen = sizeof a;
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	for (int i = 0; i < nfill; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fillers[i], (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
			ck_abort_msg("filler connect: %s", strerror(errno));
	}
	usleep(100000);
	return s;
}

START_TEST(timeout_connect)
{
	int port, fillers[4];
	int s = blackhole(&port, fillers, 4);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	struct provider_target t = target();
	t.base_url = url;
	t.connect_timeout_ms = 500;
	struct provider_result r = { 0 };
	int64_t t0 = clock_monotonic_ms();
	enum prism_err e = call(&t, PROVIDER_CHAT, chat_req("fake-echo", "bh", "x"), NULL, &r);
	int64_t took = clock_monotonic_ms() - t0;
	ck_assert_msg(e == PRISM_E_TIMEOUT && r.errclass == PE_TIMEOUT, "%s: %s", provider_errclass_name(r.errclass),
		      r.message);
	ck_assert_msg(strstr(r.message, "connect"), "%s", r.message);
	ck_assert_msg(took >= 450 && took < 2000, "took %lld ms", (long long)took);
	provider_result_clear(&r);
	for (int i = 0; i < 4; i++)
		close(fillers[i]);
	close(s);
}
END_TEST

START_TEST(connect_failures)
{
	int closed_port = loopback_closed_port();

	struct provider_target t = target();
	struct provider_result r = { 0 };
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port);

	/* Direct to the closed port. */
	t.base_url = url;
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "closed", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_CONNECT);
	ck_assert_int_eq(r.http_status, 0);
	provider_result_clear(&r);

	/* Through a proxy on the closed port: the live upstream is never reached. */
	t.base_url = base_url;
	t.http_proxy = url;
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "via-proxy", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_CONNECT);
	provider_result_clear(&r);
	json_t *all = records("via-proxy");
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);

	/* The environment's proxy is never used when the provider has none. */
	setenv("http_proxy", url, 1);
	setenv("HTTP_PROXY", url, 1);
	setenv("ALL_PROXY", url, 1);
	t.http_proxy = "";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "env-proxy", "x"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("ALL_PROXY");

	/* The fake upstream as the HTTP proxy of a provider whose name does not resolve: the request goes to the
	 * proxy, with the provider's host. */
	t.http_proxy = base_url;
	t.base_url = "http://upstream.invalid";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "proxied", "x"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	all = records("proxied");
	ck_assert_uint_eq(json_array_size(all), 1);
	ck_assert_str_eq(rec_header(json_array_get(all, 0), "host"), "upstream.invalid");
	json_decref(all);

	/* TLS to a plain-HTTP port fails the handshake, verified or not; a missing CA file fails too. */
	static char https[80];
	snprintf(https, sizeof https, "https://127.0.0.1:%d", up_port);
	t.http_proxy = "";
	t.base_url = https;
	for (int verify = 0; verify < 2; verify++) {
		t.tls_verify = verify;
		t.ca_file = verify ? "/nonexistent/ca.pem" : "";
		ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "tls", "x"), NULL, &r), PRISM_E_UPSTREAM);
		ck_assert_msg(r.errclass == PE_CONNECT, "%s: %s", provider_errclass_name(r.errclass), r.message);
		provider_result_clear(&r);
	}
	t.tls_verify = true;
	t.ca_file = "";

	/* No base URL, an unusable scheme, an unresolvable name. */
	t.http_proxy = "";
	t.base_url = "";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "nobase", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_CONNECT);
	provider_result_clear(&r);
	t.base_url = "file:///etc";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "file", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_CONNECT);
	provider_result_clear(&r);
	t.base_url = "http://no-such-host.invalid";
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "dns", "x"), NULL, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_CONNECT);
	provider_result_clear(&r);
}
END_TEST

START_TEST(client_gone)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	c.stop_after = 2;
	json_t *req = chat_req("fake-stream", "gone-1", "x");
	json_object_set_new(req, "fake_chunks", json_integer(50));
	json_object_set_new(req, "fake_delay_ms", json_integer(50));
	int64_t t0 = clock_monotonic_ms();
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, req, &c, &r), PRISM_E_CLIENT_GONE);
	ck_assert_int_lt(clock_monotonic_ms() - t0, 1000);
	ck_assert_int_eq(c.n, 2);
	ck_assert_int_eq(r.events, 2);
	ck_assert_int_eq(r.errclass, PE_NONE);
	provider_result_clear(&r);
	collect_free(&c);

	json_t *all;
	json_t *rec = record1("gone-1", &all);
	json_int_t conn = json_integer_value(json_object_get(rec, "connection"));
	json_decref(all);
	/* The fake notices the closed connection. */
	bool seen = false;
	for (int i = 0; i < 40 && !seen; i++) {
		json_t *ev = records(NULL);
		size_t k;
		json_t *v;
		json_array_foreach(ev, k, v) {
			if (json_integer_value(json_object_get(v, "connection")) == conn &&
			    strcmp(json_string_value(json_object_get(v, "event")), "closed_early") == 0) {
				seen = true;
				ck_assert_int_lt(json_integer_value(json_object_get(v, "sent")), 10);
			}
		}
		json_decref(ev);
		if (!seen)
			usleep(50000);
	}
	ck_assert_msg(seen, "the upstream did not see the connection close");

	/* The next call works on a new connection. */
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "gone-2", "after"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	rec = record1("gone-2", &all);
	ck_assert_int_ne(json_integer_value(json_object_get(rec, "connection")), conn);
	json_decref(all);
}
END_TEST

START_TEST(keep_alive)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "ka-1", "one"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-stream", "ka-2", "two"), &c, &r), PRISM_OK);
	provider_result_clear(&r);
	ck_assert_int_eq(call(&t, PROVIDER_EMBEDDINGS, json_pack("{s:s,s:s,s:s}", "model", "fake-embed", "user", "ka-3",
								  "input", "x"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	/* An error answer does not cost the connection either. */
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-400", "ka-4", "x"), NULL, &r), PRISM_E_UPSTREAM);
	provider_result_clear(&r);
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "ka-5", "five"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	collect_free(&c);

	json_int_t conn = -1, port = -1;
	static const char *const tags[] = { "ka-1", "ka-2", "ka-3", "ka-4", "ka-5" };
	for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
		json_t *all;
		json_t *rec = record1(tags[i], &all);
		json_int_t cn = json_integer_value(json_object_get(rec, "connection"));
		json_int_t pt = json_integer_value(json_object_get(rec, "remotePort"));
		ck_assert_int_gt(cn, 0);
		if (i == 0) {
			conn = cn;
			port = pt;
		}
		ck_assert_msg(cn == conn && pt == port, "%s on connection %lld (port %lld), first on %lld (%lld)", tags[i],
			      (long long)cn, (long long)pt, (long long)conn, (long long)port);
		json_decref(all);
	}

	/* After the idle handles are freed, a new connection. */
	openai_compat_pool_clear();
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-echo", "ka-6", "six"), NULL, &r), PRISM_OK);
	provider_result_clear(&r);
	json_t *all;
	json_t *rec = record1("ka-6", &all);
	ck_assert_int_ne(json_integer_value(json_object_get(rec, "connection")), conn);
	json_decref(all);
}
END_TEST

#define NTHREADS 4
#define NCALLS 3

static void *
thread_calls(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct provider_target t = target();
	for (int i = 0; i < NCALLS; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "thr-%d-%d", id, i);
		struct provider_result r = { 0 };
		json_t *req = chat_req("fake-echo", tag, tag);
		enum prism_err e = openai_compat_ops.call(&t, PROVIDER_CHAT, req, NULL, &r);
		json_decref(req);
		bool ok = e == PRISM_OK && strcmp(answer_content(&r), tag) == 0;
		provider_result_clear(&r);
		if (!ok)
			return (void *)1;
	}
	return NULL;
}

/* Threads call at once: their calls share the pool's connections, never more than the calls in flight,
 * and every one is answered with its own content. */
START_TEST(threads)
{
	openai_compat_pool_clear();
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, thread_calls, (void *)(intptr_t)i), 0);
	for (int i = 0; i < NTHREADS; i++) {
		void *rv;
		ck_assert_int_eq(pthread_join(th[i], &rv), 0);
		ck_assert_ptr_null(rv);
	}
	json_int_t seen[NTHREADS * NCALLS];
	int nseen = 0;
	for (int i = 0; i < NTHREADS; i++) {
		for (int k = 0; k < NCALLS; k++) {
			char tag[32];
			snprintf(tag, sizeof tag, "thr-%d-%d", i, k);
			json_t *all;
			json_t *rec = record1(tag, &all);
			json_int_t cn = json_integer_value(json_object_get(rec, "connection"));
			ck_assert_int_gt(cn, 0);
			int s;
			for (s = 0; s < nseen && seen[s] != cn; s++)
				;
			if (s == nseen)
				seen[nseen++] = cn;
			json_decref(all);
		}
	}
	ck_assert_msg(nseen <= NTHREADS, "%d connections for %d threads", nseen, NTHREADS);
}
END_TEST

static void *
one_call(void *arg)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	json_t *req = chat_req("fake-echo", (const char *)arg, "x");
	enum prism_err e = openai_compat_ops.call(&t, PROVIDER_CHAT, req, NULL, &r);
	json_decref(req);
	provider_result_clear(&r);
	return e == PRISM_OK ? NULL : (void *)1;
}

/* A connection outlives the thread that opened it: the next thread's call goes over it. */
START_TEST(connection_outlives_thread)
{
	openai_compat_pool_clear();
	static const char *const tags[] = { "outlive-1", "outlive-2" };
	for (int i = 0; i < 2; i++) {
		pthread_t th;
		void *rv;
		ck_assert_int_eq(pthread_create(&th, NULL, one_call, (void *)tags[i]), 0);
		ck_assert_int_eq(pthread_join(th, &rv), 0);
		ck_assert_ptr_null(rv);
	}
	json_t *a, *b;
	json_int_t c1 = json_integer_value(json_object_get(record1(tags[0], &a), "connection"));
	json_int_t c2 = json_integer_value(json_object_get(record1(tags[1], &b), "connection"));
	ck_assert_int_gt(c1, 0);
	ck_assert_int_eq(c1, c2);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(nested_call)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	struct collect c;
	collect_init(&c);
	c.nested = true;
	ck_assert_int_eq(call(&t, PROVIDER_CHAT, chat_req("fake-stream", "nested-outer", "x"), &c, &r), PRISM_OK);
	ck_assert_int_eq(c.nested_err, PRISM_OK);
	ck_assert_str_eq(buf_cstr(&c.content), "chunk 0 chunk 1 chunk 2 chunk 3 chunk 4 ");
	provider_result_clear(&r);
	collect_free(&c);
	json_t *all;
	json_t *outer = record1("nested-outer", &all);
	json_int_t oc = json_integer_value(json_object_get(outer, "connection"));
	json_decref(all);
	json_t *inner = record1("nested-inner", &all);
	ck_assert_int_ne(json_integer_value(json_object_get(inner, "connection")), oc);
	json_decref(all);
}
END_TEST

START_TEST(list_models)
{
	struct provider_target t = target();
	struct provider_result r = { 0 };
	json_t *models = NULL;
	ck_assert_int_eq(openai_compat_ops.list_models(&t, &models, &r), PRISM_OK);
	ck_assert_uint_eq(json_array_size(models), 4);
	ck_assert_str_eq(json_string_value(json_array_get(models, 0)), "gpt-4o-mini");
	ck_assert_ptr_null(r.body);
	json_decref(models);
	provider_result_clear(&r);

	/* Ollama: /api/tags names. */
	t.type = "ollama";
	ck_assert_int_eq(ollama_compat_ops.list_models(&t, &models, &r), PRISM_OK);
	ck_assert_uint_eq(json_array_size(models), 2);
	ck_assert_str_eq(json_string_value(json_array_get(models, 0)), "llama3.1:8b");
	json_decref(models);
	provider_result_clear(&r);

	/* Wrong key: an error, no list. */
	t.api_key = "sk-nope-nope-nope";
	models = NULL;
	ck_assert_int_eq(openai_compat_ops.list_models(&t, &models, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_AUTH);
	ck_assert_ptr_null(models);
	provider_result_clear(&r);

	/* A path without a model list. */
	t.api_key = KEY;
	t.api_path = "/nowhere";
	ck_assert_int_eq(openai_compat_ops.list_models(&t, &models, &r), PRISM_E_UPSTREAM);
	ck_assert_int_eq(r.errclass, PE_BAD_REQUEST);
	ck_assert_int_eq(r.http_status, 404);
	provider_result_clear(&r);
}
END_TEST

static Suite *
providers_suite(void)
{
	Suite *s = suite_create("providers");
	TCase *tc = tcase_create("sse");
	tcase_add_loop_test(tc, sse_table, 0, sizeof sse_cases / sizeof sse_cases[0]);
	tcase_add_test(tc, sse_every_boundary);
	tcase_add_test(tc, sse_oversize);
	tcase_add_test(tc, sse_stop);
	suite_add_tcase(s, tc);

	tc = tcase_create("classify");
	tcase_add_test(tc, errclass_names);
	tcase_add_loop_test(tc, classify_table, 0, sizeof classify_cases / sizeof classify_cases[0]);
	tcase_add_test(tc, predicates);
	tcase_add_loop_test(tc, excerpt_table, 0, sizeof excerpt_cases / sizeof excerpt_cases[0]);
	tcase_add_test(tc, excerpt_bounds);
	tcase_add_test(tc, error_message);
	tcase_add_test(tc, retry_after);
	tcase_add_test(tc, ops_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("upstream");
	tcase_add_unchecked_fixture(tc, up_setup, up_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, echo_plain);
	tcase_add_test(tc, auth_none_and_paths);
	tcase_add_test(tc, stream_usage);
	tcase_add_test(tc, stream_nousage);
	tcase_add_test(tc, stream_think);
	tcase_add_loop_test(tc, error_table, 0, sizeof error_cases / sizeof error_cases[0]);
	tcase_add_loop_test(tc, stream_error_table, 0, sizeof stream_error_cases / sizeof stream_error_cases[0]);
	tcase_add_test(tc, stream_endings);
	tcase_add_test(tc, completions_and_embeddings);
	tcase_add_test(tc, timeout_first_byte);
	tcase_add_test(tc, timeout_idle_and_total);
	tcase_add_test(tc, timeout_connect);
	tcase_add_test(tc, connect_failures);
	tcase_add_test(tc, client_gone);
	tcase_add_test(tc, keep_alive);
	tcase_add_test(tc, threads);
	tcase_add_test(tc, connection_outlives_thread);
	tcase_add_test(tc, nested_call);
	tcase_add_test(tc, list_models);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(providers_suite)
