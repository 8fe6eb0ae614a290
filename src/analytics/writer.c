/* writer.c -- see writer.h.
 *
 * Exactly once
 * ------------
 * A record needs up to four writes that the store cannot make atomic together: dailystats,
 * dailycategorystats and dailyuserstats (upsert_inc), and its requestlog (insert).  The requestlog is
 * written last, so "its requestlog is in the store" means "done", and every record carries its progress
 * (the ST_* bits), in memory and in its spool line:
 *   - the aggregates of a batch are summed per key in memory (one upsert_inc per day, tenant and model,
 *     not one per record); a successful upsert sets its bit on every record it covered;
 *   - then the requestlogs go in with insert_many; a duplicate or a refused document makes the writer
 *     insert one by one (MongoDB has inserted the documents before the duplicate, SQLite none);
 *   - when the store fails, the records that are not complete go to the spool with their bits, and only
 *     what is missing is written later;
 *   - a record read back from a spool whose requestlog is in the store is done (one find per chunk):
 *     that covers an insert whose reply was lost, a replay that died after its inserts, and a record that
 *     appears twice in a spool;
 *   - a replay notes each step in the spool's .pos file before the next store write, so a process that
 *     dies in the middle of a chunk leaves the bits of its records for whoever replays it next.
 * What remains is the instant between an upsert_inc and the note of its bits: a process killed right
 * then, or an upsert whose reply the network lost, may count that aggregate twice.  Closing it needs
 * transactions, which the store does not have (MongoDB-wire servers such as FerretDB, plain CRUD).  The
 * requestlogs are the original's documents, with no bookkeeping field, and nothing is written twice to
 * find out what was written: a replay costs what the live path costs plus one find per chunk.
 *
 * Spool files
 * -----------
 * <dir>/analytics-<pid>[-n].jsonl, one {"state":N,"doc":{...}} per line, appended with one write() and an
 * fdatasync per batch, and locked (flock) by the process that writes or replays it from the moment the
 * name exists (it is created under a hidden name and linked into place).  A replay reads ANALYTICS_BATCH
 * lines, writes them and notes its progress in <file>.pos ({"offset":N,"states":{id:bits}}): the first
 * line not yet complete and the progress of the lines of a chunk the store failed in the middle of.  A
 * spool whose lock can be taken belongs to a process that is gone: any process adopts it, resumes at its
 * .pos and deletes both files when done.  A line that cannot be read (its writer died half-way through
 * it) is skipped and counted as dropped; the lines after it are not lost.
 *
 * Order
 * -----
 * Per process, records reach the store in the order they were submitted: while the process's spool holds
 * anything, new batches are appended behind it and the spool is replayed first.  (Exception: a queue
 * overflow while a failed batch is being spooled may put that batch behind the overflow.)
 *
 * Locks: W.lock guards the queue and the writer's flags; W.spool_lock guards the process's own spool
 * (appended by the writer and, on overflow, by submitting threads).  W.lock may be held when taking
 * spool_lock, never the other way round.  The adopted spool belongs to the writer thread alone.
 */
#include "config.h"
#include "analytics/writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/metrics.h"
#include "shm/segment.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SPOOL_PREFIX "analytics-"
#define SPOOL_SUFFIX ".jsonl"
#define POS_SUFFIX ".pos"
#define POS_MAX (1024 * 1024)            /* a .pos file: an offset and at most a chunk of states */
#define READ_BLOCK (64 * 1024)
#define LOG_EVERY_MS 60000               /* repeated error messages: once a minute */
#define ERRLEN 512

/* Progress of a record.  The aggregate bits are kept in its spool line and in a chunk's .pos. */
enum {
	ST_INSERTED = 1u << 0,           /* its requestlog is in the store: done */
	ST_DAILY = 1u << 1,              /* dailystats applied */
	ST_CATEGORY = 1u << 2,           /* dailycategorystats applied */
	ST_USER = 1u << 3,               /* dailyuserstats applied */
	ST_PERSISTED = ST_DAILY | ST_CATEGORY | ST_USER,
	ST_SPOOLED = 1u << 8,            /* read back from a spool: its requestlog may be there already */
	ST_SKIP = 1u << 9,               /* done before, a duplicate, or dropped */
};

/* What the writer keeps of a RequestLog, made on the request thread when it is submitted: the text the
 * store and the spool take, and the fields of the aggregates.  One allocation, never changed after; the
 * document's tree is freed at once, so a queue of records costs their text, not their trees. */
struct logrec {
	char id[25], tenant[25], day[16];
	bool error, auto_routed;
	double actual, baseline, saved, routing;
	json_int_t input, output, dur;
	/* Aggregate keys, pointing into text's block: model is routedModel or "none"; category and user are
	 * NULL unless a non-empty string, tier NULL unless a string. */
	const char *model, *category, *tier, *user;
	char text[];                     /* the document without _id (compact JSON), then those strings */
};

struct rec {
	struct logrec *lr;
	unsigned st;
};

struct spool {
	int fd;                          /* -1: none */
	char path[PATH_MAX];
	off_t size;                      /* bytes of whole lines (own spool: under spool_lock) */
	off_t off;                       /* the next line to read */
	off_t head_off;                  /* where the chunk in head starts */
	struct rec *head;                /* a chunk read and not yet complete */
	size_t nhead;
	long head_lines;                 /* lines the chunk consumed, unreadable ones included */
	json_t *carried;                 /* progress from the .pos file, for the first chunk */
	long records;                    /* lines not yet completed */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;             /* the writer: records, stop, a drain */
	pthread_cond_t idle;             /* analytics_drain: the writer has nothing to do */
	bool started, stopping, busy, down;
	pthread_t thread;
	struct logrec **q;               /* ring of ANALYTICS_QUEUE_MAX */
	int64_t *qt;                     /* their submit times (monotonic ms) */
	size_t qhead, qlen;
	int64_t retry_at;                /* while down: the next store attempt */
	long backoff_ms;
	int64_t next_scan;               /* the next look for orphaned spools */
	unsigned long scans;             /* looks completed */

	pthread_mutex_t spool_lock;
	char dir[PATH_MAX];
	struct spool own;
	atomic_bool own_pending;         /* the own spool holds something */
	off_t others_size;               /* bytes in other processes' spools at the last scan */
	struct spool adopted;
} W = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.spool_lock = PTHREAD_MUTEX_INITIALIZER,
	.own = { .fd = -1 },
	.adopted = { .fd = -1 },
};

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
static atomic_long n_written, n_replayed, n_dropped, n_duplicates;
static atomic_llong last_full_log, last_drop_log, last_io_log;

/* --- small helpers ------------------------------------------------------------------------------------- */

static void
init_conds(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&W.wake, &a);
	pthread_cond_init(&W.idle, &a);
	pthread_condattr_destroy(&a);
}

