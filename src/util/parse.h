/* parse.h -- bounded parsers for numbers and words that come from outside (config, headers, queries).
 *
 * Every parser takes the whole string: trailing garbage, empty input, overflow and out-of-range values are
 * errors (PRISM_E_BAD_REQUEST) and leave *out unchanged.  No atoi, no unchecked strtol elsewhere.
 * Thread-safe.
 */
#ifndef PRISM_PARSE_H
#define PRISM_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Decimal integer in [min, max]. */
enum prism_err parse_long(const char *s, long min, long max, long *out);
/* Like parse_long for a length-delimited string (not NUL-terminated). */
enum prism_err parse_long_n(const char *s, size_t n, long min, long max, long *out);
/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
enum prism_err parse_bool(const char *s, bool *out);
/* Byte size with an optional k/m/g suffix (binary multiples): "4m" = 4194304. */
enum prism_err parse_size(const char *s, long min, long max, long *out);
/* The value of one hex digit (either case), or -1. */
int parse_hexval(int c);
/* Duration in milliseconds: a number with a unit ms, s, m or h ("30s", "500ms"); a bare number is seconds. */
enum prism_err parse_duration_ms(const char *s, long min, long max, long *out);

#endif
