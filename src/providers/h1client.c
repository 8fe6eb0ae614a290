/* h1client.c -- see h1client.h. */
#include "config.h"
#include "providers/h1client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/parse.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define H1_READ_SIZE 8192
#define H1_MAX_REQUEST_HEAD (1024 * 1024)

/* --- URLs ------------------------------------------------------------------------------------------------- */

bool
h1_url_parse(const char *url, struct h1_url *u)
{
	memset(u, 0, sizeof *u);
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
			return false;
	const char *a = url + 7;
	size_t alen = strcspn(a, "/?");
	if (!alen || alen >= sizeof u->authority || memchr(a, '@', alen))
		return false;
	memcpy(u->authority, a, alen);
	u->authority[alen] = '\0';
	u->target = a[alen] == '/' ? a + alen : NULL;
	if (!u->target && a[alen])
		return false;           /* "http://host?query": rare enough to leave to libcurl */

	const char *h = u->authority, *port = NULL;
	size_t hlen;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close)
			return false;
		h++;
		hlen = (size_t)(close - h);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return false;
	} else {
		const char *colon = strchr(h, ':');
		hlen = colon ? (size_t)(colon - h) : strlen(h);
		port = colon ? colon + 1 : NULL;
	}
	if (!hlen || hlen >= sizeof u->host)
		return false;
	memcpy(u->host, h, hlen);
	u->host[hlen] = '\0';
	if (port) {
		size_t pl = strlen(port);
		if (!pl || pl > 5 || strspn(port, "0123456789") != pl || atoi(port) < 1 || atoi(port) > 65535)
			return false;
		memcpy(u->port, port, pl + 1);
	} else {
		strcpy(u->port, "80");
	}
	/* An address, or localhost (/etc/hosts): no name service that could hold the thread. */
	unsigned char bin[sizeof(struct in6_addr)];
	if (strcasecmp(u->host, "localhost") != 0 && inet_pton(AF_INET, u->host, bin) != 1 &&
	    inet_pton(AF_INET6, u->host, bin) != 1)
		return false;
	if (!u->target)
		u->target = "/";
	return true;
}

/* --- the pool --------------------------------------------------------------------------------------------- */

