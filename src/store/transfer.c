/* transfer.c -- see transfer.h. */
#include "config.h"
#include "store/transfer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

/* Array sections of the file, in the order they are written (tenants refer to providers, ...). */
static const struct section {
	const char *key;                 /* name in the file */
	enum store_coll coll;
	const char *const *required;     /* string fields every document must have */
	const char *unique;              /* field unique within the collection (besides _id), or NULL */
	const char *const *match;        /* fields that find the existing document for one without _id */
} sections[] = {
	{ "providers", COLL_PROVIDERS, (const char *const[]){ "name", "slug", "type", NULL }, "slug",
	  (const char *const[]){ "slug", NULL } },
	{ "tenants", COLL_TENANTS, (const char *const[]){ "slug", "name", NULL }, "slug", (const char *const[]){ "slug", NULL } },
	{ "routingCategories", COLL_ROUTINGCATEGORIES, (const char *const[]){ "key", "name", "costTier", NULL }, "key",
	  (const char *const[]){ "key", NULL } },
	{ "routingRuleSets", COLL_ROUTINGRULESETS, (const char *const[]){ "name", NULL }, NULL, NULL },
	{ "webhooks", COLL_WEBHOOKS, (const char *const[]){ "name", "url", NULL }, NULL, NULL },
	{ "quotas", COLL_QUOTAS, (const char *const[]){ "tenantId", "quotaType", NULL }, NULL,
	  (const char *const[]){ "tenantId", "quotaType", NULL } },
	{ "experiments", COLL_EXPERIMENTS, (const char *const[]){ "name", "tenantId", NULL }, NULL, NULL },
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* Singleton documents: found by `match` (field = value), or the first document when match is NULL. */
static const struct singleton {
	const char *key;
	enum store_coll coll;
	const char *match_field;
	const char *match_value;
} singletons[] = {
	{ "logConfig", COLL_LOGCONFIGS, "singleton", "default" },
	{ "chatConfig", COLL_CHATCONFIGS, "singleton", "default" },
	{ "ldapConfig", COLL_LDAPCONFIGS, NULL, NULL },
};
#define NSINGLETONS (sizeof singletons / sizeof singletons[0])

#define MAX_IMPORT_DOCS 100000
#define MAX_STRING 1000000

/* All documents of a collection (pages through find). */
static enum prism_err
all_docs(struct store *s, enum store_coll c, const struct store_query *base, json_t **out, char *err, size_t errlen)
{
	json_t *acc = json_array();
	struct store_query q = base ? *base : (struct store_query){ NULL, 0, NULL, false, 0, NULL };
	char *cursor = NULL;
	do {
		json_t *docs = NULL;
		char *next = NULL;
		q.after = cursor;
		enum prism_err e = s->ops->find(s, c, &q, &docs, &next, err, errlen);
		free(cursor);
		if (e) {
			json_decref(acc);
			return e;
		}
		json_array_extend(acc, docs);
		json_decref(docs);
		cursor = next;
	} while (cursor);
	*out = acc;
	return PRISM_OK;
}

static enum prism_err
find_singleton(struct store *s, const struct singleton *sg, json_t **doc, char *err, size_t errlen)
{
	*doc = NULL;
	json_t *v = sg->match_value ? json_string(sg->match_value) : NULL;
	struct store_cond cond = { sg->match_field, SOP_EQ, v };
	struct store_query q = { v ? &cond : NULL, v ? 1 : 0, NULL, false, 1, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	enum prism_err e = s->ops->find(s, sg->coll, &q, &docs, &next, err, errlen);
	free(next);
	json_decref(v);
	if (e)
		return e;
	if (json_array_size(docs))
		*doc = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	return PRISM_OK;
}

enum prism_err
transfer_export(struct store *s, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	char now[32];
	store_now_iso(now);
	json_t *doc = json_pack("{s:{s:s, s:s, s:s}}", "_meta", "type", TRANSFER_TYPE, "version", PACKAGE_VERSION,
				"exportedAt", now);
	enum prism_err e = PRISM_OK;
	for (size_t i = 0; !e && i < NSECTIONS; i++) {
		json_t *docs = NULL;
		e = all_docs(s, sections[i].coll, NULL, &docs, err, errlen);
		if (!e)
			json_object_set_new(doc, sections[i].key, docs);
	}
	for (size_t i = 0; !e && i < NSINGLETONS; i++) {
		json_t *one = NULL;
		e = find_singleton(s, &singletons[i], &one, err, errlen);
		if (!e)
			json_object_set_new(doc, singletons[i].key, one ? one : json_null());
	}
	json_t *sys = NULL, *users = NULL;
	if (!e)
		e = all_docs(s, COLL_SYSTEMCONFIGS, NULL, &sys, err, errlen);
	if (!e) {
		/* prism's own bookkeeping is not configuration */
		size_t i;
		json_t *d;
		json_t *kept = json_array();
		json_array_foreach(sys, i, d) {
			const char *k = json_string_value(json_object_get(d, "key"));
			if (!k || strncmp(k, "prism_", 6) != 0)
				json_array_append(kept, d);
		}
		json_decref(sys);
		json_object_set_new(doc, "systemConfig", kept);
		e = all_docs(s, COLL_USERS, NULL, &users, err, errlen);
	}
	if (!e) {
		size_t i;
		json_t *u;
		json_array_foreach(users, i, u)
			json_object_del(u, "passwordHash");
		json_object_set_new(doc, "users", users);
	}
	if (e) {
		json_decref(doc);
		return e;
	}
	*out = doc;
	return PRISM_OK;
}

/* --- import ---------------------------------------------------------------------------------------------- */

/* Recursively: no string longer than MAX_STRING, nesting at most 32 deep. */
static bool
sane_value(const json_t *v, int depth)
{
	if (depth > 32)
		return false;
	if (json_is_string(v))
		return json_string_length(v) <= MAX_STRING;
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (!sane_value(x, depth + 1))
				return false;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x)
			if (!sane_value(x, depth + 1))
				return false;
	}
	return true;
}

