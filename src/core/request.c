/* request.c -- see request.h.  This file and server.c are the only readers of FastCGI params. */
#include "config.h"
#include "core/request.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/rand.h"
#include "util/xalloc.h"

static const char *
param(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

bool
request_id_acceptable(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > PRISM_MAX_REQUEST_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':')
			return false;
	}
	return true;
}

static bool
trusted(const struct netaddr *a, const struct netprefix *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (netprefix_contains(&t[i], a))
			return true;
	return false;
}

void
request_resolve_client(const char *remote, const char *xff, const struct netprefix *tp, size_t ntp, char *out,
		       size_t outlen)
{
	struct netaddr cur;
	snprintf(out, outlen, "%s", remote && *remote ? remote : "0.0.0.0");
	if (!remote || netaddr_parse(remote, &cur))
		return;
	netaddr_format(&cur, out, outlen);
	if (!xff || !*xff || !trusted(&cur, tp, ntp))
		return;
	/* Walk X-Forwarded-For from the right: each hop was appended by the proxy before it.  The first
	 * address not in the trusted set is the client; a malformed entry ends the walk at the last hop that
	 * a trusted proxy vouched for. */
	size_t end = strlen(xff);
	while (end > 0) {
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		char hop[64];
		size_t s = start, e = end;
		while (s < e && isspace((unsigned char)xff[s]))
			s++;
		while (e > s && isspace((unsigned char)xff[e - 1]))
			e--;
		if (e - s == 0 || e - s >= sizeof hop)
			return;
		memcpy(hop, xff + s, e - s);
		hop[e - s] = '\0';
		struct netaddr a;
		if (netaddr_parse(hop, &a))
			return;
		netaddr_format(&a, out, outlen);
		if (!trusted(&a, tp, ntp))
			return;
		end = start > 0 ? start - 1 : 0;
	}
}

/* "HTTP_X_REQUEST_ID" -> "x-request-id" in the arena; returns the offset or (size_t)-1. */
static size_t
add_header_name(struct buf *arena, const char *src, size_t n)
{
	size_t off = arena->len;
	char *d = buf_room(arena, n + 1);
	if (!d)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		d[i] = c == '_' ? '-' : c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	d[n] = '\0';
	buf_added(arena, n + 1);
	return off;
}

