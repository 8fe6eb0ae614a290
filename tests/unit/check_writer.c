/* check_writer.c -- the analytics writer against a SQLite store in /tmp: batches from many threads, a store
 * that goes away (and one that fails between two writes of a batch), the spool and its replay in order,
 * spools left by dead processes (a torn last line, duplicates, a saved checkpoint), a full spool, the shm
 * gauges, and analytics_stop.
 *
 * The store is wrapped in a "flaky" store that can be switched off (every operation fails with
 * PRISM_E_STORE, as when MongoDB is unreachable) or told to fail the n-th call of one operation and go down
 * from there, so every point between the writes of a record is exercised.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "analytics/writer.h"
#include "check_main.h"
#include "shm/metrics.h"
#include "shm/segment.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"

#define T0_MS 1772359200000LL            /* 2026-03-01T10:00:00Z */
#define TENANT_A "65a1b2c3d4e5f60718293a01"
#define TENANT_B "65a1b2c3d4e5f60718293a02"

static char base[64];                  /* the run's scratch directory, removed by the runner */
static pid_t runner;
static char dir[256], dbpath[320], spooldir[320];
static char err[512];
static struct store *real;

/* --- a store that fails on demand ---------------------------------------------------------------------- */

enum op { OP_INSERT_MANY, OP_INSERT, OP_GET, OP_FIND, OP_UPDATE, OP_UPSERT, OP_COUNT_ };

struct flaky {
	struct store base;
	atomic_int down;
	atomic_int fail_op;              /* -1: none */
	atomic_int fail_in;              /* the fail_op call that fails (1 = the next one); then down = 1 */
	atomic_int ghost;                /* that call is carried out before it fails (a lost reply) */
	atomic_int slow_ms;              /* the next insert_many sleeps this long first */
	atomic_int calls[OP_COUNT_];
};
static struct flaky fl;

/* 0: go on; 1: fail now; 2: carry out the call, then fail (its reply was lost). */
static int
fails(enum op op, char *e, size_t elen)
{
	int ghost = 0;
	atomic_fetch_add(&fl.calls[op], 1);
	if (atomic_load(&fl.fail_op) == (int)op && atomic_fetch_sub(&fl.fail_in, 1) == 1) {
		atomic_store(&fl.fail_op, -1);
		if (atomic_load(&fl.down))
			return 1;
		ghost = atomic_exchange(&fl.ghost, 0);
		atomic_store(&fl.down, 1);
		if (ghost) {
			snprintf(e, elen, "simulated outage: reply lost");
			return 2;
		}
	}
	if (atomic_load(&fl.down)) {
		snprintf(e, elen, "simulated outage");
		return 1;
	}
	return 0;
}

/* An operation through the fault switch: the real one unless it fails (after it, for a lost reply). */
#define FLAKY(op, call)                                                                                  \
	do {                                                                                             \
		char why_[128];                                                                          \
		int f_ = fails(op, why_, sizeof why_);                                                   \
		if (f_ == 1) {                                                                           \
			snprintf(e, l, "%s", why_);                                                      \
			return PRISM_E_STORE;                                                            \
		}                                                                                        \
		enum prism_err r_ = (call);                                                              \
		if (f_ == 2) {                                                                           \
			snprintf(e, l, "%s", why_);                                                      \
			return PRISM_E_STORE;                                                            \
		}                                                                                        \
		return r_;                                                                               \
	} while (0)

static void f_close(struct store *s) { (void)s; }
static enum prism_err f_ping(struct store *s, char *e, size_t l) { (void)s; return real->ops->ping(real, e, l); }
static enum prism_err
f_migrate(struct store *s, int *a, char *e, size_t l)
{
	(void)s;
	return real->ops->migrate(real, a, e, l);
}
static enum prism_err
f_get(struct store *s, enum store_coll c, const char *id, json_t **doc, char *e, size_t l)
{
	(void)s;
	*doc = NULL;
	FLAKY(OP_GET, real->ops->get(real, c, id, doc, e, l));
}
static enum prism_err
f_find(struct store *s, enum store_coll c, const struct store_query *q, json_t **d, char **n, char *e, size_t l)
{
	(void)s;
	*d = NULL;
	*n = NULL;
	FLAKY(OP_FIND, real->ops->find(real, c, q, d, n, e, l));
}
static enum prism_err
f_count(struct store *s, enum store_coll c, const struct store_query *q, long *n, char *e, size_t l)
{
	(void)s;
	return real->ops->count(real, c, q, n, e, l);
}
static enum prism_err
f_insert(struct store *s, enum store_coll c, json_t *doc, char *id, char *e, size_t l)
{
	(void)s;
	FLAKY(OP_INSERT, real->ops->insert(real, c, doc, id, e, l));
}
static enum prism_err
f_insert_many(struct store *s, enum store_coll c, json_t *docs, char *e, size_t l)
{
	(void)s;
	int slow = atomic_exchange(&fl.slow_ms, 0);
	if (slow)
		usleep((useconds_t)slow * 1000);
	FLAKY(OP_INSERT_MANY, real->ops->insert_many(real, c, docs, e, l));
}
static enum prism_err
f_update(struct store *s, enum store_coll c, const char *id, json_t *doc, long v, long *nv, char *e, size_t l)
{
	(void)s;
	FLAKY(OP_UPDATE, real->ops->update(real, c, id, doc, v, nv, e, l));
}
static enum prism_err
f_remove(struct store *s, enum store_coll c, const char *id, char *e, size_t l)
{
	(void)s;
	return real->ops->remove(real, c, id, e, l);
}
static enum prism_err
f_upsert_inc(struct store *s, enum store_coll c, json_t *key, json_t *inc, json_t *soi, char *e, size_t l)
{
	(void)s;
	FLAKY(OP_UPSERT, real->ops->upsert_inc(real, c, key, inc, soi, e, l));
}
static enum prism_err
f_delete_before(struct store *s, enum store_coll c, const char *f, const char *b, long *d, char *e, size_t l)
{
	(void)s;
	return real->ops->delete_before(real, c, f, b, d, e, l);
}
static enum prism_err
f_generation(struct store *s, int64_t *g, char *e, size_t l)
{
	(void)s;
	return real->ops->generation(real, g, e, l);
}
static enum prism_err
f_bump(struct store *s, int64_t *g, char *e, size_t l)
{
	(void)s;
	return real->ops->bump_generation(real, g, e, l);
}

