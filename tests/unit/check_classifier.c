/* check_classifier.c -- the LLM classifier of the router (routing/classifier.h): the exact prompt (category
 * and model lines, prices in JavaScript's shortest form, dedupe, tier order, caps, bounds), the context
 * (budget, last three messages, metadata_only, hint, cuts at code-point boundaries, huge and invalid
 * input), the validation of the answer (every reason code and every field default), whether a tenant has a
 * classifier, and the call chain against the real fake upstream (tests/fixtures/fake_upstream.js): a good
 * answer, a timeout within the deadline, failover to a fallback, the fallback cap, open breakers, and a
 * provider that is not the tenant's never being called. */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "check_main.h"
#include "fake_upstream.h"
#include "gateway/gw.h"
#include "routing/classifier.h"
#include "util/buf.h"
#include "util/config.h"

#define FORMAT_LINE \
	"{\"category\":\"<key>\",\"confidence\":<0-1>,\"complexity\":\"<simple|medium|complex>\",\"has_image\":<bool>," \
	"\"language\":\"<en|de|other>\",\"estimated_output_length\":\"<short|medium|long>\"," \
	"\"domain\":\"<general|legal|medical|finance|tech|science>\",\"conversation_turn\":<int>," \
	"\"user_frustration_signal\":<bool>,\"cost_tier\":\"<micro|minimal|low|medium|advanced|high|ultra|critical>\"," \
	"\"recommended_model\":\"<model_id or null>\",\"reasoning\":\"<1 sentence>\"}"
#define INTRO "You are a precise model router. Analyze the user's prompt and classify it into one of these categories."
#define TAIL "\n\n## Response Format\nReply with ONLY valid JSON, no markdown:\n" FORMAT_LINE
#define MODELS_HEAD "\n\n## Available Models\nPick the best one for this request as \"recommended_model\":"

enum { MICRO, MINIMAL, LOW, MEDIUM, ADVANCED, HIGH, ULTRA, CRITICAL };
#define NONE ROUTE_TIER_NONE

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	ck_assert_msg(j != NULL, "bad test JSON: %s: %s", e.text, text);
	return j;
}

/* Well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF); counts the code points. */
static bool
utf8_ok(const char *s, size_t *ncp)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	while (*p) {
		unsigned char c = *p;
		size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
		if (!len)
			return false;
		unsigned long cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += len;
		n++;
	}
	if (ncp)
		*ncp = n;
	return true;
}

static size_t
count_lines_starting(const char *s, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);
	for (const char *p = s; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, prefix, pl) == 0)
			n++;
	}
	return n;
}

static char *
repeat(const char *unit, size_t times)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * times + 1);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * times] = '\0';
	return s;
}

/* --- the prompt ------------------------------------------------------------------------------------------ */

static const char *const coding_examples[] = { "fix a typo", "rename a variable", NULL };

static const struct route_category small_cats[] = {
	{ .key = "coding_simple", .tier = LOW, .examples = coding_examples, .nexamples = 2, .system_prompt = "",
	  .default_model = "" },
	{ .key = "smalltalk", .tier = NONE, .system_prompt = "", .default_model = "" },
};

#define M(id_, tier_, in_, out_) { .id = (id_), .provider_id = "p", .provider_slug = "s", .tier = (tier_), \
				   .input_per_1m = (in_), .output_per_1m = (out_), .priority = 50 }

START_TEST(prompt_exact)
{
	const struct route_model models[] = {
		M("big", HIGH, 3, 15), M("small", LOW, 0.15, 0.6), M("local", NONE, -1, -1), M("small", CRITICAL, 9, 9),
	};
	char *p = classifier_prompt(small_cats, 2, models, 4);
	ck_assert_str_eq(p, INTRO "\n\n## Categories\n"
			 "- coding_simple [low] \xE2\x80\x94 Examples: fix a typo, rename a variable\n"
			 "- smalltalk" MODELS_HEAD "\n"
			 "- small [low] \xE2\x80\x94 in:$0.15/out:$0.6/1M\n"
			 "- big [high] \xE2\x80\x94 in:$3/out:$15/1M\n"
			 "- local" TAIL);
	free(p);
}
END_TEST

START_TEST(prompt_without_models)
{
	char *p = classifier_prompt(small_cats, 2, NULL, 0);
	ck_assert_str_eq(p, INTRO "\n\n## Categories\n"
			 "- coding_simple [low] \xE2\x80\x94 Examples: fix a typo, rename a variable\n"
			 "- smalltalk" TAIL);
	free(p);
	/* an empty model list is no section either, nor are models that cannot be named */
	const struct route_model bad[] = { M("", LOW, 1, 1), M("a\nb", LOW, 1, 1) };
	p = classifier_prompt(small_cats, 1, bad, 2);
	ck_assert_ptr_null(strstr(p, "## Available Models"));
	free(p);
}
END_TEST

START_TEST(prompt_empty)
{
	char *p = classifier_prompt(NULL, 0, NULL, 0);
	ck_assert_str_eq(p, INTRO "\n\n## Categories\n" TAIL);
	free(p);
}
END_TEST

static const struct {
	double in;
	const char *want;
} price_cases[] = {
	{ 3, "3" },
	{ 0.075, "0.075" },
	{ 1.25, "1.25" },
	{ 0.0001, "0.0001" },
	{ 0, "0" },
	{ 15, "15" },
	{ 0.15, "0.15" },
	{ 0.1 + 0.2, "0.30000000000000004" },
	{ 0.000001, "0.000001" },
	{ 1e-7, "1e-7" },
	{ 1.5e-8, "1.5e-8" },
	{ 1500000, "1500000" },
	{ 123456789012.5, "123456789012.5" },
	{ 1e21, "1e+21" },
	{ 2.5e22, "2.5e+22" },
};

START_TEST(prompt_price_format)
{
	const struct route_model m[] = { M("m", MEDIUM, price_cases[_i].in, 1) };
	char *p = classifier_prompt(NULL, 0, m, 1);
	char want[128];
	snprintf(want, sizeof want, "\n- m [medium] \xE2\x80\x94 in:$%s/out:$1/1M\n", price_cases[_i].want);
	ck_assert_msg(strstr(p, want) != NULL, "%.17g: want %s in\n%s", price_cases[_i].in, price_cases[_i].want, p);
	free(p);
}
END_TEST

START_TEST(prompt_price_only_when_both_known)
{
	const struct route_model m[] = { M("a", LOW, 3, -1), M("b", LOW, -1, 2), M("c", LOW, NAN, 2), M("d", LOW, 0, 0) };
	char *p = classifier_prompt(NULL, 0, m, 4);
	ck_assert_ptr_nonnull(strstr(p, "\n- a [low]\n- b [low]\n- c [low]\n- d [low] \xE2\x80\x94 in:$0/out:$0/1M\n"));
	free(p);
}
END_TEST

START_TEST(prompt_dedupe_first_wins)
{
	/* the first "x" is high: its tier and prices count, even though a later "x" would sort first */
	const struct route_model m[] = { M("x", HIGH, 1, 2), M("y", MEDIUM, 1, 1), M("x", MICRO, 7, 7), M("x", NONE, -1, -1) };
	char *p = classifier_prompt(NULL, 0, m, 4);
	ck_assert_ptr_nonnull(strstr(p, MODELS_HEAD "\n- y [medium] \xE2\x80\x94 in:$1/out:$1/1M\n"
				      "- x [high] \xE2\x80\x94 in:$1/out:$2/1M\n\n## Response"));
	ck_assert_uint_eq(count_lines_starting(p, "- x"), 1);
	free(p);
}
END_TEST

