/* openai_compat.c -- see openai_compat.h. */
#include "config.h"
#include "providers/openai_compat.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "providers/h1client.h"
#include "providers/sse.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/curlx.h"
#include "util/jtext.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define OA_MAX_URL 4096                 /* base URL + API path + endpoint */
#define OA_MAX_HEADER_LINE 8192         /* one "Name: value" request header */
#define OA_MAX_EXTRA_HEADERS 32

/* --- handles ---------------------------------------------------------------------------------------------- */

/* Idle handles of the process, most recently used first: a call takes one (reset, its kept-alive
 * connections stay) and gives it back, so the upstream connections outlive the request threads that come
 * and go with the load, and nested calls (an on_event callback calling us) simply take another. */
#define OA_IDLE_MAX 64

static pthread_once_t oa_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t oa_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *oa_idle[OA_IDLE_MAX];
static int oa_nidle;

static void
oa_init(void)
{
	curlx_global_init();
}

static CURL *
handle_get(void)
{
	pthread_once(&oa_once, oa_init);
	CURL *c = NULL;
	pthread_mutex_lock(&oa_lock);
	if (oa_nidle > 0)
		c = oa_idle[--oa_nidle];
	pthread_mutex_unlock(&oa_lock);
	if (c)
		curl_easy_reset(c);
	else
		c = curl_easy_init();
	return c;
}