static void
wait_until(pthread_cond_t *c, int64_t until_ms)
{
	struct timespec ts = { (time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L };
	pthread_cond_timedwait(c, &W.lock, &ts);
}

/* True at most once per LOG_EVERY_MS for one kind of message. */
static bool
log_due(atomic_llong *last)
{
	long long now = clock_monotonic_ms(), prev = atomic_load(last);
	return (prev == 0 || now - prev >= LOG_EVERY_MS) && atomic_compare_exchange_strong(last, &prev, now);
}

/* The shm metrics: prism_analytics_pending_records{where="queue"|"spool"} and the dropped counter. */
enum metric_series { M_QUEUE, M_SPOOL, M_DROPPED, M_SERIES };

static void
metric_add(enum metric_series m, long n)
{
	static const char *const labels[M_SERIES] = { "where=\"queue\"", "where=\"spool\"", "" };
	static atomic_int ids[M_SERIES] = { -1, -1, -1 };
	struct shm_segment *seg = shm_segment_current();
	if (!seg || n == 0)
		return;
	int label = atomic_load(&ids[m]);
	if (label < 0) {
		label = metrics_label_id(seg, labels[m]);
		atomic_store(&ids[m], label);
	}
	metrics_inc(seg, m == M_DROPPED ? METRIC_ANALYTICS_DROPPED : METRIC_ANALYTICS_PENDING, label, n);
}

static void
count_dropped(long n, const char *why)
{
	if (n <= 0)
		return;
	atomic_fetch_add(&n_dropped, n);
	metric_add(M_DROPPED, n);
	if (log_due(&last_drop_log))
		log_error("analytics: %ld record(s) lost: %s (%ld lost since start)", n, why, atomic_load(&n_dropped));
}

static const char *
rec_id(const struct rec *r)
{
	return r->lr->id;
}

/* The string field, or NULL when it is absent, not a string or empty. */
static const char *
str_nonempty(const json_t *doc, const char *field)
{
	const char *s = json_string_value(json_object_get(doc, field));
	return s && *s ? s : NULL;
}

static bool
rec_is_error(const json_t *doc)
{
	const char *s = json_string_value(json_object_get(doc, "status"));
	return s && strcmp(s, "error") == 0;
}

static unsigned
rec_need(const struct rec *r)
{
	unsigned need = ST_INSERTED | ST_DAILY;
	/* The original counts categories for successful requests only (control-plane §6.7). */
	if (r->lr->category && !r->lr->error)
		need |= ST_CATEGORY;
	if (r->lr->user)
		need |= ST_USER;
	return need;
}

static bool
rec_complete(const struct rec *r)
{
	unsigned need = rec_need(r);
	return (r->st & ST_SKIP) || (r->st & need) == need;
}

static void
recs_free(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].lr);
	free(r);
}

static bool
transient(enum prism_err e)
{
	return e != PRISM_OK && e != PRISM_E_CONFLICT && e != PRISM_E_BAD_REQUEST && e != PRISM_E_NOT_FOUND;
}

/* --- what a record adds to the daily aggregates --------------------------------------------------------- */

enum agg_kind { AGG_DAILY, AGG_CATEGORY, AGG_USER, AGG_KINDS };
static const unsigned agg_bit[AGG_KINDS] = { ST_DAILY, ST_CATEGORY, ST_USER };
static const enum store_coll agg_coll[AGG_KINDS] = { COLL_DAILYSTATS, COLL_DAILYCATEGORYSTATS, COLL_DAILYUSERSTATS };

static double
num(const json_t *doc, const char *field)
{
	json_t *v = json_object_get(doc, field);
	return json_is_number(v) ? json_number_value(v) : 0.0;
}

static json_int_t
inum(const json_t *doc, const char *field)
{
	json_t *v = json_object_get(doc, field);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) > -9e15 && json_real_value(v) < 9e15)
		return (json_int_t)(json_real_value(v) + (json_real_value(v) < 0 ? -0.5 : 0.5));
	return 0;
}

/* What one record adds to one aggregate, summed over a batch in C and turned into the upsert's document
 * once per key. */
struct agg_sum {
	json_int_t requests, input, output, auto_routed, errors, dur_total, dur_count;
	double actual, baseline, saved, routing;
};

/* The key of the record's aggregate k: as a text that tells keys apart (each field length-prefixed, so no
 * value can imitate another split), or as the document (text NULL). */
static void
agg_key(const struct logrec *lr, enum agg_kind k, struct buf *text, json_t **key)
{
	const char *f1, *f2 = NULL, *n1, *n2 = NULL;
	switch (k) {
	case AGG_DAILY:
		n1 = "routedModel";
		f1 = lr->model;
		break;
	case AGG_CATEGORY:
		n1 = "category";
		f1 = lr->category;
		n2 = "costTier";
		f2 = lr->tier;
		break;
	default:
		n1 = "userName";
		f1 = lr->user;
		break;
	}
	if (text) {
		buf_printf(text, "%d|%zu:%s|%zu:%s|%zu:%s|", (int)k, strlen(lr->day), lr->day, strlen(lr->tenant),
			   lr->tenant, strlen(f1), f1);
		if (n2)
			buf_printf(text, f2 ? "%zu:%s|" : "null|", f2 ? strlen(f2) : 0, f2 ? f2 : "");
		return;
	}
	*key = json_pack("{s:s, s:s, s:s}", "date", lr->day, "tenantId", lr->tenant, n1, f1);
	if (n2)
		json_object_set_new(*key, n2, f2 ? json_string(f2) : json_null());
}

static void
agg_add(const struct logrec *lr, struct agg_sum *a)
{
	a->requests++;
	a->input += lr->input;
	a->output += lr->output;
	a->actual += lr->actual;
	a->baseline += lr->baseline;
	a->saved += lr->saved;
	a->auto_routed += lr->auto_routed;
	a->routing += lr->routing;
	a->errors += lr->error;
	a->dur_total += lr->dur > 0 ? lr->dur : 0;
	a->dur_count += lr->dur > 0;
}

/* The record of a RequestLog given as its text without _id (tl bytes) and its keys; NULL without memory. */
static struct logrec *
logrec_of(const struct analytics_keys *k, const char *text, size_t tl)
{
	const char *model = k->model && *k->model ? k->model : "none";
	const char *category = k->category && *k->category ? k->category : NULL;
	const char *user = k->user && *k->user ? k->user : NULL;
	size_t ml = strlen(model) + 1, cl = category ? strlen(category) + 1 : 0, ul = user ? strlen(user) + 1 : 0;
	size_t rl = k->tier ? strlen(k->tier) + 1 : 0;
	struct logrec *lr = malloc(sizeof *lr + tl + 1 + ml + cl + ul + rl);
	if (!lr)
		return NULL;
	snprintf(lr->id, sizeof lr->id, "%s", k->id);
	snprintf(lr->tenant, sizeof lr->tenant, "%s", k->tenant);
	clock_utc_day(k->time_ms, lr->day, sizeof lr->day);
	lr->error = k->error;
	lr->auto_routed = k->auto_routed;
	lr->actual = k->actual;
	lr->baseline = k->baseline;
	lr->saved = k->saved;
	lr->routing = k->routing;
	lr->input = k->input;
	lr->output = k->output;
	lr->dur = k->dur;
	char *p = lr->text;
	memcpy(p, text, tl);
	p[tl] = '\0';
	p += tl + 1;
	lr->model = memcpy(p, model, ml);
	p += ml;
	lr->category = category ? memcpy(p, category, cl) : NULL;
	p += cl;
	lr->user = user ? memcpy(p, user, ul) : NULL;
	p += ul;
	lr->tier = k->tier ? memcpy(p, k->tier, rl) : NULL;
	return lr;
}

