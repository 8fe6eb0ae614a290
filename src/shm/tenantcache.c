/* tenantcache.c -- see tenantcache.h. */
#include "config.h"
#include "shm/tenantcache.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/rand.h"

_Static_assert(sizeof(struct shm_tc_slot) == 192, "tenant-cache slot: three cache lines");
_Static_assert(SHM_TC_SLOTS % SHM_TC_STRIPES == 0, "stripes must split the slots evenly");
_Static_assert(SHM_TC_PROBE <= SHM_TC_SLOTS / SHM_TC_STRIPES, "the probe range must stay within a stripe");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the tenant cache needs lock-free 64-bit atomics");

#define PER_STRIPE (SHM_TC_SLOTS / SHM_TC_STRIPES)

enum prism_err
tenantcache_layout_init(struct shm_tc_table *t)
{
	for (int i = 0; i < SHM_TC_STRIPES; i++)
		if (shm_mutex_init(&t->stripe[i].m))
			return PRISM_E_INTERNAL;
	atomic_store_explicit(&t->init, SHM_TC_INIT_READY, memory_order_release);
	return PRISM_OK;
}

/* segment.c initialises the table with the segment; a table that is not ready (never expected) only
 * costs store lookups. */
static bool
table_ready(struct shm_tc_table *t)
{
	return atomic_load_explicit(&t->init, memory_order_acquire) == SHM_TC_INIT_READY;
}

static inline struct shm_tc_slot *
stripe_base(struct shm_segment *seg, unsigned stripe)
{
	return &seg->map->tc.slot[(size_t)stripe * PER_STRIPE];
}

/* After EOWNERDEAD: a slot whose sequence number is odd was being written; forget it. */
static void
repair_stripe(struct shm_segment *seg, void *arg)
{
	struct shm_tc_slot *s = stripe_base(seg, *(unsigned *)arg);
	for (unsigned i = 0; i < PER_STRIPE; i++) {
		if (s[i].seq & 1) {
			if (s[i].used)
				atomic_fetch_sub_explicit(&seg->map->tc.used, 1, memory_order_relaxed);
			s[i].used = 0;
			memset(s[i].key_hash, 0, sizeof s[i].key_hash);
			s[i].seq++;
			atomic_fetch_add_explicit(&seg->map->tc.repaired, 1, memory_order_relaxed);
		}
	}
}

static inline uint64_t
position(const struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN])
{
	return shm_hash(seg, hash, SHM_TC_HASH_LEN);
}

unsigned
tenantcache_stripe_of(const struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN])
{
	return (unsigned)(position(seg, hash) % SHM_TC_STRIPES);
}

pthread_mutex_t *
tenantcache_stripe_lock(struct shm_segment *seg, unsigned stripe)
{
	return &seg->map->tc.stripe[stripe % SHM_TC_STRIPES].m;
}

static inline int64_t
current_epoch(struct shm_segment *seg)
{
	return atomic_load_explicit(&seg->map->tc.local_epoch, memory_order_acquire);
}

/* The slot holding this key hash in the probe range, or NULL.  Called with the stripe lock held. */
static struct shm_tc_slot *
find(struct shm_segment *seg, unsigned stripe, uint64_t h, const unsigned char hash[SHM_TC_HASH_LEN])
{
	struct shm_tc_slot *base = stripe_base(seg, stripe);
	unsigned start = (unsigned)((h / SHM_TC_STRIPES) % PER_STRIPE);
	for (unsigned i = 0; i < SHM_TC_PROBE; i++) {
		struct shm_tc_slot *s = &base[(start + i) % PER_STRIPE];
		if (s->used && const_time_eq(s->key_hash, hash, SHM_TC_HASH_LEN))
			return s;
	}
	return NULL;
}

enum tenantcache_result
tenantcache_get(struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN], int64_t now_ms, long ttl_ms,
		struct tenant_snapshot *out)
{
	struct shm_tc_table *t = &seg->map->tc;
	enum tenantcache_result r = TENANTCACHE_MISS;
	out->epoch = current_epoch(seg);
	if (!hash || ttl_ms <= 0 || !table_ready(t))
		goto out;
	uint64_t h = position(seg, hash);
	unsigned stripe = (unsigned)(h % SHM_TC_STRIPES);
	pthread_mutex_t *m = &t->stripe[stripe].m;
	shm_lock(seg, m, repair_stripe, &stripe);
	/* Read under the lock: an invalidation that completed before we got here is always seen. */
	int64_t epoch = current_epoch(seg);
	const struct shm_tc_slot *s = find(seg, stripe, h, hash);
	if (s && s->epoch == epoch && now_ms - s->inserted_at_ms < ttl_ms) {
		memcpy(out->tenant_id, s->tenant_id, sizeof out->tenant_id);
		memcpy(out->slug, s->slug, sizeof out->slug);
		memcpy(out->key_id, s->key_id, sizeof out->key_id);
		out->tenant_enabled = s->tenant_enabled;
		out->key_enabled = s->key_enabled;
		out->key_expires_at_ms = s->key_expires_at_ms;
		out->rpm_limit = s->rpm_limit;
		out->tpm_limit = s->tpm_limit;
		out->model_policy_mode = s->model_policy_mode;
		out->routing_enabled = s->routing_enabled;
		out->routing_force_mode = s->routing_force_mode;
		r = TENANTCACHE_HIT;
	}
	shm_unlock(m);
	out->epoch = epoch;
out:
	atomic_fetch_add_explicit(r == TENANTCACHE_HIT ? &t->hits : &t->misses, 1, memory_order_relaxed);
	return r;
}

