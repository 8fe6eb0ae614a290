/* provider.h -- the one interface to LLM providers; adapters translate, the gateway engine decides.
 *
 * An adapter turns an OpenAI-shaped request into its provider's protocol, performs one HTTP exchange
 * (libcurl, one reusable handle per thread so connections are kept alive), and turns the answer back
 * into the OpenAI shape.  Retries, failover, circuit breakers, limits and accounting belong to the engine
 * (src/gateway), never to an adapter.  Adapters classify what went wrong (enum provider_errclass) so the
 * engine can decide: only PE_SERVER, PE_TIMEOUT, PE_CONNECT and PE_CUT show an unhealthy provider.
 *
 * Streaming: the adapter calls cb->on_event once per upstream event as it arrives, with the event already
 * converted to an OpenAI chat.completion.chunk object (borrowed for the call).  on_event returns false when
 * the client has gone: the adapter aborts the upstream transfer at once and returns PRISM_E_CLIENT_GONE.
 * An upstream "[DONE]" is not passed on; the engine writes its own.
 *
 * Timeouts (struct provider_target): connect, first byte (request sent → first byte of the answer), idle
 * gap between two stream events, total.  0 = the PROVIDER_DEFAULT_* value.
 *
 * Error text in provider_result.message is sanitised: bounded, control characters removed, credentials
 * never included; the upstream body appears only as a short excerpt of the provider's own error message.
 *
 * Thread-safety: every function may be called from any request thread; per-thread state only.
 */
#ifndef PRISM_PROVIDERS_PROVIDER_H
#define PRISM_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"
#include "util/jscan.h"

#define PROVIDER_DEFAULT_CONNECT_MS 10000L
#define PROVIDER_DEFAULT_FIRST_BYTE_MS 120000L
#define PROVIDER_DEFAULT_IDLE_MS 120000L
#define PROVIDER_DEFAULT_TOTAL_MS 600000L
#define PROVIDER_MAX_RESPONSE (32L * 1024 * 1024)   /* a non-streaming answer */
#define PROVIDER_MAX_EVENT (1L * 1024 * 1024)        /* one SSE event (a chunk is a few hundred bytes) */
#define PROVIDER_MAX_MESSAGE 512                     /* provider_result.message */

enum provider_errclass {
	PE_NONE = 0,
	PE_BAD_REQUEST,      /* 400/404/422: the request is wrong for this provider (not its health) */
	PE_AUTH,             /* 401/403: the provider rejects the gateway's credentials */
	PE_RATE_LIMITED,     /* 429 (retry_after_s when given) */
	PE_CONTEXT,          /* the input does not fit the model's context window */
	PE_MAX_TOKENS,       /* max_tokens above the model's limit (max_tokens_limit when known) */
	PE_SERVER,           /* 5xx */
	PE_TIMEOUT,          /* connect, first byte, idle gap or total timeout */
	PE_CONNECT,          /* DNS, refused, TLS, proxy */
	PE_CUT,              /* the stream ended before its end (no finish_reason / [DONE]) */
	PE_PROTOCOL,         /* an answer that is not what the protocol promises (bad JSON, bad SSE) */
};

/* True for the classes that count against the provider's circuit breaker and allow failover. */
bool provider_errclass_unhealthy(enum provider_errclass c);
const char *provider_errclass_name(enum provider_errclass c);

/* Where and how to call: filled by the engine from the provider document and configuration. */
struct provider_target {
	const char *id;                  /* provider _id (breaker key, logs) */
	const char *name;
	const char *type;                /* openai, ollama, vllm, openrouter, custom, ... */
	const char *base_url;            /* config.baseUrl without a trailing '/' */
	const char *api_path;            /* "/v1", "/api/v1" or "" = probe-free default "/v1" */
	const char *auth_type;           /* api_key, bearer, none */
	const char *api_key;             /* decrypted; NULL/"" = none.  Never logged. */
	const char *http_proxy;          /* "" = none */
	bool tls_verify;
	const char *ca_file;             /* "" = system */
	const json_t *extra_headers;     /* object string -> string, or NULL */
	long connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, total_timeout_ms;
};

struct provider_stream_cb {
	bool (*on_event)(void *arg, json_t *chunk);
	void *arg;
};