/* The record of a RequestLog whose _id and tenantId are valid (doc is consumed); NULL without memory. */
static struct logrec *
logrec_make(json_t *doc)
{
	json_t *b = json_object_get(doc, "baselineCostUsd"), *sv = json_object_get(doc, "savedUsd");
	int64_t ms;
	const char *ts = json_string_value(json_object_get(doc, "timestamp"));
	if (!ts || clock_parse_iso8601(ts, &ms) != 0)
		ms = clock_realtime_ms();   /* the aggregates belong to the day the request was made */
	char id[25];
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "_id")));
	struct analytics_keys k = {
		.id = id,
		.tenant = json_string_value(json_object_get(doc, "tenantId")),
		.time_ms = ms,
		.error = rec_is_error(doc),
		.auto_routed = json_is_true(json_object_get(doc, "isAutoRouted")),
		.actual = num(doc, "actualCostUsd"),
		.routing = num(doc, "routingCostUsd"),
		.input = inum(doc, "inputTokens"),
		.output = inum(doc, "outputTokens"),
		.dur = inum(doc, "durationMs"),
		.model = str_nonempty(doc, "routedModel"),
		.category = str_nonempty(doc, "category"),
		.tier = json_string_value(json_object_get(doc, "costTier")),
		.user = str_nonempty(doc, "userName"),
	};
	k.baseline = json_is_number(b) ? json_number_value(b) : k.actual;
	k.saved = json_is_number(sv) ? json_number_value(sv) : k.baseline - k.actual;
	json_object_del(doc, "_id");
	json_object_del(doc, "__v");
	char *text = json_dumps(doc, JSON_COMPACT);
	struct logrec *lr = text ? logrec_of(&k, text, strlen(text)) : NULL;
	free(text);
	json_decref(doc);
	return lr;
}

/* The increments of an aggregate document: the fields of the collection, integers as integers. */
static json_t *
agg_inc(enum agg_kind k, const struct agg_sum *a)
{
	switch (k) {
	case AGG_DAILY:
		return json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:f, s:I, s:I, s:I}", "requests", a->requests,
				 "inputTokens", a->input, "outputTokens", a->output, "actualCostUsd", a->actual,
				 "baselineCostUsd", a->baseline, "savedUsd", a->saved, "autoRoutedCount", a->auto_routed,
				 "routingCostUsd", a->routing, "errorCount", a->errors, "durationMsTotal", a->dur_total,
				 "durationMsCount", a->dur_count);
	case AGG_CATEGORY:
		return json_pack("{s:I, s:f}", "requests", a->requests, "actualCostUsd", a->actual);
	default:
		return json_pack("{s:I, s:I, s:f}", "requests", a->requests, "tokens", a->input + a->output, "cost",
				 a->actual);
	}
}

/* --- writing a batch ----------------------------------------------------------------------------------- */

static void
drop(struct rec *r, const char *why)
{
	r->st |= ST_SKIP;
	atomic_fetch_add(&n_dropped, 1);
	metric_add(M_DROPPED, 1);
	log_error("analytics: requestlog %s dropped: %s", rec_id(r) ? rec_id(r) : "?", why);
}

static void
skip_duplicate(struct rec *r)
{
	r->st |= ST_SKIP;
	atomic_fetch_add(&n_duplicates, 1);
}

static void
mark_duplicates(struct rec *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (r[i].st & ST_SKIP)
			continue;
		for (size_t j = 0; j < i; j++) {
			if (!(r[j].st & ST_SKIP) && strcmp(rec_id(&r[i]), rec_id(&r[j])) == 0) {
				skip_duplicate(&r[i]);
				break;
			}
		}
	}
}

/* Records read back from a spool whose requestlog is in the store already are done: the requestlog is
 * written last.  One query per chunk. */
static enum prism_err
find_written(struct store *s, struct rec *r, size_t n, char *err, size_t errlen)
{
	json_t *ids = json_array();
	for (size_t i = 0; i < n; i++)
		if ((r[i].st & ST_SPOOLED) && !(r[i].st & ST_SKIP))
			json_array_append_new(ids, json_string(rec_id(&r[i])));
	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return PRISM_OK;
	}
	struct store_cond cond = { "_id", SOP_IN, ids };
	struct store_query q = { &cond, 1, NULL, false, 0, NULL };
	json_t *docs = NULL;
	char *next = NULL;
	enum prism_err e = s->ops->find(s, COLL_REQUESTLOGS, &q, &docs, &next, err, errlen);
	json_decref(ids);
	free(next);
	if (transient(e))
		return PRISM_E_STORE;
	size_t k;
	json_t *doc;
	json_array_foreach(docs, k, doc) {
		const char *id = json_string_value(json_object_get(doc, "_id"));
		for (size_t i = 0; id && i < n; i++)
			if ((r[i].st & ST_SPOOLED) && !(r[i].st & ST_SKIP) && strcmp(rec_id(&r[i]), id) == 0)
				skip_duplicate(&r[i]);
	}
	json_decref(docs);
	if (e)     /* a query the store cannot run: the inserts below meet the duplicates instead */
		log_warn("analytics: cannot look up spooled requestlogs: %s", err);
	return PRISM_OK;
}

struct group {
	enum agg_kind kind;
	char *keytext;
	json_t *key;
	struct agg_sum sum;
};

static void spool_save_pos(struct spool *sp, bool with_states, bool sync);

/* The aggregates not yet applied, summed per key; each successful upsert_inc marks the records it
 * covered (and, for a spool chunk, is noted in its .pos before the next write). */
static enum prism_err
apply_aggregates(struct store *s, struct rec *r, size_t n, struct spool *sp, char *err, size_t errlen)
{
	struct group *g = xcalloc(AGG_KINDS * n + 1, sizeof *g);
	long *member = xmalloc((AGG_KINDS * n + 1) * sizeof *member);   /* group of (record, kind) or -1 */
	size_t ng = 0;
	struct buf text;
	buf_init(&text, (size_t)-1);
	for (size_t i = 0; i < n; i++) {
		unsigned need = rec_need(&r[i]);
		for (int k = 0; k < AGG_KINDS; k++) {
			member[i * AGG_KINDS + (size_t)k] = -1;
			if ((r[i].st & ST_SKIP) || !(need & agg_bit[k]) || (r[i].st & agg_bit[k]))
				continue;
			buf_reset(&text);
			agg_key(r[i].lr, (enum agg_kind)k, &text, NULL);
			size_t j = 0;
			while (j < ng && strcmp(g[j].keytext, buf_cstr(&text)) != 0)
				j++;
			if (j == ng) {
				g[ng].kind = (enum agg_kind)k;
				g[ng].keytext = xstrdup(buf_cstr(&text));
				agg_key(r[i].lr, (enum agg_kind)k, NULL, &g[ng].key);
				ng++;
			}
			agg_add(r[i].lr, &g[j].sum);
			member[i * AGG_KINDS + (size_t)k] = (long)j;
		}
	}
	buf_free(&text);
	enum prism_err e = PRISM_OK;
	for (size_t j = 0; j < ng && !e; j++) {
		json_t *inc = agg_inc(g[j].kind, &g[j].sum);
		e = s->ops->upsert_inc(s, agg_coll[g[j].kind], g[j].key, inc, NULL, err, errlen);
		json_decref(inc);
		if (e == PRISM_E_BAD_REQUEST) {
			char *kt = json_dumps(g[j].key, JSON_COMPACT | JSON_SORT_KEYS);
			log_error("analytics: the store refused an aggregate of %s %s (%s); it is not counted",
				  store_coll_desc(agg_coll[g[j].kind])->name, kt ? kt : "?", err);
			free(kt);
			e = PRISM_OK;
		} else if (e) {
			e = PRISM_E_STORE;
			break;
		}
		for (size_t i = 0; i < n; i++)
			for (int k = 0; k < AGG_KINDS; k++)
				if (member[i * AGG_KINDS + (size_t)k] == (long)j)
					r[i].st |= agg_bit[k];
		if (sp)
			spool_save_pos(sp, true, false);
	}
	for (size_t j = 0; j < ng; j++) {
		free(g[j].keytext);
		json_decref(g[j].key);
	}
	free(g);
	free(member);
	return e;
}

