/* store_bench.c -- analytics write throughput of a store backend (not a test; `make bench`).
 *
 *   store_bench sqlite:/path/prism.db [records]
 *   store_bench mongodb://127.0.0.1:27017/bench [records]
 *
 * Writes `records` request logs the way the analytics writer does (insert_many in batches of 100), then
 * the same number of daily-stat increments (upsert_inc over 3 dimensions: model, category, user), with
 * THREADS writer threads (one analytics writer per worker process; 2 processes by default), and prints
 * backend, records, logs/s, increments/s and the thread count, tab-separated.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/parse.h"

#ifndef THREADS
#define THREADS 2
#endif
#define BATCH 100

static struct store *st;
static long per_thread;

static json_t *
log_doc(long i)
{
	char ts[32];
	store_now_iso(ts);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:b, s:s, s:i, s:b, s:s,"
			 " s:{s:i, s:b, s:b, s:i, s:[s], s:[s]}}",
			 "tenantId", "65a1b2c3d4e5f60718293a4b", "timestamp", ts, "sessionId", "sp-0123456789abcdef-team-a",
			 "userName", i % 7 ? "alice" : "bob", "requestedModel", "auto", "routedModel",
			 i % 3 ? "gpt-4o-mini" : "gpt-4o", "category", "coding", "inputTokens", (int)(i % 5000),
			 "outputTokens", 350, "actualCostUsd", 0.00123, "baselineCostUsd", 0.0042, "savedUsd", 0.00297,
			 "isAutoRouted", 1, "costTier", "medium", "durationMs", 812, "streaming", 1, "status", "success",
			 "routingSignals", "totalTokens", 1234, "hasImages", 0, "hasToolCalls", 1, "conversationTurns", 3,
			 "detectedDomains", "code", "detectedLanguages", "python");
}

static void *
insert_logs(void *arg)
{
	(void)arg;
	char err[256];
	for (long done = 0; done < per_thread; done += BATCH) {
		json_t *batch = json_array();
		for (long k = 0; k < BATCH; k++)
			json_array_append_new(batch, log_doc(done + k));
		if (st->ops->insert_many(st, COLL_REQUESTLOGS, batch, err, sizeof err)) {
			fprintf(stderr, "insert_many: %s\n", err);
			exit(1);
		}
		json_decref(batch);
	}
	return NULL;
}

static void *
increment(void *arg)
{
	long t = (long)(intptr_t)arg;
	char err[256], day[16];
	clock_utc_day(clock_realtime_ms(), day, sizeof day);
	static const char *const models[] = { "gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama3" };
	for (long i = 0; i < per_thread; i++) {
		enum store_coll c = (enum store_coll[]){ COLL_DAILYSTATS, COLL_DAILYCATEGORYSTATS, COLL_DAILYUSERSTATS }[i % 3];
		json_t *key;
		if (c == COLL_DAILYSTATS)
			key = json_pack("{s:s, s:s, s:s}", "date", day, "tenantId", "65a1b2c3d4e5f60718293a4b", "routedModel",
					models[(i + t) % 4]);
		else if (c == COLL_DAILYCATEGORYSTATS)
			key = json_pack("{s:s, s:s, s:s, s:s}", "date", day, "tenantId", "65a1b2c3d4e5f60718293a4b", "category",
					"coding", "costTier", "medium");
		else
			key = json_pack("{s:s, s:s, s:s}", "date", day, "tenantId", "65a1b2c3d4e5f60718293a4b", "userName",
					i % 2 ? "alice" : "bob");
		json_t *inc = json_pack("{s:i, s:i, s:i, s:f}", "requests", 1, "inputTokens", 1000, "outputTokens", 350,
					"actualCostUsd", 0.00123);
		if (st->ops->upsert_inc(st, c, key, inc, NULL, err, sizeof err)) {
			fprintf(stderr, "upsert_inc: %s\n", err);
			exit(1);
		}
		json_decref(key);
		json_decref(inc);
	}
	return NULL;
}

static double
run(void *(*fn)(void *))
{
	pthread_t th[THREADS];
	int64_t t0 = clock_monotonic_us();
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	double secs = (double)(clock_monotonic_us() - t0) / 1e6;
	return (double)(per_thread * THREADS) / secs;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: store_bench sqlite:/path | mongodb://host:port/db [records]\n");
		return 2;
	}
	long records = 40000;
	if (argc > 2 && parse_long(argv[2], BATCH * THREADS, 100000000, &records)) {
		fprintf(stderr, "records must be a number >= %d\n", BATCH * THREADS);
		return 2;
	}
	per_thread = records / THREADS / BATCH * BATCH;
	char err[512];
	enum prism_err e = strncmp(argv[1], "sqlite:", 7) == 0 ? store_sqlite_open(argv[1] + 7, 10000, &st, err, sizeof err)
							       : store_mongo_open(argv[1], 10000, &st, err, sizeof err);
	int applied;
	if (e || st->ops->migrate(st, &applied, err, sizeof err)) {
		fprintf(stderr, "store: %s\n", err);
		return 1;
	}
	double logs = run(insert_logs);
	double incs = run(increment);
	printf("%s\t%ld\t%.0f\t%.0f\t%d\n", st->ops->name, per_thread * THREADS, logs, incs, THREADS);
	store_close(st);
	return 0;
}