START_TEST(prompt_tier_order_stable)
{
	const struct route_model m[] = {
		M("u1", NONE, -1, -1), M("h1", HIGH, -1, -1), M("z", MICRO, -1, -1), M("h2", HIGH, -1, -1),
		M("u2", 42, -1, -1), M("c", CRITICAL, -1, -1), M("l", LOW, -1, -1),
	};
	char *p = classifier_prompt(NULL, 0, m, 7);
	ck_assert_ptr_nonnull(strstr(p, MODELS_HEAD "\n- z [micro]\n- l [low]\n- h1 [high]\n- h2 [high]\n- c [critical]\n"
				      "- u1\n- u2\n\n## Response"));
	free(p);
}
END_TEST

START_TEST(prompt_twenty_models)
{
	struct route_model m[30];
	char ids[30][8];
	for (int i = 0; i < 30; i++) {
		snprintf(ids[i], sizeof ids[i], "m%02d", i);
		/* m00..m09 untiered, m10..m29 tiered from critical down: the 20 tiered ones are kept */
		struct route_model x = M(ids[i], i < 10 ? NONE : CRITICAL - (i - 10) % 8, -1, -1);
		m[i] = x;
	}
	char *p = classifier_prompt(NULL, 0, m, 30);
	ck_assert_uint_eq(count_lines_starting(p, "- m"), CLASSIFIER_MAX_MODELS);
	ck_assert_ptr_null(strstr(p, "- m00"));
	ck_assert_ptr_null(strstr(p, "- m09"));
	ck_assert_ptr_nonnull(strstr(p, "Pick the best one for this request as \"recommended_model\":\n- m17 [micro]\n- m25 [micro]\n"));
	free(p);
}
END_TEST

START_TEST(prompt_category_bounds)
{
	/* 500 categories, each with 50 examples of 500 characters */
	static struct route_category cats[500];
	static char keys[500][16];
	char *big = repeat("\xC3\xA9", 500);
	const char *ex[51];
	for (int i = 0; i < 50; i++)
		ex[i] = big;
	ex[50] = NULL;
	for (int i = 0; i < 500; i++) {
		snprintf(keys[i], sizeof keys[i], "cat_%03d", i);
		cats[i] = (struct route_category){ .key = keys[i], .tier = i % 8, .examples = ex, .nexamples = 50,
						   .system_prompt = "", .default_model = "" };
	}
	char *p = classifier_prompt(cats, 500, NULL, 0);
	ck_assert_uint_eq(count_lines_starting(p, "- cat_"), CLASSIFIER_MAX_CATEGORIES);
	ck_assert_ptr_null(strstr(p, "cat_200"));
	ck_assert(strlen(p) < 200 * (CLASSIFIER_MAX_EXAMPLES_CHARS * 2 + 100) + 2000);
	size_t ncp;
	ck_assert(utf8_ok(p, &ncp));
	/* one line: the examples stop at their budget, each cut example ends in "…" */
	const char *l = strstr(p, "- cat_005 [high]");
	ck_assert_ptr_nonnull(l);
	const char *e = strchr(l, '\n');
	char line[8192];
	snprintf(line, sizeof line, "%.*s", (int)(e - l), l);
	ck_assert(utf8_ok(line, &ncp));
	ck_assert(ncp <= 40 + CLASSIFIER_MAX_EXAMPLES_CHARS + 2 * CLASSIFIER_MAX_EXAMPLES);
	ck_assert_ptr_nonnull(strstr(line, "\xE2\x80\xA6, "));
	ck_assert_ptr_nonnull(strstr(p, TAIL));
	free(p);
	free(big);
}
END_TEST

START_TEST(prompt_bad_keys_and_examples)
{
	char longkey[100];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	const char *const ex[] = { "line one\nline two", "", "tab\there", NULL };
	const struct route_category cats[] = {
		{ .key = "a\nb", .tier = LOW }, { .key = "", .tier = LOW }, { .key = NULL, .tier = LOW },
		{ .key = longkey, .tier = LOW }, { .key = "ok", .tier = 99, .examples = ex, .nexamples = 3 },
	};
	char *p = classifier_prompt(cats, 5, NULL, 0);
	ck_assert_str_eq(p, INTRO "\n\n## Categories\n- ok \xE2\x80\x94 Examples: line one line two, tab here" TAIL);
	free(p);
}
END_TEST

/* --- the context ----------------------------------------------------------------------------------------- */

static void
sig(struct route_signals *s, const char *system_prompt, const char *summary)
{
	memset(s, 0, sizeof *s);
	snprintf(s->system_prompt, sizeof s->system_prompt, "%s", system_prompt);
	snprintf(s->summary, sizeof s->summary, "%s", summary);
}

static const struct {
	const char *name, *system, *summary, *messages;
	long window;
	enum ruleset_ctx_strategy strategy;
	const char *hint, *want;
} context_cases[] = {
	{ "basic", "You are helpful", "tokens\xE2\x89\x88" "12",
	  "[{\"role\":\"system\",\"content\":\"ignored\"},{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"assistant\",\"content\":\"hello\"},{\"role\":\"user\",\"content\":\"bye\"}]",
	  0, RS_CTX_TRUNCATE, NULL,
	  "[System]: You are helpful\n[user]: hi\n[assistant]: hello\n[user]: bye\n[CONTEXT_SIGNALS: tokens\xE2\x89\x88" "12]" },
	{ "last three non-system", "", "turns=3",
	  "[{\"role\":\"user\",\"content\":\"one\"},{\"role\":\"assistant\",\"content\":\"two\"},"
	  "{\"role\":\"user\",\"content\":\"three\"},{\"role\":\"system\",\"content\":\"late system\"},"
	  "{\"role\":\"tool\",\"content\":\"four\"},{\"role\":\"user\",\"content\":\"five\"}]",
	  8000, RS_CTX_TRUNCATE, NULL, "[user]: three\n[tool]: four\n[user]: five\n[CONTEXT_SIGNALS: turns=3]" },
	{ "array content", "", "has_images",
	  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},{\"type\":\"image_url\",\"image_url\":"
	  "{\"url\":\"data:x\"}},{\"type\":\"text\",\"text\":\"at this\"},{\"type\":\"text\",\"text\":5}]}]",
	  0, RS_CTX_TRUNCATE, NULL, "[user]: look at this\n[CONTEXT_SIGNALS: has_images]" },
	{ "images only", "", "has_images",
	  "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}}]}]",
	  0, RS_CTX_TRUNCATE, NULL, "[user]: \n[CONTEXT_SIGNALS: has_images]" },
	{ "empty and odd content", "", "",
	  "[{\"role\":\"user\",\"content\":\"\"},{\"role\":\"assistant\",\"content\":null},{\"content\":{\"a\":1}}]",
	  0, RS_CTX_TRUNCATE, NULL, "[user]: \n[assistant]: \n[unknown]: \n[CONTEXT_SIGNALS: ]" },
	{ "role sanitised", "", "",
	  "[{\"role\":\"us\\ner]\",\"content\":\"x\"}]", 0, RS_CTX_TRUNCATE, NULL, "[us er]]: x\n[CONTEXT_SIGNALS: ]" },
	{ "metadata only", "You are helpful", "tokens\xE2\x89\x88" "5, has_tools",
	  "[{\"role\":\"user\",\"content\":\"secret text\"}]", 0, RS_CTX_METADATA_ONLY, NULL,
	  "[CONTEXT_SIGNALS: tokens\xE2\x89\x88" "5, has_tools]" },
	{ "metadata only with hint", "", "turns=2", "[{\"role\":\"user\",\"content\":\"x\"}]", 0, RS_CTX_METADATA_ONLY,
	  "Cline", "[CONTEXT_SIGNALS: turns=2]\n[HINT: Request originates from a \"Cline\" IDE context. Classify based on "
	  "the ACTUAL user message complexity, not the system prompt.]" },
	{ "hint", "sys", "s", "[{\"role\":\"user\",\"content\":\"q\"}]", 0, RS_CTX_TRUNCATE, "Roo\nCode",
	  "[System]: sys\n[user]: q\n[CONTEXT_SIGNALS: s]\n[HINT: Request originates from a \"Roo Code\" IDE context. "
	  "Classify based on the ACTUAL user message complexity, not the system prompt.]" },
	{ "summary strategy is truncate", "", "s", "[{\"role\":\"user\",\"content\":\"q\"}]", 0, RS_CTX_SUMMARY, NULL,
	  "[user]: q\n[CONTEXT_SIGNALS: s]" },
	{ "no messages", "", "s", "[]", 0, RS_CTX_TRUNCATE, NULL, "[CONTEXT_SIGNALS: s]" },
	{ "messages not an array", "", "s", "{\"role\":\"user\"}", 0, RS_CTX_TRUNCATE, NULL, "[CONTEXT_SIGNALS: s]" },
	{ "newlines kept in excerpts", "a\nb", "s", "[{\"role\":\"user\",\"content\":\"c\\nd\"}]", 0, RS_CTX_TRUNCATE, NULL,
	  "[System]: a\nb\n[user]: c\nd\n[CONTEXT_SIGNALS: s]" },
};