/* The requestlogs of the records whose aggregates are in: insert_many, or one by one when the store meets
 * a duplicate (MongoDB inserts the documents before it, SQLite none) or refuses a document. */
static enum prism_err
insert_logs(struct store *s, struct rec *r, size_t n, char *err, size_t errlen)
{
	struct store_text *docs = xmalloc((n ? n : 1) * sizeof *docs);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!rec_complete(&r[i]))
			docs[k++] = (struct store_text){ r[i].lr->id, r[i].lr->text };
	enum prism_err e = k ? store_insert_texts(s, COLL_REQUESTLOGS, docs, k, err, errlen) : PRISM_OK;
	free(docs);
	if (k == 0)
		return PRISM_OK;
	if (e == PRISM_OK) {
		for (size_t i = 0; i < n; i++)
			r[i].st |= ST_INSERTED;
		atomic_fetch_add(&n_written, (long)k);
		return PRISM_OK;
	}
	if (transient(e))
		return PRISM_E_STORE;
	for (size_t i = 0; i < n; i++) {
		if (rec_complete(&r[i]))
			continue;
		struct store_text one = { r[i].lr->id, r[i].lr->text };
		e = store_insert_texts(s, COLL_REQUESTLOGS, &one, 1, err, errlen);
		if (e == PRISM_OK) {
			r[i].st |= ST_INSERTED;
			atomic_fetch_add(&n_written, 1);
		} else if (e == PRISM_E_CONFLICT) {
			/* Not found before its aggregates were applied, there now: only MongoDB's own partial
			 * insert of this batch can do that. */
			skip_duplicate(&r[i]);
		} else if (transient(e)) {
			return PRISM_E_STORE;
		} else {
			drop(&r[i], err);
		}
	}
	return PRISM_OK;
}

/* Brings every record as far as the store allows: aggregates first, the requestlog last, so that a
 * requestlog in the store means "done".  PRISM_OK: all complete; PRISM_E_STORE: the store failed (err
 * says why) and the records' states tell what is left.  sp: the spool the records come from (progress is
 * noted in its .pos), or NULL. */
static enum prism_err
write_batch(struct store *s, struct rec *r, size_t n, struct spool *sp, char *err, size_t errlen)
{
	if (!s) {
		snprintf(err, errlen, "the store is not connected");
		return PRISM_E_STORE;
	}
	mark_duplicates(r, n);
	enum prism_err e = find_written(s, r, n, err, errlen);
	if (!e)
		e = apply_aggregates(s, r, n, sp, err, errlen);
	if (!e)
		e = insert_logs(s, r, n, err, errlen);
	return e;
}

/* --- spool files --------------------------------------------------------------------------------------- */

static bool
spool_name_ok(const char *name)
{
	size_t n = strlen(name), p = strlen(SPOOL_PREFIX), s = strlen(SPOOL_SUFFIX);
	if (n <= p + s || strncmp(name, SPOOL_PREFIX, p) != 0 || strcmp(name + n - s, SPOOL_SUFFIX) != 0)
		return false;
	for (size_t i = p; i < n - s; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return false;
	return true;
}

static bool
mkdir_p(const char *dir)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
		return false;
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST)
			return false;
		*c = '/';
	}
	return mkdir(p, 0750) == 0 || errno == EEXIST;
}

static bool
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		data += w;
		len -= (size_t)w;
	}
	return true;
}

static void
pos_path(const struct spool *sp, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.*s%s", (int)(PATH_MAX - 8), sp->path, POS_SUFFIX);
}

/* Opens a new spool file for this process (spool_lock held).  It is created and locked under a hidden
 * name and then linked into place, so no other process ever sees it unlocked (it would take it for an
 * orphan). */
static bool
own_open(void)
{
	if (W.own.fd >= 0)
		return true;
	if (!W.dir[0]) {
		struct config *cfg = config_acquire();
		if (cfg)
			snprintf(W.dir, sizeof W.dir, "%.*s/spool", (int)(sizeof W.dir - 8), cfg->data_dir);
		config_release(cfg);
	}
	if (!W.dir[0] || !mkdir_p(W.dir)) {
		if (log_due(&last_io_log))
			log_error("analytics: cannot create the spool directory %s: %s", W.dir[0] ? W.dir : "(none)",
				  strerror(errno));
		return false;
	}
	char tmp[PATH_MAX];
	long pid = (long)getpid();
	snprintf(tmp, sizeof tmp, "%.*s/.analytics-%ld.new", (int)(PATH_MAX - 40), W.dir, pid);
	unlink(tmp);
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (log_due(&last_io_log))
			log_error("analytics: cannot create a spool file in %s: %s", W.dir, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return false;
	}
	for (int i = 0; i < 1000; i++) {
		char path[PATH_MAX];
		if (i == 0)
			snprintf(path, sizeof path, "%.*s/" SPOOL_PREFIX "%ld" SPOOL_SUFFIX, (int)(PATH_MAX - 64), W.dir, pid);
		else
			snprintf(path, sizeof path, "%.*s/" SPOOL_PREFIX "%ld-%d" SPOOL_SUFFIX, (int)(PATH_MAX - 64), W.dir,
				 pid, i);
		if (link(tmp, path) == 0) {
			unlink(tmp);
			memset(&W.own, 0, sizeof W.own);
			W.own.fd = fd;
			snprintf(W.own.path, sizeof W.own.path, "%s", path);
			char pos[PATH_MAX + 8];
			pos_path(&W.own, pos, sizeof pos);
			unlink(pos);
			return true;
		}
		if (errno != EEXIST)
			break;
	}
	if (log_due(&last_io_log))
		log_error("analytics: cannot create a spool file in %s: %s", W.dir, strerror(errno));
	close(fd);
	unlink(tmp);
	return false;
}

/* Appends the records that are not complete to the process's spool, with their progress, oldest first.
 * What cannot be kept (the spool is full, a record too large, a failed write) is counted as dropped. */
