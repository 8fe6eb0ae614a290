/* store_sqlite.c -- the SQLite backend of store.h: one file, many processes and threads.
 *
 * Each collection is a table (id TEXT PRIMARY KEY, v INTEGER version, doc TEXT JSON without _id/__v);
 * every indexed field is an expression index on json_extract(doc, '$.path'), which the planner uses when
 * a query names the same expression.  WAL journal, a busy timeout (store_timeout), a connection per
 * thread while it works (with a cache of prepared statements), returned by store_release_thread() to a
 * small pool of idle connections: a pool of hundreds of request threads holds as many connections as
 * threads use the store at once, not one per thread.  Schema migrations are numbered (PRAGMA user_version) and
 * run by one process at a time inside BEGIN IMMEDIATE.
 */
#include "config.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

#define STMT_CACHE 96
#define IDLE_MAX 4                  /* idle connections kept for the next thread; more are closed */

struct cached_stmt {
	char *sql;
	sqlite3_stmt *st;
	unsigned long used;
};

struct conn {
	sqlite3 *db;
	struct cached_stmt cache[STMT_CACHE];
	unsigned long tick;
	struct conn *next, *prev;   /* all connections of the store */
	struct conn *next_idle;
};

struct sqlite_store {
	struct store base;
	char *path;
	long timeout_ms;
	pthread_key_t key;
	pthread_mutex_t lock;       /* guards conns, idle, nidle */
	struct conn *conns;
	struct conn *idle;          /* returned by threads, most recent first */
	int nidle;
};

/* --- connections and statements ------------------------------------------------------------------------- */

static void
conn_free(struct conn *c)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		if (c->cache[i].st)
			sqlite3_finalize(c->cache[i].st);
		free(c->cache[i].sql);
	}
	sqlite3_close_v2(c->db);
	free(c);
}

static void
conn_release(void *p)
{
	/* Thread exit: the connection stays on the store's list and is closed with the store. */
	(void)p;
}

static enum prism_err
db_error(sqlite3 *db, int rc, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT: return PRISM_E_CONFLICT;
	case SQLITE_BUSY: case SQLITE_LOCKED: return PRISM_E_STORE;   /* busy past store_timeout */
	case SQLITE_NOMEM: return PRISM_E_NOMEM;
	default: return PRISM_E_STORE;
	}
}

static enum prism_err
conn_open(struct sqlite_store *ss, struct conn **out, char *err, size_t errlen)
{
	struct conn *c = pthread_getspecific(ss->key);
	if (c) {
		*out = c;
		return PRISM_OK;
	}
	pthread_mutex_lock(&ss->lock);
	if ((c = ss->idle)) {
		ss->idle = c->next_idle;
		ss->nidle--;
	}
	pthread_mutex_unlock(&ss->lock);
	if (c) {
		pthread_setspecific(ss->key, c);
		*out = c;
		return PRISM_OK;
	}
	c = xcalloc(1, sizeof *c);
	int rc = sqlite3_open_v2(ss->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		enum prism_err e = db_error(c->db, rc, ss->path, err, errlen);
		conn_free(c);
		return e == PRISM_E_CONFLICT ? PRISM_E_STORE : e;
	}
	sqlite3_busy_timeout(c->db, (int)ss->timeout_ms);
	sqlite3_extended_result_codes(c->db, 1);
	char *msg = NULL;
	/* Checkpoints every 10,000 pages (40 MB of WAL) rather than 1,000: the analytics writer's inserts touch
	 * the same index pages again and again, which a checkpoint copies once per round (12 % less CPU per
	 * insert); the WAL file is cut back to 64 MB after a checkpoint. */
	rc = sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY; "
			  "PRAGMA wal_autocheckpoint=10000; PRAGMA journal_size_limit=67108864;",
			  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", ss->path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		conn_free(c);
		return PRISM_E_STORE;
	}
	pthread_setspecific(ss->key, c);
	pthread_mutex_lock(&ss->lock);
	c->next = ss->conns;
	if (ss->conns)
		ss->conns->prev = c;
	ss->conns = c;
	pthread_mutex_unlock(&ss->lock);
	*out = c;
	return PRISM_OK;
}

/* A prepared statement for sql from the connection's cache, reset and with bindings cleared. */
static sqlite3_stmt *
stmt_get(struct conn *c, const char *sql, char *err, size_t errlen)
{
	int victim = 0;
	c->tick++;
	for (int i = 0; i < STMT_CACHE; i++) {
		if (c->cache[i].sql && strcmp(c->cache[i].sql, sql) == 0) {
			c->cache[i].used = c->tick;
			sqlite3_reset(c->cache[i].st);
			sqlite3_clear_bindings(c->cache[i].st);
			return c->cache[i].st;
		}
		if (c->cache[i].used < c->cache[victim].used)
			victim = i;
	}
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	struct cached_stmt *slot = &c->cache[victim];
	if (slot->st)
		sqlite3_finalize(slot->st);
	free(slot->sql);
	slot->sql = xstrdup(sql);
	slot->st = st;
	slot->used = c->tick;
	return st;
}

