/* store.h -- the one storage interface; SQLite (store_sqlite.c) and MongoDB (store_mongo.c) implement it.
 *
 * Documents are JSON objects (jansson) with the original program's collection and field names, so a
 * MongoDB database written by the original Open Model Prism can be served as it is:
 *   - `_id` is a 24-hex string (an ObjectId in MongoDB); fields listed in a collection's `oid_fields`
 *     (tenantId, providerIds[], ...) are ObjectIds in MongoDB and 24-hex strings here;
 *   - fields listed in `date_fields` are BSON dates in MongoDB and ISO-8601 UTC strings here
 *     ("2026-11-26T22:30:00.123Z"), which sort and compare correctly as text;
 *   - `__v` is the document version: every successful store_update increments it, and an update that
 *     names the version it read fails with PRISM_E_CONFLICT when another writer got there first;
 *   - collections with `timestamps` get createdAt/updatedAt maintained by the store.
 *
 * Errors: PRISM_E_NOT_FOUND (no such document), PRISM_E_CONFLICT (duplicate unique key, stale version),
 * PRISM_E_BAD_REQUEST (a query or document the store cannot express), PRISM_E_STORE (the store is down,
 * busy past store_timeout, or failed: 503 to clients; detail in the caller's err buffer).  A failed write
 * changes nothing.
 *
 * Thread-safety: one struct store is shared by all threads of a process; backends keep per-thread
 * connections (SQLite) or a client pool (MongoDB).  Open the store after fork(), never before.
 * Ownership: documents passed in are borrowed; documents and arrays returned are new references.
 */
#ifndef PRISM_STORE_H
#define PRISM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/config.h"
#include "util/err.h"

/* --- collections --------------------------------------------------------------------------------------- */

enum store_coll {
	COLL_SETUPS, COLL_USERS, COLL_LDAPCONFIGS, COLL_PROVIDERS, COLL_TENANTS, COLL_ROUTINGCATEGORIES,
	COLL_ROUTINGRULESETS, COLL_REQUESTLOGS, COLL_DAILYSTATS, COLL_DAILYCATEGORYSTATS, COLL_DAILYUSERSTATS,
	COLL_CONFIGCHANGES, COLL_QUOTAS, COLL_EXPERIMENTS, COLL_WEBHOOKS, COLL_WEBHOOKLOGS, COLL_LOGCONFIGS,
	COLL_SYSTEMCONFIGS, COLL_CHATCONFIGS, COLL_PODMETRICS, COLL_SYNTHETICTESTS, COLL_TESTRUNS,
	COLL_COUNT
};

struct store_coll_desc {
	const char *name;                    /* MongoDB collection / SQLite table */
	const char *const *indexes;          /* NULL-terminated; "tenantId,-timestamp" ('-' = descending) */
	/* NULL-terminated unique keys, same syntax.  A single-field key is sparse (any number of documents may
	 * lack the field); in a compound key an absent field counts as null, so upsert_inc keys work. */
	const char *const *unique;
	const char *const *oid_fields;       /* dotted paths holding ObjectIds (or arrays of them) */
	const char *const *date_fields;      /* dotted paths holding dates */
	bool timestamps;                     /* createdAt/updatedAt */
};

const struct store_coll_desc *store_coll_desc(enum store_coll c);
/* By name; false when unknown. */
bool store_coll_by_name(const char *name, enum store_coll *out);

/* --- queries ------------------------------------------------------------------------------------------- */

enum store_op {
	SOP_EQ, SOP_NE, SOP_LT, SOP_LTE, SOP_GT, SOP_GTE,
	SOP_IN,          /* value is an array: field equals one of its elements */
	SOP_EXISTS,      /* value true/false: the field is present (and not null) or absent */
	SOP_CONTAINS,    /* the field is an array containing value */
};

struct store_cond {
	const char *field;                   /* dotted path, e.g. "tenantId" or "routing.enabled" */
	enum store_op op;
	json_t *value;                       /* borrowed; string, number, boolean, or array for SOP_IN */
};

#define STORE_MAX_LIMIT 10000
#define STORE_MAX_CONDS 16
#define STORE_MAX_CURSOR 512

struct store_query {
	const struct store_cond *conds;      /* all must hold */
	size_t nconds;
	const char *sort;                    /* field; NULL = _id; the order is always (sort, _id) */
	bool desc;
	long limit;                          /* 1..STORE_MAX_LIMIT; 0 = STORE_MAX_LIMIT */
	const char *after;                   /* cursor returned by the previous page, or NULL */
};

/* --- the interface ------------------------------------------------------------------------------------- */

struct store;

/* A document given as text: the compact JSON of an object without _id and __v, and its _id. */
struct store_text {
	const char *id;                      /* 24 lowercase hex digits */
	const char *json;                    /* NUL-terminated */
};

struct store_ops {
	const char *name;                    /* "sqlite", "mongodb" */
	void (*close)(struct store *s);
	/* Optional: the calling thread is done with the store for now (the end of a request); whatever it
	 * holds (a SQLite connection) goes back to a pool shared by the process's threads. */
	void (*release)(struct store *s);
	enum prism_err (*ping)(struct store *s, char *err, size_t errlen);
	/* Creates tables/collections, indexes and applies schema migrations (idempotent, one process at a
	 * time).  `applied` gets the number of steps that ran. */
	enum prism_err (*migrate)(struct store *s, int *applied, char *err, size_t errlen);