static void
spool_append(struct rec *r, size_t n)
{
	struct buf b;
	buf_init(&b, (size_t)ANALYTICS_SPOOL_MAX);
	long k = 0, lost = 0;
	for (size_t i = 0; i < n; i++) {
		if (rec_complete(&r[i]))
			continue;
		/* {"state":N,"doc":{"_id":"...",<the text's fields>}} */
		const char *fields = r[i].lr->text + 1;
		size_t at = b.len;
		if (buf_printf(&b, "{\"state\":%u,\"doc\":{\"_id\":\"%s\"%s", r[i].st & ST_PERSISTED, r[i].lr->id,
			       *fields == '}' ? "" : ",") || buf_puts(&b, fields) || buf_puts(&b, "}\n") ||
		    b.len - at > (size_t)ANALYTICS_MAX_RECORD) {
			b.len = at;
			if (b.data)
				b.data[at] = '\0';
			lost++;
		} else {
			k++;
		}
	}
	if (k == 0) {
		buf_free(&b);
		count_dropped(lost, "a record too large for the spool");
		return;
	}
	const char *why = NULL;
	pthread_mutex_lock(&W.spool_lock);
	if (!own_open()) {
		why = "no spool file";
	} else if ((off_t)b.len + W.own.size + W.others_size > ANALYTICS_SPOOL_MAX) {
		why = "the spool is full";
		if (log_due(&last_full_log))
			log_error("analytics: the spool in %s is full (%ld MiB): records are lost while the store is "
				  "down", W.dir, ANALYTICS_SPOOL_MAX / (1024 * 1024));
	} else if (!write_all(W.own.fd, b.data, b.len) || fdatasync(W.own.fd) != 0) {
		int saved = errno;
		why = "the spool file cannot be written";
		if (ftruncate(W.own.fd, W.own.size) != 0 && log_due(&last_io_log))
			log_error("analytics: cannot repair %s after a failed write: %s", W.own.path, strerror(errno));
		if (log_due(&last_io_log))
			log_error("analytics: cannot write %s: %s", W.own.path, strerror(saved));
	} else {
		W.own.size += (off_t)b.len;
		W.own.records += k;
		metric_add(M_SPOOL, k);
		atomic_store(&W.own_pending, true);
	}
	pthread_mutex_unlock(&W.spool_lock);
	buf_free(&b);
	if (why)
		lost += k;
	count_dropped(lost, why ? why : "a record too large for the spool");
}

/* Writes <spool>.pos: where to resume and, with_states, the progress of the chunk in flight.  It is
 * replaced with rename(), so a reader sees the old or the new one; sync: fdatasync'd first (when the store
 * failed in the middle of a chunk, which may then wait in the file for a long time). */
static void
spool_save_pos(struct spool *sp, bool with_states, bool sync)
{
	json_t *pos = json_pack("{s:I}", "offset", (json_int_t)(with_states && sp->nhead ? sp->head_off : sp->off));
	if (with_states && sp->nhead) {
		json_t *states = json_object();
		for (size_t i = 0; i < sp->nhead; i++) {
			unsigned st = sp->head[i].st & ST_PERSISTED;
			if (!(sp->head[i].st & ST_SKIP) && st)
				json_object_set_new(states, rec_id(&sp->head[i]), json_integer(st));
		}
		json_object_set_new(pos, "states", states);
	}
	char path[PATH_MAX + 8], tmp[PATH_MAX + 16];
	pos_path(sp, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	char *text = json_dumps(pos, JSON_COMPACT);
	json_decref(pos);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	bool ok = fd >= 0 && text && write_all(fd, text, strlen(text)) && (!sync || fdatasync(fd) == 0);
	if (fd >= 0)
		close(fd);
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		if (log_due(&last_io_log))
			log_error("analytics: cannot note the replay progress in %s: %s", path, strerror(errno));
	}
	free(text);
}

static void
spool_load_pos(struct spool *sp)
{
	char path[PATH_MAX + 8];
	pos_path(sp, path, sizeof path);
	struct stat st;
	if (stat(path, &st) != 0 || st.st_size > POS_MAX)
		return;
	json_t *pos = json_load_file(path, 0, NULL);
	json_t *off = json_object_get(pos, "offset");
	if (json_is_integer(off) && json_integer_value(off) > 0 && json_integer_value(off) <= (json_int_t)sp->size) {
		/* Only at the start of a line. */
		char c = 0;
		off_t o = (off_t)json_integer_value(off);
		if (pread(sp->fd, &c, 1, o - 1) == 1 && c == '\n')
			sp->off = o;
	}
	json_t *states = json_object_get(pos, "states");
	if (json_is_object(states))
		sp->carried = json_incref(states);
	json_decref(pos);
}

/* Lines (a last one without its newline included) from `from` to the end of the file. */
static long
count_lines(int fd, off_t from, off_t end)
{
	char *b = xmalloc(READ_BLOCK);
	long n = 0;
	char last = '\n';
	for (off_t o = from; o < end;) {
		ssize_t r = pread(fd, b, (size_t)(end - o < READ_BLOCK ? end - o : READ_BLOCK), o);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			n += b[i] == '\n';
		last = b[r - 1];
		o += r;
	}
	free(b);
	return n + (last != '\n');
}

/* One spool line: {"state":N,"doc":{...}} (a bare RequestLog is read as state 0). */
static bool
parse_line(const char *line, size_t len, struct spool *sp, struct rec *out)
{
	json_t *j = json_loadb(line, len, 0, NULL);
	json_t *doc = json_object_get(j, "doc");
	unsigned st = 0;
	if (json_is_object(doc)) {
		json_t *s = json_object_get(j, "state");
		st = json_is_integer(s) ? (unsigned)json_integer_value(s) & ST_PERSISTED : 0;
		json_incref(doc);
	} else {
		doc = json_is_object(j) ? json_incref(j) : NULL;
	}
	json_decref(j);
	const char *id = json_string_value(json_object_get(doc, "_id"));
	if (!doc || !store_id_valid(id) || !store_id_valid(json_string_value(json_object_get(doc, "tenantId")))) {
		json_decref(doc);
		return false;
	}
	json_t *carried = json_object_get(sp->carried, id);
	if (json_is_integer(carried)) {
		st = (unsigned)json_integer_value(carried) & ST_PERSISTED;
		json_object_del(sp->carried, id);
	}
	out->lr = logrec_make(doc);
	out->st = st | ST_SPOOLED;
	return out->lr != NULL;
}

/* Reads up to ANALYTICS_BATCH records from sp->off (not beyond `end`) into sp->head.  Lines that cannot be
 * read are skipped and counted as dropped, as is a last line without its newline: its writer died. */