static void
handle_put(CURL *c)
{
	pthread_mutex_lock(&oa_lock);
	if (oa_nidle < OA_IDLE_MAX) {
		oa_idle[oa_nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&oa_lock);
	if (c)
		curl_easy_cleanup(c);
}

void
openai_compat_pool_clear(void)
{
	pthread_mutex_lock(&oa_lock);
	while (oa_nidle > 0)
		curl_easy_cleanup(oa_idle[--oa_nidle]);
	pthread_mutex_unlock(&oa_lock);
	h1_pool_clear();
}

/* --- one transfer ----------------------------------------------------------------------------------------- */

enum oa_mode {
	M_UNKNOWN = 0,   /* no body byte yet */
	M_SSE,           /* a 2xx event stream */
	M_BODY,          /* a 2xx JSON body */
	M_ERROR,         /* a non-2xx body, read for its message */
};

enum oa_stop {
	ST_NONE = 0,
	ST_CLIENT_GONE,  /* on_event returned false */
	ST_FIRST_BYTE,   /* first-byte timeout */
	ST_IDLE,         /* idle-gap timeout */
	ST_TOO_LARGE,    /* body over PROVIDER_MAX_RESPONSE */
	ST_PROTOCOL,     /* bad SSE or JSON in the stream */
	ST_STREAM_ERROR, /* an error object in the stream */
	ST_ERROR_FULL,   /* enough of an error body read */
	ST_DONE_LINGER,  /* [DONE] came, the answer did not end */
};

struct xfer {
	CURL *c;                               /* NULL: the exchange goes through h1client */
	struct h1_result h1;
	const struct provider_target *t;
	const struct provider_stream_cb *cb;   /* NULL: not streaming */
	struct provider_result *out;
	int64_t t0, first_byte_at, last_byte_at, done_at;   /* monotonic ms; -1 = not yet */
	long first_byte_limit, idle_limit;
	char content_type[128];
	char retry_after[64];
	enum oa_mode mode;
	enum oa_stop stop;
	bool done;                             /* [DONE] seen */
	struct buf body;
	struct sse_parser sse;
	char detail[PROVIDER_MAX_MESSAGE];     /* ST_PROTOCOL, ST_STREAM_ERROR */
	enum provider_errclass stop_class;     /* ST_STREAM_ERROR */
	long stop_limit;
};

static const char *
api_key_of(const struct provider_target *t)
{
	return t->api_key && *t->api_key ? t->api_key : NULL;
}

static bool
sends_auth(const struct provider_target *t)
{
	if (!api_key_of(t))
		return false;
	const char *a = t->auth_type;
	return !a || !*a || strcmp(a, "api_key") == 0 || strcmp(a, "bearer") == 0;
}

/* A header value (after "Name:") into dst, trimmed and bounded. */
static void
header_value(const char *line, size_t n, size_t namelen, char *dst, size_t dstlen)
{
	const char *v = line + namelen;
	size_t vl = n - namelen;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (vl >= dstlen)
		vl = dstlen - 1;
	memcpy(dst, v, vl);
	dst[vl] = '\0';
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	int64_t now = clock_monotonic_ms();
	if (x->first_byte_at < 0)
		x->first_byte_at = now;
	x->last_byte_at = now;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new header block (after a 100 Continue or a proxy's CONNECT answer): forget the last one's. */
		x->content_type[0] = '\0';
		x->retry_after[0] = '\0';
	} else if (n > 13 && strncasecmp(data, "content-type:", 13) == 0) {
		header_value(data, n, 13, x->content_type, sizeof x->content_type);
	} else if (n > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
		header_value(data, n, 12, x->retry_after, sizeof x->retry_after);
	}
	return n;
}

/* A finish_reason as a short ASCII word (it goes into JSON and logs). */
static void
take_finish(struct provider_result *r, const json_t *j)
{
	const json_t *choices = json_object_get(j, "choices");
	size_t i;
	const json_t *ch;
	json_array_foreach(choices, i, ch) {
		const char *f = json_string_value(json_object_get(ch, "finish_reason"));
		if (!f || !*f)
			continue;
		size_t o = 0;
		for (; *f && o + 1 < sizeof r->finish_reason; f++)
			if (isalnum((unsigned char)*f) || *f == '_' || *f == '-')
				r->finish_reason[o++] = *f;
		r->finish_reason[o] = '\0';
	}
}

static long
token_count(const json_t *v)
{
	json_int_t n = json_integer_value(v);
	return n < 0 ? 0 : n > 1000000000 ? 1000000000 : (long)n;
}

static void
take_usage(struct provider_result *r, const json_t *j)
{
	const json_t *u = json_object_get(j, "usage");
	if (!json_is_object(u))
		return;
	const json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
	if (json_is_integer(p)) {
		r->prompt_tokens = token_count(p);
		r->usage_reported = true;
	}
	if (json_is_integer(c)) {
		r->completion_tokens = token_count(c);
		r->usage_reported = true;
	}
}

/* Classifies an error answer or an error object; the message goes to msg.  root may be NULL (not JSON);
 * raw is the body as text (NUL-terminated). */
static enum provider_errclass
error_of(const struct provider_target *t, int status, const json_t *root, const char *raw, char *msg, size_t msglen,
	 long *limit)
{
	const json_t *e = json_object_get(root, "error");
	const char *type = json_string_value(json_object_get(e, "type"));
	const json_t *cj = json_object_get(e, "code");
	char codebuf[32];
	const char *code = json_string_value(cj);
	if (!code && json_is_integer(cj)) {
		snprintf(codebuf, sizeof codebuf, "%" JSON_INTEGER_FORMAT, json_integer_value(cj));
		code = codebuf;
	}
	if (!code && json_is_integer(json_object_get(e, "status"))) {
		snprintf(codebuf, sizeof codebuf, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(e, "status")));
		code = codebuf;
	}
	const char *m = provider_error_message(root);
	char *dumped = NULL;
	if (!m && json_is_object(e))
		m = dumped = json_dumps(e, JSON_COMPACT);
	const char *text = m ? m : raw;
	provider_excerpt(text, text ? strlen(text) : 0, api_key_of(t), msg, msglen);
	if (!msg[0] && status)
		snprintf(msg, msglen, "HTTP %d without an error message", status);
	enum provider_errclass c = provider_classify(status, type, code, text, limit);
	free(dumped);
	return c;
}

static void
trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* One data payload of the stream; j already parsed (stolen) or NULL. */
static bool
on_data(struct xfer *x, const char *d, size_t n, json_t *j)
{
	if (x->done) {
		json_decref(j);
		return true;
	}
	if (!j) {
		if (!n)
			return true;
		if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
			x->done = true;
			x->done_at = clock_monotonic_ms();
			return true;
		}
		json_error_t je;
		if (!(j = json_loadb(d, n, 0, &je))) {
			char ex[96];
			provider_excerpt(d, n < 64 ? n : 64, api_key_of(x->t), ex, sizeof ex);
			snprintf(x->detail, sizeof x->detail, "malformed JSON in the event stream: %s", ex);
			x->stop = ST_PROTOCOL;
			return false;
		}
	}
	if (!json_is_object(j)) {
		snprintf(x->detail, sizeof x->detail, "an event in the stream is not a JSON object");
		json_decref(j);
		x->stop = ST_PROTOCOL;
		return false;
	}
	const json_t *err = json_object_get(j, "error");
	if (err && !json_is_null(err)) {
		x->stop_class = error_of(x->t, 0, j, NULL, x->detail, sizeof x->detail, &x->stop_limit);
		json_decref(j);
		x->stop = ST_STREAM_ERROR;
		return false;
	}
	take_usage(x->out, j);
	take_finish(x->out, j);
	x->out->events++;
	bool ok = x->cb->on_event(x->cb->arg, j);
	json_decref(j);
	if (!ok) {
		x->stop = ST_CLIENT_GONE;
		return false;
	}
	return true;
}

