/* clock.h -- time in milliseconds and its text forms.  Thread-safe. */
#ifndef PRISM_CLOCK_H
#define PRISM_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_monotonic_ms(void);
int64_t clock_monotonic_us(void);
int64_t clock_realtime_ms(void);
/* "2026-11-26T22:30:00.123Z" (UTC, millisecond precision, as JavaScript's toISOString). */
void clock_iso8601(int64_t epoch_ms, char *out, size_t outlen);
/* Parses "2026-11-26", "2026-11-26T22:30", "2026-11-26T22:30:00", with optional ".mmm" and "Z" (UTC only);
 * -1 for anything else or an impossible date. */
int clock_parse_iso8601(const char *s, int64_t *epoch_ms);
/* "2026-11-26" (UTC). */
void clock_utc_day(int64_t epoch_ms, char *out, size_t outlen);

#endif
