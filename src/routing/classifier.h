/* classifier.h -- the LLM classifier of the router (reference/original-gateway.md §5.7, fixed): the prompt
 * listing the categories and the tenant's models, the context built from the request, the validation of
 * the answer, and the call with a strict deadline over the classifier model and its fallbacks.
 *
 * Thread-safe; the prompt and context builders are pure.
 */
#ifndef PRISM_ROUTING_CLASSIFIER_H
#define PRISM_ROUTING_CLASSIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "routing/routing.h"
#include "routing/ruleset.h"
#include "util/config.h"
#include "util/err.h"

#define CLASSIFIER_DEFAULT_TIMEOUT_MS 3000L
#define CLASSIFIER_MAX_FALLBACKS 2
#define CLASSIFIER_MAX_MODELS 20           /* models listed in the prompt */
/* Bounds on what stored data and requests can make of the prompt, the context and the reply. */
#define CLASSIFIER_MAX_CATEGORIES 200      /* category lines in the prompt */
#define CLASSIFIER_MAX_EXAMPLES 10         /* examples shown per category */
#define CLASSIFIER_MAX_EXAMPLE_CHARS 80    /* code points of one example ("…" when cut) */
#define CLASSIFIER_MAX_EXAMPLES_CHARS 400  /* code points of all examples of one category */
#define CLASSIFIER_MAX_PROMPT (1024L * 1024)         /* bytes; the bounds above keep it far below */
#define CLASSIFIER_MAX_CONTEXT_CHARS 120000L         /* code points of message text in the context */
#define CLASSIFIER_MAX_CONTEXT_BYTES (1024L * 1024)  /* bytes; the bound above keeps it below */
#define CLASSIFIER_MAX_REPLY (64L * 1024)            /* bytes of the reply kept in classifier_outcome */

/* The system prompt: the categories (in the order given, at most CLASSIFIER_MAX_CATEGORIES; a key that is
 * empty, has control characters or does not fit ROUTE_MAX_KEY is left out, as the answer could not name
 * it), one line each "- <key> [<tier>] — Examples: a, b" (no tier part without a tier, no examples part
 * without examples; examples bounded by the CLASSIFIER_MAX_EXAMPLE* limits), and the models (deduplicated
 * by id, the first wins; ordered by tier, untiered last, stable; at most CLASSIFIER_MAX_MODELS; ids that
 * could not be recommended back are left out), "- <id> [<tier>] — in:$<in>/out:$<out>/1M" with the prices
 * in JavaScript's shortest form and only when both are known.  cats and models may be NULL when their
 * count is 0.  A new string (free()); never NULL. */
char *classifier_prompt(const struct route_category *cats, size_t ncats, const struct route_model *models,
			size_t nmodels);

/* The user message: "[System]: " and s->system_prompt, then "[<role>]: <text>" for each of the last 3
 * non-system messages of `messages` (text: a string content, or the text blocks of an array joined by a
 * space), within the budget max(1000, context_window - 2000) tokens (context_window <= 0 = 128000),
 * measured with tokens_estimate_text and cut in code points ("…" when cut; a message with less than 50
 * characters of budget left is not shown); never more than CLASSIFIER_MAX_CONTEXT_CHARS code points of
 * message text.  RS_CTX_SUMMARY works as RS_CTX_TRUNCATE; RS_CTX_METADATA_ONLY shows no excerpt.  Then
 * "[CONTEXT_SIGNALS: <s->summary>]", and the IDE-role hint line when hint_role is not NULL.  s may be NULL
 * (no system prompt, empty summary), messages NULL.  Invalid UTF-8 becomes U+FFFD.  A new string (free());
 * never NULL. */
char *classifier_context(const struct route_signals *s, const json_t *messages, long context_window,
			 enum ruleset_ctx_strategy strategy, const char *hint_role);

/* The classifier's verdict, validated. */
struct classifier_answer {
	char category[ROUTE_MAX_KEY];      /* one of the categories given */
	int tier;                          /* 0..7 */
	double confidence;                 /* 0..1 */
	char complexity[16];               /* simple, medium, complex */
	bool has_image;
	char language[16];
	char output_length[16];            /* short, medium, long */
	char domain[ROUTE_MAX_KEY];
	int conversation_turn;
	bool frustration;
	char recommended[257];             /* one of the models given, or "" */
	char reasoning[512];
};