START_TEST(context_table)
{
	struct route_signals s;
	sig(&s, context_cases[_i].system, context_cases[_i].summary);
	json_t *m = J(context_cases[_i].messages);
	char *c = classifier_context(&s, m, context_cases[_i].window, context_cases[_i].strategy, context_cases[_i].hint);
	ck_assert_msg(strcmp(c, context_cases[_i].want) == 0, "%s:\n got: %s\nwant: %s", context_cases[_i].name, c,
		      context_cases[_i].want);
	free(c);
	json_decref(m);
}
END_TEST

START_TEST(context_null_signals)
{
	char *c = classifier_context(NULL, NULL, 0, RS_CTX_TRUNCATE, NULL);
	ck_assert_str_eq(c, "[CONTEXT_SIGNALS: ]");
	free(c);
}
END_TEST

/* limit = max(1000, window - 2000) tokens; a message gets (limit - used) * 3.5 code points. */
START_TEST(context_budget)
{
	struct route_signals s;
	sig(&s, "", "s");
	char *x = repeat("x", 3000), *y = repeat("y", 1000);
	json_t *m = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "role", "user", "content", x, "role", "assistant",
			      "content", y, "role", "user", "content", "dropped");
	/* window 2500 -> the 1000-token floor: x (3000 < 3500) whole, costing 858 tokens; y gets (1000 - 858) * 3.5 =
	 * 497 code points and uses the rest; "dropped" has no budget left */
	ck_assert_int_eq(tokens_estimate_text(x, 3000), 858);
	char *c = classifier_context(&s, m, 2500, RS_CTX_TRUNCATE, NULL);
	char *want = malloc(5000);
	snprintf(want, 5000, "[user]: %s\n[assistant]: %.497s\xE2\x80\xA6\n[CONTEXT_SIGNALS: s]", x, y);
	ck_assert_msg(strcmp(c, want) == 0, "got %zu bytes, want %zu: ...%s", strlen(c), strlen(want),
		      strlen(c) > 80 ? c + strlen(c) - 80 : c);
	free(c);
	/* a larger window shows everything */
	c = classifier_context(&s, m, 10000, RS_CTX_TRUNCATE, NULL);
	snprintf(want, 5000, "[user]: %s\n[assistant]: %s\n[user]: dropped\n[CONTEXT_SIGNALS: s]", x, y);
	ck_assert_msg(strcmp(c, want) == 0, "got %zu bytes, want %zu: ...%s", strlen(c), strlen(want),
		      strlen(c) > 80 ? c + strlen(c) - 80 : c);
	free(c);
	free(want);
	free(x);
	free(y);
	json_decref(m);
}
END_TEST

START_TEST(context_budget_after_system)
{
	/* the system part is counted: 1000 code points of prose (plus the "[System]: " prefix) leave less */
	struct route_signals s;
	char *sys = repeat("a", ROUTE_SYSTEM_CHARS);
	sig(&s, sys, "s");
	char *u = repeat("u", 4000);
	json_t *m = json_pack("[{s:s,s:s}]", "role", "user", "content", u);
	char *c = classifier_context(&s, m, 0, RS_CTX_TRUNCATE, NULL);
	ck_assert_ptr_nonnull(strstr(c, u));      /* 128000 tokens: nothing cut */
	free(c);
	c = classifier_context(&s, m, 1, RS_CTX_TRUNCATE, NULL);
	char prefix[64];
	snprintf(prefix, sizeof prefix, "[System]: %.20s", sys);
	ck_assert_ptr_eq(strstr(c, prefix), c);
	ck_assert_ptr_eq(strstr(c, sys), c + strlen("[System]: "));     /* the system part is whole */
	ck_assert_int_eq(c[strlen("[System]: ") + ROUTE_SYSTEM_CHARS], '\n');
	long used = tokens_estimate_text(c, strlen("[System]: ") + ROUTE_SYSTEM_CHARS);
	const char *ue = strstr(c, "[user]: ");
	ck_assert_ptr_nonnull(ue);
	size_t nu = strspn(ue + 8, "u");
	ck_assert_uint_eq(nu, (size_t)((1000 - used) * 7 / 2));
	ck_assert_ptr_eq(strstr(ue, "\xE2\x80\xA6\n[CONTEXT_SIGNALS: s]"), ue + 8 + nu);
	free(c);
	json_decref(m);
	free(u);
	free(sys);
}
END_TEST

static const struct {
	const char *unit;    /* one code point */
	size_t bytes;
} unicode_cases[] = {
	{ "\xC3\xA9", 2 },            /* é */
	{ "\xE2\x82\xAC", 3 },        /* € */
	{ "\xF0\x9F\x98\x80", 4 },    /* 😀 (two UTF-16 units: the original cut it in half) */
	{ "z", 1 },
};

