/* check_tenantcache.c -- the tenant and API-key cache in shared memory.
 *
 * Every test uses its own segment (/prism-test-tc-<pid>-<n>) and unlinks it, also when it fails (the
 * runner removes what a failed test left behind).  Clocks are injected (now_ms), so no test sleeps.
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#define SHM_FIXTURE_PREFIX "prism-test-tc-"
#include "shm_fixture.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"


/* A deterministic, well-spread stand-in for SHA-256(key number i). */
static void
key_hash(unsigned i, unsigned char h[SHM_TC_HASH_LEN])
{
	uint64_t x = (uint64_t)i * UINT64_C(0x9e3779b97f4a7c15) + 1;
	for (int b = 0; b < SHM_TC_HASH_LEN; b++) {
		x ^= x >> 33;
		x *= UINT64_C(0xff51afd7ed558ccd);
		x ^= x >> 29;
		h[b] = (unsigned char)x;
	}
}

static struct tenant_snapshot
snap_for(unsigned i, int64_t epoch)
{
	struct tenant_snapshot s = { .tenant_enabled = true, .key_enabled = (i % 3) != 0, .epoch = epoch };
	snprintf(s.tenant_id, sizeof s.tenant_id, "%024x", i);
	snprintf(s.key_id, sizeof s.key_id, "%024x", i ^ 0xabcdefu);
	snprintf(s.slug, sizeof s.slug, "tenant-%u", i);
	s.key_expires_at_ms = i % 2 ? 0 : 1700000000000LL + i;
	s.rpm_limit = 60 + i;
	s.tpm_limit = 100000 + (int64_t)i;
	s.model_policy_mode = (int)(i % 4);
	s.routing_enabled = (int)(i % 2);
	s.routing_force_mode = (int)(i % 3);
	return s;
}

static bool
snap_eq(const struct tenant_snapshot *a, const struct tenant_snapshot *b)
{
	return strcmp(a->tenant_id, b->tenant_id) == 0 && strcmp(a->slug, b->slug) == 0 &&
	       strcmp(a->key_id, b->key_id) == 0 && a->tenant_enabled == b->tenant_enabled &&
	       a->key_enabled == b->key_enabled && a->key_expires_at_ms == b->key_expires_at_ms &&
	       a->rpm_limit == b->rpm_limit && a->tpm_limit == b->tpm_limit &&
	       a->model_policy_mode == b->model_policy_mode && a->routing_enabled == b->routing_enabled &&
	       a->routing_force_mode == b->routing_force_mode;
}

/* get (miss expected or not), then put with the epoch the get handed out: the request path's order. */
static enum tenantcache_result
put(struct shm_segment *seg, unsigned i, int64_t now_ms)
{
	unsigned char h[SHM_TC_HASH_LEN];
	key_hash(i, h);
	struct tenant_snapshot probe;
	tenantcache_get(seg, h, now_ms, TENANTCACHE_TTL_DEFAULT_MS, &probe);
	struct tenant_snapshot s = snap_for(i, probe.epoch);
	return tenantcache_put(seg, h, &s, now_ms);
}

/* HIT only with exactly key i's snapshot. */
static enum tenantcache_result
get(struct shm_segment *seg, unsigned i, int64_t now_ms)
{
	unsigned char h[SHM_TC_HASH_LEN];
	key_hash(i, h);
	struct tenant_snapshot out;
	memset(&out, 0x5a, sizeof out);
	enum tenantcache_result r = tenantcache_get(seg, h, now_ms, TENANTCACHE_TTL_DEFAULT_MS, &out);
	if (r == TENANTCACHE_HIT) {
		struct tenant_snapshot want = snap_for(i, 0);
		ck_assert_msg(snap_eq(&out, &want), "key %u: got the snapshot of \"%s\"", i, out.slug);
	} else {
		ck_assert_int_eq(r, TENANTCACHE_MISS);
	}
	return r;
}