static void
spool_read_chunk(struct spool *sp, off_t end)
{
	sp->head = xcalloc(ANALYTICS_BATCH, sizeof *sp->head);
	sp->nhead = 0;
	sp->head_lines = 0;
	sp->head_off = sp->off;
	size_t cap = READ_BLOCK, len = 0, start = 0;
	char *buf = xmalloc(cap);
	off_t base = sp->off;
	bool skipping = false;
	long broken = 0;
	while (sp->nhead < ANALYTICS_BATCH && base + (off_t)start < end) {
		char *nl = len > start ? memchr(buf + start, '\n', len - start) : NULL;
		if (!nl) {
			if (base + (off_t)len >= end) {          /* a last line without its newline */
				broken++;
				sp->head_lines++;
				start = len;
				break;
			}
			if (start > 0) {
				memmove(buf, buf + start, len - start);
				base += (off_t)start;
				len -= start;
				start = 0;
			}
			if (len > (size_t)ANALYTICS_MAX_RECORD) {   /* longer than any record we write */
				skipping = true;
				base += (off_t)len;
				len = 0;
			}
			if (len + READ_BLOCK > cap) {
				cap = len + READ_BLOCK;
				buf = xrealloc(buf, cap);
			}
			off_t want = end - (base + (off_t)len);
			ssize_t r = pread(sp->fd, buf + len, (size_t)(want < READ_BLOCK ? want : READ_BLOCK), base + (off_t)len);
			if (r <= 0) {                            /* the file shrank under us: stop here */
				end = base + (off_t)len;
				continue;
			}
			len += (size_t)r;
			continue;
		}
		size_t linelen = (size_t)(nl - (buf + start));
		sp->head_lines++;
		if (skipping || !parse_line(buf + start, linelen, sp, &sp->head[sp->nhead]))
			broken++;
		else
			sp->nhead++;
		skipping = false;
		start += linelen + 1;
	}
	sp->off = base + (off_t)start;
	free(buf);
	json_decref(sp->carried);
	sp->carried = NULL;
	if (broken) {
		log_warn("analytics: %ld unreadable line(s) in %s skipped", broken, sp->path);
		count_dropped(broken, "unreadable spool lines");
	}
}

static void
spool_records_done(struct spool *sp, long n)
{
	pthread_mutex_lock(&W.spool_lock);
	long d = sp->records < n ? sp->records : n;
	sp->records -= d;
	pthread_mutex_unlock(&W.spool_lock);
	metric_add(M_SPOOL, -d);
}

/* Everything of sp is replayed: the own spool is emptied (and kept, locked), an adopted one deleted. */
static void
spool_finish(struct spool *sp)
{
	char pos[PATH_MAX + 8];
	pos_path(sp, pos, sizeof pos);
	if (sp == &W.own) {
		pthread_mutex_lock(&W.spool_lock);
		if (W.own.off >= W.own.size && W.own.nhead == 0) {
			unlink(pos);
			if (ftruncate(W.own.fd, 0) == 0) {
				metric_add(M_SPOOL, -W.own.records);
				W.own.size = W.own.off = W.own.head_off = 0;
				W.own.records = 0;
				atomic_store(&W.own_pending, false);
			} else if (log_due(&last_io_log)) {
				log_error("analytics: cannot empty %s: %s", W.own.path, strerror(errno));
			}
		}
		pthread_mutex_unlock(&W.spool_lock);
		return;
	}
	unlink(pos);
	unlink(sp->path);
	close(sp->fd);
	pthread_mutex_lock(&W.spool_lock);
	sp->fd = -1;
	long left = sp->records;
	sp->records = 0;
	pthread_mutex_unlock(&W.spool_lock);
	metric_add(M_SPOOL, -left);
	log_info("analytics: %s replayed and removed", sp->path);
}

static off_t
spool_end(struct spool *sp)
{
	if (sp != &W.own)
		return sp->size;
	pthread_mutex_lock(&W.spool_lock);
	off_t end = W.own.size;
	pthread_mutex_unlock(&W.spool_lock);
	return end;
}

static void note_down(const char *why);
static void note_up(void);

/* One chunk of a spool to the store.  PRISM_E_STORE when the store failed (progress saved). */
static enum prism_err
replay_step(struct spool *sp)
{
	char err[ERRLEN];
	if (!store_current()) {
		note_down("the store is not connected");
		return PRISM_E_STORE;
	}
	if (sp->nhead == 0) {
		off_t end = spool_end(sp);
		if (sp->off >= end) {
			spool_finish(sp);
			return PRISM_OK;
		}
		spool_read_chunk(sp, end);
	}
	if (sp->nhead > 0 && write_batch(store_current(), sp->head, sp->nhead, sp, err, sizeof err) != PRISM_OK) {
		spool_save_pos(sp, true, true);
		note_down(err);
		return PRISM_E_STORE;
	}
	long done = 0;
	for (size_t i = 0; i < sp->nhead; i++)
		done += !(sp->head[i].st & ST_SKIP);
	atomic_fetch_add(&n_replayed, done);
	recs_free(sp->head, sp->nhead);
	sp->head = NULL;
	sp->nhead = 0;
	spool_records_done(sp, sp->head_lines);
	sp->head_lines = 0;
	note_up();
	if (sp->off >= spool_end(sp))
		spool_finish(sp);
	else
		spool_save_pos(sp, false, false);
	return PRISM_OK;
}

/* Looks for spools of processes that are gone (their lock is free) and adopts one; counts the others'
 * bytes for the spool bound. */
static void
adopt_scan(void)
{
	DIR *d = opendir(W.dir);
	if (!d)
		return;
	char own[PATH_MAX];
	pthread_mutex_lock(&W.spool_lock);
	snprintf(own, sizeof own, "%s", W.own.fd >= 0 ? W.own.path : "");
	pthread_mutex_unlock(&W.spool_lock);
	off_t others = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!spool_name_ok(de->d_name))
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s/%s", W.dir, de->d_name) >= (int)sizeof path || strcmp(path, own) == 0 ||
		    (W.adopted.fd >= 0 && strcmp(path, W.adopted.path) == 0))
			continue;
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat st;
		if (W.adopted.fd >= 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {    /* its process lives (or later) */
			if (fstat(fd, &st) == 0)
				others += st.st_size;
			close(fd);
			continue;
		}
		if (fstat(fd, &st) != 0 || st.st_nlink == 0) {                     /* deleted meanwhile */
			close(fd);
			continue;
		}
		struct spool *sp = &W.adopted;
		pthread_mutex_lock(&W.spool_lock);
		memset(sp, 0, sizeof *sp);
		sp->fd = fd;
		snprintf(sp->path, sizeof sp->path, "%s", path);
		sp->size = st.st_size;
		pthread_mutex_unlock(&W.spool_lock);
		if (st.st_size == 0) {
			spool_finish(sp);
			continue;
		}
		spool_load_pos(sp);
		long lines = count_lines(fd, sp->off, sp->size);
		pthread_mutex_lock(&W.spool_lock);
		sp->records = lines;
		pthread_mutex_unlock(&W.spool_lock);
		metric_add(M_SPOOL, lines);
		log_info("analytics: adopted %s (%ld record(s)) left by a process that is gone", path, lines);
	}
	closedir(d);
	pthread_mutex_lock(&W.spool_lock);
	W.others_size = others + (W.adopted.fd >= 0 ? W.adopted.size : 0);
	pthread_mutex_unlock(&W.spool_lock);
}

/* --- the writer thread ---------------------------------------------------------------------------------- */

/* The store failed: back off (doubling), or, while the process has no store connection yet (the
 * connector is still trying), look again every ANALYTICS_BACKOFF_MIN_MS: that costs nothing. */
