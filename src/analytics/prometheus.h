/* prometheus.h -- GET /metrics: the pool's counters and histograms in the Prometheus text format, and the
 * per-request bookkeeping that feeds them.
 *
 * Access: clients in metrics_allow (default loopback) or with `Authorization: Bearer <metrics_token>`
 * (compared in constant time); others get 403.  Thread-safe; never takes a lock on the request path.
 */
#ifndef PRISM_PROMETHEUS_H
#define PRISM_PROMETHEUS_H

#include "core/request.h"

enum prism_err prometheus_get(struct request *req);
/* Counts one finished request: prism_requests_total{route,status}, prism_request_duration_seconds{route}. */
void prometheus_record(const struct request *req, int64_t duration_us);

#endif