START_TEST(context_unicode_cut)
{
	struct route_signals s;
	sig(&s, "", "");
	char *text = repeat(unicode_cases[_i].unit, 5000);
	json_t *m = json_pack("[{s:s,s:s}]", "role", "user", "content", text);
	/* 1000 tokens: 3500 code points whatever their size */
	char *c = classifier_context(&s, m, 1000, RS_CTX_TRUNCATE, NULL);
	size_t ncp;
	ck_assert(utf8_ok(c, &ncp));
	const char *body = c + strlen("[user]: ");
	size_t n = 0;
	while (strncmp(body + n * unicode_cases[_i].bytes, unicode_cases[_i].unit, unicode_cases[_i].bytes) == 0)
		n++;
	ck_assert_uint_eq(n, 3500);
	ck_assert_str_eq(body + n * unicode_cases[_i].bytes, "\xE2\x80\xA6\n[CONTEXT_SIGNALS: ]");
	free(c);
	json_decref(m);
	free(text);
}
END_TEST

START_TEST(context_invalid_utf8)
{
	struct route_signals s;
	sig(&s, "", "ok");
	/* strings that did not come through the parser: an invalid byte, a cut sequence, a surrogate, an
	 * overlong form, and an embedded NUL */
	json_t *m = json_array();
	json_t *msg = json_object();
	json_object_set_new(msg, "role", json_string("user"));
	json_object_set_new(msg, "content", json_stringn_nocheck("a\xFF" "b\xED\xA0\x80" "c\xC0\xAF" "d\0e\xE2\x82", 14));
	json_array_append_new(m, msg);
	char *c = classifier_context(&s, m, 0, RS_CTX_TRUNCATE, NULL);
	ck_assert(utf8_ok(c, NULL));
	ck_assert_str_eq(c, "[user]: a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD"
			 "d e\xEF\xBF\xBD\xEF\xBF\xBD\n[CONTEXT_SIGNALS: ok]");
	free(c);
	json_decref(m);
}
END_TEST

START_TEST(context_huge_bounded)
{
	/* three 2 MiB messages and a 10M-token window: the excerpts stop at CLASSIFIER_MAX_CONTEXT_CHARS */
	struct route_signals s;
	sig(&s, "", "s");
	char *big = repeat("\xE2\x82\xAC", 700000);
	json_t *m = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "role", "user", "content", big, "role", "assistant",
			      "content", big, "role", "user", "content", big);
	char *c = classifier_context(&s, m, 10000000, RS_CTX_TRUNCATE, NULL);
	size_t ncp;
	ck_assert(utf8_ok(c, &ncp));
	ck_assert(strlen(c) <= (size_t)CLASSIFIER_MAX_CONTEXT_BYTES);
	ck_assert_uint_le(ncp, CLASSIFIER_MAX_CONTEXT_CHARS + 100);
	ck_assert_uint_ge(ncp, CLASSIFIER_MAX_CONTEXT_CHARS);
	/* the oldest of the three takes the whole bound; the others no longer fit */
	ck_assert_uint_eq(count_lines_starting(c, "[user]: "), 1);
	ck_assert_uint_eq(count_lines_starting(c, "[assistant]: "), 0);
	free(c);
	/* an array of many text blocks is bounded the same way */
	json_t *blocks = json_array();
	for (int i = 0; i < 2000; i++)
		json_array_append_new(blocks, json_pack("{s:s,s:s}", "type", "text", "text", "0123456789012345678901234567890123456789"
												"0123456789012345678901234567890123456789"));
	json_t *m2 = json_pack("[{s:s,s:o}]", "role", "user", "content", blocks);
	c = classifier_context(&s, m2, 0, RS_CTX_TRUNCATE, NULL);
	ck_assert(utf8_ok(c, &ncp));
	ck_assert_uint_le(ncp, CLASSIFIER_MAX_CONTEXT_CHARS + 100);
	ck_assert_ptr_nonnull(strstr(c, "\xE2\x80\xA6\n[CONTEXT_SIGNALS: s]"));
	free(c);
	json_decref(m2);
	json_decref(m);
	free(big);
}
END_TEST

/* --- the answer ------------------------------------------------------------------------------------------ */

static const struct route_category parse_cats[] = {
	{ .key = "coding_simple", .tier = LOW },
	{ .key = "smalltalk", .tier = NONE },
	{ .key = "analysis_complex", .tier = ADVANCED },
};
static const struct route_model parse_models[] = { M("gpt-4o", MEDIUM, 2.5, 10), M("small-model", LOW, -1, -1) };

#define GOOD "{\"category\":\"coding_simple\",\"confidence\":0.8,\"cost_tier\":\"medium\"}"

static const struct {
	const char *name, *content;
	const char *why;          /* NULL: parses */
	const char *category;
	int tier;
	double confidence;
} parse_cases[] = {
	{ "bare", GOOD, NULL, "coding_simple", MEDIUM, 0.8 },
	{ "fenced json", "```json\n" GOOD "\n```", NULL, "coding_simple", MEDIUM, 0.8 },
	{ "fenced JSON", "```JSON " GOOD "```", NULL, "coding_simple", MEDIUM, 0.8 },
	{ "fenced plain", "Here:\n```\n" GOOD "\n```\nDone {not json}", NULL, "coding_simple", MEDIUM, 0.8 },
	{ "prose around", "Sure! The answer is " GOOD " -- hope that helps.", NULL, "coding_simple", MEDIUM, 0.8 },
	{ "whitespace", "  \n\t" GOOD "\n\n", NULL, "coding_simple", MEDIUM, 0.8 },
	{ "not json", "I think this is coding.", "invalid_json", NULL, NONE, 0 },
	{ "empty", "", "invalid_json", NULL, NONE, 0 },
	{ "an array", "[\"coding_simple\"]", "invalid_json", NULL, NONE, 0 },
	{ "two objects", "{\"category\":\"smalltalk\"} and {\"category\":\"smalltalk\"}", "invalid_json", NULL, NONE, 0 },
	{ "unclosed fence, bad json", "```json\n{\"category\":", "invalid_json", NULL, NONE, 0 },
	{ "empty object", "{}", "missing_category", NULL, NONE, 0 },
	{ "null category", "{\"category\":null,\"cost_tier\":\"low\"}", "missing_category", NULL, NONE, 0 },
	{ "empty category", "{\"category\":\"\",\"cost_tier\":\"low\"}", "missing_category", NULL, NONE, 0 },
	{ "unknown category", "{\"category\":\"poetry\",\"cost_tier\":\"low\"}", "unknown_category:poetry", NULL, NONE, 0 },
	{ "category case", "{\"category\":\"Coding_Simple\",\"cost_tier\":\"low\"}", "unknown_category:Coding_Simple", NULL,
	  NONE, 0 },
	{ "numeric category", "{\"category\":5,\"cost_tier\":\"low\"}", "unknown_category:5", NULL, NONE, 0 },
	{ "category with newline", "{\"category\":\"a\\nb\"}", "unknown_category:a b", NULL, NONE, 0 },
	{ "premium tier", "{\"category\":\"coding_simple\",\"cost_tier\":\"premium\"}", "unknown_tier:premium", NULL, NONE, 0 },
	{ "tier case", "{\"category\":\"coding_simple\",\"cost_tier\":\"High\"}", "unknown_tier:High", NULL, NONE, 0 },
	{ "numeric tier", "{\"category\":\"coding_simple\",\"cost_tier\":3}", "unknown_tier:3", NULL, NONE, 0 },
	{ "tier from category", "{\"category\":\"analysis_complex\",\"confidence\":0.7}", NULL, "analysis_complex",
	  ADVANCED, 0.7 },
	{ "null tier from category", "{\"category\":\"coding_simple\",\"cost_tier\":null}", NULL, "coding_simple", LOW, 0.5 },
	{ "missing tier", "{\"category\":\"smalltalk\",\"confidence\":0.9}", "missing_tier", NULL, NONE, 0 },
	{ "every tier name", "{\"category\":\"smalltalk\",\"cost_tier\":\"critical\"}", NULL, "smalltalk", CRITICAL, 0.5 },
	{ "confidence 1.5", "{\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"confidence\":1.5}", "invalid_confidence",
	  NULL, NONE, 0 },
	{ "negative confidence", "{\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"confidence\":-0.1}",
	  "invalid_confidence", NULL, NONE, 0 },
	{ "string confidence", "{\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"confidence\":\"0.9\"}",
	  "invalid_confidence", NULL, NONE, 0 },
	{ "integer confidence", "{\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"confidence\":1}", NULL, "smalltalk", LOW,
	  1.0 },
	{ "zero confidence", "{\"category\":\"smalltalk\",\"cost_tier\":\"micro\",\"confidence\":0}", NULL, "smalltalk",
	  MICRO, 0.0 },
};

