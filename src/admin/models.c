/* models.c -- see models.h. */
#include "config.h"
#include "admin/models.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "data/modelsdev.h"
#include "data/registry.h"
#include "util/clock.h"
#include "util/limits.h"
#include "util/log.h"

/* --- the models.dev policy -------------------------------------------------------------------------------
 * One mutex guards this state and is held for the whole of a fetch: callers that find a fetch due while
 * another thread runs it wait for it and then see it done (coalescing).  Lookups themselves run outside the
 * mutex, against modelsdev's own rwlock. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static bool attempted;                   /* a fetch was tried in this process */
static bool attempt_ok;                  /* ... and the last one succeeded */
static int64_t attempt_ms;               /* monotonic time the last fetch ended */
static char attempt_url[1025];           /* the models_dev_url it used */
static bool snapshot_failed;             /* the last snapshot load failed ... */
static int64_t snapshot_failed_ms;       /* ... at this time */
static bool warned;
static int64_t warned_ms;                /* the last fetch failure logged at warn */

/* Copies url with any "user:password@" replaced by "***@". */
static void
mask_url(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	size_t hostlen = strcspn(host, "/?#");
	const char *at = memchr(host, '@', hostlen);
	if (!at) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	const char *at_last = at;
	for (const char *p = at; p < host + hostlen; p++)
		if (*p == '@')
			at_last = p;
	snprintf(out, outlen, "%.*s***%s", (int)(host - url), url, at_last);
}

/* Loads the snapshot (the data_dir copy first).  Called with state_lock held; failures are retried only
 * after MODELS_RETRY_MS. */
static void
load_snapshot_locked(const struct config *cfg)
{
	int64_t now = clock_monotonic_ms();
	if (snapshot_failed && now - snapshot_failed_ms < MODELS_RETRY_MS)
		return;
	char local[1100], err[512] = "", err2[512] = "";
	enum prism_err e = PRISM_E_IO;
	if (cfg->data_dir && *cfg->data_dir) {
		snprintf(local, sizeof local, "%s/modelsdev.json", cfg->data_dir);
		if (access(local, F_OK) == 0) {
			e = modelsdev_load_file(local, err, sizeof err);
			if (e)
				log_error("models.dev snapshot %s is unusable, trying the installed one: %s", local, err);
		}
	}
	if (e)
		e = modelsdev_load_file(modelsdev_default_path(), err2, sizeof err2);
	if (e) {
		snapshot_failed = true;
		snapshot_failed_ms = now;
		log_warn("models.dev snapshot not loaded (model enrichment beyond the local registry is off): %s", err2);
		return;
	}
	snapshot_failed = false;
	log_info("models.dev snapshot loaded: %zu models", modelsdev_count());
}

static bool
fetch_due_locked(const char *url, int64_t now)
{
	if (!attempted || strcmp(attempt_url, url) != 0)
		return true;
	return now - attempt_ms >= (attempt_ok ? MODELS_REFRESH_MS : MODELS_RETRY_MS);
}

/* Fetches from url; called with state_lock held. */
static enum prism_err
fetch_locked(const struct config *cfg, char *err, size_t errlen)
{
	const char *url = cfg->models_dev_url;
	enum prism_err e = modelsdev_fetch(url, MODELSDEV_TIMEOUT_MS, err, errlen);
	int64_t now = clock_monotonic_ms();
	attempted = true;
	attempt_ok = e == PRISM_OK;
	attempt_ms = now;
	snprintf(attempt_url, sizeof attempt_url, "%s", url);
	char masked[1100], msg[1024];
	mask_url(url, masked, sizeof masked);
	if (e == PRISM_OK) {
		log_info("models.dev data fetched from %s: %zu models", masked, modelsdev_count());
		return PRISM_OK;
	}
	/* The detail starts with "GET <url>": keep credentials out of the log. */
	const char *detail = err;
	if (strncmp(detail, "GET ", 4) == 0 && strncmp(detail + 4, url, strlen(url)) == 0)
		detail += 4 + strlen(url);
	snprintf(msg, sizeof msg, "%s", *detail == ':' ? detail + 2 : detail);
	if (!warned || now - warned_ms >= MODELS_RETRY_MS) {
		warned = true;
		warned_ms = now;
		log_warn("models.dev fetch from %s failed (using %s data, retry in %ld s): %s", masked,
			 strcmp(modelsdev_source(), "online") == 0 ? "the earlier online" : "the bundled snapshot",
			 MODELS_RETRY_MS / 1000, msg);
	} else {
		log_debug("models.dev fetch from %s failed: %s", masked, msg);
	}
	snprintf(err, errlen, "%s", msg);
	/* Data fetched earlier stays (it is newer than the snapshot); otherwise the snapshot serves. */
	if (strcmp(modelsdev_source(), "none") == 0)
		load_snapshot_locked(cfg);
	return e;
}

static bool
policy_offline(const struct config *cfg)
{
	return cfg->offline || !cfg->models_dev_url || !*cfg->models_dev_url;
}