START_TEST(round_trip)
{
	struct shm_segment *seg = seg_new(1);
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_MISS);
	ck_assert_int_eq(put(seg, 1, 1000), TENANTCACHE_STORED);
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_HIT);
	ck_assert_int_eq(get(seg, 2, 1000), TENANTCACHE_MISS);
	/* Every field survives, including the bounds of the strings and small ints. */
	unsigned char h[SHM_TC_HASH_LEN];
	key_hash(7, h);
	struct tenant_snapshot s = snap_for(7, 0), out;
	memset(s.slug, 's', sizeof s.slug - 1);
	s.slug[sizeof s.slug - 1] = '\0';
	s.model_policy_mode = 255;
	s.key_expires_at_ms = INT64_MAX;
	s.rpm_limit = -1;
	ck_assert_int_eq(tenantcache_put(seg, h, &s, 1000), TENANTCACHE_STORED);
	ck_assert_int_eq(tenantcache_get(seg, h, 1000, 60000, &out), TENANTCACHE_HIT);
	ck_assert(snap_eq(&out, &s));
	ck_assert_uint_eq(strlen(out.slug), SHM_TC_SLUG_MAX - 1);
	/* A second put of the same key replaces its slot. */
	s.rpm_limit = 5;
	ck_assert_int_eq(tenantcache_put(seg, h, &s, 1001), TENANTCACHE_STORED);
	ck_assert_int_eq(tenantcache_get(seg, h, 1001, 60000, &out), TENANTCACHE_HIT);
	ck_assert_int_eq(out.rpm_limit, 5);
	/* What does not fit is refused, not truncated. */
	struct tenant_snapshot bad = s;
	memset(bad.slug, 's', sizeof bad.slug);
	ck_assert_int_eq(tenantcache_put(seg, h, &bad, 1001), TENANTCACHE_INVALID);
	bad = s;
	bad.routing_force_mode = 256;
	ck_assert_int_eq(tenantcache_put(seg, h, &bad, 1001), TENANTCACHE_INVALID);
	bad = s;
	bad.model_policy_mode = -1;
	ck_assert_int_eq(tenantcache_put(seg, h, &bad, 1001), TENANTCACHE_INVALID);
	ck_assert_int_eq(tenantcache_get(seg, h, 1001, 60000, &out), TENANTCACHE_HIT);
	ck_assert_int_eq(out.rpm_limit, 5);
	struct tenantcache_stats st;
	tenantcache_stats(seg, &st);
	ck_assert_int_eq(st.capacity, SHM_TC_SLOTS);
	ck_assert_int_eq(st.fill, 2);
	ck_assert_int_eq(st.hits, 4);
	ck_assert_int_eq(st.misses, 3);   /* two in get(), one in put() */
	shm_segment_close(seg);
}
END_TEST

START_TEST(ttl_expiry)
{
	struct shm_segment *seg = seg_new(1);
	ck_assert_int_eq(put(seg, 1, 10000), TENANTCACHE_STORED);
	ck_assert_int_eq(get(seg, 1, 10000 + TENANTCACHE_TTL_DEFAULT_MS - 1), TENANTCACHE_HIT);
	ck_assert_int_eq(get(seg, 1, 10000 + TENANTCACHE_TTL_DEFAULT_MS), TENANTCACHE_MISS);
	/* The TTL is the reader's: a shorter one expires sooner, 0 disables the cache. */
	unsigned char h[SHM_TC_HASH_LEN];
	key_hash(1, h);
	struct tenant_snapshot out;
	ck_assert_int_eq(tenantcache_get(seg, h, 10999, 1000, &out), TENANTCACHE_HIT);
	ck_assert_int_eq(tenantcache_get(seg, h, 11000, 1000, &out), TENANTCACHE_MISS);
	ck_assert_int_eq(tenantcache_get(seg, h, 10000, 0, &out), TENANTCACHE_MISS);
	/* A refresh restarts the clock. */
	ck_assert_int_eq(put(seg, 1, 80000), TENANTCACHE_STORED);
	ck_assert_int_eq(get(seg, 1, 80000 + TENANTCACHE_TTL_DEFAULT_MS - 1), TENANTCACHE_HIT);
	shm_segment_close(seg);
}
END_TEST

