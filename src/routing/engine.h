/* engine.h -- the routing decision (reference/original-gateway.md §5, with its §17 defects fixed).
 *
 * route_decide runs, in this order:
 *
 *   1. signals          signals_extract on the request
 *   2. strictness       fim_only: a request that is not FIM keeps the model the user named
 *   3. pre-routing      FIM fast path (micro, coding_autocomplete), else the tenant's rule set
 *                       (rdata_ruleset_for: its own, else the global default, else the built-in one)
 *   4. classifier       only when the pre-route is not confident, the caller allows it and the tenant has a
 *                       classifier; its answer is validated (classifier_parse); when it fails, is malformed
 *                       or too slow the decision continues from the pre-route ("classifier_fallback")
 *   5. tier floor       after the classifier, the pre-route's tier is a floor ("rule_tiermin:<source>")
 *   6. overrides        the tenant's routing.overrides: vision, tool calls, confidence fallback (raises to
 *                       medium, never lowers), domain gate, conversation turns, frustration, output length
 *   7. session fill     +1 tier when the session's previous request filled >= the threshold of its window
 *   8. cost mode        the rule set's economy (-1) / quality (+1); not for FIM requests
 *   9. tier boost       the rule set's -2..+2; not for FIM requests
 *  10. selection        smart strictness keeps the user's model when the category's own tier is at least
 *                       medium (a substantial task); the
 *                       classifier's recommendation when its tier is high enough; the category's default
 *                       model; else the best benchmark-per-price model of the final tier, else of the
 *                       nearest tier that has one (one above before one below); else the tenant's
 *                       routing.defaultModel when the model policy allows it.  Every candidate is a visible model of one of the tenant's
 *                       providers that the tenant's model policy allows, whose provider's breaker is not
 *                       open and whose context window holds the request.
 *  11. tier cap         when the request was force-routed away from a model the user named, a model of a
 *                       higher tier than the user's is replaced by the user's ("tier_cap:<model>")
 *
 * After a tier cap or a smart keep, the reported tier is the chosen model's.
 *
 * Every step that changes something appends its name to `overrides` ('+'-joined, never overwritten).
 * With a trace array, each step appends {step, name, changed, data}: POST .../routing/test-route shows it.
 *
 * Thread-safe; no I/O except the classifier call (step 4).
 */
#ifndef PRISM_ROUTING_ENGINE_H
#define PRISM_ROUTING_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "routing/classifier.h"
#include "routing/rdata.h"
#include "routing/routing.h"
#include "util/config.h"

#define ROUTE_MAX_MODEL 257
#define ROUTE_MAX_OVERRIDES 1024
#define ROUTE_SESSION_FILL_DEFAULT 0.75

enum route_strictness { ROUTE_STRICT_NONE = 0, ROUTE_STRICT_FIM_ONLY, ROUTE_STRICT_SMART };

struct route_input {
	const json_t *request;             /* the chat request body */
	const json_t *tenant_doc;          /* routing settings, overrides, model policy */
	const json_t *tprov;               /* the tenant's provider documents (plan_tenant_providers) */
	const struct rdata *rd;
	const char *user_model;            /* force-routed: the model the user named (after alias); else NULL */
	enum route_strictness strictness;
	double prev_fill_pct;              /* the session's previous fill of its context window; < 0 = unknown */
	long reserve_tokens;               /* output the request reserves (max_tokens); a model must hold input + this */
	bool use_classifier;               /* false: never call the classifier (a dry run) */
	const struct config *cfg;          /* for the classifier's provider credentials */
	long classifier_timeout_ms;        /* <= 0: the tenant's routing.classifierTimeoutMs, else 3 s */
	bool (*is_open)(void *arg, const char *provider_id);   /* open breaker; NULL = never */
	void *open_arg;
	/* Called once right before the classifier would be called (it costs money and time): false stops the
	 * decision there (route_result.stopped) -- the gateway checks the tenant's limits here.  NULL = go on. */
	bool (*before_classifier)(void *arg);
	void *before_arg;
};

struct route_result {
	struct route_signals sig;
	bool ok;                           /* a model was chosen (model is set) */
	bool stopped;                      /* before_classifier said no: nothing else is valid */
	char model[ROUTE_MAX_MODEL];
	char provider_id[25];
	char selection[48];                /* benchmark_balanced, classifier_recommendation, category_default,
					      strictness_keep_user, strictness_smart_keep_user, tenant_default */
	char category[ROUTE_MAX_KEY];      /* "" = none (fim_only keep) */
	int tier;                          /* the final tier */
	int model_tier;                    /* the chosen model's tier (-1 unknown) */
	double confidence;
	char complexity[16];
	char domain[ROUTE_MAX_KEY];
	char language[16];
	char output_length[16];
	int conversation_turn;
	bool frustration;
	bool prerouted;
	char source[ROUTE_MAX_SOURCE];     /* the pre-route's source */
	char reason[512];
	char task_type[ROUTE_MAX_KEY];
	char overrides[ROUTE_MAX_OVERRIDES];
	char recommended[ROUTE_MAX_MODEL];
	const char *category_prompt;       /* the category's targetSystemPrompt (borrowed from rd), "" = none */
	/* the classifier, when it was called */
	bool classifier_called;
	char classifier_model[ROUTE_MAX_MODEL];
	long classifier_in, classifier_out;
	int64_t classifier_cost_micro;
	int64_t classifier_ms;
	char classifier_error[256];
	int64_t analysis_us;               /* the decision's own time, without the classifier call */
};

/* Decides (see above).  Always fills out; out->ok is false when no model of the tenant fits and the tenant
 * has no default model.  trace: a JSON array to append the steps to, or NULL. */
void route_decide(const struct route_input *in, struct route_result *out, json_t *trace);

/* The response's "auto_routing" object for a result (a new reference). */
json_t *route_result_json(const struct route_result *r);

/* The request log's routing fields (category, costTier, confidence, overrideApplied, routingSignals, ...)
 * added to log; isAutoRouted is the caller's. */
void route_result_log(const struct route_result *r, json_t *log);

/* The tenant's force-route mode: "off" while routing.enabled is off (the original rewrote the model even
 * then, and every request failed); else routing.forceAutoRouteMode when it is all, smart or fim_only; else
 * "all" when the legacy boolean routing.forceAutoRoute is true; else "off". */
const char *route_force_mode(const json_t *tenant_doc);
enum route_strictness route_strictness_of(const char *mode);

/* Appends instruction to the request's system prompt: to the last system message (string content, or a
 * new text block of array content) unless it already contains it, else a new first system message. */
void route_inject_system(json_t *request, const char *instruction);

#endif
