/* iplimit.c -- see iplimit.h. */
#include "config.h"
#include "core/iplimit.h"

#include <stdio.h>

#include "core/response.h"
#include "core/router.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "util/clock.h"
#include "util/log.h"

#define IPLIMIT_WINDOW_S 60

enum prism_err
iplimit_check(struct request *req)
{
	struct shm_segment *seg = shm_segment_current();
	if (!seg || !req->route)
		return PRISM_OK;
	const char *scope;
	long limit;
	if (req->route->flags & RF_LOGIN) {
		scope = "login";
		limit = req->cfg->ratelimit_login;
	} else if (req->kind == RK_GATEWAY) {
		scope = "gateway";
		limit = req->cfg->ratelimit_gateway;
	} else if (req->kind == RK_ADMIN) {
		scope = "admin";
		limit = req->cfg->ratelimit_admin;
	} else {
		return PRISM_OK;
	}
	if (limit <= 0)
		return PRISM_OK;
	char key[SHM_RL_KEY_MAX];
	struct ratelimit_result res;
	if (ratelimit_ip_key(&req->client_addr, (int)req->cfg->ratelimit_ipv6_prefix, scope, key, sizeof key) ||
	    ratelimit_hit(seg, key, limit, IPLIMIT_WINDOW_S, 1, clock_monotonic_ms(), &res)) {
		log_warn("rid=%s rate limit: cannot count %s for %s", req->request_id, scope, req->client_ip);
		return PRISM_OK;
	}
	char rl[128], policy[64];
	if (ratelimit_headers(&res, limit, IPLIMIT_WINDOW_S, rl, sizeof rl, policy, sizeof policy) == PRISM_OK) {
		resp_header(req, "RateLimit", rl);
		resp_header(req, "RateLimit-Policy", policy);
	}
	if (res.allowed)
		return PRISM_OK;
	char retry[24];
	snprintf(retry, sizeof retry, "%ld", res.retry_after_s > 0 ? res.retry_after_s : 1);
	resp_header(req, "Retry-After", retry);
	char labels[64];
	if (metrics_labels(labels, sizeof labels, (const char *const[]){ "scope", scope, NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_RATE_LIMITED, metrics_label_id(seg, labels), 1);
	snprintf(req->errdetail, sizeof req->errdetail, "Rate limit exceeded: %ld %s requests per minute from one "
		 "address; retry in %s s", limit, scope, retry);
	return PRISM_E_RATE_LIMITED;
}