START_TEST(parse_table)
{
	struct classifier_answer a;
	char why[128] = "stale";
	enum prism_err rc = classifier_parse(parse_cases[_i].content, parse_cats, 3, parse_models, 2, &a, why, sizeof why);
	if (!parse_cases[_i].why) {
		ck_assert_msg(rc == PRISM_OK, "%s: %s", parse_cases[_i].name, why);
		ck_assert_str_eq(why, "");
		ck_assert_str_eq(a.category, parse_cases[_i].category);
		ck_assert_int_eq(a.tier, parse_cases[_i].tier);
		ck_assert_double_eq_tol(a.confidence, parse_cases[_i].confidence, 1e-12);
	} else {
		ck_assert_msg(rc == PRISM_E_BAD_REQUEST, "%s: parsed", parse_cases[_i].name);
		ck_assert_msg(strcmp(why, parse_cases[_i].why) == 0, "%s: why '%s'", parse_cases[_i].name, why);
		ck_assert_str_eq(a.category, "");
		ck_assert_int_eq(a.tier, ROUTE_TIER_NONE);
	}
}
END_TEST

START_TEST(parse_null_and_long_why)
{
	struct classifier_answer a;
	char why[128];
	ck_assert_int_eq(classifier_parse(NULL, parse_cats, 3, NULL, 0, &a, why, sizeof why), PRISM_E_BAD_REQUEST);
	ck_assert_str_eq(why, "invalid_json");
	/* no categories at all: nothing is known */
	ck_assert_int_eq(classifier_parse(GOOD, NULL, 0, NULL, 0, &a, why, sizeof why), PRISM_E_BAD_REQUEST);
	ck_assert_str_eq(why, "unknown_category:coding_simple");
	/* the model's value is quoted bounded and whole characters only */
	char *k = repeat("\xE2\x82\xAC", 100);
	char content[1024];
	snprintf(content, sizeof content, "{\"category\":\"%s\"}", k);
	ck_assert_int_eq(classifier_parse(content, parse_cats, 3, NULL, 0, &a, why, sizeof why), PRISM_E_BAD_REQUEST);
	ck_assert(strncmp(why, "unknown_category:\xE2\x82\xAC", 20) == 0);
	ck_assert(utf8_ok(why, NULL));
	ck_assert_uint_le(strlen(why), strlen("unknown_category:") + 64);
	/* a tiny why buffer is never overrun */
	char tiny[8];
	ck_assert_int_eq(classifier_parse(content, parse_cats, 3, NULL, 0, &a, tiny, sizeof tiny), PRISM_E_BAD_REQUEST);
	ck_assert_str_eq(tiny, "unknown");
	ck_assert_int_eq(classifier_parse(GOOD, parse_cats, 3, NULL, 0, &a, NULL, 0), PRISM_OK);
	free(k);
}
END_TEST

START_TEST(parse_full_answer)
{
	struct classifier_answer a;
	char why[64];
	const char *c = "```json\n{\"category\":\"analysis_complex\",\"confidence\":0.92,\"complexity\":\"complex\","
			"\"has_image\":true,\"language\":\"de\",\"estimated_output_length\":\"long\",\"domain\":\"finance\","
			"\"conversation_turn\":4,\"user_frustration_signal\":true,\"cost_tier\":\"high\","
			"\"recommended_model\":\"gpt-4o\",\"reasoning\":\"A multi-step analysis.\"}\n```";
	ck_assert_int_eq(classifier_parse(c, parse_cats, 3, parse_models, 2, &a, why, sizeof why), PRISM_OK);
	ck_assert_str_eq(a.category, "analysis_complex");
	ck_assert_int_eq(a.tier, HIGH);     /* the classifier's tier, not the category's */
	ck_assert_double_eq(a.confidence, 0.92);
	ck_assert_str_eq(a.complexity, "complex");
	ck_assert(a.has_image);
	ck_assert_str_eq(a.language, "de");
	ck_assert_str_eq(a.output_length, "long");
	ck_assert_str_eq(a.domain, "finance");
	ck_assert_int_eq(a.conversation_turn, 4);
	ck_assert(a.frustration);
	ck_assert_str_eq(a.recommended, "gpt-4o");
	ck_assert_str_eq(a.reasoning, "A multi-step analysis.");
}
END_TEST

/* Fields that are present but wrong fall back to their defaults; the verdict still parses. */
static const struct {
	const char *fields;
	const char *complexity, *language, *length, *domain, *recommended;
	int turn;
	bool image, frustration;
} field_cases[] = {
	{ "", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"complexity\":5,\"language\":7,\"estimated_output_length\":true,\"domain\":123", "medium", "en", "medium", "", "",
	  0, false, false },
	{ ",\"complexity\":\"hard\",\"language\":\"\",\"estimated_output_length\":\"huge\",\"domain\":null", "medium", "en",
	  "medium", "", "", 0, false, false },
	{ ",\"complexity\":\"Simple\",\"language\":\"a-very-long-language-tag\"", "medium", "en", "medium", "", "", 0, false,
	  false },
	{ ",\"complexity\":\"simple\",\"language\":\"other\",\"estimated_output_length\":\"short\",\"domain\":\"legal\"",
	  "simple", "other", "short", "legal", "", 0, false, false },
	{ ",\"language\":\"e\\nn\",\"domain\":\"a\\u0000b\"", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"domain\":\"" "0123456789012345678901234567890123456789012345678901234567890123" "\"", "medium", "en",
	  "medium", "", "", 0, false, false },
	{ ",\"conversation_turn\":\"3\"", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"conversation_turn\":-2", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"conversation_turn\":2.5", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"conversation_turn\":99999999999", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"conversation_turn\":7", "medium", "en", "medium", "", "", 7, false, false },
	{ ",\"has_image\":\"true\",\"user_frustration_signal\":1", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"has_image\":true,\"user_frustration_signal\":false", "medium", "en", "medium", "", "", 0, true, false },
	{ ",\"recommended_model\":\"gpt-5\"", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"recommended_model\":\"null\"", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"recommended_model\":null", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"recommended_model\":\"GPT-4O\"", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"recommended_model\":[\"gpt-4o\"]", "medium", "en", "medium", "", "", 0, false, false },
	{ ",\"recommended_model\":\"small-model\"", "medium", "en", "medium", "", "small-model", 0, false, false },
};

