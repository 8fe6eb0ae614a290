/* check_jtext.c -- jtext writes what json_dumps(JSON_COMPACT) writes for the same members: strings byte for
 * byte (over random strings of every byte), integers, booleans, nesting, and reals that read back as the
 * same doubles; bytes that are not UTF-8 become U+FFFD, and the text is always one line jansson accepts. */
#include "config.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_main.h"
#include "util/jtext.h"

/* json_dumps of t, compact (a new string). */
static char *
dumps(json_t *t)
{
	char *s = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(t);
	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(same_as_dumps)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	struct jtext w;
	jtext_init(&w, &b);
	jtext_open(&w, NULL);
	jtext_str(&w, "s", "a\"b\\c/d\n\r\t\b\f\x01\x1f\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	jtext_str(&w, "empty", "");
	jtext_str(&w, "nul", NULL);
	jtext_int(&w, "i", INT64_MIN);
	jtext_int(&w, "j", INT64_MAX);
	jtext_bool(&w, "t", true);
	jtext_bool(&w, "f", false);
	jtext_open_array(&w, "a");
	jtext_open(&w, NULL);
	jtext_int(&w, "k", 1);
	jtext_close(&w);
	jtext_open(&w, NULL);
	jtext_close(&w);
	jtext_open_array(&w, NULL);
	jtext_close_array(&w);
	jtext_str(&w, NULL, "x");
	jtext_close_array(&w);
	jtext_open(&w, "o");
	json_t *m = json_pack("[i,i]", 1, 2);
	jtext_value(&w, "m", m);
	json_decref(m);
	jtext_open(&w, "n");
	jtext_close(&w);
	jtext_int(&w, "after", 2);
	jtext_close(&w);
	jtext_close(&w);
	ck_assert_int_eq(w.err, PRISM_OK);

	json_t *o = json_object();
	json_object_set_new(o, "s", json_string("a\"b\\c/d\n\r\t\b\f\x01\x1f\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
	json_object_set_new(o, "empty", json_string(""));
	json_object_set_new(o, "nul", json_null());
	json_object_set_new(o, "i", json_integer(INT64_MIN));
	json_object_set_new(o, "j", json_integer(INT64_MAX));
	json_object_set_new(o, "t", json_true());
	json_object_set_new(o, "f", json_false());
	json_object_set_new(o, "a", json_pack("[{s:i}, {}, [], s]", "k", 1, "x"));
	json_object_set_new(o, "o", json_pack("{s:[i,i], s:{}, s:i}", "m", 1, 2, "n", "after", 2));
	char *want = dumps(o);
	ck_assert_str_eq(b.data, want);
	free(want);
	buf_free(&b);
}
END_TEST

/* Random strings of any bytes: valid UTF-8 comes out as json_dumps writes it; any other byte as U+FFFD,
 * and the whole is one line that jansson reads back. */
START_TEST(random_strings)
{
	srand(7);
	struct buf b;
	buf_init(&b, 1 << 20);
	int valid_seen = 0, invalid_seen = 0;
	for (int round = 0; round < 20000; round++) {
		unsigned char s[40];
		size_t n = (size_t)(rand() % 39);
		for (size_t i = 0; i < n; i++) {
			int r = rand() % 10;
			/* mostly text, some control bytes, some parts of (possibly broken) sequences */
			s[i] = (unsigned char)(r < 5 ? 0x20 + rand() % 0x5f : r < 6 ? 1 + rand() % 0x1f
					       : r < 8 ? 0x80 + rand() % 0x40 : 0xc2 + rand() % 0x33);
		}
		s[n] = '\0';
		buf_reset(&b);
		struct jtext w;
		jtext_init(&w, &b);
		jtext_str(&w, NULL, (const char *)s);
		ck_assert_int_eq(w.err, PRISM_OK);
		ck_assert_ptr_null(memchr(b.data, '\n', b.len));
		json_error_t e;
		json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY, &e);
		ck_assert_msg(back != NULL, "not JSON: %s (%s)", b.data, e.text);
		json_t *str = json_string((const char *)s);
		if (str) {
			valid_seen++;
			char *want = dumps(str);
			ck_assert_str_eq(b.data, want);
			free(want);
			ck_assert_str_eq(json_string_value(back), (const char *)s);
		} else {
			invalid_seen++;
			ck_assert_ptr_nonnull(strstr(json_string_value(back), "\xEF\xBF\xBD"));
		}
		json_decref(back);
	}
	ck_assert_int_gt(valid_seen, 1000);
	ck_assert_int_gt(invalid_seen, 1000);
	buf_free(&b);
}
END_TEST

static const double reals[] = { 0.0, -0.0, 1.0, -2.0, 0.1, 1e-7, 1.5e-300, 123456789012345678.0, 1e22, 1e300,
				DBL_MAX, DBL_MIN, 4.9e-324, 0.000123, 2.5, 1.0 / 3.0 };

/* Reals: the same text as json_dumps (it writes 17 digits too), so they read back as the same doubles. */
START_TEST(reals_read_back)
{
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
		buf_reset(&b);
		struct jtext w;
		jtext_init(&w, &b);
		jtext_real(&w, NULL, reals[i]);
		char *want = dumps(json_real(reals[i]));
		ck_assert_str_eq(b.data, want);
		free(want);
		json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
		ck_assert(json_is_real(back));
		ck_assert(json_real_value(back) == reals[i]);
		json_decref(back);
	}
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {   /* fewer digits, as the answers have */
		buf_reset(&b);
		struct jtext w;
		jtext_init(&w, &b);
		w.precision = 15;
		jtext_real(&w, NULL, reals[i]);
		json_t *r = json_real(reals[i]);
		char *want = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
		json_decref(r);
		ck_assert_str_eq(b.data, want);
		free(want);
	}
	srand(11);
	for (int round = 0; round < 20000; round++) {
		uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
		double d;
		memcpy(&d, &bits, sizeof d);
		buf_reset(&b);
		struct jtext w;
		jtext_init(&w, &b);
		jtext_real(&w, NULL, d);
		if (!isfinite(d)) {
			ck_assert_str_eq(b.data, "null");
			continue;
		}
		json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
		ck_assert_msg(json_is_real(back), "%s", b.data);
		ck_assert(json_real_value(back) == d);
		json_decref(back);
	}
	buf_free(&b);
}
END_TEST

/* Members added to an object already written, after members or none. */
START_TEST(resume)
{
	struct buf b;
	buf_init(&b, 4096);
	const char *cases[][2] = { { "{\"a\":1", "{\"a\":1,\"r\":[1,{\"x\":null}],\"n\":2}" },
				   { "{", "{\"r\":[1,{\"x\":null}],\"n\":2}" } };
	for (int i = 0; i < 2; i++) {
		buf_reset(&b);
		buf_puts(&b, cases[i][0]);
		struct jtext w;
		jtext_resume(&w, &b, i == 0);
		json_t *r = json_pack("[i,{s:n}]", 1, "x");
		jtext_value(&w, "r", r);
		json_decref(r);
		jtext_int(&w, "n", 2);
		ck_assert_int_eq(w.err, PRISM_OK);
		buf_puts(&b, "}");
		ck_assert_str_eq(b.data, cases[i][1]);
	}
	buf_free(&b);
}
END_TEST

/* Millionths as a decimal: the double read back is (double)micro / 1e6, over random and edge amounts. */
START_TEST(micros_read_back)
{
	static const int64_t edge[] = { 0, 1, -1, 10, 999999, 1000000, 1000001, -1000000, 123456789, 100000,
					(1LL << 53) - 1, -((1LL << 53) - 1) };
	struct buf b;
	buf_init(&b, 4096);
	srand(13);
	for (int round = 0; round < 200000; round++) {
		int64_t m = round < (int)(sizeof edge / sizeof edge[0]) ? edge[round]
			    : (((int64_t)rand() << 22) ^ rand()) % ((round % 3 == 0) ? (1LL << 53) : 100000000);
		if (round % 7 == 0)
			m = -m;
		buf_reset(&b);
		struct jtext w;
		jtext_init(&w, &b);
		jtext_micros(&w, NULL, m);
		json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
		ck_assert_msg(json_is_real(back), "%s", b.data);
		ck_assert_msg(json_real_value(back) == (double)m / 1e6, "%lld -> %s", (long long)m, b.data);
		json_decref(back);
	}
	buf_reset(&b);
	struct jtext w;
	jtext_init(&w, &b);
	jtext_open(&w, NULL);
	jtext_micros(&w, "a", 2000000);
	jtext_micros(&w, "b", 120);
	jtext_micros(&w, "c", -1500000);
	jtext_close(&w);
	ck_assert_str_eq(b.data, "{\"a\":2.0,\"b\":0.00012,\"c\":-1.5}");
	buf_free(&b);
}
END_TEST

/* A random tree: nested objects and arrays of strings (any UTF-8, escapes, NUL), integers, reals, booleans
 * and nulls. */
static json_t *
random_tree(int depth)
{
	static const char *const texts[] = { "", "a", "\"q\"", "back\\slash", "tab\tnl\n", "\x01\x1f", "caf\xc3\xa9",
					     "\xe2\x82\xac\xf0\x9f\x98\x80", "/", "<think>", "\x7f" };
	int r = rand() % (depth > 0 ? 10 : 7);
	switch (r) {
	case 0: return json_string(texts[rand() % (int)(sizeof texts / sizeof texts[0])]);
	case 1: return json_stringn("a\0b", 3);
	case 2: return json_integer(((json_int_t)rand() << 33) ^ rand() ^ (rand() % 2 ? INT64_MIN : 0));
	case 3: return json_real(((double)rand() - RAND_MAX / 2) / (1 + rand() % 100000) * (rand() % 2 ? 1e-9 : 1e12));
	case 4: return json_boolean(rand() % 2);
	case 5: return json_null();
	case 6: return json_integer(rand() % 100);
	case 7: case 8: {
		json_t *o = json_object();
		for (int i = rand() % 5; i > 0; i--) {
			char k[16];
			snprintf(k, sizeof k, "k%d\"%c", rand() % 50, i % 2 ? 'x' : '\n');
			json_object_set_new(o, k, random_tree(depth - 1));
		}
		return o;
	}
	default: {
		json_t *a = json_array();
		for (int i = rand() % 5; i > 0; i--)
			json_array_append_new(a, random_tree(depth - 1));
		return a;
	}
	}
}

/* Trees as json_dumps writes them, byte for byte, at both precisions the gateway uses; deeper than
 * JTEXT_MAX_DEPTH, json_dumps writes them itself. */
START_TEST(trees_as_dumps)
{
	srand(17);
	for (int round = 0; round < 20000; round++) {
		json_t *t = random_tree(1 + round % 6);
		int prec = round % 2 ? 15 : 17;
		size_t len = 0;
		char *got = jtext_dump(t, prec, &len);
		char *want = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
		ck_assert_ptr_nonnull(got);
		ck_assert_ptr_nonnull(want);
		ck_assert_msg(strcmp(got, want) == 0, "%s\n!=\n%s", got, want);
		ck_assert_uint_eq(len, strlen(want));
		free(got);
		free(want);
		json_decref(t);
	}
	json_t *deep = json_array(), *in = deep;
	for (int i = 0; i < JTEXT_MAX_DEPTH + 10; i++) {
		json_t *a = json_array();
		json_array_append_new(in, a);
		in = a;
	}
	json_array_append_new(in, json_string("bottom"));
	char *got = jtext_dump(deep, 17, NULL), *want = json_dumps(deep, JSON_COMPACT);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	json_decref(deep);
}
END_TEST

/* The buffer's maximum: the error is kept and nothing more is written. */
START_TEST(too_large)
{
	struct buf b;
	buf_init(&b, 16);
	struct jtext w;
	jtext_init(&w, &b);
	jtext_open(&w, NULL);
	jtext_str(&w, "k", "0123456789abcdef");
	ck_assert_int_eq(w.err, PRISM_E_TOO_LARGE);
	size_t len = b.len;
	jtext_int(&w, "n", 1);
	jtext_close(&w);
	ck_assert_uint_eq(b.len, len);
	buf_free(&b);
	/* nesting beyond JTEXT_MAX_DEPTH */
	buf_init(&b, 4096);
	jtext_init(&w, &b);
	for (int i = 0; i < JTEXT_MAX_DEPTH + 2; i++)
		jtext_open_array(&w, NULL);
	ck_assert_int_eq(w.err, PRISM_E_TOO_LARGE);
	buf_free(&b);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("jtext");
	TCase *tc = tcase_create("jtext");
	tcase_add_test(tc, same_as_dumps);
	tcase_add_test(tc, random_strings);
	tcase_add_test(tc, reals_read_back);
	tcase_add_test(tc, micros_read_back);
	tcase_add_test(tc, resume);
	tcase_add_test(tc, trees_as_dumps);
	tcase_add_test(tc, too_large);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)