static bool
on_sse_event(void *arg, const struct sse_event *ev)
{
	struct xfer *x = arg;
	const char *d = ev->data;
	size_t n = ev->data_len;
	trim(&d, &n);
	json_t *j = NULL;
	if (n && !(n == 6 && memcmp(d, "[DONE]", 6) == 0) && !x->done)
		j = json_loadb(d, n, 0, NULL);
	if (j || !memchr(d, '\n', n))
		return on_data(x, d, n, j);
	/* Not one JSON text: some servers put several objects into one event, one per data: line. */
	while (n) {
		const char *nl = memchr(d, '\n', n);
		size_t l = nl ? (size_t)(nl - d) : n;
		const char *ld = d;
		size_t ll = l;
		trim(&ld, &ll);
		if (!on_data(x, ld, ll, NULL))
			return false;
		if (!nl)
			break;
		d = nl + 1;
		n -= l + 1;
	}
	return true;
}

static bool
is_json_type(const char *ct)
{
	return strncasecmp(ct, "application/json", 16) == 0;
}

static void
choose_mode(struct xfer *x)
{
	long st = x->h1.status;
	if (x->c)
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &st);
	if (st < 200 || st > 299) {
		x->mode = M_ERROR;
		x->body.max = PROVIDER_MAX_ERROR_BODY;
	} else if (x->cb && !is_json_type(x->content_type)) {
		/* Not only text/event-stream: some servers and proxies label the stream text/plain or not at all. */
		x->mode = M_SSE;
	} else {
		x->mode = M_BODY;
		x->body.max = PROVIDER_MAX_RESPONSE;
	}
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	int64_t now = clock_monotonic_ms();
	if (x->first_byte_at < 0)
		x->first_byte_at = now;
	x->last_byte_at = now;
	if (x->mode == M_UNKNOWN)
		choose_mode(x);
	switch (x->mode) {
	case M_ERROR:
		if (buf_append(&x->body, data, n) != PRISM_OK) {
			/* Enough to find the message: keep what fits and stop reading. */
			buf_append(&x->body, data, x->body.max - x->body.len);
			x->stop = ST_ERROR_FULL;
			return 0;
		}
		return n;
	case M_BODY:
		if (buf_append(&x->body, data, n) != PRISM_OK) {
			x->stop = ST_TOO_LARGE;
			return 0;
		}
		return n;
	case M_SSE:
		if (x->done)
			return n;
		switch (sse_feed(&x->sse, data, n, on_sse_event, x)) {
		case SSE_OK:
			return n;
		case SSE_TOO_LARGE:
			snprintf(x->detail, sizeof x->detail, "an event in the stream is larger than %ld bytes",
				 (long)PROVIDER_MAX_EVENT);
			x->stop = ST_PROTOCOL;
			return 0;
		case SSE_STOPPED:
			return x->stop != ST_NONE ? 0 : n;
		}
		return 0;
	case M_UNKNOWN:
		break;
	}
	return 0;
}

/* The timers of an exchange: first byte, idle gap, the linger after [DONE].  sent_at: monotonic ms the
 * request began to go out, -1 while connecting.  False: stop (x->stop says why). */
static bool
timers_ok(struct xfer *x, int64_t sent_at)
{
	int64_t now = clock_monotonic_ms();
	if (x->done) {
		if (now - x->done_at < PROVIDER_DONE_LINGER_MS)
			return true;
		x->stop = ST_DONE_LINGER;
		return false;
	}
	if (x->first_byte_at < 0) {
		/* The first-byte clock starts when the request is on its way (connecting has its own timeout). */
		if (sent_at < 0 || now - sent_at <= x->first_byte_limit)
			return true;
		x->stop = ST_FIRST_BYTE;
		return false;
	}
	/* Once the answer has its finish_reason only the usage chunk and [DONE] are missing: a provider that
	 * sends neither and keeps the connection open does not hold the client for a whole idle timeout. */
	long limit = x->out->finish_reason[0] && x->idle_limit > PROVIDER_FINISH_LINGER_MS ? PROVIDER_FINISH_LINGER_MS
											    : x->idle_limit;
	if (now - x->last_byte_at <= limit)
		return true;
	x->stop = ST_IDLE;
	return false;
}

