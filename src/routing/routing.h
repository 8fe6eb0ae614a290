/* routing.h -- the types the automatic router's parts share.
 *
 * The router (reference/original-gateway.md §5, with the defects of its §17 fixed) decides, for a request
 * that asks for auto, auto-prism or model-prism (or that a force-route mode sends there), which category
 * the task belongs to, which cost tier it needs and which model of the tenant serves it:
 *
 *   signals.h     what the request itself says (token estimate, images, tools, FIM, languages, ...); pure
 *   ruleset.h     a rule set (keyword rules, system-prompt roles, weights, thresholds) compiled once, and
 *                 the pre-routing it gives; pure
 *   classifier.h  the LLM classifier: its prompt, its context, the validation of its answer, the call
 *   engine.h      the decision: pre-route or classifier, overrides, cost mode, tier boost, selection, with
 *                 a step-by-step trace
 *
 * One tier order everywhere: micro < minimal < low < medium < advanced < high < ultra < critical, as the
 * indexes 0..7 of catalog_tiers (data/catalog.h); -1 means "no tier".
 */
#ifndef PRISM_ROUTING_ROUTING_H
#define PRISM_ROUTING_ROUTING_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_NTIERS 8
#define ROUTE_TIER_NONE (-1)
#define ROUTE_MAX_KEY 64              /* a category key or a domain, bytes including the NUL */
#define ROUTE_MAX_SOURCE 192          /* "keyword_rule:<name>", bytes including the NUL */
#define ROUTE_SYSTEM_CHARS 1000       /* signals.system_prompt keeps this many code points */
#define ROUTE_USER_CHARS 800          /* signals.last_user keeps this many code points */

/* Domains, in the order they are reported (bit i of route_signals.domains = route_domain_names[i]). */
enum { ROUTE_DOM_SECURITY, ROUTE_DOM_LEGAL, ROUTE_DOM_MEDICAL, ROUTE_DOM_FINANCE, ROUTE_NDOMAINS };
extern const char *const route_domain_names[ROUTE_NDOMAINS];

/* Programming languages, in the order they are reported (bit i = route_lang_names[i]). */
enum {
	ROUTE_LANG_PYTHON, ROUTE_LANG_JAVASCRIPT, ROUTE_LANG_TYPESCRIPT, ROUTE_LANG_SQL, ROUTE_LANG_GO,
	ROUTE_LANG_RUST, ROUTE_LANG_SOLIDITY, ROUTE_LANG_BASH, ROUTE_LANG_DOCKER, ROUTE_LANG_YAML,
	ROUTE_LANG_TERRAFORM, ROUTE_NLANGS
};
extern const char *const route_lang_names[ROUTE_NLANGS];

/* What the request says about itself (signals_extract). */
struct route_signals {
	long total_tokens;                 /* the gateway's one estimator (tokens_estimate_messages) */
	bool has_images;                   /* an image_url or image block in any message */
	bool has_tool_calls;               /* non-empty tools, or a tool_choice */
	bool is_fim;                       /* fill-in-the-middle / autocomplete */
	bool is_tool_agent;                /* an agentic coding client (informational) */
	bool tool_output_continuation;     /* the last user message carries tool output */
	int conversation_turns;            /* user messages that are not tool output */
	unsigned domains;                  /* bit set over ROUTE_DOM_* */
	unsigned langs;                    /* bit set over ROUTE_LANG_* */
	long system_chars;                 /* code points of the whole first system message */
	/* The first ROUTE_SYSTEM_CHARS code points of the first system message's text, and the first
	 * ROUTE_USER_CHARS of the last user message's text; NUL-terminated valid UTF-8. */
	char system_prompt[ROUTE_SYSTEM_CHARS * 4 + 1];
	char last_user[ROUTE_USER_CHARS * 4 + 1];
	/* "tokens≈N, fim_autocomplete, tool_agent, tool_output_continuation, has_images, has_tools, turns=N,
	 * domains=[a,b], langs=[x,y]" (the parts that apply, in this order). */
	char summary[512];
};

/* A rule set's pre-routing (ruleset_apply), or the FIM fast path. */
struct route_preroute {
	int tier;                          /* ROUTE_TIER_NONE or 0..7 */
	char category[ROUTE_MAX_KEY];      /* "" = none */
	char domain[ROUTE_MAX_KEY];        /* "" = none */
	double confidence;                 /* 0..1 */
	char source[ROUTE_MAX_SOURCE];     /* "fim_detection", "image_input", "token_threshold",
					      "token_threshold_high", "system_prompt_role:<name>",
					      "keyword_rule:<name>"; "" = none */
	bool prerouted;                    /* confidence reached the rule set's threshold */
};

/* A routing category as the router reads it (from the routingcategories documents; strings borrowed). */
struct route_category {
	const char *key;                   /* e.g. "coding_complex" */
	int tier;                          /* its costTier, ROUTE_TIER_NONE when unset or unknown */
	const char *const *examples;       /* NULL-terminated; NULL = none */
	size_t nexamples;
	bool requires_vision;
	const char *system_prompt;         /* targetSystemPrompt; "" = none */
	const char *default_model;         /* defaultModel; "" = none */
};

/* A model one of the tenant's providers offers (discoveredModels entry, visible; strings borrowed). */
struct route_model {
	const char *id;
	const char *provider_id;           /* the provider document's _id */
	const char *provider_slug;
	int tier;                          /* ROUTE_TIER_NONE when the entry has none */
	double input_per_1m, output_per_1m;  /* USD; < 0 = unknown */
	long context_window;               /* 0 = unknown */
	int priority;                      /* the entry's priority, 50 when unset */
};

enum route_cost_mode { ROUTE_COST_BALANCED = 0, ROUTE_COST_ECONOMY, ROUTE_COST_QUALITY };
/* "balanced", "economy", "quality". */
const char *route_cost_mode_name(enum route_cost_mode m);

/* Tier helpers over the canonical order. */
int route_tier_index(const char *name);          /* -1 when unknown or NULL */
const char *route_tier_name(int idx);            /* NULL when out of range */
int route_tier_clamp(int idx);                   /* into 0..7 */

#endif
