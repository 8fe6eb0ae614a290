/* check_h1client.c -- the providers' HTTP/1.1 client against a scripted server on a loopback socket: URLs
 * it takes, the request it sends, every way an answer can be framed (Content-Length, chunked with extensions
 * and trailers, up to the close, 1xx before the answer, no body), answers that arrive a byte at a time,
 * connection reuse and when a connection must not be reused, the retry of a pooled connection the server
 * closed, malformed answers, timeouts and callbacks that stop the exchange.  tests/unit/check_providers.c
 * runs the whole adapter over it against the fake upstream. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "loopback.h"
#include "providers/h1client.h"
#include "util/clock.h"

/* --- the scripted server ---------------------------------------------------------------------------------- */

enum after { KEEP = 0, CLOSE, NOANSWER, SILENT };

struct step {
	const char *answer;
	enum after after;
	bool trickle;                   /* one byte per send */
};

struct server {
	int lfd, port;
	pthread_t th;
	const struct step *steps;
	int nsteps;
	atomic_int conns, requests;
	char last_head[8192];
	pthread_mutex_t lock;
};

/* Reads one request (head and Content-Length body); false at the end of the connection. */
static bool
read_request(struct server *s, int fd)
{
	char buf[16384];
	size_t n = 0;
	char *end = NULL;
	while (!(end = memmem(buf, n, "\r\n\r\n", 4))) {
		if (n == sizeof buf)
			return false;
		ssize_t r = recv(fd, buf + n, sizeof buf - n, 0);
		if (r <= 0)
			return false;
		n += (size_t)r;
	}
	size_t head = (size_t)(end - buf) + 4;
	long body = 0;
	char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl && cl < end)
		body = strtol(cl + 17, NULL, 10);
	pthread_mutex_lock(&s->lock);
	snprintf(s->last_head, sizeof s->last_head, "%.*s", (int)head, buf);
	pthread_mutex_unlock(&s->lock);
	size_t have = n - head;
	while ((long)have < body) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r <= 0)
			return false;
		have += (size_t)r;
	}
	return true;
}

static void
send_answer(int fd, const struct step *st)
{
	size_t n = strlen(st->answer);
	if (!st->trickle) {
		send(fd, st->answer, n, MSG_NOSIGNAL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		send(fd, st->answer + i, 1, MSG_NOSIGNAL);
		usleep(300);
	}
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		atomic_fetch_add(&s->conns, 1);
		for (;;) {
			if (!read_request(s, fd))
				break;
			int i = atomic_fetch_add(&s->requests, 1);
			const struct step *st = &s->steps[i < s->nsteps ? i : s->nsteps - 1];
			if (st->after == NOANSWER)
				break;
			if (st->after == SILENT) {
				usleep(1500 * 1000);
				break;
			}
			send_answer(fd, st);
			if (st->after == CLOSE)
				break;
		}
		close(fd);
	}
}

static void
server_start(struct server *s, const struct step *steps, int nsteps)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	s->steps = steps;
	s->nsteps = nsteps;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s->lfd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(s->lfd, 16), 0);
	socklen_t al = sizeof a;
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&s->th, NULL, server_main, s), 0);
	h1_pool_clear();
}

static void
server_stop(struct server *s)
{
	h1_pool_clear();                /* the server's reader sees its kept connections end */
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* --- a client ----------------------------------------------------------------------------------------------- */

struct got {
	char head[4096];
	char body[65536];
	size_t nbody;
	int status_lines, ticks;
	int stop_body_after;            /* >0: on_body says stop after this many bytes */
};

static bool
on_header(void *ud, const char *line, size_t n)
{
	struct got *g = ud;
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
		g->status_lines++;
	size_t have = strlen(g->head);
	snprintf(g->head + have, sizeof g->head - have, "%.*s", (int)n, line);
	return true;
}

static bool
on_body(void *ud, const char *data, size_t n)
{
	struct got *g = ud;
	ck_assert_uint_le(g->nbody + n, sizeof g->body - 1);
	memcpy(g->body + g->nbody, data, n);
	g->nbody += n;
	g->body[g->nbody] = '\0';
	return !(g->stop_body_after > 0 && g->nbody >= (size_t)g->stop_body_after);
}

static bool
on_tick(void *ud)
{
	struct got *g = ud;
	g->ticks++;
	return true;
}

static enum h1_err
run(const struct server *s, const char *path, const char *body, struct got *g, struct h1_result *res,
    long total_ms)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
	struct h1_url u;
	ck_assert(h1_url_parse(url, &u));
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, "X-Empty;");
	h = curl_slist_append(h, "X-Extra: one");
	memset(g, 0, sizeof *g);
	struct h1_request rq = {
		.url = &u, .method = body ? "POST" : "GET", .headers = h, .body = body, .body_len = body ? strlen(body) : 0,
		.t0 = clock_monotonic_ms(), .connect_timeout_ms = 1000, .total_timeout_ms = total_ms,
	};
	struct h1_callbacks cb = { on_header, on_body, on_tick, g };
	enum h1_err e = h1_perform(&rq, &cb, res);
	curl_slist_free_all(h);
	return e;
}

