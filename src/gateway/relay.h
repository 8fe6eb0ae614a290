/* relay.h -- the client side of a streamed answer: upstream events in, server-sent events out.
 *
 * The adapter hands every upstream event, converted to an OpenAI chunk, to relay_on_event (the
 * provider_stream_cb).  The relay
 *   - removes reasoning when the tenant strips thinking (tenant.stripThinking, default true): the
 *     reasoning_content / reasoning fields of a delta (the chunk's other fields stay), and the text between
 *     <think>/<thinking> and </think>/</thinking> in delta.content, with a state machine per choice that
 *     carries across chunk boundaries: a tag split over two chunks is recognised, the possible beginning of
 *     a tag at the end of a chunk is held back until the next chunk decides.  Text is never trimmed, so
 *     words are never glued; only the whitespace right after a closing tag is dropped while the choice has
 *     shown no visible text yet (the blank line reasoning models put after their thoughts);
 *   - takes the usage out of the events (an upstream usage-only chunk is not forwarded) and remembers it:
 *     the client gets one well-formed usage chunk at the end {"id","object","created","model","choices":[],
 *     "usage":{prompt_tokens, completion_tokens, total_tokens}} -- only when it asked for it with
 *     stream_options.include_usage, as OpenAI does -- estimated by the caller when the provider sent none;
 *   - drops chunks left with nothing to say (every choice an empty delta without finish_reason);
 *   - sends the response headers with the first event it writes: until then nothing has reached the client
 *     and the engine may still fail over to another provider (relay->started tells);
 *   - notices the client going away (a failed write): on_event returns false and the adapter aborts the
 *     upstream transfer.
 * The stream always ends with "data: [DONE]" (relay_finish, or relay_error after one error event).
 *
 * Bounds: RELAY_MAX_CHOICES choices are filtered (n is at most 8 on the way in); the generated text kept for
 * the output-token estimate is bounded by RELAY_MAX_TEXT (beyond it only its length counts).
 * Not thread-safe: one relay per request.
 */
#ifndef PRISM_GATEWAY_RELAY_H
#define PRISM_GATEWAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/request.h"
#include "util/buf.h"

#define RELAY_MAX_CHOICES 8
#define RELAY_MAX_TEXT (1L * 1024 * 1024)
#define THINK_HOLD_MAX 16                 /* longer than the longest tag, "</thinking>" */

/* The thinking filter of one text stream. */
struct think_filter {
	bool in_block;                    /* between an opening and a closing tag */
	bool visible;                     /* visible (non-space) text has been let through */
	bool skip_ws;                     /* drop whitespace: right after a closing tag, before visible text */
	size_t nhold;
	char hold[THINK_HOLD_MAX];        /* the possible beginning of a tag, held back */
};

void think_filter_init(struct think_filter *f);
/* Appends to out what of s (n bytes) the client may see.  PRISM_E_TOO_LARGE from out. */
enum prism_err think_filter_feed(struct think_filter *f, const char *s, size_t n, struct buf *out);
/* The stream of this filter ended: a held-back text that never became a tag is let through. */
enum prism_err think_filter_finish(struct think_filter *f, struct buf *out);
/* A whole text at once (non-streaming): a new malloc'd string. */
char *think_strip_text(const char *s);

/* Makes s valid UTF-8 in place: an invalid byte becomes '?', an incomplete sequence at the end (a string
 * cut to fit a buffer) is dropped.  jansson refuses invalid UTF-8, and these strings go into JSON. */
void relay_utf8_fix(char *s);

/* Non-streaming: removes reasoning from a chat.completion body in place (every choice's message:
 * reasoning_content, reasoning, the think blocks of a string content, thinking blocks of an array content). */
void relay_strip_completion(json_t *body);

enum relay_kind { RELAY_CHAT = 0, RELAY_COMPLETIONS = 1 };

struct relay {
	struct request *req;              /* borrowed */
	enum relay_kind kind;
	bool strip_thinking;
	bool include_usage;               /* the client asked for stream_options.include_usage */

	bool started;                     /* headers and at least one event written */
	bool client_gone;
	long events_in, events_out;

	/* per attempt (reset by relay_attempt) */
	struct think_filter tf[RELAY_MAX_CHOICES];
	bool usage_seen;
	long prompt_tokens, completion_tokens;
	bool finished;                    /* a finish_reason arrived */
	char finish_reason[32];
	struct buf text;                  /* generated text (reasoning included), for the estimate */
	long text_overflow;               /* bytes beyond RELAY_MAX_TEXT */

	/* taken from the first chunk, for the synthetic chunks */
	char id[128];
	char object[40];
	char model[257];
	json_int_t created;

	/* Members of one more chunk with no choices, written after the usage chunk (the auto_routing object of
	 * a routed request); owned, NULL = none. */
	json_t *trailer;
};

void relay_init(struct relay *r, struct request *req, enum relay_kind kind, bool strip_thinking, bool include_usage);
void relay_free(struct relay *r);
/* Before each attempt: forgets the state of a failed one (only meaningful while !started). */
void relay_attempt(struct relay *r);
/* The provider_stream_cb: arg is the struct relay. */
bool relay_on_event(void *arg, json_t *chunk);
/* The output tokens estimated from the generated text (when the provider reported none). */
long relay_estimate_output(const struct relay *r);
/* Successful end: held-back text, the usage chunk (when asked for; the numbers are the caller's), [DONE].
 * Sends the headers first when no event was written.  False when the client has gone. */
bool relay_finish(struct relay *r, const char *model, long prompt_tokens, long completion_tokens);
/* Failed end after the stream started (or, with started false, an error as a stream): one
 * data: {"error":{message,type,code}} event and [DONE]. */
bool relay_error(struct relay *r, const char *type, const char *code, const char *message);

#endif