static enum prism_err
exec_sql(struct conn *c, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return PRISM_OK;
	snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: return PRISM_E_STORE;   /* busy past store_timeout */
	case SQLITE_CONSTRAINT: return PRISM_E_CONFLICT;
	default: return PRISM_E_STORE;
	}
}

static void
rollback(struct conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

/* The thread's connection back to the pool, or closed when the pool has enough.  Statements are reset
 * (one left on a row would hold a read transaction, and with it an old view of the database). */
static void
op_release(struct store *s)
{
	struct sqlite_store *ss = (struct sqlite_store *)(void *)s;
	struct conn *c = pthread_getspecific(ss->key);
	if (!c)
		return;
	pthread_setspecific(ss->key, NULL);
	for (int i = 0; i < STMT_CACHE; i++)
		if (c->cache[i].st)
			sqlite3_reset(c->cache[i].st);
	rollback(c);
	pthread_mutex_lock(&ss->lock);
	if (ss->nidle < IDLE_MAX) {
		c->next_idle = ss->idle;
		ss->idle = c;
		ss->nidle++;
		c = NULL;
	} else {
		if (c->prev)
			c->prev->next = c->next;
		else
			ss->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	pthread_mutex_unlock(&ss->lock);
	if (c)
		conn_free(c);
}

/* --- SQL text ------------------------------------------------------------------------------------------- */

/* json_extract(doc,'$.path'); paths are validated to [A-Za-z0-9_.] (store_query_check, the table). */
static void
sql_field(struct buf *b, const char *field)
{
	if (strcmp(field, "_id") == 0)
		buf_puts(b, "id");
	else if (strcmp(field, "__v") == 0)
		buf_puts(b, "v");
	else
		buf_printf(b, "json_extract(doc,'$.%s')", field);
}

static enum prism_err
bind_value(sqlite3_stmt *st, int idx, const json_t *v)
{
	int rc;
	switch (json_typeof(v)) {
	case JSON_STRING: rc = sqlite3_bind_text(st, idx, json_string_value(v), (int)json_string_length(v),
						 SQLITE_TRANSIENT); break;
	case JSON_INTEGER: rc = sqlite3_bind_int64(st, idx, json_integer_value(v)); break;
	case JSON_REAL: rc = sqlite3_bind_double(st, idx, json_real_value(v)); break;
	case JSON_TRUE: rc = sqlite3_bind_int(st, idx, 1); break;
	case JSON_FALSE: rc = sqlite3_bind_int(st, idx, 0); break;
	case JSON_NULL: rc = sqlite3_bind_null(st, idx); break;
	default: return PRISM_E_BAD_REQUEST;
	}
	return rc == SQLITE_OK ? PRISM_OK : PRISM_E_STORE;
}

/* Values bound in order while the WHERE clause is written. */
struct binds {
	const json_t *v[STORE_MAX_CONDS * 4 + 1024];
	int n;
};

static void
bind_push(struct binds *b, const json_t *v)
{
	if (b->n < (int)(sizeof b->v / sizeof b->v[0]))
		b->v[b->n++] = v;
}

static enum prism_err
sql_where(struct buf *b, struct binds *bv, const struct store_query *q, json_t *cursor_val, json_t *cursor_id,
	  char *err, size_t errlen)
{
	buf_puts(b, " WHERE 1");
	for (size_t i = 0; i < q->nconds; i++) {
		const struct store_cond *c = &q->conds[i];
		buf_puts(b, " AND ");
		switch (c->op) {
		case SOP_EQ: case SOP_LT: case SOP_LTE: case SOP_GT: case SOP_GTE: {
			static const char *const ops[] = { "=", "", "<", "<=", ">", ">=" };
			if (json_is_null(c->value) && c->op == SOP_EQ) {
				/* Mongo: {f: null} matches null and absent */
				sql_field(b, c->field);
				buf_puts(b, " IS NULL");
				break;
			}
			sql_field(b, c->field);
			buf_printf(b, " %s ?", ops[c->op]);
			bind_push(bv, c->value);
			break;
		}
		case SOP_NE:
			/* Mongo: {f: {$ne: x}} also matches documents without f */
			buf_puts(b, "(");
			sql_field(b, c->field);
			buf_puts(b, " IS NULL OR ");
			sql_field(b, c->field);
			buf_puts(b, " != ?)");
			bind_push(bv, c->value);
			break;
		case SOP_IN: {
			size_t n = json_array_size(c->value);
			if (n == 0) {
				buf_puts(b, "0");
				break;
			}
			sql_field(b, c->field);
			buf_puts(b, " IN (");
			for (size_t k = 0; k < n; k++) {
				buf_puts(b, k ? ",?" : "?");
				bind_push(bv, json_array_get(c->value, k));
			}
			buf_puts(b, ")");
			break;
		}
		case SOP_EXISTS:
			if (strcmp(c->field, "_id") == 0) {
				buf_puts(b, json_is_true(c->value) ? "1" : "0");
				break;
			}
			buf_printf(b, "coalesce(json_type(doc,'$.%s'),'null') %s 'null'", c->field,
				   json_is_true(c->value) ? "!=" : "=");
			break;
		case SOP_CONTAINS:
			buf_printf(b, "EXISTS (SELECT 1 FROM json_each(doc,'$.%s') WHERE value = ?)", c->field);
			bind_push(bv, c->value);
			break;
		default:
			snprintf(err, errlen, "unsupported query operator");
			return PRISM_E_BAD_REQUEST;
		}
	}
	if (cursor_id) {
		/* Keyset: rows after (sort value, id) in the order of the query; NULLs sort first ascending. */
		const char *sort = q->sort ? q->sort : "_id";
		const char *gt = q->desc ? "<" : ">";
		if (strcmp(sort, "_id") == 0) {
			buf_printf(b, " AND id %s ?", gt);
			bind_push(bv, cursor_id);
		} else if (json_is_null(cursor_val)) {
			buf_puts(b, " AND ((");
			sql_field(b, sort);
			buf_printf(b, " IS NULL AND id %s ?)", gt);
			bind_push(bv, cursor_id);
			if (!q->desc) {
				buf_puts(b, " OR ");
				sql_field(b, sort);
				buf_puts(b, " IS NOT NULL");
			}
			buf_puts(b, ")");
		} else {
			buf_puts(b, " AND (");
			sql_field(b, sort);
			buf_printf(b, " %s ? OR (", gt);
			bind_push(bv, cursor_val);
			sql_field(b, sort);
			buf_printf(b, " = ? AND id %s ?)", gt);
			bind_push(bv, cursor_val);
			bind_push(bv, cursor_id);
			if (q->desc) {
				buf_puts(b, " OR ");
				sql_field(b, sort);
				buf_puts(b, " IS NULL");
			}
			buf_puts(b, ")");
		}
	}
	return PRISM_OK;
}

/* The document of a row: doc text + _id + __v. */
static json_t *
row_doc(sqlite3_stmt *st, int id_col)
{
	const char *id = (const char *)sqlite3_column_text(st, id_col);
	json_int_t v = sqlite3_column_int64(st, id_col + 1);
	const char *text = (const char *)sqlite3_column_text(st, id_col + 2);
	json_error_t jerr;
	json_t *doc = text ? json_loads(text, 0, &jerr) : NULL;
	if (!json_is_object(doc)) {
		/* A row that is not a JSON object (hand-edited, damaged) is returned empty rather than crashing. */
		json_decref(doc);
		doc = json_object();
		log_warn("store: document %s is not a JSON object; returned empty", id ? id : "?");
	}
	json_object_set_new(doc, "_id", json_string(id ? id : ""));
	json_object_set_new(doc, "__v", json_integer(v));
	return doc;
}

/* Document text to store: without _id and __v.  doc_text_of consumes a copy the caller made anyway. */
static char *
doc_text_of(json_t *copy)
{
	json_object_del(copy, "_id");
	json_object_del(copy, "__v");
	char *text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	return text;
}

static char *
doc_text(json_t *doc)
{
	return doc_text_of(json_copy(doc));
}

/* --- operations --------------------------------------------------------------------------------------- */

#define SS(s) ((struct sqlite_store *)(void *)(s))

static enum prism_err
op_ping(struct store *s, char *err, size_t errlen)
{
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	sqlite3_stmt *st = stmt_get(c, "SELECT count(*) FROM sqlite_master", err, errlen);
	if (!st)
		return PRISM_E_STORE;
	/* Reset at once: a statement left on its row keeps a read transaction open, and this thread would go
	 * on seeing the database as it was at this ping. */
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_error(c->db, rc, SS(s)->path, err, errlen);
	return PRISM_OK;
}

/* Index DDL for one spec "a,-b" on table t. */
static void
index_sql(struct buf *b, const char *table, const char *spec, int n, bool unique)
{
	bool compound = strchr(spec, ',') != NULL;
	buf_printf(b, "CREATE %sINDEX IF NOT EXISTS \"%s_%s%d\" ON \"%s\"(", unique ? "UNIQUE " : "", table,
		   unique ? "u" : "i", n, table);
	const char *p = spec;
	bool first = true;
	while (*p) {
		size_t len = strcspn(p, ",");
		bool desc = *p == '-';
		const char *f = desc ? p + 1 : p;
		size_t flen = desc ? len - 1 : len;
		if (!first)
			buf_puts(b, ", ");
		first = false;
		/* Compound unique keys treat an absent field as null (MongoDB semantics for upserts). */
		if (unique && compound)
			buf_printf(b, "coalesce(json_extract(doc,'$.%.*s'),'')", (int)flen, f);
		else
			buf_printf(b, "json_extract(doc,'$.%.*s')%s", (int)flen, f, desc ? " DESC" : "");
		p += len;
		if (*p == ',')
			p++;
	}
	buf_puts(b, ");\n");
}

/* Migration 1: every table, index and the metadata table. */
static void
migration_1(struct buf *b)
{
	buf_puts(b, "CREATE TABLE IF NOT EXISTS prism_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);\n"
		    "INSERT OR IGNORE INTO prism_meta VALUES ('generation', 0);\n");
	for (int i = 0; i < COLL_COUNT; i++) {
		const struct store_coll_desc *d = store_coll_desc((enum store_coll)i);
		buf_printf(b, "CREATE TABLE IF NOT EXISTS \"%s\" (id TEXT PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0, "
			      "doc TEXT NOT NULL);\n", d->name);
		int n = 0;
		for (const char *const *ix = d->indexes; *ix; ix++)
			index_sql(b, d->name, *ix, n++, false);
		n = 0;
		for (const char *const *ux = d->unique; *ux; ux++)
			index_sql(b, d->name, *ux, n++, true);
	}
}

static void (*const migrations[])(struct buf *) = { migration_1 };
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static enum prism_err
op_migrate(struct store *s, int *applied, char *err, size_t errlen)
{
	struct conn *c;
	*applied = 0;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	/* BEGIN IMMEDIATE takes the write lock: concurrent starters wait here, then find the work done. */
	e = exec_sql(c, "BEGIN IMMEDIATE", err, errlen);
	if (e)
		return e;
	sqlite3_stmt *st = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > NMIGRATIONS) {
		rollback(c);
		snprintf(err, errlen, "%s has schema version %d, newer than this program knows (%d); use a newer "
			 "model-prism", SS(s)->path, version, NMIGRATIONS);
		return PRISM_E_STORE;
	}
	struct buf sql;
	buf_init(&sql, 1 << 20);
	for (int m = version; m < NMIGRATIONS; m++) {
		buf_reset(&sql);
		migrations[m](&sql);
		buf_printf(&sql, "PRAGMA user_version = %d;\n", m + 1);
		e = exec_sql(c, buf_cstr(&sql), err, errlen);
		if (e) {
			rollback(c);
			buf_free(&sql);
			return e;
		}
		(*applied)++;
	}
	buf_free(&sql);
	e = exec_sql(c, "COMMIT", err, errlen);
	if (e)
		rollback(c);
	return e;
}

static enum prism_err
op_get(struct store *s, enum store_coll coll, const char *id, json_t **doc, char *err, size_t errlen)
{
	*doc = NULL;
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT id, v, doc FROM \"%s\" WHERE id = ?", store_coll_desc(coll)->name);
	sqlite3_stmt *st = stmt_get(c, sql, err, errlen);
	if (!st)
		return PRISM_E_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		snprintf(err, errlen, "%s %s not found", store_coll_desc(coll)->name, id);
		return PRISM_E_NOT_FOUND;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_error(c->db, rc, "get", err, errlen);
	}
	*doc = row_doc(st, 0);
	sqlite3_reset(st);
	return PRISM_OK;
}