/* --- URLs -------------------------------------------------------------------------------------------------- */

START_TEST(url_table)
{
	static const struct {
		const char *url;
		bool taken;
		const char *host, *port, *authority, *target;
	} cases[] = {
		{ "http://127.0.0.1:8080/v1/chat/completions", true, "127.0.0.1", "8080", "127.0.0.1:8080",
		  "/v1/chat/completions" },
		{ "http://10.1.2.3/v1/models?x=1", true, "10.1.2.3", "80", "10.1.2.3", "/v1/models?x=1" },
		{ "HTTP://localhost:11434", true, "localhost", "11434", "localhost:11434", "/" },
		{ "http://[::1]:9000/api", true, "::1", "9000", "[::1]:9000", "/api" },
		{ "http://[::1]/", true, "::1", "80", "[::1]", "/" },
		{ "https://127.0.0.1/v1", false, NULL, NULL, NULL, NULL },
		{ "http://api.example.com/v1", false, NULL, NULL, NULL, NULL },    /* a name: libcurl resolves it */
		{ "http://user:pw@127.0.0.1/v1", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1:0/", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1:99999/", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1:80a/", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1/a b", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1/a\r\nX: y", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1/a#frag", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1/caf\xc3\xa9", false, NULL, NULL, NULL, NULL },
		{ "http://[::1/", false, NULL, NULL, NULL, NULL },
		{ "http://[fe80::1%25eth0]/", false, NULL, NULL, NULL, NULL },
		{ "http://127.0.0.1?q", false, NULL, NULL, NULL, NULL },
		{ "http:///v1", false, NULL, NULL, NULL, NULL },
		{ "http://", false, NULL, NULL, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct h1_url u;
		bool taken = h1_url_parse(cases[i].url, &u);
		ck_assert_msg(taken == cases[i].taken, "%s: %d", cases[i].url, taken);
		if (!taken)
			continue;
		ck_assert_str_eq(u.host, cases[i].host);
		ck_assert_str_eq(u.port, cases[i].port);
		ck_assert_str_eq(u.authority, cases[i].authority);
		ck_assert_str_eq(u.target, cases[i].target);
	}
}
END_TEST

/* --- framing and reuse -------------------------------------------------------------------------------------- */

START_TEST(length_and_reuse)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}", KEEP, false },
		{ "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", KEEP, false },
	};
	struct server s;
	server_start(&s, steps, 2);
	struct got g;
	struct h1_result res;
	ck_assert_int_eq(run(&s, "/v1/x?y=1", "{\"q\":1}", &g, &res, 5000), H1_OK);
	ck_assert_int_eq(res.status, 200);
	ck_assert(res.connected);
	ck_assert_int_ge(res.sent_at, 0);
	ck_assert_str_eq(g.body, "{\"a\":\"b c\"}");
	ck_assert_ptr_nonnull(strstr(g.head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
	ck_assert_ptr_nonnull(strstr(g.head, "\r\n\r\n"));          /* the empty line that ends the block */
	/* The request as sent. */
	pthread_mutex_lock(&s.lock);
	char head[8192];
	snprintf(head, sizeof head, "%s", s.last_head);
	pthread_mutex_unlock(&s.lock);
	char want[128];
	snprintf(want, sizeof want, "POST /v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", s.port);
	ck_assert_msg(strncmp(head, want, strlen(want)) == 0, "%s", head);
	ck_assert_ptr_nonnull(strstr(head, "\r\nContent-Type: application/json\r\n"));
	ck_assert_ptr_nonnull(strstr(head, "\r\nX-Empty:\r\n"));
	ck_assert_ptr_nonnull(strstr(head, "\r\nX-Extra: one\r\n"));
	ck_assert_ptr_nonnull(strstr(head, "\r\nContent-Length: 7\r\n"));
	ck_assert_ptr_nonnull(strstr(head, "\r\nUser-Agent: model-prism/"));
	ck_assert_ptr_null(strcasestr(head, "Expect"));
	/* The second exchange goes over the same connection. */
	ck_assert_int_eq(run(&s, "/v1/x", NULL, &g, &res, 5000), H1_OK);
	ck_assert_int_eq(res.status, 201);
	ck_assert_str_eq(g.body, "ok");
	ck_assert_int_eq(atomic_load(&s.conns), 1);
	pthread_mutex_lock(&s.lock);
	ck_assert_msg(strncmp(s.last_head, "GET /v1/x HTTP/1.1\r\n", 20) == 0, "%s", s.last_head);
	ck_assert_ptr_null(strstr(s.last_head, "Content-Length"));
	pthread_mutex_unlock(&s.lock);
	server_stop(&s);
}
END_TEST

START_TEST(chunked_trickle)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
		  "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n", KEEP, true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding:  Chunked \r\nContent-Length: 99\r\n\r\n"
		  "3\r\nabc\r\n0\r\n\r\n", KEEP, false },
	};
	struct server s;
	server_start(&s, steps, 2);
	struct got g;
	struct h1_result res;
	ck_assert_int_eq(run(&s, "/s", "{}", &g, &res, 10000), H1_OK);
	ck_assert_str_eq(g.body, "hello 0123456789");
	ck_assert_int_gt(g.ticks, 10);            /* a tick after every read */
	ck_assert_int_eq(run(&s, "/s", "{}", &g, &res, 5000), H1_OK);
	ck_assert_str_eq(g.body, "abc");
	ck_assert_int_eq(atomic_load(&s.conns), 1);
	server_stop(&s);
}
END_TEST

