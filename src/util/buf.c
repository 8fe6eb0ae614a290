/* buf.c -- see buf.h. */
#include "config.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static enum prism_err
buf_reserve(struct buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return PRISM_E_TOO_LARGE;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return PRISM_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	/* Sizes here are bounded by max, which callers derive from limits.h, so xrealloc's abort is the
	 * right answer to a genuine OOM. */
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return PRISM_OK;
}

char *
buf_room(struct buf *b, size_t n)
{
	return buf_reserve(b, n) ? NULL : b->data + b->len;
}

void
buf_added(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

enum prism_err
buf_append(struct buf *b, const void *data, size_t len)
{
	enum prism_err err = buf_reserve(b, len);
	if (err)
		return err;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return PRISM_OK;
}

enum prism_err
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum prism_err
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	/* Written straight into the room there is; formatted a second time only when it did not fit. */
	if (!b->data && buf_reserve(b, 0) != PRISM_OK)
		return PRISM_E_TOO_LARGE;
	va_list ap2;
	va_copy(ap2, ap);
	size_t room = b->cap - b->len;          /* with the NUL */
	int n = vsnprintf(b->data + b->len, room, fmt, ap2);
	va_end(ap2);
	if (n >= 0 && (size_t)n < room && (size_t)n <= b->max - b->len) {
		b->len += (size_t)n;
		return PRISM_OK;
	}
	b->data[b->len] = '\0';                 /* unchanged, whatever was written past it */
	if (n < 0)
		return PRISM_E_INTERNAL;
	enum prism_err err = buf_reserve(b, (size_t)n);
	if (err)
		return err;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return PRISM_OK;
}

enum prism_err
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum prism_err err = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return err;
}

char *
buf_take(struct buf *b, size_t *len)
{
	char *p = b->data ? b->data : xstrdup("");
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

const char *
buf_cstr(const struct buf *b)
{
	return b->data ? b->data : "";
}
