/* check_jscan.c -- jscan_answer: what it accepts and reads, what it leaves to jansson, and, over a few
 * hundred thousand mutations of real answers, that every text it accepts is one jansson accepts and reads
 * the same: the usage, the finish_reason, the absence of an error and of the gateway's own members, and
 * reasoning wherever the tree shows some. */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_main.h"
#include "util/jscan.h"

static bool
scan(const char *text, struct jscan_answer *a)
{
	return jscan_answer(text, strlen(text), a);
}

START_TEST(accepted)
{
	struct jscan_answer a;
	const char *openai = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
			     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi \\u00e9 \\ud83d\\ude00 "
			     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"refusal\":null},\"logprobs\":null,"
			     "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":16,"
			     "\"total_tokens\":33,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"error\":null}";
	ck_assert(scan(openai, &a));
	ck_assert(a.usage_reported);
	ck_assert_int_eq(a.prompt_tokens, 17);
	ck_assert_int_eq(a.completion_tokens, 16);
	ck_assert_str_eq(a.finish_reason, "stop");
	ck_assert(!a.reasoning);
	ck_assert(!a.empty);
	ck_assert_uint_eq(a.close_at, strlen(openai) - 1);

	/* Pretty-printed, trailing blanks: the brace is found where it is. */
	const char *pretty = " {\n  \"usage\" : { \"completion_tokens\" : 3 } ,\n"
			     "  \"x\" : [ 1.5e-3 , -0 , true , false ]\n}\n\t ";
	ck_assert(scan(pretty, &a));
	ck_assert_int_eq(pretty[a.close_at], '}');
	ck_assert(a.usage_reported);
	ck_assert_int_eq(a.prompt_tokens, 0);
	ck_assert_int_eq(a.completion_tokens, 3);

	ck_assert(scan("{}", &a));
	ck_assert(a.empty);
	ck_assert_uint_eq(a.close_at, 1);
	ck_assert(!a.usage_reported);

	/* The last of two members of one name counts, as in the tree. */
	ck_assert(scan("{\"usage\":{\"prompt_tokens\":5},\"usage\":null}", &a));
	ck_assert(!a.usage_reported);
	ck_assert(scan("{\"usage\":{\"prompt_tokens\":5,\"prompt_tokens\":\"x\",\"completion_tokens\":2}}", &a));
	ck_assert(a.usage_reported);
	ck_assert_int_eq(a.prompt_tokens, 0);
	ck_assert_int_eq(a.completion_tokens, 2);
	ck_assert(scan("{\"usage\":{\"prompt_tokens\":1.0}}", &a));   /* a real is no count */
	ck_assert(!a.usage_reported);
	ck_assert(scan("{\"usage\":{\"prompt_tokens\":-4,\"completion_tokens\":123456789012}}", &a));
	ck_assert_int_eq(a.prompt_tokens, 0);
	ck_assert_int_eq(a.completion_tokens, 1000000000);

	/* finish_reason: the last non-empty one of the last choices, sanitised. */
	ck_assert(scan("{\"choices\":[{\"finish_reason\":\"length\"},{\"finish_reason\":null},"
		       "{\"finish_reason\":\"to ol_calls!\"},{\"finish_reason\":\"\"}]}", &a));
	ck_assert_str_eq(a.finish_reason, "tool_calls");
	ck_assert(scan("{\"choices\":[{\"finish_reason\":\"stop\"}],\"choices\":[{\"x\":1}]}", &a));
	ck_assert_str_eq(a.finish_reason, "");

	/* What stripping thinking looks at. */
	static const char *const thinking[] = {
		"{\"choices\":[{\"message\":{\"content\":\"<think>x</think>y\"}}]}",
		"{\"choices\":[{\"message\":{\"content\":\"a\",\"reasoning_content\":\"b\"}}]}",
		"{\"choices\":[{\"message\":{\"reasoning\":null}}]}",
		"{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"t\"}]}}]}",
		"{\"choices\":[{\"message\":{\"content\":\"\\u003cthink>x\"}}]}",
	};
	for (size_t i = 0; i < sizeof thinking / sizeof thinking[0]; i++) {
		ck_assert_msg(scan(thinking[i], &a), "%s", thinking[i]);
		ck_assert_msg(a.reasoning, "%s", thinking[i]);
	}
}
END_TEST