static enum prism_err
prepare_query(struct conn *c, const char *head, enum store_coll coll, const struct store_query *q, bool paged,
	      sqlite3_stmt **out, json_t **cursor_val, char cursor_id[25], long *limit, char *err, size_t errlen)
{
	*out = NULL;
	*cursor_val = NULL;
	enum prism_err e = store_query_check(q, err, errlen);
	if (e)
		return e;
	bool have_cursor = false;
	if (paged && q->after) {
		if (store_cursor_parse(q->after, cursor_val, cursor_id)) {
			snprintf(err, errlen, "invalid page cursor");
			return PRISM_E_BAD_REQUEST;
		}
		have_cursor = true;
	}
	struct buf sql;
	buf_init(&sql, 64 * 1024);
	struct binds bv = { .n = 0 };
	json_t *cid = have_cursor ? json_string(cursor_id) : NULL;
	buf_printf(&sql, "%s FROM \"%s\"", head, store_coll_desc(coll)->name);
	e = sql_where(&sql, &bv, q, *cursor_val, cid, err, errlen);
	if (!e && paged) {
		*limit = q->limit ? q->limit : STORE_MAX_LIMIT;
		const char *dir = q->desc ? "DESC" : "ASC";
		buf_puts(&sql, " ORDER BY ");
		if (q->sort && strcmp(q->sort, "_id") != 0) {
			sql_field(&sql, q->sort);
			buf_printf(&sql, " %s, ", dir);
		}
		buf_printf(&sql, "id %s LIMIT %ld", dir, *limit + 1);
	}
	sqlite3_stmt *st = NULL;
	if (!e) {
		st = stmt_get(c, buf_cstr(&sql), err, errlen);
		if (!st)
			e = PRISM_E_STORE;
	}
	for (int i = 0; !e && i < bv.n; i++)
		e = bind_value(st, i + 1, bv.v[i]);
	json_decref(cid);    /* sqlite3_bind_text copied it */
	buf_free(&sql);
	if (e) {
		json_decref(*cursor_val);
		*cursor_val = NULL;
		return e;
	}
	*out = st;
	return PRISM_OK;
}

