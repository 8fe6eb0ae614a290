/* pipeline.h -- the OpenAI-compatible request path: POST chat/completions, completions and embeddings.
 *
 * A request is one struct gw_call carried through an ordered array of stages (gw_stages); each stage may
 * end the request with a specific error, and adding a policy means adding a stage:
 *
 *   auth          the Bearer key, through the shm tenant cache (gw_authenticate); the tenant document
 *   parse         the JSON body, validated field by field (400 invalid_request_error naming the field);
 *                 the session id (x-session-id)
 *   prefix        "slug/model" with the slug of any provider
 *   alias         tenant.modelConfig.aliases, one lookup (an alias may lead to auto)
 *   force_route   the tenant's force-route mode sends a chat request that names a model to the router,
 *                 unless it names a provider or carries the opt-out token (taken out of every chat request)
 *   auto_routing  auto, auto-prism, model-prism (and force-routed requests): routing/engine.h decides the
 *                 model; the tenant's limits are checked before a classifier call; 400
 *                 auto_routing_disabled / auto_routing_unavailable, 503 no_route
 *   system_prompt the tenant's defaultSystemPrompt, the routed category's prompt and the force-route note,
 *                 appended to the system prompt (not for fill-in-the-middle requests)
 *   plan          the candidate providers (plan.h): explicit slug, fallback chain, providers listing it
 *   policy        the tenant's whitelist/blacklist on every candidate (403 model_not_allowed)
 *   context       estimated input + reserved output against the context window; a larger-context model
 *                 of the tenant when it does not fit (context_fallback), else 400 context_length_exceeded
 *   max_tokens    max_tokens / max_completion_tokens clamped to the model's output limit
 *   limits        tenant requests/min and tokens/min, charged with the estimate (input + max_tokens)
 *   transform     the upstream body: stream flags, stream_options, message block types
 *   dispatch      the candidates in order, skipping open breakers; failover on unhealthy answers and rate
 *                 limits, never on the client's own mistakes; one retry on a larger model after a context
 *                 overflow, one with the provider's limit after a max_tokens error; streams fail over only
 *                 until the first event reached the client
 *   enrich        the answer: cost_info, auto_routing, context_fallback, session_id (non-streaming); the
 *                 usage chunk, the auto_routing chunk and [DONE] (streaming)
 *   accounting    always, once the tenant is known: the token limit settled with the real usage, one
 *                 RequestLog with the list of attempts (analytics_submit), the metrics
 *
 * Errors are in the OpenAI shape with stable codes (prism-api(7) lists them).  Handlers are thread-safe:
 * all state is in the call, except the provider documents, which each process caches read-only (shared by
 * its threads) and reloads after any invalidation of the tenant cache (an admin change on this host, a new
 * store generation from another) or GW_PROVIDERS_TTL_MS.
 */
#ifndef PRISM_GATEWAY_PIPELINE_H
#define PRISM_GATEWAY_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/request.h"
#include "providers/provider.h"
#include "util/err.h"

#define GW_MAX_MESSAGES 10000          /* messages of one chat request */
#define GW_MAX_N 8                     /* choices of one request */
#define GW_MAX_STOP 4
#define GW_MAX_EMBED_INPUTS 2048
#define GW_MAX_OUTPUT_TOKENS 10000000L /* max_tokens accepted at all (the model's limit clamps further) */
#define GW_DEFAULT_RESERVE 4096L       /* output tokens reserved by the pre-flight when max_tokens is unset */
#define GW_MAX_SESSION_ID 128
#define GW_MAX_USER 128
#define GW_MAX_ATTEMPTS 24
#define GW_MAX_MESSAGE 512             /* one client-facing error message */
#define GW_MAX_SKIPPED 512             /* the names of the providers skipped for open breakers */
#define GW_PROVIDERS_TTL_MS 30000L     /* the per-process provider cache; it also follows every invalidation */

enum gw_endpoint { GW_EP_CHAT = 0, GW_EP_COMPLETIONS = 1, GW_EP_EMBEDDINGS = 2 };

struct gw_call;

#define GW_STAGE_ALWAYS 0x1u           /* runs even after an earlier stage ended the request */

struct gw_stage {
	const char *name;
	enum prism_err (*run)(struct gw_call *c);
	unsigned endpoints;                /* bit (1 << GW_EP_x) for each endpoint it applies to */
	unsigned flags;
};

extern const struct gw_stage gw_stages[];
extern const size_t gw_nstages;

/* Route handlers. */
enum prism_err gw_chat(struct request *req);
enum prism_err gw_completions(struct request *req);
enum prism_err gw_embeddings(struct request *req);

/* --- pure parts, exposed for the unit tests -------------------------------------------------------------- */

/* Validates a request body for the endpoint: PRISM_OK, or PRISM_E_BAD_REQUEST with a client-safe message
 * naming the field ("messages[2].role: must be one of system, user, ...") and the field in *param. */
enum prism_err pipeline_validate(enum gw_endpoint ep, const json_t *body, char *msg, size_t msglen,
				 char *param, size_t paramlen);

/* One upstream attempt, as logged. */
struct gw_attempt {
	char provider_id[25];
	char provider_name[128];
	char model[257];
	int status;                        /* upstream HTTP status; 0 when none */
	enum provider_errclass errclass;
	long retry_after_s;
	int64_t latency_ms;
	int64_t first_byte_ms;             /* from the start of the call; <= 0 when none */
	bool skipped;                      /* not called: its circuit breaker is open */
	char message[PROVIDER_MAX_MESSAGE];
};

/* The answer to a request that failed upstream. */
struct gw_failure {
	int status;
	const char *type, *code;           /* static strings */
	long retry_after_s;                /* > 0: a Retry-After header */
	char message[GW_MAX_MESSAGE];
};

/* Maps the attempts of a request that no provider answered to one client error: the provider's verdict on
 * the request itself (400 context_length_exceeded, max_tokens_exceeded, upstream_bad_request) when the last
 * attempt says so; else 429 with Retry-After when a provider rate-limited, 502 upstream_auth_failed when
 * every provider refused the gateway's credentials, 504 upstream_timeout when all timed out, 502
 * upstream_error otherwise -- each naming the providers tried.  Skipped attempts (open breakers) do not
 * count; with no real attempt: 503 providers_unavailable naming the providers skipped (`skipped`,
 * comma-separated). */
void pipeline_map_failure(const struct gw_attempt *a, size_t n, const char *model, const char *skipped,
			  struct gw_failure *out);

/* The session id of a request: the x-session-id header when usable (printable, at most GW_MAX_SESSION_ID
 * bytes), else, for a conversation (a system message and more than one user message), "sp-" + 16 hex of
 * SHA-256(key id, system prompt) + "-" + tenant slug -- so users with different keys never share one --,
 * else a random UUID of version 7 (time-ordered). */
void pipeline_session_id(const char *header, const json_t *messages, const char *key_id, const char *slug,
			 char out[GW_MAX_SESSION_ID + 1]);

#endif