void
models_ensure(const struct config *cfg)
{
	pthread_mutex_lock(&state_lock);
	if (policy_offline(cfg)) {
		/* Never a connection; "online" data (models_dev_url emptied by a reload) gives way too. */
		if (strcmp(modelsdev_source(), "snapshot") != 0)
			load_snapshot_locked(cfg);
	} else if (fetch_due_locked(cfg->models_dev_url, clock_monotonic_ms())) {
		char err[1024];
		(void)fetch_locked(cfg, err, sizeof err);
	}
	pthread_mutex_unlock(&state_lock);
}

enum prism_err
models_refresh(const struct config *cfg, char *err, size_t errlen)
{
	if (policy_offline(cfg)) {
		snprintf(err, errlen, "%s", cfg->offline ? "offline mode: models.dev is never contacted"
							 : "models_dev_url is empty: only the bundled snapshot is used");
		return PRISM_E_CONFLICT;
	}
	pthread_mutex_lock(&state_lock);
	enum prism_err e = fetch_locked(cfg, err, errlen);
	pthread_mutex_unlock(&state_lock);
	return e;
}

json_t *
models_suggest_modelsdev(const struct config *cfg, const char *model_id)
{
	if (!model_id || !*model_id)
		return NULL;
	models_ensure(cfg);
	return modelsdev_suggest(model_id);
}

json_t *
models_suggest(const struct config *cfg, const char *model_id)
{
	if (!model_id || !*model_id)
		return NULL;
	const struct registry_model *m = registry_find(model_id);
	if (m)
		return registry_suggestion_json(m);
	return models_suggest_modelsdev(cfg, model_id);
}

json_t *
models_status_json(const struct config *cfg)
{
	char masked[1100];
	mask_url(cfg->models_dev_url ? cfg->models_dev_url : "", masked, sizeof masked);
	return json_pack("{s:s, s:I, s:b, s:s}", "source", modelsdev_source(), "models", (json_int_t)modelsdev_count(),
			 "offline", cfg->offline, "url", masked);
}

/* --- handlers ---------------------------------------------------------------------------------------- */

static json_t *
string_list(const char *const *list)
{
	json_t *a = json_array();
	for (; list && *list; list++)
		json_array_append_new(a, json_string(*list));
	return a;
}

enum prism_err
models_registry(struct request *req)
{
	json_t *models = json_array();
	for (size_t i = 0; i < registry_nmodels; i++) {
		const struct registry_model *m = &registry_models[i];
		json_t *o = registry_suggestion_json(m);
		json_object_set_new(o, "id", json_string(m->id));
		json_object_set_new(o, "patterns", string_list(m->patterns));
		json_array_append_new(models, o);
	}
	return admin_reply(req, 200, json_pack("{s:o, s:I}", "models", models, "count", (json_int_t)registry_nmodels));
}

enum prism_err
models_prices(struct request *req)
{
	return admin_reply(req, 200, registry_prices_json());
}

static json_t *
price_json(double v)
{
	/* Integral prices as integers, like the registry's suggestion objects. */
	if (v == (double)(json_int_t)v)
		return json_integer((json_int_t)v);
	return json_real(v);
}

enum prism_err
models_lookup(struct request *req)
{
	char id[PRISM_MAX_PARAM_LEN + 1];
	if (!request_query(req, "modelId", id, sizeof id) || !*id)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "modelId required");
	const struct registry_model *m = registry_find(id);
	json_t *registry = m ? registry_suggestion_json(m) : json_null();
	json_t *md = models_suggest_modelsdev(req->cfg, id);
	double in, out;
	json_t *dflt = registry_default_price(id, &in, &out)
			       ? json_pack("{s:o, s:o}", "input", price_json(in), "output", price_json(out))
			       : json_null();
	return admin_reply(req, 200, json_pack("{s:s, s:o, s:o, s:o}", "modelId", id, "registry", registry, "modelsDev",
					       md ? md : json_null(), "defaultPrice", dflt));
}

enum prism_err
models_enrichment(struct request *req)
{
	/* Loads what a lookup would load, so the answer does not depend on which process serves it. */
	models_ensure(req->cfg);
	return admin_reply(req, 200, models_status_json(req->cfg));
}

enum prism_err
models_enrichment_refresh(struct request *req)
{
	char err[1024] = "";
	enum prism_err e = models_refresh(req->cfg, err, sizeof err);
	if (e == PRISM_E_CONFLICT)
		return admin_fail(req, PRISM_E_CONFLICT, "%s", err);
	json_t *status = models_status_json(req->cfg);
	if (e) {
		/* The detail names the configured source's failure (connection, HTTP status), not a secret: the
		 * operator needs it to fix the URL. */
		json_object_set_new(status, "error", json_sprintf("models.dev fetch failed: %s", err));
		return admin_reply(req, e == PRISM_E_TIMEOUT ? 504 : 502, status);
	}
	return admin_reply(req, 200, status);
}
