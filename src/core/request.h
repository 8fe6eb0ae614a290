/* request.h -- one HTTP request as the FastCGI front received it, and the I/O to answer it.
 *
 * A struct request is owned by one worker thread and reset on every accept (request_begin/request_end).
 * Everything a handler needs about the request is filled here once, from the FastCGI params: nothing
 * else in the program reads the environment or FCGX params.  Header names are lower-case; values are
 * borrowed from the FastCGI params and valid until request_end.  The body is read on demand, bounded by
 * max_body_size (413 beyond it), from CONTENT_LENGTH or until EOF (mod_proxy_fcgi sends chunked bodies
 * without a length).
 */
#ifndef PRISM_REQUEST_H
#define PRISM_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <fcgiapp.h>
#include <jansson.h>

#include "util/buf.h"
#include "util/config.h"
#include "util/err.h"
#include "util/limits.h"
#include "util/netaddr.h"

struct route;

enum route_kind { RK_CORE = 0, RK_ADMIN = 1, RK_GATEWAY = 2 };

struct header {
	const char *name;     /* lower-case, '-' separated; in the request's arena */
	const char *value;    /* borrowed from the params */
};

/* Who is calling the admin API: filled from a verified token and the user record (admin/auth.c). */
struct principal {
	bool authenticated;
	char id[25];
	char username[PRISM_MAX_USERNAME + 1];
	int role;                           /* enum user_role */
	long token_version;
	size_t ntenants;
	char tenants[PRISM_MAX_USER_TENANTS][25];
};

struct resp_header {
	char *name;
	char *value;
};

struct request {
	/* I/O: FastCGI streams, or stdio in CGI mode. */
	FCGX_Stream *in, *out;
	FILE *cgi_in, *cgi_out;
	char **envp;

	struct config *cfg;                 /* a reference held for the whole request */

	char method[16];
	const char *uri;                    /* REQUEST_URI as received */
	const char *path;                   /* uri up to '?', not decoded; in the arena */
	const char *query;                  /* after '?', "" when none */
	struct header headers[PRISM_MAX_HEADERS];
	size_t nheaders;
	struct buf arena;                   /* the path and the header names */
	long content_length;                /* -1 when not given */
	char client_ip[48];
	struct netaddr client_addr;
	char request_id[PRISM_MAX_REQUEST_ID + 1];
	int64_t start_us;

	struct buf body;
	bool body_read;                     /* body is in `body` */
	bool body_consumed;                 /* nothing left to read from the client */

	/* routing */
	const struct route *route;
	enum route_kind kind;               /* decides the error shape */
	const char *param_names[PRISM_MAX_ROUTE_PARAMS];
	char params[PRISM_MAX_ROUTE_PARAMS][PRISM_MAX_PARAM_LEN + 1];
	size_t nparams;

	struct principal user;              /* admin routes with a permission */

	/* response */
	int status;
	struct resp_header resp_headers[PRISM_MAX_RESP_HEADERS];
	size_t nresp_headers;
	bool headers_sent;
	bool head_only;                     /* HEAD: headers without body */
	bool streaming;
	bool client_gone;
	uint64_t bytes_out;
	char tenant[64];                    /* for the access log, when known */
	char errdetail[PRISM_MAX_ERRDETAIL]; /* for the log only */
};

/* Fills req from FastCGI params (envp), or from the process environment in CGI mode (fcgx NULL).
 * Returns PRISM_E_URI_TOO_LONG or PRISM_E_BAD_REQUEST for unusable request lines; the request can still
 * be answered. */
enum prism_err request_begin(struct request *req, FCGX_Request *fcgx, char **cgi_env, struct config *cfg);
/* Releases what request_begin acquired (not the cfg reference, which the caller owns). */
void request_end(struct request *req);

/* Header lookup by lower-case name; NULL when absent. */
const char *request_header(const struct request *req, const char *name);
/* A decoded :param of the matched route; NULL when absent. */
const char *request_param(const struct request *req, const char *name);
/* The value of one query-string parameter, percent-decoded into out; false when absent or too long. */
bool request_query(const struct request *req, const char *name, char *out, size_t outlen);

/* Reads the body (once).  PRISM_E_TOO_LARGE beyond max_body_size. */
enum prism_err request_read_body(struct request *req);
/* Reads and parses the body as a JSON object; *out is a new reference.  PRISM_E_BAD_JSON (with detail in
 * errdetail) for invalid JSON or a non-object, PRISM_E_TOO_LARGE for oversize bodies. */
enum prism_err request_json_body(struct request *req, json_t **out);

/* Reads and drops what the client still sends (a body nobody read, or the rest of an oversize one), at
 * most max_body_size + PRISM_DRAIN_EXTRA bytes.  A web server that streams the body (mod_proxy_fcgi)
 * otherwise waits to deliver it, and the client stalls behind an answer it already has. */
void request_discard_body(struct request *req);

/* Raw output; false once the client has gone. */
bool request_write(struct request *req, const void *data, size_t len);
bool request_flush(struct request *req);

/* Client address from REMOTE_ADDR and, when that is a trusted proxy, X-Forwarded-For (exposed for tests). */
void request_resolve_client(const char *remote, const char *xff, const struct netprefix *trusted,
			    size_t ntrusted, char *out, size_t outlen);
/* True when an incoming X-Request-Id may be kept. */
bool request_id_acceptable(const char *id);

#endif