START_TEST(parse_fields)
{
	struct classifier_answer a;
	char why[64], content[512];
	snprintf(content, sizeof content, "{\"category\":\"smalltalk\",\"cost_tier\":\"low\"%s}", field_cases[_i].fields);
	ck_assert_msg(classifier_parse(content, parse_cats, 3, parse_models, 2, &a, why, sizeof why) == PRISM_OK, "%s: %s",
		      content, why);
	ck_assert_str_eq(a.complexity, field_cases[_i].complexity);
	ck_assert_str_eq(a.language, field_cases[_i].language);
	ck_assert_str_eq(a.output_length, field_cases[_i].length);
	ck_assert_str_eq(a.domain, field_cases[_i].domain);
	ck_assert_str_eq(a.recommended, field_cases[_i].recommended);
	ck_assert_int_eq(a.conversation_turn, field_cases[_i].turn);
	ck_assert(a.has_image == field_cases[_i].image);
	ck_assert(a.frustration == field_cases[_i].frustration);
	ck_assert_str_eq(a.reasoning, "");
}
END_TEST

START_TEST(parse_reasoning_cut)
{
	struct classifier_answer a;
	char why[64];
	char *r = repeat("\xF0\x9F\x98\x80", 400);     /* 1600 bytes */
	char *content = malloc(4096);
	snprintf(content, 4096, "{\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"reasoning\":\"line\\n%s\"}", r);
	ck_assert_int_eq(classifier_parse(content, parse_cats, 3, NULL, 0, &a, why, sizeof why), PRISM_OK);
	size_t ncp;
	ck_assert(utf8_ok(a.reasoning, &ncp));
	ck_assert_uint_eq(strlen(a.reasoning), 5 + 126 * 4);     /* "line " and as many whole emoji as fit 511 */
	ck_assert(strncmp(a.reasoning, "line \xF0\x9F\x98\x80", 9) == 0);
	/* a non-string reasoning is "" */
	ck_assert_int_eq(classifier_parse("{\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"reasoning\":{}}", parse_cats,
					  3, NULL, 0, &a, why, sizeof why), PRISM_OK);
	ck_assert_str_eq(a.reasoning, "");
	free(content);
	free(r);
}
END_TEST

/* --- configured ------------------------------------------------------------------------------------------ */

#define PA "65a1b2c3d4e5f60718293a01"
#define PB "65a1b2c3d4e5f60718293a02"
#define PX "65a1b2c3d4e5f60718293a09"

static const struct {
	const char *tenant;
	bool want;
} configured_cases[] = {
	{ "{}", false },
	{ "{\"routing\":{}}", false },
	{ "{\"routing\":{\"classifierProvider\":\"" PA "\"}}", false },
	{ "{\"routing\":{\"classifierModel\":\"m\"}}", false },
	{ "{\"routing\":{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"m\"}}", true },
	{ "{\"routing\":{\"classifierProvider\":\"" PB "\",\"classifierModel\":\"m\"}}", true },
	{ "{\"routing\":{\"classifierProvider\":\"" PX "\",\"classifierModel\":\"m\"}}", false },   /* not the tenant's */
	{ "{\"routing\":{\"classifierProvider\":\"\",\"classifierModel\":\"m\"}}", false },
	{ "{\"routing\":{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"\"}}", false },
	{ "{\"routing\":{\"classifierProvider\":{\"$oid\":\"" PA "\"},\"classifierModel\":\"m\"}}", false },
	{ "{\"routing\":{\"classifierProvider\":\"" PA "\",\"classifierModel\":null}}", false },
	{ "{\"routing\":[1]}", false },
};

START_TEST(configured_table)
{
	json_t *t = J(configured_cases[_i].tenant);
	json_t *tprov = J("[{\"_id\":\"" PA "\",\"name\":\"A\"},{\"_id\":\"" PB "\",\"name\":\"B\"},{\"name\":\"no id\"}]");
	ck_assert_msg(classifier_configured(t, tprov) == configured_cases[_i].want, "%s", configured_cases[_i].tenant);
	ck_assert(!classifier_configured(t, NULL));
	json_decref(tprov);
	json_decref(t);
}
END_TEST

/* --- the call, against the fake upstream --------------------------------------------------------------- */

#define KEY "sk-classifier-test-0123456789"

static struct fake_up up;
static int up_port;
static const char *rec_path = up.record;

static void
up_setup(void)
{
	fake_up_start(&up, "check_classifier", KEY, (const char *const[]){ "--slow-ms", "3000", NULL });
	up_port = up.port;
}

static void
up_teardown(void)
{
	fake_up_stop(&up);
}

/* Two providers of the tenant on the fake (A openai with prices for gpt-4o-mini, B vllm), one provider X on
 * the fake that is NOT the tenant's, and one azure provider (no adapter yet). */
static json_t *
tenant_providers(json_t **all)
{
	char text[4096];
	snprintf(text, sizeof text,
		 "[{\"_id\":\"" PA "\",\"name\":\"Alpha\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"http://127.0.0.1:%d\","
		 "\"auth\":{\"type\":\"api_key\",\"apiKey\":\"" KEY "\"}},\"discoveredModels\":[{\"id\":\"gpt-4o-mini\","
		 "\"inputPer1M\":1,\"outputPer1M\":2}]},"
		 "{\"_id\":\"" PB "\",\"name\":\"Beta\",\"type\":\"vllm\",\"config\":{\"baseUrl\":\"http://127.0.0.1:%d/\","
		 "\"auth\":{\"type\":\"bearer\",\"apiKey\":\"" KEY "\"}}},"
		 "{\"_id\":\"65a1b2c3d4e5f60718293a0a\",\"name\":\"Azure\",\"type\":\"azure\",\"config\":{}}]",
		 up_port, up_port);
	json_t *t = J(text);
	snprintf(text, sizeof text,
		 "{\"_id\":\"" PX "\",\"name\":\"Stranger\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"http://127.0.0.1:%d\","
		 "\"auth\":{\"apiKey\":\"" KEY "\"}}}", up_port);
	if (all) {
		*all = json_deep_copy(t);
		json_array_append_new(*all, J(text));
	}
	return t;
}

static struct config *
test_config(void)
{
	struct buf err;
	buf_init(&err, 1024);
	struct config *cfg = config_load(NULL, NULL, &err);
	ck_assert_msg(cfg != NULL, "%s", buf_cstr(&err));
	buf_free(&err);
	return cfg;
}

/* The models the fake was asked for, in order, by requests whose user message contains marker; also
 * checks every such request's shape. */
static json_t *
calls(const char *marker)
{
	json_t *out = json_array();
	FILE *f = fopen(rec_path, "r");
	if (!f)
		return out;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		json_t *r = json_loads(line, 0, NULL);
		const char *bt = json_string_value(json_object_get(r, "body"));
		json_t *b = bt ? json_loads(bt, 0, NULL) : NULL;
		const json_t *msgs = json_object_get(b, "messages");
		const char *u = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
		if (u && strstr(u, marker)) {
			json_array_append(out, json_object_get(b, "model"));
			ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "headers"), "authorization")),
					 "Bearer " KEY);
			ck_assert_uint_eq(json_array_size(msgs), 2);
			ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
			ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "content")), "SYSTEM PROMPT");
			ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 1), "role")), "user");
			ck_assert(json_is_number(json_object_get(b, "temperature")) &&
				  json_number_value(json_object_get(b, "temperature")) == 0);
			ck_assert_int_eq(json_integer_value(json_object_get(b, "max_tokens")), 512);
			ck_assert(json_is_false(json_object_get(b, "stream")));
		}
		json_decref(b);
		json_decref(r);
	}
	free(line);
	fclose(f);
	return out;
}

