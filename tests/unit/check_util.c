/* check_util.c -- err, buf, parse, netaddr, clock, rand, log scrubbing. */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "check_main.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/parse.h"
#include "util/rand.h"

START_TEST(err_table_complete)
{
	/* Every code up to the last has a distinct description, a status and a stable code. */
	for (int e = PRISM_OK; e <= PRISM_E_SETUP_REQUIRED; e++) {
		ck_assert_str_ne(prism_strerror((enum prism_err)e), "unknown error");
		int st = prism_err_http_status((enum prism_err)e);
		ck_assert_int_ge(st, 200);
		ck_assert_int_le(st, 599);
		ck_assert_ptr_nonnull(prism_err_code((enum prism_err)e));
		ck_assert_str_ne(prism_http_reason(st), "Unknown");
	}
	ck_assert_int_eq(prism_err_http_status(PRISM_E_BAD_JSON), 400);
	ck_assert_int_eq(prism_err_http_status(PRISM_E_TOO_LARGE), 413);
	ck_assert_int_eq(prism_err_http_status(PRISM_E_METHOD), 405);
	ck_assert_int_eq(prism_err_http_status(PRISM_E_NOT_FOUND), 404);
	ck_assert_str_eq(prism_err_openai_type(PRISM_E_RATE_LIMITED), "rate_limit_error");
}
END_TEST

START_TEST(buf_bounds)
{
	struct buf b;
	buf_init(&b, 10);
	ck_assert_int_eq(buf_puts(&b, "12345"), PRISM_OK);
	ck_assert_int_eq(buf_puts(&b, "67890"), PRISM_OK);
	ck_assert_int_eq(buf_puts(&b, "x"), PRISM_E_TOO_LARGE);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(buf_cstr(&b), "1234567890");
	buf_reset(&b);
	ck_assert_int_eq(buf_printf(&b, "%d-%s", 42, "ab"), PRISM_OK);
	ck_assert_str_eq(buf_cstr(&b), "42-ab");
	ck_assert_int_eq(buf_printf(&b, "%s", "too long for it"), PRISM_E_TOO_LARGE);
	ck_assert_str_eq(buf_cstr(&b), "42-ab");
	size_t len;
	char *p = buf_take(&b, &len);
	ck_assert_str_eq(p, "42-ab");
	ck_assert_uint_eq(len, 5);
	ck_assert_ptr_null(b.data);
	free(p);
	buf_free(&b);
	/* printf into the room there is, and past it: the same text either way */
	buf_init(&b, 100000);
	ck_assert_int_eq(buf_printf(&b, "%s", "a"), PRISM_OK);
	size_t cap = b.cap;
	char big[3000];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(buf_printf(&b, "%zu:%s", sizeof big - 1, big), PRISM_OK);
	ck_assert_uint_gt(b.cap, cap);
	ck_assert_uint_eq(b.len, 1 + 5 + sizeof big - 1);
	ck_assert_int_eq(strncmp(b.data, "a2999:yyy", 9), 0);
	ck_assert_int_eq(b.data[b.len - 1], 'y');
	buf_free(&b);
	buf_init(&b, 300000);
	for (int i = 0; i < 20000; i++)
		ck_assert_int_eq(buf_printf(&b, "%d,", i % 10), PRISM_OK);
	ck_assert_uint_eq(b.len, 40000);
	ck_assert_int_eq(memcmp(b.data + 39996, "8,9,", 4), 0);
	buf_free(&b);
	/* the room is larger than the maximum: the maximum still holds, and the text is unchanged */
	buf_init(&b, 8);
	ck_assert_int_eq(buf_puts(&b, "abc"), PRISM_OK);
	ck_assert_uint_gt(b.cap, 8);
	ck_assert_int_eq(buf_printf(&b, "%s", "defghi"), PRISM_E_TOO_LARGE);
	ck_assert_str_eq(buf_cstr(&b), "abc");
	ck_assert_int_eq(buf_printf(&b, "%s", "defgh"), PRISM_OK);
	ck_assert_str_eq(buf_cstr(&b), "abcdefgh");
	buf_free(&b);
	/* huge append lengths must not overflow the bound check */
	buf_init(&b, 100);
	ck_assert_int_eq(buf_append(&b, "x", (size_t)-1), PRISM_E_TOO_LARGE);
	buf_free(&b);
}
END_TEST

static const struct {
	const char *in;
	long min, max;
	int ok;
	long want;
} long_cases[] = {
	{ "0", 0, 10, 1, 0 },         { "10", 0, 10, 1, 10 },        { "11", 0, 10, 0, 0 },
	{ "-1", 0, 10, 0, 0 },        { "-5", -10, 10, 1, -5 },      { "", 0, 10, 0, 0 },
	{ " 1", 0, 10, 0, 0 },        { "1 ", 0, 10, 0, 0 },         { "1x", 0, 10, 0, 0 },
	{ "+3", 0, 10, 1, 3 },        { "-", -1, 1, 0, 0 },          { "0x10", 0, 100, 0, 0 },
	{ "99999999999999999999", 0, LONG_MAX, 0, 0 },               { "9223372036854775807", 0, LONG_MAX, 1, LONG_MAX },
};

START_TEST(parse_long_table)
{
	long v = -777;
	int r = parse_long(long_cases[_i].in, long_cases[_i].min, long_cases[_i].max, &v) == PRISM_OK;
	ck_assert_msg(r == long_cases[_i].ok, "parse_long(\"%s\")", long_cases[_i].in);
	if (r)
		ck_assert_int_eq(v, long_cases[_i].want);
	else
		ck_assert_int_eq(v, -777);
}
END_TEST

