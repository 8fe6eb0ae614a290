/* store.c -- the collection table and what both backends share (ids, cursors, queries, sums). */
#include "config.h"
#include "store/store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/parse.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NONE ((const char *const[]){ NULL })

/* Indexes follow the query paths of the original (reference/original-control-plane.md §5) plus ours. */
static const struct store_coll_desc colls[COLL_COUNT] = {
	[COLL_SETUPS] = { "setups", NONE, NONE, NONE, L("completedAt"), true },
	[COLL_USERS] = { "users", L("role"), L("username"), L("tenants"), L("lastLogin"), true },
	[COLL_LDAPCONFIGS] = { "ldapconfigs", NONE, NONE, NONE, NONE, true },
	[COLL_PROVIDERS] = { "providers", L("type"), L("slug"), NONE, L("lastChecked"), true },
	[COLL_TENANTS] = { "tenants", L("apiKeys.hash", "active"), L("slug", "apiKeyHash"),
			   L("providerIds", "routing.classifierProvider", "routing.classifierFallbacks.provider",
			     "fallbackChains.providers", "modelFallbacks.fallbacks.providerId"),
			   L("keyExpiresAt", "apiKeys.expiresAt", "apiKeys.lastUsedAt", "apiKeys.createdAt"), true },
	[COLL_ROUTINGCATEGORIES] = { "routingcategories", L("order"), L("key"), NONE, NONE, true },
	[COLL_ROUTINGRULESETS] = { "routingrulesets", L("isGlobalDefault", "tenantId"), NONE, L("tenantId"), NONE,
				   true },
	[COLL_REQUESTLOGS] = { "requestlogs",
			       /* Every index costs each analytics insert; dashboards read the daily aggregates. */
			       L("tenantId,-timestamp", "-timestamp", "status,-timestamp", "category,-timestamp",
				 "sessionId"),
			       NONE, L("tenantId", "providerId", "experimentId"), L("timestamp", "resolvedAt"), false },
	[COLL_DAILYSTATS] = { "dailystats", L("tenantId,date"), L("date,tenantId,routedModel"), L("tenantId"), NONE,
			      false },
	[COLL_DAILYCATEGORYSTATS] = { "dailycategorystats", L("tenantId,date"), L("date,tenantId,category,costTier"),
				      L("tenantId"), NONE, false },
	[COLL_DAILYUSERSTATS] = { "dailyuserstats", L("tenantId,date"), L("date,tenantId,userName"), L("tenantId"),
				  NONE, false },
	[COLL_CONFIGCHANGES] = { "configchanges", L("-timestamp", "target,-timestamp"), NONE, L("targetId"),
				 L("timestamp"), false },
	[COLL_QUOTAS] = { "quotas", L("tenantId"), L("tenantId,quotaType"), L("tenantId"), L("resetAt", "lastResetAt"),
			  true },
	[COLL_EXPERIMENTS] = { "experiments", L("tenantId", "status"), NONE, L("tenantId", "variants.providerId"),
			       L("startDate", "endDate"), true },
	[COLL_WEBHOOKS] = { "webhooks", L("tenantId,enabled"), NONE, L("tenantId"), NONE, true },
	[COLL_WEBHOOKLOGS] = { "webhooklogs", L("webhookId,-timestamp", "-timestamp"), NONE, L("webhookId"),
			       L("timestamp"), false },
	[COLL_LOGCONFIGS] = { "logconfigs", NONE, L("singleton"), NONE, L("updatedAt"), false },
	[COLL_SYSTEMCONFIGS] = { "systemconfigs", NONE, L("key"), NONE, NONE, true },
	[COLL_CHATCONFIGS] = { "chatconfigs", NONE, L("singleton"), NONE, L("accessTokens.expiresAt"), true },
	[COLL_PODMETRICS] = { "podmetrics", L("podId", "-updatedAt"), NONE, NONE, L("startedAt", "updatedAt"), false },
	[COLL_SYNTHETICTESTS] = { "synthetictests", NONE, NONE, NONE, L("createdAt", "updatedAt"), false },
	[COLL_TESTRUNS] = { "testruns", L("testSuiteId,-createdAt"), NONE, L("testSuiteId", "tenantId", "results.testCaseId"),
			    L("createdAt"), false },
};

const struct store_coll_desc *
store_coll_desc(enum store_coll c)
{
	return c >= 0 && c < COLL_COUNT ? &colls[c] : NULL;
}

bool
store_coll_by_name(const char *name, enum store_coll *out)
{
	for (int i = 0; i < COLL_COUNT; i++) {
		if (strcmp(colls[i].name, name) == 0) {
			*out = (enum store_coll)i;
			return true;
		}
	}
	return false;
}