START_TEST(until_close_and_no_reuse)
{
	static const struct step steps[] = {
		/* No length: the body ends with the connection. */
		{ "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", CLOSE, false },
		/* Connection: close with a length: answered whole, then not reused. */
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\none", KEEP, false },
		/* HTTP/1.0 without keep-alive. */
		{ "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\ntwo", KEEP, false },
		/* Bytes after the answer. */
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nsixGARBAGE", KEEP, false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast", KEEP, false },
	};
	struct server s;
	server_start(&s, steps, 5);
	struct got g;
	struct h1_result res;
	static const char *const bodies[] = { "to the end", "one", "two", "six", "last" };
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(run(&s, "/", NULL, &g, &res, 5000), H1_OK);
		ck_assert_str_eq(g.body, bodies[i]);
		ck_assert_int_eq(atomic_load(&s.conns), i + 1);
	}
	server_stop(&s);
}
END_TEST

START_TEST(informational_and_empty)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KEEP, true },
		{ "HTTP/1.1 204 No Content\r\n\r\n", KEEP, false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", KEEP, false },
		{ "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", KEEP, false },
	};
	struct server s;
	server_start(&s, steps, 4);
	struct got g;
	struct h1_result res;
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_OK);
	ck_assert_int_eq(res.status, 200);
	ck_assert_int_eq(g.status_lines, 2);
	ck_assert_str_eq(g.body, "ok");
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_OK);
	ck_assert_int_eq(res.status, 204);
	ck_assert_uint_eq(g.nbody, 0);
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_OK);
	ck_assert_uint_eq(g.nbody, 0);
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_OK);   /* no reason phrase */
	ck_assert_str_eq(g.body, "x");
	ck_assert_int_eq(atomic_load(&s.conns), 1);
	server_stop(&s);
}
END_TEST

/* --- a pooled connection the server closed ------------------------------------------------------------------ */

START_TEST(stale_connection_retried_once)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", KEEP, false },
		{ NULL, NOANSWER, false },      /* closes the kept connection when the next request comes */
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb", KEEP, false },
	};
	struct server s;
	server_start(&s, steps, 3);
	struct got g;
	struct h1_result res;
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_OK);
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_OK);
	ck_assert_str_eq(g.body, "b");
	ck_assert_int_eq(atomic_load(&s.conns), 2);
	ck_assert_int_eq(atomic_load(&s.requests), 3);
	server_stop(&s);
}
END_TEST

START_TEST(fresh_connection_not_retried)
{
	static const struct step steps[] = { { NULL, NOANSWER, false } };
	struct server s;
	server_start(&s, steps, 1);
	struct got g;
	struct h1_result res;
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_RECV);
	ck_assert_int_eq(res.status, 0);
	ck_assert_int_eq(res.bytes_in, 0);
	ck_assert_msg(strstr(res.error, "without an answer"), "%s", res.error);
	ck_assert_int_eq(atomic_load(&s.conns), 1);
	ck_assert_int_eq(atomic_load(&s.requests), 1);
	server_stop(&s);
}
END_TEST

START_TEST(cut_short)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", CLOSE, false },
	};
	struct server s;
	server_start(&s, steps, 2);
	struct got g;
	struct h1_result res;
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_RECV);
	ck_assert_int_eq(res.status, 200);
	ck_assert_int_gt(res.bytes_in, 0);
	ck_assert_str_eq(g.body, "only part");
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 5000), H1_RECV);
	ck_assert_str_eq(g.body, "hel");
	server_stop(&s);
}
END_TEST

