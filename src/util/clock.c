/* clock.c -- see clock.h. */
#include "config.h"
#include "util/clock.h"

#include <stdio.h>
#include <time.h>

int64_t
clock_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
clock_iso8601(int64_t epoch_ms, char *out, size_t outlen)
{
	time_t secs = (time_t)(epoch_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
}

int
clock_parse_iso8601(const char *s, int64_t *epoch_ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	const char *p = s + n;
	if (*p == 'T' || *p == ' ') {
		int m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
			return -1;
		p += 1 + m;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &sec, &m) != 1 || m != 2)
				return -1;
			p += 1 + m;
			if (*p == '.') {
				int digits = 0;
				for (p++; *p >= '0' && *p <= '9'; p++, digits++)
					if (digits < 3)
						ms = ms * 10 + (*p - '0');
				if (digits == 0)
					return -1;
				for (; digits < 3; digits++)
					ms *= 10;
			}
		}
		if (*p == 'Z')
			p++;
	}
	if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d)
		return -1;
	*epoch_ms = (int64_t)t * 1000 + ms;
	return 0;
}

void
clock_utc_day(int64_t epoch_ms, char *out, size_t outlen)
{
	time_t secs = (time_t)(epoch_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