struct idle_conn {
	int fd;
	int64_t since;
	char key[80];                   /* host and port */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct idle_conn pool[H1_POOL_MAX];
static int npool;

static void
conn_key(const struct h1_url *u, char *key, size_t n)
{
	snprintf(key, n, "%s %s", u->host, u->port);
}

/* pool_lock held: takes entry i out of the pool (the others keep their order, oldest first); its fd. */
static int
pool_remove_locked(int i)
{
	int fd = pool[i].fd;
	memmove(&pool[i], &pool[i + 1], (size_t)(npool - i - 1) * sizeof pool[0]);
	npool--;
	return fd;
}

/* An idle connection to key that is still open (nothing to read, no end of stream), most recent first. */
static int
pool_take(const char *key)
{
	int64_t now = clock_monotonic_ms();
	for (;;) {
		int fd = -1;
		bool stale = false;
		pthread_mutex_lock(&pool_lock);
		for (int i = npool - 1; i >= 0; i--) {
			if (strcmp(pool[i].key, key) != 0)
				continue;
			stale = now - pool[i].since > H1_IDLE_MAX_MS;
			fd = pool_remove_locked(i);
			break;
		}
		pthread_mutex_unlock(&pool_lock);
		if (fd < 0)
			return -1;
		char c;
		ssize_t r = stale ? 0 : recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return fd;
		close(fd);              /* closed by the server, or it sent what nobody asked for */
	}
}

static void
pool_put(int fd, const char *key)
{
	int drop = -1, stale[H1_POOL_MAX], nstale = 0;
	int64_t now = clock_monotonic_ms();
	pthread_mutex_lock(&pool_lock);
	/* Connections unused too long go (oldest first in the pool), so that none lingers for a provider no
	 * longer called. */
	while (npool > 0 && now - pool[0].since > H1_IDLE_MAX_MS)
		stale[nstale++] = pool_remove_locked(0);
	if (npool == H1_POOL_MAX)
		drop = pool_remove_locked(0);   /* the one unused longest */
	pool[npool].fd = fd;
	pool[npool].since = now;
	snprintf(pool[npool].key, sizeof pool[npool].key, "%s", key);
	npool++;
	pthread_mutex_unlock(&pool_lock);
	if (drop >= 0)
		close(drop);
	for (int i = 0; i < nstale; i++)
		close(stale[i]);
}

void
h1_pool_clear(void)
{
	pthread_mutex_lock(&pool_lock);
	while (npool > 0)
		close(pool[--npool].fd);
	pthread_mutex_unlock(&pool_lock);
}

/* --- one exchange ----------------------------------------------------------------------------------------- */

static long
ms_left(int64_t deadline)
{
	int64_t left = deadline - clock_monotonic_ms();
	return left < 0 ? 0 : (long)left;
}

static enum h1_err
connect_to(const struct h1_request *rq, int64_t deadline, int *out, struct h1_result *res)
{
	bool timed_out = false;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
	int gai = getaddrinfo(rq->url->host, rq->url->port, &hints, &ai);
	if (gai != 0) {
		snprintf(res->error, sizeof res->error, "Could not resolve host: %s (%s)", rq->url->host, gai_strerror(gai));
		return H1_CONNECT;
	}
	int err = ECONNREFUSED;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n;
		do
			n = poll(&p, 1, (int)ms_left(deadline));
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			close(fd);
			timed_out = true;
			break;
		}
		socklen_t el = sizeof err;
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
			if (n < 0)
				err = errno;
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
		int idle = 60;          /* as libcurl's CURLOPT_TCP_KEEPALIVE */
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
		freeaddrinfo(ai);
		*out = fd;
		return H1_OK;
	}
	freeaddrinfo(ai);
	if (timed_out) {
		snprintf(res->error, sizeof res->error, "Connection to %s port %s timed out after %ld milliseconds",
			 rq->url->host, rq->url->port, rq->connect_timeout_ms);
		return H1_CONNECT_TIMEOUT;
	}
	snprintf(res->error, sizeof res->error, "Failed to connect to %s port %s: %s", rq->url->host, rq->url->port,
		 strerror(err));
	return H1_CONNECT;
}

/* The request head: request line, Host, User-Agent, the caller's lines, Content-Length.  False: too large. */
static bool
build_head(const struct h1_request *rq, struct buf *b)
{
	enum prism_err e = buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: model-prism/" PACKAGE_VERSION
				      "\r\n", rq->method, rq->url->target, rq->url->authority);
	for (const struct curl_slist *l = rq->headers; l; l = l->next) {
		const char *s = l->data;
		size_t n = strlen(s);
		if (n && s[n - 1] == ';') {
			e = e ? e : buf_append(b, s, n - 1);
			e = e ? e : buf_append(b, ":\r\n", 3);
		} else if (n && s[n - 1] != ':') {
			e = e ? e : buf_append(b, s, n);
			e = e ? e : buf_append(b, "\r\n", 2);
		}
	}
	if (rq->body)
		e = e ? e : buf_printf(b, "Content-Length: %zu\r\n", rq->body_len);
	e = e ? e : buf_append(b, "\r\n", 2);
	return e == PRISM_OK;
}

/* Sends head and body whole. */
static enum h1_err
send_all(int fd, const struct buf *head, const struct h1_request *rq, int64_t deadline, struct h1_result *res)
{
	struct iovec iov[2] = {
		{ .iov_base = head->data, .iov_len = head->len },
		{ .iov_base = (void *)rq->body, .iov_len = rq->body ? rq->body_len : 0 },
	};
	int niov = 2, first = 0;
	while (first < niov) {
		struct msghdr m = { .msg_iov = iov + first, .msg_iovlen = (size_t)(niov - first) };
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				snprintf(res->error, sizeof res->error, "sending the request failed: %s", strerror(errno));
				return H1_SEND;
			}
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			long left = ms_left(deadline);
			if (!left || poll(&p, 1, (int)left) == 0) {
				snprintf(res->error, sizeof res->error, "the request was not sent within the timeout");
				return H1_TIMEOUT;
			}
			continue;
		}
		size_t n = (size_t)w;
		while (first < niov && n >= iov[first].iov_len) {
			n -= iov[first].iov_len;
			first++;
		}
		if (first < niov) {
			iov[first].iov_base = (char *)iov[first].iov_base + n;
			iov[first].iov_len -= n;
		}
	}
	return H1_OK;
}