static enum prism_err
op_find(struct store *s, enum store_coll coll, const struct store_query *q, json_t **docs, char **next, char *err,
	size_t errlen)
{
	*docs = NULL;
	*next = NULL;
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	sqlite3_stmt *st;
	json_t *cursor_val;
	char cursor_id[25];
	long limit = 0;
	e = prepare_query(c, "SELECT id, v, doc", coll, q, true, &st, &cursor_val, cursor_id, &limit, err, errlen);
	json_decref(cursor_val);
	if (e)
		return e;
	json_t *out = json_array();
	int rc;
	long n = 0;
	bool more = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		json_array_append_new(out, row_doc(st, 0));
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		json_decref(out);
		return db_error(c->db, rc, "find", err, errlen);
	}
	if (more && n > 0) {
		json_t *last = json_array_get(out, (size_t)n - 1);
		const char *sort = q->sort ? q->sort : "_id";
		json_t *sv = strcmp(sort, "_id") == 0 ? json_object_get(last, "_id") : store_path_get(last, sort);
		*next = store_cursor_make(sv ? sv : json_null(), json_string_value(json_object_get(last, "_id")));
	}
	*docs = out;
	return PRISM_OK;
}

static enum prism_err
op_count(struct store *s, enum store_coll coll, const struct store_query *q, long *n, char *err, size_t errlen)
{
	*n = 0;
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	sqlite3_stmt *st;
	json_t *cursor_val;
	char cursor_id[25];
	e = prepare_query(c, "SELECT count(*)", coll, q, false, &st, &cursor_val, cursor_id, NULL, err, errlen);
	if (e)
		return e;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_error(c->db, rc, "count", err, errlen);
	}
	*n = (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return PRISM_OK;
}

