/* pipeline.c -- see pipeline.h. */
#include "config.h"
#include "gateway/pipeline.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/writer.h"
#include "core/response.h"
#include "gateway/gw.h"
#include "gateway/plan.h"
#include "gateway/relay.h"
#include "routing/engine.h"
#include "routing/signals.h"
#include "shm/breaker.h"
#include "shm/metrics.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/jtext.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

struct gw_call {
	struct request *req;
	enum gw_endpoint ep;
	const char *path_slug;             /* the tenant named in the URL; NULL on /v1 and /api/v1 */
	int64_t t0_ms;

	struct gw_tenant tenant;
	bool authed;                       /* the tenant is known: the request is accounted */
	bool strip_thinking;

	json_t *body;                      /* the client's body, turned into the upstream body by the stages */
	json_t *providers;                 /* every provider document */
	json_t *tprov;                     /* the tenant's, in providerIds order */

	char requested_model[PLAN_MAX_MODEL + 1];
	char model[PLAN_MAX_MODEL + 1];
	char explicit_slug[PLAN_MAX_SLUG + 1];
	bool stream, include_usage;
	long max_tokens;                   /* max_tokens or max_completion_tokens as sent (0 = unset) */
	long est_input;
	long limit_charged;                /* tokens charged by the limits stage */
	bool limits_ok;
	char session_id[GW_MAX_SESSION_ID + 1];
	char user_name[GW_MAX_USER + 1];

	struct plan plan;
	long context_window;
	bool context_fallback;
	char original_model[PLAN_MAX_MODEL + 1];
	bool clamped;

	struct gw_attempt *attempts;       /* grown as providers are tried: most requests try one */
	size_t nattempts, cap_attempts;
	char skipped[GW_MAX_SKIPPED];      /* providers skipped: breaker open */
	struct relay relay;
	bool relay_active;

	/* the outcome */
	bool ok;
	struct provider_result result;
	char served_id[25], served_name[128], served_slug[PLAN_MAX_SLUG + 1];
	const json_t *served_doc;          /* borrowed from providers */
	long in_tokens, out_tokens;
	bool usage_estimated;
	int64_t cost_micro;
	int status;
	char error_type[48], error_code[48], error_message[GW_MAX_MESSAGE];
	bool client_gone;

	/* automatic routing */
	bool auto_routed;                  /* the model was chosen by the router */
	bool force_routed;                 /* ... because the tenant's force-route mode sent a named model there */
	char user_model[PLAN_MAX_MODEL + 1];   /* the model the user named (after alias), when force-routed */
	struct route_result *route;        /* the decision, when auto_routed */
	char *category_prompt;             /* the routed category's targetSystemPrompt, or NULL */
	int64_t baseline_micro;            /* what the baseline model would have cost */
	char baseline_model[PLAN_MAX_MODEL + 1];
};

static const char *
endpoint_name(enum gw_endpoint ep)
{
	switch (ep) {
	case GW_EP_CHAT: return "chat/completions";
	case GW_EP_COMPLETIONS: return "completions";
	case GW_EP_EMBEDDINGS: return "embeddings";
	}
	return "?";
}

static enum prism_err
status_err(int status)
{
	switch (status) {
	case 400: return PRISM_E_BAD_REQUEST;
	case 401: return PRISM_E_UNAUTHORIZED;
	case 403: return PRISM_E_FORBIDDEN;
	case 404: return PRISM_E_NOT_FOUND;
	case 413: return PRISM_E_TOO_LARGE;
	case 429: return PRISM_E_RATE_LIMITED;
	case 499: return PRISM_E_CLIENT_GONE;
	case 503: return PRISM_E_UNAVAILABLE;
	case 504: return PRISM_E_TIMEOUT;
	}
	return status >= 500 ? PRISM_E_UPSTREAM : PRISM_E_BAD_REQUEST;
}

/* Ends the request with an error: an OpenAI error body, or, once a stream has started, an error event. */
static enum prism_err __attribute__((format(printf, 5, 6)))
call_fail(struct gw_call *c, int status, const char *type, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error_message, sizeof c->error_message, fmt, ap);
	va_end(ap);
	relay_utf8_fix(c->error_message);
	c->status = status;
	snprintf(c->error_type, sizeof c->error_type, "%s", type);
	snprintf(c->error_code, sizeof c->error_code, "%s", code);
	if (!c->req->errdetail[0])
		snprintf(c->req->errdetail, sizeof c->req->errdetail, "%.40s: %.400s", code, c->error_message);
	if (c->relay_active && c->relay.started)
		relay_error(&c->relay, type, code, c->error_message);
	else if (!c->req->headers_sent)
		gw_error(c->req, status, type, code, "%s", c->error_message);
	return status_err(status);
}

/* --- validation ------------------------------------------------------------------------------------------ */

struct vctx {
	char *msg;
	size_t msglen;
	char *param;
	size_t paramlen;
};

