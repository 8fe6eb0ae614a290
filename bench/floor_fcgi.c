/* floor_fcgi.c -- the floor of the gateway benchmarks: a FastCGI responder that does no gateway work.
 *
 *     floor_fcgi SOCKET-PATH [THREADS]
 *
 * It is built like prism.fcgi's daemon mode (libfcgi, a unix socket opened with FCGX_OpenSocket, THREADS
 * request threads each in FCGX_Accept_r, accept() serialised by a mutex, a connection closed at once once its
 * input was read) and answers every request with the
 * same fixed chat.completion JSON, of the size bench/fake_llm returns by default (16 tokens), after reading
 * and discarding the request body.  Behind the same lighttpd configuration, what it costs per request is
 * what the stack costs before any gateway work: bench/run-gateway.sh compares prism.fcgi against it.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* bench/fake_llm's default answer (model fake-model, 16 tokens, the default wrk prompt of bench/chat.lua),
 * byte for byte but for the id and the time. */
static const char answer[] =
	"{\"id\":\"chatcmpl-fake000000000001\",\"object\":\"chat.completion\",\"created\":1700000000,"
	"\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	"\"hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello \"},"
	"\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":23,\"completion_tokens\":16,\"total_tokens\":39}}";

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd;
static char header[256];
static int header_len;

static void *
serve(void *arg)
{
	(void)arg;
	FCGX_Request r;
	char sink[16384];
	if (FCGX_InitRequest(&r, listen_fd, 0) != 0)
		return NULL;
	for (;;) {
		/* As in prism.fcgi: only accept() is serialised, not a kept connection's next request. */
		int kept = r.ipcFd >= 0;
		if (!kept)
			pthread_mutex_lock(&accept_lock);
		int rc = FCGX_Accept_r(&r);
		if (!kept)
			pthread_mutex_unlock(&accept_lock);
		if (rc < 0) {
			if (rc == -EINTR)
				continue;
			fprintf(stderr, "floor_fcgi: accept failed (%d)\n", rc);
			break;
		}
		while (FCGX_GetStr(sink, sizeof sink, r.in) > 0)
			;
		FCGX_PutStr(header, header_len, r.out);
		FCGX_PutStr(answer, (int)sizeof answer - 1, r.out);
		/* As in prism.fcgi: the input was read to the end, so the unix socket is closed without libfcgi's
		 * wait for the web server to close first. */
		if (!r.keepConnection)
			FCGX_Detach(&r);
		FCGX_Finish_r(&r);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: floor_fcgi SOCKET-PATH [THREADS]\n");
		return 2;
	}
	long nthreads = argc == 3 ? strtol(argv[2], NULL, 10) : 8;
	if (nthreads < 1 || nthreads > 4096) {
		fprintf(stderr, "floor_fcgi: THREADS must be 1 to 4096\n");
		return 2;
	}
	header_len = snprintf(header, sizeof header,
			      "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			      sizeof answer - 1);
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0) {
		fprintf(stderr, "floor_fcgi: FCGX_Init failed\n");
		return 1;
	}
	unlink(argv[1]);   /* a stale socket of an earlier run */
	listen_fd = FCGX_OpenSocket(argv[1], 1024);
	if (listen_fd < 0) {
		fprintf(stderr, "floor_fcgi: cannot listen on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	chmod(argv[1], 0660);
	for (long i = 0; i < nthreads; i++) {
		pthread_t t;
		int rc = pthread_create(&t, NULL, serve, NULL);
		if (rc) {
			fprintf(stderr, "floor_fcgi: thread %ld: %s\n", i, strerror(rc));
			return 1;
		}
	}
	fprintf(stderr, "floor_fcgi: listening on %s with %ld threads\n", argv[1], nthreads);
	pause();   /* killed by the benchmark script */
	return 0;
}