/* Prepares doc for storage: _id (assigned when absent), timestamps; returns the text to store. */
static enum prism_err
prepare_insert(enum store_coll coll, json_t *doc, char id[25], char **text, char *err, size_t errlen)
{
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "a document must be a JSON object");
		return PRISM_E_BAD_REQUEST;
	}
	const char *given = json_string_value(json_object_get(doc, "_id"));
	if (given) {
		if (!store_id_valid(given)) {
			snprintf(err, errlen, "_id must be 24 lowercase hex digits");
			return PRISM_E_BAD_REQUEST;
		}
		memcpy(id, given, 25);
	} else if (json_object_get(doc, "_id")) {
		snprintf(err, errlen, "_id must be a string");
		return PRISM_E_BAD_REQUEST;
	} else {
		store_new_id(id);
	}
	json_t *copy = json_copy(doc);
	if (store_coll_desc(coll)->timestamps) {
		char now[32];
		store_now_iso(now);
		if (!json_object_get(copy, "createdAt"))
			json_object_set_new(copy, "createdAt", json_string(now));
		if (!json_object_get(copy, "updatedAt"))
			json_object_set_new(copy, "updatedAt", json_string(now));
	}
	*text = doc_text_of(copy);     /* one copy per insert: the analytics writer inserts every request */
	return *text ? PRISM_OK : PRISM_E_NOMEM;
}