static const struct store_ops flaky_ops = {
	.name = "flaky", .close = f_close, .ping = f_ping, .migrate = f_migrate, .get = f_get, .find = f_find,
	.count = f_count, .insert = f_insert, .insert_many = f_insert_many, .update = f_update, .remove = f_remove,
	.upsert_inc = f_upsert_inc, .delete_before = f_delete_before, .generation = f_generation,
	.bump_generation = f_bump,
};

/* --- fixture ------------------------------------------------------------------------------------------- */

/* In the runner, around all tests: a test that fails ends its process before its own teardown, so the
 * runner removes what the tests left (scratch files, the metrics test's segment). */
static void
runner_setup(void)
{
	runner = getpid();
	snprintf(base, sizeof base, "/tmp/check_writer.XXXXXX");
	if (!mkdtemp(base))
		base[0] = '\0';
}

static void
segment_name(char *out, size_t outlen)
{
	snprintf(out, outlen, "/prism-test-writer-%d", (int)runner);
}

static void
runner_teardown(void)
{
	char cmd[128], name[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (base[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
	segment_name(name, sizeof name);
	shm_segment_unlink(name, NULL, 0);
}

static void
setup(void)
{
	ck_assert_msg(base[0], "no scratch directory");
	snprintf(dir, sizeof dir, "%s/t.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(dbpath, sizeof dbpath, "%s/prism.db", dir);
	snprintf(spooldir, sizeof spooldir, "%s/spool", dir);
	ck_assert_msg(store_sqlite_open(dbpath, 5000, &real, err, sizeof err) == PRISM_OK, "open: %s", err);
	int applied = 0;
	ck_assert_msg(real->ops->migrate(real, &applied, err, sizeof err) == PRISM_OK, "migrate: %s", err);
	memset(&fl, 0, sizeof fl);
	fl.base.ops = &flaky_ops;
	atomic_store(&fl.fail_op, -1);
	store_set_current(&fl.base);
}

static void
teardown(void)
{
	analytics_stop();
	store_set_current(NULL);
	store_close(real);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void
start(void)
{
	ck_assert_msg(analytics_start(spooldir, err, sizeof err) == PRISM_OK, "start: %s", err);
}

/* --- records and what they should add up to ------------------------------------------------------------ */

struct want {
	long logs, requests, in, out, errors, cat_requests, user_requests, user_tokens;
	double cost, cat_cost;
};

static json_t *
mkrec(int i, const char *tenant, int64_t ts_ms, struct want *w)
{
	char id[25], ts[32], model[32];
	store_new_id(id);
	clock_iso8601(ts_ms, ts, sizeof ts);
	snprintf(model, sizeof model, "model-%d", i % 3);
	long in = 100 + i % 17, out = 10 + i % 5;
	double cost = 0.000125 * (1 + i % 7);
	bool error = i % 11 == 0;
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:b}", "_id", id, "tenantId", tenant,
			      "timestamp", ts, "routedModel", model, "status", error ? "error" : "success", "inputTokens",
			      (json_int_t)in, "outputTokens", (json_int_t)out, "actualCostUsd", cost, "durationMs",
			      (json_int_t)(50 + i % 13), "isAutoRouted", i % 2 == 0);
	bool cat = i % 4 == 0 && !error;
	if (i % 4 == 0) {
		json_object_set_new(r, "category", json_string(i % 8 ? "coding" : "chat"));
		if (i % 8)
			json_object_set_new(r, "costTier", json_string("medium"));
	}
	if (i % 5 == 0)
		json_object_set_new(r, "userName", json_string(i % 10 ? "alice" : "bob"));
	if (w) {
		w->logs++;
		w->requests++;
		w->in += in;
		w->out += out;
		w->cost += cost;
		w->errors += error;
		if (cat) {
			w->cat_requests++;
			w->cat_cost += cost;
		}
		if (i % 5 == 0) {
			w->user_requests++;
			w->user_tokens += in + out;
		}
	}
	return r;
}

/* Queues rec (consumed) as the gateway does: its text without _id, and its keys given beside it. */
static void
submit_text(json_t *rec)
{
	char id[25];
	int64_t ms = 0;
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "_id")));
	ck_assert_int_eq(clock_parse_iso8601(json_string_value(json_object_get(rec, "timestamp")), &ms), 0);
	json_object_del(rec, "_id");
	double cost = json_number_value(json_object_get(rec, "actualCostUsd"));
	const char *cat = json_string_value(json_object_get(rec, "category"));
	struct analytics_keys k = {
		.id = id,
		.tenant = json_string_value(json_object_get(rec, "tenantId")),
		.time_ms = ms,
		.error = strcmp(json_string_value(json_object_get(rec, "status")), "error") == 0,
		.auto_routed = json_is_true(json_object_get(rec, "isAutoRouted")),
		.actual = cost,
		.baseline = cost,
		.input = json_integer_value(json_object_get(rec, "inputTokens")),
		.output = json_integer_value(json_object_get(rec, "outputTokens")),
		.dur = json_integer_value(json_object_get(rec, "durationMs")),
		.model = json_string_value(json_object_get(rec, "routedModel")),
		.category = cat,
		.tier = json_string_value(json_object_get(rec, "costTier")),
		.user = json_string_value(json_object_get(rec, "userName")),
	};
	char *text = json_dumps(rec, JSON_COMPACT);
	analytics_submit_text(&k, text, strlen(text));
	free(text);
	json_decref(rec);
}

