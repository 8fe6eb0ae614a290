/* gwinfo.h -- the gateway's informational endpoints: model lists, health and the IDE config generators.
 *
 * Each handler serves the three prefixes: /api/<tenant>/v1/... (the tenant in the path) and /v1/... and
 * /api/v1/... (no tenant in the path: an API key selects its own tenant; the unauthenticated endpoints use
 * the default tenant, isDefault = true).
 *
 *   GET models              API key.  {"object":"list","data":[{id:"<provider slug>/<model id>", object,
 *                           created (the provider's createdAt, seconds), owned_by (provider name)}]}: the
 *                           visible discovered models of the tenant's providers allowed by its model policy,
 *                           "auto-prism" first when routing is enabled.
 *   GET models/<id>         API key.  One entry of that list: "<slug>/<model>" as two path segments, or
 *                           the bare model id (the router refuses a %2F inside one segment); 404
 *                           model_not_found.
 *   GET models/public       No key.  The same list without `created`, for an active tenant only.
 *   GET health              No key.  {status: ok|degraded, tenant, providers:[{name,status}], timestamp};
 *                           200 when every provider is connected, else 207; 404 for an unknown or inactive
 *                           tenant.  No key details (the original exposed keyEnabled/keyExpired).
 *   GET config/models       API key of that tenant (header, or the apiKey query parameter): the IDE model
 *   GET config/continue     catalogue with tier advice, a Continue.dev YAML file, an OpenCode JSON file.
 *   GET config/opencode     The generated files use the base URL of the prefix they were fetched from and
 *                           the auto-router id "auto".
 *
 * Errors use the OpenAI shape (gw_error).  Thread-safe (per-request state only).
 */
#ifndef PRISM_GATEWAY_GWINFO_H
#define PRISM_GATEWAY_GWINFO_H

#include "core/request.h"
#include "util/err.h"

enum prism_err gwinfo_models(struct request *req);
enum prism_err gwinfo_model(struct request *req);
enum prism_err gwinfo_models_public(struct request *req);
enum prism_err gwinfo_health(struct request *req);
enum prism_err gwinfo_config_models(struct request *req);
enum prism_err gwinfo_config_continue(struct request *req);
enum prism_err gwinfo_config_opencode(struct request *req);

#endif
