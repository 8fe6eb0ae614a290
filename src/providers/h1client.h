/* h1client.h -- a small HTTP/1.1 client for the providers' plain http:// exchanges, on connections kept alive
 * and pooled per process.
 *
 * libcurl does every exchange with a provider that needs more (TLS, a proxy, a host name to resolve); this
 * client takes the common case of a model server on the local network or the same host (Ollama, vLLM, a
 * LiteLLM or another gateway: http://IP:port or http://localhost:port), where libcurl's work per transfer
 * (URL parsing, a connection structure made and dropped, five polls, a hundred allocations) was a tenth of
 * the gateway's CPU per request.  One exchange is: a pooled connection to the same host and port that is
 * still open (a peek tells), else a new one (non-blocking connect within the connect timeout); the request
 * head and body in one sendmsg; the answer read as it comes, its header lines and its body (Content-Length,
 * chunked, or up to the close) handed to the callbacks; then the connection back to the pool when the answer
 * was read whole and the server keeps it open.  A pooled connection the server closed meanwhile is retried
 * once on a new connection, as long as not one byte of an answer came on it.
 *
 * Bounds: a header line at most H1_MAX_LINE bytes, a header block at most H1_MAX_HEAD; H1_POOL_MAX idle
 * connections per process, each dropped after H1_IDLE_MAX_MS unused.  Thread-safe: any thread may run an
 * exchange; the pool is shared under a lock.  Sockets are close-on-exec.
 */
#ifndef PRISM_PROVIDERS_H1CLIENT_H
#define PRISM_PROVIDERS_H1CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#define H1_MAX_LINE 16384
#define H1_MAX_HEAD 65536
#define H1_POOL_MAX 64
#define H1_IDLE_MAX_MS 60000
#define H1_TICK_MS 200              /* on_tick at least this often while waiting */

/* An http:// URL this client takes. */
struct h1_url {
	char host[64];                  /* for the connect: an IPv4 or IPv6 address, or "localhost" */
	char port[8];
	char authority[80];             /* the Host header: as written in the URL */
	const char *target;             /* path and query, into the parsed URL ("/" when it had none) */
};

/* Takes url when it is http://HOST[:PORT][/PATH] with HOST an IP address (IPv6 in brackets) or localhost,
 * and nothing this client does not do (user info, a fragment, bytes outside printable ASCII). */
bool h1_url_parse(const char *url, struct h1_url *u);

enum h1_err {
	H1_OK = 0,
	H1_CONNECT,                     /* no connection: refused, unreachable, no address */
	H1_CONNECT_TIMEOUT,
	H1_TIMEOUT,                     /* the total timeout */
	H1_SEND,                        /* the request could not be sent */
	H1_RECV,                        /* the connection failed or closed before the answer was whole */
	H1_PROTOCOL,                    /* not an HTTP/1.x answer, or a malformed one */
	H1_ABORTED,                     /* a callback said stop */
};

struct h1_callbacks {
	/* One line of a header block as received, line end included: the status line, each field, and the empty
	 * line that ends the block (a 1xx answer's block too).  False: stop. */
	bool (*on_header)(void *ud, const char *line, size_t n);
	/* A piece of the body, its chunked framing removed.  False: stop. */
	bool (*on_body)(void *ud, const char *data, size_t n);
	/* After every read, and every H1_TICK_MS while waiting.  False: stop. */
	bool (*on_tick)(void *ud);
	void *ud;
};

struct h1_request {
	const struct h1_url *url;
	const char *method;             /* "GET" or "POST" */
	/* "Name: value" lines; "Name;" is sent with an empty value and "Name:" not at all (libcurl's rules, so
	 * that one list serves both clients). */
	const struct curl_slist *headers;
	const char *body;               /* NULL: none */
	size_t body_len;
	int64_t t0;                     /* monotonic ms the exchange started; the timeouts count from it */
	long connect_timeout_ms, total_timeout_ms;
};

struct h1_result {
	int status;                     /* the final answer's status (set before its body); 0: none */
	bool connected;                 /* a connection was made or reused */
	int64_t sent_at;                /* monotonic ms the request began to go out; -1: not yet */
	long bytes_in;                  /* bytes of answer received */
	char error[160];                /* what failed, for the message */
};

enum h1_err h1_perform(const struct h1_request *rq, const struct h1_callbacks *cb, struct h1_result *res);

/* Closes the idle connections of the process. */
void h1_pool_clear(void);

#endif