static long
count(enum store_coll c)
{
	long n = -1;
	struct store_query q = { 0 };
	ck_assert_msg(real->ops->count(real, c, &q, &n, err, sizeof err) == PRISM_OK, "count: %s", err);
	return n;
}

/* Everything of a collection (at most STORE_MAX_LIMIT documents in these tests). */
static json_t *
all(enum store_coll c)
{
	json_t *docs = NULL;
	char *next = NULL;
	struct store_query q = { .limit = STORE_MAX_LIMIT };
	ck_assert_msg(real->ops->find(real, c, &q, &docs, &next, err, sizeof err) == PRISM_OK, "find: %s", err);
	ck_assert_ptr_null(next);
	return docs;
}

static double
sum(json_t *docs, const char *field)
{
	double s = 0;
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d)
		s += json_number_value(json_object_get(d, field));
	return s;
}

/* The store holds exactly what w says: one requestlog per record, aggregates counted once. */
static void
check_store(const struct want *w)
{
	ck_assert_int_eq(count(COLL_REQUESTLOGS), w->logs);
	json_t *d = all(COLL_DAILYSTATS);
	ck_assert_int_eq((long)sum(d, "requests"), w->requests);
	ck_assert_int_eq((long)sum(d, "inputTokens"), w->in);
	ck_assert_int_eq((long)sum(d, "outputTokens"), w->out);
	ck_assert_int_eq((long)sum(d, "errorCount"), w->errors);
	ck_assert_int_eq((long)sum(d, "durationMsCount"), w->requests);
	ck_assert_msg(fabs(sum(d, "actualCostUsd") - w->cost) < 1e-9, "cost %.12f != %.12f", sum(d, "actualCostUsd"),
		      w->cost);
	json_decref(d);
	d = all(COLL_DAILYCATEGORYSTATS);
	ck_assert_int_eq((long)sum(d, "requests"), w->cat_requests);
	ck_assert_msg(fabs(sum(d, "actualCostUsd") - w->cat_cost) < 1e-9, "category cost");
	json_decref(d);
	d = all(COLL_DAILYUSERSTATS);
	ck_assert_int_eq((long)sum(d, "requests"), w->user_requests);
	ck_assert_int_eq((long)sum(d, "tokens"), w->user_tokens);
	json_decref(d);
}

/* The requestlogs in the order they were inserted (SQLite's rowid) have non-decreasing timestamps. */
static void
check_insert_order(void)
{
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT json_extract(doc,'$.timestamp') FROM requestlogs ORDER BY rowid",
					    -1, &st, NULL), SQLITE_OK);
	char prev[64] = "";
	long n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *ts = (const char *)sqlite3_column_text(st, 0);
		ck_assert_msg(strcmp(prev, ts) <= 0, "row %ld: %s inserted after %s", n, ts, prev);
		snprintf(prev, sizeof prev, "%s", ts);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static bool
wait_for_spooled(long n, long timeout_ms)
{
	int64_t end = clock_monotonic_ms() + timeout_ms;
	struct analytics_stats s;
	do {
		analytics_stats(&s);
		if (s.spooled >= n && s.queued == 0)
			return true;
		usleep(10000);
	} while (clock_monotonic_ms() < end);
	return false;
}