	enum prism_err (*get)(struct store *s, enum store_coll c, const char *id, json_t **doc, char *err,
			      size_t errlen);
	/* *docs: an array of at most limit documents; *next (malloc'd, NULL on the last page) continues. */
	enum prism_err (*find)(struct store *s, enum store_coll c, const struct store_query *q, json_t **docs,
			       char **next, char *err, size_t errlen);
	enum prism_err (*count)(struct store *s, enum store_coll c, const struct store_query *q, long *n,
				char *err, size_t errlen);
	/* Assigns _id when absent (written to id_out, 25 bytes), __v = 0 and timestamps. */
	enum prism_err (*insert)(struct store *s, enum store_coll c, json_t *doc, char *id_out, char *err,
				 size_t errlen);
	/* Several documents, all or (SQLite) nothing; MongoDB: in order, duplicates reported as CONFLICT. */
	enum prism_err (*insert_many)(struct store *s, enum store_coll c, json_t *docs, char *err, size_t errlen);
	/* Optional: insert_many of documents given as text (see store_insert_texts), for a collection without
	 * timestamps. */
	enum prism_err (*insert_texts)(struct store *s, enum store_coll c, const struct store_text *docs, size_t n,
				       char *err, size_t errlen);
	/* Replaces the document `id` with doc (its _id/__v/createdAt are ignored).  expect_version >= 0:
	 * only if the stored __v is that value.  The new version goes to *new_version (may be NULL). */
	enum prism_err (*update)(struct store *s, enum store_coll c, const char *id, json_t *doc,
				 long expect_version, long *new_version, char *err, size_t errlen);
	enum prism_err (*remove)(struct store *s, enum store_coll c, const char *id, char *err, size_t errlen);
	/* The fields of `key` must be exactly one of the collection's compound unique keys.
	 * Atomically: the document whose fields equal `key` gets each numeric field of `inc` added (created
	 * from key + set_on_insert + inc when absent).  Exact under any number of concurrent writers. */
	enum prism_err (*upsert_inc)(struct store *s, enum store_coll c, json_t *key, json_t *inc,
				     json_t *set_on_insert, char *err, size_t errlen);
	/* Deletes documents whose `field` (a date field) is before `before_iso`; the count goes to *deleted. */
	enum prism_err (*delete_before)(struct store *s, enum store_coll c, const char *field,
					const char *before_iso, long *deleted, char *err, size_t errlen);
	/* The configuration generation: every admin write bumps it; every host polls it. */
	enum prism_err (*generation)(struct store *s, int64_t *gen, char *err, size_t errlen);
	enum prism_err (*bump_generation)(struct store *s, int64_t *gen, char *err, size_t errlen);
};

struct store {
	const struct store_ops *ops;
};

/* Opens the configured store: MongoDB when mongo_uri is set, else SQLite at `store`.  err explains a
 * failure in terms an operator can act on (which file, which server). */
enum prism_err store_open(const struct config *cfg, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);
/* The calling thread is done with s until its next operation (the end of a request): the connection it
 * holds returns to the store's pool, so that a pool of many threads does not keep one connection (and its
 * page cache) per thread.  NULL and stores without a pool are fine. */
void store_release_thread(struct store *s);

/* The process's store: set once the server has connected (after fork), NULL until then or when no store
 * is configured.  Thread-safe. */
struct store *store_current(void);
void store_set_current(struct store *s);

/* The backends' constructors (used by store_open and by the contract tests). */
enum prism_err store_sqlite_open(const char *path, long timeout_ms, struct store **out, char *err, size_t errlen);
enum prism_err store_mongo_open(const char *uri, long timeout_ms, struct store **out, char *err, size_t errlen);
/* Before the process executes its program again: removes the name of the counter file the MongoDB driver
 * made when it was loaded (/dev/shm/mongoc-<pid>), which the next image, with the same pid, would find
 * taken.  This image's counters keep working. */
void store_mongo_before_exec(void);

/* --- helpers common to both backends (store.c) ---------------------------------------------------------- */

/* A new ObjectId-style id: 4 bytes of time, 5 random, 3 counter; 24 lowercase hex + NUL. */
void store_new_id(char out[25]);
bool store_id_valid(const char *id);
/* Now as an ISO-8601 UTC string (24 characters + NUL). */
void store_now_iso(char out[32]);
/* Validates a query against the limits and operators (both backends call it first). */
enum prism_err store_query_check(const struct store_query *q, char *err, size_t errlen);
/* Cursor encoding: the (sort value, _id) of the last document of a page. */
char *store_cursor_make(const json_t *sort_value, const char *id);
enum prism_err store_cursor_parse(const char *cursor, json_t **sort_value, char id[25]);
/* The compound unique key of the collection whose fields are exactly those of `key` (its spec string, in
 * index order), or NULL: upsert_inc accepts only such keys. */
const char *store_unique_for_key(const struct store_coll_desc *d, const json_t *key);
/* A dotted path inside a document (borrowed), or NULL. */
json_t *store_path_get(const json_t *doc, const char *path);

/* insert_many (one document: insert) of documents serialised once by their producer: the analytics
 * writer turns a RequestLog into text on the request thread, and keeps only that.  SQLite stores the text
 * as it is; a store without insert_texts (MongoDB) gets the documents parsed.  Only for collections
 * without timestamps (PRISM_E_BAD_REQUEST otherwise). */
enum prism_err store_insert_texts(struct store *s, enum store_coll c, const struct store_text *docs, size_t n,
				  char *err, size_t errlen);

/* Sums the numeric fields `sums` over all documents matching q, grouped by the fields `group` (each group
 * an object with the group fields and the sums).  Used by dashboards over the daily pre-aggregates. */
enum prism_err store_sum(struct store *s, enum store_coll c, const struct store_query *q, const char *const *group,
			 const char *const *sums, json_t **groups, char *err, size_t errlen);

#endif