/* --- malformed answers ------------------------------------------------------------------------------------- */

START_TEST(malformed)
{
	static char long_line[H1_MAX_LINE + 100];
	memset(long_line, 0, sizeof long_line);
	strcpy(long_line, "HTTP/1.1 200 OK\r\nX-Long: ");
	memset(long_line + strlen(long_line), 'a', H1_MAX_LINE);
	strcat(long_line, "\r\n\r\n");
	static const struct step steps[] = {
		{ "ICY 200 OK\r\n\r\n", CLOSE, false },
		{ "HTTP/2 200\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 2000 OK\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 101 Switching Protocols\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", CLOSE, false },
		{ "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", CLOSE, false },
		{ long_line, CLOSE, false },
	};
	int n = (int)(sizeof steps / sizeof steps[0]);
	struct server s;
	server_start(&s, steps, n);
	for (int i = 0; i < n; i++) {
		struct got g;
		struct h1_result res;
		enum h1_err e = run(&s, "/", "{}", &g, &res, 5000);
		ck_assert_msg(e == H1_PROTOCOL, "step %d: %d (%s)", i, e, res.error);
		ck_assert_msg(strstr(res.error, "malformed answer"), "step %d: %s", i, res.error);
	}
	server_stop(&s);
}
END_TEST

/* --- timeouts, stops, failures ------------------------------------------------------------------------------- */

START_TEST(total_timeout_and_ticks)
{
	static const struct step steps[] = { { NULL, SILENT, false } };
	struct server s;
	server_start(&s, steps, 1);
	struct got g;
	struct h1_result res;
	int64_t t0 = clock_monotonic_ms();
	ck_assert_int_eq(run(&s, "/", "{}", &g, &res, 600), H1_TIMEOUT);
	int64_t took = clock_monotonic_ms() - t0;
	ck_assert_msg(took >= 550 && took < 1400, "took %lld ms", (long long)took);
	ck_assert_int_ge(g.ticks, 2);             /* every H1_TICK_MS while waiting */
	ck_assert(res.connected);
	server_stop(&s);
}
END_TEST

START_TEST(stopped_by_callback)
{
	static const struct step steps[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", KEEP, true },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KEEP, false },
	};
	struct server s;
	server_start(&s, steps, 2);
	struct got g;
	struct h1_result res;
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
	struct h1_url u;
	ck_assert(h1_url_parse(url, &u));
	memset(&g, 0, sizeof g);
	g.stop_body_after = 3;
	struct h1_request rq = { .url = &u, .method = "GET", .t0 = clock_monotonic_ms(), .connect_timeout_ms = 1000,
				 .total_timeout_ms = 5000 };
	struct h1_callbacks cb = { on_header, on_body, on_tick, &g };
	ck_assert_int_eq(h1_perform(&rq, &cb, &res), H1_ABORTED);
	ck_assert_uint_lt(g.nbody, 10);
	/* The connection was dropped with the rest of that answer unread: the next exchange opens another. */
	ck_assert_int_eq(run(&s, "/", NULL, &g, &res, 5000), H1_OK);
	ck_assert_str_eq(g.body, "ok");
	ck_assert_int_eq(atomic_load(&s.conns), 2);
	server_stop(&s);
}
END_TEST

START_TEST(connect_refused)
{
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", loopback_closed_port());
	struct h1_url u;
	ck_assert(h1_url_parse(url, &u));
	struct got g = { 0 };
	struct h1_result res;
	struct h1_request rq = { .url = &u, .method = "GET", .t0 = clock_monotonic_ms(), .connect_timeout_ms = 1000,
				 .total_timeout_ms = 5000 };
	struct h1_callbacks cb = { on_header, on_body, on_tick, &g };
	ck_assert_int_eq(h1_perform(&rq, &cb, &res), H1_CONNECT);
	ck_assert(!res.connected);
	ck_assert_msg(strstr(res.error, "Connection refused"), "%s", res.error);
}
END_TEST

static Suite *
h1_suite(void)
{
	Suite *s = suite_create("h1client");
	TCase *tc = tcase_create("h1client");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, url_table);
	tcase_add_test(tc, length_and_reuse);
	tcase_add_test(tc, chunked_trickle);
	tcase_add_test(tc, until_close_and_no_reuse);
	tcase_add_test(tc, informational_and_empty);
	tcase_add_test(tc, stale_connection_retried_once);
	tcase_add_test(tc, fresh_connection_not_retried);
	tcase_add_test(tc, cut_short);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, total_timeout_and_ticks);
	tcase_add_test(tc, stopped_by_callback);
	tcase_add_test(tc, connect_refused);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(h1_suite)