/* Spool files (analytics-*.jsonl) in the spool directory and their lines. */
static int
spool_files(long *lines)
{
	int files = 0;
	*lines = 0;
	DIR *d = opendir(spooldir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, "analytics-", 10) != 0 || n < 6 || strcmp(e->d_name + n - 6, ".jsonl") != 0)
			continue;
		files++;
		char p[700];
		snprintf(p, sizeof p, "%s/%s", spooldir, e->d_name);
		FILE *f = fopen(p, "r");
		int c;
		while (f && (c = fgetc(f)) != EOF)
			*lines += c == '\n';
		if (f)
			fclose(f);
	}
	closedir(d);
	return files;
}

/* An orphaned spool (no process holds it) with the given text. */
static void
write_orphan(const char *name, const char *text)
{
	char p[700];
	mkdir(spooldir, 0750);
	snprintf(p, sizeof p, "%s/%s", spooldir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static char *
line_of(json_t *rec, int state)
{
	json_t *l = json_pack("{s:i, s:O}", "state", state, "doc", rec);
	char *t = json_dumps(l, JSON_COMPACT);
	json_decref(l);
	return t;
}

/* --- the tests ------------------------------------------------------------------------------------------ */

#define THREADS 8
#define PER_THREAD 250

struct worker {
	int first;
	struct want w;
};

static void *
submitter(void *arg)
{
	struct worker *k = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		int n = k->first + i;
		analytics_submit(mkrec(n, n % 2 ? TENANT_A : TENANT_B, T0_MS + n, &k->w));
	}
	return NULL;
}

START_TEST(test_threads)
{
	start();
	pthread_t t[THREADS];
	struct worker k[THREADS];
	memset(k, 0, sizeof k);
	for (int i = 0; i < THREADS; i++) {
		k[i].first = i * PER_THREAD;
		pthread_create(&t[i], NULL, submitter, &k[i]);
	}
	struct want w = { 0 };
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		w.logs += k[i].w.logs;
		w.requests += k[i].w.requests;
		w.in += k[i].w.in;
		w.out += k[i].w.out;
		w.errors += k[i].w.errors;
		w.cost += k[i].w.cost;
		w.cat_requests += k[i].w.cat_requests;
		w.cat_cost += k[i].w.cat_cost;
		w.user_requests += k[i].w.user_requests;
		w.user_tokens += k[i].w.user_tokens;
	}
	ck_assert(analytics_drain(20000));
	check_store(&w);
	struct analytics_stats s;
	analytics_stats(&s);
	ck_assert_int_eq(s.written, THREADS * PER_THREAD);
	ck_assert_int_eq(s.spooled, 0);
	ck_assert_int_eq(s.dropped, 0);
	/* Batched: far fewer inserts than records, and the aggregates summed per key. */
	ck_assert_int_lt(atomic_load(&fl.calls[OP_INSERT_MANY]), THREADS * PER_THREAD / 10);
	ck_assert_int_lt(atomic_load(&fl.calls[OP_UPSERT]), THREADS * PER_THREAD);
	/* Two tenants x three models on one day. */
	ck_assert_int_eq(count(COLL_DAILYSTATS), 6);
	/* Written live: no replay bookkeeping in the documents. */
	json_t *docs = all(COLL_REQUESTLOGS);
	ck_assert_ptr_null(json_object_get(json_array_get(docs, 0), "aggregated"));
	json_decref(docs);
}
END_TEST

/* One record's aggregates in detail: the fields and keys of control-plane §5.4/5.5. */
START_TEST(test_aggregate_fields)
{
	start();
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:b, s:i, s:s, s:s}", "_id",
			      "65a1b2c3d4e5f60718290001", "tenantId", TENANT_A, "timestamp", "2026-03-01T23:59:59.999Z",
			      "routedModel", "gpt-x", "status", "success", "inputTokens", 1000, "outputTokens", 200,
			      "actualCostUsd", 0.5, "baselineCostUsd", 0.75, "savedUsd", 0.25, "routingCostUsd", 0.01,
			      "isAutoRouted", 1, "durationMs", 1234, "category", "coding", "userName", "carol");
	analytics_submit(r);
	ck_assert(analytics_drain(10000));
	json_t *d = all(COLL_DAILYSTATS);
	ck_assert_int_eq(json_array_size(d), 1);
	json_t *s = json_array_get(d, 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "date")), "2026-03-01");
	ck_assert_str_eq(json_string_value(json_object_get(s, "tenantId")), TENANT_A);
	ck_assert_str_eq(json_string_value(json_object_get(s, "routedModel")), "gpt-x");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "requests")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "inputTokens")), 1000);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "outputTokens")), 200);
	ck_assert(fabs(json_number_value(json_object_get(s, "actualCostUsd")) - 0.5) < 1e-12);
	ck_assert(fabs(json_number_value(json_object_get(s, "baselineCostUsd")) - 0.75) < 1e-12);
	ck_assert(fabs(json_number_value(json_object_get(s, "savedUsd")) - 0.25) < 1e-12);
	ck_assert(fabs(json_number_value(json_object_get(s, "routingCostUsd")) - 0.01) < 1e-12);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "autoRoutedCount")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "errorCount")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "durationMsTotal")), 1234);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "durationMsCount")), 1);
	json_decref(d);
	d = all(COLL_DAILYCATEGORYSTATS);
	ck_assert_int_eq(json_array_size(d), 1);
	s = json_array_get(d, 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "category")), "coding");
	ck_assert(json_is_null(json_object_get(s, "costTier")));
	ck_assert_int_eq(json_integer_value(json_object_get(s, "requests")), 1);
	json_decref(d);
	d = all(COLL_DAILYUSERSTATS);
	s = json_array_get(d, 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "userName")), "carol");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "tokens")), 1200);
	ck_assert(fabs(json_number_value(json_object_get(s, "cost")) - 0.5) < 1e-12);
	json_decref(d);
	/* An error: counted in requests and errorCount, not in the category stats. */
	analytics_submit(json_pack("{s:s, s:s, s:s, s:s, s:s}", "tenantId", TENANT_A, "timestamp",
				   "2026-03-01T10:00:00.000Z", "routedModel", "gpt-x", "status", "error", "category",
				   "coding"));
	ck_assert(analytics_drain(10000));
	d = all(COLL_DAILYSTATS);
	s = json_array_get(d, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "requests")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "errorCount")), 1);
	json_decref(d);
	ck_assert_int_eq((long)sum(d = all(COLL_DAILYCATEGORYSTATS), "requests"), 1);
	json_decref(d);
	/* Without a valid tenant nothing can be aggregated: dropped and counted. */
	analytics_submit(json_pack("{s:s}", "tenantId", "nope"));
	struct analytics_stats st;
	analytics_stats(&st);
	ck_assert_int_eq(st.dropped, 1);
}
END_TEST