struct provider_result {
	int http_status;                 /* upstream status; 0 when no answer */
	enum provider_errclass errclass; /* PE_NONE on success */
	char message[PROVIDER_MAX_MESSAGE];
	long retry_after_s;              /* 429/503 Retry-After; 0 = none */
	long max_tokens_limit;           /* PE_MAX_TOKENS: the limit when the provider says it; else 0 */
	json_t *body;                    /* non-streaming success: the OpenAI-shaped answer (owned) ... */
	char *body_text;                 /* ... or, when jscan read it, the answer as received (owned, NUL-ended) */
	size_t body_len;
	struct jscan_answer scan;        /* what jscan read of body_text */
	long prompt_tokens, completion_tokens;
	bool usage_reported;             /* the provider sent usage (else the engine estimates) */
	char finish_reason[32];
	long events;                     /* streaming: events passed to on_event */
	int64_t first_byte_ms;           /* from the start of the call; -1 when none */
	int64_t duration_ms;
};

/* Frees what a result owns and zeroes it (safe on a zeroed result). */
void provider_result_clear(struct provider_result *r);
/* The answer as a tree: body, or body_text parsed (then kept in body).  Borrowed; NULL when none. */
json_t *provider_result_json(struct provider_result *r);

enum provider_kind { PROVIDER_CHAT = 0, PROVIDER_COMPLETIONS = 1, PROVIDER_EMBEDDINGS = 2 };

struct provider_ops {
	const char *name;
	/* One exchange.  req is the OpenAI-shaped body (borrowed; the adapter may copy and change its copy).
	 * cb non-NULL = streaming (chat and completions).  Returns PRISM_OK on a successful answer, else
	 * PRISM_E_UPSTREAM / PRISM_E_TIMEOUT / PRISM_E_CLIENT_GONE with *out describing it.  *out is cleared
	 * first, so it must be zeroed or hold an earlier result. */
	enum prism_err (*call)(const struct provider_target *t, enum provider_kind kind, const json_t *req,
			       const struct provider_stream_cb *cb, struct provider_result *out);
	/* GET the model list: *models a new array of model ids (NULL on failure); *out as for call. */
	enum prism_err (*list_models)(const struct provider_target *t, json_t **models, struct provider_result *out);
};

/* The adapter for a provider type (unknown types: the OpenAI-compatible one); NULL for types without an
 * adapter yet (azure, bedrock: out of scope until their adapters land). */
const struct provider_ops *provider_ops_for(const char *type);

/* --- helpers the adapters share (provider.c) ------------------------------------------------------------ */

#define PROVIDER_MAX_EXCERPT 300                     /* bytes of upstream error text kept in a message */
#define PROVIDER_MAX_ERROR_BODY (64L * 1024)         /* an error answer (non-2xx) read for its message */
#define PROVIDER_DONE_LINGER_MS 1000L                /* after [DONE], wait this long for the answer's end */
#define PROVIDER_FINISH_LINGER_MS 5000L              /* after a finish_reason, the idle limit for the rest */

/* The error predicates of reference/original-gateway.md §7.4 (case-insensitive, NULL-safe).  A max_tokens
 * error is never a context overflow. */
bool provider_is_max_tokens_error(const char *msg);
bool provider_is_context_error(const char *msg);
/* The limit a max_tokens message states ("limit of 4096", "maximum is 4096", "at most 4096 ...",
 * "8192, which is the maximum"); 0 when it states none. */
long provider_max_tokens_limit(const char *msg);

/* Classifies a failed exchange.  status: the upstream HTTP status, or 0/2xx for an error object that came
 * inside a successful answer (a stream); type and code: the error object's fields (NULL when absent; a
 * numeric code is passed as its decimal text); message: its text.  Context and max_tokens messages win
 * over the status (except 401/403/408/429); *max_tokens_limit (may be NULL) gets the stated limit. */
enum provider_errclass provider_classify(int status, const char *type, const char *code, const char *message,
					 long *max_tokens_limit);

/* Upstream text as one safe line for provider_result.message: invalid UTF-8 and control characters become
 * '?' and ' ', runs of spaces collapse, "Bearer <token>" and every occurrence of secret (may be NULL) become
 * "***", at most PROVIDER_MAX_EXCERPT bytes (cut at a character boundary, "..." appended). */
void provider_excerpt(const char *text, size_t len, const char *secret, char *out, size_t outlen);

/* The human message of an error body: {"error":{"message"}}, {"error":"..."}, {"message"}, {"detail"};
 * borrowed from root; NULL when there is none. */
const char *provider_error_message(const json_t *root);

/* A Retry-After value: delay-seconds or an HTTP-date (relative to now, epoch seconds); 0 when absent,
 * unparseable or in the past; at most 86400. */
long provider_retry_after(const char *value, int64_t now);

#endif