/* One row: id (24 hex digits) and the document's text as it is stored. */
static enum prism_err
insert_text(struct conn *c, enum store_coll coll, const char *id, const char *text, char *err, size_t errlen)
{
	char sql[160];
	snprintf(sql, sizeof sql, "INSERT INTO \"%s\"(id, v, doc) VALUES (?, 0, ?)", store_coll_desc(coll)->name);
	sqlite3_stmt *st = stmt_get(c, sql, err, errlen);
	if (!st)
		return PRISM_E_STORE;
	sqlite3_bind_text(st, 1, id, 24, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);     /* id and text are the caller's */
	return rc == SQLITE_DONE ? PRISM_OK : db_error(c->db, rc, "insert", err, errlen);
}

static enum prism_err
insert_one(struct conn *c, enum store_coll coll, json_t *doc, char *id_out, char *err, size_t errlen)
{
	char id[25], *text = NULL;
	enum prism_err e = prepare_insert(coll, doc, id, &text, err, errlen);
	if (e)
		return e;
	e = insert_text(c, coll, id, text, err, errlen);
	free(text);
	if (!e && id_out)
		memcpy(id_out, id, 25);
	return e;
}

static enum prism_err
op_insert(struct store *s, enum store_coll coll, json_t *doc, char *id_out, char *err, size_t errlen)
{
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	return e ? e : insert_one(c, coll, doc, id_out, err, errlen);
}

/* The i-th document of a batch, inserted on c. */
typedef enum prism_err (*insert_nth_fn)(struct conn *c, enum store_coll coll, const void *docs, size_t i,
					char *err, size_t errlen);

/* Inserts the n documents of docs in one transaction: all or none. */
static enum prism_err
insert_batch(struct store *s, enum store_coll coll, insert_nth_fn nth, const void *docs, size_t n, char *err,
	     size_t errlen)
{
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	if ((e = exec_sql(c, "BEGIN IMMEDIATE", err, errlen)))
		return e;
	for (size_t i = 0; i < n && !e; i++)
		e = nth(c, coll, docs, i, err, errlen);
	if (!e)
		e = exec_sql(c, "COMMIT", err, errlen);
	if (e)
		rollback(c);
	return e;
}

static enum prism_err
insert_nth_doc(struct conn *c, enum store_coll coll, const void *docs, size_t i, char *err, size_t errlen)
{
	return insert_one(c, coll, json_array_get(docs, i), NULL, err, errlen);
}

static enum prism_err
insert_nth_text(struct conn *c, enum store_coll coll, const void *docs, size_t i, char *err, size_t errlen)
{
	const struct store_text *t = (const struct store_text *)docs + i;
	return insert_text(c, coll, t->id, t->json, err, errlen);
}

static enum prism_err
op_insert_many(struct store *s, enum store_coll coll, json_t *docs, char *err, size_t errlen)
{
	if (!json_is_array(docs)) {
		snprintf(err, errlen, "insert_many needs an array");
		return PRISM_E_BAD_REQUEST;
	}
	return insert_batch(s, coll, insert_nth_doc, docs, json_array_size(docs), err, errlen);
}

/* store_insert_texts: the texts are stored as they are (their producer made them with jansson). */
static enum prism_err
op_insert_texts(struct store *s, enum store_coll coll, const struct store_text *docs, size_t n, char *err,
		size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (!store_id_valid(docs[i].id) || docs[i].json[0] != '{') {
			snprintf(err, errlen, "document %zu is not a JSON object with a valid _id", i);
			return PRISM_E_BAD_REQUEST;
		}
	}
	return insert_batch(s, coll, insert_nth_text, docs, n, err, errlen);
}

static enum prism_err
op_update(struct store *s, enum store_coll coll, const char *id, json_t *doc, long expect_version, long *new_version,
	  char *err, size_t errlen)
{
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "a document must be a JSON object");
		return PRISM_E_BAD_REQUEST;
	}
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	const struct store_coll_desc *d = store_coll_desc(coll);
	json_t *copy = json_copy(doc);
	json_object_del(copy, "createdAt");
	if (d->timestamps) {
		char now[32];
		store_now_iso(now);
		json_object_set_new(copy, "updatedAt", json_string(now));
	}
	char *text = doc_text(copy);
	json_decref(copy);
	char sql[320];
	/* createdAt is the stored one: an update never rewrites history. */
	snprintf(sql, sizeof sql,
		 "UPDATE \"%s\" SET v = v + 1, doc = %s WHERE id = ?2%s RETURNING v", d->name,
		 d->timestamps ? "CASE WHEN json_extract(doc,'$.createdAt') IS NULL THEN ?1 "
				 "ELSE json_set(?1,'$.createdAt',json_extract(doc,'$.createdAt')) END" : "?1",
		 expect_version >= 0 ? " AND v = ?3" : "");
	sqlite3_stmt *st = stmt_get(c, sql, err, errlen);
	if (!st) {
		free(text);
		return PRISM_E_STORE;
	}
	sqlite3_bind_text(st, 1, text, -1, free);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
	if (expect_version >= 0)
		sqlite3_bind_int64(st, 3, expect_version);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (new_version)
			*new_version = (long)sqlite3_column_int64(st, 0);
		sqlite3_step(st);
		sqlite3_reset(st);
		return PRISM_OK;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_error(c->db, rc, "update", err, errlen);
	/* Nothing matched: a stale version or no such document. */
	json_t *cur = NULL;
	e = op_get(s, coll, id, &cur, err, errlen);
	json_decref(cur);
	if (e)
		return e;
	snprintf(err, errlen, "%s %s was changed by someone else (version %ld is stale)", d->name, id, expect_version);
	return PRISM_E_CONFLICT;
}