static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = ud;
	int64_t sent_at = -1;
	if (x->first_byte_at < 0 && !x->done) {
		curl_off_t pre = 0;
		if (curl_easy_getinfo(x->c, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK)
			pre = 0;
		if (pre > 0 || ulnow > 0)
			sent_at = x->t0 + (int64_t)(pre / 1000);
	}
	return timers_ok(x, sent_at) ? 0 : 1;
}

/* The h1client callbacks: the same handlers as libcurl's. */
static bool
h1_on_header(void *ud, const char *line, size_t n)
{
	return on_header((char *)line, 1, n, ud) == n;
}

static bool
h1_on_body(void *ud, const char *data, size_t n)
{
	return on_write((char *)data, 1, n, ud) == n;
}

static bool
h1_on_tick(void *ud)
{
	struct xfer *x = ud;
	return timers_ok(x, x->h1.sent_at);
}

/* --- request headers ---------------------------------------------------------------------------------------- */

static bool
header_ok(const char *name, const char *value)
{
	if (!name || !*name || !value)
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	return !strpbrk(value, "\r\n");
}

/* Appends "name: value" (wiped after the copy: it may hold the key). */
static bool
add_header(struct curl_slist **list, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (nl + vl + 3 > OA_MAX_HEADER_LINE)
		return false;
	/* On the heap, not 8 KB deep in the stack of a thread that may then hold a stream for minutes. */
	char *line = xmalloc(nl + vl + 3);
	memcpy(line, name, nl);
	if (vl) {
		memcpy(line + nl, ": ", 2);
		memcpy(line + nl + 2, value, vl + 1);
	} else {
		/* "Name;" is curl's way to send an empty value ("Name:" would remove the header). */
		memcpy(line + nl, ";", 2);
	}
	struct curl_slist *l = curl_slist_append(*list, line);
	secure_wipe(line, nl + vl + 3);
	free(line);
	if (!l)
		return false;
	*list = l;
	return true;
}

static void
wipe_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data)
			secure_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Headers whose value we own: an extra header of that name is dropped. */