static bool
str_fits(const char *s, size_t max)
{
	return memchr(s, '\0', max) != NULL;
}

static bool
small(int v)
{
	return v >= 0 && v <= UINT8_MAX;
}

enum tenantcache_result
tenantcache_put(struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN], const struct tenant_snapshot *snap,
		int64_t now_ms)
{
	struct shm_tc_table *t = &seg->map->tc;
	if (!hash || !snap || !str_fits(snap->tenant_id, sizeof snap->tenant_id) ||
	    !str_fits(snap->slug, sizeof snap->slug) || !str_fits(snap->key_id, sizeof snap->key_id) ||
	    !small(snap->model_policy_mode) || !small(snap->routing_enabled) || !small(snap->routing_force_mode))
		return TENANTCACHE_INVALID;
	if (!table_ready(t))
		return TENANTCACHE_UNAVAILABLE;
	uint64_t h = position(seg, hash);
	unsigned stripe = (unsigned)(h % SHM_TC_STRIPES);
	pthread_mutex_t *m = &t->stripe[stripe].m;
	enum tenantcache_result r = TENANTCACHE_STORED;

	shm_lock(seg, m, repair_stripe, &stripe);
	/* Checked under the lock, so an invalidation either precedes this test (refused) or follows it, and
	 * then the slot written below already carries an old epoch. */
	int64_t epoch = current_epoch(seg);
	if (snap->epoch != epoch) {
		shm_unlock(m);
		atomic_fetch_add_explicit(&t->stale_puts, 1, memory_order_relaxed);
		return TENANTCACHE_STALE;
	}
	struct shm_tc_slot *s = find(seg, stripe, h, hash);
	if (!s) {
		struct shm_tc_slot *base = stripe_base(seg, stripe), *free_slot = NULL, *stale = NULL, *oldest = NULL;
		unsigned start = (unsigned)((h / SHM_TC_STRIPES) % PER_STRIPE);
		for (unsigned i = 0; i < SHM_TC_PROBE && !free_slot; i++) {
			struct shm_tc_slot *c = &base[(start + i) % PER_STRIPE];
			if (!c->used)
				free_slot = c;
			else if (c->epoch != epoch && (!stale || c->inserted_at_ms < stale->inserted_at_ms))
				stale = c;
			else if (!oldest || c->inserted_at_ms < oldest->inserted_at_ms)
				oldest = c;
		}
		s = free_slot ? free_slot : stale ? stale : oldest;
		if (free_slot)
			atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
		if (!free_slot && !stale)
			r = TENANTCACHE_EVICTED;
	}
	s->seq++;
	s->used = 1;
	memcpy(s->key_hash, hash, SHM_TC_HASH_LEN);
	s->epoch = epoch;
	s->inserted_at_ms = now_ms;
	s->key_expires_at_ms = snap->key_expires_at_ms;
	s->rpm_limit = snap->rpm_limit;
	s->tpm_limit = snap->tpm_limit;
	s->tenant_enabled = snap->tenant_enabled;
	s->key_enabled = snap->key_enabled;
	s->model_policy_mode = (uint8_t)snap->model_policy_mode;
	s->routing_enabled = (uint8_t)snap->routing_enabled;
	s->routing_force_mode = (uint8_t)snap->routing_force_mode;
	memcpy(s->tenant_id, snap->tenant_id, sizeof s->tenant_id);
	memcpy(s->slug, snap->slug, sizeof s->slug);
	memcpy(s->key_id, snap->key_id, sizeof s->key_id);
	s->seq++;
	shm_unlock(m);
	return r;
}

void
tenantcache_invalidate_all(struct shm_segment *seg)
{
	atomic_fetch_add_explicit(&seg->map->tc.local_epoch, 1, memory_order_acq_rel);
	atomic_fetch_add_explicit(&seg->map->tc.invalidations, 1, memory_order_relaxed);
}

bool
tenantcache_observe_generation(struct shm_segment *seg, int64_t store_gen)
{
	long long old = atomic_exchange_explicit(&seg->map->tc.generation, (long long)store_gen, memory_order_acq_rel);
	if (old == (long long)store_gen)
		return false;
	tenantcache_invalidate_all(seg);
	return true;
}

void
tenantcache_stats(struct shm_segment *seg, struct tenantcache_stats *out)
{
	struct shm_tc_table *t = &seg->map->tc;
	*out = (struct tenantcache_stats){
		.capacity = SHM_TC_SLOTS,
		.fill = atomic_load_explicit(&t->used, memory_order_relaxed),
		.hits = atomic_load_explicit(&t->hits, memory_order_relaxed),
		.misses = atomic_load_explicit(&t->misses, memory_order_relaxed),
		.evictions = atomic_load_explicit(&t->evictions, memory_order_relaxed),
		.stale_puts = atomic_load_explicit(&t->stale_puts, memory_order_relaxed),
		.invalidations = atomic_load_explicit(&t->invalidations, memory_order_relaxed),
		.repaired = atomic_load_explicit(&t->repaired, memory_order_relaxed),
		.epoch = atomic_load_explicit(&t->local_epoch, memory_order_relaxed),
		.generation = atomic_load_explicit(&t->generation, memory_order_relaxed),
	};
}