static enum prism_err
op_remove(struct store *s, enum store_coll coll, const char *id, char *err, size_t errlen)
{
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	char sql[160];
	snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id = ?", store_coll_desc(coll)->name);
	sqlite3_stmt *st = stmt_get(c, sql, err, errlen);
	if (!st)
		return PRISM_E_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_error(c->db, rc, "remove", err, errlen);
	if (sqlite3_changes(c->db) == 0) {
		snprintf(err, errlen, "%s %s not found", store_coll_desc(coll)->name, id);
		return PRISM_E_NOT_FOUND;
	}
	return PRISM_OK;
}

static enum prism_err
op_upsert_inc(struct store *s, enum store_coll coll, json_t *key, json_t *inc, json_t *set_on_insert, char *err,
	      size_t errlen)
{
	const struct store_coll_desc *d = store_coll_desc(coll);
	if (!json_is_object(key) || !json_is_object(inc) || (set_on_insert && !json_is_object(set_on_insert))) {
		snprintf(err, errlen, "upsert_inc needs objects");
		return PRISM_E_BAD_REQUEST;
	}
	const char *unique = store_unique_for_key(d, key);
	if (!unique) {
		snprintf(err, errlen, "the fields of the key are not a unique key of %s", d->name);
		return PRISM_E_BAD_REQUEST;
	}
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	/* The new document: key + set_on_insert + inc. */
	json_t *doc = json_object();
	if (set_on_insert)
		json_object_update(doc, set_on_insert);
	json_object_update(doc, key);
	struct buf sql;
	buf_init(&sql, 16384);
	buf_printf(&sql, "INSERT INTO \"%s\"(id, v, doc) VALUES (?, 0, ?) ON CONFLICT(", d->name);
	for (const char *p = unique; *p;) {
		size_t len = strcspn(p, ",");
		buf_printf(&sql, "%scoalesce(json_extract(doc,'$.%.*s'),'')", p == unique ? "" : ", ", (int)len, p);
		p += len;
		if (*p == ',')
			p++;
	}
	buf_puts(&sql, ") DO UPDATE SET doc = json_set(doc");
	const char *f;
	json_t *v;
	struct binds bv = { .n = 0 };
	json_object_foreach(inc, f, v) {
		if (!json_is_number(v) || strspn(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") !=
						   strlen(f)) {
			snprintf(err, errlen, "upsert_inc: '%s' must be a number with a plain field name", f);
			json_decref(doc);
			buf_free(&sql);
			return PRISM_E_BAD_REQUEST;
		}
		json_object_set(doc, f, v);
		buf_printf(&sql, ", '$.%s', coalesce(json_extract(doc,'$.%s'),0) + ?", f, f);
		bind_push(&bv, v);
	}
	buf_puts(&sql, ")");
	char id[25];
	store_new_id(id);
	char *text = doc_text(doc);
	json_decref(doc);
	sqlite3_stmt *st = stmt_get(c, buf_cstr(&sql), err, errlen);
	buf_free(&sql);
	if (!st) {
		free(text);
		return PRISM_E_STORE;
	}
	sqlite3_bind_text(st, 1, id, 24, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, text, -1, free);
	for (int i = 0; i < bv.n; i++)
		bind_value(st, i + 3, bv.v[i]);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_error(c->db, rc, "upsert_inc", err, errlen);
	return PRISM_OK;
}

static enum prism_err
op_delete_before(struct store *s, enum store_coll coll, const char *field, const char *before_iso, long *deleted,
		 char *err, size_t errlen)
{
	*deleted = 0;
	struct store_cond cond = { field, SOP_LT, json_string(before_iso) };
	struct store_query q = { &cond, 1, NULL, false, 0, NULL };
	enum prism_err e = store_query_check(&q, err, errlen);
	struct conn *c = NULL;
	if (!e)
		e = conn_open(SS(s), &c, err, errlen);
	if (e) {
		json_decref(cond.value);
		return e;
	}
	char sql[256];
	snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE json_extract(doc,'$.%s') < ?", store_coll_desc(coll)->name,
		 field);
	sqlite3_stmt *st = stmt_get(c, sql, err, errlen);
	if (st) {
		sqlite3_bind_text(st, 1, before_iso, -1, SQLITE_TRANSIENT);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			e = db_error(c->db, rc, "delete_before", err, errlen);
		else
			*deleted = (long)sqlite3_changes(c->db);
	} else {
		e = PRISM_E_STORE;
	}
	json_decref(cond.value);
	return e;
}