static bool
reserved_header(const char *name, bool own_auth)
{
	static const char *const names[] = {
		"host", "content-length", "transfer-encoding", "connection", "expect", "content-type", "accept",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return own_auth && strcasecmp(name, "authorization") == 0;
}

static enum prism_err
build_headers(const struct provider_target *t, bool post, bool stream, struct curl_slist **out, char *err,
	      size_t errlen)
{
	struct curl_slist *h = NULL;
	bool ok = true;
	if (post)
		ok = add_header(&h, "Content-Type", "application/json");
	ok = ok && add_header(&h, "Accept", stream ? "text/event-stream" : "application/json");
	/* No "Expect: 100-continue" round trip before large bodies. */
	ok = ok && (h = curl_slist_append(h, "Expect:")) != NULL;
	bool own_auth = sends_auth(t);
	if (ok && own_auth) {
		const char *key = api_key_of(t);
		if (strpbrk(key, "\r\n")) {
			wipe_headers(h);
			snprintf(err, errlen, "the API key cannot be sent in a header (it contains a line break)");
			return PRISM_E_CONFIG;
		}
		size_t n = strlen(key) + 8;
		char *v = malloc(n);
		if (!v) {
			ok = false;
		} else {
			snprintf(v, n, "Bearer %s", key);
			ok = add_header(&h, "Authorization", v);
			secure_wipe(v, n);
			free(v);
		}
	}
	const char *name;
	const json_t *val;
	size_t count = 0;
	json_object_foreach((json_t *)t->extra_headers, name, val) {
		if (!ok)
			break;
		const char *s = json_string_value(val);
		if (!s || reserved_header(name, own_auth))
			continue;
		if (!header_ok(name, s) || ++count > OA_MAX_EXTRA_HEADERS) {
			log_warn("provider %s: extra header '%.64s' skipped (invalid or too many)", t->name ? t->name : "?",
				 name);
			continue;
		}
		if (!add_header(&h, name, s))
			log_warn("provider %s: extra header '%.64s' skipped (too long)", t->name ? t->name : "?", name);
	}
	if (!ok) {
		wipe_headers(h);
		snprintf(err, errlen, "out of memory");
		return PRISM_E_NOMEM;
	}
	*out = h;
	return PRISM_OK;
}

static const char *
api_path_of(const struct provider_target *t)
{
	return t->api_path && *t->api_path ? t->api_path : "/v1";
}

/* <base_url><path><suffix>, without doubled slashes at the joints. */
static bool
build_url(const struct provider_target *t, const char *path, const char *suffix, char *url, size_t len)
{
	const char *base = t->base_url ? t->base_url : "";
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	if (!bl)
		return false;
	size_t pl = strlen(path);
	while (pl && path[pl - 1] == '/')
		pl--;
	int n = snprintf(url, len, "%.*s%s%.*s%s", (int)bl, base, pl && path[0] != '/' ? "/" : "", (int)pl, path,
			 suffix);
	return n > 0 && (size_t)n < len;
}

/* --- the exchange ----------------------------------------------------------------------------------------- */

static enum prism_err
fail(struct provider_result *out, enum provider_errclass c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum prism_err
fail(struct provider_result *out, enum provider_errclass c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof out->message, fmt, ap);
	va_end(ap);
	out->errclass = c;
	return c == PE_TIMEOUT ? PRISM_E_TIMEOUT : PRISM_E_UPSTREAM;
}

static enum prism_err
curl_failure(const struct xfer *x, CURLcode rc, const char *curlerr, long status)
{
	struct provider_result *out = x->out;
	char why[PROVIDER_MAX_EXCERPT + 8];
	const char *raw = curlerr[0] ? curlerr : curl_easy_strerror(rc);
	provider_excerpt(raw, strlen(raw), api_key_of(x->t), why, sizeof why);
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_off_t conn = x->h1.connected;
		if (x->c)
			curl_easy_getinfo(x->c, CURLINFO_CONNECT_TIME_T, &conn);
		if (conn <= 0 && x->first_byte_at < 0)
			return fail(out, PE_TIMEOUT, "connect timeout (%s)", why);
		return fail(out, PE_TIMEOUT, "total timeout (%s)", why);
	}
	bool answered = status >= 200 && status <= 299 && x->first_byte_at >= 0;
	switch (rc) {
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP2:
		if (answered)
			return fail(out, PE_CUT, "the connection broke during the answer (%s)", why);
		return fail(out, PE_CONNECT, "the connection failed (%s)", why);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return fail(out, PE_CONNECT, "cannot resolve the proxy (%s)", why);
	case CURLE_COULDNT_RESOLVE_HOST:
		return fail(out, PE_CONNECT, "cannot resolve the host name (%s)", why);
	case CURLE_COULDNT_CONNECT:
		return fail(out, PE_CONNECT, "cannot connect (%s)", why);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return fail(out, PE_CONNECT, "unusable base URL (%s)", why);
	default:
		if (curlx_is_tls_error(rc))
			return fail(out, PE_CONNECT, "TLS error (%s)", why);
		return fail(out, PE_CONNECT, "transfer failed (%s)", why);
	}
}

static long
connect_limit(const struct provider_target *t)
{
	return t->connect_timeout_ms > 0 ? t->connect_timeout_ms : PROVIDER_DEFAULT_CONNECT_MS;
}

static long
total_limit(const struct provider_target *t)
{
	return t->total_timeout_ms > 0 ? t->total_timeout_ms : PROVIDER_DEFAULT_TOTAL_MS;
}

/* The exchange through libcurl: everything h1client does not take (TLS, a proxy, a host name). */
static CURLcode
curl_exchange(struct xfer *x, const char *url, const char *post, size_t post_len, struct curl_slist *headers,
	      char *curlerr, long *status)
{
	const struct provider_target *t = x->t;
	if (!(x->c = handle_get())) {
		snprintf(curlerr, CURL_ERROR_SIZE, "cannot start a transfer");
		return CURLE_OUT_OF_MEMORY;
	}
	CURL *c = x->c;
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curlx_basics(c, curlerr);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curlx_http_only(c);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_limit(t));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_limit(t));
	if (t->http_proxy && *t->http_proxy) {
		curl_easy_setopt(c, CURLOPT_PROXY, t->http_proxy);
		/* ... for every host: the environment's no_proxy does not apply either. */
		curl_easy_setopt(c, CURLOPT_NOPROXY, "");
		/* A proxy's CONNECT answer is no byte of the provider's answer (first-byte timer). */
		curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	} else {
		/* The provider's route is its own setting: never one from the environment. */
		curl_easy_setopt(c, CURLOPT_PROXY, "");
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	}
	curlx_tls(c, t->tls_verify, t->ca_file);
	/* Compressed streams can sit in a proxy's or the server's compressor; plain text flows event by event. */
	if (!x->cb)
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	return rc;
}

