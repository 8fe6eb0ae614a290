/* check_shm.c -- the shared-memory segment, rate limiter, circuit breakers and metrics.
 *
 * Every test uses its own segment (/prism-test-<pid>-<n>) and unlinks it, also when it fails (the
 * teardown runs in the test's process).  Clocks are injected (now_ms), so no test sleeps.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#define SHM_FIXTURE_PREFIX "prism-test-"
#include "shm_fixture.h"
#include "shm/breaker.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/segment.h"
#include "util/clock.h"
#include "util/netaddr.h"


static struct ratelimit_result
hit(struct shm_segment *seg, const char *key, long limit, long window_s, long cost, int64_t now_ms)
{
	struct ratelimit_result r;
	ck_assert_int_eq(ratelimit_hit(seg, key, limit, window_s, cost, now_ms, &r), PRISM_OK);
	return r;
}

/* --- segment ----------------------------------------------------------------------------------------- */

START_TEST(default_name)
{
	char a[SHM_NAME_MAX], b[SHM_NAME_MAX], c[SHM_NAME_MAX];
	ck_assert_int_eq(shm_segment_default_name("/etc/model-prism/prism.conf unix:/run/a.sock", a, sizeof a), 0);
	ck_assert_int_eq(shm_segment_default_name("/etc/model-prism/prism.conf unix:/run/a.sock", b, sizeof b), 0);
	ck_assert_int_eq(shm_segment_default_name("/etc/model-prism/prism.conf unix:/run/b.sock", c, sizeof c), 0);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	ck_assert_uint_eq(strlen(a), strlen("/model-prism-") + 12);
	ck_assert_int_eq(strncmp(a, "/model-prism-", 13), 0);
	/* SHA-256("abc") starts with ba7816bf8f01. */
	ck_assert_int_eq(shm_segment_default_name("abc", a, sizeof a), 0);
	ck_assert_str_eq(a, "/model-prism-ba7816bf8f01");
	ck_assert_int_eq(shm_segment_default_name("abc", a, 10), PRISM_E_TOO_LARGE);
}
END_TEST

START_TEST(create_attach_size)
{
	struct shm_segment *s1 = seg_new(0), *s2 = NULL, *s3 = NULL;
	ck_assert(s1->created);
	uint32_t slots = 0;
	ck_assert_uint_eq(s1->size, shm_segment_size_for(0, &slots));
	ck_assert_uint_eq(slots, SHM_RL_DEFAULT_SLOTS);
	ck_assert_uint_eq(s1->map->hdr.rl_slots, slots);
	ck_assert_uint_eq(s1->map->hdr.layout_version, SHM_LAYOUT_VERSION);
	/* A second opener attaches whatever size it asks for, and sees the same memory. */
	ck_assert_int_eq(shm_segment_open(segname, 64 << 20, &s2, err, sizeof err), PRISM_OK);
	ck_assert(!s2->created);
	ck_assert_uint_eq(s2->size, s1->size);
	ck_assert_ptr_ne(s1->map, s2->map);
	hit(s1, "tenant:rpm:abc", 5, 60, 1, 1000);
	struct ratelimit_result r = hit(s2, "tenant:rpm:abc", 5, 60, 1, 1000);
	ck_assert_int_eq(r.used, 2);
	ck_assert_uint_eq(s1->map->hdr.hash_key[0], s2->map->hdr.hash_key[0]);
	/* A small hint gives the minimum table; a bad name is refused with a message. */
	ck_assert_uint_eq(shm_segment_size_for(1, &slots), sizeof(struct shm_layout) + SHM_RL_MIN_SLOTS *
										      sizeof(struct shm_rl_slot));
	ck_assert_int_eq(shm_segment_open("no-slash", 0, &s3, err, sizeof err), PRISM_E_CONFIG);
	ck_assert_ptr_null(s3);
	ck_assert_ptr_nonnull(strstr(err, "no-slash"));
	ck_assert_int_eq(shm_segment_open("/a/b", 0, &s3, err, sizeof err), PRISM_E_CONFIG);
	shm_segment_close(s2);
	shm_segment_close(s1);
	shm_segment_close(NULL);
	ck_assert_int_eq(shm_segment_unlink(segname, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(shm_segment_unlink(segname, err, sizeof err), PRISM_OK);   /* already gone: fine */
}
END_TEST

START_TEST(layout_mismatch_refused)
{
	struct shm_segment *s1 = seg_new(0), *s2 = NULL;
	s1->map->hdr.layout_version = 999;
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_E_CONFIG);
	ck_assert_ptr_null(s2);
	ck_assert_ptr_nonnull(strstr(err, segname));
	ck_assert_ptr_nonnull(strstr(err, "layout version 999"));
	ck_assert_ptr_nonnull(strstr(err, "prismctl shm --remove"));
	s1->map->hdr.layout_version = SHM_LAYOUT_VERSION;
	s1->map->hdr.magic = 42;
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "bad magic"));
	s1->map->hdr.magic = SHM_MAGIC;
	s1->map->hdr.size += 64;
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_E_CONFIG);
	s1->map->hdr.size -= 64;
	/* A creator that never finished: the attacher gives up after SHM_READY_WAIT_MS, it does not hang. */
	atomic_store(&s1->map->hdr.ready, 0);
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "never initialised"));
	atomic_store(&s1->map->hdr.ready, 1);
	/* After a reset (unlink) a new segment is created fresh. */
	shm_segment_close(s1);
	ck_assert_int_eq(shm_segment_unlink(segname, err, sizeof err), PRISM_OK);
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_OK);
	ck_assert(s2->created);
	shm_segment_close(s2);
}
END_TEST