enum prism_err
request_begin(struct request *req, FCGX_Request *fcgx, char **cgi_env, struct config *cfg)
{
	struct buf arena = req->arena, body = req->body;   /* keep allocations across requests */
	memset(req, 0, offsetof(struct request, resp_headers));
	req->nresp_headers = 0;
	req->headers_sent = req->head_only = req->streaming = req->client_gone = false;
	req->bytes_out = 0;
	req->tenant[0] = req->errdetail[0] = '\0';
	req->arena = arena;
	req->body = body;
	if (!req->arena.max)
		buf_init(&req->arena, PRISM_MAX_URI + 1 + PRISM_MAX_HEADERS * 64);
	buf_reset(&req->arena);
	buf_init(&req->body, 0);
	buf_free(&req->body);
	req->cfg = cfg;
	req->start_us = clock_monotonic_us();
	req->status = 200;
	req->content_length = -1;
	if (fcgx) {
		req->in = fcgx->in;
		req->out = fcgx->out;
		req->envp = fcgx->envp;
	} else {
		req->cgi_in = stdin;
		req->cgi_out = stdout;
		req->envp = cgi_env;
	}
	enum prism_err err = PRISM_OK;

	const char *m = param(req->envp, "REQUEST_METHOD");
	snprintf(req->method, sizeof req->method, "%s", m ? m : "GET");
	req->head_only = strcmp(req->method, "HEAD") == 0;

	/* Route on REQUEST_URI: SCRIPT_NAME/PATH_INFO differ between lighttpd, mod_fcgid and
	 * mod_proxy_fcgi. */
	const char *uri = param(req->envp, "REQUEST_URI");
	if (!uri || uri[0] != '/') {
		uri = "/";
		err = PRISM_E_BAD_REQUEST;
	}
	req->uri = uri;
	size_t plen = strcspn(uri, "?");
	if (plen > PRISM_MAX_URI || strlen(uri) > PRISM_MAX_URI) {
		plen = 1;
		err = PRISM_E_URI_TOO_LONG;
	}
	/* The path opens the arena (which has room for the longest); the names follow. */
	bool have_path = !buf_append(&req->arena, uri, plen) && !buf_append(&req->arena, "", 1);
	if (!have_path)
		err = PRISM_E_NOMEM;
	req->query = uri[plen] == '?' ? uri + plen + 1 : "";

	const char *cl = param(req->envp, "CONTENT_LENGTH");
	long clv;
	if (cl && *cl) {
		if (parse_long(cl, 0, LONG_MAX, &clv) == PRISM_OK)
			req->content_length = clv;
		else
			err = PRISM_E_BAD_REQUEST;
	}

	size_t offs[PRISM_MAX_HEADERS];
	for (char **e = req->envp; e && *e && req->nheaders < PRISM_MAX_HEADERS; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		const char *name;
		size_t nlen;
		if (strncmp(*e, "HTTP_", 5) == 0) {
			name = *e + 5;
			nlen = (size_t)(eq - name);
		} else if (strncmp(*e, "CONTENT_TYPE=", 13) == 0) {
			name = "CONTENT_TYPE";
			nlen = 12;
		} else {
			continue;
		}
		if (nlen == 0 || strlen(eq + 1) > PRISM_MAX_HEADER_VALUE)
			continue;
		size_t off = add_header_name(&req->arena, name, nlen);
		if (off == (size_t)-1)
			break;
		offs[req->nheaders] = off;
		req->headers[req->nheaders].value = eq + 1;
		req->nheaders++;
	}
	/* The arena may have moved while growing; resolve the path and the names only now. */
	req->path = have_path ? req->arena.data : "/";
	for (size_t i = 0; i < req->nheaders; i++)
		req->headers[i].name = req->arena.data + offs[i];

	request_resolve_client(param(req->envp, "REMOTE_ADDR"), request_header(req, "x-forwarded-for"),
			       cfg->proxy_prefixes, cfg->trusted_proxies.n, req->client_ip, sizeof req->client_ip);
	if (netaddr_parse(req->client_ip, &req->client_addr))
		memset(&req->client_addr, 0, sizeof req->client_addr);

	const char *rid = request_header(req, "x-request-id");
	if (rid && request_id_acceptable(rid))
		snprintf(req->request_id, sizeof req->request_id, "%s", rid);
	else if (rand_hex(req->request_id, 16))
		snprintf(req->request_id, sizeof req->request_id, "%lx", (unsigned long)req->start_us);
	return err;
}

void
request_end(struct request *req)
{
	for (size_t i = 0; i < req->nresp_headers; i++) {
		free(req->resp_headers[i].name);
		free(req->resp_headers[i].value);
	}
	req->nresp_headers = 0;
	buf_free(&req->body);
	req->body_read = false;
	/* Keep the arena allocation for the next request, but cap what we keep. */
	if (req->arena.cap > 16384)
		buf_free(&req->arena);
	req->envp = NULL;
	req->in = req->out = NULL;
}