/* The exchange through h1client (a plain http:// URL to an address, no proxy), its outcome in libcurl's
 * terms so that both are judged alike. */
static CURLcode
h1_exchange(struct xfer *x, const struct h1_url *u, const char *post, size_t post_len,
	    const struct curl_slist *headers, char *curlerr, long *status)
{
	struct h1_request rq = {
		.url = u, .method = post ? "POST" : "GET", .headers = headers, .body = post, .body_len = post_len,
		.t0 = x->t0, .connect_timeout_ms = connect_limit(x->t), .total_timeout_ms = total_limit(x->t),
	};
	struct h1_callbacks cb = { h1_on_header, h1_on_body, h1_on_tick, x };
	enum h1_err e = h1_perform(&rq, &cb, &x->h1);
	*status = x->h1.status;
	snprintf(curlerr, CURL_ERROR_SIZE, "%s", x->h1.error);
	switch (e) {
	case H1_OK: return CURLE_OK;
	case H1_CONNECT: return CURLE_COULDNT_CONNECT;
	case H1_CONNECT_TIMEOUT:
	case H1_TIMEOUT: return CURLE_OPERATION_TIMEDOUT;
	case H1_SEND: return CURLE_SEND_ERROR;
	case H1_RECV: return x->h1.bytes_in ? CURLE_PARTIAL_FILE : CURLE_GOT_NOTHING;
	case H1_PROTOCOL: return x->h1.status ? CURLE_RECV_ERROR : CURLE_WEIRD_SERVER_REPLY;
	case H1_ABORTED: return CURLE_ABORTED_BY_CALLBACK;
	}
	return CURLE_RECV_ERROR;
}