static void
assert_calls(const char *marker, const char *const *models)
{
	json_t *c = calls(marker);
	size_t n = 0;
	while (models[n])
		n++;
	char *d = json_dumps(c, 0);
	ck_assert_msg(json_array_size(c) == n, "%s: calls %s", marker, d);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(json_string_value(json_array_get(c, i)), models[i]) == 0, "%s: calls %s", marker, d);
	free(d);
	json_decref(c);
}

struct call_run {
	struct classifier_outcome out;
	char context[256];
};

/* Runs the chain of the tenant routing (JSON of the "routing" member) with the user context
 * "ECHO <marker> <json>": the fake echoes the last user message, so the reply is the context. */
static void
run(struct call_run *cr, const char *routing, const char *marker, long timeout_ms, bool (*is_open)(void *, const char *),
    void *arg)
{
	char text[2048];
	snprintf(text, sizeof text, "{\"slug\":\"t\",\"routing\":%s}", routing);
	json_t *tenant = J(text);
	json_t *tprov = tenant_providers(NULL);
	struct config *cfg = test_config();
	snprintf(cr->context, sizeof cr->context, "%s {\"category\":\"smalltalk\",\"cost_tier\":\"low\",\"confidence\":0.9}",
		 marker);
	struct classifier_request rq = {
		.cfg = cfg, .tenant_doc = tenant, .tprov = tprov, .system_prompt = "SYSTEM PROMPT",
		.user_context = cr->context, .timeout_ms = timeout_ms, .is_open = is_open, .open_arg = arg,
	};
	classifier_call(&rq, &cr->out);
	config_release(cfg);
	json_decref(tprov);
	json_decref(tenant);
}

START_TEST(call_good_answer)
{
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"gpt-4o-mini\"}", "good-1", 0, NULL, NULL);
	ck_assert_msg(cr.out.ok, "%s", cr.out.error);
	ck_assert_str_eq(cr.out.error, "");
	ck_assert_str_eq(cr.out.content, cr.context);
	ck_assert_str_eq(cr.out.model, "gpt-4o-mini");
	ck_assert_str_eq(cr.out.provider_id, PA);
	ck_assert_int_eq(cr.out.attempts, 1);
	ck_assert_int_gt(cr.out.input_tokens, 0);
	ck_assert_int_gt(cr.out.output_tokens, 0);
	/* the provider's price: $1 and $2 per 1M tokens = 1 and 2 micro-dollars per token */
	ck_assert_int_eq(cr.out.cost_micro, cr.out.input_tokens + 2 * cr.out.output_tokens);
	ck_assert_int_ge(cr.out.elapsed_ms, 0);
	ck_assert_int_lt(cr.out.elapsed_ms, 3000);
	/* the reply (prose around the JSON) parses */
	struct classifier_answer a;
	char why[64];
	ck_assert_int_eq(classifier_parse(cr.out.content, parse_cats, 3, NULL, 0, &a, why, sizeof why), PRISM_OK);
	ck_assert_str_eq(a.category, "smalltalk");
	ck_assert_int_eq(a.tier, LOW);
	assert_calls("good-1", (const char *const[]){ "gpt-4o-mini", NULL });
	classifier_outcome_free(&cr.out);
	ck_assert_ptr_null(cr.out.content);
	classifier_outcome_free(&cr.out);
}
END_TEST

START_TEST(call_tenant_pricing)
{
	/* the tenant's price wins over the provider's; a model without any price costs 0 */
	struct call_run cr;
	char text[1024];
	snprintf(text, sizeof text, "{\"slug\":\"t\",\"pricing\":{\"gpt-4o-mini\":{\"input\":10,\"output\":20}},"
		 "\"routing\":{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"gpt-4o-mini\"}}");
	json_t *tenant = J(text);
	json_t *tprov = tenant_providers(NULL);
	struct config *cfg = test_config();
	struct classifier_request rq = { .cfg = cfg, .tenant_doc = tenant, .tprov = tprov, .system_prompt = "SYSTEM PROMPT",
					 .user_context = "price-1 {}" };
	classifier_call(&rq, &cr.out);
	ck_assert(cr.out.ok);
	ck_assert_int_eq(cr.out.cost_micro, 10 * cr.out.input_tokens + 20 * cr.out.output_tokens);
	classifier_outcome_free(&cr.out);
	config_release(cfg);
	json_decref(tprov);
	json_decref(tenant);
}
END_TEST

START_TEST(call_timeout)
{
	/* fake-slow answers after 3 s; the deadline is 600 ms for the whole chain: the fallback is not tried */
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"fake-slow\",\"classifierFallbacks\":["
		 "{\"provider\":\"" PB "\",\"model\":\"gpt-4o-mini\"}]}", "slow-1", 600, NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_ptr_null(cr.out.content);
	ck_assert_str_eq(cr.out.error, "timeout");
	ck_assert_int_eq(cr.out.attempts, 1);
	ck_assert_str_eq(cr.out.model, "fake-slow");
	ck_assert_msg(cr.out.elapsed_ms >= 550 && cr.out.elapsed_ms <= 800, "elapsed %lld ms", (long long)cr.out.elapsed_ms);
	ck_assert_int_eq(cr.out.cost_micro, 0);
	assert_calls("slow-1", (const char *const[]){ "fake-slow", NULL });
	classifier_outcome_free(&cr.out);
}
END_TEST

START_TEST(call_deadline_too_short)
{
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"gpt-4o-mini\"}", "short-1", 30, NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_str_eq(cr.out.error, "timeout");
	ck_assert_int_eq(cr.out.attempts, 0);
	assert_calls("short-1", (const char *const[]){ NULL });
}
END_TEST

START_TEST(call_failover)
{
	/* 500 on the classifier: the fallback (another provider of the tenant) answers */
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"fake-500\",\"classifierFallbacks\":["
		 "{\"provider\":\"" PB "\"},{\"model\":\"x\"},{\"provider\":\"" PB "\",\"model\":\"gpt-4o-mini\"}]}",
	    "failover-1", 0, NULL, NULL);
	ck_assert_msg(cr.out.ok, "%s", cr.out.error);
	ck_assert_str_eq(cr.out.error, "");
	ck_assert_str_eq(cr.out.content, cr.context);
	ck_assert_str_eq(cr.out.model, "gpt-4o-mini");
	ck_assert_str_eq(cr.out.provider_id, PB);
	ck_assert_int_eq(cr.out.attempts, 2);
	assert_calls("failover-1", (const char *const[]){ "fake-500", "gpt-4o-mini", NULL });
	classifier_outcome_free(&cr.out);
}
END_TEST

