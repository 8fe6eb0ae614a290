/* rdata.c -- the routing data snapshot of a process (rdata.h). */
#include "config.h"
#include "routing/rdata.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/catalog.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

static const char *
str_or(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

static int
cmp_order(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	json_int_t ox = json_integer_value(json_object_get(x, "order"));
	json_int_t oy = json_integer_value(json_object_get(y, "order"));
	if (ox != oy)
		return ox < oy ? -1 : 1;
	return strcmp(str_or(x, "key", ""), str_or(y, "key", ""));
}

/* The stored categories, or the built-in catalog as documents when none are stored. */
static json_t *
category_docs(const json_t *docs)
{
	json_t *out = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d) {
		if (json_is_object(d) && json_string_value(json_object_get(d, "key")))
			json_array_append(out, d);
		if (json_array_size(out) >= RDATA_MAX_CATEGORIES)
			break;
	}
	if (json_array_size(out) == 0)
		for (size_t k = 0; k < catalog_ncategories; k++)
			json_array_append_new(out, catalog_category_json(&catalog_categories[k]));
	return out;
}

struct rdata *
rdata_build(const json_t *cat_docs, const json_t *ruleset_docs)
{
	struct rdata *rd = xcalloc(1, sizeof *rd);
	rd->refs = 1;
	rd->cat_docs = category_docs(cat_docs);
	size_t n = json_array_size(rd->cat_docs);
	const json_t **sorted = xcalloc(n ? n : 1, sizeof *sorted);
	size_t nex = 0;
	for (size_t i = 0; i < n; i++) {
		sorted[i] = json_array_get(rd->cat_docs, i);
		nex += json_array_size(json_object_get(sorted[i], "examples")) + 1;
	}
	qsort(sorted, n, sizeof *sorted, cmp_order);
	rd->cats = xcalloc(n ? n : 1, sizeof *rd->cats);
	rd->examples = xcalloc(nex ? nex : 1, sizeof *rd->examples);
	size_t ex = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *d = sorted[i];
		struct route_category *c = &rd->cats[rd->ncats++];
		c->key = str_or(d, "key", "");
		c->tier = route_tier_index(json_string_value(json_object_get(d, "costTier")));
		c->requires_vision = json_is_true(json_object_get(d, "requiresVision"));
		c->system_prompt = str_or(d, "targetSystemPrompt", "");
		c->default_model = str_or(d, "defaultModel", "");
		c->examples = &rd->examples[ex];
		size_t k;
		const json_t *e;
		json_array_foreach(json_object_get(d, "examples"), k, e) {
			if (json_string_value(e)) {
				rd->examples[ex++] = json_string_value(e);
				c->nexamples++;
			}
		}
		rd->examples[ex++] = NULL;
	}
	free(sorted);

	size_t nrs = json_array_size(ruleset_docs);
	rd->sets = xcalloc(nrs ? nrs : 1, sizeof *rd->sets);
	if (nrs > RDATA_MAX_RULESETS)
		log_warn("routing: %zu rule sets stored, only the first %d are used", nrs, RDATA_MAX_RULESETS);
	for (size_t i = 0; i < nrs && rd->nsets < RDATA_MAX_RULESETS; i++) {
		const json_t *d = json_array_get(ruleset_docs, i);
		char err[256] = "";
		struct ruleset *rs = ruleset_compile(d, err, sizeof err);
		if (!rs) {
			log_warn("routing: rule set %s ('%s') left out: %s", str_or(d, "_id", "?"), str_or(d, "name", ""), err);
			continue;
		}
		rd->sets[rd->nsets++] = rs;
		/* a tenant's set never serves other tenants, whatever its flag says (an import could set both) */
		if (rs->global_default && !rs->tenant_id[0] && !rd->global)
			rd->global = rs;
	}
	return rd;
}