static void
note_down(const char *why)
{
	bool connected = store_current() != NULL;
	pthread_mutex_lock(&W.lock);
	bool first = !W.down;
	W.down = true;
	W.backoff_ms = W.backoff_ms && connected ? W.backoff_ms * 2 : ANALYTICS_BACKOFF_MIN_MS;
	if (W.backoff_ms > ANALYTICS_BACKOFF_MAX_MS)
		W.backoff_ms = ANALYTICS_BACKOFF_MAX_MS;
	W.retry_at = clock_monotonic_ms() + W.backoff_ms;
	pthread_mutex_unlock(&W.lock);
	if (first && connected)
		log_error("analytics: the store is unavailable (%s); records go to the spool in %s until it answers", why,
			  W.dir);
	else if (first)
		log_info("analytics: no store connection yet; records wait in the spool in %s", W.dir);
}

static void
note_up(void)
{
	pthread_mutex_lock(&W.lock);
	bool was = W.down;
	W.down = false;
	W.backoff_ms = 0;
	W.retry_at = 0;
	pthread_mutex_unlock(&W.lock);
	if (was)
		log_info("analytics: the store answers again; the spool is being replayed");
}

/* Takes up to ANALYTICS_BATCH records off the queue (W.lock held). */
static struct rec *
queue_pop(size_t *n)
{
	size_t k = W.qlen < ANALYTICS_BATCH ? W.qlen : ANALYTICS_BATCH;
	struct rec *r = xcalloc(k ? k : 1, sizeof *r);
	for (size_t i = 0; i < k; i++) {
		r[i].lr = W.q[W.qhead];
		W.q[W.qhead] = NULL;
		W.qhead = (W.qhead + 1) % ANALYTICS_QUEUE_MAX;
	}
	W.qlen -= k;
	metric_add(M_QUEUE, -(long)k);
	*n = k;
	return r;
}

/* A batch from the queue to the store, or to the spool when that fails.  Called without W.lock. */
static void
write_live(struct rec *r, size_t n)
{
	char err[ERRLEN];
	if (write_batch(store_current(), r, n, NULL, err, sizeof err) != PRISM_OK) {
		spool_append(r, n);
		note_down(err);
	} else {
		note_up();
	}
	recs_free(r, n);
}

/* At stop (W.lock held): the queue to the store while it answers and nothing waits in the spool, else
 * behind the spool; the progress of a chunk in flight is saved; an empty own spool is removed. */
static void
final_flush(void)
{
	while (W.qlen > 0) {
		size_t n;
		struct rec *r = queue_pop(&n);
		bool to_spool = W.down || atomic_load(&W.own_pending);
		pthread_mutex_unlock(&W.lock);
		if (to_spool) {
			spool_append(r, n);
			recs_free(r, n);
		} else {
			write_live(r, n);
		}
		pthread_mutex_lock(&W.lock);
	}
	pthread_mutex_unlock(&W.lock);
	bool own_done = W.own.nhead == 0;
	struct spool *sps[2] = { &W.own, &W.adopted };
	for (int i = 0; i < 2; i++) {
		struct spool *sp = sps[i];
		if (sp->fd >= 0 && sp->nhead)
			spool_save_pos(sp, true, true);
		recs_free(sp->head, sp->nhead);
		sp->head = NULL;
		sp->nhead = 0;
		json_decref(sp->carried);
		sp->carried = NULL;
	}
	if (W.adopted.fd >= 0) {
		/* Released for the next process; its records are counted again by whoever adopts it. */
		close(W.adopted.fd);
		pthread_mutex_lock(&W.spool_lock);
		long left = W.adopted.records;
		W.adopted.fd = -1;
		W.adopted.records = 0;
		pthread_mutex_unlock(&W.spool_lock);
		metric_add(M_SPOOL, -left);
	}
	pthread_mutex_lock(&W.spool_lock);
	if (W.own.fd >= 0) {
		if (own_done && W.own.off >= W.own.size) {
			char pos[PATH_MAX + 8];
			pos_path(&W.own, pos, sizeof pos);
			unlink(pos);
			unlink(W.own.path);
		} else {
			log_info("analytics: %ld record(s) left in %s for the next process", W.own.records, W.own.path);
		}
		metric_add(M_SPOOL, -W.own.records);
		close(W.own.fd);
		W.own.fd = -1;
		W.own.records = 0;
		W.own.size = W.own.off = 0;
		atomic_store(&W.own_pending, false);
	}
	pthread_mutex_unlock(&W.spool_lock);
	pthread_mutex_lock(&W.lock);
}

static void *
writer_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&W.lock);
	while (!W.stopping) {
		int64_t now = clock_monotonic_ms();
		bool ready = W.qlen >= ANALYTICS_BATCH || (W.qlen > 0 && now - W.qt[W.qhead] >= ANALYTICS_FLUSH_MS);
		bool waiting = W.down && now < W.retry_at;
		bool own_pending = atomic_load(&W.own_pending);
		size_t n;
		struct rec *r;
		if (ready && (waiting || own_pending)) {
			/* Behind what the spool holds already: order is kept, and the records are safe on disk. */
			r = queue_pop(&n);
			W.busy = true;
			pthread_mutex_unlock(&W.lock);
			spool_append(r, n);
			recs_free(r, n);
		} else if (!waiting && own_pending) {
			W.busy = true;
			pthread_mutex_unlock(&W.lock);
			replay_step(&W.own);
		} else if (ready) {
			r = queue_pop(&n);
			W.busy = true;
			pthread_mutex_unlock(&W.lock);
			write_live(r, n);
		} else if (!waiting && W.adopted.fd >= 0) {
			W.busy = true;
			pthread_mutex_unlock(&W.lock);
			replay_step(&W.adopted);
		} else if (now >= W.next_scan) {
			W.busy = true;
			pthread_mutex_unlock(&W.lock);
			adopt_scan();
			pthread_mutex_lock(&W.lock);
			W.next_scan = clock_monotonic_ms() + ANALYTICS_ADOPT_EVERY_MS;
			W.scans++;
			W.busy = false;
			continue;
		} else {
			pthread_cond_broadcast(&W.idle);
			int64_t until = W.next_scan;
			if (W.qlen > 0 && W.qt[W.qhead] + ANALYTICS_FLUSH_MS < until)
				until = W.qt[W.qhead] + ANALYTICS_FLUSH_MS;
			if (waiting && (own_pending || W.adopted.fd >= 0) && W.retry_at < until)
				until = W.retry_at;
			wait_until(&W.wake, until);
			continue;
		}
		pthread_mutex_lock(&W.lock);
		W.busy = false;
	}
	final_flush();
	W.busy = false;
	pthread_cond_broadcast(&W.idle);
	pthread_mutex_unlock(&W.lock);
	return NULL;
}

/* --- the interface ------------------------------------------------------------------------------------- */