static enum prism_err
meta_generation(struct store *s, bool bump, int64_t *gen, char *err, size_t errlen)
{
	struct conn *c;
	enum prism_err e = conn_open(SS(s), &c, err, errlen);
	if (e)
		return e;
	sqlite3_stmt *st = stmt_get(c, bump ? "UPDATE prism_meta SET v = v + 1 WHERE k = 'generation' RETURNING v"
					    : "SELECT v FROM prism_meta WHERE k = 'generation'", err, errlen);
	if (!st)
		return PRISM_E_STORE;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*gen = sqlite3_column_int64(st, 0);
		if (bump)
			sqlite3_step(st);
		sqlite3_reset(st);
		return PRISM_OK;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "%s has no schema; run prismctl migrate", SS(s)->path);
		return PRISM_E_STORE;
	}
	return db_error(c->db, rc, "generation", err, errlen);
}

static enum prism_err
op_generation(struct store *s, int64_t *gen, char *err, size_t errlen)
{
	return meta_generation(s, false, gen, err, errlen);
}

static enum prism_err
op_bump_generation(struct store *s, int64_t *gen, char *err, size_t errlen)
{
	return meta_generation(s, true, gen, err, errlen);
}

static void
op_close(struct store *s)
{
	struct sqlite_store *ss = SS(s);
	struct conn *c = ss->conns;
	while (c) {
		struct conn *next = c->next;
		conn_free(c);
		c = next;
	}
	pthread_key_delete(ss->key);
	pthread_mutex_destroy(&ss->lock);
	free(ss->path);
	free(ss);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = op_close,
	.release = op_release,
	.ping = op_ping,
	.migrate = op_migrate,
	.get = op_get,
	.find = op_find,
	.count = op_count,
	.insert = op_insert,
	.insert_many = op_insert_many,
	.insert_texts = op_insert_texts,
	.update = op_update,
	.remove = op_remove,
	.upsert_inc = op_upsert_inc,
	.delete_before = op_delete_before,
	.generation = op_generation,
	.bump_generation = op_bump_generation,
};

enum prism_err
store_sqlite_open(const char *path, long timeout_ms, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "SQLite store path must be absolute");
		return PRISM_E_CONFIG;
	}
	/* Fail early with an operator's words: the directory must exist and be writable (WAL needs to create
	 * prism.db-wal and -shm beside the database), and an existing file must be writable. */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(err, errlen, "SQLite store %s: directory %s is not writable: %s", path, dir, strerror(errno));
		return PRISM_E_STORE;
	}
	if (access(path, F_OK) == 0 && access(path, R_OK | W_OK) != 0) {
		snprintf(err, errlen, "SQLite store %s is not writable: %s", path, strerror(errno));
		return PRISM_E_STORE;
	}
	struct sqlite_store *ss = xcalloc(1, sizeof *ss);
	ss->base.ops = &sqlite_ops;
	ss->path = xstrdup(path);
	ss->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	pthread_mutex_init(&ss->lock, NULL);
	pthread_key_create(&ss->key, conn_release);
	struct conn *c;
	enum prism_err e = conn_open(ss, &c, err, errlen);
	if (!e) {
		/* Reading the header here turns a corrupt file into an error at start, not at the first request. */
		char why[256];
		e = exec_sql(c, "PRAGMA journal_mode=WAL", why, sizeof why);
		if (!e) {
			sqlite3_stmt *st = NULL;
			int rc = sqlite3_prepare_v2(c->db, "PRAGMA quick_check(1)", -1, &st, NULL);
			const char *res = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW
						  ? (const char *)sqlite3_column_text(st, 0) : sqlite3_errmsg(c->db);
			if (!res || strcmp(res, "ok") != 0) {
				snprintf(why, sizeof why, "integrity check failed: %s", res ? res : "?");
				e = PRISM_E_STORE;
			}
			sqlite3_finalize(st);
		}
		if (e)
			snprintf(err, errlen, "SQLite store %s is unusable: %s", path, why);
	}
	if (e) {
		op_close(&ss->base);
		return e == PRISM_E_CONFLICT ? PRISM_E_STORE : e;
	}
	*out = &ss->base;
	return PRISM_OK;
}
