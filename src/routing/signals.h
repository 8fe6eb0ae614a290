/* signals.h -- what a chat request says about itself, for the router (reference/original-gateway.md §5.2,
 * with its §17 defects fixed).
 *
 * Pure: no I/O, no allocation that outlives a call, thread-safe.  The built-in patterns are compiled once
 * (PCRE2 with JIT, under pthread_once).
 */
#ifndef PRISM_ROUTING_SIGNALS_H
#define PRISM_ROUTING_SIGNALS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "routing/routing.h"

/* The opt-out token a user puts in a message to keep the model they named when force-routing is on. */
#define SIGNALS_OPT_OUT_TOKEN "--model-prism-accept-model"

/* Fills *out (every field overwritten) from a chat request body ({messages, tools, tool_choice, ...};
 * request is only read, NULL is an empty request).  Any shape is accepted: what is missing or of the
 * wrong type counts as absent, and the text of a content that is neither a string nor an array of blocks
 * is "" (text blocks are those of type "text" or "input_text", joined with one space).  Deviations from
 * the original, all deliberate (§17.13): total_tokens is tokens_estimate_messages; domains match on word
 * boundaries; a bare "autocomplete" makes a request FIM only from a system prompt of at most 400 code
 * points (and never from a user message), "// END" is no FIM token and "◊" counts only next to code;
 * "$5" is no bash; lengths are in code points; domains, languages and the FIM and tool-agent phrases are
 * looked for in the last user message and the first 2000 code points of the system prompt (where a client
 * says what it is; the rest of an agentic client's prompt documents its tools and names every language).
 * Never fails; linear in the size of the request. */
void signals_extract(const json_t *request, struct route_signals *out);

/* Removes every occurrence of SIGNALS_OPT_OUT_TOKEN from the last user message of request.messages
 * (string content, or the text of its text blocks), tidying the whitespace it leaves: the whitespace
 * before an occurrence stays and the one after it goes, and none is left at the start or the end.  The
 * changed message (and content array and block) is replaced by a copy, so nothing shared with another
 * message changes; other messages are untouched.  True when it found one; false (request unchanged) for
 * any other shape. */
bool signals_take_opt_out(json_t *request);

/* Domain detection on a text of len bytes (case-insensitive, whole words; security needs two distinct
 * keywords, the others one): the ROUTE_DOM_* bit set; 0 for NULL. */
unsigned signals_domains(const char *text, size_t len);

/* Language detection on a text of len bytes (§5.2's patterns, "$5" no longer bash): the ROUTE_LANG_* bit
 * set; 0 for NULL. */
unsigned signals_langs(const char *text, size_t len);

/* The first detected domain, else "tech" when a language was detected, else "general". */
const char *signals_infer_domain(const struct route_signals *s);

/* A cheap stand-in for the classifier's user_frustration_signal, for when no classifier answered: true
 * when s->last_user clearly shows the user is frustrated with the previous answers (English or German):
 *   - a strong phrase anywhere: "still not working", "still doesn't work", "wrong again", "not working
 *     again", "you keep making ...", "again!!", "I already told you", "how many times do I have to",
 *     "not what I asked", "funktioniert immer noch nicht", "schon wieder falsch", "wie oft noch", ...;
 *   - a weak phrase ("doesn't work", "this is wrong", "funktioniert nicht", "das ist falsch") only in a
 *     follow-up (conversation_turns >= 2): in a first message it describes the user's bug, not the
 *     model's failure;
 *   - "?!" twice, or a run of three or more '?'/'!' mixing both ("WHY?!?");
 *   - shouting: three or more consecutive all-capital words (two letters or more) that make up at least
 *     half of the words, in a message that does not look like code (SQL, constants).
 * Never for a tool-output continuation (s->tool_output_continuation): that text is not the user's.
 * Pure; reads only s. */
bool signals_frustrated(const struct route_signals *s);

#endif