static enum prism_err __attribute__((format(printf, 3, 4)))
invalid(struct vctx *v, const char *field, const char *fmt, ...)
{
	char text[GW_MAX_MESSAGE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	snprintf(v->msg, v->msglen, "%s: %s", field, text);
	snprintf(v->param, v->paramlen, "%s", field);
	return PRISM_E_BAD_REQUEST;
}

static bool
printable_utf8(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static enum prism_err
check_model(struct vctx *v, const json_t *body)
{
	const json_t *m = json_object_get(body, "model");
	if (!m || json_is_null(m))
		return invalid(v, "model", "is required");
	if (!json_is_string(m))
		return invalid(v, "model", "must be a string");
	size_t n = json_string_length(m);
	if (n == 0 || n > PLAN_MAX_MODEL || !printable_utf8(json_string_value(m)))
		return invalid(v, "model", "must be 1 to %d printable bytes", PLAN_MAX_MODEL);
	return PRISM_OK;
}

static enum prism_err
check_int(struct vctx *v, const json_t *body, const char *k, long min, long max)
{
	const json_t *x = json_object_get(body, k);
	if (!x || json_is_null(x))
		return PRISM_OK;
	if (!json_is_integer(x))
		return invalid(v, k, "must be an integer");
	if (json_integer_value(x) < min || json_integer_value(x) > max)
		return invalid(v, k, "must be between %ld and %ld", min, max);
	return PRISM_OK;
}

static enum prism_err
check_num(struct vctx *v, const json_t *body, const char *k, double min, double max)
{
	const json_t *x = json_object_get(body, k);
	if (!x || json_is_null(x))
		return PRISM_OK;
	if (!json_is_number(x))
		return invalid(v, k, "must be a number");
	double d = json_number_value(x);
	if (!(d >= min && d <= max))
		return invalid(v, k, "must be between %g and %g", min, max);
	return PRISM_OK;
}

static enum prism_err
check_bool(struct vctx *v, const json_t *body, const char *k)
{
	const json_t *x = json_object_get(body, k);
	if (x && !json_is_null(x) && !json_is_boolean(x))
		return invalid(v, k, "must be a boolean");
	return PRISM_OK;
}

static enum prism_err
check_string(struct vctx *v, const json_t *body, const char *k)
{
	const json_t *x = json_object_get(body, k);
	if (x && !json_is_null(x) && !json_is_string(x))
		return invalid(v, k, "must be a string");
	return PRISM_OK;
}

static enum prism_err
check_stream(struct vctx *v, const json_t *body, bool allowed)
{
	enum prism_err e = check_bool(v, body, "stream");
	if (e)
		return e;
	if (!allowed && json_is_true(json_object_get(body, "stream")))
		return invalid(v, "stream", "this endpoint does not stream");
	const json_t *so = json_object_get(body, "stream_options");
	if (so && !json_is_null(so)) {
		if (!json_is_object(so))
			return invalid(v, "stream_options", "must be an object");
		const json_t *iu = json_object_get(so, "include_usage");
		if (iu && !json_is_null(iu) && !json_is_boolean(iu))
			return invalid(v, "stream_options.include_usage", "must be a boolean");
	}
	return PRISM_OK;
}

static enum prism_err
check_sampling(struct vctx *v, const json_t *body)
{
	enum prism_err e;
	if ((e = check_int(v, body, "max_tokens", 1, GW_MAX_OUTPUT_TOKENS)) ||
	    (e = check_int(v, body, "max_completion_tokens", 1, GW_MAX_OUTPUT_TOKENS)) ||
	    (e = check_num(v, body, "temperature", 0, 2)) || (e = check_num(v, body, "top_p", 0, 1)) ||
	    (e = check_int(v, body, "n", 1, GW_MAX_N)) || (e = check_num(v, body, "presence_penalty", -2, 2)) ||
	    (e = check_num(v, body, "frequency_penalty", -2, 2)) || (e = check_string(v, body, "user")))
		return e;
	const json_t *stop = json_object_get(body, "stop");
	if (stop && !json_is_null(stop) && !json_is_string(stop)) {
		if (!json_is_array(stop) || json_array_size(stop) > GW_MAX_STOP)
			return invalid(v, "stop", "must be a string or an array of at most %d strings", GW_MAX_STOP);
		size_t i;
		const json_t *s;
		json_array_foreach(stop, i, s)
			if (!json_is_string(s))
				return invalid(v, "stop", "must be a string or an array of at most %d strings", GW_MAX_STOP);
	}
	return PRISM_OK;
}

static const char *const roles[] = { "system", "user", "assistant", "tool", "developer", "function", NULL };

static enum prism_err
check_messages(struct vctx *v, const json_t *body)
{
	const json_t *msgs = json_object_get(body, "messages");
	if (!msgs || json_is_null(msgs))
		return invalid(v, "messages", "is required");
	if (!json_is_array(msgs))
		return invalid(v, "messages", "must be an array");
	if (json_array_size(msgs) == 0)
		return invalid(v, "messages", "must contain at least one message");
	if (json_array_size(msgs) > GW_MAX_MESSAGES)
		return invalid(v, "messages", "must contain at most %d messages", GW_MAX_MESSAGES);
	size_t i;
	const json_t *m;
	char f[64];
	json_array_foreach(msgs, i, m) {
		snprintf(f, sizeof f, "messages[%zu]", i);
		if (!json_is_object(m))
			return invalid(v, f, "must be an object {role, content}");
		const char *role = json_string_value(json_object_get(m, "role"));
		snprintf(f, sizeof f, "messages[%zu].role", i);
		if (!role)
			return invalid(v, f, json_object_get(m, "role") ? "must be a string" : "is required");
		bool known = false;
		for (size_t k = 0; roles[k]; k++)
			known = known || strcmp(role, roles[k]) == 0;
		if (!known)
			return invalid(v, f, "must be one of system, user, assistant, tool, developer, function");
		const json_t *content = json_object_get(m, "content");
		snprintf(f, sizeof f, "messages[%zu].content", i);
		if (!content || json_is_null(content)) {
			bool calls = json_array_size(json_object_get(m, "tool_calls")) > 0 ||
				     json_is_object(json_object_get(m, "function_call"));
			if (strcmp(role, "assistant") == 0 && calls)
				continue;
			return invalid(v, f, "is required (null only for an assistant message with tool_calls)");
		}
		if (json_is_string(content))
			continue;
		if (!json_is_array(content))
			return invalid(v, f, "must be a string or an array of content parts");
		size_t k;
		const json_t *part;
		json_array_foreach(content, k, part) {
			if (!json_is_object(part) || !json_is_string(json_object_get(part, "type"))) {
				snprintf(f, sizeof f, "messages[%zu].content[%zu]", i, k);
				return invalid(v, f, "must be an object with a string type");
			}
		}
	}
	return PRISM_OK;
}

/* A prompt or an embeddings input: a string, or an array of strings, of token ids, or of arrays of ids. */
static enum prism_err
check_text_input(struct vctx *v, const json_t *body, const char *k, bool nonempty, size_t max_items)
{
	const json_t *x = json_object_get(body, k);
	if (!x || json_is_null(x))
		return invalid(v, k, "is required");
	if (json_is_string(x)) {
		if (nonempty && json_string_length(x) == 0)
			return invalid(v, k, "must not be empty");
		return PRISM_OK;
	}
	if (!json_is_array(x) || json_array_size(x) == 0)
		return invalid(v, k, "must be a string or a non-empty array of strings or token ids");
	if (json_array_size(x) > max_items)
		return invalid(v, k, "must have at most %zu items", max_items);
	size_t i;
	const json_t *it;
	json_array_foreach(x, i, it) {
		if (json_is_string(it) && (!nonempty || json_string_length(it) > 0))
			continue;
		if (json_is_integer(it) && json_integer_value(it) >= 0)
			continue;
		if (json_is_array(it) && json_array_size(it) > 0) {
			size_t j;
			const json_t *t;
			bool ok = true;
			json_array_foreach(it, j, t)
				ok = ok && json_is_integer(t) && json_integer_value(t) >= 0;
			if (ok)
				continue;
		}
		char f[64];
		snprintf(f, sizeof f, "%s[%zu]", k, i);
		return invalid(v, f, "must be a non-empty string or token ids");
	}
	return PRISM_OK;
}

enum prism_err
pipeline_validate(enum gw_endpoint ep, const json_t *body, char *msg, size_t msglen, char *param, size_t paramlen)
{
	struct vctx v = { msg, msglen, param, paramlen };
	msg[0] = param[0] = '\0';
	if (!json_is_object(body))
		return invalid(&v, "body", "must be a JSON object");
	enum prism_err e = check_model(&v, body);
	if (e)
		return e;
	switch (ep) {
	case GW_EP_CHAT:
		if ((e = check_messages(&v, body)) || (e = check_stream(&v, body, true)) || (e = check_sampling(&v, body)) ||
		    (e = check_bool(&v, body, "logprobs")) || (e = check_int(&v, body, "top_logprobs", 0, 20)))
			return e;
		if (json_object_get(body, "tools") && !json_is_null(json_object_get(body, "tools")) &&
		    !json_is_array(json_object_get(body, "tools")))
			return invalid(&v, "tools", "must be an array");
		return PRISM_OK;
	case GW_EP_COMPLETIONS:
		if ((e = check_text_input(&v, body, "prompt", false, GW_MAX_EMBED_INPUTS)) ||
		    (e = check_string(&v, body, "suffix")) || (e = check_stream(&v, body, true)) ||
		    (e = check_sampling(&v, body)) || (e = check_bool(&v, body, "echo")) ||
		    (e = check_int(&v, body, "best_of", 1, 20)) || (e = check_int(&v, body, "logprobs", 0, 5)))
			return e;
		return PRISM_OK;
	case GW_EP_EMBEDDINGS:
		if ((e = check_text_input(&v, body, "input", true, GW_MAX_EMBED_INPUTS)) ||
		    (e = check_stream(&v, body, false)) || (e = check_int(&v, body, "dimensions", 1, 65536)) ||
		    (e = check_string(&v, body, "user")))
			return e;
		const json_t *ef = json_object_get(body, "encoding_format");
		if (ef && !json_is_null(ef) &&
		    (!json_is_string(ef) || (strcmp(json_string_value(ef), "float") != 0 &&
					     strcmp(json_string_value(ef), "base64") != 0)))
			return invalid(&v, "encoding_format", "must be \"float\" or \"base64\"");
		return PRISM_OK;
	}
	return PRISM_OK;
}

/* --- failures -------------------------------------------------------------------------------------------- */

static const char *
outcome_text(const struct gw_attempt *a, char *buf, size_t n)
{
	switch (a->errclass) {
	case PE_SERVER:
		if (a->status >= 500)
			snprintf(buf, n, "HTTP %d", a->status);
		else
			snprintf(buf, n, "server error");
		break;
	case PE_RATE_LIMITED: snprintf(buf, n, "rate limited"); break;
	case PE_AUTH: snprintf(buf, n, "credentials rejected"); break;
	case PE_TIMEOUT: snprintf(buf, n, "timed out"); break;
	case PE_CONNECT: snprintf(buf, n, "connection failed"); break;
	case PE_CUT: snprintf(buf, n, "stream cut"); break;
	case PE_PROTOCOL: snprintf(buf, n, "invalid answer"); break;
	case PE_BAD_REQUEST: snprintf(buf, n, "HTTP %d", a->status); break;
	case PE_CONTEXT: snprintf(buf, n, "context length exceeded"); break;
	case PE_MAX_TOKENS: snprintf(buf, n, "max_tokens too large"); break;
	case PE_NONE: snprintf(buf, n, "failed"); break;
	}
	return buf;
}

static void map_calls(const struct gw_attempt *a, size_t n, const char *model, const char *skipped, char *list,
		      size_t listlen, struct gw_failure *out);

/* "'A' (HTTP 500), 'B' (timed out)" -- each provider once, in the order tried. */
static void
tried_list(const struct gw_attempt *a, size_t n, bool outcome, char *out, size_t outlen)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = i + 1; j < n && !seen; j++)
			seen = strcmp(a[j].provider_id, a[i].provider_id) == 0;
		if (seen)
			continue;            /* the last attempt of a provider tells */
		char o[48];
		int w = outcome ? snprintf(out + len, outlen - len, "%s'%s' (%s)", len ? ", " : "", a[i].provider_name,
					   outcome_text(&a[i], o, sizeof o))
				: snprintf(out + len, outlen - len, "%s'%s'", len ? ", " : "", a[i].provider_name);
		if (w < 0 || (size_t)w >= outlen - len)
			break;
		len += (size_t)w;
	}
}

void
pipeline_map_failure(const struct gw_attempt *all, size_t nall, const char *model, const char *skipped,
		     struct gw_failure *out)
{
	memset(out, 0, sizeof *out);
	char list[GW_MAX_MESSAGE / 2];
	/* The calls that were made; skipped ones only explain a 503. */
	struct gw_attempt *a = xcalloc(nall ? nall : 1, sizeof *a);
	size_t n = 0;
	for (size_t i = 0; i < nall; i++)
		if (!all[i].skipped)
			a[n++] = all[i];
	map_calls(a, n, model, skipped, list, sizeof list, out);
	free(a);
}