void
store_new_id(char out[25])
{
	static atomic_uint counter;
	static unsigned char proc_random[5];
	static atomic_int have_random;
	if (!atomic_load(&have_random)) {
		rand_bytes(proc_random, sizeof proc_random);
		atomic_store(&have_random, 1);
	}
	unsigned char raw[12];
	uint32_t t = (uint32_t)time(NULL);
	raw[0] = (unsigned char)(t >> 24);
	raw[1] = (unsigned char)(t >> 16);
	raw[2] = (unsigned char)(t >> 8);
	raw[3] = (unsigned char)t;
	/* A fresh random part per id keeps ids unique across forked processes without coordination. */
	rand_bytes(raw + 4, 5);
	unsigned c = atomic_fetch_add(&counter, 1);
	raw[9] = (unsigned char)(c >> 16);
	raw[10] = (unsigned char)(c >> 8);
	raw[11] = (unsigned char)c;
	hex_encode(raw, sizeof raw, out);
}

bool
store_id_valid(const char *id)
{
	if (!id || strlen(id) != 24)
		return false;
	return strspn(id, "0123456789abcdef") == 24;
}

void
store_now_iso(char out[32])
{
	clock_iso8601(clock_realtime_ms(), out, 32);
}

enum prism_err
store_query_check(const struct store_query *q, char *err, size_t errlen)
{
	if (q->nconds > STORE_MAX_CONDS) {
		snprintf(err, errlen, "more than %d query conditions", STORE_MAX_CONDS);
		return PRISM_E_BAD_REQUEST;
	}
	if (q->limit < 0 || q->limit > STORE_MAX_LIMIT) {
		snprintf(err, errlen, "limit must be 1..%d", STORE_MAX_LIMIT);
		return PRISM_E_BAD_REQUEST;
	}
	for (size_t i = 0; i < q->nconds; i++) {
		const struct store_cond *c = &q->conds[i];
		if (!c->field || !*c->field || strlen(c->field) > 128 || strspn(c->field, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != strlen(c->field)) {
			snprintf(err, errlen, "invalid field name in query");
			return PRISM_E_BAD_REQUEST;
		}
		if (!c->value) {
			snprintf(err, errlen, "query condition on %s has no value", c->field);
			return PRISM_E_BAD_REQUEST;
		}
		if (c->op == SOP_IN) {
			if (!json_is_array(c->value) || json_array_size(c->value) > 1000) {
				snprintf(err, errlen, "IN on %s needs an array of at most 1000 values", c->field);
				return PRISM_E_BAD_REQUEST;
			}
		} else if (c->op == SOP_EXISTS) {
			if (!json_is_boolean(c->value)) {
				snprintf(err, errlen, "EXISTS on %s needs true or false", c->field);
				return PRISM_E_BAD_REQUEST;
			}
		} else if (!json_is_string(c->value) && !json_is_number(c->value) && !json_is_boolean(c->value) &&
			   !json_is_null(c->value)) {
			snprintf(err, errlen, "condition on %s needs a scalar value", c->field);
			return PRISM_E_BAD_REQUEST;
		}
	}
	if (q->sort && (strlen(q->sort) > 128 || strspn(q->sort, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
								  "0123456789_.") != strlen(q->sort))) {
		snprintf(err, errlen, "invalid sort field");
		return PRISM_E_BAD_REQUEST;
	}
	return PRISM_OK;
}

char *
store_cursor_make(const json_t *sort_value, const char *id)
{
	json_t *pair = json_pack("[O?,s]", sort_value, id);
	char *text = json_dumps(pair, JSON_COMPACT);
	json_decref(pair);
	if (!text)
		return NULL;
	size_t n = strlen(text);
	if (n > STORE_MAX_CURSOR / 2 - 1) {
		free(text);
		return NULL;
	}
	char *hex = xmalloc(2 * n + 1);
	hex_encode(text, n, hex);
	free(text);
	return hex;
}

enum prism_err
store_cursor_parse(const char *cursor, json_t **sort_value, char id[25])
{
	*sort_value = NULL;
	size_t n = strlen(cursor);
	if (n == 0 || n % 2 || n > STORE_MAX_CURSOR)
		return PRISM_E_BAD_REQUEST;
	char text[STORE_MAX_CURSOR / 2 + 1];
	for (size_t i = 0; i < n / 2; i++) {
		int hi = parse_hexval(cursor[2 * i]), lo = parse_hexval(cursor[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return PRISM_E_BAD_REQUEST;
		text[i] = (char)(hi * 16 + lo);
	}
	text[n / 2] = '\0';
	json_t *pair = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!json_is_array(pair) || json_array_size(pair) != 2 ||
	    !store_id_valid(json_string_value(json_array_get(pair, 1)))) {
		json_decref(pair);
		return PRISM_E_BAD_REQUEST;
	}
	memcpy(id, json_string_value(json_array_get(pair, 1)), 25);
	*sort_value = json_incref(json_array_get(pair, 0));
	json_decref(pair);
	return PRISM_OK;
}

const char *
store_unique_for_key(const struct store_coll_desc *d, const json_t *key)
{
	for (const char *const *u = d->unique; *u; u++) {
		if (!strchr(*u, ','))
			continue;
		size_t nfields = 0;
		bool all = true;
		for (const char *p = *u; *p;) {
			size_t len = strcspn(p, ",");
			if (!json_object_getn(key, p, len))
				all = false;
			nfields++;
			p += len;
			if (*p == ',')
				p++;
		}
		if (all && nfields == json_object_size(key))
			return *u;
	}
	return NULL;
}

json_t *
store_path_get(const json_t *doc, const char *path)
{
	const json_t *cur = doc;
	const char *p = path;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (!json_is_object(cur))
			return NULL;
		cur = json_object_getn(cur, p, len);
		p += len;
		if (*p == '.')
			p++;
	}
	return (json_t *)cur;
}

enum prism_err
store_insert_texts(struct store *s, enum store_coll c, const struct store_text *docs, size_t n, char *err,
		   size_t errlen)
{
	const struct store_coll_desc *d = store_coll_desc(c);
	if (!d || d->timestamps) {
		snprintf(err, errlen, "documents as text only go to collections without timestamps");
		return PRISM_E_BAD_REQUEST;
	}
	if (n == 0)
		return PRISM_OK;
	if (s->ops->insert_texts)
		return s->ops->insert_texts(s, c, docs, n, err, errlen);
	json_t *all = json_array();
	for (size_t i = 0; i < n; i++) {
		json_error_t je;
		json_t *doc = json_loads(docs[i].json, 0, &je);
		if (!json_is_object(doc) || !store_id_valid(docs[i].id)) {
			snprintf(err, errlen, "document %zu: %s", i,
				 !doc ? je.text : !json_is_object(doc) ? "not a JSON object" : "_id is not 24 hex digits");
			json_decref(doc);
			json_decref(all);
			return PRISM_E_BAD_REQUEST;
		}
		json_object_set_new(doc, "_id", json_string(docs[i].id));
		json_array_append_new(all, doc);
	}
	enum prism_err e = n == 1 ? s->ops->insert(s, c, json_array_get(all, 0), NULL, err, errlen)
				  : s->ops->insert_many(s, c, all, err, errlen);
	json_decref(all);
	return e;
}

enum prism_err
store_sum(struct store *s, enum store_coll c, const struct store_query *q, const char *const *group,
	  const char *const *sums, json_t **groups, char *err, size_t errlen)
{
	*groups = NULL;
	json_t *index = json_object();       /* group key text → group object */
	struct store_query page = *q;
	page.limit = STORE_MAX_LIMIT;
	page.after = NULL;
	char *next = NULL;
	enum prism_err rc = PRISM_OK;
	do {
		json_t *docs = NULL;
		char *after = next;
		page.after = after;
		rc = s->ops->find(s, c, &page, &docs, &next, err, errlen);
		free(after);
		if (rc)
			break;
		size_t i;
		json_t *doc;
		json_array_foreach(docs, i, doc) {
			json_t *key = json_array();
			for (const char *const *g = group; *g; g++) {
				json_t *v = store_path_get(doc, *g);
				json_array_append(key, v ? v : json_null());
			}
			char *ktext = json_dumps(key, JSON_COMPACT | JSON_ENCODE_ANY);
			json_t *acc = json_object_get(index, ktext);
			if (!acc) {
				acc = json_object();
				size_t k = 0;
				for (const char *const *g = group; *g; g++, k++)
					json_object_set(acc, *g, json_array_get(key, k));
				for (const char *const *f = sums; *f; f++)
					json_object_set_new(acc, *f, json_integer(0));
				json_object_set_new(index, ktext, acc);
			}
			for (const char *const *f = sums; *f; f++) {
				json_t *v = store_path_get(doc, *f), *cur = json_object_get(acc, *f);
				if (!json_is_number(v))
					continue;
				if (json_is_integer(v) && json_is_integer(cur))
					json_object_set_new(acc, *f, json_integer(json_integer_value(cur) + json_integer_value(v)));
				else
					json_object_set_new(acc, *f, json_real(json_number_value(cur) + json_number_value(v)));
			}
			free(ktext);
			json_decref(key);
		}
		json_decref(docs);
	} while (next);
	if (rc) {
		free(next);
		json_decref(index);
		return rc;
	}
	json_t *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(index, k, v)
		json_array_append(out, v);
	json_decref(index);
	*groups = out;
	return PRISM_OK;
}

enum prism_err
store_open(const struct config *cfg, struct store **out, char *err, size_t errlen)
{
	if (*cfg->mongo_uri)
		return store_mongo_open(cfg->mongo_uri, cfg->store_timeout_ms, out, err, errlen);
	return store_sqlite_open(cfg->store + strlen("sqlite:"), cfg->store_timeout_ms, out, err, errlen);
}

static _Atomic(struct store *) current_store;

struct store *
store_current(void)
{
	return atomic_load(&current_store);
}

void
store_set_current(struct store *s)
{
	atomic_store(&current_store, s);
}

void
store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

void
store_release_thread(struct store *s)
{
	if (s && s->ops->release)
		s->ops->release(s);
}
