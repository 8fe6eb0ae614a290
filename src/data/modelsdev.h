/* modelsdev.h -- model metadata from models.dev, the fallback when the local registry does not know a model.
 *
 * Two sources fill one in-memory index: the compact snapshot bundled as data/modelsdev.json (written by
 * tools/make-modelsdev-snapshot) and the live https://models.dev/api.json.  Every model is indexed under
 * its normalised id (registry_normalise; the first model wins, unless a later one has a price and the
 * stored one has none) and under its normalised "<provider>/<id>" (the first model wins).  Loading or
 * fetching builds a complete new index and then swaps it in; on any error the current index stays.
 * The policy (OFFLINE: only the snapshot; else fetch, falling back to the snapshot; refresh every 6 h) is
 * the caller's.
 *
 * Errors: PRISM_E_IO (the file cannot be read), PRISM_E_CONFIG (the snapshot is malformed),
 * PRISM_E_UPSTREAM (the fetch failed: connection, HTTP status, oversized or invalid body),
 * PRISM_E_TIMEOUT (the fetch timed out); the detail goes into err.
 * Thread-safety: all functions may be called from any thread (the index sits behind a rwlock; lookups
 * run concurrently, a swap waits for them).  modelsdev_suggest returns a new reference.
 */
#ifndef PRISM_MODELSDEV_H
#define PRISM_MODELSDEV_H

#include <stddef.h>

#include <jansson.h>

#include "util/err.h"

/* Hard maximum of a snapshot file or a fetched api.json (the live one is about 2 MiB). */
#define MODELSDEV_MAX_BODY (32L * 1024 * 1024)
/* The live source the original program uses, and its timeout. */
#define MODELSDEV_URL "https://models.dev/api.json"
#define MODELSDEV_TIMEOUT_MS 10000L

/* The installed snapshot: PRISM_DATADIR "/modelsdev.json". */
const char *modelsdev_default_path(void);

/* Loads a compact snapshot file and installs it (source "snapshot"). */
enum prism_err modelsdev_load_file(const char *path, char *err, size_t errlen);

/* GETs a models.dev api.json from url (User-Agent "model-prism/<version>", redirects followed, the whole
 * transfer bounded by timeout_ms (<= 0: MODELSDEV_TIMEOUT_MS) and the body by MODELSDEV_MAX_BODY), converts
 * and installs it (source "online"). */
enum prism_err modelsdev_fetch(const char *url, long timeout_ms, char *err, size_t errlen);

/* "snapshot", "online" or "none" (nothing loaded); a static string. */
const char *modelsdev_source(void);
/* Models in the current index (0 when none). */
size_t modelsdev_count(void);

/* Enrichment data for a model id, or NULL (nothing loaded, NULL or empty id, no match):
 * {id, providerId, providerName, name, tier (from the price, or null), inputPer1M, outputPer1M,
 *  contextWindow, categories, reasoning, openWeights, knowledge, source: "models_dev"}.
 * With n = the normalised id: the entry indexed under n; else the one under the longest key contained in
 * n; else, when n has at least 3 characters, the first key containing n (keys in the order they were
 * first indexed).  Integral numbers are JSON integers. */
json_t *modelsdev_suggest(const char *model_id);

/* Drops the index (source "none").  For tests. */
void modelsdev_reset(void);

#endif
