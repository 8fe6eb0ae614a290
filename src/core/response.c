/* response.c -- see response.h. */
#include "config.h"
#include "core/response.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/jtext.h"
#include "util/log.h"
#include "util/xalloc.h"

bool
resp_header_valid(const char *name, const char *value)
{
	if (!name || !*name || !value)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		/* RFC 9110 token characters */
		if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
			return false;
	}
	if (strlen(value) > PRISM_MAX_RESP_HEADER_LEN)
		return false;
	for (const char *p = value; *p; p++)
		if (*p == '\r' || *p == '\n')
			return false;
	return true;
}

enum prism_err
resp_header(struct request *req, const char *name, const char *value)
{
	if (req->headers_sent)
		return PRISM_E_INTERNAL;
	if (!resp_header_valid(name, value)) {
		log_warn("rid=%s rejected response header '%.64s' (invalid characters)", req->request_id, name);
		return PRISM_E_BAD_REQUEST;
	}
	for (size_t i = 0; i < req->nresp_headers; i++) {
		if (strcasecmp(req->resp_headers[i].name, name) == 0) {
			free(req->resp_headers[i].value);
			req->resp_headers[i].value = xstrdup(value);
			return PRISM_OK;
		}
	}
	if (req->nresp_headers >= PRISM_MAX_RESP_HEADERS)
		return PRISM_E_TOO_LARGE;
	req->resp_headers[req->nresp_headers].name = xstrdup(name);
	req->resp_headers[req->nresp_headers].value = xstrdup(value);
	req->nresp_headers++;
	return PRISM_OK;
}

void
resp_status(struct request *req, int status)
{
	if (!req->headers_sent)
		req->status = status;
}

static bool
has_header(const struct request *req, const char *name)
{
	for (size_t i = 0; i < req->nresp_headers; i++)
		if (strcasecmp(req->resp_headers[i].name, name) == 0)
			return true;
	return false;
}

/* CORS: an exact origin from cors_origins is echoed with credentials allowed; '*' allows any origin but
 * never together with credentials. */
static void
add_cors(struct request *req, struct buf *h)
{
	const struct cfg_list *allowed = &req->cfg->cors_origins;
	const char *origin = request_header(req, "origin");
	if (!origin || allowed->n == 0 || !resp_header_valid("Origin", origin))
		return;
	bool any = allowed->n == 1 && strcmp(allowed->items[0], "*") == 0;
	bool match = false;
	for (size_t i = 0; !any && i < allowed->n; i++)
		if (strcmp(allowed->items[i], origin) == 0)
			match = true;
	if (any) {
		buf_puts(h, "Access-Control-Allow-Origin: *\r\n");
	} else if (match) {
		buf_printf(h, "Access-Control-Allow-Origin: %s\r\nAccess-Control-Allow-Credentials: true\r\n", origin);
	} else {
		return;
	}
	buf_puts(h, "Vary: Origin\r\n"
		    "Access-Control-Expose-Headers: X-Request-Id, Retry-After, RateLimit, RateLimit-Policy\r\n");
}

bool
resp_send_headers(struct request *req)
{
	if (req->headers_sent)
		return !req->client_gone;
	struct buf h;
	buf_init(&h, 64 * 1024);
	buf_printf(&h, "Status: %d %s\r\n", req->status, prism_http_reason(req->status));
	buf_puts(&h, "X-Request-Id: ");
	buf_puts(&h, req->request_id);
	buf_puts(&h, "\r\n");
	buf_puts(&h, "X-Content-Type-Options: nosniff\r\n");
	if (!has_header(req, "Cache-Control"))
		buf_puts(&h, "Cache-Control: no-store\r\n");
	if (req->kind != RK_GATEWAY) {
		buf_puts(&h, "X-Frame-Options: DENY\r\n"
			     "Referrer-Policy: no-referrer\r\n"
			     "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
			     "Cross-Origin-Opener-Policy: same-origin\r\n");
	}
	add_cors(req, &h);
	for (size_t i = 0; i < req->nresp_headers; i++) {   /* no printf: a dozen lines per answer */
		buf_puts(&h, req->resp_headers[i].name);
		buf_puts(&h, ": ");
		buf_puts(&h, req->resp_headers[i].value);
		buf_puts(&h, "\r\n");
	}
	buf_puts(&h, "\r\n");
	req->headers_sent = true;
	uint64_t before = req->bytes_out;
	bool ok = request_write(req, h.data, h.len);
	req->bytes_out = before;      /* the access log counts body bytes */
	buf_free(&h);
	return ok;
}

bool
resp_body(struct request *req, const char *content_type, const void *data, size_t len)
{
	char cl[32];
	snprintf(cl, sizeof cl, "%zu", len);
	resp_header(req, "Content-Type", content_type);
	resp_header(req, "Content-Length", cl);
	if (!resp_send_headers(req))
		return false;
	if (req->head_only)
		return true;
	return request_write(req, data, len);
}

bool
resp_json(struct request *req, int status, json_t *body)
{
	if (!body)
		return resp_error(req, PRISM_E_NOMEM, NULL);
	size_t len = 0;
	char *text = jtext_dump(body, 15, &len);
	json_decref(body);
	if (!text)
		return resp_error(req, PRISM_E_NOMEM, NULL);
	resp_status(req, status);
	bool ok = resp_body(req, "application/json; charset=utf-8", text, len);
	free(text);
	return ok;
}

bool
resp_error_full(struct request *req, int status, const char *code, const char *type, const char *message)
{
	if (req->headers_sent) {
		/* Too late for a status; the stream relay writes its own error event. */
		log_warn("rid=%s error after headers were sent: %s", req->request_id, message);
		return false;
	}
	json_t *body;
	if (req->kind == RK_GATEWAY)
		body = json_pack("{s:{s:s, s:s, s:s}}", "error", "message", message, "type", type, "code", code);
	else
		body = json_pack("{s:s, s:s}", "error", message, "code", code);
	return resp_json(req, status, body);
}

bool
resp_error(struct request *req, enum prism_err err, const char *message)
{
	if (!message) {
		/* A client-safe default: the description of the code, capitalised. */
		static __thread char text[96];
		snprintf(text, sizeof text, "%s", prism_strerror(err));
		text[0] = (char)toupper((unsigned char)text[0]);
		message = text;
	}
	return resp_error_full(req, prism_err_http_status(err), prism_err_code(err), prism_err_openai_type(err),
			       message);
}

bool
sse_begin(struct request *req)
{
	resp_header(req, "Content-Type", "text/event-stream; charset=utf-8");
	resp_header(req, "Cache-Control", "no-cache, no-store");
	resp_header(req, "X-Accel-Buffering", "no");
	req->streaming = true;
	if (!resp_send_headers(req))
		return false;
	return request_flush(req);
}

bool
sse_data(struct request *req, const char *data, size_t len)
{
	return request_write(req, "data: ", 6) && request_write(req, data, len) && request_write(req, "\n\n", 2) &&
	       request_flush(req);
}

bool
sse_raw(struct request *req, const char *data, size_t len)
{
	return request_write(req, data, len) && request_flush(req);
}
