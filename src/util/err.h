/* err.h -- the one project-wide error enum.
 *
 * Functions return an enum prism_err; human detail goes into a caller-supplied bounded buffer.  Values are
 * never renumbered (they may be persisted in logs and metrics); new codes are appended.  Each code maps to
 * an HTTP status, a stable machine-readable code (sent to clients) and an OpenAI error "type" (gateway
 * error bodies).  All functions here are thread-safe and never fail.
 */
#ifndef PRISM_ERR_H
#define PRISM_ERR_H

enum prism_err {
	PRISM_OK = 0,
	PRISM_E_INTERNAL = 1,        /* a bug or an unexpected library failure */
	PRISM_E_NOMEM = 2,
	PRISM_E_IO = 3,              /* local I/O: files, sockets */
	PRISM_E_CONFIG = 4,          /* invalid configuration */
	PRISM_E_BAD_JSON = 5,        /* request body is not valid JSON */
	PRISM_E_BAD_REQUEST = 6,     /* well-formed but invalid input */
	PRISM_E_NOT_FOUND = 7,
	PRISM_E_METHOD = 8,          /* method not allowed on an existing path */
	PRISM_E_TOO_LARGE = 9,       /* request body over the limit */
	PRISM_E_UNAUTHORIZED = 10,
	PRISM_E_FORBIDDEN = 11,
	PRISM_E_RATE_LIMITED = 12,
	PRISM_E_CONFLICT = 13,
	PRISM_E_UNAVAILABLE = 14,    /* shutting down, not ready */
	PRISM_E_STORE = 15,          /* the store is unreachable or failed */
	PRISM_E_UPSTREAM = 16,       /* a provider failed */
	PRISM_E_TIMEOUT = 17,        /* a provider or store timed out */
	PRISM_E_CLIENT_GONE = 18,    /* the client closed the connection */
	PRISM_E_MEDIA_TYPE = 19,     /* unsupported Content-Type */
	PRISM_E_URI_TOO_LONG = 20,
	PRISM_E_SETUP_REQUIRED = 21,
};

/* Short English description; never NULL. */
const char *prism_strerror(enum prism_err err);
/* HTTP status for the code (500 for internal-only codes). */
int prism_err_http_status(enum prism_err err);
/* Stable machine-readable code, e.g. "not_found"; never NULL. */
const char *prism_err_code(enum prism_err err);
/* OpenAI error type for gateway bodies, e.g. "invalid_request_error"; never NULL. */
const char *prism_err_openai_type(enum prism_err err);
/* Reason phrase for an HTTP status ("Not Found"); "Unknown" for codes it does not know. */
const char *prism_http_reason(int status);

#endif