/* One HTTP exchange: POST post (NULL: GET) to url.  On a non-streaming success out->body holds the answer. */
static enum prism_err
perform(const struct provider_target *t, const char *url, const char *post, size_t post_len,
	const struct provider_stream_cb *cb, struct provider_result *out)
{
	struct xfer x = {
		.t = t, .cb = cb, .out = out, .first_byte_at = -1, .last_byte_at = -1, .done_at = -1,
		.first_byte_limit = t->first_byte_timeout_ms > 0 ? t->first_byte_timeout_ms : PROVIDER_DEFAULT_FIRST_BYTE_MS,
		.idle_limit = t->idle_timeout_ms > 0 ? t->idle_timeout_ms : PROVIDER_DEFAULT_IDLE_MS,
		.h1 = { .sent_at = -1 },
	};
	struct curl_slist *headers = NULL;
	char curlerr[CURL_ERROR_SIZE] = "";
	json_t *root = NULL;
	enum prism_err e = PRISM_OK;

	buf_init(&x.body, PROVIDER_MAX_RESPONSE);
	sse_init(&x.sse, PROVIDER_MAX_EVENT);
	out->first_byte_ms = -1;
	char err[PROVIDER_MAX_MESSAGE];
	if ((e = build_headers(t, post != NULL, cb != NULL, &headers, err, sizeof err))) {
		e = fail(out, e == PRISM_E_CONFIG ? PE_AUTH : PE_CONNECT, "%s", err);
		goto out;
	}

	x.t0 = clock_monotonic_ms();
	long status = 0;
	struct h1_url hu;
	CURLcode rc;
	if (!(t->http_proxy && *t->http_proxy) && h1_url_parse(url, &hu)) {
		rc = h1_exchange(&x, &hu, post, post_len, headers, curlerr, &status);
	} else {
		rc = curl_exchange(&x, url, post, post_len, headers, curlerr, &status);
		if (rc == CURLE_OUT_OF_MEMORY && !x.c) {
			e = fail(out, PE_CONNECT, "cannot start a transfer");
			goto out;
		}
	}
	out->http_status = (int)status;
	if (x.mode == M_SSE && x.stop == ST_NONE && rc == CURLE_OK)
		sse_finish(&x.sse, on_sse_event, &x, NULL);
	out->duration_ms = clock_monotonic_ms() - x.t0;
	out->first_byte_ms = x.first_byte_at >= 0 ? x.first_byte_at - x.t0 : -1;

	switch (x.stop) {
	case ST_CLIENT_GONE:
		snprintf(out->message, sizeof out->message, "the client closed the connection");
		e = PRISM_E_CLIENT_GONE;
		goto out;
	case ST_FIRST_BYTE:
		e = fail(out, PE_TIMEOUT, "no answer within %ld ms (first-byte timeout)", x.first_byte_limit);
		goto out;
	case ST_IDLE:
		if (x.mode == M_SSE && out->finish_reason[0])
			goto out;   /* complete, only its end never came */
		e = fail(out, PE_TIMEOUT, "no data for %ld ms (idle timeout)", x.idle_limit);
		goto out;
	case ST_TOO_LARGE:
		e = fail(out, PE_PROTOCOL, "the answer is larger than %ld bytes", (long)PROVIDER_MAX_RESPONSE);
		goto out;
	case ST_PROTOCOL:
		e = fail(out, PE_PROTOCOL, "%s", x.detail);
		goto out;
	case ST_STREAM_ERROR:
		out->max_tokens_limit = x.stop_limit;
		e = fail(out, x.stop_class, "%s", x.detail);
		goto out;
	case ST_ERROR_FULL:
	case ST_DONE_LINGER:
	case ST_NONE:
		break;
	}

	if (status > 0 && (status < 200 || status > 299)) {
		/* The status decides, even when the error body was cut short. */
		root = json_loadb(buf_cstr(&x.body), x.body.len, 0, NULL);
		long limit = 0;
		char msg[PROVIDER_MAX_MESSAGE] = "";
		enum provider_errclass ec = error_of(t, (int)status, root, buf_cstr(&x.body), msg, sizeof msg, &limit);
		out->max_tokens_limit = limit;
		if (status == 429 || status == 503)
			out->retry_after_s = provider_retry_after(x.retry_after, (int64_t)time(NULL));
		e = fail(out, ec, "%s", msg);
		goto out;
	}
	bool stream_ok = x.mode == M_SSE && (x.done || out->finish_reason[0]);
	if (rc != CURLE_OK && x.stop != ST_DONE_LINGER && !stream_ok) {
		e = curl_failure(&x, rc, curlerr, status);
		goto out;
	}
	if (x.mode == M_SSE) {
		if (!stream_ok)
			e = fail(out, PE_CUT, "the stream ended without [DONE] or a finish_reason");
		goto out;
	}
	if (!cb && post && jscan_answer(buf_cstr(&x.body), x.body.len, &out->scan)) {
		/* A clean answer: kept as text, read without a tree (the gateway adds its members to the text). */
		out->prompt_tokens = out->scan.prompt_tokens;
		out->completion_tokens = out->scan.completion_tokens;
		out->usage_reported = out->scan.usage_reported;
		memcpy(out->finish_reason, out->scan.finish_reason, sizeof out->finish_reason);
		out->body_text = buf_take(&x.body, &out->body_len);
		goto out;
	}
	json_error_t je;
	root = json_loadb(buf_cstr(&x.body), x.body.len, 0, &je);
	if (!json_is_object(root) && !(json_is_array(root) && !post)) {
		char ex[96];
		provider_excerpt(buf_cstr(&x.body), x.body.len < 64 ? x.body.len : 64, api_key_of(t), ex, sizeof ex);
		e = fail(out, PE_PROTOCOL, "the answer is not a JSON object%s%s", ex[0] ? ": " : " (empty)", ex);
		goto out;
	}
	const json_t *errobj = json_object_get(root, "error");
	if (errobj && !json_is_null(errobj)) {
		long limit = 0;
		char msg[PROVIDER_MAX_MESSAGE] = "";
		enum provider_errclass ec = error_of(t, (int)status, root, NULL, msg, sizeof msg, &limit);
		out->max_tokens_limit = limit;
		e = fail(out, ec, "%s", msg);
		goto out;
	}
	if (cb) {
		e = fail(out, PE_PROTOCOL, "the provider answered a streaming request with a JSON body");
		goto out;
	}
	take_usage(out, root);
	take_finish(out, root);
	out->body = root;
	root = NULL;
out:
	json_decref(root);
	if (x.c)
		handle_put(x.c);
	wipe_headers(headers);
	sse_free(&x.sse);
	buf_free(&x.body);
	return e;
}

/* --- the operations --------------------------------------------------------------------------------------- */