static void
map_calls(const struct gw_attempt *a, size_t n, const char *model, const char *skipped, char *list, size_t listlen,
	  struct gw_failure *out)
{
	if (n == 0) {
		out->status = 503;
		out->type = "server_error";
		out->code = "providers_unavailable";
		snprintf(out->message, sizeof out->message,
			 "No provider can serve model '%s' right now: circuit breaker open for %s; retry shortly", model,
			 skipped && *skipped ? skipped : "every provider");
		out->retry_after_s = 0;
		return;
	}
	const struct gw_attempt *last = &a[n - 1];
	switch (last->errclass) {
	case PE_BAD_REQUEST:
		out->status = 400;
		out->type = "invalid_request_error";
		out->code = "upstream_bad_request";
		snprintf(out->message, sizeof out->message, "%s", last->message[0] ? last->message
						     : "The provider rejected the request");
		return;
	case PE_CONTEXT:
		out->status = 400;
		out->type = "invalid_request_error";
		out->code = "context_length_exceeded";
		snprintf(out->message, sizeof out->message, "The input is too long for the context window of model '%.200s'%s%.200s",
			 last->model, last->message[0] ? ": " : "", last->message);
		return;
	case PE_MAX_TOKENS:
		out->status = 400;
		out->type = "invalid_request_error";
		out->code = "max_tokens_exceeded";
		snprintf(out->message, sizeof out->message, "max_tokens exceeds the output limit of model '%.200s'%s%.200s",
			 last->model, last->message[0] ? ": " : "", last->message);
		return;
	default:
		break;
	}
	size_t rate = 0, auth = 0, timeout = 0;
	long retry = 0;
	for (size_t i = 0; i < n; i++) {
		if (a[i].errclass == PE_RATE_LIMITED) {
			rate++;
			if (a[i].retry_after_s > 0 && (retry == 0 || a[i].retry_after_s < retry))
				retry = a[i].retry_after_s;
		}
		auth += a[i].errclass == PE_AUTH;
		timeout += a[i].errclass == PE_TIMEOUT;
	}
	if (rate) {
		tried_list(a, n, n > rate, list, listlen);
		out->status = 429;
		out->type = "rate_limit_error";
		out->code = "upstream_rate_limited";
		out->retry_after_s = retry;
		snprintf(out->message, sizeof out->message, "The provider is rate limiting requests for model '%s' (tried %s)%s",
			 model, list, retry > 0 ? "; retry after the time in Retry-After" : "; retry later");
		return;
	}
	if (auth == n) {
		tried_list(a, n, false, list, listlen);
		out->status = 502;
		out->type = "provider_error";
		out->code = "upstream_auth_failed";
		snprintf(out->message, sizeof out->message, "Provider %s rejected the gateway's credentials", list);
		return;
	}
	tried_list(a, n, true, list, listlen);
	if (timeout == n) {
		out->status = 504;
		out->type = "timeout_error";
		out->code = "upstream_timeout";
		snprintf(out->message, sizeof out->message, "No provider answered in time for model '%s' (tried %s)", model,
			 list);
		return;
	}
	out->status = 502;
	out->type = "provider_error";
	out->code = "upstream_error";
	snprintf(out->message, sizeof out->message, "Every provider failed for model '%s' (tried %s)", model, list);
}

/* --- session ids ----------------------------------------------------------------------------------------- */

static bool
session_header_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > GW_MAX_SESSION_ID)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

void
pipeline_session_id(const char *header, const json_t *messages, const char *key_id, const char *slug,
		    char out[GW_MAX_SESSION_ID + 1])
{
	if (header && session_header_ok(header)) {
		snprintf(out, GW_MAX_SESSION_ID + 1, "%s", header);
		return;
	}
	const json_t *sys = NULL, *m;
	size_t i, users = 0;
	json_array_foreach(messages, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));
		if (!role)
			continue;
		if (!sys && strcmp(role, "system") == 0)
			sys = m;
		users += strcmp(role, "user") == 0;
	}
	if (sys && users > 1) {
		const json_t *content = json_object_get(sys, "content");
		char *text = json_is_string(content) ? xstrdup(json_string_value(content))
						     : json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
		char hex[CRYPTO_SHA256_HEX];
		const char *kid = key_id ? key_id : "";
		/* The key id as the HMAC key: one agent's system prompt used through two keys gives two sessions. */
		crypto_hmac_sha256_hex(kid, strlen(kid), text ? text : "", text ? strlen(text) : 0, hex);
		free(text);
		snprintf(out, GW_MAX_SESSION_ID + 1, "sp-%.16s-%s", hex, slug ? slug : "");
		return;
	}
	/* A UUID of version 7 (RFC 9562): the time in milliseconds first, then random bits, so that the
	 * RequestLog index on sessionId grows at its end (version 4's random ids made each insert touch a
	 * random page of it, and each batch's commit write them all). */
	unsigned char b[16];
	if (rand_bytes(b, sizeof b) != PRISM_OK)
		memset(b, 0, sizeof b);
	uint64_t ms = (uint64_t)clock_realtime_ms();
	for (int k = 0; k < 6; k++)
		b[k] = (unsigned char)(ms >> (40 - 8 * k));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char h[33];
	hex_encode(b, sizeof b, h);
	snprintf(out, GW_MAX_SESSION_ID + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* --- the provider documents (a per-process cache that follows every invalidation) ------------------------ */

static pthread_mutex_t prov_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *prov_cache;
static int64_t prov_epoch = -1, prov_gen = -1, prov_at;

static enum prism_err
load_providers(json_t **out, char *err, size_t errlen)
{
	struct shm_segment *seg = shm_segment_current();
	struct tenantcache_stats st = { 0 };
	if (seg)
		tenantcache_stats(seg, &st);
	int64_t now = clock_monotonic_ms();
	pthread_mutex_lock(&prov_lock);
	if (prov_cache && seg && st.epoch == prov_epoch && st.generation == prov_gen && now - prov_at < GW_PROVIDERS_TTL_MS) {
		*out = json_incref(prov_cache);
		pthread_mutex_unlock(&prov_lock);
		return PRISM_OK;
	}
	pthread_mutex_unlock(&prov_lock);

	struct store *s = store_current();
	if (!s) {
		snprintf(err, errlen, "no store");
		return PRISM_E_STORE;
	}
	struct store_query q = { .limit = STORE_MAX_LIMIT };
	json_t *docs = NULL;
	char *next = NULL;
	enum prism_err e = s->ops->find(s, COLL_PROVIDERS, &q, &docs, &next, err, errlen);
	free(next);
	if (e)
		return e;
	pthread_mutex_lock(&prov_lock);
	json_decref(prov_cache);
	prov_cache = json_incref(docs);
	prov_epoch = st.epoch;
	prov_gen = st.generation;
	prov_at = now;
	pthread_mutex_unlock(&prov_lock);
	*out = docs;
	return PRISM_OK;
}

/* --- stages ---------------------------------------------------------------------------------------------- */

/* The error a gw.h function has already answered (gw.h: failure convention), for the accounting. */
static enum prism_err
answered(struct gw_call *c, enum prism_err e)
{
	int status = 0;
	const char *type = "", *code = "";
	gw_error_last(&status, &type, &code);
	c->status = status ? status : prism_err_http_status(e);
	snprintf(c->error_type, sizeof c->error_type, "%s", *type ? type : prism_err_openai_type(e));
	snprintf(c->error_code, sizeof c->error_code, "%s", *code ? code : prism_err_code(e));
	snprintf(c->error_message, sizeof c->error_message, "%s", c->req->errdetail);
	return e;
}

static enum prism_err
stage_auth(struct gw_call *c)
{
	enum prism_err e = gw_authenticate(c->req, c->path_slug, &c->tenant);
	if (e)
		return answered(c, e);
	c->authed = true;
	if ((e = gw_tenant_load(c->req, &c->tenant)))
		return answered(c, e);
	c->strip_thinking = !json_is_false(json_object_get(c->tenant.doc, "stripThinking"));
	return PRISM_OK;
}

static long
body_long(const json_t *body, const char *k)
{
	const json_t *v = json_object_get(body, k);
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

static void
copy_printable(char *out, size_t outlen, const char *s)
{
	size_t j = 0;
	for (; s && *s && j + 1 < outlen; s++)
		if ((unsigned char)*s >= 0x20 && *s != 0x7f)
			out[j++] = *s;
	out[j] = '\0';
}

static enum prism_err
stage_parse(struct gw_call *c)
{
	enum prism_err e = request_json_body(c->req, &c->body);
	if (e == PRISM_E_TOO_LARGE)
		return call_fail(c, 413, "invalid_request_error", "request_too_large",
				 "The request body is larger than the limit of %ld bytes", c->req->cfg->max_body_size);
	if (e == PRISM_E_BAD_JSON)
		return call_fail(c, 400, "invalid_request_error", "invalid_json", "The request body is not valid JSON%s%s",
				 c->req->errdetail[0] ? ": " : "", c->req->errdetail);
	if (e)
		return call_fail(c, 400, "invalid_request_error", "invalid_request", "The request body cannot be read");
	char msg[GW_MAX_MESSAGE], param[64];
	if (pipeline_validate(c->ep, c->body, msg, sizeof msg, param, sizeof param))
		return call_fail(c, 400, "invalid_request_error", "invalid_request", "%s", msg);

	const char *model = json_string_value(json_object_get(c->body, "model"));
	snprintf(c->requested_model, sizeof c->requested_model, "%s", model);
	snprintf(c->model, sizeof c->model, "%s", model);
	c->stream = c->ep != GW_EP_EMBEDDINGS && json_is_true(json_object_get(c->body, "stream"));
	c->include_usage = c->stream &&
			   json_is_true(json_object_get(json_object_get(c->body, "stream_options"), "include_usage"));
	c->max_tokens = body_long(c->body, "max_completion_tokens");
	if (!c->max_tokens)
		c->max_tokens = body_long(c->body, "max_tokens");
	switch (c->ep) {
	case GW_EP_CHAT:
		c->est_input = tokens_estimate_messages(json_object_get(c->body, "messages"));
		break;
	case GW_EP_COMPLETIONS:
		c->est_input = tokens_estimate_prompt(json_object_get(c->body, "prompt")) +
			       tokens_estimate_prompt(json_object_get(c->body, "suffix"));
		break;
	case GW_EP_EMBEDDINGS:
		c->est_input = tokens_estimate_prompt(json_object_get(c->body, "input"));
		break;
	}
	const char *user = request_header(c->req, "x-user");
	if (!user || !*user)
		user = request_header(c->req, "x-openwebui-user-name");
	if (!user || !*user)
		user = json_string_value(json_object_get(c->body, "user"));
	copy_printable(c->user_name, sizeof c->user_name, user);
	relay_utf8_fix(c->user_name);
	pipeline_session_id(request_header(c->req, "x-session-id"), json_object_get(c->body, "messages"),
			    c->tenant.snap.key_id, c->tenant.snap.slug, c->session_id);
	resp_header(c->req, "x-session-id", c->session_id);
	return PRISM_OK;
}

/* After the plan and the clamp: the output reserved is max_tokens as it will be sent (clamped to the
 * model's maximum), so a refused or impossible request charges nothing and an oversized max_tokens does
 * not count beyond what the model can produce.  Without max_tokens no output is reserved; the real output
 * is charged when the answer is done (gw_limits_settle). */
static enum prism_err
stage_limits(struct gw_call *c)
{
	if (c->limits_ok)
		return PRISM_OK;      /* charged before the classifier was called */
	long out = c->max_tokens;
	long cap = c->plan.n ? c->plan.c[0].max_output : 0;
	if (out && cap && out > cap)
		out = cap;
	long est = c->est_input + out;
	enum prism_err e = gw_limits_check(c->req, &c->tenant, est);
	if (e)
		return answered(c, e);
	c->limits_ok = true;
	c->limit_charged = est;
	return PRISM_OK;
}

static enum prism_err
stage_prefix(struct gw_call *c)
{
	char err[256] = "";
	enum prism_err e = load_providers(&c->providers, err, sizeof err);
	if (e) {
		snprintf(c->req->errdetail, sizeof c->req->errdetail, "providers: %s", err);
		return call_fail(c, 503, "server_error", "store_unavailable",
				 "The gateway's data store is unavailable; retry shortly");
	}
	c->tprov = plan_tenant_providers(c->tenant.doc, c->providers);
	char slug[PLAN_MAX_SLUG + 1];
	const char *bare = plan_split_prefix(c->providers, c->model, slug);
	/* A slug of a provider this tenant does not have: the whole id is a model name ("openai/gpt-4o" on
	 * OpenRouter when another tenant's provider happens to be called "openai"). */
	if (slug[0] && plan_provider_by_slug(c->tprov, slug)) {
		snprintf(c->explicit_slug, sizeof c->explicit_slug, "%s", slug);
		memmove(c->model, bare, strlen(bare) + 1);
	}
	return PRISM_OK;
}

static enum prism_err
stage_alias(struct gw_call *c)
{
	const char *to = plan_alias(c->tenant.doc, c->model);
	if (!to || strlen(to) > PLAN_MAX_MODEL)
		return PRISM_OK;
	char slug[PLAN_MAX_SLUG + 1];
	const char *bare = plan_split_prefix(c->providers, to, slug);
	if (!c->explicit_slug[0] && slug[0] && plan_provider_by_slug(c->tprov, slug)) {
		snprintf(c->explicit_slug, sizeof c->explicit_slug, "%s", slug);
		to = bare;
	}
	snprintf(c->model, sizeof c->model, "%s", to);
	return PRISM_OK;
}

/* --- automatic routing ---------------------------------------------------------------------------------- */

/* The previous fill of a session's context window (input tokens / window of its last successful request),
 * per process: what the session-fill upgrade of the router reads.  A small direct-mapped table; a session
 * served by another process of the pool is simply unknown here. */
#define FILL_SLOTS 4096
#define FILL_TTL_MS (30L * 60 * 1000)

struct fill_slot {
	char tenant[25];
	char session[GW_MAX_SESSION_ID + 1];
	double pct;
	int64_t at;
};

static pthread_mutex_t fill_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fill_slot *fill_table;

/* Sessions are the client's own ids (x-session-id): an entry belongs to one tenant, so tenants that
 * happen to use the same id never see each other's fill. */
static size_t
fill_index(const char *tenant, const char *session)
{
	uint64_t h = 1469598103934665603ULL;          /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)tenant; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const unsigned char *p = (const unsigned char *)session; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % FILL_SLOTS);
}

