/* sse.h -- an incremental parser for text/event-stream (Server-Sent Events): bytes in, events out.
 *
 * Feed the body as it arrives, in chunks of any size split at any byte; every complete event is handed to
 * the callback at once (never buffered whole).  Follows the WHATWG event-stream rules: lines end with
 * "\r\n", "\n" or "\r" (also when the "\r" and "\n" arrive in different chunks); "data:" lines of one event
 * are joined with "\n"; one space after the colon is dropped; lines starting with ':' are comments; an empty
 * line dispatches the event; an event without data is not dispatched; a leading UTF-8 BOM is skipped.
 *
 * Bounds: one event (its data plus the line being read) is at most `max_event` bytes; beyond that the
 * parser fails with SSE_TOO_LARGE and stays failed.  Event names are cut at SSE_MAX_NAME bytes.
 *
 * End of stream (sse_finish): an event whose last data line was complete but whose closing empty line never
 * came is dispatched (servers that close right after the last line); a trailing incomplete line is dropped
 * and reported by sse_finish's *partial.
 *
 * Ownership: the event and its strings are borrowed for the duration of the callback.  Not thread-safe
 * (one parser per stream).
 */
#ifndef PRISM_PROVIDERS_SSE_H
#define PRISM_PROVIDERS_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define SSE_MAX_NAME 64                /* event: and id: values */

struct sse_event {
	const char *event;             /* "" when no event: field */
	const char *id;                /* "" when no id: field */
	const char *data;              /* NUL-terminated; may contain "\n" (multi-line data) */
	size_t data_len;
};

/* Returns false to stop: sse_feed returns SSE_STOPPED and drops the rest of its input. */
typedef bool (*sse_event_fn)(void *arg, const struct sse_event *ev);

enum sse_status {
	SSE_OK = 0,
	SSE_STOPPED,                   /* the callback returned false */
	SSE_TOO_LARGE,                 /* an event over max_event */
};

struct sse_parser {
	struct buf line;               /* the line being read */
	struct buf data;               /* the data of the event being built */
	char event[SSE_MAX_NAME + 1];
	char id[SSE_MAX_NAME + 1];
	size_t max_event;
	bool have_data;                /* at least one data: line in the current event */
	bool after_cr;                 /* the last byte was '\r' (a following '\n' belongs to it) */
	bool started;                  /* past the (optional) BOM */
	size_t bom;                    /* BOM bytes matched so far */
	enum sse_status failed;        /* sticky SSE_TOO_LARGE */
	long events;                   /* events dispatched */
};

void sse_init(struct sse_parser *p, size_t max_event);
/* Frees the buffers; the parser may be initialised again.  Safe on a zeroed parser. */
void sse_free(struct sse_parser *p);
enum sse_status sse_feed(struct sse_parser *p, const char *data, size_t len, sse_event_fn fn, void *arg);
/* The stream has ended: dispatches a pending complete event (see above).  *partial (may be NULL) is set
 * when an incomplete last line was dropped. */
enum sse_status sse_finish(struct sse_parser *p, sse_event_fn fn, void *arg, bool *partial);

#endif
