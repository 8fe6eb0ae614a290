/* parse.c -- see parse.h. */
#include "config.h"
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/limits.h"

enum prism_err
parse_long_n(const char *s, size_t n, long min, long max, long *out)
{
	char tmp[32];
	if (n == 0 || n >= sizeof tmp)
		return PRISM_E_BAD_REQUEST;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return parse_long(tmp, min, max, out);
}

enum prism_err
parse_long(const char *s, long min, long max, long *out)
{
	if (!s || !*s)
		return PRISM_E_BAD_REQUEST;
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (*p < '0' || *p > '9')         /* strtol would skip spaces and accept "" after a sign */
		return PRISM_E_BAD_REQUEST;
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno == ERANGE || *end != '\0' || v < min || v > max)
		return PRISM_E_BAD_REQUEST;
	*out = v;
	return PRISM_OK;
}

enum prism_err
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	if (!s)
		return PRISM_E_BAD_REQUEST;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return PRISM_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return PRISM_OK;
		}
	}
	return PRISM_E_BAD_REQUEST;
}

/* Splits "123abc" into the number and the unit; the number must fit before multiplication. */
static enum prism_err
parse_with_unit(const char *s, const char *const *units, const long *mult, size_t nunits, long dflt_mult,
		long min, long max, long *out)
{
	if (!s || !*s)
		return PRISM_E_BAD_REQUEST;
	size_t digits = strspn(s, "0123456789");
	if (digits == 0)
		return PRISM_E_BAD_REQUEST;
	long num;
	if (parse_long_n(s, digits, 0, LONG_MAX, &num))
		return PRISM_E_BAD_REQUEST;
	const char *unit = s + digits;
	long m = -1;
	if (*unit == '\0') {
		m = dflt_mult;
	} else {
		for (size_t i = 0; i < nunits; i++)
			if (strcasecmp(unit, units[i]) == 0)
				m = mult[i];
	}
	if (m < 0)
		return PRISM_E_BAD_REQUEST;
	if (num > 0 && num > LONG_MAX / m)
		return PRISM_E_BAD_REQUEST;
	long v = num * m;
	if (v < min || v > max)
		return PRISM_E_BAD_REQUEST;
	*out = v;
	return PRISM_OK;
}

enum prism_err
parse_size(const char *s, long min, long max, long *out)
{
	static const char *const units[] = { "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib" };
	static const long mult[] = { 1, 1L << 10, 1L << 10, 1L << 10, 1L << 20, 1L << 20, 1L << 20,
				     1L << 30, 1L << 30, 1L << 30 };
	return parse_with_unit(s, units, mult, sizeof mult / sizeof mult[0], 1, min, max, out);
}

enum prism_err
parse_duration_ms(const char *s, long min, long max, long *out)
{
	static const char *const units[] = { "ms", "s", "m", "h", "d" };
	static const long mult[] = { 1, 1000, 60000, 3600000, 86400000 };
	return parse_with_unit(s, units, mult, sizeof mult / sizeof mult[0], 1000, min, max, out);
}

int
parse_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
