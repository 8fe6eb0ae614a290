/* ruleset.h -- routing rule sets: keyword rules, system-prompt roles, signal weights, token thresholds,
 * turn upgrade, classifier settings, cost mode and tier boost (reference/original-gateway.md §5.5, §13.4,
 * §14.4), compiled once from their stored document and applied to a request's signals.
 *
 * Thread-safe once compiled: a struct ruleset is read-only and may be shared by all threads of a process
 * (role patterns are PCRE2 with JIT; each match uses its own match data and limits).
 */
#ifndef PRISM_ROUTING_RULESET_H
#define PRISM_ROUTING_RULESET_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "routing/routing.h"

/* Limits of a rule-set document (ruleset_normalise refuses more). */
#define RULESET_MAX_NAME 128            /* name, and the name of a keyword rule or a role; bytes */
#define RULESET_MAX_DESCRIPTION 4096
#define RULESET_MAX_RULES 200           /* keywordRules[] */
#define RULESET_MAX_KEYWORDS 200        /* keywords of one rule */
#define RULESET_MAX_KEYWORD 200         /* bytes of one keyword */
#define RULESET_MAX_ROLES 100           /* systemPromptRoles[] */
#define RULESET_MAX_PATTERN 2000        /* bytes of a role's pattern */
#define RULESET_MAX_THRESHOLD 1000000000L

enum ruleset_ctx_strategy { RS_CTX_TRUNCATE = 0, RS_CTX_METADATA_ONLY, RS_CTX_SUMMARY };

struct ruleset {
	char id[25];                       /* the document's _id; "" for the built-in default */
	char name[129];
	char tenant_id[25];                /* "" = not tenant-specific */
	bool global_default, is_default;
	long thr_micro, thr_minimal, thr_low, thr_medium, thr_always_high;   /* -1 = unset */
	double w_token_count, w_system_prompt_role, w_content_keywords, w_code_language;
	bool turn_upgrade;
	int turn_threshold;
	double confidence_threshold;       /* pre-route when the confidence reaches it */
	long context_limit_tokens;
	enum ruleset_ctx_strategy context_strategy;
	enum route_cost_mode cost_mode;
	int tier_boost;                    /* -2..2 */
	void *priv;                        /* compiled rules and roles */
};

/* Compiles a stored (normalised) rule-set document.  NULL with a reason in err when it is invalid: the
 * document is checked as ruleset_normalise checks a body (absent fields take the schema defaults), so a
 * document the admin API would refuse (imported, or written by the original) does not compile.  The
 * result is owned by the caller (ruleset_free). */
struct ruleset *ruleset_compile(const json_t *doc, char *err, size_t errlen);
void ruleset_free(struct ruleset *rs);

/* The built-in default rule set (the document ruleset_default_doc() describes), compiled once; never
 * freed. */
const struct ruleset *ruleset_builtin(void);

/* A new "Default Rule Set" document (isGlobalDefault and isDefault true), as setup and seed-defaults store
 * it (without _id and timestamps). */
json_t *ruleset_default_doc(void);

/* Validates an admin API body for a rule set and returns the complete document to store: every field with
 * its default filled in, sub-document _ids assigned where missing.  existing (may be NULL) is the stored
 * document a PUT changes: omitted fields keep their stored values.  NULL with a client-safe message naming
 * the field in err ("keywordRules[2].effect.tierMin: must be one of ...") when invalid. */
json_t *ruleset_normalise(const json_t *body, const json_t *existing, char *err, size_t errlen);

/* The pre-routing for a request's signals (never fails; out is always filled).  rs may be NULL (no
 * pre-routing).  A role pattern that hits a PCRE2 limit counts as no match, and the roles of one call
 * stop being tried after 20 ms, so that a hostile pattern cannot hold a worker. */
void ruleset_apply(const struct ruleset *rs, const struct route_signals *s, struct route_preroute *out);

/* The keyword matcher of keyword rules, on its own: does text (len bytes, UTF-8; invalid bytes are
 * tolerated) contain keyword?  Case-insensitive (ASCII, and the Latin-1, Latin Extended-A, Greek and
 * Cyrillic letters that keep their UTF-8 length); the keyword must start at a word boundary and end at
 * one, optionally followed by "s" or "es"; a keyword ending in a non-word character ("ICD-") needs no
 * end boundary; a keyword ending in '*' matches as a word prefix; whitespace in the keyword matches any
 * run of whitespace.  Word characters: ASCII letters and digits, '_' and every byte >= 0x80. */
bool ruleset_keyword_match(const char *keyword, const char *text, size_t len);

/* A role pattern on its own, as ruleset_apply runs it (case-insensitive PCRE2, JIT, match and depth
 * limits): 1 when pattern matches text, 0 when it does not or when the match hit a limit, -1 when the
 * pattern does not compile (the PCRE2 message and offset in err). */
int ruleset_pattern_match(const char *pattern, const char *text, size_t len, char *err, size_t errlen);

#endif
