/* response.h -- writing the answer: status, headers, JSON bodies, errors and server-sent events.
 *
 * Headers are collected until the first body byte; the common ones (X-Request-Id, security headers, CORS)
 * are added by resp_send_headers from the request and the configuration.  resp_header rejects names and
 * values that would split the header block (CR, LF, NUL).  Error bodies take the shape of the route's kind:
 * the gateway answers {"error":{"message","type","code"}}, everything else {"error":"...","code":"..."}.
 * Functions that write return false once the client has gone.  Not thread-safe (one request, one thread).
 */
#ifndef PRISM_RESPONSE_H
#define PRISM_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/request.h"
#include "util/err.h"

/* Sets (replacing) a response header.  PRISM_E_BAD_REQUEST for an invalid name or value; too many headers
 * gives PRISM_E_TOO_LARGE.  No effect once headers are sent. */
enum prism_err resp_header(struct request *req, const char *name, const char *value);
void resp_status(struct request *req, int status);
/* Writes the status line and headers (once). */
bool resp_send_headers(struct request *req);
/* A complete body with Content-Length. */
bool resp_body(struct request *req, const char *content_type, const void *data, size_t len);
/* A complete JSON body; steals the reference to `body` (may be NULL: then a 500 is sent). */
bool resp_json(struct request *req, int status, json_t *body);
/* An error in the shape of the request's kind.  `message` is client-safe text; NULL uses the default text
 * of the code.  Extra headers (Allow, Retry-After) are set by the caller before. */
bool resp_error(struct request *req, enum prism_err err, const char *message);
/* Same, with an explicit HTTP status, code and OpenAI type (gateway errors with their own codes). */
bool resp_error_full(struct request *req, int status, const char *code, const char *type, const char *message);

/* Server-sent events: headers (text/event-stream, no caching, no proxy buffering), flushed at once. */
bool sse_begin(struct request *req);
/* One event "data: <data>\n\n" (data must not contain a blank line), flushed. */
bool sse_data(struct request *req, const char *data, size_t len);
/* A raw, already framed chunk (relay of upstream events), flushed. */
bool sse_raw(struct request *req, const char *data, size_t len);

/* True when `name` is a valid header token and `value` has no CR, LF or NUL (exposed for tests). */
bool resp_header_valid(const char *name, const char *value);

#endif