enum body_mode { B_LENGTH, B_CHUNKED, B_CLOSE };
enum rstate { R_HEAD, R_BODY, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_END, R_TRAILER, R_DONE };

struct reader {
	const struct h1_callbacks *cb;
	struct h1_result *res;
	enum rstate st;
	struct buf line;                /* a header line or chunk-size line split over reads */
	size_t head_bytes;
	bool block_start;               /* the next header line is a status line */
	int minor;                      /* HTTP/1.minor of the answer */
	bool conn_close, conn_keep;
	enum body_mode mode;
	bool have_length;
	unsigned long long left;        /* of the body (B_LENGTH) or the chunk */
};

static enum h1_err
protocol(struct reader *r, const char *why)
{
	snprintf(r->res->error, sizeof r->res->error, "malformed answer: %s", why);
	return H1_PROTOCOL;
}

/* Is token (case-insensitive) one of the comma-separated items of v? */
static bool
has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
			return true;
	}
	return false;
}

/* v (n bytes, leading blanks gone) is exactly word, up to trailing blanks? */
static bool
value_is(const char *v, size_t n, const char *word)
{
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n == strlen(word) && strncasecmp(v, word, n) == 0;
}

/* One header line (line end included). */
static enum h1_err
header_line(struct reader *r, const char *l, size_t n)
{
	r->head_bytes += n;
	if (r->head_bytes > H1_MAX_HEAD)
		return protocol(r, "the header is too large");
	size_t cl = n;                  /* content length of the line, without its end */
	if (cl && l[cl - 1] == '\n')
		cl--;
	if (cl && l[cl - 1] == '\r')
		cl--;
	bool status_line = r->block_start;
	if (r->block_start) {
		if (cl < 12 || strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
		    strspn(l + 9, "0123456789") != 3 || (cl > 12 && l[12] != ' '))
			return protocol(r, "not an HTTP/1.x status line");
		r->minor = l[7] - '0';
		r->res->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
		r->block_start = false;
		r->conn_close = r->conn_keep = false;
		r->mode = B_CLOSE;
		r->have_length = false;
	}
	if (!r->cb->on_header(r->cb->ud, l, n))
		return H1_ABORTED;
	if (status_line)
		return H1_OK;
	if (cl == 0) {
		/* The end of a block: a 1xx answer is followed by another. */
		int st = r->res->status;
		if (st >= 100 && st < 200) {
			if (st == 101)
				return protocol(r, "an upgrade was not asked for");
			r->block_start = true;
			return H1_OK;
		}
		if (st == 204 || st == 304 || (r->mode == B_LENGTH && r->left == 0)) {
			r->st = R_DONE;
		} else if (r->mode == B_CHUNKED) {
			r->st = R_CHUNK_SIZE;
		} else {
			r->st = R_BODY;
			if (r->mode == B_CLOSE)
				r->conn_close = true;   /* the body ends with the connection */
		}
		return H1_OK;
	}
	const char *colon = memchr(l, ':', cl);
	if (!colon || colon == l)
		return protocol(r, "a header line without a name");
	size_t nl = (size_t)(colon - l);
	const char *v = colon + 1;
	size_t vl = cl - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	/* No Accept-Encoding and no TE header went out: a server may apply no coding but chunked. */
	if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
		if (!value_is(v, vl, "chunked"))
			return protocol(r, "a transfer coding that was not asked for");
		r->mode = B_CHUNKED;
		r->have_length = false;
	} else if (nl == 16 && strncasecmp(l, "content-encoding", 16) == 0) {
		if (!value_is(v, vl, "identity"))
			return protocol(r, "a content coding that was not asked for");
	} else if (nl == 14 && strncasecmp(l, "content-length", 14) == 0 && r->mode != B_CHUNKED) {
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		if (!vl || vl > 15 || strspn(v, "0123456789") < vl)
			return protocol(r, "an invalid Content-Length");
		unsigned long long len = strtoull(v, NULL, 10);
		if (r->have_length && len != r->left)
			return protocol(r, "two different Content-Lengths");
		r->have_length = true;
		r->mode = B_LENGTH;
		r->left = len;
	} else if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
		if (has_token(v, vl, "close"))
			r->conn_close = true;
		if (has_token(v, vl, "keep-alive"))
			r->conn_keep = true;
	}
	return H1_OK;
}

