/* server.c -- see server.h. */
#include "config.h"
#include "core/server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "admin/audit.h"
#include "analytics/writer.h"
#include "core/front.h"
#include "core/request.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/xalloc.h"

extern char **environ;

static atomic_int stopping;
static int stop_fd = -1;            /* an eventfd, readable once the worker stops: wakes waiting threads */
static atomic_int in_flight;
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

/* The request threads of a worker process grow and shrink with the load, between POOL_SPARE_MIN and
 * `threads`: a thread that takes a connection while fewer than POOL_SPARE_MIN others wait for one starts
 * another.  Once a second the main thread looks at the fewest threads that waited at any moment of that
 * second: those beyond POOL_SPARE_MAX were of no use for a whole second, and as many threads end (their
 * stacks, allocator caches, upstream handles and store connections go back): the next ones to take the
 * accept lock or to finish a request.  The thread holding the lock waits for a connection a second at a
 * time, so it notices too.  A pool sized for 1,000 streams costs what its load needs, not 1,000 threads;
 * and a steady load, whose waiting threads come and go by the millisecond, keeps its threads instead of
 * ending and starting hundreds a second.
 *
 * No signal wakes a thread: one that lands while libfcgi reads a connection's first records fails that
 * request (libfcgi drops a unix-socket connection whose select() for the first bytes is interrupted).
 * Threads wait in poll() on their socket and on stop_fd instead, and the listen socket is non-blocking,
 * so that a connection another process took first leaves accept() with EAGAIN instead of waiting in it. */
#define POOL_SPARE_MIN 2
#define POOL_SPARE_MAX 16

struct worker_thread {
	pthread_t tid;
	bool active;                /* running (the slot is taken) */
	bool ended;                 /* returned, to be joined */
};