static double
fill_get(const char *tenant, const char *session)
{
	double pct = -1;
	if (!session[0])
		return pct;
	int64_t now = clock_monotonic_ms();
	pthread_mutex_lock(&fill_lock);
	if (fill_table) {
		const struct fill_slot *f = &fill_table[fill_index(tenant, session)];
		if (strcmp(f->tenant, tenant) == 0 && strcmp(f->session, session) == 0 && now - f->at < FILL_TTL_MS)
			pct = f->pct;
	}
	pthread_mutex_unlock(&fill_lock);
	return pct;
}

static void
fill_put(const char *tenant, const char *session, long in_tokens, long window)
{
	if (!session[0] || in_tokens <= 0 || window <= 0)
		return;
	pthread_mutex_lock(&fill_lock);
	if (!fill_table)
		fill_table = xcalloc(FILL_SLOTS, sizeof *fill_table);
	struct fill_slot *f = &fill_table[fill_index(tenant, session)];
	snprintf(f->tenant, sizeof f->tenant, "%s", tenant);
	snprintf(f->session, sizeof f->session, "%s", session);
	f->pct = (double)in_tokens / (double)window;
	f->at = clock_monotonic_ms();
	pthread_mutex_unlock(&fill_lock);
}

/* Force-route modes (off, fim_only, smart, all) send a chat request that names a model through the router;
 * the opt-out token in the last user message keeps the named model.  The token is taken out of every chat
 * request before it is forwarded, whatever the mode. */
static enum prism_err
stage_force_route(struct gw_call *c)
{
	bool opted_out = signals_take_opt_out(c->body);
	if (opted_out || c->explicit_slug[0] || plan_is_auto_model(c->model) ||
	    strcmp(route_force_mode(c->tenant.doc), "off") == 0)
		return PRISM_OK;
	c->force_routed = true;
	snprintf(c->user_model, sizeof c->user_model, "%s", c->model);
	return PRISM_OK;
}

static enum prism_err stage_limits(struct gw_call *c);

/* The classifier costs money and time: a request the tenant's limits refuse must not reach it. */
static bool
limits_before_classifier(void *arg)
{
	struct gw_call *c = arg;
	return stage_limits(c) == PRISM_OK;
}

static enum prism_err
stage_auto_routing(struct gw_call *c)
{
	if (!plan_is_auto_model(c->model) && !c->force_routed)
		return PRISM_OK;
	const json_t *routing = json_object_get(c->tenant.doc, "routing");
	if (c->ep != GW_EP_CHAT)
		return call_fail(c, 400, "invalid_request_error", "auto_routing_unavailable",
				 "Automatic routing ('%s') is available for chat completions only: name a model", c->model);
	if (!json_is_true(json_object_get(routing, "enabled")))
		return call_fail(c, 400, "invalid_request_error", "auto_routing_disabled",
				 "Automatic routing is not enabled for this tenant: name a model, or ask an administrator to "
				 "enable routing");
	struct rdata *rd = NULL;
	char err[256] = "";
	if (rdata_get(&rd, err, sizeof err)) {
		snprintf(c->req->errdetail, sizeof c->req->errdetail, "routing data: %s", err);
		return call_fail(c, 503, "server_error", "store_unavailable",
				 "The gateway's data store is unavailable; retry shortly");
	}
	struct route_input in = {
		.request = c->body,
		.tenant_doc = c->tenant.doc,
		.tprov = c->tprov,
		.rd = rd,
		.user_model = c->force_routed ? c->user_model : NULL,
		.strictness = c->force_routed ? route_strictness_of(route_force_mode(c->tenant.doc)) : ROUTE_STRICT_NONE,
		.prev_fill_pct = fill_get(c->tenant.snap.tenant_id, c->session_id),
		.reserve_tokens = c->max_tokens,
		.use_classifier = true,
		.cfg = c->req->cfg,
		.is_open = breaker_peek_open_now,
		.open_arg = shm_segment_current(),
		.before_classifier = limits_before_classifier,
		.before_arg = c,
	};
	c->route = xmalloc(sizeof *c->route);
	route_decide(&in, c->route, NULL);
	struct route_result *r = c->route;
	c->auto_routed = true;
	if (r->stopped) {
		/* the limits refused the request (already answered) before the classifier was called */
		r->category_prompt = "";
		rdata_put(rd);
		return status_err(c->status);
	}
	if (!r->ok) {
		r->category_prompt = "";
		rdata_put(rd);
		return call_fail(c, 503, "server_error", "no_route",
				 "Automatic routing found no model for this request (tier %s, category %s): none of this "
				 "tenant's models is visible, allowed, healthy and large enough, and no default model is set",
				 route_tier_name(r->tier) ? route_tier_name(r->tier) : "none", r->category[0] ? r->category : "none");
	}
	snprintf(c->model, sizeof c->model, "%s", r->model);
	c->explicit_slug[0] = '\0';       /* "slug/auto": the router chose among all the tenant's providers */
	/* The category's instructions go to the model with the tenant's own (stage system_prompt). */
	if (r->category_prompt[0] && !r->sig.is_fim)
		c->category_prompt = xstrdup(r->category_prompt);
	rdata_put(rd);
	r->category_prompt = "";
	resp_header(c->req, "x-prism-routed-model", r->model);
	if (route_tier_name(r->tier))
		resp_header(c->req, "x-prism-route-tier", route_tier_name(r->tier));
	if (r->category[0])
		resp_header(c->req, "x-prism-route-category", r->category);
	log_debug("rid=%s routed to %s (%s, %s, %s) in %lld us", c->req->request_id, r->model, r->category,
		  route_tier_name(r->tier) ? route_tier_name(r->tier) : "-", r->overrides, (long long)r->analysis_us);
	return PRISM_OK;
}

/* The instructions the gateway adds to a chat request (the original's §4.17): the tenant's
 * defaultSystemPrompt ("" = none), the routed category's targetSystemPrompt, and, when force-routing
 * replaced the model the client named, a note saying so -- for the model to mention only when the user
 * asks which model they are talking to.  One text, appended to the last system message unless it is
 * already there (route_inject_system keeps array content as blocks).  Autocompletion requests get nothing:
 * any text there ends up in the user's code. */
