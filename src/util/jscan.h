/* jscan.h -- a provider's JSON answer checked and read without building a tree.
 *
 * jscan_answer validates one JSON text the way the gateway's parser (jansson, default flags) would accept
 * it and reads, in the same pass, what the gateway needs of a chat, completions or embeddings answer: the
 * token counts of its top-level "usage" object, the finish_reason of its choices, whether it carries an
 * "error", whether it shows reasoning that a tenant may strip, and where its closing brace is, so that the
 * gateway's own members can be added to the text as it is.
 *
 * It is deliberately narrow: anything it is not sure of (nesting deeper than JSCAN_MAX_DEPTH, an integer
 * that may not fit, an exponent near the limits of a double, an escaped finish_reason, a member the gateway
 * adds itself) makes it answer false, and the caller parses the text with jansson as before, which then
 * decides.  So a text it accepts is one jansson accepts.  Thread-safe; no allocation.
 */
#ifndef PRISM_UTIL_JSCAN_H
#define PRISM_UTIL_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define JSCAN_MAX_DEPTH 64

struct jscan_answer {
	size_t close_at;                /* offset of the top-level object's closing brace */
	bool empty;                     /* the object has no members */
	bool usage_reported;            /* usage.prompt_tokens or usage.completion_tokens is an integer */
	long prompt_tokens, completion_tokens;     /* clamped to 0 .. 1e9 */
	char finish_reason[32];         /* the last non-empty choices[].finish_reason, [A-Za-z0-9_-] only */
	bool reasoning;                 /* a "reasoning_content" or "reasoning" member, a "<think" in a string,
					 * or an array "content": what stripping thinking looks at */
};

/* True when text (len bytes) is a JSON object jansson accepts, without an "error" member other than null and
 * without the members the gateway adds to an answer (cost_info, auto_routing, context_fallback, session_id);
 * *out then describes it. */
bool jscan_answer(const char *text, size_t len, struct jscan_answer *out);

#endif
