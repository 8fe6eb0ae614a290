/* err.c -- messages and the code → HTTP status / stable code / OpenAI type table. */
#include "config.h"
#include "util/err.h"

/* A switch without default: the compiler (-Wall: -Wswitch) flags a code added to the enum but not here. */
const char *
prism_strerror(enum prism_err err)
{
	switch (err) {
	case PRISM_OK: return "success";
	case PRISM_E_INTERNAL: return "internal error";
	case PRISM_E_NOMEM: return "out of memory";
	case PRISM_E_IO: return "input/output error";
	case PRISM_E_CONFIG: return "invalid configuration";
	case PRISM_E_BAD_JSON: return "request body is not valid JSON";
	case PRISM_E_BAD_REQUEST: return "invalid request";
	case PRISM_E_NOT_FOUND: return "not found";
	case PRISM_E_METHOD: return "method not allowed";
	case PRISM_E_TOO_LARGE: return "request body too large";
	case PRISM_E_UNAUTHORIZED: return "authentication required";
	case PRISM_E_FORBIDDEN: return "forbidden";
	case PRISM_E_RATE_LIMITED: return "rate limit exceeded";
	case PRISM_E_CONFLICT: return "conflict";
	case PRISM_E_UNAVAILABLE: return "service unavailable";
	case PRISM_E_STORE: return "data store unavailable";
	case PRISM_E_UPSTREAM: return "upstream provider error";
	case PRISM_E_TIMEOUT: return "timed out";
	case PRISM_E_CLIENT_GONE: return "client closed the connection";
	case PRISM_E_MEDIA_TYPE: return "unsupported media type";
	case PRISM_E_URI_TOO_LONG: return "request URI too long";
	case PRISM_E_SETUP_REQUIRED: return "initial setup has not been completed";
	}
	return "unknown error";
}

struct err_map {
	int status;
	const char *code;
	const char *openai_type;
};

static struct err_map
err_map(enum prism_err err)
{
	switch (err) {
	case PRISM_OK: return (struct err_map){ 200, "ok", "ok" };
	case PRISM_E_INTERNAL: return (struct err_map){ 500, "internal_error", "server_error" };
	case PRISM_E_NOMEM: return (struct err_map){ 500, "internal_error", "server_error" };
	case PRISM_E_IO: return (struct err_map){ 500, "internal_error", "server_error" };
	case PRISM_E_CONFIG: return (struct err_map){ 500, "internal_error", "server_error" };
	case PRISM_E_BAD_JSON: return (struct err_map){ 400, "invalid_json", "invalid_request_error" };
	case PRISM_E_BAD_REQUEST: return (struct err_map){ 400, "invalid_request", "invalid_request_error" };
	case PRISM_E_NOT_FOUND: return (struct err_map){ 404, "not_found", "invalid_request_error" };
	case PRISM_E_METHOD: return (struct err_map){ 405, "method_not_allowed", "invalid_request_error" };
	case PRISM_E_TOO_LARGE: return (struct err_map){ 413, "request_too_large", "invalid_request_error" };
	case PRISM_E_UNAUTHORIZED: return (struct err_map){ 401, "unauthorized", "authentication_error" };
	case PRISM_E_FORBIDDEN: return (struct err_map){ 403, "forbidden", "permission_error" };
	case PRISM_E_RATE_LIMITED: return (struct err_map){ 429, "rate_limit_exceeded", "rate_limit_error" };
	case PRISM_E_CONFLICT: return (struct err_map){ 409, "conflict", "invalid_request_error" };
	case PRISM_E_UNAVAILABLE: return (struct err_map){ 503, "unavailable", "server_error" };
	case PRISM_E_STORE: return (struct err_map){ 503, "store_unavailable", "server_error" };
	case PRISM_E_UPSTREAM: return (struct err_map){ 502, "upstream_error", "provider_error" };
	case PRISM_E_TIMEOUT: return (struct err_map){ 504, "upstream_timeout", "timeout_error" };
	case PRISM_E_CLIENT_GONE: return (struct err_map){ 499, "client_closed_request", "invalid_request_error" };
	case PRISM_E_MEDIA_TYPE: return (struct err_map){ 415, "unsupported_media_type", "invalid_request_error" };
	case PRISM_E_URI_TOO_LONG: return (struct err_map){ 414, "uri_too_long", "invalid_request_error" };
	case PRISM_E_SETUP_REQUIRED: return (struct err_map){ 503, "setupRequired", "server_error" };
	}
	return (struct err_map){ 500, "internal_error", "server_error" };
}

int
prism_err_http_status(enum prism_err err)
{
	return err_map(err).status;
}

const char *
prism_err_code(enum prism_err err)
{
	return err_map(err).code;
}

const char *
prism_err_openai_type(enum prism_err err)
{
	return err_map(err).openai_type;
}

const char *
prism_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 207: return "Multi-Status";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Unknown";
}