START_TEST(invalidate_all)
{
	struct shm_segment *seg = seg_new(1);
	for (unsigned i = 0; i < 100; i++)
		ck_assert_int_eq(put(seg, i, 1000), TENANTCACHE_STORED);
	for (unsigned i = 0; i < 100; i++)
		ck_assert_int_eq(get(seg, i, 1000), TENANTCACHE_HIT);
	tenantcache_invalidate_all(seg);
	for (unsigned i = 0; i < 100; i++)
		ck_assert_int_eq(get(seg, i, 1000), TENANTCACHE_MISS);
	ck_assert_int_eq(put(seg, 5, 1001), TENANTCACHE_STORED);
	ck_assert_int_eq(get(seg, 5, 1001), TENANTCACHE_HIT);
	ck_assert_int_eq(get(seg, 6, 1001), TENANTCACHE_MISS);

	/* A snapshot read from the store before an invalidation is not cached after it. */
	unsigned char h[SHM_TC_HASH_LEN];
	key_hash(9, h);
	struct tenant_snapshot probe;
	ck_assert_int_eq(tenantcache_get(seg, h, 1002, 60000, &probe), TENANTCACHE_MISS);
	struct tenant_snapshot s = snap_for(9, probe.epoch);
	tenantcache_invalidate_all(seg);         /* an admin disabled the key meanwhile */
	ck_assert_int_eq(tenantcache_put(seg, h, &s, 1002), TENANTCACHE_STALE);
	ck_assert_int_eq(get(seg, 9, 1002), TENANTCACHE_MISS);
	struct tenantcache_stats st;
	tenantcache_stats(seg, &st);
	ck_assert_int_eq(st.invalidations, 2);
	ck_assert_int_eq(st.stale_puts, 1);
	ck_assert_int_eq(st.epoch, 2);
	/* Stale slots are reused before anything live is evicted: the fill does not grow past the keys. */
	for (unsigned i = 0; i < 100; i++)
		ck_assert_int_ne(put(seg, i, 2000), TENANTCACHE_EVICTED);
	tenantcache_stats(seg, &st);
	ck_assert_int_eq(st.fill, 100);
	shm_segment_close(seg);
}
END_TEST

START_TEST(generation_change)
{
	struct shm_segment *seg = seg_new(1);
	ck_assert(tenantcache_observe_generation(seg, 41));      /* first sight of the store: nothing cached */
	ck_assert_int_eq(put(seg, 1, 1000), TENANTCACHE_STORED);
	ck_assert(!tenantcache_observe_generation(seg, 41));
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_HIT);
	ck_assert(tenantcache_observe_generation(seg, 42));      /* another host changed something */
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_MISS);
	ck_assert_int_eq(put(seg, 1, 1000), TENANTCACHE_STORED);
	ck_assert(!tenantcache_observe_generation(seg, 42));
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_HIT);
	ck_assert(tenantcache_observe_generation(seg, 3));       /* a store reset counts as a change too */
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_MISS);
	struct tenantcache_stats st;
	tenantcache_stats(seg, &st);
	ck_assert_int_eq(st.generation, 3);
	ck_assert_int_eq(st.invalidations, 3);
	shm_segment_close(seg);
}
END_TEST

START_TEST(capacity_pressure)
{
	struct shm_segment *seg = seg_new(1);
	const unsigned n = 3 * SHM_TC_SLOTS, recent = SHM_TC_SLOTS / 4;
	int64_t now = 1000;
	for (unsigned i = 0; i < n; i++, now++) {
		enum tenantcache_result r = put(seg, i, now);
		ck_assert(r == TENANTCACHE_STORED || r == TENANTCACHE_EVICTED);
		ck_assert_int_eq(get(seg, i, now), TENANTCACHE_HIT);
		if (i >= 17)
			get(seg, i - 17, now);           /* checks: a hit is always the right snapshot */
	}
	unsigned hits = 0, recent_hits = 0;
	for (unsigned i = 0; i < n; i++) {
		if (get(seg, i, now) == TENANTCACHE_HIT) {
			hits++;
			recent_hits += i >= n - recent;
		}
	}
	struct tenantcache_stats st;
	tenantcache_stats(seg, &st);
	ck_assert_int_le(st.fill, SHM_TC_SLOTS);
	ck_assert_int_ge(st.fill, SHM_TC_SLOTS * 95 / 100);
	ck_assert_uint_le(hits, (unsigned long)st.fill);
	ck_assert_msg(hits >= SHM_TC_SLOTS * 9 / 10, "only %u of %d slots hold a key", hits, SHM_TC_SLOTS);
	ck_assert_msg(recent_hits >= recent * 95 / 100, "only %u of the %u newest keys hit", recent_hits, recent);
	ck_assert_int_eq(st.evictions, (long)n - st.fill);
	shm_segment_close(seg);
}
END_TEST

