/* models.h -- model metadata for the admin API: the built-in registry and prices, models.dev enrichment
 * under the OFFLINE policy, and the registry endpoints.
 *
 * models_suggest is the one lookup every caller uses (provider discovery, /providers/models/suggest):
 * the local registry first; else models.dev data: with offline = true (or models_dev_url empty) only the
 * bundled snapshot, never a connection; otherwise the live data fetched from models_dev_url at most every
 * MODELS_REFRESH_MS per process (fetches are coalesced; a failed fetch falls back to the snapshot and is
 * retried after MODELS_RETRY_MS).  Thread-safe.
 *
 * The snapshot is read from "<data_dir>/modelsdev.json" when that file exists (an operator-refreshed copy,
 * written by tools/make-modelsdev-snapshot), else from the installed modelsdev_default_path().
 */
#ifndef PRISM_ADMIN_MODELS_H
#define PRISM_ADMIN_MODELS_H

#include <stddef.h>

#include <jansson.h>

#include "core/request.h"
#include "util/config.h"
#include "util/err.h"

#define MODELS_REFRESH_MS (6L * 3600 * 1000)
#define MODELS_RETRY_MS (10L * 60 * 1000)

/* A new suggestion object (registry: source "local_registry"; models.dev: source "models_dev"), or NULL. */
json_t *models_suggest(const struct config *cfg, const char *model_id);

/* Only the models.dev half of models_suggest (the same policy), or NULL. */
json_t *models_suggest_modelsdev(const struct config *cfg, const char *model_id);

/* Brings the models.dev index in line with the policy (loads the snapshot, or fetches when due) without a
 * lookup. */
void models_ensure(const struct config *cfg);

/* Fetches from models_dev_url now, whatever the schedule (coalesced with a running fetch).
 * PRISM_E_CONFLICT when offline or models_dev_url is empty (nothing is contacted); the fetch errors of
 * modelsdev_fetch otherwise, with the detail in err (the snapshot is then loaded if nothing is). */
enum prism_err models_refresh(const struct config *cfg, char *err, size_t errlen);

/* {source, models, offline, url} of this process's models.dev index; url with any user:password masked.
 * A new reference. */
json_t *models_status_json(const struct config *cfg);

/* The route handlers (admin API). */
enum prism_err models_registry(struct request *req);
enum prism_err models_prices(struct request *req);
enum prism_err models_lookup(struct request *req);
enum prism_err models_enrichment(struct request *req);
enum prism_err models_enrichment_refresh(struct request *req);

#endif
