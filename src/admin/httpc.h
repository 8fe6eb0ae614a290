/* httpc.h -- a small libcurl client for the admin API's own calls to providers (list models, check, discover).
 *
 * One blocking GET per call, with the provider's options applied per call: proxy (or none: the environment's
 * http_proxy is never used), TLS verification on/off, a CA file, connect and total timeouts, extra headers.
 * Only http:// and https:// URLs are fetched, and redirects (at most HTTPC_MAX_REDIRECTS) only to http(s).
 * The body is bounded by HTTPC_MAX_BODY.  User-Agent "model-prism/<version>".
 *
 * Secrets: the bearer token is sent as "Authorization: Bearer <token>" and appears nowhere else: not in
 * err, not in a log line; any occurrence of it in an upstream error body is replaced by "***" before the
 * excerpt reaches err.
 *
 * Errors (the human detail, one line, in err): PRISM_E_UPSTREAM (connection refused, DNS, TLS, a non-2xx
 * status "HTTP <status>: <sanitised excerpt>", a body over the limit, an unusable URL), PRISM_E_TIMEOUT,
 * PRISM_E_BAD_REQUEST (an option the client cannot use: a header with CR/LF, a non-http(s) URL),
 * PRISM_E_INTERNAL.  *status is the HTTP status, 0 when no response arrived.  body receives the response
 * body whatever the status.  Thread-safe (a handle per call; curl_global_init once).
 */
#ifndef PRISM_ADMIN_HTTPC_H
#define PRISM_ADMIN_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

#define HTTPC_MAX_BODY (8L * 1024 * 1024)        /* one response body */
#define HTTPC_MAX_HEADERS 32                     /* extra request headers */
#define HTTPC_MAX_HEADER_LEN 4096                /* one "Name: value" line */
#define HTTPC_MAX_REDIRECTS 3
#define HTTPC_EXCERPT 200                        /* bytes of an error body quoted in err */
#define HTTPC_CONNECT_TIMEOUT_MS 10000L          /* defaults when the options give 0 */
#define HTTPC_TIMEOUT_MS 30000L

struct httpc_header {
	const char *name;
	const char *value;
};

struct httpc_opts {
	const char *proxy;                   /* "http://host:port"; NULL or "" = direct */
	bool tls_insecure;                   /* true: skip certificate and host name verification */
	const char *ca_file;                 /* NULL or "" = the system's CA store */
	long connect_timeout_ms;             /* 0 = HTTPC_CONNECT_TIMEOUT_MS */
	long timeout_ms;                     /* whole transfer; 0 = HTTPC_TIMEOUT_MS */
	const char *bearer;                  /* NULL = no Authorization header; never logged */
	const struct httpc_header *headers;  /* extra headers */
	size_t nheaders;
	size_t max_body;                     /* 0 = HTTPC_MAX_BODY (never more) */
};

/* GET url.  PRISM_OK only for a 2xx answer; see above for the rest. */
enum prism_err httpc_get(const struct httpc_opts *o, const char *url, long *status, struct buf *body, char *err,
			 size_t errlen);

/* True for an http:// or https:// URL with a non-empty host and no credentials, spaces or control characters
 * (what httpc_get accepts and what provider base URLs must be). */
bool httpc_url_ok(const char *url);
/* True for a header name (an RFC 9110 token) and a value without CR, LF or NUL. */
bool httpc_header_ok(const char *name, const char *value);

/* An upstream error body as one safe line: the JSON error message when there is one ({"error":{"message"}},
 * {"error":"..."}, {"message":"..."}), else the text; control characters become spaces, runs of spaces
 * collapse, at most HTTPC_EXCERPT bytes (cut at a UTF-8 boundary) and every occurrence of `secret`
 * (may be NULL) replaced by "***". */
void httpc_excerpt(const char *body, size_t len, const char *secret, char *out, size_t outlen);

#endif