static enum prism_err
stage_system_prompt(struct gw_call *c)
{
	if (c->route && c->route->sig.is_fim)
		return PRISM_OK;
	const char *base = json_string_value(json_object_get(c->tenant.doc, "defaultSystemPrompt"));
	struct buf b;
	buf_init(&b, (size_t)-1);
	if (base && *base)
		buf_printf(&b, "%s", base);
	if (c->category_prompt)
		buf_printf(&b, "%s%s", b.len ? "\n\n" : "", c->category_prompt);
	if (c->force_routed && strcmp(c->model, c->user_model) != 0)
		buf_printf(&b, "%s[Routing note: this request reached Model Prism, an LLM gateway that routes each request to a "
			   "suitable model. The client asked for \"%s\"; the gateway chose the current model for this task. "
			   "Mention this only if the user asks which model or assistant they are talking to; otherwise "
			   "ignore this note.]", b.len ? "\n\n" : "", c->user_model);
	if (b.len)
		route_inject_system(c->body, buf_cstr(&b));
	buf_free(&b);
	return PRISM_OK;
}

static enum prism_err
stage_plan(struct gw_call *c)
{
	plan_build(&c->plan, c->tenant.doc, c->tprov, c->model, c->explicit_slug, c->ep == GW_EP_EMBEDDINGS);
	if (c->plan.n == 0)
		return call_fail(c, 400, "invalid_request_error", "model_not_found",
				 "No provider found for model '%s'. The model may not exist, is hidden, or is not assigned to "
				 "this tenant.", c->requested_model);
	return PRISM_OK;
}

static enum prism_err
stage_policy(struct gw_call *c)
{
	plan_apply_policy(&c->plan, c->tenant.doc);
	if (c->plan.n == 0)
		return call_fail(c, 403, "access_denied", "model_not_allowed",
				 "Model '%s' is not allowed by tenant model policy", c->requested_model);
	return PRISM_OK;
}

/* Switches the request to a larger-context model: a new plan for it, with the policy applied. */
static bool
switch_to_larger(struct gw_call *c, long needed)
{
	/* Embeddings never change model (another model is another vector space); a client that named a
	 * provider keeps it (it may have chosen it for where its data may go). */
	if (c->ep == GW_EP_EMBEDDINGS || c->explicit_slug[0])
		return false;
	char bigger[PLAN_MAX_MODEL + 1];
	long ctx = 0;
	if (!plan_larger_model(c->tenant.doc, c->tprov, c->model, needed, breaker_peek_open_now, shm_segment_current(),
			       bigger, &ctx))
		return false;
	struct plan p;
	plan_build(&p, c->tenant.doc, c->tprov, bigger, NULL, false);
	plan_apply_policy(&p, c->tenant.doc);
	if (p.n == 0) {
		plan_free(&p);
		return false;
	}
	if (!c->context_fallback)
		snprintf(c->original_model, sizeof c->original_model, "%s", c->model);
	c->context_fallback = true;
	snprintf(c->model, sizeof c->model, "%s", bigger);
	c->explicit_slug[0] = '\0';
	plan_free(&c->plan);
	c->plan = p;
	c->context_window = p.c[0].context_window;
	log_info("rid=%s context fallback: %s -> %s (window %ld, needed ~%ld)", c->req->request_id, c->original_model,
		 bigger, ctx, needed);
	return true;
}

static enum prism_err
stage_context(struct gw_call *c)
{
	const struct plan_candidate *first = &c->plan.c[0];
	long ctx = first->context_window;
	c->context_window = ctx;
	if (ctx <= 0)
		return PRISM_OK;
	long out = c->max_tokens;
	if (out && first->max_output && out > first->max_output)
		out = first->max_output;
	long reserve = out ? out : (ctx / 4 < GW_DEFAULT_RESERVE ? ctx / 4 : GW_DEFAULT_RESERVE);
	long needed = c->est_input + reserve;
	if (needed <= ctx)
		return PRISM_OK;
	if (switch_to_larger(c, needed))
		return PRISM_OK;
	/* Without an explicit max_tokens only an input that alone overflows is refused before the call: the
	 * reserve is a guess, the provider decides. */
	if (!out && c->est_input < ctx)
		return PRISM_OK;
	return call_fail(c, 400, "invalid_request_error", "context_length_exceeded",
			 "The request needs about %ld tokens (input ~%ld + output %ld) but model '%s' has a context window of "
			 "%ld tokens, and no larger model is available to this tenant",
			 needed, c->est_input, reserve, c->model, ctx);
}

/* Lowers max_tokens / max_completion_tokens of the upstream body to limit; true when it changed one. */
static bool
clamp_body(json_t *body, long limit)
{
	bool changed = false;
	static const char *const fields[] = { "max_tokens", "max_completion_tokens" };
	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(body, fields[i]);
		if (json_is_integer(v) && json_integer_value(v) > limit) {
			json_object_set_new(body, fields[i], json_integer(limit));
			changed = true;
		}
	}
	return changed;
}

static enum prism_err
stage_max_tokens(struct gw_call *c)
{
	long limit = c->plan.c[0].max_output;
	if (limit > 0 && clamp_body(c->body, limit))
		c->clamped = true;
	return PRISM_OK;
}

static enum prism_err
stage_transform(struct gw_call *c)
{
	json_t *b = c->body;
	if (c->ep == GW_EP_EMBEDDINGS) {
		json_object_del(b, "stream");
		json_object_del(b, "stream_options");
	} else if (c->stream) {
		/* The adapter asks for usage upstream (stream_options.include_usage); the client gets the usage
		 * chunk only when it asked (relay.h). */
		json_object_set_new(b, "stream", json_true());
	} else {
		json_object_set_new(b, "stream", json_false());
		json_object_del(b, "stream_options");   /* OpenAI refuses stream_options without stream */
	}
	if (c->ep == GW_EP_CHAT) {
		/* Responses-API block types some clients send in chat messages. */
		size_t i, k;
		json_t *m, *part;
		json_array_foreach(json_object_get(b, "messages"), i, m) {
			json_array_foreach(json_object_get(m, "content"), k, part) {
				const char *t = json_string_value(json_object_get(part, "type"));
				if (t && (strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0))
					json_object_set_new(part, "type", json_string("text"));
			}
		}
	}
	return PRISM_OK;
}

/* --- dispatch -------------------------------------------------------------------------------------------- */

