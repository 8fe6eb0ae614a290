/* prometheus.c -- see prometheus.h. */
#include "config.h"
#include "analytics/prometheus.h"

#include <stdio.h>
#include <string.h>

#include "core/response.h"
#include "core/router.h"
#include "shm/metrics.h"
#include "util/buf.h"
#include "util/rand.h"

#define METRICS_MAX_TEXT (4 * 1024 * 1024)

static bool
allowed(const struct request *req)
{
	const char *token = req->cfg->metrics_token;
	const char *auth = request_header(req, "authorization");
	if (*token && auth && strncmp(auth, "Bearer ", 7) == 0) {
		const char *given = auth + 7;
		size_t n = strlen(token);
		/* Equal length first (the length of a configured token is no secret), then constant time. */
		if (strlen(given) == n && const_time_eq(given, token, n))
			return true;
	}
	for (size_t i = 0; i < req->cfg->metrics_allow.n; i++)
		if (netprefix_contains(&req->cfg->metrics_prefixes[i], &req->client_addr))
			return true;
	return false;
}

enum prism_err
prometheus_get(struct request *req)
{
	if (!allowed(req)) {
		snprintf(req->errdetail, sizeof req->errdetail,
			 "/metrics is open to metrics_allow addresses or with the metrics_token bearer token");
		return PRISM_E_FORBIDDEN;
	}
	struct shm_segment *seg = shm_segment_current();
	if (!seg) {
		snprintf(req->errdetail, sizeof req->errdetail, "no shared memory in this mode (CGI)");
		return PRISM_E_UNAVAILABLE;
	}
	struct buf out;
	buf_init(&out, METRICS_MAX_TEXT);
	enum prism_err e = metrics_render_prometheus(seg, &out);
	if (!e) {
		resp_header(req, "Cache-Control", "no-store");
		resp_body(req, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "", out.len);
	}
	buf_free(&out);
	return e;
}

void
prometheus_record(const struct request *req, int64_t duration_us)
{
	struct shm_segment *seg = shm_segment_current();
	if (!seg)
		return;
	/* Route patterns, not paths: label cardinality stays bounded by the route table. */
	const char *route = req->route ? req->route->pattern : "unmatched";
	char status[8], labels[SHM_LABEL_MAX];
	snprintf(status, sizeof status, "%d", req->status);
	if (metrics_labels(labels, sizeof labels, (const char *const[]){ "route", route, "status", status, NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_REQUESTS, metrics_label_id(seg, labels), 1);
	if (metrics_labels(labels, sizeof labels, (const char *const[]){ "route", route, NULL }) == PRISM_OK)
		metrics_observe(seg, METRIC_REQUEST_DURATION, metrics_label_id(seg, labels), duration_us);
}
