/* metrics.c -- see metrics.h. */
#include "config.h"
#include "shm/metrics.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "shm/breaker.h"
#include "shm/tenantcache.h"
#include "util/clock.h"

_Static_assert(METRIC_COUNTER_COUNT <= SHM_COUNTERS, "raise SHM_COUNTERS (and SHM_LAYOUT_VERSION)");
_Static_assert(METRIC_HISTOGRAM_COUNT <= SHM_HISTOGRAMS, "raise SHM_HISTOGRAMS (and SHM_LAYOUT_VERSION)");

struct family {
	const char *name;
	const char *help;
};

static const struct family counter_family[METRIC_COUNTER_COUNT] = {
	[METRIC_REQUESTS] = { "prism_requests_total", "Requests answered, by route and HTTP status." },
	[METRIC_RATE_LIMITED] = { "prism_rate_limited_total", "Requests refused by a rate limit, by scope." },
	[METRIC_GW_REQUESTS] = { "prism_gateway_requests_total",
				 "Gateway requests of known tenants, by tenant, model and outcome (success, error, client_gone)." },
	[METRIC_GW_TOKENS] = { "prism_gateway_tokens_total", "Tokens of gateway requests, by tenant and direction." },
	[METRIC_GW_COST] = { "prism_gateway_cost_microdollars_total",
			     "Cost of gateway requests in micro-dollars (1e-6 USD), by tenant." },
	[METRIC_UPSTREAM_ERRORS] = { "prism_upstream_errors_total",
				     "Failed provider calls, by provider slug and error class." },
	[METRIC_ANALYTICS_PENDING] = { "prism_analytics_pending_records",
				       "Analytics records not yet in the store: in the writers' queues or in spool files." },
	[METRIC_ANALYTICS_DROPPED] = { "prism_analytics_dropped_records_total",
				       "Analytics records lost (spool full or unwritable, unreadable spool lines, refused "
				       "by the store)." },
};

/* Families of the counter table that are gauges (values that also go down). */
static const bool counter_is_gauge[METRIC_COUNTER_COUNT] = {
	[METRIC_ANALYTICS_PENDING] = true,
};

static const struct family hist_family[METRIC_HISTOGRAM_COUNT] = {
	[METRIC_REQUEST_DURATION] = { "prism_request_duration_seconds",
				      "Time from the start of a request to its last byte." },
	[METRIC_UPSTREAM_DURATION] = { "prism_upstream_duration_seconds",
				       "Duration of one provider call (to the end of the answer or stream), by provider slug." },
};

/* Upper bounds in microseconds; the last bucket (+Inf) takes the rest. */
static const int64_t bounds_us[SHM_HIST_BUCKETS - 1] = {
	1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 120000000,
};