START_TEST(last_byte_differs)
{
	struct shm_segment *seg = seg_new(1);
	unsigned char a[SHM_TC_HASH_LEN], b[SHM_TC_HASH_LEN];
	key_hash(1, a);
	memcpy(b, a, sizeof b);
	b[SHM_TC_HASH_LEN - 1] ^= 1;
	struct tenant_snapshot sa = snap_for(1, 0), sb = snap_for(2, 0), out;
	ck_assert_int_eq(tenantcache_put(seg, a, &sa, 1000), TENANTCACHE_STORED);
	ck_assert_int_eq(tenantcache_get(seg, b, 1000, 60000, &out), TENANTCACHE_MISS);
	ck_assert_int_eq(tenantcache_put(seg, b, &sb, 1000), TENANTCACHE_STORED);
	ck_assert_int_eq(tenantcache_get(seg, a, 1000, 60000, &out), TENANTCACHE_HIT);
	ck_assert(snap_eq(&out, &sa));
	ck_assert_int_eq(tenantcache_get(seg, b, 1000, 60000, &out), TENANTCACHE_HIT);
	ck_assert(snap_eq(&out, &sb));
	/* Likewise the first byte. */
	memcpy(b, a, sizeof b);
	b[0] ^= 0x80;
	ck_assert_int_eq(tenantcache_get(seg, b, 1000, 60000, &out), TENANTCACHE_MISS);
	shm_segment_close(seg);
}
END_TEST

START_TEST(across_processes)
{
	struct shm_segment *seg = seg_new(1);
	/* The writer attaches on its own, as a pool process would, and is the table's first user. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shm_segment *mine = NULL;
		if (shm_segment_open(segname, 0, &mine, err, sizeof err) != PRISM_OK)
			_exit(2);
		for (unsigned i = 0; i < 50; i++)
			if (put(mine, i, 1000) != TENANTCACHE_STORED)
				_exit(3);
		shm_segment_close(mine);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed: %d", st);
	for (unsigned i = 0; i < 50; i++)
		ck_assert_int_eq(get(seg, i, 1000), TENANTCACHE_HIT);
	/* An invalidation in one process is seen by another at once. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		tenantcache_invalidate_all(seg);      /* the inherited mapping */
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (unsigned i = 0; i < 50; i++)
		ck_assert_int_eq(get(seg, i, 1000), TENANTCACHE_MISS);
	shm_segment_close(seg);
}
END_TEST

/* A child takes a stripe lock, leaves a slot half-written, and is killed: the next user repairs. */
START_TEST(killed_holder_recovered)
{
	struct shm_segment *seg = seg_new(1);
	ck_assert_int_eq(put(seg, 1, 1000), TENANTCACHE_STORED);
	unsigned char h[SHM_TC_HASH_LEN];
	key_hash(1, h);
	pthread_mutex_t *m = tenantcache_stripe_lock(seg, tenantcache_stripe_of(seg, h));
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (pthread_mutex_lock(m) != 0)
			_exit(3);
		for (unsigned i = 0; i < SHM_TC_SLOTS; i++)
			if (seg->map->tc.slot[i].used && memcmp(seg->map->tc.slot[i].key_hash, h, sizeof h) == 0)
				seg->map->tc.slot[i].seq++;
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
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_MISS);   /* half-written: forgotten, never returned */
	ck_assert_int_eq(put(seg, 1, 1000), TENANTCACHE_STORED);
	ck_assert_int_eq(get(seg, 1, 1000), TENANTCACHE_HIT);
	struct tenantcache_stats s;
	tenantcache_stats(seg, &s);
	ck_assert_int_eq(s.repaired, 1);
	ck_assert_int_eq(s.fill, 1);
	shm_segment_close(seg);
}
END_TEST

START_TEST(old_layout_refused)
{
	struct shm_segment *s1 = seg_new(1), *s2 = NULL;
	ck_assert_uint_ge(SHM_LAYOUT_VERSION, 2);
	s1->map->hdr.layout_version = 1;      /* a segment left by a build without the tenant cache */
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_E_CONFIG);
	ck_assert_ptr_null(s2);
	ck_assert_ptr_nonnull(strstr(err, "layout version 1"));
	ck_assert_ptr_nonnull(strstr(err, "prismctl shm --remove"));
	s1->map->hdr.layout_version = SHM_LAYOUT_VERSION;
	ck_assert_int_eq(shm_segment_open(segname, 0, &s2, err, sizeof err), PRISM_OK);
	shm_segment_close(s2);
	shm_segment_close(s1);
}
END_TEST

static Suite *
tenantcache_suite(void)
{
	Suite *s = suite_create("tenantcache");
	TCase *tc = tcase_create("tenantcache");
	tcase_add_unchecked_fixture(tc, runner_setup, runner_teardown);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, ttl_expiry);
	tcase_add_test(tc, invalidate_all);
	tcase_add_test(tc, generation_change);
	tcase_add_test(tc, capacity_pressure);
	tcase_add_test(tc, last_byte_differs);
	tcase_add_test(tc, across_processes);
	tcase_add_test(tc, killed_holder_recovered);
	tcase_add_test(tc, old_layout_refused);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(tenantcache_suite)
