/* shm_bench.c -- the shared-memory hot path per request, in nanoseconds (not a test; `make bench/shm_bench`).
 *
 *   shm_bench [iterations]        (default 1000000)
 *
 * One operation = one tenant/API-key cache lookup (tenantcache_get, and tenantcache_put on a miss, as after a
 * store read) + one rate-limit check (ratelimit_hit, cost 1) + one counter increment + one histogram
 * observation, timed one by one with CLOCK_MONOTONIC (the cost of the two clock reads is printed and not
 * subtracted).  Scenarios:
 *   uncontended/1 key     one thread, one key
 *   uncontended/10k keys  one thread, 10000 keys in turn (cache misses, as with many clients)
 *   contended/1 key       2 processes x 8 threads, all on one key (one stripe lock, worst case)
 *   contended/own keys    2 processes x 8 threads, a key per thread (stripes spread the lock)
 * The contended runs share the iterations between the 16 threads.  Prints median, p99, max and the
 * aggregate rate.  The 10k-key run has more keys than the tenant cache has slots (SHM_TC_SLOTS), so part
 * of its lookups miss and put.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "util/parse.h"

#define PROCS   2
#define THREADS 8
#define NKEYS   10000

static struct shm_segment *seg;
static int label_ok, label_route;

struct run {
	int64_t *samples;       /* in shared memory for the contended runs */
	long n;
	int mode;               /* 0: one key, 1: many keys, 2: own key */
	int thread;
	atomic_int *go;
};

static inline int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
worker(void *p)
{
	struct run *r = p;
	char keys[NKEYS][24];
	unsigned char hashes[NKEYS][SHM_TC_HASH_LEN];
	int nkeys = r->mode == 1 ? NKEYS : 1;
	for (int i = 0; i < nkeys; i++) {
		if (r->mode == 2)
			snprintf(keys[i], sizeof keys[i], "tenant:rpm:t%d", r->thread);
		else
			snprintf(keys[i], sizeof keys[i], "tenant:rpm:k%d", i);
		memset(hashes[i], 0, SHM_TC_HASH_LEN);   /* stands in for SHA-256 of the API key */
		memcpy(hashes[i], keys[i], strlen(keys[i]));
	}
	struct tenant_snapshot snap = { .tenant_id = "65a1b2c3d4e5f60718293a4b", .slug = "bench",
					.key_id = "65a1b2c3d4e5f60718293a4c", .tenant_enabled = true,
					.key_enabled = true, .rpm_limit = 1000000000, .tpm_limit = 1000000000 };
	while (r->go && !atomic_load(r->go))
		;
	for (long i = 0; i < r->n; i++) {
		struct ratelimit_result res;
		int64_t t0 = now_ns();
		struct tenant_snapshot ts;
		if (tenantcache_get(seg, hashes[i % nkeys], t0 / 1000000, TENANTCACHE_TTL_DEFAULT_MS, &ts) !=
		    TENANTCACHE_HIT) {
			snap.epoch = ts.epoch;
			tenantcache_put(seg, hashes[i % nkeys], &snap, t0 / 1000000);
		}
		ratelimit_hit(seg, keys[i % nkeys], 1000000000L, 60, 1, t0 / 1000000, &res);
		metrics_inc(seg, METRIC_REQUESTS, res.allowed ? label_ok : label_ok + 1, 1);
		metrics_observe(seg, METRIC_REQUEST_DURATION, label_route, (t0 / 1000) % 2000000);
		r->samples[i] = now_ns() - t0;
	}
	return NULL;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void
report(const char *name, int64_t *s, long n, int64_t wall_ns)
{
	qsort(s, (size_t)n, sizeof *s, cmp64);
	printf("%-24s %10ld %10lld %10lld %12lld %12.2f\n", name, n, (long long)s[n / 2], (long long)s[n * 99 / 100],
	       (long long)s[n - 1], (double)n / ((double)wall_ns / 1e9) / 1e6);
}

static void
uncontended(const char *name, int mode, long n)
{
	struct run r = { malloc(sizeof(int64_t) * (size_t)n), n, mode, 0, NULL };
	int64_t t0 = now_ns();
	worker(&r);
	report(name, r.samples, n, now_ns() - t0);
	free(r.samples);
}

static void
contended(const char *name, int mode, long n)
{
	long per = n / (PROCS * THREADS);
	size_t bytes = sizeof(int64_t) * (size_t)per * PROCS * THREADS + 64;
	int64_t *all = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	atomic_int *go = (atomic_int *)(all + (size_t)per * PROCS * THREADS);
	pid_t pid[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		if (pid[p] < 0) {
			perror("fork");
			exit(1);
		}
		if (pid[p] == 0) {
			pthread_t th[THREADS];
			struct run r[THREADS];
			for (int t = 0; t < THREADS; t++) {
				int idx = p * THREADS + t;
				r[t] = (struct run){ all + (size_t)idx * per, per, mode, idx, go };
				pthread_create(&th[t], NULL, worker, &r[t]);
			}
			for (int t = 0; t < THREADS; t++)
				pthread_join(th[t], NULL);
			_exit(0);
		}
	}
	usleep(100000);
	int64_t t0 = now_ns();
	atomic_store(go, 1);
	for (int p = 0; p < PROCS; p++)
		waitpid(pid[p], NULL, 0);
	report(name, all, per * PROCS * THREADS, now_ns() - t0);
	munmap(all, bytes);
}

int
main(int argc, char **argv)
{
	long n = 1000000;
	if (argc > 1 && parse_long(argv[1], 1000, 100000000, &n)) {
		fprintf(stderr, "usage: shm_bench [iterations >= 1000]\n");
		return 2;
	}
	char name[SHM_NAME_MAX], err[512];
	snprintf(name, sizeof name, "/prism-bench-%d", (int)getpid());
	if (shm_segment_open(name, 0, &seg, err, sizeof err)) {
		fprintf(stderr, "shm_bench: %s\n", err);
		return 1;
	}
	label_ok = metrics_label_id(seg, "route=\"/v1/chat/completions\",status=\"200\"");
	metrics_label_id(seg, "route=\"/v1/chat/completions\",status=\"429\"");
	label_route = metrics_label_id(seg, "route=\"/v1/chat/completions\"");

	int64_t *clk = malloc(sizeof(int64_t) * 100000);
	for (int i = 0; i < 100000; i++) {
		int64_t t0 = now_ns();
		clk[i] = now_ns() - t0;
	}
	qsort(clk, 100000, sizeof *clk, cmp64);
	printf("one op = tenantcache_get (+ put on a miss) + ratelimit_hit + metrics_inc + metrics_observe;\n"
	       "times in ns (clock read pair: median %lld)\n", (long long)clk[50000]);
	free(clk);
	printf("%-24s %10s %10s %10s %12s %12s\n", "scenario", "ops", "median", "p99", "max", "Mops/s");
	uncontended("uncontended/1 key", 0, n);
	uncontended("uncontended/10k keys", 1, n);
	contended("contended/1 key 2x8", 0, n);
	contended("contended/own keys 2x8", 2, n);
	printf("(%ld CPUs online; the contended runs share the iterations between %d threads)\n",
	       sysconf(_SC_NPROCESSORS_ONLN), PROCS * THREADS);
	struct tenantcache_stats st;
	tenantcache_stats(seg, &st);
	printf("tenant cache: %ld hits, %ld misses, %ld of %ld slots filled, %ld evictions\n", st.hits, st.misses,
	       st.fill, st.capacity, st.evictions);
	shm_segment_close(seg);
	shm_segment_unlink(name, NULL, 0);
	return 0;
}
