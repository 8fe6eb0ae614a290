/* buf.h -- a growable byte buffer with a hard maximum.
 *
 * A struct buf owns its data (buf_free releases it; buf_take hands it to the caller, NUL-terminated).
 * Appends beyond `max` fail with PRISM_E_TOO_LARGE and leave the buffer unchanged, so outside data can
 * never grow one without bound.  The data is always NUL-terminated (not counted in len).  Not thread-safe.
 */
#ifndef PRISM_BUF_H
#define PRISM_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "util/err.h"

struct buf {
	char *data;     /* NULL until the first append */
	size_t len;
	size_t cap;
	size_t max;     /* hard maximum of len */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                    /* len = 0, keeps the allocation */
enum prism_err buf_append(struct buf *b, const void *data, size_t len);
enum prism_err buf_puts(struct buf *b, const char *s);
/* Room for n more bytes at the end, to be written in place (buf_added then counts what was): NULL when that
 * would pass max. */
char *buf_room(struct buf *b, size_t n);
void buf_added(struct buf *b, size_t n);           /* n <= what the last buf_room gave */
enum prism_err buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum prism_err buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the data to the caller (free() it); the buffer is empty afterwards.  Never NULL. */
char *buf_take(struct buf *b, size_t *len);
/* The data as a C string; "" when empty.  Borrowed. */
const char *buf_cstr(const struct buf *b);

#endif