static void
metric_upstream(const struct plan_candidate *cand, const struct provider_result *r, bool failed)
{
	struct shm_segment *seg = shm_segment_current();
	if (!seg)
		return;
	char labels[SHM_LABEL_MAX];
	if (metrics_labels(labels, sizeof labels, (const char *const[]){ "provider", cand->slug, NULL }) == PRISM_OK)
		metrics_observe(seg, METRIC_UPSTREAM_DURATION, metrics_label_id(seg, labels), r->duration_ms * 1000);
	if (failed && metrics_labels(labels, sizeof labels,
				     (const char *const[]){ "provider", cand->slug, "class",
							    provider_errclass_name(r->errclass), NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_UPSTREAM_ERRORS, metrics_label_id(seg, labels), 1);
}

static struct gw_attempt *
new_attempt(struct gw_call *c, const struct plan_candidate *cand)
{
	if (c->nattempts >= GW_MAX_ATTEMPTS)
		c->nattempts = GW_MAX_ATTEMPTS - 1;   /* keep the last: it decides the answer */
	if (c->nattempts == c->cap_attempts) {
		/* one at first: an attempt is below malloc's large-chunk size, two are not, and a large
		 * request makes glibc consolidate its fast bins first */
		c->cap_attempts = c->cap_attempts ? 2 * c->cap_attempts : 1;
		if (c->cap_attempts > GW_MAX_ATTEMPTS)
			c->cap_attempts = GW_MAX_ATTEMPTS;
		c->attempts = xrealloc(c->attempts, c->cap_attempts * sizeof *c->attempts);
	}
	struct gw_attempt *a = &c->attempts[c->nattempts++];
	memset(a, 0, sizeof *a);
	snprintf(a->provider_id, sizeof a->provider_id, "%s", cand->id);
	snprintf(a->provider_name, sizeof a->provider_name, "%s", cand->name);
	snprintf(a->model, sizeof a->model, "%s", cand->model);
	relay_utf8_fix(a->provider_name);
	return a;
}

static void
add_skipped(struct gw_call *c, const char *name)
{
	size_t n = strlen(c->skipped);
	snprintf(c->skipped + n, sizeof c->skipped - n, "%s'%s'", n ? ", " : "", name);
}

static void
served_by(struct gw_call *c, const struct plan_candidate *cand)
{
	snprintf(c->served_id, sizeof c->served_id, "%s", cand->id);
	snprintf(c->served_name, sizeof c->served_name, "%s", cand->name);
	relay_utf8_fix(c->served_name);
	snprintf(c->served_slug, sizeof c->served_slug, "%s", cand->slug);
	c->served_doc = cand->provider;
	snprintf(c->model, sizeof c->model, "%s", cand->model);
}

static void
mark_client_gone(struct gw_call *c)
{
	c->client_gone = true;
	c->status = 499;
	snprintf(c->error_type, sizeof c->error_type, "client_gone");
	snprintf(c->error_code, sizeof c->error_code, "client_gone");
	snprintf(c->error_message, sizeof c->error_message, "the client closed the connection");
}

static enum prism_err
answer_failure(struct gw_call *c)
{
	struct gw_failure f;
	pipeline_map_failure(c->attempts, c->nattempts, c->model, c->skipped, &f);
	if (f.retry_after_s > 0 && !c->req->headers_sent) {
		char ra[24];
		snprintf(ra, sizeof ra, "%ld", f.retry_after_s);
		resp_header(c->req, "Retry-After", ra);
	}
	return call_fail(c, f.status, f.type, f.code, "%s", f.message);
}

static enum prism_err
stage_dispatch(struct gw_call *c)
{
	struct shm_segment *seg = shm_segment_current();
	struct breaker_cfg bcfg = BREAKER_CFG_DEFAULT;
	enum provider_kind kind = c->ep == GW_EP_CHAT ? PROVIDER_CHAT
				  : c->ep == GW_EP_COMPLETIONS ? PROVIDER_COMPLETIONS : PROVIDER_EMBEDDINGS;
	bool retried_max = false, retried_ctx = false;
	if (c->stream) {
		relay_init(&c->relay, c->req, c->ep == GW_EP_CHAT ? RELAY_CHAT : RELAY_COMPLETIONS, c->strip_thinking,
			   c->include_usage);
		c->relay_active = true;
	}
	struct provider_stream_cb cb = { relay_on_event, &c->relay };
	const struct plan_candidate *unsupported = NULL;
	size_t i = 0;
	while (i < c->plan.n) {
		const struct plan_candidate *cand = &c->plan.c[i];
		const struct provider_ops *ops = provider_ops_for(cand->type);
		if (!ops) {
			/* azure and bedrock until their adapters land: not a call, not the provider's failure */
			if (!unsupported)
				unsupported = cand;
			i++;
			continue;
		}
		struct plan_target pt;
		char terr[256] = "";
		if (plan_target_open(c->req->cfg, cand->provider, &pt, terr, sizeof terr)) {
			log_error("rid=%s %s", c->req->request_id, terr);
			struct gw_attempt *a = new_attempt(c, cand);
			a->errclass = PE_AUTH;
			snprintf(a->message, sizeof a->message, "the gateway cannot read its credentials for this provider");
			i++;
			continue;
		}
		enum breaker_verdict v = seg ? breaker_allow(seg, cand->id, clock_monotonic_ms(), &bcfg) : BREAKER_ALLOW;
		if (v == BREAKER_DENY) {
			plan_target_close(&pt);
			add_skipped(c, cand->name);
			new_attempt(c, cand)->skipped = true;
			i++;
			continue;
		}
		json_object_set_new(c->body, "model", json_string(cand->model));
		if (cand->max_output > 0 && clamp_body(c->body, cand->max_output))
			c->clamped = true;
		if (c->stream)
			relay_attempt(&c->relay);
		struct provider_result r;
		memset(&r, 0, sizeof r);
		int64_t t0 = clock_monotonic_ms();
		enum prism_err e = ops->call(&pt.t, kind, c->body, c->stream ? &cb : NULL, &r);
		plan_target_close(&pt);
		if (r.duration_ms <= 0)
			r.duration_ms = clock_monotonic_ms() - t0;
		if (e == PRISM_OK && r.errclass != PE_NONE)
			e = PRISM_E_UPSTREAM;
		if (e != PRISM_OK && e != PRISM_E_CLIENT_GONE && r.errclass == PE_NONE)
			r.errclass = e == PRISM_E_TIMEOUT ? PE_TIMEOUT : PE_PROTOCOL;

		struct gw_attempt *a = new_attempt(c, cand);
		a->status = r.http_status;
		a->errclass = e == PRISM_OK ? PE_NONE : r.errclass;
		a->retry_after_s = r.retry_after_s;
		a->latency_ms = r.duration_ms;
		a->first_byte_ms = r.first_byte_ms;
		snprintf(a->message, sizeof a->message, "%s", r.message);
		relay_utf8_fix(a->message);

		bool client_gone = e == PRISM_E_CLIENT_GONE || (c->stream && c->relay.client_gone);
		bool unhealthy = e != PRISM_OK && !client_gone && provider_errclass_unhealthy(r.errclass);
		/* A client that left says nothing about the provider, nor does one malformed answer (it may be
		 * one model's); neither may count as a success that resets the failures: no report (a half-open
		 * probe slot is released by its cool-down). */
		bool neutral = client_gone || (e != PRISM_OK && r.errclass == PE_PROTOCOL);
		if (seg && !neutral)
			breaker_report(seg, cand->id, unhealthy, v == BREAKER_ALLOW_PROBE, clock_monotonic_ms(), &bcfg);
		metric_upstream(cand, &r, e != PRISM_OK && !client_gone);

		if (client_gone) {
			/* Not the provider's failure: the client went away and the adapter stopped the transfer. */
			a->errclass = PE_NONE;
			snprintf(a->message, sizeof a->message, "client closed the connection");
			served_by(c, cand);
			mark_client_gone(c);
			c->result = r;
			return PRISM_E_CLIENT_GONE;
		}
		if (e == PRISM_OK) {
			served_by(c, cand);
			c->result = r;
			c->ok = true;
			return PRISM_OK;
		}
		if (c->stream && c->relay.started) {
			/* Output has reached the client: no failover (it would repeat or mix answers). */
			served_by(c, cand);
			c->result = r;
			log_warn("rid=%s stream from '%s' failed after %ld events: %s", c->req->request_id, cand->name,
				 c->relay.events_out, provider_errclass_name(r.errclass));
			char o[48];
			bool slow = r.errclass == PE_TIMEOUT;
			return call_fail(c, slow ? 504 : 502, slow ? "timeout_error" : "provider_error",
					 slow ? "upstream_timeout" : "upstream_error", "Provider '%s' failed during the stream (%s)%s%s",
					 cand->name, outcome_text(a, o, sizeof o), r.message[0] ? ": " : "", r.message);
		}
		if (r.errclass == PE_MAX_TOKENS) {
			long cur = body_long(c->body, "max_completion_tokens");
			if (!cur)
				cur = body_long(c->body, "max_tokens");
			long lim = r.max_tokens_limit;
			provider_result_clear(&r);
			if (!retried_max && lim > 0 && (!cur || cur > lim)) {
				retried_max = true;
				if (!clamp_body(c->body, lim))
					json_object_set_new(c->body, "max_tokens", json_integer(lim));
				c->clamped = true;
				continue;    /* the same candidate, once, with the provider's limit */
			}
			return answer_failure(c);
		}
		if (r.errclass == PE_CONTEXT) {
			provider_result_clear(&r);
			long needed = c->est_input + (c->max_tokens ? c->max_tokens : 1);
			if (!retried_ctx && switch_to_larger(c, needed > cand->context_window ? needed : cand->context_window + 1)) {
				retried_ctx = true;
				i = 0;
				continue;
			}
			return answer_failure(c);
		}
		enum provider_errclass cls = r.errclass;
		int http = r.http_status;
		provider_result_clear(&r);
		/* A 400/422 judges the request: the same request fails everywhere.  A 404 (the model is gone
		 * there, or the account lacks access) is about this provider: the next one may serve it. */
		if (cls == PE_BAD_REQUEST && http != 404)
			return answer_failure(c);
		i++;      /* unhealthy, rate limited, credentials refused, not found: the next candidate */
	}
	if (c->nattempts == 0 && !c->skipped[0] && unsupported)
		return call_fail(c, 502, "provider_error", "provider_unsupported",
				 "Provider '%s' is of type '%s', which this gateway cannot call yet", unsupported->name,
				 unsupported->type);
	return answer_failure(c);
}

/* --- enrichment ------------------------------------------------------------------------------------------ */

static long
estimate_body_output(const json_t *body, enum gw_endpoint ep)
{
	long n = 0;
	size_t i;
	const json_t *ch;
	json_array_foreach(json_object_get(body, "choices"), i, ch) {
		const char *s;
		if (ep == GW_EP_COMPLETIONS) {
			if ((s = json_string_value(json_object_get(ch, "text"))))
				n += tokens_estimate_text(s, strlen(s));
			continue;
		}
		const json_t *msg = json_object_get(ch, "message");
		static const char *const fields[] = { "content", "reasoning_content", "reasoning" };
		for (size_t k = 0; k < 3; k++)
			if ((s = json_string_value(json_object_get(msg, fields[k]))))
				n += tokens_estimate_text(s, strlen(s));
		size_t t;
		const json_t *tc;
		json_array_foreach(json_object_get(msg, "tool_calls"), t, tc)
			if ((s = json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"))))
				n += tokens_estimate_text(s, strlen(s));
	}
	return n;
}

static void
compute_cost(struct gw_call *c)
{
	struct price p;
	cost_price(c->tenant.doc, c->served_doc, c->model, &p);
	c->cost_micro = cost_micro_usd(&p, c->in_tokens, c->out_tokens);
}

/* What the request would have cost on its baseline: the model the user named when force-routing replaced
 * it, else the tenant's routing.baselineModel, else the routed model itself (nothing saved). */
static void
compute_baseline(struct gw_call *c)
{
	if (!c->auto_routed)
		return;
	const char *b = c->force_routed ? c->user_model
			: json_string_value(json_object_get(json_object_get(c->tenant.doc, "routing"), "baselineModel"));
	if (!b || !*b)
		b = c->model;
	snprintf(c->baseline_model, sizeof c->baseline_model, "%s", b);
	if (strcmp(b, c->model) == 0) {
		c->baseline_micro = c->cost_micro;
		return;
	}
	struct price p;
	cost_price(c->tenant.doc, NULL, b, &p);
	c->baseline_micro = cost_micro_usd(&p, c->in_tokens, c->out_tokens);
}

/* The response's auto_routing object: the decision and what it cost and saved. */
static json_t *
auto_routing_json(const struct gw_call *c)
{
	json_t *o = route_result_json(c->route);
	int64_t routing = c->route->classifier_cost_micro;
	json_object_set_new(o, "selected_model", json_string(c->model));
	json_object_set_new(o, "cost_usd", json_real(cost_usd(c->cost_micro)));
	json_object_set_new(o, "routing_cost_usd", json_real(cost_usd(routing)));
	json_object_set_new(o, "baseline_model", json_string(c->baseline_model));
	json_object_set_new(o, "baseline_cost_usd", json_real(cost_usd(c->baseline_micro)));
	json_object_set_new(o, "saved_usd", json_real(cost_usd(c->baseline_micro - c->cost_micro - routing)));
	if (c->force_routed)
		json_object_set_new(o, "requested_model", json_string(c->user_model));
	return o;
}

/* The gateway's members of a non-streaming answer, written into w's open object: cost_info, auto_routing,
 * context_fallback, session_id.  False without memory. */
static bool
write_members(struct gw_call *c, struct jtext *w)
{
	jtext_open(w, "cost_info");
	jtext_str(w, "model", c->model);
	jtext_str(w, "provider", c->served_name);
	jtext_int(w, "input_tokens", c->in_tokens);
	jtext_int(w, "output_tokens", c->out_tokens);
	jtext_int(w, "tokens_used", c->in_tokens + c->out_tokens);
	jtext_micros(w, "cost_usd", c->cost_micro);
	if (c->usage_estimated)
		jtext_bool(w, "estimated", true);
	jtext_close(w);
	if (c->auto_routed) {
		json_t *o = auto_routing_json(c);
		jtext_value(w, "auto_routing", o);
		json_decref(o);
	}
	if (c->context_fallback) {
		jtext_open(w, "context_fallback");
		jtext_str(w, "original_model", c->original_model);
		jtext_str(w, "fallback_model", c->model);
		jtext_str(w, "reason", "context_length_exceeded");
		jtext_close(w);
	}
	jtext_str(w, "session_id", c->session_id);
	return w->err == PRISM_OK;
}

/* The answer sent with the gateway's members added: into the provider's text as it came, before its
 * closing brace at `at` (not empty: a member before it), as the tree's serialisation would put them. */
static enum prism_err
send_with_members(struct gw_call *c, const char *text, size_t len, size_t at, bool empty)
{
	struct buf out;
	buf_init(&out, len + GW_MAX_MESSAGE * 4 + 65536);
	bool ok = buf_append(&out, text, at) == PRISM_OK;
	struct jtext w;
	jtext_resume(&w, &out, !empty);
	w.precision = 15;               /* reals as resp_json writes an answer's */
	ok = ok && write_members(c, &w) && buf_append(&out, text + at, len - at) == PRISM_OK;
	if (!ok) {
		buf_free(&out);
		return call_fail(c, 500, "internal_error", "internal_error", "out of memory");
	}
	c->status = 200;
	resp_status(c->req, 200);
	if (!resp_body(c->req, "application/json; charset=utf-8", out.data, out.len))
		mark_client_gone(c);
	buf_free(&out);
	return PRISM_OK;
}

/* A clean answer with its usage and nothing to strip (jscan read it): the gateway's members go into the
 * text as it came. */
static enum prism_err
enrich_text(struct gw_call *c, const struct provider_result *r)
{
	c->in_tokens = r->prompt_tokens;
	c->out_tokens = r->completion_tokens;
	compute_cost(c);
	compute_baseline(c);
	return send_with_members(c, r->body_text, r->body_len, r->scan.close_at, r->scan.empty);
}

static enum prism_err
stage_enrich(struct gw_call *c)
{
	struct provider_result *r = &c->result;
	if (c->stream) {
		if (r->usage_reported || c->relay.usage_seen) {
			c->in_tokens = r->usage_reported ? r->prompt_tokens : c->relay.prompt_tokens;
			c->out_tokens = r->usage_reported ? r->completion_tokens : c->relay.completion_tokens;
		} else {
			c->in_tokens = c->est_input;
			c->out_tokens = relay_estimate_output(&c->relay);
			c->usage_estimated = true;
		}
		compute_cost(c);
		compute_baseline(c);
		c->status = 200;
		if (c->auto_routed)
			c->relay.trailer = json_pack("{s:o}", "auto_routing", auto_routing_json(c));
		if (!relay_finish(&c->relay, c->model, c->in_tokens, c->out_tokens))
			mark_client_gone(c);
		return PRISM_OK;
	}
	if (r->body_text && r->usage_reported && !(c->ep == GW_EP_CHAT && c->strip_thinking && r->scan.reasoning))
		return enrich_text(c, r);
	json_t *body = provider_result_json(r);
	r->body = NULL;
	if (!json_is_object(body)) {
		json_decref(body);
		return call_fail(c, 502, "provider_error", "upstream_error", "Provider '%s' sent an answer without a body",
				 c->served_name);
	}
	if (r->usage_reported) {
		c->in_tokens = r->prompt_tokens;
		c->out_tokens = r->completion_tokens;
	} else {
		c->in_tokens = c->est_input;
		c->out_tokens = c->ep == GW_EP_EMBEDDINGS ? 0 : estimate_body_output(body, c->ep);
		c->usage_estimated = true;
		if (!json_is_object(json_object_get(body, "usage"))) {
			json_t *u = json_pack("{s:I, s:I}", "prompt_tokens", (json_int_t)c->in_tokens, "total_tokens",
					      (json_int_t)(c->in_tokens + c->out_tokens));
			if (c->ep != GW_EP_EMBEDDINGS)
				json_object_set_new(u, "completion_tokens", json_integer(c->out_tokens));
			json_object_set_new(body, "usage", u);
		}
	}
	if (c->ep == GW_EP_CHAT && c->strip_thinking)
		relay_strip_completion(body);
	compute_cost(c);
	compute_baseline(c);
	/* The tree's own members are replaced by the gateway's (json_dumps keeps a member where it was). */
	json_object_del(body, "cost_info");
	json_object_del(body, "auto_routing");
	json_object_del(body, "context_fallback");
	json_object_del(body, "session_id");
	size_t len = 0;
	char *text = jtext_dump(body, 15, &len);
	bool empty = json_object_size(body) == 0;
	json_decref(body);
	if (!text)
		return call_fail(c, 500, "internal_error", "internal_error", "out of memory");
	enum prism_err e = send_with_members(c, text, len, len - 1, empty);
	free(text);
	return e;
}

/* --- accounting ------------------------------------------------------------------------------------------ */

static void
client_ip_hash(const struct config *cfg, const char *ip, char out[17])
{
	out[0] = '\0';
	if (!ip || !*ip)
		return;
	/* Keyed, unlike the original's plain SHA-256 of the address (which a table of all IPv4s reverses).  The
	 * key is derived from the secret once per thread (and again after a reload changes the secret). */
	static _Thread_local char salt[CRYPTO_SHA256_HEX];
	static _Thread_local const char *salt_of;   /* the secret it was derived from (a reload makes a new one) */
	/* The thread's last address and its hash: a client (or the proxy in front) sends many requests. */
	static _Thread_local char last_ip[64], last_hash[17];
	char h[CRYPTO_SHA256_HEX];
	const char *secret = cfg->jwt_secret ? cfg->jwt_secret : "";
	if (salt_of != secret) {
		crypto_hmac_sha256_hex(secret, strlen(secret), "prism client ip hash", 20, salt);
		salt_of = secret;
		last_ip[0] = '\0';
	}
	if (last_ip[0] && strcmp(ip, last_ip) == 0) {
		memcpy(out, last_hash, 17);
		return;
	}
	crypto_hmac_sha256_hex(salt, strlen(salt), ip, strlen(ip), h);
	snprintf(out, 17, "%.16s", h);
	if (strlen(ip) < sizeof last_ip) {
		memcpy(last_ip, ip, strlen(ip) + 1);
		memcpy(last_hash, out, 17);
	}
}

/* A string member that is left out when empty. */
static void
put_str(struct jtext *w, const char *k, const char *v)
{
	if (v && *v)
		jtext_str(w, k, v);
}

/* The request's RequestLog, written as its text (without _id) into b, and the keys of its aggregates;
 * false when it does not fit (b's maximum). */
static bool
requestlog_text(struct gw_call *c, int64_t duration_ms, char id[25], struct buf *b, struct analytics_keys *k)
{
	char ts[32], iphash[17];
	int64_t now = clock_realtime_ms();
	store_new_id(id);
	clock_iso8601(now, ts, sizeof ts);
	bool success = c->ok && !c->client_gone && c->status == 200;
	const char *routed = c->served_id[0] ? c->model : c->plan.n ? c->model : "none";
	const struct route_result *rt = c->auto_routed ? c->route : NULL;
	/* the classifier's cost is part of what the request cost */
	int64_t routing = rt ? rt->classifier_cost_micro : 0;
	bool baseline = rt && c->baseline_model[0];
	int64_t actual_m = c->cost_micro + routing, baseline_m = baseline ? c->baseline_micro : c->cost_micro;
	int64_t saved_m = baseline ? c->baseline_micro - c->cost_micro - routing : 0;
	*k = (struct analytics_keys){
		.id = id,
		.tenant = c->tenant.snap.tenant_id,
		.time_ms = now,
		.error = !success,
		.auto_routed = rt != NULL,
		.actual = cost_usd(actual_m),
		.baseline = cost_usd(baseline_m),
		.saved = cost_usd(saved_m),
		.routing = cost_usd(routing),
		.input = c->in_tokens,
		.output = c->out_tokens,
		.dur = duration_ms,
		.model = routed,
		.category = rt && rt->category[0] ? rt->category : NULL,
		.tier = rt ? route_tier_name(rt->tier) : NULL,
		.user = c->user_name[0] ? c->user_name : NULL,
	};
	struct jtext w;
	jtext_init(&w, b);
	jtext_open(&w, NULL);
	jtext_str(&w, "tenantId", k->tenant);
	jtext_str(&w, "timestamp", ts);
	jtext_str(&w, "requestedModel", c->requested_model[0] ? c->requested_model : "unknown");
	jtext_str(&w, "routedModel", routed);
	jtext_str(&w, "endpoint", endpoint_name(c->ep));
	jtext_int(&w, "inputTokens", k->input);
	jtext_int(&w, "outputTokens", k->output);
	jtext_micros(&w, "actualCostUsd", actual_m);
	jtext_micros(&w, "baselineCostUsd", baseline_m);
	jtext_micros(&w, "savedUsd", saved_m);
	jtext_bool(&w, "isAutoRouted", k->auto_routed);
	jtext_bool(&w, "streaming", c->stream);
	jtext_str(&w, "status", success ? "success" : "error");
	jtext_int(&w, "durationMs", duration_ms);
	jtext_bool(&w, "contextFallback", c->context_fallback);
	jtext_bool(&w, "usageEstimated", c->usage_estimated);
	if (rt) {
		/* the routing decision (route_result_log fills a small tree: only auto-routed requests have one) */
		json_t *o = json_object();
		route_result_log(rt, o);
		const char *name;
		json_t *m;
		json_object_foreach(o, name, m)
			jtext_value(&w, name, m);
		json_decref(o);
		if (baseline)
			jtext_str(&w, "baselineModel", c->baseline_model);
		if (c->force_routed) {
			jtext_bool(&w, "forceRouted", true);
			put_str(&w, "forceRoutedFrom", c->user_model);
		}
	}
	put_str(&w, "sessionId", c->session_id);
	put_str(&w, "userName", c->user_name);
	put_str(&w, "providerId", c->served_id);
	if (c->context_fallback)
		put_str(&w, "originalModel", c->original_model);
	if (c->context_window > 0)
		jtext_int(&w, "contextWindowUsed", c->context_window);
	client_ip_hash(c->req->cfg, c->req->client_ip, iphash);
	put_str(&w, "clientIpHash", iphash);
	jtext_bool(&w, "viaProxy", request_header(c->req, "x-forwarded-for") != NULL);
	if (c->clamped)
		jtext_bool(&w, "maxTokensClamped", true);
	if (!success) {
		put_str(&w, "errorType", c->error_code[0] ? c->error_code : c->error_type);
		char em[GW_MAX_MESSAGE + 64];
		snprintf(em, sizeof em, "[%d] %s: %s", c->status, c->error_type[0] ? c->error_type : "error",
			 c->error_message);
		jtext_str(&w, "errorMessage", em);
	}

	/* What happened on the way: failover to another provider, or a larger model. */
	bool failover = false;
	const char *first_failed = "";
	for (size_t i = 0; i + 1 < c->nattempts && !failover; i++) {
		failover = !c->attempts[i].skipped &&
			   strcmp(c->attempts[i].provider_id, c->attempts[c->nattempts - 1].provider_id) != 0;
		first_failed = c->attempts[i].provider_name;
	}
	if (success && (c->context_fallback || failover)) {
		char detail[512];
		if (c->context_fallback)
			snprintf(detail, sizeof detail, "context overflow on %.200s -> %.200s", c->original_model, c->model);
		else
			snprintf(detail, sizeof detail, "'%.120s' failed -> served by '%.120s'", first_failed, c->served_name);
		jtext_bool(&w, "handledFallback", true);
		jtext_str(&w, "fallbackType", c->context_fallback ? "context_overflow" : "provider_chain");
		jtext_str(&w, "fallbackDetail", detail);
	}
	jtext_open_array(&w, "attempts");
	for (size_t i = 0; i < c->nattempts; i++) {
		const struct gw_attempt *a = &c->attempts[i];
		const char *cls = a->skipped ? "circuit_open"
				  : a->errclass == PE_NONE ? "none" : provider_errclass_name(a->errclass);
		jtext_open(&w, NULL);
		jtext_str(&w, "providerId", a->provider_id);
		jtext_str(&w, "providerName", a->provider_name);
		jtext_str(&w, "model", a->model);
		jtext_int(&w, "status", a->status);
		jtext_str(&w, "errorClass", cls);
		jtext_int(&w, "latencyMs", a->latency_ms);
		if (!a->skipped && a->first_byte_ms > 0)
			jtext_int(&w, "firstByteMs", a->first_byte_ms);
		put_str(&w, "message", a->message);
		jtext_close(&w);
	}
	jtext_close_array(&w);
	jtext_close(&w);
	return w.err == PRISM_OK;
}

static void
account_metrics(const struct gw_call *c, bool success)
{
	struct shm_segment *seg = shm_segment_current();
	if (!seg)
		return;
	const char *tenant = c->tenant.snap.slug;
	const char *status = success ? "success" : c->client_gone ? "client_gone" : "error";
	/* A model name is a label only when a provider of the tenant serves it: names clients make up
	 * collapse into "other", so they cannot grow the series without bound. */
	const char *model = c->served_id[0] || c->plan.n ? c->model : "other";
	char labels[SHM_LABEL_MAX];
	if (metrics_labels(labels, sizeof labels,
			   (const char *const[]){ "tenant", tenant, "model", model, "status", status, NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_GW_REQUESTS, metrics_label_id(seg, labels), 1);
	if (c->in_tokens &&
	    metrics_labels(labels, sizeof labels, (const char *const[]){ "tenant", tenant, "direction", "input", NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_GW_TOKENS, metrics_label_id(seg, labels), c->in_tokens);
	if (c->out_tokens &&
	    metrics_labels(labels, sizeof labels, (const char *const[]){ "tenant", tenant, "direction", "output", NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_GW_TOKENS, metrics_label_id(seg, labels), c->out_tokens);
	if (c->cost_micro > 0 &&
	    metrics_labels(labels, sizeof labels, (const char *const[]){ "tenant", tenant, NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_GW_COST, metrics_label_id(seg, labels), (long)c->cost_micro);
}

static enum prism_err
stage_accounting(struct gw_call *c)
{
	if (!c->authed)
		return PRISM_OK;
	if (c->client_gone)
		c->req->client_gone = true;
	/* Tokens of a request cut short: what reached the client, estimated like a missing usage. */
	if (!c->ok && c->stream && c->relay_active && c->relay.started && !c->in_tokens) {
		c->in_tokens = c->relay.usage_seen ? c->relay.prompt_tokens : c->est_input;
		c->out_tokens = c->relay.usage_seen ? c->relay.completion_tokens : relay_estimate_output(&c->relay);
		c->usage_estimated = !c->relay.usage_seen;
		if (c->served_doc)
			compute_cost(c);
	}
	if (c->limits_ok)
		gw_limits_settle(&c->tenant, c->limit_charged,
				 c->in_tokens + c->out_tokens +
				 (c->route ? c->route->classifier_in + c->route->classifier_out : 0));
	if (c->ok && !c->client_gone && !c->usage_estimated)
		fill_put(c->tenant.snap.tenant_id, c->session_id, c->in_tokens, c->context_window);
	int64_t duration = clock_monotonic_ms() - c->t0_ms;
	bool success = c->ok && !c->client_gone && c->status == 200;
	char id[25];
	struct analytics_keys keys;
	struct buf text;
	buf_init(&text, (size_t)ANALYTICS_MAX_RECORD);
	buf_room(&text, 1024);   /* one allocation for a usual record */
	if (requestlog_text(c, duration, id, &text, &keys))
		analytics_submit_text(&keys, text.data, text.len);
	else
		log_error("rid=%s the request log could not be built", c->req->request_id);
	buf_free(&text);
	if (c->route)
		c->cost_micro += c->route->classifier_cost_micro;   /* metrics: the classifier's cost counts too */
	account_metrics(c, success);
	return PRISM_OK;
}

const struct gw_stage gw_stages[] = {
#define ALL ((1u << GW_EP_CHAT) | (1u << GW_EP_COMPLETIONS) | (1u << GW_EP_EMBEDDINGS))
#define GEN ((1u << GW_EP_CHAT) | (1u << GW_EP_COMPLETIONS))
	{ "auth", stage_auth, ALL, 0 },
	{ "parse", stage_parse, ALL, 0 },
	{ "prefix", stage_prefix, ALL, 0 },
	{ "alias", stage_alias, ALL, 0 },
	{ "force_route", stage_force_route, (1u << GW_EP_CHAT), 0 },
	{ "auto_routing", stage_auto_routing, ALL, 0 },
	{ "system_prompt", stage_system_prompt, (1u << GW_EP_CHAT), 0 },
	{ "plan", stage_plan, ALL, 0 },
	{ "policy", stage_policy, ALL, 0 },
	{ "context", stage_context, GEN, 0 },
	{ "max_tokens", stage_max_tokens, GEN, 0 },
	{ "limits", stage_limits, ALL, 0 },
	{ "transform", stage_transform, ALL, 0 },
	{ "dispatch", stage_dispatch, ALL, 0 },
	{ "enrich", stage_enrich, ALL, 0 },
	{ "accounting", stage_accounting, ALL, GW_STAGE_ALWAYS },
#undef ALL
#undef GEN
};
const size_t gw_nstages = sizeof gw_stages / sizeof gw_stages[0];

static void
call_free(struct gw_call *c)
{
	if (c->relay_active)
		relay_free(&c->relay);
	provider_result_clear(&c->result);
	free(c->route);
	free(c->category_prompt);
	free(c->attempts);
	plan_free(&c->plan);
	json_decref(c->body);
	json_decref(c->tprov);
	json_decref(c->providers);
	gw_tenant_free(&c->tenant);
	free(c);
}

static enum prism_err
gw_run(struct request *req, enum gw_endpoint ep)
{
	struct gw_call *c = xcalloc(1, sizeof *c);
	c->req = req;
	c->ep = ep;
	c->t0_ms = clock_monotonic_ms();
	c->path_slug = request_param(req, "tenant");
	gw_error_reset();
	enum prism_err err = PRISM_OK;
	for (size_t i = 0; i < gw_nstages; i++) {
		const struct gw_stage *s = &gw_stages[i];
		if (!(s->endpoints & (1u << ep)) || (err && !(s->flags & GW_STAGE_ALWAYS)))
			continue;
		enum prism_err e = s->run(c);
		if (!err)
			err = e;
	}
	call_free(c);
	return err;
}

enum prism_err
gw_chat(struct request *req)
{
	return gw_run(req, GW_EP_CHAT);
}

enum prism_err
gw_completions(struct request *req)
{
	return gw_run(req, GW_EP_COMPLETIONS);
}

enum prism_err
gw_embeddings(struct request *req)
{
	return gw_run(req, GW_EP_EMBEDDINGS);
}