/* Parses the classifier's reply (fenced JSON, or the outermost {...}) and validates it.  PRISM_E_BAD_REQUEST
 * with the reason in why when it is not usable (the router then takes its fallback path):
 *   "invalid_json"            no JSON object (content NULL, not JSON, not an object)
 *   "missing_category"        no category (absent, null or "")
 *   "unknown_category:<k>"    not the exact key of one of cats (k: the value, cut to 64 bytes, one line)
 *   "missing_tier"            no cost_tier and the category has no tier of its own
 *   "unknown_tier:<t>"        cost_tier not one of the 8 tiers
 *   "invalid_confidence"      confidence not a number in 0..1 (absent or null: 0.5)
 * The other fields fall back to defaults when invalid: complexity and estimated_output_length "medium",
 * language "en" (a plain string of at most 15 bytes), domain "" (at most 63 bytes), conversation_turn 0
 * (a non-negative integer), the booleans false, recommended "" (unless exactly one of the models' ids),
 * reasoning "" (cut to fit, one line, UTF-8-safe).  On failure *out is reset (tier ROUTE_TIER_NONE). */
enum prism_err classifier_parse(const char *content, const struct route_category *cats, size_t ncats,
				const struct route_model *models, size_t nmodels, struct classifier_answer *out,
				char *why, size_t whylen);

/* One classification over the tenant's classifier chain. */
struct classifier_request {
	const struct config *cfg;          /* encryption keys for the provider credentials */
	const json_t *tenant_doc;          /* routing.classifierProvider / classifierModel / classifierFallbacks */
	const json_t *tprov;               /* the tenant's provider documents: no other provider is ever used */
	const char *system_prompt;         /* classifier_prompt() */
	const char *user_context;          /* classifier_context() */
	long timeout_ms;                   /* for the whole chain; <= 0 = CLASSIFIER_DEFAULT_TIMEOUT_MS */
	bool (*is_open)(void *arg, const char *provider_id);   /* open breaker: skip; NULL = never */
	void *open_arg;
};

struct classifier_outcome {
	bool ok;                           /* a reply was received (it may still fail classifier_parse) */
	char *content;                     /* the reply text (free()), NULL when none */
	char model[257];                   /* the model that answered (or was tried last) */
	char provider_id[25];
	long input_tokens, output_tokens;
	int64_t cost_micro;                /* what the calls cost, micro-dollars (all attempts that reported usage) */
	int64_t elapsed_ms;
	int attempts;
	char error[256];                   /* why no reply: "classifier_not_configured", "timeout", ... */
};

/* True when the tenant has a classifier (routing.classifierProvider and classifierModel, the provider
 * being one of the tenant's). */
bool classifier_configured(const json_t *tenant_doc, const json_t *tprov);

/* Calls the chain: the classifier, then at most CLASSIFIER_MAX_FALLBACKS of routing.classifierFallbacks
 * (those naming both a provider and a model), non-streaming, temperature 0, max_tokens 512, in order until
 * one answers with text content.  An entry is skipped when its provider is not in tprov
 * ("classifier_provider_not_of_tenant"), its breaker is open ("circuit_open") or its type has no adapter;
 * every call's timeouts (connect, first byte, idle, total) are bounded by what is left of the deadline,
 * and no call starts with less than 50 ms left ("timeout").  A failed call gives "timeout" or
 * "provider_error: <sanitised message>", and a warning in the log (provider name, model, error class).
 * No chain: "classifier_not_configured".  error holds the last reason when no reply came.  Tokens and cost
 * add up over every attempt that reported usage (cost_price with the tenant and the provider document).
 * The breakers are only read, never reported to.  Always fills out (free its content with
 * classifier_outcome_free; content is at most CLASSIFIER_MAX_REPLY bytes). */
void classifier_call(const struct classifier_request *rq, struct classifier_outcome *out);
void classifier_outcome_free(struct classifier_outcome *out);

#endif