static struct {
	pthread_mutex_t lock;       /* guards everything below */
	struct worker_thread *slot; /* max of them */
	long max, total, idle;      /* idle: starting, or waiting for the accept lock or in accept */
	long low_idle;              /* the fewest idle since the last tick */
	long retire;                /* threads to end: the next ones to take the accept lock or finish a request */
	long peak;
	int listen_fd;
	bool unix_socket;           /* listen_fd is a unix socket */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct config *
server_load_config(const struct server_opts *opts, struct buf *errors)
{
	struct config *cfg = config_load(opts->config_path, opts->env, errors);
	if (!cfg)
		return NULL;
	for (int i = 0; i < opts->ncli; i++) {
		if (config_set(cfg, opts->cli_keys[i], opts->cli_values[i], errors)) {
			config_release(cfg);
			return NULL;
		}
	}
	if (config_validate(cfg, errors)) {
		config_release(cfg);
		return NULL;
	}
	return cfg;
}

static void
apply_logging(const struct config *cfg)
{
	log_set_level((enum log_level)cfg->log_level);
	if (log_open((enum log_target)cfg->log_target, cfg->log_file, "prism.fcgi"))
		log_error("cannot open log file %s: %s; keeping the previous log target", cfg->log_file,
			  strerror(errno));
}

/* SIGHUP: a new configuration for the keys that may change at run time; a bad file keeps the old one. */
static void
reload(const struct server_opts *opts)
{
	struct buf errs, notes;
	buf_init(&errs, 64 * 1024);
	buf_init(&notes, 64 * 1024);
	struct config *fresh = server_load_config(opts, &errs);
	if (!fresh) {
		log_error("reload failed, keeping the running configuration: %s", buf_cstr(&errs));
		goto out;
	}
	struct config *old = config_acquire();
	config_keep_static(fresh, old, &notes);
	if (notes.len)
		log_warn("reload: %s", buf_cstr(&notes));
	config_release(old);
	apply_logging(fresh);
	config_install(fresh);
	log_info("configuration reloaded%s%s", opts->config_path ? " from " : "",
		 opts->config_path ? opts->config_path : "");
out:
	buf_free(&errs);
	buf_free(&notes);
}

/* --- the store ------------------------------------------------------------------------------------------ */

/* Opens the configured store and applies migrations.  Called in each worker after fork. */
static enum prism_err
connect_store(char *err, size_t errlen)
{
	struct config *cfg = config_acquire();
	struct store *s = NULL;
	enum prism_err e = store_open(cfg, &s, err, errlen);
	config_release(cfg);
	if (e)
		return e;
	int applied = 0;
	e = s->ops->migrate(s, &applied, err, errlen);
	if (e) {
		store_close(s);
		return e;
	}
	if (applied)
		log_info("store: %d schema migration(s) applied", applied);
	store_set_current(s);
	return PRISM_OK;
}

/* Sleeps ms milliseconds, or less when the process starts stopping (checked every 100 ms). */
static void
nap(long ms)
{
	for (long slept = 0; slept < ms && !atomic_load(&stopping); slept += 100) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

#define MAINTENANCE_FIRST_MS 60000L
#define MAINTENANCE_EVERY_MS 3600000L

/* Retention: deletes what is older than its configured lifetime (idempotent, so every process may run it). */
static void
maintenance(void)
{
	struct store *s = store_current();
	if (!s)
		return;
	struct config *cfg = config_acquire();
	long deleted = 0;
	char err[256];
	if (audit_expire(s, cfg->audit_retention_ms, &deleted, err, sizeof err) != PRISM_OK)
		log_warn("audit retention: %s", err);
	else if (deleted)
		log_info("audit retention: %ld record(s) older than audit_retention deleted", deleted);
	config_release(cfg);
}

/* Until the process stops: every generation_poll, the store's configuration generation; a change (an admin
 * write on any host) invalidates this host's caches.  Hourly, the retention maintenance. */
static void
poll_generation(void)
{
	int64_t last = -1;
	int64_t next_maintenance = clock_monotonic_ms() + MAINTENANCE_FIRST_MS;
	while (!atomic_load(&stopping)) {
		if (clock_monotonic_ms() >= next_maintenance) {
			maintenance();
			next_maintenance = clock_monotonic_ms() + MAINTENANCE_EVERY_MS;
		}
		struct store *s = store_current();
		struct shm_segment *seg = shm_segment_current();
		char err[256];
		int64_t gen;
		if (s && seg && s->ops->generation(s, &gen, err, sizeof err) == PRISM_OK) {
			if (tenantcache_observe_generation(seg, gen) && last >= 0)
				log_info("configuration generation %lld: caches invalidated", (long long)gen);
			last = gen;
		}
		struct config *cfg = config_acquire();
		long wait_ms = cfg->generation_poll_ms;
		config_release(cfg);
		nap(wait_ms);
	}
}

/* MongoDB may be down when we start: keep trying with back-off while /health answers 503. */
static void *
store_connector(void *arg)
{
	(void)arg;
	long delay_ms = 500;
	for (int attempt = 1; !atomic_load(&stopping); attempt++) {
		char err[512];
		if (connect_store(err, sizeof err) == PRISM_OK) {
			if (attempt > 1)
				log_info("store: connected after %d attempts", attempt);
			poll_generation();
			return NULL;
		}
		if (attempt == 1 || attempt % 10 == 0)
			log_error("store unavailable (attempt %d, retrying): %s", attempt, err);
		nap(delay_ms);
		delay_ms = delay_ms * 2 > 30000 ? 30000 : delay_ms * 2;
	}
	return NULL;
}

/* At start, before any worker exists: an unusable SQLite file stops the start with a message naming it.
 * A MongoDB server that is down does not: workers keep retrying. */
static bool
check_store_at_start(void)
{
	struct config *cfg = config_acquire();
	bool mongo = *cfg->mongo_uri != '\0';
	config_release(cfg);
	if (mongo)
		return true;
	char err[512];
	if (connect_store(err, sizeof err)) {
		log_error("cannot use the store: %s", err);
		return false;
	}
	store_close(store_current());
	store_set_current(NULL);
	return true;
}

enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_STOP };

/* Waits until fd is readable or the worker stops; timeout_ms < 0: no limit.  A stop does not win over input
 * that is there: a request that arrived on a kept connection is served (on the listen socket libfcgi
 * accepts nothing more once FCGX_ShutdownPending() was called).  A poll that fails (ENOMEM) counts as a
 * timeout after a pause, so that no caller spins on it. */
static enum wait_result
wait_readable(int fd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
	int n;
	while ((n = poll(p, 2, timeout_ms)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (n <= 0)
		return WAIT_TIMEOUT;
	return p[0].revents ? WAIT_READY : WAIT_STOP;
}

static void *thread_main(void *arg);

/* glibc gives a process up to 8 malloc arenas per core, and a pool of request threads spreads over all
 * of them, each keeping its own free memory: one arena per core holds 1.3-1.5 MB less per worker at c=64
 * with the same CPU per request (bench/ANALYSIS.md).  An operator's own setting (MALLOC_ARENA_MAX,
 * GLIBC_TUNABLES) is kept. */
static void
limit_malloc_arenas(void)
{
	const char *t = getenv("GLIBC_TUNABLES"), *m = getenv("MALLOC_ARENA_MAX");
	if ((m && *m) || (t && strstr(t, "arena_max")))
		return;
	cpu_set_t cpus;
	long n = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus)
							     : sysconf(_SC_NPROCESSORS_ONLN);
	mallopt(M_ARENA_MAX, n < 2 ? 2 : n > 64 ? 64 : (int)n);
}

/* glibc keeps a cache of freed chunks in every thread (tcache: up to seven of each size up to 1 KB), and only
 * a tunable read when the program starts turns it off.  A worker's request threads follow the load up to
 * `threads`; at c=64 their caches held 2.5-3 MB of a 21 MB worker, for no CPU that could be measured
 * (bench/ANALYSIS.md).  So a server whose GLIBC_TUNABLES names no tcache setting executes itself once more,
 * with glibc.malloc.tcache_count=0 added: the same process, with its pid, arguments and descriptors.  Returns
 * only when it did not: 0 when the operator set tcache or the process runs with raised privileges, else an
 * errno (the caches then stay, and nothing else changes). */
static int
exec_without_tcache(char *const *argv)
{
	const char *t = getenv("GLIBC_TUNABLES");
	if (!argv || !argv[0] || (t && strstr(t, "glibc.malloc.tcache")))
		return 0;
	/* Started with raised privileges (setuid, file capabilities), glibc reads tunables only in part and
	 * may drop the variable: the second image could not tell it had been executed already. */
	if (getauxval(AT_SECURE))
		return 0;
	/* The file's own path, not /proc/self/exe: the process is named after it (ps, pgrep, killall).  A
	 * file replaced since the start reads "... (deleted)", which the exec refuses. */
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return n < 0 ? errno : ENOENT;
	self[n] = '\0';
	static const char setting[] = "glibc.malloc.tcache_count=0";
	char *saved = t ? xstrdup(t) : NULL;
	char *v = xmalloc((saved ? strlen(saved) + 1 : 0) + sizeof setting);
	sprintf(v, "%s%s%s", saved ? saved : "", saved && *saved ? ":" : "", setting);
	int err = ENOMEM;
	if (setenv("GLIBC_TUNABLES", v, 1) == 0) {
		store_mongo_before_exec();
		execv(self, argv);
		err = errno;
		if (saved)
			setenv("GLIBC_TUNABLES", saved, 1);
		else
			unsetenv("GLIBC_TUNABLES");
	}
	free(v);
	free(saved);
	return err;
}

/* Starts a thread in a free slot; pool.lock held, pool.total already counts it.  false: none started (the
 * count is taken back). */
static bool
pool_spawn_locked(void)
{
	for (long i = 0; i < pool.max; i++) {
		struct worker_thread *w = &pool.slot[i];
		if (w->active)
			continue;
		if (w->ended) {
			pthread_join(w->tid, NULL);
			w->ended = false;
		}
		int rc = pthread_create(&w->tid, NULL, thread_main, w);
		if (rc == 0) {
			w->active = true;
			pool.idle++;        /* a thread starting counts as waiting, or a busy pool would start more */
			if (pool.total > pool.peak)
				pool.peak = pool.total;
			return true;
		}
		log_error("cannot start a request thread: %s", strerror(rc));
		break;
	}
	pool.total--;
	return false;
}

/* pool.lock held: one waiting thread fewer. */
static void
pool_idle_dec_locked(void)
{
	pool.idle--;
	if (pool.idle < pool.low_idle)
		pool.low_idle = pool.idle;
}

/* pool.lock held: true when the calling thread is to end (it takes one of pool.retire). */
static bool
pool_retire_locked(void)
{
	if (pool.retire <= 0 || pool.total <= POOL_SPARE_MIN)
		return false;
	pool.retire--;
	return true;
}

/* Once a second (main thread): the threads that waited through the whole second beyond POOL_SPARE_MAX are
 * to end. */
static void
pool_tick(void)
{
	pthread_mutex_lock(&pool.lock);
	long low = pool.low_idle;
	pool.low_idle = pool.idle;
	pool.retire = low > POOL_SPARE_MAX ? low - POOL_SPARE_MAX : 0;
	pthread_mutex_unlock(&pool.lock);
}

/* Joins the threads that ended (their stacks are released only then). */
static void
pool_reap(void)
{
	pthread_mutex_lock(&pool.lock);
	for (long i = 0; i < pool.max; i++) {
		if (pool.slot[i].ended) {
			pthread_join(pool.slot[i].tid, NULL);
			pool.slot[i].ended = false;
		}
	}
	pthread_mutex_unlock(&pool.lock);
}

/* Has the web server's input of this request ended (its empty FCGI_STDIN record read, without an error)?  A
 * handler reads exactly CONTENT_LENGTH bytes, and the record that ends the input then waits unread: usually
 * in libfcgi's buffer already, where reading it costs no system call.  It is read here with the socket
 * non-blocking, so a peer that has not sent it yet cannot hold the thread; any data beyond the input's end
 * (a protocol error) leaves the input open and the close to libfcgi's careful way. */
static bool
input_ended(FCGX_Request *fr)
{
	if (FCGX_HasSeenEOF(fr->in) != EOF) {
		int fl = fcntl(fr->ipcFd, F_GETFL);
		if (fl < 0 || fcntl(fr->ipcFd, F_SETFL, fl | O_NONBLOCK) < 0)
			return false;
		char one;
		int n = FCGX_GetStr(&one, 1, fr->in);
		if (fcntl(fr->ipcFd, F_SETFL, fl) < 0)
			return false;
		if (n != 0)
			return false;
	}
	return FCGX_GetError(fr->in) == 0 && FCGX_HasSeenEOF(fr->in) == EOF;
}

static void *
thread_main(void *arg)
{
	struct worker_thread *w = arg;
	FCGX_Request fr;
	struct request *req = xcalloc(1, sizeof *req);
	FCGX_InitRequest(&fr, pool.listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	bool counted = true;        /* pool_spawn_locked counted this thread as waiting */
	while (!atomic_load(&stopping)) {
		/* The lock serialises accept() only.  A connection the web server keeps open (FCGI_KEEP_CONN,
		 * mod_proxy_fcgi enablereuse=on) belongs to this thread: waiting for its next request must not
		 * hold the lock, or every other thread would wait behind an idle connection. */
		bool kept = fr.ipcFd >= 0;
		if (kept && wait_readable(fr.ipcFd, -1) == WAIT_STOP)
			break;       /* the kept connection is closed below */
		if (!kept) {
			if (!counted) {
				pthread_mutex_lock(&pool.lock);
				pool.idle++;
				pthread_mutex_unlock(&pool.lock);
			}
			counted = false;
			pthread_mutex_lock(&accept_lock);
			bool leave;
			for (;;) {
				pthread_mutex_lock(&pool.lock);
				leave = atomic_load(&stopping) || pool_retire_locked();
				if (leave)
					pool_idle_dec_locked();
				pthread_mutex_unlock(&pool.lock);
				if (leave)
					break;
				/* A second at a time, so that a thread the pool no longer needs ends (a stop is seen
				 * at once).  Another process may take the connection first: accept() then fails with
				 * EAGAIN. */
				if (wait_readable(pool.listen_fd, 1000) == WAIT_READY)
					break;
			}
			if (leave) {
				pthread_mutex_unlock(&accept_lock);
				break;
			}
		}
		int rc = FCGX_Accept_r(&fr);
		if (!kept) {
			pthread_mutex_unlock(&accept_lock);
			pthread_mutex_lock(&pool.lock);
			pool_idle_dec_locked();
			bool grow = rc >= 0 && pool.idle < POOL_SPARE_MIN && pool.total < pool.max &&
				    !atomic_load(&stopping);
			if (grow) {
				pool.total++;
				pool_spawn_locked();
			}
			pthread_mutex_unlock(&pool.lock);
		}
		if (rc < 0) {
			/* EAGAIN: another process took the connection; a kept connection the web server closed
			 * comes here too (libfcgi then tries the non-blocking listen socket itself). */
			if (atomic_load(&stopping) || rc == -EINTR || rc == -EAGAIN)
				continue;
			log_error("FastCGI accept failed: %s", rc > -1000 ? strerror(-rc) : "protocol error");
			struct timespec ts = { 0, 50 * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		atomic_fetch_add(&in_flight, 1);
		front_handle(req, &fr, NULL);
		/* libfcgi closes a connection by shutting down its side and waiting until the web server closes
		 * too, so that unread input cannot turn into a TCP reset that loses the answer.  On a unix socket
		 * whose input was read to the end there is nothing to lose: close at once (a detached request is
		 * closed without that wait). */
		if (pool.unix_socket && !fr.keepConnection && fr.in && input_ended(&fr))
			FCGX_Detach(&fr);
		FCGX_Finish_r(&fr);
		/* The thread may wait long for its next request: its store connection serves others meanwhile. */
		store_release_thread(store_current());
		atomic_fetch_sub(&in_flight, 1);
		if (fr.ipcFd < 0) {
			pthread_mutex_lock(&pool.lock);
			bool retire = pool_retire_locked();
			pthread_mutex_unlock(&pool.lock);
			if (retire)
				break;
		}
	}
	FCGX_Free(&fr, 1);
	buf_free(&req->arena);
	free(req);
	pthread_mutex_lock(&pool.lock);
	pool.total--;
	w->active = false;
	w->ended = true;
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

/* One worker process: `threads` request threads; the main thread handles signals. */
static int
worker_process(int listen_fd, const struct server_opts *opts)
{
	struct config *cfg = config_acquire();
	long nthreads = cfg->threads;
	config_release(cfg);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	limit_malloc_arenas();
	signal(SIGPIPE, SIG_IGN);
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int fl = fcntl(listen_fd, F_GETFL);
	if (stop_fd < 0 || fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		log_error("worker: cannot prepare its wait for requests: %s", strerror(errno));
		return 1;
	}

	pthread_t connector;
	bool have_connector = pthread_create(&connector, NULL, store_connector, NULL) == 0;
	/* The analytics writer of this process: it spools while the connector has no store yet. */
	{
		char spool[1100], aerr[1300];
		cfg = config_acquire();
		snprintf(spool, sizeof spool, "%s/spool", cfg->data_dir);
		config_release(cfg);
		if (analytics_start(spool, aerr, sizeof aerr))
			log_error("%s; analytics are written by the request threads", aerr);
	}

	pool.slot = xcalloc((size_t)nthreads, sizeof *pool.slot);
	pool.max = nthreads;
	pool.listen_fd = listen_fd;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	pool.unix_socket = getsockname(listen_fd, (struct sockaddr *)&ss, &sslen) == 0 && ss.ss_family == AF_UNIX;
	pthread_mutex_lock(&pool.lock);
	for (long i = 0; i < POOL_SPARE_MIN && i < nthreads; i++) {
		pool.total++;
		if (!pool_spawn_locked())
			_exit(1);
	}
	pthread_mutex_unlock(&pool.lock);

	int64_t next_tick = clock_monotonic_ms() + 1000;
	for (;;) {
		/* Wakes up once a second to size the pool and join the threads that ended. */
		struct timespec tick = { 1, 0 };
		int sig = sigtimedwait(&set, NULL, &tick);
		if (clock_monotonic_ms() >= next_tick) {
			pool_tick();
			next_tick = clock_monotonic_ms() + 1000;
		}
		pool_reap();
		if (sig == SIGHUP) {
			reload(opts);
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
	}

	atomic_store(&stopping, 1);
	FCGX_ShutdownPending();
	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof one) != sizeof one)
		log_error("stopping: cannot wake the waiting threads: %s", strerror(errno));
	cfg = config_acquire();
	int64_t deadline = clock_monotonic_ms() + cfg->shutdown_grace_ms;
	config_release(cfg);
	int busy = atomic_load(&in_flight);
	if (busy)
		log_info("stopping: waiting for %d in-flight request(s)", busy);
	for (;;) {
		/* A thread marks itself inactive under the lock as its last step: one still active is alive. */
		pthread_mutex_lock(&pool.lock);
		long running = 0;
		for (long i = 0; i < pool.max; i++)
			running += pool.slot[i].active;
		pthread_mutex_unlock(&pool.lock);
		if (running == 0)
			break;
		if (clock_monotonic_ms() > deadline) {
			/* A thread can also be inside libfcgi reading a connection whose request never came
			 * whole: it counts as running, not as a request. */
			log_warn("stopping: %d request(s) still running after the grace period (%ld thread(s) "
				 "busy); exiting", atomic_load(&in_flight), running);
			analytics_stop();    /* what is queued goes to the store or the spool */
			_exit(0);
		}
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	pool_reap();
	log_debug("worker %ld stopped; at most %ld request threads were running", (long)getpid(), pool.peak);
	free(pool.slot);
	analytics_stop();        /* flushes the queue to the store, or to the spool when it is down */
	if (have_connector)
		pthread_join(connector, NULL);
	store_close(store_current());
	store_set_current(NULL);
	log_debug("worker %ld stopped", (long)getpid());
	return 0;
}

/* --- the daemon's listening socket ------------------------------------------------------------------- */

static int
open_listen(const struct config *cfg, char *unix_path, size_t pathlen)
{
	unix_path[0] = '\0';
	const char *spec = cfg->listen;
	int fd = -1;
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		struct sockaddr_un sun;
		if (strlen(path) >= sizeof sun.sun_path) {
			log_error("listen: socket path %s is too long", path);
			return -1;
		}
		/* A socket file that still answers belongs to a running instance; one that does not is stale. */
		struct stat st;
		if (stat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				log_error("listen: %s exists and is not a socket", path);
				return -1;
			}
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			memset(&sun, 0, sizeof sun);
			sun.sun_family = AF_UNIX;
			memcpy(sun.sun_path, path, strlen(path) + 1);
			int in_use = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
			if (probe >= 0)
				close(probe);
			if (in_use) {
				log_error("listen: %s is in use by another running process", path);
				return -1;
			}
			unlink(path);
		}
		mode_t old = umask((mode_t)(0777 & ~cfg->socket_mode));
		fd = FCGX_OpenSocket(path, 1024);
		umask(old);
		if (fd < 0) {
			log_error("listen: cannot create unix socket %s: %s", path, strerror(errno));
			return -1;
		}
		chmod(path, (mode_t)cfg->socket_mode);
		snprintf(unix_path, pathlen, "%s", path);
	} else {
		const char *hostport = spec + 4;
		if (strncmp(hostport, "127.", 4) != 0 && strncmp(hostport, "localhost:", 10) != 0 &&
		    strncmp(hostport, "[::1]", 5) != 0)
			log_warn("listen: %s is not a loopback address; FastCGI has no authentication, so only the "
				 "web server must be able to reach it", hostport);
		fd = FCGX_OpenSocket(hostport, 1024);
		if (fd < 0) {
			log_error("listen: cannot listen on %s: %s", hostport, strerror(errno));
			return -1;
		}
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

static void
write_pid_file(const char *path)
{
	if (!*path)
		return;
	FILE *f = fopen(path, "we");
	if (!f) {
		log_warn("cannot write pid file %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
}

/* --- the supervisor ------------------------------------------------------------------------------------ */

struct child {
	pid_t pid;
	int64_t started_ms;
	int64_t respawn_at;      /* 0 = running or not due */
	int quick_deaths;        /* consecutive deaths soon after start: back-off */
};

static pid_t
spawn_worker(int listen_fd, const struct server_opts *opts, pid_t parent)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* Child: if the supervisor is killed, stop (gracefully) too rather than linger as an orphan. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	/* The supervisor's signal mask stays: a SIGHUP or SIGTERM arriving before the worker waits for
	 * signals stays pending instead of killing it. */
	_exit(worker_process(listen_fd, opts));
}

static void
signal_children(struct child *kids, long n, int sig)
{
	for (long i = 0; i < n; i++)
		if (kids[i].pid > 0)
			kill(kids[i].pid, sig);
}

static long
running_children(const struct child *kids, long n)
{
	long c = 0;
	for (long i = 0; i < n; i++)
		c += kids[i].pid > 0;
	return c;
}

static void
reap(struct child *kids, long n, bool stopping_now)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (long i = 0; i < n; i++) {
			if (kids[i].pid != pid)
				continue;
			kids[i].pid = 0;
			if (stopping_now)
				break;
			int64_t now = clock_monotonic_ms();
			if (WIFSIGNALED(status))
				log_error("worker %ld killed by signal %d; respawning", (long)pid, WTERMSIG(status));
			else
				log_error("worker %ld exited with status %d; respawning", (long)pid, WEXITSTATUS(status));
			kids[i].quick_deaths = now - kids[i].started_ms < 2000 ? kids[i].quick_deaths + 1 : 0;
			int shift = kids[i].quick_deaths < 8 ? kids[i].quick_deaths : 8;
			int64_t delay = kids[i].quick_deaths ? (100LL << shift) : 0;
			if (delay > 30000)
				delay = 30000;
			kids[i].respawn_at = now + delay;
			break;
		}
	}
}

/* The number of live workers, for the processes gauge of /metrics. */
static void
publish_workers(long n)
{
	struct shm_segment *seg = shm_segment_current();
	if (seg)
		atomic_store(&seg->map->hdr.workers, (unsigned)n);
}

static int
supervise(int listen_fd, const struct server_opts *opts, const char *unix_path)
{
	struct config *cfg = config_acquire();
	long n = cfg->processes;
	char pid_file[1100];
	snprintf(pid_file, sizeof pid_file, "%s", cfg->pid_file);
	config_release(cfg);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	write_pid_file(pid_file);

	pid_t self = getpid();
	struct child *kids = xcalloc((size_t)n, sizeof *kids);
	for (long i = 0; i < n; i++) {
		kids[i].started_ms = clock_monotonic_ms();
		kids[i].pid = spawn_worker(listen_fd, opts, self);
	}
	for (;;) {
		struct timespec wait = { 0, 200 * 1000000L };
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &wait);
		if (sig == SIGCHLD) {
			reap(kids, n, false);
		} else if (sig == SIGHUP) {
			reload(opts);
			signal_children(kids, n, SIGHUP);
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
		int64_t now = clock_monotonic_ms();
		for (long i = 0; i < n; i++) {
			if (kids[i].pid == 0 && kids[i].respawn_at && kids[i].respawn_at <= now) {
				kids[i].respawn_at = 0;
				kids[i].started_ms = now;
				kids[i].pid = spawn_worker(listen_fd, opts, self);
				if (kids[i].pid < 0) {
					log_error("fork failed: %s", strerror(errno));
					kids[i].pid = 0;
					kids[i].respawn_at = now + 1000;
				}
			}
		}
		publish_workers(running_children(kids, n));
	}

	log_info("stopping: %ld worker(s) finishing in-flight requests", running_children(kids, n));
	signal_children(kids, n, SIGTERM);
	cfg = config_acquire();
	int64_t deadline = clock_monotonic_ms() + cfg->shutdown_grace_ms + 2000;
	config_release(cfg);
	while (running_children(kids, n) > 0) {
		struct timespec wait = { 0, 100 * 1000000L };
		siginfo_t info;
		sigtimedwait(&set, &info, &wait);
		reap(kids, n, true);
		if (clock_monotonic_ms() > deadline) {
			log_warn("stopping: killing %ld worker(s) that did not exit", running_children(kids, n));
			signal_children(kids, n, SIGKILL);
			deadline = clock_monotonic_ms() + 5000;
		}
	}
	publish_workers(0);
	free(kids);
	close(listen_fd);
	if (*unix_path)
		unlink(unix_path);
	if (*pid_file)
		unlink(pid_file);
	log_info("stopped");
	return 0;
}

/* The instance's shared-memory segment: created by the first process (the daemon's supervisor, before it
 * forks), attached by the others.  A segment of another layout version stops the start. */
static bool
open_segment(const struct config *cfg, const struct server_opts *opts, char *name, size_t namelen)
{
	char err[512];
	if (*cfg->shm_name) {
		snprintf(name, namelen, "%s", cfg->shm_name);
	} else {
		char key[2200];
		if (!shm_instance_key(opts->config_path, cfg->listen, key, sizeof key)) {
			log_error("cannot derive the shared-memory name");
			return false;
		}
		if (shm_segment_default_name(key, name, namelen)) {
			log_error("cannot derive the shared-memory name");
			return false;
		}
	}
	struct shm_segment *seg = NULL;
	if (shm_segment_open(name, (size_t)cfg->shm_size, &seg, err, sizeof err)) {
		log_error("shared memory: %s", err);
		return false;
	}
	shm_segment_set_current(seg);
	return true;
}

int
server_run(const struct server_opts *opts)
{
	struct config *cfg = config_acquire();
	/* A CGI request lives for one process: it keeps no shared state (no segment, no limits). */
	bool cgi = !*cfg->listen && FCGX_IsCGI();
	int xerr = cgi ? 0 : exec_without_tcache(opts->argv);
	apply_logging(cfg);
	if (xerr)
		log_info("cannot execute the program again to turn off glibc's per-thread malloc caches: %s",
			 strerror(xerr));
	if (FCGX_Init() != 0) {
		log_error("cannot initialise libfcgi");
		config_release(cfg);
		return 1;
	}
	int rc;
	char shm_name[64];
	if (!check_store_at_start()) {
		config_release(cfg);
		return 1;
	}
	if (!cgi && !open_segment(cfg, opts, shm_name, sizeof shm_name)) {
		config_release(cfg);
		return 1;
	}
	if (*cfg->listen) {
		char unix_path[PRISM_MAX_URI];
		int fd = open_listen(cfg, unix_path, sizeof unix_path);
		if (fd < 0) {
			config_release(cfg);
			return 1;
		}
		log_info("prism.fcgi %s listening on %s (role %s, %ld process(es) x %ld thread(s))", PACKAGE_VERSION,
			 cfg->listen, config_role_name(cfg->role), cfg->processes, cfg->threads);
		config_release(cfg);
		rc = supervise(fd, opts, unix_path);
		/* The daemon owns its segment: the next start begins with fresh state (and a new layout after
		 * an upgrade).  Web-server-spawned processes share theirs with siblings and leave it. */
		char err[256];
		shm_segment_unlink(shm_name, err, sizeof err);
	} else if (cgi) {
		config_release(cfg);
		char err[512];
		if (connect_store(err, sizeof err))
			log_error("store unavailable: %s", err);
		struct request *req = xcalloc(1, sizeof *req);
		front_handle(req, NULL, environ);
		buf_free(&req->arena);
		free(req);
		store_close(store_current());
		store_set_current(NULL);
		rc = 0;
	} else {
		log_info("prism.fcgi %s serving the socket on fd 0 (role %s, %ld thread(s))", PACKAGE_VERSION,
			 config_role_name(cfg->role), cfg->threads);
		config_release(cfg);
		rc = worker_process(0, opts);
	}
	return rc;
}
