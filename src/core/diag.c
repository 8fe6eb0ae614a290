/* diag.c -- see diag.h. */
#include "config.h"
#include "core/diag.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "analytics/writer.h"
#include "core/response.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/parse.h"

#define DIAG_MAX_EVENTS 1000
#define DIAG_MAX_INTERVAL_MS 10000
#define DIAG_MAX_SLEEP_MS 120000

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A bounded integer query parameter; PRISM_E_BAD_REQUEST naming it when malformed. */
static enum prism_err
query_long(struct request *req, const char *name, long dflt, long max, long *out)
{
	char v[32];
	*out = dflt;
	if (!request_query(req, name, v, sizeof v))
		return PRISM_OK;
	if (parse_long(v, 0, max, out)) {
		snprintf(req->errdetail, sizeof req->errdetail, "query parameter '%s' must be an integer from 0 to %ld",
			 name, max);
		return PRISM_E_BAD_REQUEST;
	}
	return PRISM_OK;
}

enum prism_err
diag_sse(struct request *req)
{
	long events, interval;
	enum prism_err err = query_long(req, "events", 10, DIAG_MAX_EVENTS, &events);
	if (!err)
		err = query_long(req, "interval_ms", 100, DIAG_MAX_INTERVAL_MS, &interval);
	if (err)
		return err;
	if (!sse_begin(req))
		return PRISM_E_CLIENT_GONE;
	int64_t t0 = clock_monotonic_ms();
	for (long i = 0; i < events; i++) {
		if (i > 0)
			sleep_ms(interval);
		char ev[96];
		int n = snprintf(ev, sizeof ev, "{\"seq\":%ld,\"t_ms\":%lld}", i, (long long)(clock_monotonic_ms() - t0));
		if (!sse_data(req, ev, (size_t)n))
			return PRISM_E_CLIENT_GONE;
	}
	sse_data(req, "[DONE]", 6);
	return PRISM_OK;
}

enum prism_err
diag_sleep(struct request *req)
{
	long ms;
	enum prism_err err = query_long(req, "ms", 1000, DIAG_MAX_SLEEP_MS, &ms);
	if (err)
		return err;
	sleep_ms(ms);
	resp_json(req, 200, json_pack("{s:i}", "slept_ms", (json_int_t)ms));
	return PRISM_OK;
}

enum prism_err
diag_echo(struct request *req)
{
	json_t *body = NULL;
	enum prism_err err = request_json_body(req, &body);
	if (err)
		return err;
	json_t *headers = json_object();
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *n = req->headers[i].name;
		bool secret = strcmp(n, "authorization") == 0 || strcmp(n, "cookie") == 0 || strcmp(n, "api-key") == 0 ||
			      strcmp(n, "x-api-key") == 0 || strcmp(n, "proxy-authorization") == 0;
		json_object_set_new(headers, n, json_string(secret ? "[redacted]" : req->headers[i].value));
	}
	json_t *out = json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "body", body, "method", req->method,
				"path", req->path, "query", req->query, "client_ip", req->client_ip, "request_id",
				req->request_id, "headers", headers, "body_bytes", (json_int_t)req->body.len);
	resp_json(req, 200, out);
	return PRISM_OK;
}

/* One synthetic RequestLog for the analytics writer, from {tenantId, routedModel, tokens|inputTokens,
 * outputTokens, cost|actualCostUsd, and optionally status, category, costTier, userName, durationMs,
 * isAutoRouted, timestamp}: exercises the writer, its spool and its aggregates without a provider. */
enum prism_err
diag_analytics(struct request *req)
{
	static const char *const strings[] = { "routedModel", "requestedModel", "status", "category", "costTier",
					       "userName", "timestamp", NULL };
	static const char *const numbers[] = { "inputTokens", "outputTokens", "actualCostUsd", "durationMs", NULL };
	json_t *body = NULL;
	enum prism_err err = request_json_body(req, &body);
	if (err)
		return err;
	const char *tenant = json_string_value(json_object_get(body, "tenantId"));
	if (!store_id_valid(tenant)) {
		json_decref(body);
		snprintf(req->errdetail, sizeof req->errdetail, "tenantId must be 24 lowercase hex digits");
		return PRISM_E_BAD_REQUEST;
	}
	char id[25], now[32];
	store_new_id(id);
	store_now_iso(now);
	json_t *log = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f}", "_id", id, "tenantId", tenant, "timestamp",
				now, "routedModel", "diag-model", "status", "success", "inputTokens", (json_int_t)0,
				"outputTokens", (json_int_t)0, "actualCostUsd", 0.0);
	json_t *v;
	if (json_is_number(v = json_object_get(body, "tokens")))
		json_object_set(log, "inputTokens", v);
	if (json_is_number(v = json_object_get(body, "cost")))
		json_object_set(log, "actualCostUsd", v);
	for (int i = 0; strings[i]; i++)
		if (json_is_string(v = json_object_get(body, strings[i])))
			json_object_set(log, strings[i], v);
	for (int i = 0; numbers[i]; i++)
		if (json_is_number(v = json_object_get(body, numbers[i])))
			json_object_set(log, numbers[i], v);
	if (json_is_boolean(v = json_object_get(body, "isAutoRouted")))
		json_object_set(log, "isAutoRouted", v);
	if (!json_object_get(log, "requestedModel"))
		json_object_set(log, "requestedModel", json_object_get(log, "routedModel"));
	json_decref(body);
	analytics_submit(log);
	resp_json(req, 202, json_pack("{s:s, s:b}", "_id", id, "queued", 1));
	return PRISM_OK;
}
