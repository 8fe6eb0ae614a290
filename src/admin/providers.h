/* providers.h -- LLM provider administration (/api/prism/admin/providers/...): the provider documents
 * (collection providers), their secrets, connection tests, model discovery and the model registry
 * metadata kept in each provider's discoveredModels.
 *
 * Secrets (config.auth.apiKey, accessKeyId, secretAccessKey) are stored only encrypted (crypto.h, the
 * original's enc: format) and never leave the server: every answer shows "***" for a set secret and
 * config.auth.hasCredentials.  Calls to a provider (test, check, discover) go through httpc.h with the
 * provider's own proxy, TLS and timeout options; each is audited with the URL it called.
 *
 * Every write is audited (audit.h) and followed by admin_changed().  Writes to an existing provider read
 * its __v and retry on a concurrent change (PROVIDER_WRITE_ATTEMPTS), so a discovery running next to an
 * edit loses neither.  Handlers are thread-safe (per-request state only).
 */
#ifndef PRISM_ADMIN_PROVIDERS_H
#define PRISM_ADMIN_PROVIDERS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/request.h"
#include "util/config.h"
#include "util/err.h"

#define PROVIDER_MAX_NAME 200
#define PROVIDER_MAX_SLUG 48
#define PROVIDER_MAX_URL 2048
#define PROVIDER_MAX_SECRET 8192           /* one API key or AWS secret, plaintext bytes */
#define PROVIDER_MAX_REGION 64
#define PROVIDER_MAX_OPTION 4096           /* one string option (paths, lists, header values) */
#define PROVIDER_MAX_OPTIONS 64            /* keys in config.options */
#define PROVIDER_MAX_MODEL_ID 256
#define PROVIDER_MAX_MODELS 5000           /* models kept from one discovery */
#define PROVIDER_MAX_COUNT 1000            /* providers one installation may have */
#define PROVIDER_MAX_CATEGORIES 64         /* categories of one model */
#define PROVIDER_MAX_NOTES 4000
#define PROVIDER_MAX_REORDER 10000         /* items of one reorder-tier request */
#define PROVIDER_WRITE_ATTEMPTS 8          /* read-modify-write retries on a concurrent change */
/* config.options bounds. */
#define PROVIDER_CONNECT_TIMEOUT_MIN 100L
#define PROVIDER_CONNECT_TIMEOUT_MAX 120000L
#define PROVIDER_TIMEOUT_MIN 1000L
#define PROVIDER_TIMEOUT_MAX 600000L

/* A provider document as clients see it: secrets replaced by "***" (when set), config.auth.hasCredentials
 * added.  A new reference. */
json_t *providers_view(const json_t *doc);

/* The derived slug of a name (the original's rule): lower-case, every run of other characters than
 * [a-z0-9] becomes '-', one leading and trailing '-' dropped, at most PROVIDER_MAX_SLUG characters,
 * "provider" when nothing is left.  out has PROVIDER_MAX_SLUG + 1 bytes. */
void providers_slugify(const char *name, char out[PROVIDER_MAX_SLUG + 1]);
/* A supplied slug: ^[a-z0-9][a-z0-9-]*$, at most PROVIDER_MAX_SLUG characters. */
bool providers_slug_valid(const char *slug);

/* Decrypts a secret of config.auth (field "apiKey", ...) with the configured keys.  *out: NULL when not
 * set, else a malloc'd plaintext (free with crypto_free_secret).  PRISM_E_CONFIG when no key opens it. */
enum prism_err providers_secret(const struct config *cfg, const json_t *doc, const char *field, char **out);

/* Handlers. */
enum prism_err providers_list(struct request *req);
enum prism_err providers_create(struct request *req);
enum prism_err providers_get(struct request *req);
enum prism_err providers_update(struct request *req);
enum prism_err providers_delete(struct request *req);
enum prism_err providers_reorder(struct request *req);
enum prism_err providers_test(struct request *req);
enum prism_err providers_check(struct request *req);
enum prism_err providers_discover(struct request *req);
enum prism_err providers_models_all(struct request *req);
enum prism_err providers_models_suggest(struct request *req);
enum prism_err providers_reorder_tier(struct request *req);
enum prism_err providers_patch_model(struct request *req);

#endif