enum prism_err
analytics_start(const char *spool_dir, char *err, size_t errlen)
{
	pthread_once(&cond_once, init_conds);
	if (!spool_dir || !*spool_dir || strlen(spool_dir) > PATH_MAX - 64) {
		snprintf(err, errlen, "analytics: the spool directory must be a path of at most %d bytes", PATH_MAX - 64);
		return PRISM_E_CONFIG;
	}
	if (!mkdir_p(spool_dir)) {
		snprintf(err, errlen, "analytics: cannot create the spool directory %s: %s", spool_dir, strerror(errno));
		return PRISM_E_IO;
	}
	pthread_mutex_lock(&W.lock);
	if (W.started) {
		pthread_mutex_unlock(&W.lock);
		snprintf(err, errlen, "analytics: the writer is already running");
		return PRISM_E_INTERNAL;
	}
	pthread_mutex_lock(&W.spool_lock);
	if (W.own.fd < 0)
		snprintf(W.dir, sizeof W.dir, "%s", spool_dir);
	pthread_mutex_unlock(&W.spool_lock);
	W.q = xcalloc(ANALYTICS_QUEUE_MAX, sizeof *W.q);
	W.qt = xcalloc(ANALYTICS_QUEUE_MAX, sizeof *W.qt);
	W.qhead = W.qlen = 0;
	W.stopping = W.busy = W.down = false;
	W.retry_at = W.next_scan = 0;
	W.scans = 0;
	W.backoff_ms = 0;
	atomic_store(&n_written, 0);
	atomic_store(&n_replayed, 0);
	atomic_store(&n_dropped, 0);
	atomic_store(&n_duplicates, 0);
	int rc = pthread_create(&W.thread, NULL, writer_main, NULL);
	if (rc) {
		free(W.q);
		free(W.qt);
		W.q = NULL;
		W.qt = NULL;
		pthread_mutex_unlock(&W.lock);
		snprintf(err, errlen, "analytics: cannot start the writer thread: %s", strerror(rc));
		return PRISM_E_INTERNAL;
	}
	W.started = true;
	pthread_mutex_unlock(&W.lock);
	return PRISM_OK;
}

/* The fields the writer relies on; false (the record is dropped) when they cannot be made right. */
static bool
validate(json_t *doc)
{
	if (!json_is_object(doc))
		return false;
	json_t *id = json_object_get(doc, "_id");
	if (!id) {
		char fresh[25];
		store_new_id(fresh);
		json_object_set_new(doc, "_id", json_string(fresh));
	} else if (!store_id_valid(json_string_value(id))) {
		return false;
	}
	if (!store_id_valid(json_string_value(json_object_get(doc, "tenantId"))))
		return false;
	int64_t ms;
	const char *ts = json_string_value(json_object_get(doc, "timestamp"));
	if (!ts || clock_parse_iso8601(ts, &ms) != 0) {
		char now[32];
		store_now_iso(now);
		json_object_set_new(doc, "timestamp", json_string(now));
	}
	return true;
}

static void submit(struct logrec *lr);

void
analytics_submit(json_t *requestlog)
{
	if (!validate(requestlog)) {
		json_decref(requestlog);
		count_dropped(1, "a RequestLog without a valid _id or tenantId");
		return;
	}
	submit(logrec_make(requestlog));
}

void
analytics_submit_text(const struct analytics_keys *k, const char *text, size_t len)
{
	if (!store_id_valid(k->id) || !store_id_valid(k->tenant)) {
		count_dropped(1, "a RequestLog without a valid _id or tenantId");
		return;
	}
	if (len < 2 || text[0] != '{' || text[len - 1] != '}' || memchr(text, '\n', len)) {
		count_dropped(1, "a RequestLog text that is not one JSON object on one line");
		return;
	}
	submit(logrec_of(k, text, len));
}

/* Queues lr (NULL: out of memory, counted). */
static void
submit(struct logrec *lr)
{
	if (!lr) {
		count_dropped(1, "no memory for a RequestLog");
		return;
	}
	pthread_mutex_lock(&W.lock);
	if (!W.started || W.stopping) {
		/* No writer (a CGI process, or one that is stopping): written here and now, or spooled for another
		 * process to replay. */
		pthread_mutex_unlock(&W.lock);
		struct rec *r = xcalloc(1, sizeof *r);
		r->lr = lr;
		char err[ERRLEN];
		if (write_batch(store_current(), r, 1, NULL, err, sizeof err) != PRISM_OK)
			spool_append(r, 1);
		recs_free(r, 1);
		return;
	}
	if (W.qlen >= ANALYTICS_QUEUE_MAX) {
		/* Overflow: the queue and this record go to the spool, in order (the writer replays it first). */
		size_t n = W.qlen + 1, k;
		struct rec *all = xcalloc(n, sizeof *all);
		while (W.qlen > 0) {
			struct rec *part = queue_pop(&k);
			memcpy(all + (n - 1 - W.qlen - k), part, k * sizeof *part);
			free(part);
		}
		all[n - 1].lr = lr;
		spool_append(all, n);
		recs_free(all, n);
		pthread_cond_signal(&W.wake);
		pthread_mutex_unlock(&W.lock);
		return;
	}
	size_t slot = (W.qhead + W.qlen) % ANALYTICS_QUEUE_MAX;
	W.q[slot] = lr;
	W.qt[slot] = clock_monotonic_ms();
	W.qlen++;
	metric_add(M_QUEUE, 1);
	if (W.qlen == 1 || W.qlen == ANALYTICS_BATCH)
		pthread_cond_signal(&W.wake);
	pthread_mutex_unlock(&W.lock);
}

void
analytics_stop(void)
{
	pthread_mutex_lock(&W.lock);
	if (!W.started) {
		pthread_mutex_unlock(&W.lock);
		return;
	}
	W.stopping = true;
	pthread_cond_signal(&W.wake);
	pthread_mutex_unlock(&W.lock);
	pthread_join(W.thread, NULL);
	pthread_mutex_lock(&W.lock);
	free(W.q);
	free(W.qt);
	W.q = NULL;
	W.qt = NULL;
	W.started = false;
	W.stopping = false;
	pthread_mutex_unlock(&W.lock);
}

bool
analytics_drain(long timeout_ms)
{
	pthread_once(&cond_once, init_conds);
	int64_t deadline = clock_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	pthread_mutex_lock(&W.lock);
	bool empty = !W.started && !atomic_load(&W.own_pending);
	unsigned long scans = W.scans;
	if (W.started) {
		/* One early retry and a look for orphaned spools now: the caller wants everything written. */
		W.retry_at = 0;
		W.next_scan = 0;
		W.qt[W.qhead] = W.qlen ? 0 : W.qt[W.qhead];
		pthread_cond_signal(&W.wake);
	}
	for (;;) {
		if (!W.started)
			break;
		empty = W.qlen == 0 && !W.busy && !atomic_load(&W.own_pending) && W.adopted.fd < 0 && W.scans != scans;
		if (empty || clock_monotonic_ms() >= deadline)
			break;
		wait_until(&W.idle, deadline);
	}
	pthread_mutex_unlock(&W.lock);
	return empty;
}

void
analytics_stats(struct analytics_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&W.lock);
	out->queued = (long)W.qlen;
	out->store_down = W.down;
	pthread_mutex_unlock(&W.lock);
	pthread_mutex_lock(&W.spool_lock);
	out->spooled = W.own.records + W.adopted.records;
	pthread_mutex_unlock(&W.spool_lock);
	out->written = atomic_load(&n_written);
	out->replayed = atomic_load(&n_replayed);
	out->dropped = atomic_load(&n_dropped);
	out->duplicates = atomic_load(&n_duplicates);
}
