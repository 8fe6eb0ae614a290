/* sse.c -- see sse.h. */
#include "config.h"
#include "providers/sse.h"

#include <string.h>

static const unsigned char BOM[3] = { 0xEF, 0xBB, 0xBF };

void
sse_init(struct sse_parser *p, size_t max_event)
{
	memset(p, 0, sizeof *p);
	p->max_event = max_event;
	buf_init(&p->line, max_event);
	buf_init(&p->data, max_event);
}

void
sse_free(struct sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
	p->have_data = false;
}

static void
copy_name(char *dst, const char *src, size_t len)
{
	if (len > SSE_MAX_NAME)
		len = SSE_MAX_NAME;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static enum sse_status
dispatch(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	enum sse_status st = SSE_OK;
	if (p->have_data) {
		struct sse_event ev = {
			.event = p->event, .id = p->id, .data = buf_cstr(&p->data), .data_len = p->data.len,
		};
		p->events++;
		if (!fn(arg, &ev))
			st = SSE_STOPPED;
	}
	buf_reset(&p->data);
	p->have_data = false;
	p->event[0] = '\0';
	return st;
}

/* One complete line (without its terminator). */
static enum sse_status
process_line(struct sse_parser *p, const char *s, size_t len, sse_event_fn fn, void *arg)
{
	if (len == 0)
		return dispatch(p, fn, arg);
	if (s[0] == ':')
		return SSE_OK;
	const char *colon = memchr(s, ':', len);
	size_t flen = colon ? (size_t)(colon - s) : len;
	const char *v = colon ? colon + 1 : s + len;
	size_t vlen = (size_t)(s + len - v);
	if (vlen && *v == ' ') {
		v++;
		vlen--;
	}
	if (flen == 4 && memcmp(s, "data", 4) == 0) {
		/* The bound was checked for the whole line, which is longer than the value and the '\n'. */
		if ((p->have_data && buf_append(&p->data, "\n", 1) != PRISM_OK) || buf_append(&p->data, v, vlen) != PRISM_OK)
			return p->failed = SSE_TOO_LARGE;
		p->have_data = true;
	} else if (flen == 5 && memcmp(s, "event", 5) == 0) {
		copy_name(p->event, v, vlen);
	} else if (flen == 2 && memcmp(s, "id", 2) == 0) {
		if (!memchr(v, '\0', vlen))
			copy_name(p->id, v, vlen);
	}
	/* retry: and unknown fields are ignored, as the specification says. */
	return SSE_OK;
}

static enum sse_status
append_line(struct sse_parser *p, const char *s, size_t n)
{
	if (!n)
		return SSE_OK;
	if (p->line.len + p->data.len + n > p->max_event || buf_append(&p->line, s, n) != PRISM_OK)
		return p->failed = SSE_TOO_LARGE;
	return SSE_OK;
}

static enum sse_status
feed_lines(struct sse_parser *p, const char *data, size_t len, sse_event_fn fn, void *arg)
{
	size_t i = 0;
	while (i < len) {
		if (p->after_cr) {
			p->after_cr = false;
			if (data[i] == '\n') {
				i++;
				continue;
			}
		}
		size_t j = i;
		while (j < len && data[j] != '\n' && data[j] != '\r')
			j++;
		enum sse_status st = append_line(p, data + i, j - i);
		if (st != SSE_OK)
			return st;
		if (j == len)
			break;
		p->after_cr = data[j] == '\r';
		i = j + 1;
		st = process_line(p, buf_cstr(&p->line), p->line.len, fn, arg);
		buf_reset(&p->line);
		if (st != SSE_OK)
			return st;
	}
	return SSE_OK;
}

enum sse_status
sse_feed(struct sse_parser *p, const char *data, size_t len, sse_event_fn fn, void *arg)
{
	if (p->failed)
		return p->failed;
	while (!p->started && len) {
		if ((unsigned char)*data == BOM[p->bom]) {
			data++;
			len--;
			if (++p->bom == sizeof BOM)
				p->started = true;
			continue;
		}
		/* Not a BOM after all: what looked like its start is ordinary text. */
		p->started = true;
		enum sse_status st = feed_lines(p, (const char *)BOM, p->bom, fn, arg);
		if (st != SSE_OK)
			return st;
	}
	return feed_lines(p, data, len, fn, arg);
}

enum sse_status
sse_finish(struct sse_parser *p, sse_event_fn fn, void *arg, bool *partial)
{
	if (partial)
		*partial = p->line.len > 0 || (!p->started && p->bom > 0);
	if (p->failed)
		return p->failed;
	buf_reset(&p->line);
	return dispatch(p, fn, arg);
}
