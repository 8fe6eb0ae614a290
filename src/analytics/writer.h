/* writer.h -- lossless, non-blocking analytics: one RequestLog per gateway request plus the daily
 * aggregates, written by a per-process writer thread in batches.
 *
 * analytics_submit() never blocks on the store: it appends the record to an in-memory queue (bounded by
 * ANALYTICS_QUEUE_MAX; beyond it records go straight to the spool file).  The writer thread takes up to
 * ANALYTICS_BATCH records at a time and writes the requestlogs (insert_many) and the daily aggregates
 * (upsert_inc, summed per key over the batch): dailystats (date, tenantId, routedModel), dailycategorystats
 * (date, tenantId, category, costTier; successful requests with a category) and dailyuserstats (date,
 * tenantId, userName; when userName is set), the date being the UTC day of the record's timestamp.
 * While the store is down (or a write fails), records are appended to the spool
 * (<data_dir>/spool/analytics-<pid>.jsonl, one JSON record per line, fsync'd per batch) and replayed in
 * order, oldest first, once the store answers again (retries back off from ANALYTICS_BACKOFF_MIN_MS to
 * ANALYTICS_BACKOFF_MAX_MS) — including spool files left by processes that are gone (any process of the
 * host may adopt an orphaned spool; an flock on the file makes adoption exclusive).
 * A record is written once: the requestlog _id is assigned at submit time; its aggregates are applied
 * first and its requestlog last, so a replay that finds the requestlog in the store skips the record, and
 * the progress of a record between those writes travels with it (in memory, in its spool line, in the
 * spool's .pos checkpoint) -- see writer.c for the one remaining window.  analytics_stop() (clean
 * shutdown) flushes the queue to the store, or to the spool when the store is down.
 *
 * Thread-safe; metrics: queue depth and spooled records go to the shm metrics.
 */
#ifndef PRISM_ANALYTICS_WRITER_H
#define PRISM_ANALYTICS_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

#define ANALYTICS_QUEUE_MAX 10000
#define ANALYTICS_BATCH 200
#define ANALYTICS_FLUSH_MS 200            /* a partial batch waits at most this long */
#define ANALYTICS_SPOOL_MAX (1024L * 1024 * 1024)   /* all spool files of the directory together */
#define ANALYTICS_MAX_RECORD (4L * 1024 * 1024)     /* one spooled record (one line); larger ones are dropped */
#define ANALYTICS_BACKOFF_MIN_MS 250      /* store retries while it is down: doubling ... */
#define ANALYTICS_BACKOFF_MAX_MS 10000    /* ... up to this */
#define ANALYTICS_ADOPT_EVERY_MS 10000    /* how often the spool directory is scanned for orphaned spools */

/* Starts the writer thread of this process; spool_dir is created (0750) when missing. */
enum prism_err analytics_start(const char *spool_dir, char *err, size_t errlen);
/* Queues one RequestLog document (stolen).  It must have: _id (24 hex), tenantId, timestamp (ISO),
 * routedModel, status ("success"|"error"), inputTokens, outputTokens, actualCostUsd (number, USD); the
 * daily aggregates are derived from these plus baselineCostUsd (default: actualCostUsd), savedUsd
 * (default: baseline - actual), routingCostUsd, isAutoRouted, durationMs, category, costTier and userName
 * when present.  A missing _id or timestamp is filled in; a record without a valid tenantId is dropped
 * (counted).  Without a running writer (a CGI process, or one that is stopping) the record is written
 * right here, or spooled for another process to replay. */
void analytics_submit(json_t *requestlog);
/* What the daily aggregates need of a RequestLog, from its maker (analytics_submit reads them from the
 * document): its _id and tenantId (24 hex each), the time of its timestamp, whether its status is "error",
 * isAutoRouted, actualCostUsd, baselineCostUsd, savedUsd and routingCostUsd (USD), inputTokens,
 * outputTokens, durationMs, and routedModel (NULL or "": "none"), category and userName (NULL unless
 * non-empty) and costTier (NULL when the document has none). */
struct analytics_keys {
	const char *id, *tenant;
	int64_t time_ms;
	bool error, auto_routed;
	double actual, baseline, saved, routing;
	int64_t input, output, dur;
	const char *model, *category, *tier, *user;
};
/* Queues one RequestLog given as its compact JSON text without "_id" (len bytes: one object on one line)
 * and its keys, which must agree with it (the text is copied).  Otherwise as analytics_submit, except that
 * nothing is filled in: a record without a valid id or tenant, or a text that is not one line, is dropped
 * (counted). */
void analytics_submit_text(const struct analytics_keys *k, const char *text, size_t len);
/* Flushes and stops the thread (clean shutdown): everything queued is in the store or the spool after it. */
void analytics_stop(void);
/* Waits until the queue and the spool are empty or timeout_ms passes; true when empty (for tests, drain). */
bool analytics_drain(long timeout_ms);

/* This process's counters (since analytics_start).  queued: records in the queue now; spooled: records
 * waiting in the spool files this process holds (its own and an adopted one); written: requestlogs inserted;
 * replayed: spooled records completed; dropped: records lost (spool full, unreadable spool line, refused by
 * the store); duplicates: spooled records found already written and skipped; store_down: in back-off. */
struct analytics_stats {
	long queued, written, spooled, replayed, dropped;
	long duplicates;
	bool store_down;
};
void analytics_stats(struct analytics_stats *out);

#endif
