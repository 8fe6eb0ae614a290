/* check_store.c -- the store contract, run unchanged against every backend.
 *
 * STORE_BACKEND=sqlite (default: a fresh file per test) or STORE_BACKEND=mongodb with PRISM_TEST_MONGO_URI
 * (tests/integration/store_mongo.sh starts FerretDB and runs this program that way; each test uses its own
 * database).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check_main.h"
#include "store/store.h"
#include "util/rand.h"

static struct store *st;
static char dbpath[256];
static char err[512];
static bool is_mongo;
static char mongo_uri[512];

static void
open_store(void)
{
	const char *backend = getenv("STORE_BACKEND");
	is_mongo = backend && strcmp(backend, "mongodb") == 0;
	enum prism_err e;
	if (is_mongo) {
		const char *base = getenv("PRISM_TEST_MONGO_URI");
		ck_assert_msg(base != NULL, "PRISM_TEST_MONGO_URI not set");
		char db[32];
		rand_hex(db, 6);
		snprintf(mongo_uri, sizeof mongo_uri, "%s/contract_%s", base, db);
		e = store_mongo_open(mongo_uri, 5000, &st, err, sizeof err);
	} else {
		snprintf(dbpath, sizeof dbpath, "/tmp/check_store.XXXXXX");
		int fd = mkstemp(dbpath);
		close(fd);
		unlink(dbpath);
		e = store_sqlite_open(dbpath, 5000, &st, err, sizeof err);
	}
	ck_assert_msg(e == PRISM_OK, "open: %s", err);
	int applied = 0;
	ck_assert_msg(st->ops->migrate(st, &applied, err, sizeof err) == PRISM_OK, "migrate: %s", err);
}

static void
close_store(void)
{
	store_close(st);
	st = NULL;
	if (!is_mongo && dbpath[0]) {
		char p[300];
		unlink(dbpath);
		snprintf(p, sizeof p, "%s-wal", dbpath);
		unlink(p);
		snprintf(p, sizeof p, "%s-shm", dbpath);
		unlink(p);
	}
}

static json_t *
must_get(enum store_coll c, const char *id)
{
	json_t *doc = NULL;
	ck_assert_msg(st->ops->get(st, c, id, &doc, err, sizeof err) == PRISM_OK, "get %s: %s", id, err);
	return doc;
}

static void
must_insert(enum store_coll c, json_t *doc, char *id)
{
	ck_assert_msg(st->ops->insert(st, c, doc, id, err, sizeof err) == PRISM_OK, "insert: %s", err);
}

START_TEST(migrate_is_idempotent)
{
	int applied = -1;
	ck_assert_int_eq(st->ops->migrate(st, &applied, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(applied, 0);
	ck_assert_int_eq(st->ops->ping(st, err, sizeof err), PRISM_OK);
}
END_TEST

START_TEST(insert_get_roundtrip)
{
	char id[25];
	static char longtext[100001];
	memset(longtext, 'x', sizeof longtext - 1);
	json_t *doc = json_pack("{s:s, s:s, s:b, s:{s:s, s:i, s:f}, s:[s,s], s:s, s:s}", "slug", "team-a", "name",
				"Team A — ümlaut ✓ 😀 \xe4\xb8\xad", "active", 1, "rateLimit", "unit", "rpm",
				"requestsPerMinute", 60, "ratio", 0.25, "providerIds", "65a1b2c3d4e5f60718293a4b",
				"65a1b2c3d4e5f60718293a4c", "notes", longtext, "keyExpiresAt", "2030-01-02T03:04:05.678Z");
	must_insert(COLL_TENANTS, doc, id);
	ck_assert(store_id_valid(id));
	json_t *got = must_get(COLL_TENANTS, id);
	ck_assert_str_eq(json_string_value(json_object_get(got, "_id")), id);
	ck_assert_int_eq(json_integer_value(json_object_get(got, "__v")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(got, "name")), "Team A — ümlaut ✓ 😀 \xe4\xb8\xad");
	ck_assert(json_is_true(json_object_get(got, "active")));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(got, "rateLimit"), "requestsPerMinute")), 60);
	ck_assert(json_real_value(json_object_get(json_object_get(got, "rateLimit"), "ratio")) == 0.25);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(got, "providerIds"), 1)),
			 "65a1b2c3d4e5f60718293a4c");
	ck_assert_uint_eq(json_string_length(json_object_get(got, "notes")), 100000);
	ck_assert_str_eq(json_string_value(json_object_get(got, "keyExpiresAt")), "2030-01-02T03:04:05.678Z");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(got, "createdAt")));
	ck_assert_ptr_nonnull(json_string_value(json_object_get(got, "updatedAt")));
	json_decref(got);
	json_decref(doc);

	ck_assert_int_eq(st->ops->get(st, COLL_TENANTS, "65a1b2c3d4e5f60718293a4b", &got, err, sizeof err),
			 PRISM_E_NOT_FOUND);
	ck_assert_ptr_null(got);
}
END_TEST

START_TEST(ids_and_uniqueness)
{
	char id[25];
	json_t *doc = json_pack("{s:s, s:s, s:s}", "_id", "0123456789abcdef01234567", "slug", "one", "name", "One");
	must_insert(COLL_TENANTS, doc, id);
	ck_assert_str_eq(id, "0123456789abcdef01234567");
	/* the same _id again */
	json_object_set_new(doc, "slug", json_string("other"));
	ck_assert_int_eq(st->ops->insert(st, COLL_TENANTS, doc, id, err, sizeof err), PRISM_E_CONFLICT);
	json_decref(doc);
	/* a duplicate unique field */
	doc = json_pack("{s:s, s:s}", "slug", "one", "name", "Dup");
	ck_assert_int_eq(st->ops->insert(st, COLL_TENANTS, doc, id, err, sizeof err), PRISM_E_CONFLICT);
	json_decref(doc);
	/* single-field unique keys are sparse: many tenants without apiKeyHash */
	for (int i = 0; i < 3; i++) {
		char slug[16];
		snprintf(slug, sizeof slug, "sparse-%d", i);
		doc = json_pack("{s:s, s:s}", "slug", slug, "name", "S");
		must_insert(COLL_TENANTS, doc, id);
		json_decref(doc);
	}
	doc = json_pack("{s:s, s:s, s:s}", "slug", "k1", "name", "K", "apiKeyHash", "abc");
	must_insert(COLL_TENANTS, doc, id);
	json_object_set_new(doc, "slug", json_string("k2"));
	ck_assert_int_eq(st->ops->insert(st, COLL_TENANTS, doc, id, err, sizeof err), PRISM_E_CONFLICT);
	json_decref(doc);
	/* malformed ids */
	doc = json_pack("{s:s, s:s, s:s}", "_id", "not-an-id", "slug", "bad", "name", "B");
	ck_assert_int_eq(st->ops->insert(st, COLL_TENANTS, doc, id, err, sizeof err), PRISM_E_BAD_REQUEST);
	json_decref(doc);
	doc = json_pack("{s:i, s:s, s:s}", "_id", 5, "slug", "bad2", "name", "B");
	ck_assert_int_eq(st->ops->insert(st, COLL_TENANTS, doc, id, err, sizeof err), PRISM_E_BAD_REQUEST);
	json_decref(doc);
	/* ids are unique and ordered by creation time */
	char a[25], b[25];
	store_new_id(a);
	store_new_id(b);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(update_with_versions)
{
	char id[25];
	json_t *doc = json_pack("{s:s, s:s}", "slug", "v", "name", "First");
	must_insert(COLL_TENANTS, doc, id);
	json_t *stored = must_get(COLL_TENANTS, id);
	const char *created = json_string_value(json_object_get(stored, "createdAt"));
	char created_copy[40];
	snprintf(created_copy, sizeof created_copy, "%s", created);
	usleep(5000);

	json_object_set_new(doc, "name", json_string("Second"));
	json_object_set_new(doc, "createdAt", json_string("1999-01-01T00:00:00.000Z"));   /* ignored */
	long v = -1;
	ck_assert_msg(st->ops->update(st, COLL_TENANTS, id, doc, 0, &v, err, sizeof err) == PRISM_OK, "%s", err);
	ck_assert_int_eq(v, 1);
	/* a second editor still holding version 0 loses */
	json_object_set_new(doc, "name", json_string("Stale"));
	ck_assert_int_eq(st->ops->update(st, COLL_TENANTS, id, doc, 0, &v, err, sizeof err), PRISM_E_CONFLICT);
	/* without a version the write goes through */
	json_object_set_new(doc, "name", json_string("Third"));
	ck_assert_int_eq(st->ops->update(st, COLL_TENANTS, id, doc, -1, &v, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(v, 2);
	json_t *got = must_get(COLL_TENANTS, id);
	ck_assert_str_eq(json_string_value(json_object_get(got, "name")), "Third");
	ck_assert_int_eq(json_integer_value(json_object_get(got, "__v")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(got, "createdAt")), created_copy);
	ck_assert_str_ne(json_string_value(json_object_get(got, "updatedAt")), created_copy);
	json_decref(got);
	json_decref(stored);
	ck_assert_int_eq(st->ops->update(st, COLL_TENANTS, "65a1b2c3d4e5f60718293a4b", doc, -1, &v, err, sizeof err),
			 PRISM_E_NOT_FOUND);
	/* an update that would break a unique key fails and changes nothing */
	char id2[25];
	json_t *other = json_pack("{s:s, s:s}", "slug", "taken", "name", "T");
	must_insert(COLL_TENANTS, other, id2);
	json_object_set_new(doc, "slug", json_string("taken"));
	ck_assert_int_eq(st->ops->update(st, COLL_TENANTS, id, doc, 2, &v, err, sizeof err), PRISM_E_CONFLICT);
	got = must_get(COLL_TENANTS, id);
	ck_assert_str_eq(json_string_value(json_object_get(got, "slug")), "v");
	ck_assert_int_eq(json_integer_value(json_object_get(got, "__v")), 2);
	json_decref(got);
	json_decref(other);
	json_decref(doc);
}
END_TEST

START_TEST(remove_docs)
{
	char id[25];
	json_t *doc = json_pack("{s:s, s:s}", "slug", "gone", "name", "G");
	must_insert(COLL_TENANTS, doc, id);
	ck_assert_int_eq(st->ops->remove(st, COLL_TENANTS, id, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(st->ops->remove(st, COLL_TENANTS, id, err, sizeof err), PRISM_E_NOT_FOUND);
	json_t *got = NULL;
	ck_assert_int_eq(st->ops->get(st, COLL_TENANTS, id, &got, err, sizeof err), PRISM_E_NOT_FOUND);
	json_decref(doc);
}
END_TEST

static const char *const TENANT_A = "65a1b2c3d4e5f60718293a4b";
static const char *const TENANT_B = "65a1b2c3d4e5f60718293a4c";

/* 30 request logs: i = 0..29, tenant A for even, B for odd, status error every 5th, timestamps a minute apart. */
static void
seed_logs(void)
{
	json_t *docs = json_array();
	for (int i = 0; i < 30; i++) {
		char ts[32];
		snprintf(ts, sizeof ts, "2026-11-20T10:%02d:00.000Z", i);
		json_t *d = json_pack("{s:s, s:s, s:s, s:i, s:f, s:s}", "tenantId", i % 2 ? TENANT_B : TENANT_A,
				      "timestamp", ts, "status", i % 5 == 0 ? "error" : "success", "inputTokens", i * 10,
				      "actualCostUsd", i * 0.5, "routedModel", i < 10 ? "gpt-4o" : "gpt-4o-mini");
		if (i % 3 == 0)
			json_object_set_new(d, "category", json_string("coding"));
		json_object_set_new(d, "tags", json_pack("[s,s]", i % 2 ? "odd" : "even", "all"));
		json_array_append_new(docs, d);
	}
	ck_assert_msg(st->ops->insert_many(st, COLL_REQUESTLOGS, docs, err, sizeof err) == PRISM_OK, "%s", err);
	json_decref(docs);
}

static long
count_where(const struct store_cond *conds, size_t n)
{
	struct store_query q = { conds, n, NULL, false, 0, NULL };
	long c = -1;
	ck_assert_msg(st->ops->count(st, COLL_REQUESTLOGS, &q, &c, err, sizeof err) == PRISM_OK, "%s", err);
	/* find must agree with count */
	json_t *docs = NULL;
	char *next = NULL;
	ck_assert_msg(st->ops->find(st, COLL_REQUESTLOGS, &q, &docs, &next, err, sizeof err) == PRISM_OK, "%s", err);
	ck_assert_int_eq((long)json_array_size(docs), c);
	ck_assert_ptr_null(next);
	json_decref(docs);
	return c;
}

START_TEST(query_operators)
{
	seed_logs();
	json_t *a = json_string(TENANT_A), *err_s = json_string("error"), *n100 = json_integer(100),
	       *n50 = json_integer(50), *t1 = json_string("2026-11-20T10:10:00.000Z"),
	       *t2 = json_string("2026-11-20T10:20:00.000Z"), *coding = json_string("coding"), *yes = json_true(),
	       *no = json_false(), *in = json_pack("[s,s]", "gpt-4o", "nothing"), *odd = json_string("odd"),
	       *cost = json_real(5.0);
	struct store_cond c1[] = { { "tenantId", SOP_EQ, a } };
	ck_assert_int_eq(count_where(c1, 1), 15);
	struct store_cond c2[] = { { "tenantId", SOP_EQ, a }, { "status", SOP_EQ, err_s } };
	ck_assert_int_eq(count_where(c2, 2), 3);            /* 0, 10, 20 */
	struct store_cond c3[] = { { "inputTokens", SOP_GTE, n100 } };
	ck_assert_int_eq(count_where(c3, 1), 20);
	struct store_cond c4[] = { { "inputTokens", SOP_LT, n50 } };
	ck_assert_int_eq(count_where(c4, 1), 5);
	struct store_cond c5[] = { { "timestamp", SOP_GTE, t1 }, { "timestamp", SOP_LT, t2 } };
	ck_assert_int_eq(count_where(c5, 2), 10);
	struct store_cond c6[] = { { "category", SOP_EQ, coding } };
	ck_assert_int_eq(count_where(c6, 1), 10);
	struct store_cond c7[] = { { "category", SOP_NE, coding } };
	ck_assert_int_eq(count_where(c7, 1), 20);           /* NE includes documents without the field */
	struct store_cond c8[] = { { "category", SOP_EXISTS, yes } };
	ck_assert_int_eq(count_where(c8, 1), 10);
	struct store_cond c9[] = { { "category", SOP_EXISTS, no } };
	ck_assert_int_eq(count_where(c9, 1), 20);
	struct store_cond c10[] = { { "routedModel", SOP_IN, in } };
	ck_assert_int_eq(count_where(c10, 1), 10);
	struct store_cond c11[] = { { "tags", SOP_CONTAINS, odd } };
	ck_assert_int_eq(count_where(c11, 1), 15);
	struct store_cond c12[] = { { "actualCostUsd", SOP_GT, cost } };
	ck_assert_int_eq(count_where(c12, 1), 19);          /* 0.5 * i > 5 for i > 10 */
	struct store_cond c13[] = { { "_id", SOP_EXISTS, yes } };
	ck_assert_int_eq(count_where(c13, 1), 30);

	/* what the store cannot express is refused, not guessed */
	struct store_cond bad1[] = { { "bad field!", SOP_EQ, a } };
	struct store_query q = { bad1, 1, NULL, false, 0, NULL };
	long n;
	ck_assert_int_eq(st->ops->count(st, COLL_REQUESTLOGS, &q, &n, err, sizeof err), PRISM_E_BAD_REQUEST);
	struct store_cond bad2[] = { { "x", SOP_IN, a } };
	q.conds = bad2;
	ck_assert_int_eq(st->ops->count(st, COLL_REQUESTLOGS, &q, &n, err, sizeof err), PRISM_E_BAD_REQUEST);
	json_t *obj = json_object();
	struct store_cond bad3[] = { { "x", SOP_EQ, obj } };
	q.conds = bad3;
	ck_assert_int_eq(st->ops->count(st, COLL_REQUESTLOGS, &q, &n, err, sizeof err), PRISM_E_BAD_REQUEST);
	q.conds = c1;
	q.limit = STORE_MAX_LIMIT + 1;
	json_t *docs = NULL;
	char *next = NULL;
	ck_assert_int_eq(st->ops->find(st, COLL_REQUESTLOGS, &q, &docs, &next, err, sizeof err), PRISM_E_BAD_REQUEST);
	q.limit = 5;
	q.after = "zz-not-a-cursor";
	ck_assert_int_eq(st->ops->find(st, COLL_REQUESTLOGS, &q, &docs, &next, err, sizeof err), PRISM_E_BAD_REQUEST);
	json_decref(obj);
	json_decref(a);
	json_decref(err_s);
	json_decref(n100);
	json_decref(n50);
	json_decref(t1);
	json_decref(t2);
	json_decref(coding);
	json_decref(yes);
	json_decref(no);
	json_decref(in);
	json_decref(odd);
	json_decref(cost);
}
END_TEST

/* Pages through all documents; checks each comes exactly once and in order. */
static void
check_pages(bool desc, long page_size)
{
	struct store_query q = { NULL, 0, "bucket", desc, page_size, NULL };
	char *cursor = NULL;
	int seen[250] = { 0 };
	long last_bucket = desc ? 1000000 : -1, total = 0, pages = 0;
	char last_id[25] = "";
	do {
		json_t *docs = NULL;
		char *next = NULL;
		q.after = cursor;
		ck_assert_msg(st->ops->find(st, COLL_REQUESTLOGS, &q, &docs, &next, err, sizeof err) == PRISM_OK, "%s", err);
		free(cursor);
		cursor = next;
		pages++;
		ck_assert_int_le((long)json_array_size(docs), page_size);
		size_t i;
		json_t *d;
		json_array_foreach(docs, i, d) {
			long b = (long)json_integer_value(json_object_get(d, "bucket"));
			const char *id = json_string_value(json_object_get(d, "_id"));
			if (desc)
				ck_assert(b < last_bucket || (b == last_bucket && strcmp(id, last_id) < 0));
			else
				ck_assert(b > last_bucket || (b == last_bucket && strcmp(id, last_id) > 0));
			last_bucket = b;
			snprintf(last_id, sizeof last_id, "%s", id);
			long n = (long)json_integer_value(json_object_get(d, "n"));
			ck_assert_int_eq(seen[n], 0);
			seen[n] = 1;
			total++;
		}
		json_decref(docs);
	} while (cursor);
	ck_assert_int_eq(total, 250);
	ck_assert_int_eq(pages, (250 + page_size - 1) / page_size);
}

START_TEST(keyset_pagination)
{
	json_t *docs = json_array();
	for (int i = 0; i < 250; i++)
		json_array_append_new(docs, json_pack("{s:i, s:i}", "n", i, "bucket", (i * 7) % 13));  /* many ties */
	ck_assert_msg(st->ops->insert_many(st, COLL_REQUESTLOGS, docs, err, sizeof err) == PRISM_OK, "%s", err);
	json_decref(docs);
	check_pages(false, 40);
	check_pages(true, 40);
	check_pages(false, 250);
	check_pages(true, 7);
}
END_TEST

struct inc_args {
	int n;
};

static void *
inc_thread(void *p)
{
	struct inc_args *a = p;
	char e[256];
	for (int i = 0; i < a->n; i++) {
		json_t *key = json_pack("{s:s, s:s, s:s}", "date", "2026-11-26", "tenantId", TENANT_A, "routedModel", "m1");
		json_t *inc = json_pack("{s:i, s:i, s:f}", "requests", 1, "inputTokens", 7, "actualCostUsd", 0.25);
		enum prism_err r = st->ops->upsert_inc(st, COLL_DAILYSTATS, key, inc, NULL, e, sizeof e);
		json_decref(key);
		json_decref(inc);
		if (r)
			return (void *)1;
	}
	return NULL;
}

static json_t *
daily_doc(const char *model)
{
	struct store_cond c[] = { { "routedModel", SOP_EQ, json_string(model) } };
	struct store_query q = { c, 1, NULL, false, 0, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	ck_assert_msg(st->ops->find(st, COLL_DAILYSTATS, &q, &docs, &next, err, sizeof err) == PRISM_OK, "%s", err);
	json_decref(c[0].value);
	ck_assert_uint_eq(json_array_size(docs), 1);
	json_t *d = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	return d;
}

START_TEST(upsert_inc_exact_under_threads)
{
	pthread_t t[8];
	struct inc_args a = { 250 };
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, inc_thread, &a);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(t[i], &r);
		ck_assert_ptr_null(r);
	}
	json_t *d = daily_doc("m1");
	ck_assert_int_eq(json_integer_value(json_object_get(d, "requests")), 2000);
	ck_assert_int_eq(json_integer_value(json_object_get(d, "inputTokens")), 14000);
	ck_assert(json_number_value(json_object_get(d, "actualCostUsd")) == 500.0);
	ck_assert_str_eq(json_string_value(json_object_get(d, "tenantId")), TENANT_A);
	json_decref(d);
}
END_TEST

START_TEST(upsert_inc_rules)
{
	/* set_on_insert applies once; a key field that is absent counts as null (DailyCategoryStat.costTier) */
	for (int i = 0; i < 3; i++) {
		json_t *key = json_pack("{s:s, s:s, s:s, s:n}", "date", "2026-11-26", "tenantId", TENANT_B, "category",
					"coding", "costTier");
		json_t *inc = json_pack("{s:i}", "requests", 2);
		json_t *soi = json_pack("{s:s}", "firstSeen", i == 0 ? "first" : "later");
		ck_assert_msg(st->ops->upsert_inc(st, COLL_DAILYCATEGORYSTATS, key, inc, soi, err, sizeof err) == PRISM_OK,
			      "%s", err);
		json_decref(key);
		json_decref(inc);
		json_decref(soi);
	}
	struct store_query q = { NULL, 0, NULL, false, 0, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	ck_assert_int_eq(st->ops->find(st, COLL_DAILYCATEGORYSTATS, &q, &docs, &next, err, sizeof err), PRISM_OK);
	ck_assert_uint_eq(json_array_size(docs), 1);
	json_t *d = json_array_get(docs, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(d, "requests")), 6);
	ck_assert_str_eq(json_string_value(json_object_get(d, "firstSeen")), "first");
	json_decref(docs);
	/* a key that is not a unique key of the collection is refused */
	json_t *key = json_pack("{s:s}", "date", "2026-11-26");
	json_t *inc = json_pack("{s:i}", "requests", 1);
	ck_assert_int_eq(st->ops->upsert_inc(st, COLL_DAILYSTATS, key, inc, NULL, err, sizeof err), PRISM_E_BAD_REQUEST);
	json_decref(key);
	key = json_pack("{s:s, s:s, s:s}", "date", "2026-11-26", "tenantId", TENANT_A, "routedModel", "m2");
	json_object_set_new(inc, "bad", json_string("text"));
	ck_assert_int_eq(st->ops->upsert_inc(st, COLL_DAILYSTATS, key, inc, NULL, err, sizeof err), PRISM_E_BAD_REQUEST);
	json_decref(key);
	json_decref(inc);
}
END_TEST

START_TEST(processes_and_threads_exact)
{
	/* 3 processes x 4 threads: each thread 100 increments and 25 log inserts. */
	pid_t kids[3];
	for (int p = 0; p < 3; p++) {
		kids[p] = fork();
		if (kids[p] == 0) {
			struct store *mine = NULL;
			char e[256];
			enum prism_err r;
			/* A store (mongoc pool, SQLite handles) must not cross fork(): each writer opens its own. */
			if (is_mongo) {
				r = store_mongo_open(mongo_uri, 5000, &mine, e, sizeof e);
			} else {
				r = store_sqlite_open(dbpath, 5000, &mine, e, sizeof e);
			}
			if (r)
				_exit(2);
			st = mine;
			pthread_t t[4];
			struct inc_args a = { 100 };
			for (int i = 0; i < 4; i++)
				pthread_create(&t[i], NULL, inc_thread, &a);
			int bad = 0;
			for (int k = 0; k < 25; k++) {
				json_t *batch = json_array();
				for (int j = 0; j < 4; j++)
					json_array_append_new(batch, json_pack("{s:s, s:i}", "tenantId", TENANT_A, "n", p));
				if (st->ops->insert_many(st, COLL_REQUESTLOGS, batch, e, sizeof e))
					bad = 1;
				json_decref(batch);
			}
			for (int i = 0; i < 4; i++) {
				void *rv;
				pthread_join(t[i], &rv);
				if (rv)
					bad = 1;
			}
			_exit(bad ? 1 : 0);
		}
	}
	for (int p = 0; p < 3; p++) {
		int status;
		waitpid(kids[p], &status, 0);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer process %d failed", p);
	}
	json_t *d = daily_doc("m1");
	ck_assert_int_eq(json_integer_value(json_object_get(d, "requests")), 3 * 4 * 100);
	json_decref(d);
	struct store_query q = { NULL, 0, NULL, false, 0, NULL };
	long n = 0;
	ck_assert_int_eq(st->ops->count(st, COLL_REQUESTLOGS, &q, &n, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(n, 3 * 25 * 4);
}
END_TEST

START_TEST(retention_delete_before)
{
	seed_logs();
	long deleted = -1;
	ck_assert_int_eq(st->ops->delete_before(st, COLL_REQUESTLOGS, "timestamp", "2026-11-20T10:12:00.000Z", &deleted,
						err, sizeof err), PRISM_OK);
	ck_assert_int_eq(deleted, 12);
	struct store_query q = { NULL, 0, NULL, false, 0, NULL };
	long n;
	st->ops->count(st, COLL_REQUESTLOGS, &q, &n, err, sizeof err);
	ck_assert_int_eq(n, 18);
}
END_TEST

START_TEST(generation_counter)
{
	int64_t g0 = -1, g1 = -1, g2 = -1;
	ck_assert_msg(st->ops->generation(st, &g0, err, sizeof err) == PRISM_OK, "%s", err);
	ck_assert_int_eq(st->ops->bump_generation(st, &g1, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(g1, g0 + 1);
	ck_assert_int_eq(st->ops->bump_generation(st, &g2, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(g2, g0 + 2);
	ck_assert_int_eq(st->ops->generation(st, &g1, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(g1, g2);
}
END_TEST

START_TEST(grouped_sums)
{
	seed_logs();
	json_t *a = json_string(TENANT_A);
	struct store_cond c[] = { { "tenantId", SOP_EQ, a } };
	struct store_query q = { c, 1, NULL, false, 0, NULL };
	json_t *groups = NULL;
	const char *const group[] = { "routedModel", NULL };
	const char *const sums[] = { "inputTokens", "actualCostUsd", NULL };
	ck_assert_int_eq(store_sum(st, COLL_REQUESTLOGS, &q, group, sums, &groups, err, sizeof err), PRISM_OK);
	ck_assert_uint_eq(json_array_size(groups), 2);
	size_t i;
	json_t *g;
	long tokens = 0;
	json_array_foreach(groups, i, g) {
		const char *m = json_string_value(json_object_get(g, "routedModel"));
		long t = (long)json_integer_value(json_object_get(g, "inputTokens"));
		/* even i < 10 → gpt-4o: 0+2+4+6+8 = 20 → 200 tokens; even 10..28 → 10+..+28 = 190 → 1900 */
		if (strcmp(m, "gpt-4o") == 0)
			ck_assert_int_eq(t, 200);
		else
			ck_assert_int_eq(t, 1900);
		tokens += t;
	}
	ck_assert_int_eq(tokens, 2100);
	json_decref(groups);
	json_decref(a);
}
END_TEST

START_TEST(damaged_rows_do_not_crash)
{
	if (is_mongo)
		return;   /* the MongoDB variant is covered by store_mongo.sh with raw BSON documents */
	char id[25];
	json_t *doc = json_pack("{s:s, s:s}", "slug", "ok", "name", "OK");
	must_insert(COLL_TENANTS, doc, id);
	json_decref(doc);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	/* Valid JSON of the wrong shape or with unexpected types, and (in a table without expression indexes,
	 * which would reject it) text that is not JSON at all. */
	ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO tenants(id, v, doc) VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', 0, '[1,2]'),"
					  " ('bbbbbbbbbbbbbbbbbbbbbbbb', 'x', '{\"slug\":{\"a\":[1,{}]},\"name\":12,"
					  "\"active\":\"yes\",\"z\":1e308}');"
					  "INSERT INTO setups(id, v, doc) VALUES ('cccccccccccccccccccccccc', 0, 'not json at all')",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	json_t *got = must_get(COLL_TENANTS, "aaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert(json_is_object(got));
	json_decref(got);
	got = must_get(COLL_TENANTS, "bbbbbbbbbbbbbbbbbbbbbbbb");
	ck_assert(json_is_object(json_object_get(got, "slug")));
	ck_assert_int_eq(json_integer_value(json_object_get(got, "name")), 12);
	json_decref(got);
	got = must_get(COLL_SETUPS, "cccccccccccccccccccccccc");
	ck_assert(json_is_object(got));
	json_decref(got);
	struct store_query q = { NULL, 0, "name", false, 0, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	ck_assert_int_eq(st->ops->find(st, COLL_TENANTS, &q, &docs, &next, err, sizeof err), PRISM_OK);
	ck_assert_uint_eq(json_array_size(docs), 3);
	json_decref(docs);
	json_t *ok = json_string("ok");
	struct store_cond c[] = { { "slug", SOP_EQ, ok } };
	q.conds = c;
	q.nconds = 1;
	ck_assert_int_eq(st->ops->find(st, COLL_TENANTS, &q, &docs, &next, err, sizeof err), PRISM_OK);
	ck_assert_uint_eq(json_array_size(docs), 1);
	json_decref(docs);
	json_decref(ok);
	q.conds = NULL;
	q.nconds = 0;
	q.sort = NULL;
	ck_assert_int_eq(st->ops->find(st, COLL_SETUPS, &q, &docs, &next, err, sizeof err), PRISM_OK);
	ck_assert_uint_eq(json_array_size(docs), 1);
	json_decref(docs);
}
END_TEST


/* A read must not leave this connection looking at an old snapshot: after each kind of read, a write made
 * through another connection is visible (a SQLite statement left on its row kept a read transaction open). */
START_TEST(reads_see_other_writers)
{
	struct store *other = NULL;
	enum prism_err e = is_mongo ? store_mongo_open(mongo_uri, 5000, &other, err, sizeof err)
				    : store_sqlite_open(dbpath, 5000, &other, err, sizeof err);
	ck_assert_msg(e == PRISM_OK, "second handle: %s", err);
	char id[25];
	json_t *doc = json_pack("{s:s}", "username", "first");
	must_insert(COLL_USERS, doc, id);
	json_decref(doc);
	for (int round = 0; round < 6; round++) {
		json_t *got = NULL;
		long n = 0;
		struct store_query q = { NULL, 0, NULL, false, 0, NULL };
		int64_t gen;
		switch (round) {
		case 0: ck_assert_int_eq(st->ops->ping(st, err, sizeof err), PRISM_OK); break;
		case 1: got = must_get(COLL_USERS, id); break;
		case 2: st->ops->get(st, COLL_USERS, "0123456789abcdef01234567", &got, err, sizeof err); break;
		case 3: ck_assert_int_eq(st->ops->count(st, COLL_USERS, &q, &n, err, sizeof err), PRISM_OK); break;
		case 4: {
			char *next = NULL;
			ck_assert_int_eq(st->ops->find(st, COLL_USERS, &q, &got, &next, err, sizeof err), PRISM_OK);
			free(next);
			break;
		}
		case 5: ck_assert_int_eq(st->ops->generation(st, &gen, err, sizeof err), PRISM_OK); break;
		}
		json_decref(got);
		char name[32], oid[25];
		snprintf(name, sizeof name, "written-%d", round);
		json_t *w = json_pack("{s:s}", "username", name);
		ck_assert_int_eq(other->ops->insert(other, COLL_USERS, w, oid, err, sizeof err), PRISM_OK);
		json_decref(w);
		json_t *seen = NULL;
		ck_assert_msg(st->ops->get(st, COLL_USERS, oid, &seen, err, sizeof err) == PRISM_OK,
			      "after read kind %d the other connection's write is invisible: %s", round, err);
		json_decref(seen);
	}
	store_close(other);
}
END_TEST

/* store_insert_texts: documents given as their text go in as if inserted as trees. */
START_TEST(documents_as_text)
{
	const char *a = "0123456789abcdef0123aaaa", *b = "0123456789abcdef0123bbbb";
	struct store_text two[] = {
		{ a, "{\"tenantId\":\"65a1b2c3d4e5f60718293a4b\",\"timestamp\":\"2026-11-27T10:00:00.000Z\","
		     "\"userName\":\"ümlaut ✓ 😀\",\"inputTokens\":12,\"actualCostUsd\":0.25}" },
		{ b, "{\"tenantId\":\"65a1b2c3d4e5f60718293a4b\",\"timestamp\":\"2026-11-27T10:00:01.000Z\","
		     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" },
	};
	ck_assert_msg(store_insert_texts(st, COLL_REQUESTLOGS, two, 2, err, sizeof err) == PRISM_OK, "%s", err);
	json_t *got = must_get(COLL_REQUESTLOGS, a);
	ck_assert_str_eq(json_string_value(json_object_get(got, "_id")), a);
	ck_assert_str_eq(json_string_value(json_object_get(got, "userName")), "ümlaut ✓ 😀");
	ck_assert_int_eq(json_integer_value(json_object_get(got, "inputTokens")), 12);
	ck_assert(json_real_value(json_object_get(got, "actualCostUsd")) == 0.25);
	json_decref(got);
	got = must_get(COLL_REQUESTLOGS, b);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(got, "messages"), 0),
							   "content")), "hi");
	json_decref(got);

	/* the indexed fields are found like those of any insert */
	json_t *tenant = json_string("65a1b2c3d4e5f60718293a4b");
	struct store_cond cond = { "tenantId", SOP_EQ, tenant };
	struct store_query q = { &cond, 1, "timestamp", true, 0, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	ck_assert_int_eq(st->ops->find(st, COLL_REQUESTLOGS, &q, &docs, &next, err, sizeof err), PRISM_OK);
	ck_assert_uint_eq(json_array_size(docs), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(docs, 0), "_id")), b);
	json_decref(docs);

	/* a duplicate _id is a conflict; SQLite inserts none of the batch */
	const char *c = "0123456789abcdef0123cccc";
	struct store_text dup[] = { { c, "{\"tenantId\":\"65a1b2c3d4e5f60718293a4b\"}" }, { a, "{}" } };
	ck_assert_int_eq(store_insert_texts(st, COLL_REQUESTLOGS, dup, 2, err, sizeof err), PRISM_E_CONFLICT);
	ck_assert_int_eq(store_insert_texts(st, COLL_REQUESTLOGS, &dup[1], 1, err, sizeof err), PRISM_E_CONFLICT);
	long n = 0;
	ck_assert_int_eq(st->ops->count(st, COLL_REQUESTLOGS, &q, &n, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(n, is_mongo ? 3 : 2);     /* MongoDB: in order, the documents before the duplicate */
	json_decref(tenant);

	/* what is refused */
	struct store_text bad_id = { "not-an-id", "{}" }, bad_doc = { "0123456789abcdef0123dddd", "[1]" };
	ck_assert_int_eq(store_insert_texts(st, COLL_REQUESTLOGS, &bad_id, 1, err, sizeof err), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(store_insert_texts(st, COLL_REQUESTLOGS, &bad_doc, 1, err, sizeof err),
			 PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(store_insert_texts(st, COLL_TENANTS, &dup[0], 1, err, sizeof err), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(store_insert_texts(st, COLL_REQUESTLOGS, NULL, 0, err, sizeof err), PRISM_OK);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create(getenv("STORE_BACKEND") ? getenv("STORE_BACKEND") : "sqlite");
	TCase *tc = tcase_create("contract");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, open_store, close_store);
	tcase_add_test(tc, migrate_is_idempotent);
	tcase_add_test(tc, insert_get_roundtrip);
	tcase_add_test(tc, ids_and_uniqueness);
	tcase_add_test(tc, update_with_versions);
	tcase_add_test(tc, remove_docs);
	tcase_add_test(tc, query_operators);
	tcase_add_test(tc, keyset_pagination);
	tcase_add_test(tc, upsert_inc_exact_under_threads);
	tcase_add_test(tc, upsert_inc_rules);
	tcase_add_test(tc, processes_and_threads_exact);
	tcase_add_test(tc, retention_delete_before);
	tcase_add_test(tc, generation_counter);
	tcase_add_test(tc, grouped_sums);
	tcase_add_test(tc, damaged_rows_do_not_crash);
	tcase_add_test(tc, reads_see_other_writers);
	tcase_add_test(tc, documents_as_text);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(store_suite)