/* Records given as text: written as they are with their _id, aggregated by their keys; a text that is
 * not one line, or keys without a valid tenant, are dropped and counted. */
START_TEST(test_submit_text)
{
	start();
	struct want w = { 0 };
	for (int i = 0; i < 300; i++)
		submit_text(mkrec(i, i % 2 ? TENANT_A : TENANT_B, T0_MS + i, &w));
	ck_assert(analytics_drain(10000));
	check_store(&w);
	json_t *docs = all(COLL_REQUESTLOGS);   /* the texts as they were, with their _id */
	ck_assert_int_eq((long)sum(docs, "inputTokens"), w.in);
	for (size_t i = 0; i < json_array_size(docs); i++)
		ck_assert(store_id_valid(json_string_value(json_object_get(json_array_get(docs, i), "_id"))));
	json_decref(docs);
	struct analytics_keys k = { .id = "65a1b2c3d4e5f60718290002", .tenant = TENANT_A, .time_ms = T0_MS };
	const char *two_lines = "{\"tenantId\":\"" TENANT_A "\",\n\"x\":1}";
	analytics_submit_text(&k, two_lines, strlen(two_lines));
	analytics_submit_text(&k, "{\"x\":1", 6);
	k.tenant = "nope";
	analytics_submit_text(&k, "{}", 2);
	ck_assert(analytics_drain(10000));
	struct analytics_stats st;
	analytics_stats(&st);
	ck_assert_int_eq(st.dropped, 3);
	ck_assert_int_eq(st.written, 300);
}
END_TEST

/* The store goes away: records go to the spool; when it is back they arrive in order, once. */
START_TEST(test_outage)
{
	start();
	struct want w = { 0 };
	for (int i = 0; i < 150; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, &w));
	ck_assert(analytics_drain(10000));
	atomic_store(&fl.down, 1);
	for (int i = 150; i < 650; i++) {
		/* a third of them as the gateway sends them: as text with their keys */
		if (i % 3)
			analytics_submit(mkrec(i, TENANT_A, T0_MS + i, &w));
		else
			submit_text(mkrec(i, TENANT_A, T0_MS + i, &w));
		if (i % 100 == 0)
			usleep(50000);
	}
	ck_assert(wait_for_spooled(500, 10000));
	long lines;
	ck_assert_int_eq(spool_files(&lines), 1);
	ck_assert_int_eq(lines, 500);
	ck_assert(!analytics_drain(300));
	struct analytics_stats s;
	analytics_stats(&s);
	ck_assert(s.store_down);
	ck_assert_int_eq(count(COLL_REQUESTLOGS), 150);
	/* Newer records while the spool is being replayed come after it. */
	atomic_store(&fl.down, 0);
	for (int i = 650; i < 700; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, &w));
	ck_assert(analytics_drain(20000));
	check_store(&w);
	check_insert_order();
	analytics_stats(&s);
	ck_assert_int_ge(s.replayed, 500);       /* and the 50 newer ones if they queued up behind the spool */
	ck_assert_int_eq(s.written, 700);
	ck_assert_int_eq(s.spooled, 0);
	ck_assert(!s.store_down);
	analytics_stop();
	ck_assert_int_eq(spool_files(&lines), 0);
}
END_TEST

/* No store at all (not connected yet): the same. */
START_TEST(test_no_store)
{
	store_set_current(NULL);
	start();
	struct want w = { 0 };
	for (int i = 0; i < 60; i++)
		analytics_submit(mkrec(i, TENANT_B, T0_MS + i, &w));
	ck_assert(wait_for_spooled(60, 10000));
	store_set_current(&fl.base);
	ck_assert(analytics_drain(20000));
	check_store(&w);
	check_insert_order();
}
END_TEST