START_TEST(call_fallback_cap)
{
	/* three usable fallbacks: only CLASSIFIER_MAX_FALLBACKS (2) are tried */
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"fake-500\",\"classifierFallbacks\":["
		 "{\"provider\":\"" PA "\",\"model\":\"fake-429\"},{\"provider\":\"" PB "\",\"model\":\"fake-502html\"},"
		 "{\"provider\":\"" PB "\",\"model\":\"gpt-4o-mini\"}]}", "cap-1", 0, NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_int_eq(cr.out.attempts, 3);
	ck_assert_str_eq(cr.out.model, "fake-502html");
	ck_assert_msg(strncmp(cr.out.error, "provider_error: ", 16) == 0 && strlen(cr.out.error) > 16, "%s", cr.out.error);
	ck_assert_ptr_null(strstr(cr.out.error, KEY));
	assert_calls("cap-1", (const char *const[]){ "fake-500", "fake-429", "fake-502html", NULL });
}
END_TEST

START_TEST(call_not_of_tenant)
{
	/* X is a provider on the same fake, but not the tenant's: never called; the fallback answers */
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PX "\",\"classifierModel\":\"stranger-model\",\"classifierFallbacks\":["
		 "{\"provider\":\"" PX "\",\"model\":\"stranger-model-2\"},{\"provider\":\"" PA "\",\"model\":\"gpt-4o-mini\"}]}",
	    "stranger-1", 0, NULL, NULL);
	ck_assert_msg(cr.out.ok, "%s", cr.out.error);
	ck_assert_int_eq(cr.out.attempts, 1);
	ck_assert_str_eq(cr.out.provider_id, PA);
	assert_calls("stranger-1", (const char *const[]){ "gpt-4o-mini", NULL });
	classifier_outcome_free(&cr.out);
	/* alone: not configured for classifier_configured, and classifier_call refuses it */
	run(&cr, "{\"classifierProvider\":\"" PX "\",\"classifierModel\":\"stranger-model\"}", "stranger-2", 0, NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_str_eq(cr.out.error, "classifier_provider_not_of_tenant");
	ck_assert_int_eq(cr.out.attempts, 0);
	assert_calls("stranger-2", (const char *const[]){ NULL });
	json_t *all, *tprov = tenant_providers(&all);
	json_t *t = J("{\"routing\":{\"classifierProvider\":\"" PX "\",\"classifierModel\":\"stranger-model\"}}");
	ck_assert(!classifier_configured(t, tprov));
	ck_assert(classifier_configured(t, all));     /* it does exist: only the tenant check refuses it */
	json_decref(t);
	json_decref(all);
	json_decref(tprov);
}
END_TEST

static char pa_id[] = PA;

static bool
open_for(void *arg, const char *provider_id)
{
	return strcmp(provider_id, (const char *)arg) == 0;
}

START_TEST(call_circuit_open)
{
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"gpt-4o-mini\"}", "open-1", 0, open_for, pa_id);
	ck_assert(!cr.out.ok);
	ck_assert_str_eq(cr.out.error, "circuit_open");
	ck_assert_int_eq(cr.out.attempts, 0);
	assert_calls("open-1", (const char *const[]){ NULL });
	/* with a fallback on a closed breaker */
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"gpt-4o-mini\",\"classifierFallbacks\":["
		 "{\"provider\":\"" PB "\",\"model\":\"fake-echo\"}]}", "open-2", 0, open_for, pa_id);
	ck_assert_msg(cr.out.ok, "%s", cr.out.error);
	ck_assert_str_eq(cr.out.model, "fake-echo");
	assert_calls("open-2", (const char *const[]){ "fake-echo", NULL });
	classifier_outcome_free(&cr.out);
}
END_TEST

START_TEST(call_not_configured_and_unsupported)
{
	struct call_run cr;
	run(&cr, "{\"classifierModel\":\"gpt-4o-mini\",\"classifierFallbacks\":[{\"provider\":\"" PA "\",\"model\":\"m\"}]}",
	    "none-1", 0, NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_str_eq(cr.out.error, "classifier_not_configured");
	ck_assert_int_eq(cr.out.attempts, 0);
	assert_calls("none-1", (const char *const[]){ NULL });
	/* an azure provider has no adapter yet: skipped, not called */
	run(&cr, "{\"classifierProvider\":\"65a1b2c3d4e5f60718293a0a\",\"classifierModel\":\"gpt-4o-mini\"}", "azure-1", 0,
	    NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_int_eq(cr.out.attempts, 0);
	ck_assert_str_eq(cr.out.error, "provider_error: provider type 'azure' is not supported");
}
END_TEST

START_TEST(call_error_reply)
{
	/* an error inside a 200 answer, and an answer whose reply is not JSON: the chain reports them */
	struct call_run cr;
	run(&cr, "{\"classifierProvider\":\"" PA "\",\"classifierModel\":\"fake-200error\"}", "err-1", 0, NULL, NULL);
	ck_assert(!cr.out.ok);
	ck_assert_ptr_null(cr.out.content);
	ck_assert_msg(strncmp(cr.out.error, "provider_error: ", 16) == 0, "%s", cr.out.error);
	classifier_outcome_free(&cr.out);
}
END_TEST

static Suite *
classifier_suite(void)
{
	Suite *s = suite_create("classifier");
	TCase *tc = tcase_create("prompt");
	tcase_add_test(tc, prompt_exact);
	tcase_add_test(tc, prompt_without_models);
	tcase_add_test(tc, prompt_empty);
	tcase_add_loop_test(tc, prompt_price_format, 0, sizeof price_cases / sizeof price_cases[0]);
	tcase_add_test(tc, prompt_price_only_when_both_known);
	tcase_add_test(tc, prompt_dedupe_first_wins);
	tcase_add_test(tc, prompt_tier_order_stable);
	tcase_add_test(tc, prompt_twenty_models);
	tcase_add_test(tc, prompt_category_bounds);
	tcase_add_test(tc, prompt_bad_keys_and_examples);
	suite_add_tcase(s, tc);

	tc = tcase_create("context");
	tcase_add_loop_test(tc, context_table, 0, sizeof context_cases / sizeof context_cases[0]);
	tcase_add_test(tc, context_null_signals);
	tcase_add_test(tc, context_budget);
	tcase_add_test(tc, context_budget_after_system);
	tcase_add_loop_test(tc, context_unicode_cut, 0, sizeof unicode_cases / sizeof unicode_cases[0]);
	tcase_add_test(tc, context_invalid_utf8);
	tcase_add_test(tc, context_huge_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, parse_table, 0, sizeof parse_cases / sizeof parse_cases[0]);
	tcase_add_test(tc, parse_null_and_long_why);
	tcase_add_test(tc, parse_full_answer);
	tcase_add_loop_test(tc, parse_fields, 0, sizeof field_cases / sizeof field_cases[0]);
	tcase_add_test(tc, parse_reasoning_cut);
	tcase_add_loop_test(tc, configured_table, 0, sizeof configured_cases / sizeof configured_cases[0]);
	suite_add_tcase(s, tc);

	tc = tcase_create("call");
	tcase_add_unchecked_fixture(tc, up_setup, up_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, call_good_answer);
	tcase_add_test(tc, call_tenant_pricing);
	tcase_add_test(tc, call_timeout);
	tcase_add_test(tc, call_deadline_too_short);
	tcase_add_test(tc, call_failover);
	tcase_add_test(tc, call_fallback_cap);
	tcase_add_test(tc, call_not_of_tenant);
	tcase_add_test(tc, call_circuit_open);
	tcase_add_test(tc, call_not_configured_and_unsupported);
	tcase_add_test(tc, call_error_reply);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(classifier_suite)
