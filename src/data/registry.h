/* registry.h -- the local model registry (88 known models with prices, context windows, tiers, benchmarks)
 * and the static price tables used for cost fallbacks and model discovery.
 *
 * The tables are immutable static data; the lookups are thread-safe (the normalised patterns are computed
 * once, under pthread_once, on first use) and never fail except by finding nothing.  Registry order
 * matters: the fuzzy lookups return the first match in table order.  Returned entries are borrowed and live
 * for the whole program; the *_json functions return new references.
 */
#ifndef PRISM_REGISTRY_H
#define PRISM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Normalised ids are at most this long (including the NUL); longer results are truncated. */
#define REGISTRY_MAX_NORM 256

struct registry_model {
	const char *id, *family, *vendor, *tier;
	double input_per_1m, output_per_1m;  /* USD per 1M tokens; < 0 = unknown */
	long context_window, max_output_tokens; /* 0 = unknown */
	int priority;
	const char *const *categories;       /* NULL-terminated; used only to enrich discovered models */
	const char *openrouter_id;           /* NULL when none */
	const char *const *patterns;         /* NULL-terminated; matched on their normalised forms */
	int bench_intelligence, bench_coding, bench_math, bench_speed;
	bool has_bench;                      /* false: no benchmark scores (the bench_* fields are 0) */
};

extern const struct registry_model registry_models[];
extern const size_t registry_nmodels;

/* Canonical form of a model id, used by both the registry and models.dev: lowercase; drop a trailing
 * ":<digits>"; drop a leading region ("eu.", "us.", "ap.", "us-gov.", "global.") and then one vendor
 * prefix followed by a dot; whitespace, '.', '_', '/' become '-', runs of '-' collapse, '-' trimmed; then
 * the first "-<8 digits>", the first "-<4 digits>" and the first "-v<N>[-<M>]" that end at a '-' or the
 * end are removed; a trailing "-latest" is dropped; collapse and trim again.
 * "eu.anthropic.claude-sonnet-4-20250514-v1:0" -> "claude-sonnet-4".  NULL id gives "".  The result is
 * truncated to outlen - 1 bytes (outlen >= 1; REGISTRY_MAX_NORM is always enough for lookups). */
void registry_normalise(const char *id, char *out, size_t outlen);

/* The registry entry for a model id, or NULL (NULL or empty id, or no match).  With n = normalised id:
 * 1. the first entry (in table order, patterns in order) with a pattern whose normalised form equals n;
 * 2. else the entry of the longest normalised pattern contained in n (first one on a tie);
 * 3. else, when n has at least 2 characters, the first entry with a normalised pattern containing n. */
const struct registry_model *registry_find(const char *model_id);

/* The suggestion object for an entry: {family, vendor, tier, inputPer1M, outputPer1M, contextWindow,
 * maxOutputTokens (null when unknown), categories, priority, openrouterId (absent when none),
 * benchmarks ({intelligence, coding, math, speed} or null), source: "local_registry"}.  Integral prices
 * are JSON integers.  A new reference. */
json_t *registry_suggestion_json(const struct registry_model *m);

/* The default price of a model (USD per 1M tokens) from the built-in default table: the key equal to the
 * lowercased id, else the longest key contained in it (the first on a tie).  false when none matches; the
 * outputs are then unchanged. */
bool registry_default_price(const char *model_id, double *in_per_1m, double *out_per_1m);

/* The price a provider of this type charges for a model, as used by model discovery.  The table is chosen
 * by keywords in the lowercased "<type> <name>" (first match: bedrock; azure, az-openai; gemini, google,
 * vertex; anthropic, claude; openai, openrouter); the id is lowercased with '_', '.', ':' and '/' turned into
 * '-' and looked up like registry_default_price (so table keys containing '.' never match, as in the
 * original).  NULL type or name count as "".  false when no table or no key matches. */
bool registry_provider_type_price(const char *provider_type, const char *provider_name, const char *model_id,
				  double *in_per_1m, double *out_per_1m);

/* Both price tables as a new object: {"default": [{model, input, output}, ...],
 * "providerTypes": [{keywords: [...], prices: [{model, input, output}, ...]}, ...]}, in lookup order. */
json_t *registry_prices_json(void);

#endif