/* The store fails between two writes of a batch -- live and again during the replay, and a write whose
 * reply is lost after the store carried it out: every record is written once and every aggregate counted
 * once. */
static const struct {
	enum op live_op;
	int live_n, live_ghost;
	enum op replay_op;
	int replay_n, replay_ghost;
} faults[] = {
	{ OP_INSERT_MANY, 1, 0, OP_INSERT_MANY, 1, 0 },
	{ OP_UPSERT, 1, 0, OP_UPSERT, 2, 0 },
	{ OP_UPSERT, 3, 0, OP_FIND, 1, 0 },
	{ OP_UPSERT, 6, 0, OP_INSERT_MANY, 1, 0 },
	{ OP_UPSERT, 4, 0, OP_UPSERT, 12, 0 },
	{ OP_INSERT_MANY, 2, 0, OP_UPSERT, 5, 0 },
	{ OP_INSERT_MANY, 1, 1, OP_FIND, 1, 0 },        /* the insert happened: the replay finds it */
	{ OP_UPSERT, 2, 0, OP_INSERT_MANY, 1, 1 },      /* the same, during the replay */
	{ OP_INSERT_MANY, 2, 1, OP_INSERT_MANY, 1, 1 },
};

START_TEST(test_fault_points)
{
	start();
	struct want w = { 0 };
	atomic_store(&fl.fail_in, faults[_i].live_n);
	atomic_store(&fl.ghost, faults[_i].live_ghost);
	atomic_store(&fl.fail_op, (int)faults[_i].live_op);
	for (int i = 0; i < 450; i++)
		analytics_submit(mkrec(i, i % 3 ? TENANT_A : TENANT_B, T0_MS + i * 1000L, &w));
	for (int t = 0; t < 500 && !atomic_load(&fl.down); t++)
		usleep(10000);
	ck_assert_msg(atomic_load(&fl.down), "the fault was reached");
	ck_assert(wait_for_spooled(1, 10000));
	/* Back, but failing again in the middle of the replay. */
	atomic_store(&fl.fail_in, faults[_i].replay_n);
	atomic_store(&fl.ghost, faults[_i].replay_ghost);
	atomic_store(&fl.fail_op, (int)faults[_i].replay_op);
	atomic_store(&fl.down, 0);
	for (int t = 0; t < 1000 && atomic_load(&fl.fail_op) >= 0; t++)
		usleep(10000);
	ck_assert_msg(atomic_load(&fl.fail_op) < 0, "the replay fault was reached");
	usleep(100000);
	atomic_store(&fl.down, 0);
	ck_assert(analytics_drain(30000));
	check_store(&w);
	check_insert_order();
	struct analytics_stats s;
	analytics_stats(&s);
	ck_assert_int_eq(s.dropped, 0);
}
END_TEST

/* A spool left by a process that died while writing it: the torn last line and a garbled one are
 * skipped, every other line is replayed, the file is removed. */
START_TEST(test_orphan_torn)
{
	struct want w = { 0 };
	char text[65536] = "";
	for (int i = 0; i < 10; i++) {
		json_t *r = mkrec(i, TENANT_A, T0_MS + i, &w);
		char *l = line_of(r, 0);
		strcat(text, l);
		strcat(text, "\n");
		if (i == 4)
			strcat(text, "{\"state\":0,\"doc\":{\"_id\":\"garbled\n");
		free(l);
		json_decref(r);
	}
	json_t *r = mkrec(10, TENANT_A, T0_MS + 10, NULL);
	char *l = line_of(r, 0);
	size_t half = strlen(l) / 2, at = strlen(text);
	memcpy(text + at, l, half);             /* the crash: half a line, no newline */
	text[at + half] = '\0';
	free(l);
	json_decref(r);
	write_orphan("analytics-999999999.jsonl", text);
	start();
	ck_assert(analytics_drain(20000));
	check_store(&w);
	check_insert_order();
	struct analytics_stats s;
	analytics_stats(&s);
	ck_assert_int_eq(s.dropped, 2);
	ck_assert_int_eq(s.replayed, 10);
	long lines;
	ck_assert_int_eq(spool_files(&lines), 0);
	/* The documents are the records as submitted: no bookkeeping fields. */
	json_t *docs = all(COLL_REQUESTLOGS);
	size_t i;
	json_t *doc;
	json_array_foreach(docs, i, doc)
		ck_assert_ptr_null(json_object_get(doc, "aggregated"));
	json_decref(docs);
}
END_TEST