START_TEST(parse_units)
{
	long v;
	ck_assert_int_eq(parse_size("4m", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 4 * 1024 * 1024);
	ck_assert_int_eq(parse_size("512K", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 512 * 1024);
	ck_assert_int_eq(parse_size("100", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 100);
	ck_assert_int_eq(parse_size("4t", 0, LONG_MAX, &v), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(parse_size("m", 0, LONG_MAX, &v), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(parse_size("9999999999999g", 0, LONG_MAX, &v), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(parse_duration_ms("30s", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 30000);
	ck_assert_int_eq(parse_duration_ms("250ms", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 250);
	ck_assert_int_eq(parse_duration_ms("2m", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 120000);
	ck_assert_int_eq(parse_duration_ms("5", 0, LONG_MAX, &v), PRISM_OK);
	ck_assert_int_eq(v, 5000);
	ck_assert_int_eq(parse_duration_ms("1.5s", 0, LONG_MAX, &v), PRISM_E_BAD_REQUEST);
	bool b;
	ck_assert_int_eq(parse_bool("Yes", &b), PRISM_OK);
	ck_assert(b);
	ck_assert_int_eq(parse_bool("off", &b), PRISM_OK);
	ck_assert(!b);
	ck_assert_int_eq(parse_bool("maybe", &b), PRISM_E_BAD_REQUEST);
}
END_TEST

START_TEST(netaddr_prefixes)
{
	struct netprefix p;
	struct netaddr a;
	ck_assert_int_eq(netprefix_parse("10.0.0.0/8", &p), PRISM_OK);
	ck_assert_int_eq(netaddr_parse("10.200.3.4", &a), PRISM_OK);
	ck_assert(netprefix_contains(&p, &a));
	ck_assert_int_eq(netaddr_parse("11.0.0.1", &a), PRISM_OK);
	ck_assert(!netprefix_contains(&p, &a));
	ck_assert_int_eq(netprefix_parse("2001:db8::/32", &p), PRISM_OK);
	ck_assert_int_eq(netaddr_parse("2001:db8:ffff::1", &a), PRISM_OK);
	ck_assert(netprefix_contains(&p, &a));
	ck_assert_int_eq(netaddr_parse("[2001:db9::1]", &a), PRISM_OK);
	ck_assert(!netprefix_contains(&p, &a));
	/* an IPv4 prefix never matches a plain IPv6 address and vice versa */
	ck_assert_int_eq(netprefix_parse("0.0.0.0/0", &p), PRISM_OK);
	ck_assert(!netprefix_contains(&p, &a));
	ck_assert_int_eq(netprefix_parse("127.0.0.1", &p), PRISM_OK);
	ck_assert_int_eq(p.bits, 128);
	ck_assert_int_eq(netprefix_parse("10.0.0.0/33", &p), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(netprefix_parse("example.com", &p), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(netprefix_parse("/8", &p), PRISM_E_BAD_REQUEST);
	char out[48];
	netaddr_parse("::ffff:192.0.2.7", &a);
	netaddr_format(&a, out, sizeof out);
	ck_assert_str_eq(out, "192.0.2.7");
}
END_TEST

START_TEST(clock_formats)
{
	char out[40];
	clock_iso8601(1700000000123LL, out, sizeof out);
	ck_assert_str_eq(out, "2023-11-14T22:13:20.123Z");
	clock_utc_day(1700000000123LL, out, sizeof out);
	ck_assert_str_eq(out, "2023-11-14");
	ck_assert_int_gt(clock_monotonic_us(), 0);
}
END_TEST

START_TEST(rand_and_compare)
{
	char a[65], b[65];
	ck_assert_int_eq(rand_hex(a, 32), PRISM_OK);
	ck_assert_int_eq(rand_hex(b, 32), PRISM_OK);
	ck_assert_uint_eq(strlen(a), 64);
	ck_assert_str_ne(a, b);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
	ck_assert(const_time_eq("abc", "abc", 3));
	ck_assert(!const_time_eq("abc", "abd", 3));
}
END_TEST

static const struct {
	const char *in;
	const char *out;
} scrub_cases[] = {
	{ "plain text", "plain text" },
	{ "Authorization: Bearer sk-abc123 rest", "Authorization: [redacted] rest" },
	{ "header bearer eyJhbGciOi.x.y end", "header bearer [redacted] end" },
	{ "key omp-0123456789abcdef0123 used", "key omp-[redacted] used" },
	{ "line\nbreak\rand\ttab", "line\\x0abreak\\x0dand\\x09tab" },
	{ "api-key: secretvalue", "api-key: [redacted]" },
	{ "password=hunter2&x=1", "password=[redacted]&x=1" },
	{ "omp-models are fine", "omp-models are fine" },
};

START_TEST(log_scrub_table)
{
	char out[256];
	log_scrub(scrub_cases[_i].in, out, sizeof out);
	ck_assert_str_eq(out, scrub_cases[_i].out);
}
END_TEST

START_TEST(log_scrub_truncates)
{
	char out[8];
	log_scrub("abcdefghijkl\n\n\n", out, sizeof out);
	ck_assert_uint_le(strlen(out), 7);
	log_scrub("\n\n\n\n", out, sizeof out);
	ck_assert_uint_le(strlen(out), 7);
}
END_TEST

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");
	tcase_add_test(tc, err_table_complete);
	tcase_add_test(tc, buf_bounds);
	tcase_add_loop_test(tc, parse_long_table, 0, sizeof long_cases / sizeof long_cases[0]);
	tcase_add_test(tc, parse_units);
	tcase_add_test(tc, netaddr_prefixes);
	tcase_add_test(tc, clock_formats);
	tcase_add_test(tc, rand_and_compare);
	tcase_add_loop_test(tc, log_scrub_table, 0, sizeof scrub_cases / sizeof scrub_cases[0]);
	tcase_add_test(tc, log_scrub_truncates);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(util_suite)