void
rdata_put(struct rdata *rd)
{
	if (!rd || atomic_fetch_sub_explicit(&rd->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < rd->nsets; i++)
		ruleset_free(rd->sets[i]);
	free(rd->sets);
	free(rd->cats);
	free(rd->examples);
	json_decref(rd->cat_docs);
	free(rd);
}

const struct ruleset *
rdata_ruleset_for(const struct rdata *rd, const char *tenant_id)
{
	if (rd && tenant_id && *tenant_id)
		for (size_t i = 0; i < rd->nsets; i++)
			if (strcmp(rd->sets[i]->tenant_id, tenant_id) == 0)
				return rd->sets[i];
	if (rd && rd->global)
		return rd->global;
	return ruleset_builtin();
}

const struct route_category *
rdata_category(const struct rdata *rd, const char *key)
{
	if (!rd || !key || !*key)
		return NULL;
	for (size_t i = 0; i < rd->ncats; i++)
		if (strcmp(rd->cats[i].key, key) == 0)
			return &rd->cats[i];
	return NULL;
}

/* --- the process's snapshot ------------------------------------------------------------------------------ */

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rdata *cur;
static int64_t cur_epoch = -1, cur_gen = -1, cur_at;
static bool loading;               /* one thread rebuilds; the others keep using the stale snapshot */

/* Every document of a collection, page by page, up to max. */
static enum prism_err
load_all(struct store *s, enum store_coll c, size_t max, json_t **out, char *err, size_t errlen)
{
	*out = json_array();
	char *after = NULL;
	enum prism_err e = PRISM_OK;
	do {
		struct store_query q = { .limit = STORE_MAX_LIMIT, .after = after };
		json_t *page = NULL;
		char *next = NULL;
		e = s->ops->find(s, c, &q, &page, &next, err, errlen);
		free(after);
		after = next;
		if (!e)
			json_array_extend(*out, page);
		json_decref(page);
	} while (!e && after && json_array_size(*out) <= max);
	free(after);
	if (e) {
		json_decref(*out);
		*out = NULL;
	}
	return e;
}

enum prism_err
rdata_get(struct rdata **out, char *err, size_t errlen)
{
	struct shm_segment *seg = shm_segment_current();
	struct tenantcache_stats st = { 0 };
	if (seg)
		tenantcache_stats(seg, &st);
	int64_t now = clock_monotonic_ms();
	pthread_mutex_lock(&cur_lock);
	bool fresh = cur && seg && st.epoch == cur_epoch && st.generation == cur_gen && now - cur_at < RDATA_TTL_MS;
	if (cur && (fresh || loading)) {
		atomic_fetch_add_explicit(&cur->refs, 1, memory_order_relaxed);
		*out = cur;
		pthread_mutex_unlock(&cur_lock);
		return PRISM_OK;
	}
	loading = true;
	pthread_mutex_unlock(&cur_lock);

	struct store *s = store_current();
	json_t *cats = NULL, *sets = NULL;
	enum prism_err e = s ? PRISM_OK : PRISM_E_STORE;
	if (!s)
		snprintf(err, errlen, "no store");
	if (!e)
		e = load_all(s, COLL_ROUTINGCATEGORIES, RDATA_MAX_CATEGORIES, &cats, err, errlen);
	if (!e)
		e = load_all(s, COLL_ROUTINGRULESETS, RDATA_MAX_RULESETS, &sets, err, errlen);
	if (e) {
		json_decref(cats);
		json_decref(sets);
		/* The store is down: the last snapshot is better than no routing at all. */
		pthread_mutex_lock(&cur_lock);
		loading = false;
		if (cur) {
			atomic_fetch_add_explicit(&cur->refs, 1, memory_order_relaxed);
			*out = cur;
			e = PRISM_OK;
		}
		pthread_mutex_unlock(&cur_lock);
		return e;
	}
	struct rdata *rd = rdata_build(cats, sets);
	json_decref(cats);
	json_decref(sets);
	rd->refs = 2;                /* the cache's and the caller's */
	pthread_mutex_lock(&cur_lock);
	loading = false;
	struct rdata *old = cur;
	cur = rd;
	cur_epoch = st.epoch;
	cur_gen = st.generation;
	cur_at = now;
	pthread_mutex_unlock(&cur_lock);
	rdata_put(old);
	*out = rd;
	return PRISM_OK;
}