/* What the writer adds to dailystats for rec, applied by hand (the part of a record written before). */
static void
apply_daily(json_t *rec)
{
	json_t *key = json_pack("{s:s, s:s, s:s}", "date", "2026-03-01", "tenantId",
				json_string_value(json_object_get(rec, "tenantId")), "routedModel",
				json_string_value(json_object_get(rec, "routedModel")));
	json_t *inc = json_pack("{s:i, s:O, s:O, s:O, s:i, s:i, s:O}", "requests", 1, "inputTokens",
				json_object_get(rec, "inputTokens"), "outputTokens", json_object_get(rec, "outputTokens"),
				"actualCostUsd", json_object_get(rec, "actualCostUsd"), "errorCount",
				strcmp(json_string_value(json_object_get(rec, "status")), "error") == 0, "durationMsCount", 1,
				"durationMsTotal", json_object_get(rec, "durationMs"));
	ck_assert_msg(real->ops->upsert_inc(real, COLL_DAILYSTATS, key, inc, NULL, err, sizeof err) == PRISM_OK, "%s",
		      err);
	json_decref(key);
	json_decref(inc);
}

/* Duplicates: a record three times in a spool (twice in one chunk, once in the next), one whose
 * requestlog is in the store already (done: skipped, its aggregates not counted again), and one spooled
 * after its daily aggregate was applied (only the rest is written). */
START_TEST(test_orphan_duplicates)
{
	struct want w = { 0 };
	json_t *a = mkrec(1, TENANT_A, T0_MS + 1, &w);
	json_t *b = mkrec(2, TENANT_A, T0_MS + 2, NULL);
	json_t *d = mkrec(5, TENANT_A, T0_MS + 5, &w);               /* userName set: daily + user */
	w.logs++;
	ck_assert(real->ops->insert(real, COLL_REQUESTLOGS, b, NULL, err, sizeof err) == PRISM_OK);
	apply_daily(d);
	static char text[1 << 20];
	text[0] = '\0';
	for (int i = 0; i < 250; i++) {
		json_t *r = i == 0 || i == 3 || i == 249 ? json_incref(a) : i == 1 ? json_incref(b) : i == 2 ? json_incref(d)
			  : mkrec(100 + i, TENANT_B, T0_MS + 100 + i, &w);
		char *l = line_of(r, r == d ? 2 : 0);
		strcat(text, l);
		strcat(text, "\n");
		free(l);
		json_decref(r);
	}
	write_orphan("analytics-999999998.jsonl", text);
	start();
	ck_assert(analytics_drain(20000));
	check_store(&w);
	struct analytics_stats s;
	analytics_stats(&s);
	ck_assert_int_eq(s.duplicates, 3);
	ck_assert_int_eq(s.dropped, 0);
	json_decref(a);
	json_decref(b);
	json_decref(d);
}
END_TEST

/* A replay that stopped in the middle left a checkpoint: it resumes there, with the saved progress. */
START_TEST(test_orphan_checkpoint)
{
	struct want w = { 0 };
	json_t *r[5];
	char text[65536] = "";
	size_t off2 = 0;
	for (int i = 0; i < 5; i++) {
		r[i] = mkrec(i + 1, TENANT_B, T0_MS + i, i >= 2 ? &w : NULL);
		char *l = line_of(r[i], 0);
		strcat(text, l);
		strcat(text, "\n");
		free(l);
		if (i == 1)
			off2 = strlen(text);
	}
	/* Record 3's daily aggregate was applied by that replay; its requestlog is still due. */
	apply_daily(r[2]);
	write_orphan("analytics-999999997.jsonl", text);
	char pos[256];
	snprintf(pos, sizeof pos, "{\"offset\":%zu,\"states\":{\"%s\":2}}", off2,
		 json_string_value(json_object_get(r[2], "_id")));
	write_orphan("analytics-999999997.jsonl.pos", pos);
	start();
	ck_assert(analytics_drain(20000));
	check_store(&w);               /* records 1 and 2 were complete before: not written again */
	ck_assert_int_eq(atomic_load(&fl.calls[OP_INSERT]), 0);   /* no duplicate met */
	for (int i = 0; i < 5; i++)
		json_decref(r[i]);
	long lines;
	ck_assert_int_eq(spool_files(&lines), 0);
	char p[400];
	snprintf(p, sizeof p, "%s/analytics-999999997.jsonl.pos", spooldir);
	ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

/* A spool that another live process holds is left alone. */
START_TEST(test_live_spool_not_adopted)
{
	struct want w = { 0 };
	json_t *r = mkrec(1, TENANT_A, T0_MS, &w);
	char *l = line_of(r, 0);
	char text[8192];
	snprintf(text, sizeof text, "%s\n", l);
	free(l);
	json_decref(r);
	write_orphan("analytics-1.jsonl", text);
	char p[400];
	snprintf(p, sizeof p, "%s/analytics-1.jsonl", spooldir);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	start();
	ck_assert(analytics_drain(2000));
	ck_assert_int_eq(count(COLL_REQUESTLOGS), 0);
	close(fd);                      /* its process is gone */
	analytics_stop();
	start();
	ck_assert(analytics_drain(20000));
	check_store(&w);
}
END_TEST

/* analytics_stop writes what is queued: to the store, or to the spool while the store is down (and that
 * spool is replayed by the next writer). */
START_TEST(test_stop_flushes)
{
	start();
	struct want w = { 0 };
	for (int i = 0; i < 120; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, &w));
	analytics_stop();
	check_store(&w);
	start();
	ck_assert(analytics_drain(5000));
	atomic_store(&fl.down, 1);
	analytics_submit(mkrec(500, TENANT_A, T0_MS + 500, &w));
	ck_assert(wait_for_spooled(1, 10000));          /* the writer knows the store is down */
	for (int i = 501; i < 600; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, &w));
	analytics_stop();
	long lines;
	ck_assert_int_eq(spool_files(&lines), 1);
	ck_assert_int_eq(lines, 100);
	atomic_store(&fl.down, 0);
	start();
	ck_assert(analytics_drain(20000));
	check_store(&w);
	check_insert_order();
}
END_TEST

