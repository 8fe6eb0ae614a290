/* tenants.h -- tenants and their API keys (/api/prism/admin/tenants/...); shared with the tenant portal.
 *
 * One key system.  Every API key is an entry of apiKeys[]: {_id, hash, prefix, label, enabled, custom,
 * expiresAt, lastUsedAt, createdAt, primary?}, stored only as the SHA-256 hex of the key and a short display
 * prefix.  Generated keys are "omp-" + 64 hex (32 random bytes); custom keys are 16..256 printable ASCII
 * characters.  A key is shown once, in the answer that created or rotated it, and never again.  The entry
 * marked primary is the one rotate-key and set-key replace.
 *
 * Documents written by the original program may still carry its single-key fields (apiKeyHash,
 * apiKeyPrefix, apiKeyEncrypted, keyEnabled, keyExpiresAt, customApiKey): they are shown as the synthetic
 * key "legacy" and go away when that key is rotated, replaced, changed or revoked (the key then moves into
 * apiKeys[]).  Every write drops the encrypted key copies the original kept.  The top-level array
 * apiKeyHashes mirrors every hash of the tenant (tenants_sync_hashes runs before every write) so the gateway
 * finds a key with one indexed lookup.  No answer contains a hash, an encrypted copy or a stored key.
 *
 * Writes read the document, change it and write it back naming the version they read (__v); when another
 * writer got there first they start again (tenants_modify), so concurrent changes are never lost.  Every
 * write is audited (targets "tenant" and "api-key", never with key material) and followed by
 * admin_changed(), which makes a disabled or revoked key stop working at once on this host.
 *
 * Thread-safe (per-request state only).
 */
#ifndef PRISM_ADMIN_TENANTS_H
#define PRISM_ADMIN_TENANTS_H

#include <stdbool.h>

#include <jansson.h>

#include "core/request.h"
#include "store/store.h"

#define TENANT_KEY_PREFIX "omp-"
#define TENANT_KEY_LEN 68                  /* "omp-" + 64 hex */
#define TENANT_KEY_PREFIX_LEN 12           /* characters kept for display */

/* Limits of what the API accepts. */
#define TENANT_SLUG_MAX 48
#define TENANT_NAME_MAX 200
#define TENANT_LABEL_MAX 100
#define TENANT_CUSTOM_KEY_MIN 16
#define TENANT_CUSTOM_KEY_MAX 256
#define TENANT_MAX_KEYS 100                /* apiKeys[] entries per tenant */
#define TENANT_MAX_LIFETIME_DAYS 3650
#define TENANT_MAX_PROVIDERS 200           /* providerIds */
#define TENANT_MODEL_MAX 256               /* a model id or pattern */
#define TENANT_MAX_MODEL_LIST 5000         /* modelConfig.list */
#define TENANT_MAX_ALIASES 1000
#define TENANT_MAX_PRICING 5000
#define TENANT_MAX_CHAINS 100              /* fallbackChains, modelFallbacks */
#define TENANT_MAX_CHAIN_ITEMS 50          /* providers of a chain, fallbacks of a model fallback */
#define TENANT_MAX_CLASSIFIER_FALLBACKS 2      /* = CLASSIFIER_MAX_FALLBACKS: a bounded chain */
#define TENANT_MAX_PROMPT (16 * 1024)      /* defaultSystemPrompt, bytes */
#define TENANT_MAX_AMOUNT 1e9              /* rates, limits and prices */
#define TENANT_MAX_COUNT 100000            /* tenants read by one listing */
#define TENANT_WRITE_RETRIES 16            /* optimistic-version attempts */

#define TENANT_PRIMARY_LABEL "Primary key"
#define TENANT_LEGACY_KEY_ID "legacy"

/* A fresh key, its SHA-256 hex and its display prefix. */
enum prism_err tenants_new_key(char key[TENANT_KEY_LEN + 1], char hash[65], char prefix[TENANT_KEY_PREFIX_LEN + 1]);
/* A new apiKeys[] entry {_id, hash, prefix, label, enabled, custom, expiresAt, lastUsedAt, createdAt}. */
json_t *tenants_key_entry(const char *hash, const char *prefix, const char *label, bool custom, const char *expires_at);
/* Recomputes doc.apiKeyHashes from apiKeys[].hash and the legacy apiKeyHash. */
void tenants_sync_hashes(json_t *doc);
/* Fills the schema defaults the original's ODM applied on read (modelConfig, routing, rateLimit, ...)
 * into doc where absent. */
void tenants_fill_defaults(json_t *doc);

/* Setup: creates the default tenant (slug "api") with one random key unless a default tenant exists.
 * *info: NULL when nothing was created, else {_id, slug, name, apiKey, keyPrefix} (the key shown once). */
enum prism_err tenants_create_default(struct request *req, struct store *s, json_t **info);

/* The safe view of a tenant document (new reference): schema defaults filled in; without apiKeyHash,
 * apiKeyEncrypted, apiKeyHashes; apiKeys[] entries without hash and encrypted copy. */
json_t *tenants_view(const json_t *doc);
/* Answers 200 with the safe views of the tenants matching conds (all with nconds 0), oldest first. */
enum prism_err tenants_reply_list(struct request *req, const struct store_cond *conds, size_t nconds);

/* Changes a tenant in place; may fail with a client error (nothing is written then). */
typedef enum prism_err (*tenants_mutator)(struct request *req, struct store *s, json_t *doc, void *ctx);
/* Reads tenant `id`, applies fn, writes the result back with the version it read and starts again when
 * another writer came first (at most TENANT_WRITE_RETRIES times, then 409).  A change that changes nothing
 * is not written.  before/after (may be NULL): new references to the stored documents around the write.
 * 404 "Tenant not found". */
enum prism_err tenants_modify(struct request *req, struct store *s, const char *id, tenants_mutator fn, void *ctx,
			      json_t **before, json_t **after);
/* Validates body's modelConfig fields (mode, list and, with aliases, aliases), naming them with `prefix`
 * ("modelConfig" or "" for the portal), and merges them into doc.modelConfig. */
enum prism_err tenants_apply_model_config(struct request *req, json_t *doc, const json_t *body, const char *prefix,
					  bool aliases);

/* Handlers. */
enum prism_err tenants_list(struct request *req);
enum prism_err tenants_create(struct request *req);
enum prism_err tenants_default_add_provider(struct request *req);
enum prism_err tenants_get(struct request *req);
enum prism_err tenants_update(struct request *req);
enum prism_err tenants_delete(struct request *req);
enum prism_err tenants_rotate_key(struct request *req);
enum prism_err tenants_set_key(struct request *req);
enum prism_err tenants_keys_list(struct request *req);
enum prism_err tenants_keys_create(struct request *req);
enum prism_err tenants_keys_custom(struct request *req);
enum prism_err tenants_keys_patch(struct request *req);
enum prism_err tenants_keys_delete(struct request *req);
enum prism_err tenants_keys_rotate(struct request *req);

#endif
