/* plan.h -- the provider plan of a gateway request: which model, on which providers, in which order.
 *
 * Pure functions over the tenant document and the provider documents (no store, no I/O), so every rule
 * is unit-tested on its own; the pipeline (pipeline.c) calls them stage by stage:
 *
 *   prefix   "slug/model" names a provider when slug is the slug of ANY provider (not only the tenant's),
 *            split at the first '/'; anything else is a model id of its own ("meta-llama/...").
 *   alias    tenant.modelConfig.aliases[model], one lookup, never chained.
 *   plan     the candidates, at most PLAN_MAX_CANDIDATES, in call order:
 *            - an explicit slug: that provider alone (when the tenant has it), even if it does not list
 *              the model (the caller asked for it by name);
 *            - else the tenant's fallback chain for the model (tenant.fallbackChains: the first entry whose
 *              modelPattern equals the model, else the first whose pattern matches as a glob with '*', else
 *              the "*" entry): its providers that are the tenant's and list the model, in chain order;
 *            - then every other tenant provider listing the model as visible, in providerIds order.
 *   policy   tenant.modelConfig {mode: whitelist|blacklist|all, list} through gw_model_allowed (the rule
 *            the model listings use: an entry names the bare id or "<provider slug>/<id>").  Applied to
 *            every candidate, fallbacks and context fallbacks included; a refused candidate is dropped.
 *   context  the effective context window: the provider's discoveredModels entry contextWindow, else the
 *            registry's; the larger-context search (the original's findLargerContextModel, fixed) only
 *            proposes models the policy allows on providers whose breaker is not open.
 *   target   struct provider_target from a provider document (config.baseUrl, options apiPath, httpProxy,
 *            tlsVerify, caFile, extraHeaders, connectTimeoutMs, firstByteTimeoutMs, idleTimeoutMs,
 *            timeoutMs), with the API key decrypted (and wiped by plan_target_close).
 *
 * Ownership: candidates borrow from the documents passed in; they live as long as those.  Thread-safe.
 */
#ifndef PRISM_GATEWAY_PLAN_H
#define PRISM_GATEWAY_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "providers/provider.h"
#include "util/config.h"
#include "util/err.h"

#define PLAN_MAX_CANDIDATES 16
#define PLAN_MAX_MODEL 256            /* a model id, bytes */
#define PLAN_MAX_SLUG 64              /* a provider slug, bytes */

/* The canonical tier order (one for the whole program): micro < minimal < low < ... < critical. */
int plan_tier_index(const char *tier);     /* -1 when unknown or NULL */

/* True for the ids that mean "route automatically": auto, auto-prism, model-prism. */
bool plan_is_auto_model(const char *model);

/* "slug/model" with slug one of the providers' slugs: copies slug (empty when none) and returns the bare
 * model (a pointer into `model`); otherwise returns `model` unchanged with slug "". */
const char *plan_split_prefix(const json_t *providers, const char *model, char slug[PLAN_MAX_SLUG + 1]);

/* tenant.modelConfig.aliases[model] (borrowed), or NULL. */
const char *plan_alias(const json_t *tenant_doc, const char *model);

/* Glob with '*' (any run of characters, also none); every other character matches itself. */
bool plan_glob(const char *pattern, const char *s);

/* The tenant's model policy for `model` served by the provider with `slug` (NULL or "" when not known). */
bool plan_policy_allows(const json_t *tenant_doc, const char *model, const char *slug);

/* The tenant's providers (those of tenant.providerIds that exist), in providerIds order: a new array
 * holding references to the documents of `providers`. */
json_t *plan_tenant_providers(const json_t *tenant_doc, const json_t *providers);

/* The provider document with this slug in `providers` (borrowed), or NULL. */
const json_t *plan_provider_by_slug(const json_t *providers, const char *slug);

/* A provider's discoveredModels entry for model (borrowed), or NULL; visible_only skips visible:false. */
const json_t *plan_model_entry(const json_t *provider, const char *model, bool visible_only);

/* The effective context window and output limit of model on a provider (entry may be NULL): the entry's
 * contextWindow / maxOutputTokens, else the registry's; 0 when unknown. */
long plan_context_window(const json_t *entry, const char *model);
long plan_max_output(const json_t *entry, const char *model);

struct plan_candidate {
	const json_t *provider;       /* borrowed */
	const json_t *entry;          /* its discoveredModels entry for the model, or NULL */
	const char *id, *name, *slug, *type;   /* borrowed from provider ("" when absent) */
	char model[PLAN_MAX_MODEL + 1];
	long context_window;          /* 0 = unknown */
	long max_output;              /* 0 = unknown */
};

struct plan {
	struct plan_candidate *c;     /* n of them, at most PLAN_MAX_CANDIDATES, on the heap (plan_free) */
	size_t n, cap;
	size_t dropped_policy;        /* candidates the policy removed (plan_apply_policy) */
	char chain[PLAN_MAX_MODEL + 1];   /* the modelPattern of the fallback chain used; "" = none */
};

/* Builds the candidates for model (see above) into p, which it treats as uninitialised (plan_free a plan
 * before building it again).  tprov: plan_tenant_providers().  any_visibility: also providers listing the
 * model hidden (embeddings models are often hidden from the chat listing). */
void plan_build(struct plan *p, const json_t *tenant_doc, const json_t *tprov, const char *model,
		const char *explicit_slug, bool any_visibility);
void plan_free(struct plan *p);
/* Drops the candidates the policy refuses; returns how many it dropped (also in p->dropped_policy). */
size_t plan_apply_policy(struct plan *p, const json_t *tenant_doc);

/* Is the breaker of provider `id` open (a peek: no probe is taken)?  NULL = never. */
typedef bool (*plan_open_fn)(void *arg, const char *provider_id);

/* A model of the tenant with a context window of at least `needed` tokens (and larger than current's),
 * served by a provider whose breaker is not open, that the policy allows; preferring current's tier, then
 * one tier below, then one above, and within that the smallest window (the first in provider and discovery
 * order on a tie); else the smallest window of any tier.  Copies it to out and returns true; false when
 * none. */
bool plan_larger_model(const json_t *tenant_doc, const json_t *tprov, const char *current, long needed,
		       plan_open_fn is_open, void *arg, char out[PLAN_MAX_MODEL + 1], long *ctx_out);

/* A call target built from a provider document. */
struct plan_target {
	struct provider_target t;     /* its strings borrow from the document and from the fields below */
	char *base_url;               /* config.baseUrl without a trailing '/'; freed by plan_target_close */
	char *api_key;                /* decrypted; wiped and freed by plan_target_close */
};

/* Fills pt from the provider document (which must outlive it).  PRISM_E_CONFIG when the stored key cannot
 * be decrypted with the configured encryption keys (detail in err).  On the heap, not in pt, what may be
 * long: a request thread's stack keeps every page it touched while it relays a stream. */
enum prism_err plan_target_open(const struct config *cfg, const json_t *provider, struct plan_target *pt,
				char *err, size_t errlen);
void plan_target_close(struct plan_target *pt);

#endif
