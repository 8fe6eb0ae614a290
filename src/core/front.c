/* front.c -- see front.h. */
#include "config.h"
#include "core/front.h"

#include <ctype.h>
#include <string.h>

#include "admin/auth.h"
#include "admin/setup.h"
#include "analytics/prometheus.h"
#include "core/iplimit.h"
#include "core/response.h"
#include "core/router.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/log.h"

/* CORS preflight and plain OPTIONS on an existing path. */
static void
answer_options(struct request *req, const char *allow)
{
	resp_status(req, 204);
	resp_header(req, "Allow", allow);
	if (request_header(req, "origin") && req->cfg->cors_origins.n) {
		resp_header(req, "Access-Control-Allow-Methods", allow);
		const char *want = request_header(req, "access-control-request-headers");
		/* Reflect the requested header names when they are plain tokens (SDKs add their own x-* headers). */
		if (want && resp_header_valid("X", want) && strlen(want) < 1024 && !strpbrk(want, ";:\""))
			resp_header(req, "Access-Control-Allow-Headers", want);
		else
			resp_header(req, "Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id");
		resp_header(req, "Access-Control-Max-Age", "600");
	}
	resp_send_headers(req);
}

static void
access_log(const struct request *req)
{
	if (!req->cfg->access_log)
		return;
	double ms = (double)(clock_monotonic_us() - req->start_us) / 1000.0;
	enum log_level lvl = req->route && (req->route->flags & RF_NO_LOG) ? LOG_LVL_DEBUG : LOG_LVL_INFO;
	if (!log_enabled(lvl))
		return;
	log_msg(lvl, "access %s %.200s %d %llu %.1fms rid=%s ip=%s tenant=%s%s", req->method, req->path, req->status,
		(unsigned long long)req->bytes_out, ms, req->request_id, req->client_ip,
		req->tenant[0] ? req->tenant : "-", req->client_gone ? " client_gone" : "");
}

/* Sends the error response for err; 4xx details describe the client's own input and are returned, 5xx
 * details are only logged. */
static void
answer_error(struct request *req, enum prism_err err)
{
	int status = prism_err_http_status(err);
	if (status >= 500 || !req->errdetail[0]) {
		if (status >= 500)
			log_error("rid=%s %s %.200s: %s%s%s", req->request_id, req->method, req->path,
				  prism_strerror(err), req->errdetail[0] ? ": " : "", req->errdetail);
		resp_error(req, err, err == PRISM_E_NOT_FOUND ? "Not found" : NULL);
	} else {
		resp_error(req, err, req->errdetail);
	}
}

void
front_handle(struct request *req, FCGX_Request *fcgx, char **cgi_env)
{
	struct config *cfg = config_acquire();
	enum prism_err err = request_begin(req, fcgx, cgi_env, cfg);
	if (err) {
		req->kind = router_path_kind(req->path);
		answer_error(req, err);
		goto out;
	}
	struct route_match m;
	err = router_match(prism_routes, prism_nroutes, req, &m);
	if (err == PRISM_E_METHOD)
		resp_header(req, "Allow", m.allow);
	if (err) {
		answer_error(req, err);
		goto out;
	}
	if (!m.route) {
		answer_options(req, m.allow);
		goto out;
	}
	err = iplimit_check(req);
	if (!err && m.route->kind == RK_ADMIN && !(m.route->flags & RF_PRESETUP))
		err = setup_gate(req);
	if (!err && m.route->perm)
		err = auth_require(req, m.route->perm);
	if (err) {
		answer_error(req, err);
		goto out;
	}
	err = m.route->handler(req);
	if (err && !req->headers_sent)
		answer_error(req, err);
	else if (err && req->errdetail[0])
		log_warn("rid=%s %s %.200s: %s: %s", req->request_id, req->method, req->path, prism_strerror(err),
			 req->errdetail);
	if (!req->headers_sent) {
		log_error("rid=%s handler for %s %s returned without answering", req->request_id, req->method,
			  m.route->pattern);
		resp_error(req, PRISM_E_INTERNAL, NULL);
	}
out:
	if (fcgx)
		request_discard_body(req);
	else if (!req->client_gone)
		request_flush(req);
	prometheus_record(req, clock_monotonic_us() - req->start_us);
	access_log(req);
	request_end(req);
	config_release(cfg);
}