/* Texts left to jansson: not JSON, not an object, an error, the gateway's members, or what jscan is not sure
 * of. */
static const char *const refused[] = {
	"", "   ", "[]", "\"s\"", "1", "null", "{", "{\"a\":1", "{\"a\":1}x", "{\"a\":1}{}", "{\"a\" 1}", "{a:1}",
	"{\"a\":1,}", "{,\"a\":1}", "{\"a\":[1,]}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}",
	"{\"a\":+1}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":NaN}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
	"{\"a\":\"\\u0000\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800\\u0041\"}",
	"{\"a\":\"\x01\"}", "{\"a\":\"\n\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
	"{\"a\":\"\xf5\x80\x80\x80\"}",
	"{\"a\":\"\xe2\x82\"}", "{\"a\":\"\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"unterminated}",
	"{\"a\":1234567890123456789}", "{\"a\":1e400}", "{\"a\":1e-400}",
	"{\"error\":{\"message\":\"x\"}}", "{\"error\":\"x\"}", "{\"error\":false}",
	"{\"cost_info\":{}}", "{\"session_id\":\"s\"}", "{\"auto_routing\":1}", "{\"context_fallback\":null}",
	"{\"us\\u0061ge\":{}}", "{\"choices\":[{\"finish_reason\":\"st\\u006fp\"}]}", "\xef\xbb\xbf{}",
};

START_TEST(left_to_jansson)
{
	struct jscan_answer a;
	ck_assert_msg(!jscan_answer(refused[_i], strlen(refused[_i]), &a), "accepted: %s", refused[_i]);
	/* With a NUL inside, at any place. */
	ck_assert(!jscan_answer("{\"a\":\"x\0y\"}", 11, &a));
	ck_assert(!jscan_answer("{\"a\":1}\0", 8, &a));
}
END_TEST

START_TEST(depth)
{
	char deep[512];
	size_t n = 0;
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"a\":");
	deep[n++] = '1';
	for (int i = 0; i < 70; i++)
		deep[n++] = '}';
	deep[n] = '\0';
	struct jscan_answer a;
	ck_assert(!jscan_answer(deep, n, &a));
	ck_assert(scan("{\"a\":[[[[[[[[[[{\"b\":[1]}]]]]]]]]]]}", &a));
}
END_TEST

/* --- the differential check ---------------------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned
next(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* The tree's view, as the gateway reads it (take_usage, take_finish, relay_strip_completion's targets). */
static long
count_of(const json_t *v)
{
	json_int_t n = json_integer_value(v);
	return n < 0 ? 0 : n > 1000000000 ? 1000000000 : (long)n;
}

static bool
tree_reasoning(const json_t *v)
{
	if (json_is_string(v))
		return strstr(json_string_value(v), "<think") != NULL;
	const char *k;
	json_t *m;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m) {
			if (!strcmp(k, "reasoning_content") || !strcmp(k, "reasoning") ||
			    (!strcmp(k, "content") && json_is_array(m)) || tree_reasoning(m))
				return true;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (tree_reasoning(m))
				return true;
	}
	return false;
}

