/* gw.h -- what the gateway's modules share: the authenticated tenant, the token estimator, prices.
 *
 * Authentication (gwauth.c): the Bearer key of the request → SHA-256 → the tenant, through the
 * shared-memory tenant cache (shm/tenantcache.h) and, on a miss, the store (tenants.apiKeyHashes, then the
 * legacy apiKeyHash).  The tenant document itself is read from the store on every request that needs more
 * than the snapshot (providers, policy, pricing); the cache answers "who, enabled, expired, limits".
 * Errors, in the OpenAI shape with these codes: 401 missing_api_key ("API key required"), 401
 * invalid_api_key ("Invalid API key or tenant"), 401 key_disabled, 401 key_expired, 403 tenant_disabled;
 * a key of another tenant than the one in the URL is invalid_api_key (the default tenant's URLs, /v1 and
 * /api/v1, accept any tenant's key and select that tenant).
 *
 * Limits (gwauth.c): per-tenant requests per minute and tokens per minute (rateLimit.requestsPerMinute,
 * tokensPerMinute; 0 = none), sliding windows in shared memory, exact across the pool: 429
 * tenant_rate_limit_exceeded / tenant_token_limit_exceeded with Retry-After and the RateLimit fields.
 * Tokens are charged with the estimate before the call and corrected upwards with the real usage after it
 * (ratelimit.h cannot refund, so an overestimate stays charged: the error is on the safe side).
 *
 * One token estimator for the whole program (tokens.c; lengths in Unicode code points, where the original
 * counted UTF-16 units) and one price resolution (cost.c: tenant override → the provider's price for the
 * model → the built-in default prices → the registry → 0), used by cost_info, analytics and budgets
 * alike.  Costs are integer micro-dollars inside (1 token at $1 per 1M tokens = 1 micro-dollar), USD at
 * the API boundary.
 *
 * Thread-safe: per-request state only (gw_error_last is per thread).
 */
#ifndef PRISM_GATEWAY_GW_H
#define PRISM_GATEWAY_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/request.h"
#include "shm/tenantcache.h"
#include "store/store.h"

struct gw_tenant {
	struct tenant_snapshot snap;     /* from the cache or the store */
	json_t *doc;                     /* the full tenant document (owned), loaded by gw_tenant_load */
	char key_hash[65];
};

/* tenant_snapshot.model_policy_mode and routing_force_mode values. */
enum gw_policy_mode { GW_POLICY_ALL = 0, GW_POLICY_WHITELIST = 1, GW_POLICY_BLACKLIST = 2 };
enum gw_force_mode { GW_FORCE_OFF = 0, GW_FORCE_FIM_ONLY = 1, GW_FORCE_SMART = 2, GW_FORCE_ALL = 3 };

/* Failure convention of gw_authenticate, gw_authenticate_key, gw_tenant_load and gw_limits_check: the error
 * has already been ANSWERED (through gw_error: status, OpenAI type and the specific code, plus Retry-After
 * and RateLimit fields for 429) and req->errdetail holds the message; the caller just returns the code
 * (the front then only logs it).  gw_error_last() tells the accounting stage what was answered. */

/* Authenticates the request for the tenant named in the path (slug NULL: the default tenant's routes).
 * The key: "Authorization: Bearer <key>" (scheme case-insensitive, key trimmed), else the x-api-key or
 * api-key header (Anthropic and Azure SDKs).  On success fills *t (snap only; doc NULL) and req->tenant. */
enum prism_err gw_authenticate(struct request *req, const char *slug, struct gw_tenant *t);
/* The same with an explicit key (len bytes; e.g. the config endpoints' apiKey query parameter). */
enum prism_err gw_authenticate_key(struct request *req, const char *slug, const char *key, size_t len,
				   struct gw_tenant *t);
/* The key the request carries (borrowed from its headers, trimmed, not NUL-terminated); false when none. */
bool gw_request_key(const struct request *req, const char **key, size_t *len);
/* Sets t->doc (the full tenant document, schema defaults filled in; shared read-only: never change it) from
 * this process's copy, or from the store when the copy is older than the last invalidation or 30 s.  503
 * when the store is down and there is no copy; 401 invalid_api_key when the tenant went away; 403
 * tenant_disabled when it was deactivated. */
enum prism_err gw_tenant_load(struct request *req, struct gw_tenant *t);
void gw_tenant_free(struct gw_tenant *t);
/* Per-tenant request limit (one request) and token limit (estimate); 429 on excess.  The request unit is
 * counted before the token check, so a request refused for its tokens still counts as a request. */
enum prism_err gw_limits_check(struct request *req, const struct gw_tenant *t, long estimated_tokens);
/* After the call: charges the difference between real and estimated tokens.  A negative difference is not
 * refunded (ratelimit.h has no refund): the estimate stays charged, on the safe side. */
void gw_limits_settle(const struct gw_tenant *t, long estimated_tokens, long real_tokens);

/* Answers a gateway error in the OpenAI shape with an explicit code (the front answers plain ones).
 * Returns the prism_err matching the status (401 PRISM_E_UNAUTHORIZED, 429 PRISM_E_RATE_LIMITED, ...). */
enum prism_err gw_error(struct request *req, int status, const char *type, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The last gateway error gw_error answered on this thread (status 0 and "" when none since
 * gw_error_reset).  For the accounting stage: RequestLog status and errorType. */
void gw_error_last(int *status, const char **type, const char **code);
void gw_error_reset(void);

/* The tenant's model policy (modelConfig.mode/list) for a model offered by provider_slug (may be NULL):
 * with a whitelist (non-empty) the model must be listed, with a blacklist it must not be; mode "all" or an
 * empty list allows everything.  An entry names a model by its bare id or as "<provider slug>/<id>". */
bool gw_model_allowed(const json_t *tenant_doc, const char *provider_slug, const char *model_id);

/* --- tokens.c ---------------------------------------------------------------------------------------- */
/* JavaScript truthiness of a JSON value, as the original tests its fields: NULL, null, false, "", 0 and NaN
 * are false (content "" or null gives the empty text). */
bool gw_json_truthy(const json_t *v);

/* The original's tokenService estimator (reference/original-gateway.md §12.2), one for the whole program. */
long tokens_estimate_text(const char *s, size_t len);
/* 3 + Σ(4 + role + content) over messages (array of {role, content}); 0 for a non-array. */
long tokens_estimate_messages(const json_t *messages);
/* A legacy/FIM completions prompt (string or array of strings). */
long tokens_estimate_prompt(const json_t *prompt);

/* --- cost.c ------------------------------------------------------------------------------------------ */
struct price {
	double input_per_1m, output_per_1m;  /* USD */
	const char *source;                  /* "tenant", "provider", "default", "registry", "none" */
};
/* Resolves the price of model_id: tenant.pricing[model] → the provider document's discoveredModels entry
 * (inputPer1M/outputPer1M) → registry_default_price → registry_find → 0. tenant_doc/provider_doc may be NULL. */
void cost_price(const json_t *tenant_doc, const json_t *provider_doc, const char *model_id, struct price *out);
/* Cost in integer micro-dollars, rounded half up. */
int64_t cost_micro_usd(const struct price *p, long input_tokens, long output_tokens);
/* Micro-dollars to USD for JSON answers (6 decimals exact). */
double cost_usd(int64_t micro);

#endif