/* More than ANALYTICS_QUEUE_MAX records while the writer is stuck in a slow store call: the overflow goes
 * to the spool, in order, and nothing is lost. */
START_TEST(test_overflow)
{
	start();
	struct want w = { 0 };
	atomic_store(&fl.slow_ms, 1500);
	analytics_submit(mkrec(0, TENANT_A, T0_MS, &w));
	usleep(400000);                                 /* the writer is now inside insert_many */
	for (int i = 1; i <= ANALYTICS_QUEUE_MAX + 500; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, &w));
	struct analytics_stats s;
	analytics_stats(&s);
	ck_assert_int_le(s.queued, ANALYTICS_QUEUE_MAX);
	ck_assert_int_ge(s.spooled, ANALYTICS_QUEUE_MAX);
	ck_assert(analytics_drain(60000));
	check_store(&w);
	check_insert_order();
}
END_TEST

/* The spool is bounded: beyond ANALYTICS_SPOOL_MAX (here: taken by another live process's sparse file)
 * records are counted as dropped, nothing crashes, and later records are kept again. */
START_TEST(test_spool_full)
{
	mkdir(spooldir, 0750);
	char p[400];
	snprintf(p, sizeof p, "%s/analytics-2.jsonl", spooldir);
	int fd = open(p, O_RDWR | O_CREAT, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	ck_assert_int_eq(ftruncate(fd, ANALYTICS_SPOOL_MAX), 0);
	atomic_store(&fl.down, 1);
	start();
	usleep(200000);                                 /* the first scan counted it */
	for (int i = 0; i < 30; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, NULL));
	struct analytics_stats s;
	for (int t = 0; t < 300; t++) {
		analytics_stats(&s);
		if (s.dropped == 30)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(s.dropped, 30);
	ck_assert_int_eq(s.spooled, 0);
	unlink(p);
	close(fd);
	analytics_stop();
}
END_TEST

/* The shm gauges: prism_analytics_pending_records{where="spool"} follows the spool. */
START_TEST(test_metrics)
{
	char name[64];
	segment_name(name, sizeof name);
	shm_segment_unlink(name, NULL, 0);
	struct shm_segment *seg = NULL;
	ck_assert_msg(shm_segment_open(name, 0, &seg, err, sizeof err) == PRISM_OK, "%s", err);
	shm_segment_set_current(seg);
	int spool = metrics_label_id(seg, "where=\"spool\""), queue = metrics_label_id(seg, "where=\"queue\"");
	atomic_store(&fl.down, 1);
	start();
	for (int i = 0; i < 40; i++)
		analytics_submit(mkrec(i, TENANT_A, T0_MS + i, NULL));
	ck_assert(wait_for_spooled(40, 10000));
	ck_assert_int_eq(metrics_counter_value(seg, METRIC_ANALYTICS_PENDING, spool), 40);
	ck_assert_int_eq(metrics_counter_value(seg, METRIC_ANALYTICS_PENDING, queue), 0);
	atomic_store(&fl.down, 0);
	ck_assert(analytics_drain(20000));
	ck_assert_int_eq(metrics_counter_value(seg, METRIC_ANALYTICS_PENDING, spool), 0);
	struct buf out;
	buf_init(&out, 1 << 20);
	ck_assert_int_eq(metrics_render_prometheus(seg, &out), PRISM_OK);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "# TYPE prism_analytics_pending_records gauge"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "prism_analytics_pending_records{where=\"spool\"} 0"));
	buf_free(&out);
	analytics_stop();
	shm_segment_set_current(NULL);
	shm_segment_close(seg);
	shm_segment_unlink(name, NULL, 0);
}
END_TEST

static Suite *
writer_suite(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("writer");
	tcase_add_unchecked_fixture(tc, runner_setup, runner_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_aggregate_fields);
	tcase_add_test(tc, test_submit_text);
	tcase_add_test(tc, test_outage);
	tcase_add_test(tc, test_no_store);
	tcase_add_loop_test(tc, test_fault_points, 0, (int)(sizeof faults / sizeof faults[0]));
	tcase_add_test(tc, test_orphan_torn);
	tcase_add_test(tc, test_orphan_duplicates);
	tcase_add_test(tc, test_orphan_checkpoint);
	tcase_add_test(tc, test_live_spool_not_adopted);
	tcase_add_test(tc, test_stop_flushes);
	tcase_add_test(tc, test_overflow);
	tcase_add_test(tc, test_spool_full);
	tcase_add_test(tc, test_metrics);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(writer_suite)