const char *
request_header(const struct request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

const char *
request_param(const struct request *req, const char *name)
{
	for (size_t i = 0; i < req->nparams; i++)
		if (strcmp(req->param_names[i], name) == 0)
			return req->params[i];
	return NULL;
}

bool
request_query(const struct request *req, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	for (const char *p = req->query; *p;) {
		const char *amp = strchr(p, '&');
		size_t seglen = amp ? (size_t)(amp - p) : strlen(p);
		if (seglen >= nl && strncmp(p, name, nl) == 0 && (seglen == nl || p[nl] == '=')) {
			const char *v = seglen == nl ? p + nl : p + nl + 1;
			const char *vend = p + seglen;
			size_t o = 0;
			while (v < vend) {
				int c = (unsigned char)*v;
				if (c == '+') {
					c = ' ';
					v++;
				} else if (c == '%' && vend - v >= 3 && parse_hexval(v[1]) >= 0 && parse_hexval(v[2]) >= 0) {
					c = parse_hexval(v[1]) * 16 + parse_hexval(v[2]);
					v += 3;
				} else {
					v++;
				}
				if (o + 1 >= outlen || c == 0)
					return false;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			return true;
		}
		p += seglen;
		if (*p == '&')
			p++;
	}
	return false;
}

static long
raw_read(struct request *req, char *dst, size_t n)
{
	if (req->in)
		return FCGX_GetStr(dst, (int)n, req->in);
	size_t r = fread(dst, 1, n, req->cgi_in);
	return (long)r;
}

enum prism_err
request_read_body(struct request *req)
{
	if (req->body_read)
		return PRISM_OK;
	long max = req->cfg->max_body_size;
	if (req->content_length > max) {
		snprintf(req->errdetail, sizeof req->errdetail, "Content-Length %ld over max_body_size %ld",
			 req->content_length, max);
		return PRISM_E_TOO_LARGE;
	}
	buf_init(&req->body, (size_t)max);
	/* With CONTENT_LENGTH, read exactly that much; without it (chunked through mod_proxy_fcgi), read to
	 * EOF.  One byte past the limit tells an oversize body from one that fits exactly. */
	long want = req->content_length >= 0 ? req->content_length : max + 1;
	long got = 0;
	while (got < want) {
		/* Straight into the body: a thread's stack keeps every page it ever touched, and a thread may
		 * then hold a stream for minutes. */
		size_t n = (size_t)(want - got) < 16384 ? (size_t)(want - got) : 16384;
		if (n > req->body.max - req->body.len)
			n = req->body.max - req->body.len;
		char one;    /* at max: is there one byte more? */
		char *dst = n ? buf_room(&req->body, n) : &one;
		long r = raw_read(req, dst, n ? n : 1);
		if (r <= 0)
			break;
		if (!n) {
			snprintf(req->errdetail, sizeof req->errdetail, "body over max_body_size %ld", max);
			return PRISM_E_TOO_LARGE;
		}
		buf_added(&req->body, (size_t)r);
		got += r;
	}
	req->body_consumed = true;   /* all announced bytes, or EOF */
	if (req->content_length >= 0 && got < req->content_length) {
		snprintf(req->errdetail, sizeof req->errdetail, "body ended after %ld of %ld bytes", got,
			 req->content_length);
		return PRISM_E_BAD_REQUEST;
	}
	req->body_read = true;
	return PRISM_OK;
}

void
request_discard_body(struct request *req)
{
	if (req->body_consumed || req->content_length == 0)
		return;
	long left = req->content_length >= 0 ? req->content_length - (long)req->body.len
					     : req->cfg->max_body_size + PRISM_DRAIN_EXTRA;
	long cap = req->cfg->max_body_size + PRISM_DRAIN_EXTRA;
	if (left > cap)
		left = cap;
	char chunk[2048];     /* small: see request_read_body */
	while (left > 0) {
		long r = raw_read(req, chunk, (size_t)left < sizeof chunk ? (size_t)left : sizeof chunk);
		if (r <= 0)
			break;
		left -= r;
	}
	req->body_consumed = true;
}

enum prism_err
request_json_body(struct request *req, json_t **out)
{
	*out = NULL;
	enum prism_err err = request_read_body(req);
	if (err)
		return err;
	if (req->body.len == 0) {
		snprintf(req->errdetail, sizeof req->errdetail, "request body is empty; a JSON object is required");
		return PRISM_E_BAD_JSON;
	}
	json_error_t jerr;
	json_t *j = json_loadb(req->body.data, req->body.len, 0, &jerr);
	if (!j) {
		snprintf(req->errdetail, sizeof req->errdetail, "invalid JSON at line %d column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		return PRISM_E_BAD_JSON;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(req->errdetail, sizeof req->errdetail, "request body must be a JSON object");
		return PRISM_E_BAD_JSON;
	}
	*out = j;
	return PRISM_OK;
}

bool
request_write(struct request *req, const void *data, size_t len)
{
	if (req->client_gone)
		return false;
	if (len == 0)
		return true;
	if (req->out) {
		if (FCGX_PutStr(data, (int)len, req->out) != (int)len) {
			req->client_gone = true;
			return false;
		}
	} else if (fwrite(data, 1, len, req->cgi_out) != len) {
		req->client_gone = true;
		return false;
	}
	req->bytes_out += len;
	return true;
}

bool
request_flush(struct request *req)
{
	if (req->client_gone)
		return false;
	int rc = req->out ? FCGX_FFlush(req->out) : fflush(req->cgi_out);
	if (rc < 0 || (req->out && FCGX_GetError(req->out) != 0)) {
		req->client_gone = true;
		return false;
	}
	return true;
}