static bool
label_text_ok(const char *s, size_t n)
{
	if (n >= SHM_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static int
lookup(struct shm_metrics_area *mx, uint64_t h, const char *text)
{
	uint32_t pos = (uint32_t)h & (SHM_LABEL_INDEX - 1);
	for (int i = 0; i < SHM_LABEL_INDEX; i++) {
		int v = atomic_load_explicit(&mx->index[pos], memory_order_acquire);
		if (v == 0)
			return -1;
		const struct shm_label *l = &mx->label[v - 1];
		if (l->hash == h && strcmp(l->text, text) == 0)
			return v - 1;
		pos = (pos + 1) & (SHM_LABEL_INDEX - 1);
	}
	return -1;
}

int
metrics_label_id(struct shm_segment *seg, const char *labelset)
{
	size_t n = strlen(labelset);
	if (!label_text_ok(labelset, n))
		return METRICS_LABEL_OVERFLOW;
	struct shm_metrics_area *mx = &seg->map->mx;
	uint64_t h = shm_hash(seg, labelset, n);
	int id = lookup(mx, h, labelset);
	if (id >= 0)
		return id;
	/* A holder that died here left at most an unpublished entry, which the next writer overwrites, or a
	 * published id without an index entry, which is only a wasted id: nothing to repair. */
	shm_lock(seg, &mx->lock.m, NULL, NULL);
	id = lookup(mx, h, labelset);
	if (id < 0) {
		int next = atomic_load_explicit(&mx->nlabels, memory_order_relaxed);
		if (next >= SHM_LABELS) {
			id = METRICS_LABEL_OVERFLOW;
		} else {
			struct shm_label *l = &mx->label[next];
			l->hash = h;
			memcpy(l->text, labelset, n + 1);
			atomic_store_explicit(&mx->nlabels, next + 1, memory_order_release);
			uint32_t pos = (uint32_t)h & (SHM_LABEL_INDEX - 1);
			while (atomic_load_explicit(&mx->index[pos], memory_order_relaxed) != 0)
				pos = (pos + 1) & (SHM_LABEL_INDEX - 1);
			atomic_store_explicit(&mx->index[pos], next + 1, memory_order_release);
			id = next;
		}
	}
	shm_unlock(&mx->lock.m);
	return id;
}

enum prism_err
metrics_labels(char *out, size_t outlen, const char *const *kv)
{
	size_t o = 0;
#define PUT(ch) do { if (o + 1 >= outlen) return PRISM_E_TOO_LARGE; out[o++] = (ch); } while (0)
	if (outlen == 0)
		return PRISM_E_TOO_LARGE;
	for (size_t i = 0; kv[i] && kv[i + 1]; i += 2) {
		const char *k = kv[i], *v = kv[i + 1];
		if (!(isalpha((unsigned char)k[0]) || k[0] == '_'))
			return PRISM_E_BAD_REQUEST;
		for (const char *p = k; *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '_'))
				return PRISM_E_BAD_REQUEST;
		if (i > 0)
			PUT(',');
		for (const char *p = k; *p; p++)
			PUT(*p);
		PUT('=');
		PUT('"');
		for (const char *p = v; *p; p++) {
			if (*p == '\\' || *p == '"') {
				PUT('\\');
				PUT(*p);
			} else if (*p == '\n') {
				PUT('\\');
				PUT('n');
			} else {
				PUT(*p);
			}
		}
		PUT('"');
	}
#undef PUT
	out[o] = '\0';
	return PRISM_OK;
}

static inline void
mark_used(atomic_uint *words, int label)
{
	atomic_uint *w = &words[label / 32];
	unsigned bit = 1u << (label % 32);
	/* Read first: after the first use this is a shared read, not a contended write. */
	if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
		atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

static inline int
clamp_label(int label)
{
	return label < 0 || label >= SHM_LABELS ? METRICS_LABEL_OVERFLOW : label;
}

void
metrics_inc(struct shm_segment *seg, enum metrics_counter c, int label, long n)
{
	if ((unsigned)c >= METRIC_COUNTER_COUNT)
		return;
	label = clamp_label(label);
	struct shm_metrics_area *mx = &seg->map->mx;
	mark_used(mx->used_c[c], label);
	atomic_fetch_add_explicit(&mx->counter[c][label], n, memory_order_relaxed);
}

void
metrics_observe(struct shm_segment *seg, enum metrics_histogram h, int label, int64_t us)
{
	if ((unsigned)h >= METRIC_HISTOGRAM_COUNT)
		return;
	label = clamp_label(label);
	if (us < 0)
		us = 0;
	int b = 0;
	while (b < SHM_HIST_BUCKETS - 1 && us > bounds_us[b])
		b++;
	struct shm_metrics_area *mx = &seg->map->mx;
	mark_used(mx->used_h[h], label);
	atomic_fetch_add_explicit(&mx->hist_bucket[h][label][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mx->hist_sum_us[h][label], (long)us, memory_order_relaxed);
}

long
metrics_counter_value(struct shm_segment *seg, enum metrics_counter c, int label)
{
	if ((unsigned)c >= METRIC_COUNTER_COUNT)
		return 0;
	return atomic_load_explicit(&seg->map->mx.counter[c][clamp_label(label)], memory_order_relaxed);
}

/* Microseconds as decimal seconds without trailing zeros: 2500000 -> "2.5", 1000 -> "0.001". */
static void
fmt_seconds(int64_t us, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
	if (n <= 0 || (size_t)n >= outlen)
		return;
	while (n > 0 && out[n - 1] == '0')
		out[--n] = '\0';
	if (n > 0 && out[n - 1] == '.')
		out[--n] = '\0';
}

static enum prism_err
simple(struct buf *out, const char *name, const char *type, const char *help, long value)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %ld\n", name, help, name, type, name, value);
}

enum prism_err
metrics_render_prometheus(struct shm_segment *seg, struct buf *out)
{
	struct shm_metrics_area *mx = &seg->map->mx;
	int nlabels = atomic_load_explicit(&mx->nlabels, memory_order_acquire);
	enum prism_err e = PRISM_OK;
	for (int c = 0; c < METRIC_COUNTER_COUNT && !e; c++) {
		const struct family *f = &counter_family[c];
		e = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
			       counter_is_gauge[c] ? "gauge" : "counter");
		for (int l = 0; l < nlabels && !e; l++) {
			if (!(atomic_load_explicit(&mx->used_c[c][l / 32], memory_order_relaxed) & (1u << (l % 32))))
				continue;
			const char *t = mx->label[l].text;
			long v = atomic_load_explicit(&mx->counter[c][l], memory_order_relaxed);
			e = *t ? buf_printf(out, "%s{%s} %ld\n", f->name, t, v) : buf_printf(out, "%s %ld\n", f->name, v);
		}
	}
	for (int h = 0; h < METRIC_HISTOGRAM_COUNT && !e; h++) {
		const struct family *f = &hist_family[h];
		e = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", f->name, f->help, f->name);
		for (int l = 0; l < nlabels && !e; l++) {
			if (!(atomic_load_explicit(&mx->used_h[h][l / 32], memory_order_relaxed) & (1u << (l % 32))))
				continue;
			const char *t = mx->label[l].text;
			const char *sep = *t ? "," : "";
			long cum = 0;
			char le[32];
			for (int b = 0; b < SHM_HIST_BUCKETS && !e; b++) {
				cum += atomic_load_explicit(&mx->hist_bucket[h][l][b], memory_order_relaxed);
				if (b < SHM_HIST_BUCKETS - 1)
					fmt_seconds(bounds_us[b], le, sizeof le);
				else
					snprintf(le, sizeof le, "+Inf");
				e = buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %ld\n", f->name, t, sep, le, cum);
			}
			char sum[48];
			fmt_seconds(atomic_load_explicit(&mx->hist_sum_us[h][l], memory_order_relaxed), sum, sizeof sum);
			if (!e)
				e = *t ? buf_printf(out, "%s_sum{%s} %s\n%s_count{%s} %ld\n", f->name, t, sum, f->name, t, cum)
				       : buf_printf(out, "%s_sum %s\n%s_count %ld\n", f->name, sum, f->name, cum);
		}
	}
	if (!e)
		e = simple(out, "prism_ratelimit_untracked_total", "counter",
			   "Rate-limit hits allowed without counting because the table had no free slot.",
			   atomic_load_explicit(&seg->map->rl.untracked, memory_order_relaxed));
	if (!e)
		e = simple(out, "prism_ratelimit_evictions_total", "counter",
			   "Expired rate-limit entries replaced by new keys.",
			   atomic_load_explicit(&seg->map->rl.evictions, memory_order_relaxed));
	if (!e)
		e = simple(out, "prism_shm_lock_recoveries_total", "counter",
			   "Shared-memory locks recovered after their holder died.",
			   atomic_load_explicit(&seg->map->hdr.lock_recoveries, memory_order_relaxed));
	struct tenantcache_stats tc;
	tenantcache_stats(seg, &tc);
	if (!e)
		e = simple(out, "prism_tenant_cache_hits_total", "counter", "Key lookups answered from the tenant cache.",
			   tc.hits);
	if (!e)
		e = simple(out, "prism_tenant_cache_misses_total", "counter",
			   "Key lookups the tenant cache could not answer (absent, expired or invalidated).", tc.misses);
	if (!e)
		e = simple(out, "prism_tenant_cache_evictions_total", "counter",
			   "Live tenant cache entries replaced because the table was full.", tc.evictions);
	if (!e)
		e = simple(out, "prism_tenant_cache_invalidations_total", "counter",
			   "Times the whole tenant cache was invalidated (admin changes, new store generations).",
			   tc.invalidations);
	if (!e)
		e = simple(out, "prism_tenant_cache_entries", "gauge", "Slots of the tenant cache holding an entry.",
			   tc.fill);
	if (!e)
		e = simple(out, "prism_config_generation", "gauge",
			   "The store's configuration generation last observed on this host.", (long)tc.generation);
	if (!e)
		e = simple(out, "prism_uptime_seconds", "gauge", "Seconds since the pool's shared memory was created.",
			   (long)((clock_realtime_ms() - seg->map->hdr.created_at_ms) / 1000));
	if (!e)
		e = simple(out, "prism_processes", "gauge",
			   "Live worker processes of the daemon (0 when the web server spawns the processes).",
			   (long)atomic_load(&seg->map->hdr.workers));
	if (!e)
		e = buf_printf(out, "# HELP prism_breaker_state Circuit breaker state per provider "
				    "(0 closed, 1 open, 2 half-open).\n# TYPE prism_breaker_state gauge\n");
	struct breaker_info bi[SHM_BREAKERS];
	size_t nb = e ? 0 : breaker_snapshot(seg, clock_monotonic_ms(), bi, SHM_BREAKERS);
	for (size_t i = 0; i < nb && !e; i++) {
		char lab[SHM_LABEL_MAX];
		if (metrics_labels(lab, sizeof lab, (const char *const[]){ "provider", bi[i].id, NULL }))
			continue;
		e = buf_printf(out, "prism_breaker_state{%s} %d\n", lab, (int)bi[i].state);
	}
	return e;
}