/* --- many processes ---------------------------------------------------------------------------------- */

#define HAMMER_PROCS   4
#define HAMMER_THREADS 2
#define HAMMER_HITS    5000
#define HAMMER_LIMIT   7919

struct hammer_arg {
	struct shm_segment *seg;
	int label_ok, label_limited;
	long allowed;
};

static void *
hammer_thread(void *p)
{
	struct hammer_arg *a = p;
	for (int i = 0; i < HAMMER_HITS; i++) {
		struct ratelimit_result r;
		if (ratelimit_hit(a->seg, "tenant:rpm:hammer", HAMMER_LIMIT, 60, 1, 5000 + i % 50, &r) != PRISM_OK)
			return NULL;
		if (r.allowed)
			a->allowed++;
		metrics_inc(a->seg, METRIC_REQUESTS, r.allowed ? a->label_ok : a->label_limited, 1);
		metrics_observe(a->seg, METRIC_REQUEST_DURATION, a->label_ok, i % 3000000);
	}
	return NULL;
}

START_TEST(hammer_exact_totals)
{
	struct shm_segment *seg = seg_new(0);
	long *allowed = mmap(NULL, sizeof(long) * HAMMER_PROCS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(allowed, MAP_FAILED);
	pid_t pid[HAMMER_PROCS];
	for (int p = 0; p < HAMMER_PROCS; p++) {
		pid[p] = fork();
		ck_assert_int_ge(pid[p], 0);
		if (pid[p] == 0) {
			/* Each worker attaches on its own, as a pool process would. */
			struct shm_segment *mine = NULL;
			if (shm_segment_open(segname, 0, &mine, err, sizeof err) != PRISM_OK)
				_exit(2);
			struct hammer_arg a[HAMMER_THREADS];
			pthread_t th[HAMMER_THREADS];
			for (int t = 0; t < HAMMER_THREADS; t++) {
				a[t] = (struct hammer_arg){ mine, metrics_label_id(mine, "route=\"/v1/x\",status=\"200\""),
							    metrics_label_id(mine, "route=\"/v1/x\",status=\"429\""), 0 };
				pthread_create(&th[t], NULL, hammer_thread, &a[t]);
			}
			for (int t = 0; t < HAMMER_THREADS; t++) {
				pthread_join(th[t], NULL);
				allowed[p] += a[t].allowed;
			}
			shm_segment_close(mine);
			_exit(0);
		}
	}
	for (int p = 0; p < HAMMER_PROCS; p++) {
		int st;
		ck_assert_int_eq(waitpid(pid[p], &st, 0), pid[p]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d failed", p);
	}
	long total = 0;
	for (int p = 0; p < HAMMER_PROCS; p++)
		total += allowed[p];
	const long hits = (long)HAMMER_PROCS * HAMMER_THREADS * HAMMER_HITS;
	ck_assert_int_eq(total, HAMMER_LIMIT);
	int ok = metrics_label_id(seg, "route=\"/v1/x\",status=\"200\"");
	int limited = metrics_label_id(seg, "route=\"/v1/x\",status=\"429\"");
	ck_assert_int_ne(ok, limited);
	ck_assert_int_eq(metrics_counter_value(seg, METRIC_REQUESTS, ok), HAMMER_LIMIT);
	ck_assert_int_eq(metrics_counter_value(seg, METRIC_REQUESTS, limited), hits - HAMMER_LIMIT);
	long hist = 0;
	for (int b = 0; b < SHM_HIST_BUCKETS; b++)
		hist += atomic_load(&seg->map->mx.hist_bucket[METRIC_REQUEST_DURATION][ok][b]);
	ck_assert_int_eq(hist, hits);
	struct ratelimit_result r = hit(seg, "tenant:rpm:hammer", HAMMER_LIMIT, 60, 1, 6000);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.used, HAMMER_LIMIT);
	munmap(allowed, sizeof(long) * HAMMER_PROCS);
	shm_segment_close(seg);
}
END_TEST

static struct shm_rl_slot *
find_slot(struct shm_segment *seg, const char *key)
{
	for (uint32_t i = 0; i < seg->map->hdr.rl_slots; i++)
		if (seg->rl_slot[i].hash >= 2 && strcmp(seg->rl_slot[i].key, key) == 0)
			return &seg->rl_slot[i];
	return NULL;
}

/* A child takes a lock (optionally leaving the slot of `key` half-written), signals, and waits for
 * SIGKILL; returns when it is dead. */
static void
kill_holder(struct shm_segment *seg, pthread_mutex_t *m, const char *key)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (pthread_mutex_lock(m) != 0)
			_exit(3);
		if (key)
			find_slot(seg, key)->seq++;      /* the update in progress */
		if (write(fds[1], "x", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	char c;
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

START_TEST(killed_holder_recovered)
{
	struct shm_segment *seg = seg_new(0);
	const char *k1 = "ip:login:192.0.2.1", *k2 = "ip:login:192.0.2.2";
	for (int i = 0; i < 3; i++) {
		hit(seg, k1, 20, 60, 1, 1000);
		hit(seg, k2, 20, 60, 1, 1000);
	}
	/* Killed between updates: the count survives. */
	kill_holder(seg, ratelimit_stripe_lock(seg, ratelimit_stripe_of(seg, k1)), NULL);
	struct ratelimit_result r = hit(seg, k1, 20, 60, 1, 1000);
	ck_assert_int_eq(r.used, 4);
	ck_assert_int_eq(atomic_load(&seg->map->hdr.lock_recoveries), 1);
	/* Killed in the middle of updating k2's slot: that key restarts, the table goes on working. */
	kill_holder(seg, ratelimit_stripe_lock(seg, ratelimit_stripe_of(seg, k2)), k2);
	r = hit(seg, k2, 20, 60, 1, 1000);
	ck_assert_int_eq(r.used, 1);
	ck_assert(r.tracked);
	ck_assert_int_eq(atomic_load(&seg->map->rl.repaired), 1);
	ck_assert_int_eq(atomic_load(&seg->map->hdr.lock_recoveries), 2);
	r = hit(seg, k2, 20, 60, 1, 1000);
	ck_assert_int_eq(r.used, 2);
	r = hit(seg, k1, 20, 60, 1, 1000);
	ck_assert_int_eq(r.used, 5);
	/* The mutex is healthy again: plain lock and unlock, no EOWNERDEAD, no ENOTRECOVERABLE. */
	pthread_mutex_t *m = ratelimit_stripe_lock(seg, ratelimit_stripe_of(seg, k2));
	ck_assert_int_eq(pthread_mutex_lock(m), 0);
	ck_assert_int_eq(pthread_mutex_unlock(m), 0);
	/* The breaker and label locks recover the same way. */
	struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
	ck_assert_int_eq(breaker_allow(seg, "aaaaaaaaaaaaaaaaaaaaaaaa", 1000, &cfg), BREAKER_ALLOW);
	kill_holder(seg, &seg->map->br.lock.m, NULL);
	ck_assert_int_eq(breaker_allow(seg, "aaaaaaaaaaaaaaaaaaaaaaaa", 1000, &cfg), BREAKER_ALLOW);
	kill_holder(seg, &seg->map->mx.lock.m, NULL);
	ck_assert_int_gt(metrics_label_id(seg, "scope=\"login\""), 0);
	ck_assert_int_eq(atomic_load(&seg->map->hdr.lock_recoveries), 4);
	shm_segment_close(seg);
}
END_TEST

/* --- rate limiter ------------------------------------------------------------------------------------ */

START_TEST(sliding_window)
{
	struct shm_segment *seg = seg_new(0);
	const char *k = "tenant:rpm:sliding";
	struct ratelimit_result r;
	for (int i = 0; i < 10; i++) {
		r = hit(seg, k, 10, 60, 1, 0);
		ck_assert(r.allowed);
		ck_assert_int_eq(r.remaining, 9 - i);
		ck_assert_int_eq(r.retry_after_s, 0);
	}
	r = hit(seg, k, 10, 60, 1, 0);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.remaining, 0);
	ck_assert_int_eq(r.retry_after_s, 61);   /* bucket [0, 1 s) leaves the window at 60.999 s */
	r = hit(seg, k, 10, 60, 1, 30000);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.retry_after_s, 31);
	r = hit(seg, k, 10, 60, 1, 60000);
	ck_assert(!r.allowed);
	r = hit(seg, k, 10, 60, 1, 61000);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.used, 1);

	/* A burst at the end of one minute and another at the start of the next: a fixed window would let
	 * 2 x limit through within one second; the sliding window lets the limit through, once. */
	const char *b = "tenant:rpm:boundary";
	int ok = 0;
	for (int i = 0; i < 10; i++)
		ok += hit(seg, b, 10, 60, 1, 59500).allowed;
	for (int i = 0; i < 10; i++)
		ok += hit(seg, b, 10, 60, 1, 60500).allowed;
	ck_assert_int_eq(ok, 10);
	/* Bucket [59 s, 60 s) leaves the window at 119.999 s (a perfect log would free it at 119.5 s). */
	ck_assert(!hit(seg, b, 10, 60, 1, 119998).allowed);
	ck_assert(hit(seg, b, 10, 60, 1, 119999).allowed);

	/* Token budgets: cost is the token count; a check with cost 0 peeks. */
	const char *t = "tenant:tpm:tok";
	ck_assert(hit(seg, t, 1000, 60, 400, 0).allowed);
	ck_assert(hit(seg, t, 1000, 60, 400, 0).allowed);
	r = hit(seg, t, 1000, 60, 400, 0);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.used, 800);
	ck_assert(hit(seg, t, 1000, 60, 200, 0).allowed);
	ck_assert(!hit(seg, t, 1000, 60, 0, 0).allowed);
	ck_assert_int_eq(ratelimit_charge(seg, t, 60, 500, 0, &r), PRISM_OK);
	ck_assert_int_eq(r.used, 1500);
	r = hit(seg, t, 1000, 60, 5000, 0);       /* can never fit */
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.retry_after_s, 60);

	/* Argument checks. */
	ck_assert_int_eq(ratelimit_hit(seg, "", 1, 60, 1, 0, &r), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(ratelimit_hit(seg, k, 0, 60, 1, 0, &r), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(ratelimit_hit(seg, k, 1, 0, 1, 0, &r), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(ratelimit_hit(seg, k, 1, 60, -1, 0, &r), PRISM_E_BAD_REQUEST);
	char big[SHM_RL_KEY_MAX + 1];
	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(ratelimit_hit(seg, big, 1, 60, 1, 0, &r), PRISM_E_BAD_REQUEST);
	shm_segment_close(seg);
}
END_TEST

/* Random traffic against an exact log: in no window of W ms are more than `limit` hits allowed, and a
 * hit is denied only when the window stretched by one bucket really is full. */
START_TEST(sliding_window_property)
{
	struct shm_segment *seg = seg_new(0);
	enum { N = 6000 };
	static const long windows[] = { 1, 10, 60 };
	for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++) {
		long win = windows[wi], limit = 17;
		int64_t W = win * 1000, w = (W + 59) / 60;
		static int64_t log[N];
		int nlog = 0;
		char key[32];
		snprintf(key, sizeof key, "prop:%ld", win);
		unsigned seed = 12345u + (unsigned)wi;
		int64_t now = 1000;
		for (int i = 0; i < N; i++) {
			now += rand_r(&seed) % (W / 8 + 1);
			struct ratelimit_result r = hit(seg, key, limit, win, 1, now);
			int in_w = 0, in_wide = 0;
			for (int j = nlog - 1; j >= 0 && log[j] > now - W - w; j--) {
				in_wide++;
				if (log[j] > now - W)
					in_w++;
			}
			if (r.allowed) {
				ck_assert_msg(in_w + 1 <= limit, "window %ld: %d allowed within W at %lld", win, in_w + 1,
					      (long long)now);
				log[nlog++] = now;
			} else {
				ck_assert_msg(in_wide >= limit, "window %ld: denied with only %d in W+w at %lld", win,
					      in_wide, (long long)now);
				ck_assert_int_ge(r.retry_after_s, 1);
			}
		}
	}
	shm_segment_close(seg);
}
END_TEST

START_TEST(eviction_under_pressure)
{
	struct shm_segment *seg = seg_new(1);    /* the smallest table */
	uint32_t cap = seg->map->hdr.rl_slots;
	ck_assert_uint_eq(cap, SHM_RL_MIN_SLOTS);
	const char *hot = "tenant:rpm:hot";
	ck_assert(hit(seg, hot, 100, 60, 1, 0).tracked);
	/* Four times the capacity of live keys: the overflow is allowed untracked and counted. */
	int tracked = 0, untracked = 0;
	char key[64];
	static bool was_tracked[4 * SHM_RL_MIN_SLOTS];
	for (uint32_t i = 0; i < 4 * cap; i++) {
		snprintf(key, sizeof key, "ip:gateway:10.0.%u.%u", i / 256, i % 256);
		struct ratelimit_result r = hit(seg, key, 3, 60, 1, 100);
		ck_assert(r.allowed);
		was_tracked[i] = r.tracked;
		if (r.tracked) {
			ck_assert_int_eq(r.used, 1);
			tracked++;
		} else {
			untracked++;
		}
	}
	ck_assert_int_le(tracked, (int)cap - 1);
	ck_assert_int_gt(tracked, (int)cap / 2);
	ck_assert_int_eq(untracked, 4 * (int)cap - tracked);
	ck_assert_int_eq(atomic_load(&seg->map->rl.untracked), untracked);
	ck_assert_int_eq(atomic_load(&seg->map->rl.evictions), 0);   /* nothing live was thrown out */
	/* Tracked keys keep exact counts under pressure: limit 3 means two more, then 429. */
	for (uint32_t i = 0; i < 4 * cap; i += 7) {
		if (!was_tracked[i])
			continue;
		snprintf(key, sizeof key, "ip:gateway:10.0.%u.%u", i / 256, i % 256);
		ck_assert(hit(seg, key, 3, 60, 1, 200).allowed);
		ck_assert(hit(seg, key, 3, 60, 1, 200).allowed);
		ck_assert(!hit(seg, key, 3, 60, 1, 200).allowed);
	}
	struct ratelimit_result r = hit(seg, hot, 100, 60, 1, 30000);
	ck_assert_int_eq(r.used, 2);
	/* A minute later the fillers have expired: new keys take their slots, the hot key keeps its count. */
	for (uint32_t i = 0; i < 2 * cap; i++) {
		snprintf(key, sizeof key, "ip:gateway:10.1.%u.%u", i / 256, i % 256);
		hit(seg, key, 3, 60, 1, 70000);
	}
	ck_assert_int_gt(atomic_load(&seg->map->rl.evictions), (long)cap / 2);
	r = hit(seg, hot, 100, 60, 1, 70000);
	ck_assert(r.tracked);
	ck_assert_int_eq(r.used, 2);      /* the hit at 30 s is still in the window, the one at 0 s is not */
	shm_segment_close(seg);
}
END_TEST

START_TEST(ip_keys)
{
	struct netaddr a, b;
	char k1[128], k2[128];
	ck_assert_int_eq(netaddr_parse("203.0.113.7", &a), 0);
	ck_assert_int_eq(ratelimit_ip_key(&a, 64, "login", k1, sizeof k1), PRISM_OK);
	ck_assert_str_eq(k1, "ip:login:203.0.113.7");
	ck_assert_int_eq(netaddr_parse("203.0.113.8", &b), 0);
	ck_assert_int_eq(ratelimit_ip_key(&b, 64, "login", k2, sizeof k2), PRISM_OK);
	ck_assert_str_ne(k1, k2);                 /* IPv4 is exact */
	ck_assert_int_eq(netaddr_parse("2001:db8:1:2:aaaa:bbbb:cccc:dddd", &a), 0);
	ck_assert_int_eq(netaddr_parse("2001:db8:1:2::1", &b), 0);
	ck_assert_int_eq(ratelimit_ip_key(&a, 64, "gateway", k1, sizeof k1), PRISM_OK);
	ck_assert_int_eq(ratelimit_ip_key(&b, 64, "gateway", k2, sizeof k2), PRISM_OK);
	ck_assert_str_eq(k1, "ip:gateway:2001:db8:1:2::/64");
	ck_assert_str_eq(k1, k2);                 /* one /64, one bucket */
	ck_assert_int_eq(netaddr_parse("2001:db8:1:3::1", &b), 0);
	ck_assert_int_eq(ratelimit_ip_key(&b, 64, "gateway", k2, sizeof k2), PRISM_OK);
	ck_assert_str_ne(k1, k2);
	ck_assert_int_eq(ratelimit_ip_key(&b, 48, "admin", k2, sizeof k2), PRISM_OK);
	ck_assert_str_eq(k2, "ip:admin:2001:db8:1::/48");
	ck_assert_int_eq(ratelimit_ip_key(&b, 128, "admin", k2, sizeof k2), PRISM_OK);
	ck_assert_str_eq(k2, "ip:admin:2001:db8:1:3::1/128");
	ck_assert_int_eq(ratelimit_ip_key(&b, 0, "admin", k2, sizeof k2), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(ratelimit_ip_key(&b, 129, "admin", k2, sizeof k2), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(ratelimit_ip_key(&b, 64, "a:b", k2, sizeof k2), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(ratelimit_ip_key(&b, 64, "admin", k2, 10), PRISM_E_TOO_LARGE);
	ck_assert_uint_lt(strlen("ip:gateway:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), SHM_RL_KEY_MAX);
}
END_TEST

START_TEST(ietf_headers)
{
	char rl[128], pol[64];
	struct ratelimit_result r = { .allowed = false, .remaining = 0, .reset_s = 61, .retry_after_s = 12 };
	ck_assert_int_eq(ratelimit_headers(&r, 600, 60, rl, sizeof rl, pol, sizeof pol), PRISM_OK);
	ck_assert_str_eq(rl, "limit=600, remaining=0, reset=12");
	ck_assert_str_eq(pol, "600;w=60");
	r = (struct ratelimit_result){ .allowed = true, .remaining = 599, .reset_s = 61 };
	ck_assert_int_eq(ratelimit_headers(&r, 600, 60, rl, sizeof rl, pol, sizeof pol), PRISM_OK);
	ck_assert_str_eq(rl, "limit=600, remaining=599, reset=61");
	ck_assert_int_eq(ratelimit_headers(&r, 600, 60, rl, 8, pol, sizeof pol), PRISM_E_TOO_LARGE);
}
END_TEST

/* --- circuit breaker --------------------------------------------------------------------------------- */

enum bop { B_ALLOW, B_FAIL, B_OK, B_PROBE_FAIL, B_PROBE_OK };
struct bstep {
	enum bop op;
	int64_t t;
	int verdict;                 /* for B_ALLOW */
	enum breaker_state state;    /* after the step (effective) */
};

static const struct bstep bsteps[] = {
	{ B_ALLOW, 0, BREAKER_ALLOW, BREAKER_CLOSED },
	{ B_FAIL, 10, 0, BREAKER_CLOSED },
	{ B_FAIL, 20, 0, BREAKER_CLOSED },
	{ B_OK, 30, 0, BREAKER_CLOSED },           /* not consecutive any more */
	{ B_FAIL, 40, 0, BREAKER_CLOSED },
	{ B_FAIL, 50, 0, BREAKER_CLOSED },
	{ B_FAIL, 60, 0, BREAKER_OPEN },           /* 3rd consecutive: opens at 60 */
	{ B_ALLOW, 500, BREAKER_DENY, BREAKER_OPEN },
	{ B_OK, 600, 0, BREAKER_OPEN },            /* a late success does not close it */
	{ B_ALLOW, 1059, BREAKER_DENY, BREAKER_OPEN },
	{ B_ALLOW, 1060, BREAKER_ALLOW_PROBE, BREAKER_HALF_OPEN },
	{ B_ALLOW, 1061, BREAKER_ALLOW_PROBE, BREAKER_HALF_OPEN },
	{ B_ALLOW, 1062, BREAKER_DENY, BREAKER_HALF_OPEN },  /* two probes in flight */
	{ B_PROBE_FAIL, 1100, 0, BREAKER_OPEN },   /* back to open, new cool-down from 1100 */
	{ B_ALLOW, 2000, BREAKER_DENY, BREAKER_OPEN },
	{ B_ALLOW, 2100, BREAKER_ALLOW_PROBE, BREAKER_HALF_OPEN },
	{ B_PROBE_OK, 2150, 0, BREAKER_CLOSED },
	{ B_ALLOW, 2160, BREAKER_ALLOW, BREAKER_CLOSED },
	{ B_FAIL, 3000, 0, BREAKER_CLOSED },
	{ B_FAIL, 3001, 0, BREAKER_CLOSED },
	{ B_FAIL, 3002, 0, BREAKER_OPEN },
	{ B_ALLOW, 4002, BREAKER_ALLOW_PROBE, BREAKER_HALF_OPEN },
	{ B_ALLOW, 4003, BREAKER_ALLOW_PROBE, BREAKER_HALF_OPEN },
	{ B_ALLOW, 4500, BREAKER_DENY, BREAKER_HALF_OPEN },
	/* Both probes' processes died without reporting: after a cool-down they are forgotten. */
	{ B_ALLOW, 5003, BREAKER_ALLOW_PROBE, BREAKER_HALF_OPEN },
	{ B_PROBE_OK, 5010, 0, BREAKER_CLOSED },
};

START_TEST(breaker_state_machine)
{
	struct shm_segment *seg = seg_new(0);
	const struct breaker_cfg cfg = { 3, 1000, 2 };
	const char *id = "65a1b2c3d4e5f60718293a4b";
	for (size_t i = 0; i < sizeof bsteps / sizeof bsteps[0]; i++) {
		const struct bstep *s = &bsteps[i];
		switch (s->op) {
		case B_ALLOW:
			ck_assert_msg(breaker_allow(seg, id, s->t, &cfg) == (enum breaker_verdict)s->verdict,
				      "step %zu: verdict", i);
			break;
		case B_FAIL:
		case B_OK:
			breaker_report(seg, id, s->op == B_FAIL, false, s->t, &cfg);
			break;
		case B_PROBE_FAIL:
		case B_PROBE_OK:
			breaker_report(seg, id, s->op == B_PROBE_FAIL, true, s->t, &cfg);
			break;
		}
		struct breaker_info bi[4];
		ck_assert_uint_eq(breaker_snapshot(seg, s->t, bi, 4), 1);
		ck_assert_msg(bi[0].state == s->state, "step %zu: state %s, want %s", i, breaker_state_name(bi[0].state),
			      breaker_state_name(s->state));
	}
	struct breaker_info bi[4];
	ck_assert_uint_eq(breaker_snapshot(seg, 6000, bi, 4), 1);
	ck_assert_str_eq(bi[0].id, id);
	ck_assert_int_eq(bi[0].trips, 2);
	/* Other providers are independent; bad ids are allowed and ignored. */
	ck_assert_int_eq(breaker_allow(seg, "65a1b2c3d4e5f60718293a4c", 6000, &cfg), BREAKER_ALLOW);
	ck_assert_int_eq(breaker_allow(seg, "", 6000, &cfg), BREAKER_ALLOW);
	ck_assert_uint_eq(breaker_snapshot(seg, 6000, bi, 4), 2);
	/* Defaults: 5 failures, 60 s, 2 probes. */
	const struct breaker_cfg def = BREAKER_CFG_DEFAULT;
	const char *id2 = "65a1b2c3d4e5f60718293a4d";
	for (int i = 0; i < 4; i++)
		breaker_report(seg, id2, true, false, 0, &def);
	ck_assert_int_eq(breaker_allow(seg, id2, 0, &def), BREAKER_ALLOW);
	breaker_report(seg, id2, true, false, 0, &def);
	ck_assert_int_eq(breaker_allow(seg, id2, 59999, &def), BREAKER_DENY);
	ck_assert_int_eq(breaker_allow(seg, id2, 60000, &def), BREAKER_ALLOW_PROBE);
	shm_segment_close(seg);
}
END_TEST

/* --- metrics ----------------------------------------------------------------------------------------- */

START_TEST(label_table)
{
	struct shm_segment *seg = seg_new(0);
	char l[SHM_LABEL_MAX];
	ck_assert_int_eq(metrics_labels(l, sizeof l, (const char *const[]){ "route", "/v1/\"x\"\\\n", "status", "200",
									    NULL }),
			 PRISM_OK);
	ck_assert_str_eq(l, "route=\"/v1/\\\"x\\\"\\\\\\n\",status=\"200\"");
	ck_assert_int_eq(metrics_labels(l, sizeof l, (const char *const[]){ "1bad", "x", NULL }), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(metrics_labels(l, 8, (const char *const[]){ "route", "/v1/chat", NULL }), PRISM_E_TOO_LARGE);
	int a = metrics_label_id(seg, "scope=\"login\"");
	ck_assert_int_gt(a, 0);
	ck_assert_int_eq(metrics_label_id(seg, "scope=\"login\""), a);
	ck_assert_int_eq(metrics_label_id(seg, "bad=\"\n\""), METRICS_LABEL_OVERFLOW);
	/* Fill the table: later label sets share the overflow id. */
	int last = 0;
	for (int i = 0; i < SHM_LABELS + 10; i++) {
		snprintf(l, sizeof l, "n=\"%d\"", i);
		last = metrics_label_id(seg, l);
	}
	ck_assert_int_eq(last, METRICS_LABEL_OVERFLOW);
	ck_assert_int_eq(metrics_label_id(seg, "scope=\"login\""), a);
	ck_assert_int_eq(metrics_label_id(seg, "n=\"5\""), a + 6);
	shm_segment_close(seg);
}
END_TEST

START_TEST(prometheus_text)
{
	struct shm_segment *seg = seg_new(0);
	char l[SHM_LABEL_MAX];
	ck_assert_int_eq(metrics_labels(l, sizeof l, (const char *const[]){ "route", "/v1/chat/completions", "status",
									    "200", NULL }),
			 PRISM_OK);
	int ok = metrics_label_id(seg, l);
	int login = metrics_label_id(seg, "scope=\"login\"");
	int route = metrics_label_id(seg, "route=\"/v1/chat/completions\"");
	metrics_inc(seg, METRIC_REQUESTS, ok, 3);
	metrics_inc(seg, METRIC_RATE_LIMITED, login, 1);
	metrics_inc(seg, METRIC_RATE_LIMITED, 99999, 1);     /* out of range: counted as overflow */
	metrics_observe(seg, METRIC_REQUEST_DURATION, route, 800);
	metrics_observe(seg, METRIC_REQUEST_DURATION, route, 2500000);
	metrics_observe(seg, METRIC_REQUEST_DURATION, route, 500000000);
	struct breaker_cfg cfg = { 1, 60000, 2 };
	breaker_report(seg, "65a1b2c3d4e5f60718293a4b", true, false, clock_monotonic_ms(), &cfg);
	breaker_allow(seg, "65a1b2c3d4e5f60718293a4c", clock_monotonic_ms(), &cfg);
	struct buf b;
	buf_init(&b, 1 << 20);
	ck_assert_int_eq(metrics_render_prometheus(seg, &b), PRISM_OK);
	const char *t = buf_cstr(&b);
	static const char *const want[] = {
		"# TYPE prism_requests_total counter\n",
		"prism_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 3\n",
		"prism_rate_limited_total{scope=\"login\"} 1\n",
		"prism_rate_limited_total{overflow=\"true\"} 1\n",
		"# TYPE prism_request_duration_seconds histogram\n",
		"prism_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.001\"} 1\n",
		"prism_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"2.5\"} 2\n",
		"prism_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"120\"} 2\n",
		"prism_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"+Inf\"} 3\n",
		"prism_request_duration_seconds_sum{route=\"/v1/chat/completions\"} 502.5008\n",
		"prism_request_duration_seconds_count{route=\"/v1/chat/completions\"} 3\n",
		"prism_breaker_state{provider=\"65a1b2c3d4e5f60718293a4b\"} 1\n",
		"prism_breaker_state{provider=\"65a1b2c3d4e5f60718293a4c\"} 0\n",
		"# TYPE prism_ratelimit_untracked_total counter\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		ck_assert_msg(strstr(t, want[i]) != NULL, "missing: %s\nin:\n%s", want[i], t);
	/* Every line is a comment or "name[{labels}] value". */
	for (const char *p = t; *p;) {
		const char *nl = strchr(p, '\n');
		ck_assert_ptr_nonnull(nl);
		ck_assert(p[0] == '#' || (p[0] >= 'a' && p[0] <= 'z' && memchr(p, ' ', (size_t)(nl - p)) != NULL));
		p = nl + 1;
	}
	/* The reference parser, when installed (Debian package prometheus). */
	if (access("/usr/bin/promtool", X_OK) == 0) {
		char path[] = "/tmp/check_shm_promXXXXXX";
		int fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, t, b.len), (ssize_t)b.len);
		close(fd);
		char cmd[256], out[4096] = "";
		snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s 2>&1", path);
		FILE *f = popen(cmd, "r");
		ck_assert_ptr_nonnull(f);
		size_t n = fread(out, 1, sizeof out - 1, f);
		out[n] = '\0';
		int st = pclose(f);
		unlink(path);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool: %s\n%s", out, t);
	}
	buf_free(&b);
	shm_segment_close(seg);
}
END_TEST

START_TEST(top_and_reset)
{
	struct shm_segment *seg = seg_new(0);
	int64_t now = 1000000;
	for (int i = 0; i < 7; i++)
		hit(seg, "ip:gateway:192.0.2.7", 100, 60, 1, now);
	for (int i = 0; i < 3; i++)
		hit(seg, "ip:gateway:192.0.2.3", 100, 60, 1, now);
	hit(seg, "tenant:tpm:65a1b2c3d4e5f60718293a4b", 100000, 60, 900, now);
	for (int i = 0; i < 5; i++)
		hit(seg, "ip:admin:192.0.2.5", 5, 60, 1, now);
	struct ratelimit_entry top[3];
	size_t n = ratelimit_top(seg, now, top, 3);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(top[0].key, "tenant:tpm:65a1b2c3d4e5f60718293a4b");
	ck_assert_int_eq(top[0].used, 900);
	ck_assert_str_eq(top[1].key, "ip:gateway:192.0.2.7");
	ck_assert_int_eq(top[1].used, 7);
	ck_assert_str_eq(top[2].key, "ip:admin:192.0.2.5");
	ck_assert_int_eq(top[2].window_s, 60);
	/* windows that have passed are not "busy" */
	ck_assert_uint_eq(ratelimit_top(seg, now + 61000, top, 3), 0);
	/* the exhausted key is refused, then forgotten by the reset */
	ck_assert(!hit(seg, "ip:admin:192.0.2.5", 5, 60, 1, now).allowed);
	ratelimit_clear(seg);
	ck_assert_uint_eq(ratelimit_top(seg, now, top, 3), 0);
	struct ratelimit_result r = hit(seg, "ip:admin:192.0.2.5", 5, 60, 1, now);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.remaining, 4);
	/* breakers: open one, reset closes it */
	struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
	for (int i = 0; i < 5; i++)
		breaker_report(seg, "65a1b2c3d4e5f60718293a01", true, false, now, &cfg);
	ck_assert_int_eq(breaker_allow(seg, "65a1b2c3d4e5f60718293a01", now, &cfg), BREAKER_DENY);
	breaker_reset_all(seg);
	ck_assert_int_eq(breaker_allow(seg, "65a1b2c3d4e5f60718293a01", now, &cfg), BREAKER_ALLOW);
	shm_segment_close(seg);
}
END_TEST

static Suite *
shm_suite(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("shm");
	tcase_add_unchecked_fixture(tc, runner_setup, runner_teardown);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, default_name);
	tcase_add_test(tc, create_attach_size);
	tcase_add_test(tc, layout_mismatch_refused);
	tcase_add_test(tc, hammer_exact_totals);
	tcase_add_test(tc, killed_holder_recovered);
	tcase_add_test(tc, sliding_window);
	tcase_add_test(tc, sliding_window_property);
	tcase_add_test(tc, eviction_under_pressure);
	tcase_add_test(tc, ip_keys);
	tcase_add_test(tc, ietf_headers);
	tcase_add_test(tc, breaker_state_machine);
	tcase_add_test(tc, top_and_reset);
	tcase_add_test(tc, label_table);
	tcase_add_test(tc, prometheus_text);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(shm_suite)
