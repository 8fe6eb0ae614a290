/* metrics.h -- counters and histograms in shared memory, aggregated across the pool, in Prometheus text.
 *
 * Values are C11 atomic_long (lock-free, valid across processes): metrics_inc and metrics_observe never
 * take a lock.  A series is a (family, label set) pair; label sets are strings in Prometheus syntax
 * (route="/v1/chat/completions",status="200") interned into a bounded table of SHM_LABELS entries and
 * named by a small integer id.  Interning a new label set takes the table's lock; looking one up is
 * lock-free (an open-addressing index published with release/acquire).  Once the table is full, new label
 * sets get id 0, rendered as {overflow="true"}, so a flood of distinct labels can cost accuracy but never
 * memory.  Histograms have fixed bucket bounds in microseconds and an integer sum in microseconds; they
 * are rendered in seconds, and _count is derived from the buckets so it always equals the +Inf bucket.
 *
 * To add a family: append to the enum and to the table in metrics.c (SHM_COUNTERS / SHM_HISTOGRAMS bound
 * them; raising those bumps SHM_LAYOUT_VERSION).  Thread- and process-safe.
 */
#ifndef PRISM_SHM_METRICS_H
#define PRISM_SHM_METRICS_H

#include <stdint.h>

#include "shm/segment.h"
#include "util/buf.h"
#include "util/err.h"

enum metrics_counter {
	METRIC_REQUESTS = 0,          /* prism_requests_total{route,status} */
	METRIC_RATE_LIMITED = 1,      /* prism_rate_limited_total{scope} */
	METRIC_GW_REQUESTS = 2,       /* prism_gateway_requests_total{tenant,model,status} */
	METRIC_GW_TOKENS = 3,         /* prism_gateway_tokens_total{tenant,direction} */
	METRIC_GW_COST = 4,           /* prism_gateway_cost_microdollars_total{tenant} */
	METRIC_UPSTREAM_ERRORS = 5,   /* prism_upstream_errors_total{provider,class} */
	METRIC_ANALYTICS_PENDING = 6, /* prism_analytics_pending_records{where="queue"|"spool"} (a gauge) */
	METRIC_ANALYTICS_DROPPED = 7, /* prism_analytics_dropped_records_total */
	METRIC_COUNTER_COUNT
};

enum metrics_histogram {
	METRIC_REQUEST_DURATION = 0,  /* prism_request_duration_seconds{route} */
	METRIC_UPSTREAM_DURATION = 1, /* prism_upstream_duration_seconds{provider} */
	METRIC_HISTOGRAM_COUNT
};

#define METRICS_LABEL_OVERFLOW 0

/* The id of a label set ("" for none), interning it if new.  Returns METRICS_LABEL_OVERFLOW when the
 * table is full or the text is not acceptable (too long, control characters).  Callers on a hot path may
 * cache the id: ids never change for the life of the segment. */
int metrics_label_id(struct shm_segment *seg, const char *labelset);
/* Formats a label set from NULL-terminated name/value pairs, escaping values (\\, \", \n):
 * (const char *[]){ "route", "/v1/x", "status", "200", NULL } -> route="/v1/x",status="200".
 * Errors: PRISM_E_BAD_REQUEST (a name that is not [a-zA-Z_][a-zA-Z0-9_]*), PRISM_E_TOO_LARGE. */
enum prism_err metrics_labels(char *out, size_t outlen, const char *const *kv);

void metrics_inc(struct shm_segment *seg, enum metrics_counter c, int label, long n);
void metrics_observe(struct shm_segment *seg, enum metrics_histogram h, int label, int64_t us);
/* Current value of one counter series (tests, `prismctl shm`). */
long metrics_counter_value(struct shm_segment *seg, enum metrics_counter c, int label);

/* Appends the text exposition format 0.0.4 of every family, the shared-memory health counters and
 * prism_breaker_state{provider} (0 closed, 1 open, 2 half-open).  Errors: PRISM_E_TOO_LARGE from out. */
enum prism_err metrics_render_prometheus(struct shm_segment *seg, struct buf *out);

#endif