static enum h1_err
chunk_size_line(struct reader *r, const char *l, size_t n)
{
	size_t i = 0;
	unsigned long long v = 0;
	while (i < n) {
		int d = parse_hexval((unsigned char)l[i]);
		if (d < 0)
			break;
		if (v > (1ULL << 40))
			return protocol(r, "a chunk size out of range");
		v = v * 16 + (unsigned long long)d;
		i++;
	}
	if (i == 0 || (i < n && l[i] != ';' && l[i] != ' ' && l[i] != '\t' && l[i] != '\r' && l[i] != '\n'))
		return protocol(r, "an invalid chunk size");
	r->left = v;
	r->st = v ? R_CHUNK_DATA : R_TRAILER;
	return H1_OK;
}

/* Collects one line from p (n bytes) into r->line; *used is what it took.  True when the line is whole. */
static bool
take_line(struct reader *r, const char *p, size_t n, size_t *used, bool *too_long)
{
	const char *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t)(nl - p) + 1 : n;
	*used = take;
	if (r->line.len + take > H1_MAX_LINE) {
		*too_long = true;
		return false;
	}
	buf_append(&r->line, p, take);
	return nl != NULL;
}

/* Feeds n bytes of the answer; a return other than H1_OK ends the exchange. */
static enum h1_err
feed(struct reader *r, const char *p, size_t n)
{
	while (n && r->st != R_DONE) {
		size_t used = 0;
		bool too_long = false;
		enum h1_err e = H1_OK;
		switch (r->st) {
		case R_HEAD:
		case R_CHUNK_SIZE:
		case R_CHUNK_END:
		case R_TRAILER:
			if (!take_line(r, p, n, &used, &too_long)) {
				if (too_long)
					return protocol(r, "a line is too long");
				break;
			}
			if (r->st == R_HEAD) {
				e = header_line(r, r->line.data, r->line.len);
			} else if (r->st == R_CHUNK_SIZE) {
				e = chunk_size_line(r, r->line.data, r->line.len);
			} else if (r->st == R_CHUNK_END) {
				if (r->line.len > 2 || (r->line.len == 2 && r->line.data[0] != '\r'))
					e = protocol(r, "no line end after a chunk");
				r->st = R_CHUNK_SIZE;
			} else {
				/* Trailer fields are ignored; the empty line ends the answer. */
				if (r->line.len <= 2)
					r->st = R_DONE;
			}
			r->line.len = 0;
			break;
		case R_BODY:
		case R_CHUNK_DATA: {
			size_t take = n;
			if (r->st == R_CHUNK_DATA || r->mode == B_LENGTH)
				take = r->left < n ? (size_t)r->left : n;
			if (!r->cb->on_body(r->cb->ud, p, take))
				return H1_ABORTED;
			used = take;
			if (r->st == R_CHUNK_DATA || r->mode == B_LENGTH) {
				r->left -= take;
				if (!r->left)
					r->st = r->st == R_CHUNK_DATA ? R_CHUNK_END : R_DONE;
			}
			break;
		}
		case R_DONE:
			break;
		}
		if (e != H1_OK)
			return e;
		p += used;
		n -= used;
	}
	if (n)
		r->conn_close = true;           /* bytes after the answer: the connection is not reused */
	return H1_OK;
}