static void
problem(struct buf *b, int *count, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
problem(struct buf *b, int *count, const char *fmt, ...)
{
	(*count)++;
	if (*count > 50)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
	buf_puts(b, "\n");
}

static void
validate_doc(struct store *s, const struct section *sec, size_t idx, json_t *d, json_t *seen_ids, json_t *seen_unique,
	     struct buf *pb, int *np)
{
	if (!json_is_object(d)) {
		problem(pb, np, "%s[%zu]: not an object", sec->key, idx);
		return;
	}
	if (!sane_value(d, 0)) {
		problem(pb, np, "%s[%zu]: nested too deeply or a string too long", sec->key, idx);
		return;
	}
	json_t *idv = json_object_get(d, "_id");
	const char *id = json_string_value(idv);
	if (idv && !store_id_valid(id)) {
		problem(pb, np, "%s[%zu]: _id must be 24 lowercase hex digits", sec->key, idx);
		return;
	}
	if (id) {
		if (json_object_get(seen_ids, id))
			problem(pb, np, "%s[%zu]: _id %s appears twice", sec->key, idx, id);
		json_object_set_new(seen_ids, id, json_true());
	}
	for (const char *const *f = sec->required; *f; f++) {
		json_t *v = json_object_get(d, *f);
		if (!json_is_string(v) || !json_string_length(v))
			problem(pb, np, "%s[%zu]: %s must be a non-empty string", sec->key, idx, *f);
	}
	if (sec->coll == COLL_QUOTAS && !json_is_number(json_object_get(d, "limit")))
		problem(pb, np, "%s[%zu]: limit must be a number", sec->key, idx);
	if (!sec->unique)
		return;
	const char *u = json_string_value(json_object_get(d, sec->unique));
	if (!u)
		return;
	if (json_object_get(seen_unique, u)) {
		problem(pb, np, "%s[%zu]: %s '%s' appears twice", sec->key, idx, sec->unique, u);
		return;
	}
	json_object_set_new(seen_unique, u, json_true());
	/* The store must not hold another document (another _id) with the same unique value. */
	json_t *uv = json_string(u);
	struct store_cond cond = { sec->unique, SOP_EQ, uv };
	struct store_query q = { &cond, 1, NULL, false, 2, NULL };
	json_t *docs = NULL;
	char *next = NULL, err[256];
	if (s->ops->find(s, sec->coll, &q, &docs, &next, err, sizeof err) == PRISM_OK) {
		size_t i;
		json_t *x;
		json_array_foreach(docs, i, x) {
			/* A document without _id updates the one with its slug/key; with another _id it collides. */
			const char *xid = json_string_value(json_object_get(x, "_id"));
			if (id && strcmp(xid, id) != 0)
				problem(pb, np, "%s[%zu]: %s '%s' already belongs to %s", sec->key, idx, sec->unique, u, xid);
		}
	} else {
		problem(pb, np, "%s[%zu]: cannot check %s against the store: %s", sec->key, idx, sec->unique, err);
	}
	free(next);
	json_decref(docs);
	json_decref(uv);
}

/* One write done, and how to undo it. */
struct undo {
	enum store_coll coll;
	char id[25];
	json_t *before;      /* NULL: the document was new */
};

/* The _id of the stored document whose `match` fields equal d's, into id (empty when none). */
static enum prism_err
match_existing(struct store *s, enum store_coll c, const char *const *match, json_t *d, char id[25], char *err,
	       size_t errlen)
{
	id[0] = '\0';
	if (!match)
		return PRISM_OK;
	struct store_cond conds[4];
	size_t n = 0;
	for (const char *const *f = match; *f && n < 4; f++) {
		json_t *v = json_object_get(d, *f);
		if (!v)
			return PRISM_OK;
		conds[n++] = (struct store_cond){ *f, SOP_EQ, v };
	}
	struct store_query q = { conds, n, NULL, false, 1, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	enum prism_err e = s->ops->find(s, c, &q, &docs, &next, err, errlen);
	free(next);
	if (!e && json_array_size(docs))
		snprintf(id, 25, "%s", json_string_value(json_object_get(json_array_get(docs, 0), "_id")));
	json_decref(docs);
	return e;
}

static enum prism_err
upsert_doc(struct store *s, enum store_coll c, const char *const *match, json_t *d, struct undo *u, char *err,
	   size_t errlen)
{
	u->coll = c;
	u->before = NULL;
	char found[25];
	const char *id = json_string_value(json_object_get(d, "_id"));
	if (!id) {
		enum prism_err e = match_existing(s, c, match, d, found, err, errlen);
		if (e)
			return e;
		if (found[0])
			id = found;
	}
	if (id) {
		json_t *cur = NULL;
		enum prism_err e = s->ops->get(s, c, id, &cur, err, errlen);
		if (e == PRISM_OK) {
			memcpy(u->id, id, 25);
			e = s->ops->update(s, c, id, d, -1, NULL, err, errlen);
			if (e)
				json_decref(cur);
			else
				u->before = cur;
			return e;
		}
		if (e != PRISM_E_NOT_FOUND)
			return e;
	}
	return s->ops->insert(s, c, d, u->id, err, errlen);
}

static void
undo_all(struct store *s, struct undo *undo, size_t n)
{
	char err[256];
	while (n-- > 0) {
		if (undo[n].before)
			s->ops->update(s, undo[n].coll, undo[n].id, undo[n].before, -1, NULL, err, sizeof err);
		else
			s->ops->remove(s, undo[n].coll, undo[n].id, err, sizeof err);
	}
}

enum prism_err
transfer_import(struct store *s, json_t *in, bool dry_run, json_t **summary, char *err, size_t errlen)
{
	*summary = NULL;
	struct buf pb;
	buf_init(&pb, 64 * 1024);
	int np = 0;
	size_t total = 0;
	if (!json_is_object(in) ||
	    strcmp(json_string_value(json_object_get(json_object_get(in, "_meta"), "type")) ?: "", TRANSFER_TYPE) != 0) {
		snprintf(err, errlen, "not a settings export: _meta.type must be \"%s\"", TRANSFER_TYPE);
		buf_free(&pb);
		return PRISM_E_BAD_REQUEST;
	}
	for (size_t i = 0; i < NSECTIONS; i++) {
		json_t *arr = json_object_get(in, sections[i].key);
		if (!arr || json_is_null(arr))
			continue;
		if (!json_is_array(arr)) {
			problem(&pb, &np, "%s: must be an array", sections[i].key);
			continue;
		}
		total += json_array_size(arr);
		json_t *seen_ids = json_object(), *seen_unique = json_object();
		size_t k;
		json_t *d;
		json_array_foreach(arr, k, d)
			validate_doc(s, &sections[i], k, d, seen_ids, seen_unique, &pb, &np);
		json_decref(seen_ids);
		json_decref(seen_unique);
	}
	for (size_t i = 0; i < NSINGLETONS; i++) {
		json_t *v = json_object_get(in, singletons[i].key);
		if (v && !json_is_null(v) && (!json_is_object(v) || !sane_value(v, 0)))
			problem(&pb, &np, "%s: must be an object or null", singletons[i].key);
		else if (json_is_object(v))
			total++;
	}
	json_t *sys = json_object_get(in, "systemConfig");
	if (sys && !json_is_null(sys)) {
		if (!json_is_array(sys)) {
			problem(&pb, &np, "systemConfig: must be an array of {key, value}");
		} else {
			size_t k;
			json_t *d;
			json_array_foreach(sys, k, d) {
				const char *key = json_string_value(json_object_get(d, "key"));
				if (!key || !json_object_get(d, "value") || !sane_value(d, 0))
					problem(&pb, &np, "systemConfig[%zu]: needs a string key and a value", k);
				else if (strncmp(key, "prism_", 6) == 0)
					problem(&pb, &np, "systemConfig[%zu]: key '%s' is reserved", k, key);
			}
			total += json_array_size(sys);
		}
	}
	if (total > MAX_IMPORT_DOCS)
		problem(&pb, &np, "more than %d documents", MAX_IMPORT_DOCS);
	if (np) {
		snprintf(err, errlen, "%d problem(s):\n%s%s", np, buf_cstr(&pb), np > 50 ? "...\n" : "");
		buf_free(&pb);
		return PRISM_E_BAD_REQUEST;
	}
	buf_free(&pb);

	json_t *counts = json_object();
	if (dry_run) {
		for (size_t i = 0; i < NSECTIONS; i++)
			json_object_set_new(counts, sections[i].key,
					    json_integer((json_int_t)json_array_size(json_object_get(in, sections[i].key))));
		*summary = json_pack("{s:o, s:b}", "imported", counts, "dryRun", 1);
		return PRISM_OK;
	}

	struct undo *undo = xcalloc(total + 1, sizeof *undo);
	size_t nundo = 0;
	enum prism_err e = PRISM_OK;
	for (size_t i = 0; !e && i < NSECTIONS; i++) {
		json_t *arr = json_object_get(in, sections[i].key);
		size_t k;
		json_t *d;
		json_array_foreach(arr, k, d) {
			if ((e = upsert_doc(s, sections[i].coll, sections[i].match, d, &undo[nundo], err, errlen)))
				break;
			nundo++;
		}
		json_object_set_new(counts, sections[i].key, json_integer((json_int_t)json_array_size(arr)));
	}
	long other = 0;
	for (size_t i = 0; !e && i < NSINGLETONS; i++) {
		json_t *v = json_object_get(in, singletons[i].key);
		if (!json_is_object(v))
			continue;
		json_t *cur = NULL;
		if ((e = find_singleton(s, &singletons[i], &cur, err, errlen)))
			break;
		json_t *d = json_copy(v);
		json_object_del(d, "_id");
		if (singletons[i].match_field)
			json_object_set_new(d, singletons[i].match_field, json_string(singletons[i].match_value));
		if (cur)
			json_object_set(d, "_id", json_object_get(cur, "_id"));
		json_decref(cur);
		e = upsert_doc(s, singletons[i].coll, NULL, d, &undo[nundo], err, errlen);
		json_decref(d);
		if (!e) {
			nundo++;
			other++;
		}
	}
	size_t k;
	json_t *d;
	json_array_foreach(json_is_array(sys) ? sys : NULL, k, d) {
		if (e)
			break;
		json_t *kv = json_object_get(d, "key");
		struct store_cond cond = { "key", SOP_EQ, kv };
		struct store_query q = { &cond, 1, NULL, false, 1, NULL };
		json_t *docs = NULL;
		char *next = NULL;
		if ((e = s->ops->find(s, COLL_SYSTEMCONFIGS, &q, &docs, &next, err, errlen)))
			break;
		free(next);
		json_t *copy = json_pack("{s:O, s:O}", "key", kv, "value", json_object_get(d, "value"));
		if (json_array_size(docs))
			json_object_set(copy, "_id", json_object_get(json_array_get(docs, 0), "_id"));
		json_decref(docs);
		e = upsert_doc(s, COLL_SYSTEMCONFIGS, NULL, copy, &undo[nundo], err, errlen);
		json_decref(copy);
		if (!e) {
			nundo++;
			other++;
		}
	}
	if (e) {
		char why[512];
		snprintf(why, sizeof why, "%s", err);
		undo_all(s, undo, nundo);
		snprintf(err, errlen, "import failed and was rolled back: %s", why);
	} else {
		int64_t gen;
		char gerr[128];
		s->ops->bump_generation(s, &gen, gerr, sizeof gerr);
	}
	for (size_t i = 0; i < nundo; i++)
		json_decref(undo[i].before);
	free(undo);
	if (e) {
		json_decref(counts);
		return e;
	}
	json_object_set_new(counts, "other", json_integer(other));
	*summary = json_pack("{s:o}", "imported", counts);
	return PRISM_OK;
}