static enum prism_err
oa_call(const struct provider_target *t, enum provider_kind kind, const json_t *req,
	const struct provider_stream_cb *cb, struct provider_result *out)
{
	static const char *const suffix[] = {
		[PROVIDER_CHAT] = "/chat/completions",
		[PROVIDER_COMPLETIONS] = "/completions",
		[PROVIDER_EMBEDDINGS] = "/embeddings",
	};
	json_t *body = NULL;
	char *text = NULL;
	enum prism_err e;

	provider_result_clear(out);
	out->first_byte_ms = -1;
	if ((unsigned)kind > PROVIDER_EMBEDDINGS || !json_is_object(req))
		return fail(out, PE_BAD_REQUEST, "the request is not a JSON object");
	if (kind == PROVIDER_EMBEDDINGS || (cb && !cb->on_event))
		cb = NULL;
	/* On the heap: libcurl's frames come below this one, on a stack that keeps every page it touched
	 * while the thread relays a stream. */
	char *url = xmalloc(OA_MAX_URL);
	if (!build_url(t, api_path_of(t), suffix[kind], url, OA_MAX_URL)) {
		e = fail(out, PE_CONNECT, "the provider has no usable base URL");
		goto out;
	}
	/* A shallow copy: the members are the caller's, only read; the one nested object changed
	 * (stream_options) is replaced by a copy of its own. */
	if (!(body = json_copy((json_t *)req))) {
		e = fail(out, PE_CONNECT, "out of memory");
		goto out;
	}
	if (kind != PROVIDER_EMBEDDINGS) {
		json_object_set_new(body, "stream", json_boolean(cb != NULL));
		if (cb) {
			json_t *so = json_object_get(body, "stream_options");
			so = json_is_object(so) ? json_copy(so) : json_object();
			json_object_set_new(so, "include_usage", json_true());
			json_object_set_new(body, "stream_options", so);
		} else {
			/* OpenAI rejects stream_options unless stream is true. */
			json_object_del(body, "stream_options");
		}
	}
	size_t len = 0;
	if (!(text = jtext_dump(body, 17, &len))) {
		e = fail(out, PE_CONNECT, "out of memory");
		goto out;
	}
	e = perform(t, url, text, len, cb, out);
out:
	free(text);
	json_decref(body);
	free(url);
	return e;
}

/* The ids of a model list: {"data":[{"id"}]} (OpenAI), {"models":[{"name"|"model"}]} (Ollama) or a bare
 * array of either objects or strings. */
static json_t *
model_ids(const json_t *root)
{
	const json_t *list = json_is_array(root) ? root : json_object_get(root, "data");
	if (!json_is_array(list))
		list = json_object_get(root, "models");
	if (!json_is_array(list))
		return NULL;
	json_t *ids = json_array();
	size_t i;
	const json_t *m;
	json_array_foreach(list, i, m) {
		const char *id = json_string_value(m);
		if (!id)
			id = json_string_value(json_object_get(m, "id"));
		if (!id)
			id = json_string_value(json_object_get(m, "name"));
		if (!id)
			id = json_string_value(json_object_get(m, "model"));
		if (id && *id)
			json_array_append_new(ids, json_string(id));
	}
	return ids;
}

static enum prism_err
list_at(const struct provider_target *t, const char *api_path, const char *suffix, json_t **models,
	struct provider_result *out)
{
	char url[OA_MAX_URL];
	provider_result_clear(out);
	out->first_byte_ms = -1;
	if (!build_url(t, api_path, suffix, url, sizeof url))
		return fail(out, PE_CONNECT, "the provider has no usable base URL");
	enum prism_err e = perform(t, url, NULL, 0, NULL, out);
	if (e)
		return e;
	json_t *ids = model_ids(out->body);
	json_decref(out->body);
	out->body = NULL;
	if (!ids)
		return fail(out, PE_PROTOCOL, "the model list has no data array");
	*models = ids;
	return PRISM_OK;
}

static enum prism_err
oa_list_models(const struct provider_target *t, json_t **models, struct provider_result *out)
{
	*models = NULL;
	return list_at(t, api_path_of(t), "/models", models, out);
}

static enum prism_err
ollama_list_models(const struct provider_target *t, json_t **models, struct provider_result *out)
{
	*models = NULL;
	enum prism_err e = list_at(t, "", "/api/tags", models, out);
	if (e == PRISM_OK)
		return e;
	/* Not (or not only) Ollama's own API: its OpenAI-compatible one. */
	return list_at(t, api_path_of(t), "/models", models, out);
}

const struct provider_ops openai_compat_ops = {
	.name = "openai_compat",
	.call = oa_call,
	.list_models = oa_list_models,
};

const struct provider_ops ollama_compat_ops = {
	.name = "ollama",
	.call = oa_call,
	.list_models = ollama_list_models,
};