/* One try on one connection.  *retry: the connection was a pooled one that failed before any answer. */
static enum h1_err
exchange(const struct h1_request *rq, const struct h1_callbacks *cb, struct h1_result *res, int fd, bool pooled,
	 const struct buf *head, int64_t deadline, bool *reusable, bool *retry)
{
	*reusable = false;
	*retry = false;
	res->sent_at = clock_monotonic_ms();
	enum h1_err e = send_all(fd, head, rq, deadline, res);
	if (e != H1_OK) {
		*retry = pooled && e == H1_SEND;
		return e;
	}
	struct reader r = { .cb = cb, .res = res, .st = R_HEAD, .block_start = true, .mode = B_CLOSE };
	buf_init(&r.line, H1_MAX_LINE);
	char *rb = xmalloc(H1_READ_SIZE);
	for (;;) {
		long left = ms_left(deadline);
		if (!left) {
			snprintf(res->error, sizeof res->error, "the answer was not whole within %ld ms", rq->total_timeout_ms);
			e = H1_TIMEOUT;
			break;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pn = poll(&p, 1, (int)(left < H1_TICK_MS ? left : H1_TICK_MS));
		if (pn < 0 && errno != EINTR) {
			snprintf(res->error, sizeof res->error, "waiting for the answer failed: %s", strerror(errno));
			e = H1_RECV;
			break;
		}
		if (pn <= 0) {
			if (!cb->on_tick(cb->ud)) {
				e = H1_ABORTED;
				break;
			}
			continue;
		}
		ssize_t got = recv(fd, rb, H1_READ_SIZE, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (got <= 0) {
			bool nothing = res->bytes_in == 0;
			if (got == 0 && r.st == R_BODY && r.mode == B_CLOSE) {
				r.st = R_DONE;  /* the body ends with the connection */
				r.conn_close = true;
				break;
			}
			*retry = pooled && nothing;
			const char *why = got < 0 ? strerror(errno)
					: nothing ? "the server closed the connection without an answer"
						  : "the server closed the connection before the answer was whole";
			snprintf(res->error, sizeof res->error, "%s", why);
			e = H1_RECV;
			break;
		}
		res->bytes_in += got;
		e = feed(&r, rb, (size_t)got);
		if (e != H1_OK || r.st == R_DONE)
			break;
		if (!cb->on_tick(cb->ud)) {
			e = H1_ABORTED;
			break;
		}
	}
	if (e == H1_OK && r.st == R_DONE)
		*reusable = !r.conn_close && (r.minor == 1 || r.conn_keep);
	free(rb);
	buf_free(&r.line);
	return e;
}

enum h1_err
h1_perform(const struct h1_request *rq, const struct h1_callbacks *cb, struct h1_result *res)
{
	memset(res, 0, sizeof *res);
	res->sent_at = -1;
	int64_t deadline = rq->t0 + rq->total_timeout_ms;
	int64_t cdeadline = rq->t0 + rq->connect_timeout_ms;
	if (cdeadline > deadline)
		cdeadline = deadline;
	char key[80];
	conn_key(rq->url, key, sizeof key);
	struct buf head;
	buf_init(&head, H1_MAX_REQUEST_HEAD);
	if (!build_head(rq, &head)) {
		secure_wipe(head.data, head.len);
		buf_free(&head);
		snprintf(res->error, sizeof res->error, "the request head is larger than %d bytes", H1_MAX_REQUEST_HEAD);
		return H1_SEND;
	}
	enum h1_err e;
	for (int attempt = 0;; attempt++) {
		int fd = attempt == 0 ? pool_take(key) : -1;
		bool pooled = fd >= 0;
		if (fd < 0) {
			/* The connect timeout counts from the start, or from the retry after a pooled connection failed. */
			if (attempt > 0) {
				cdeadline = clock_monotonic_ms() + rq->connect_timeout_ms;
				if (cdeadline > deadline)
					cdeadline = deadline;
			}
			if ((e = connect_to(rq, cdeadline, &fd, res)) != H1_OK)
				break;
		}
		res->connected = true;
		bool reusable, retry;
		e = exchange(rq, cb, res, fd, pooled, &head, deadline, &reusable, &retry);
		if (e == H1_OK && reusable)
			pool_put(fd, key);
		else
			close(fd);
		if (!(retry && attempt == 0))
			break;
		res->error[0] = '\0';   /* a connection the server had closed: once more on a new one */
	}
	secure_wipe(head.data, head.len);   /* it holds the provider's key */
	buf_free(&head);
	return e;
}