static void
compare(const char *text, size_t len)
{
	struct jscan_answer a;
	if (!jscan_answer(text, len, &a))
		return;
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	ck_assert_msg(json_is_object(root), "jscan accepted what jansson refuses (%s): %.*s", je.text, (int)len, text);
	ck_assert_int_eq(text[a.close_at], '}');
	ck_assert(a.empty == (json_object_size(root) == 0));
	const json_t *err = json_object_get(root, "error");
	ck_assert(!err || json_is_null(err));
	ck_assert_ptr_null(json_object_get(root, "cost_info"));
	ck_assert_ptr_null(json_object_get(root, "session_id"));
	const json_t *u = json_object_get(root, "usage");
	const json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
	bool reported = json_is_object(u) && (json_is_integer(p) || json_is_integer(c));
	ck_assert_msg(a.usage_reported == reported, "usage: %.*s", (int)len, text);
	if (reported) {
		ck_assert_int_eq(a.prompt_tokens, json_is_integer(p) ? count_of(p) : 0);
		ck_assert_int_eq(a.completion_tokens, json_is_integer(c) ? count_of(c) : 0);
	}
	char fin[32] = "";
	size_t i;
	const json_t *ch;
	json_array_foreach(json_object_get(root, "choices"), i, ch) {
		const char *f = json_string_value(json_object_get(ch, "finish_reason"));
		if (!f || !*f)
			continue;
		size_t o = 0;
		for (; *f && o + 1 < sizeof fin; f++)
			if ((*f >= 'a' && *f <= 'z') || (*f >= 'A' && *f <= 'Z') || (*f >= '0' && *f <= '9') || *f == '_' ||
			    *f == '-')
				fin[o++] = *f;
		fin[o] = '\0';
	}
	ck_assert_msg(strcmp(a.finish_reason, fin) == 0, "finish '%s' vs '%s': %.*s", a.finish_reason, fin, (int)len,
		      text);
	if (tree_reasoning(root))
		ck_assert_msg(a.reasoning, "reasoning missed: %.*s", (int)len, text);
	json_decref(root);
}

START_TEST(same_as_jansson)
{
	static const char *const seeds[] = {
		"{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		"\"content\":\"hello <b>world</b> \\\"q\\\" \\u00e9\\ud83d\\ude00 \xc3\xa9\"},\"finish_reason\":\"stop\"}],"
		"\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":16,\"total_tokens\":33}}",
		"{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.1,-2.5e-3,3E+2,0,-0.0]}],"
		"\"model\":\"e\",\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}",
		"{\"choices\":[{\"text\":\"x\",\"finish_reason\":\"length\"},{\"text\":\"y\",\"finish_reason\":\"stop\"}],"
		"\"usage\":{\"completion_tokens\":9},\"error\":null,\"x\":[true,false,null,{}]}",
		"{\"choices\":[{\"message\":{\"content\":\"<think>a</think>b\",\"reasoning_content\":\"r\"},"
		"\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
	};
	static const char pool[] = "{}[]\",:\\u0123456789.eE+-tfnrl aA\x80\xc3\xa9\xed\xf0\x01";
	char buf[1024];
	long taken = 0;
	for (int iter = 0; iter < 200000; iter++) {
		const char *seed = seeds[next(sizeof seeds / sizeof seeds[0])];
		size_t n = strlen(seed);
		memcpy(buf, seed, n);
		int edits = 1 + (int)next(3);
		for (int e = 0; e < edits; e++) {
			unsigned at = next((unsigned)n + 1), kind = next(3);
			char ch = pool[next(sizeof pool - 1)];
			if (kind == 0 && at < n) {
				buf[at] = ch;
			} else if (kind == 1 && n + 1 < sizeof buf) {
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = ch;
				n++;
			} else if (at < n) {
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
		}
		struct jscan_answer a;
		if (jscan_answer(buf, n, &a))
			taken++;
		compare(buf, n);
	}
	/* Every seed as it is, too. */
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
		compare(seeds[i], strlen(seeds[i]));
	ck_assert_int_gt(taken, 1000);         /* the mutations do reach accepted texts */
}
END_TEST

static Suite *
jscan_suite(void)
{
	Suite *s = suite_create("jscan");
	TCase *tc = tcase_create("jscan");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, accepted);
	tcase_add_loop_test(tc, left_to_jansson, 0, sizeof refused / sizeof refused[0]);
	tcase_add_test(tc, depth);
	tcase_add_test(tc, same_as_jansson);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(jscan_suite)
