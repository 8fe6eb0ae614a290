/* tenantcache.h -- the per-host tenant and API-key cache: SHA-256(key) -> tenant snapshot (shared memory).
 *
 * The gateway authenticates every request by the SHA-256 of its API key.  A hit here answers without the
 * store: who the tenant is, whether tenant and key are enabled, when the key expires, the tenant's limits
 * and its compact policy/routing settings.  A miss (or any failure of the cache) means "ask the store";
 * the cache never answers for a key it does not hold an exact, current snapshot of.
 *
 * Freshness.  A snapshot is valid only while all of these hold:
 *   - it is younger than the caller's TTL (TENANTCACHE_TTL_DEFAULT_MS, 60 s), on the monotonic clock the
 *     caller passes as now_ms (clock_monotonic_ms(), shared by the host's processes);
 *   - no local invalidation happened since it was read from the store: an admin change to a tenant, key,
 *     provider or category calls tenantcache_invalidate_all(), which bumps the table's epoch in O(1) and
 *     makes every cached snapshot stale at once for every process of the host;
 *   - the store generation did not change since: the caller polls the store's generation counter and
 *     passes it to tenantcache_observe_generation(), which invalidates everything when it differs (this is
 *     how a change made on another host reaches this one).
 * To close the race between a store read and a concurrent invalidation, a snapshot carries the epoch it was
 * read under: tenantcache_get() sets out->epoch on every call (hit or miss), the caller reads the store and
 * hands the snapshot with that epoch unchanged to tenantcache_put(), which refuses it (TENANTCACHE_STALE)
 * when the epoch moved meanwhile.  So a snapshot read before an invalidation is never cached after it.
 *
 * Disabled and expired keys.  Both are part of the snapshot, so the gateway can answer key_disabled /
 * key_expired from the cache.  Disabling a key is an admin change, hence a local invalidation: it takes
 * effect at once on this host.  Expiry is not: the caller MUST compare key_expires_at_ms (wall clock, 0 =
 * never) against clock_realtime_ms() on every hit, because a snapshot cached before the expiry stays in the
 * cache until its TTL ends.
 *
 * Table: SHM_TC_SLOTS slots in the segment, SHM_TC_STRIPES robust mutexes held only for the lookup or the
 * update.  A keyed SipHash of the key hash picks the stripe and a start slot; SHM_TC_PROBE slots are probed
 * and the full 32-byte hash is compared in constant time.  A put replaces the same key's slot, else takes a
 * free one, else the oldest stale one, else evicts the oldest one in the probe range.  Crash safety as in
 * ratelimit.h: a slot is odd-sequenced while written and emptied when its writer dies holding the lock.
 *
 * No allocation; thread- and process-safe; the snapshot is plain data owned by the caller.
 */
#ifndef PRISM_SHM_TENANTCACHE_H
#define PRISM_SHM_TENANTCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/segment.h"
#include "util/err.h"

#define TENANTCACHE_TTL_DEFAULT_MS 60000L

struct tenant_snapshot {
	char tenant_id[SHM_TC_ID_MAX];     /* 24 hex */
	char slug[SHM_TC_SLUG_MAX];
	char key_id[SHM_TC_ID_MAX];        /* 24 hex */
	bool tenant_enabled;
	bool key_enabled;
	int64_t key_expires_at_ms;         /* wall clock; 0 = never.  The caller re-checks it on every hit. */
	int64_t rpm_limit;
	int64_t tpm_limit;
	int model_policy_mode;             /* 0..255 */
	int routing_enabled;               /* 0..255 (0 or 1 today) */
	int routing_force_mode;            /* 0..255 */
	int64_t epoch;                     /* set by tenantcache_get; pass it back unchanged to tenantcache_put */
};

enum tenantcache_result {
	TENANTCACHE_HIT = 0,               /* get: *out is the current snapshot of this key */
	TENANTCACHE_MISS = 1,              /* get: absent, too old or invalidated: ask the store */
	TENANTCACHE_STORED = 2,            /* put: cached in a free, stale or the key's own slot */
	TENANTCACHE_EVICTED = 3,           /* put: cached in place of the oldest live entry of its probe range */
	TENANTCACHE_STALE = 4,             /* put: an invalidation happened since the get; not cached */
	TENANTCACHE_INVALID = 5,           /* put: a field does not fit the slot; not cached */
	TENANTCACHE_UNAVAILABLE = 6,       /* put: the table's locks are not usable; not cached */
};

struct tenantcache_stats {
	long capacity;                     /* SHM_TC_SLOTS */
	long fill;                         /* slots holding a snapshot (current or stale) */
	long hits, misses, evictions, stale_puts, invalidations, repaired;
	int64_t epoch;                     /* the current local epoch */
	int64_t generation;                /* the last store generation observed */
};

/* Looks the key hash up.  HIT fills *out; MISS leaves everything but out->epoch untouched.  Either way
 * out->epoch is the epoch to hand to tenantcache_put with the snapshot read from the store.  ttl_ms <= 0
 * disables the cache (always MISS).  Never fails otherwise: a cache that cannot be used misses. */
enum tenantcache_result tenantcache_get(struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN],
					int64_t now_ms, long ttl_ms, struct tenant_snapshot *out);
/* Caches snap (read from the store under snap->epoch) for the key hash at now_ms.  Any result other than
 * STORED or EVICTED means "not cached", which is always safe: the next request asks the store again. */
enum tenantcache_result tenantcache_put(struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN],
					const struct tenant_snapshot *snap, int64_t now_ms);
/* Makes every cached snapshot stale, for every process of the host, in O(1). */
void tenantcache_invalidate_all(struct shm_segment *seg);
/* Records the store's generation counter; when it differs from the last one recorded, invalidates
 * everything and returns true. */
bool tenantcache_observe_generation(struct shm_segment *seg, int64_t store_gen);
void tenantcache_stats(struct shm_segment *seg, struct tenantcache_stats *out);

/* Sets the table's robust mutexes up and marks it ready; the first get or put does it when the segment's
 * creator did not (a creator may call it from its layout initialisation).  Errors: PRISM_E_INTERNAL. */
enum prism_err tenantcache_layout_init(struct shm_tc_table *t);
/* The stripe a key hash falls in and that stripe's mutex: for tests (kill a holder) and `prismctl shm`. */
unsigned tenantcache_stripe_of(const struct shm_segment *seg, const unsigned char hash[SHM_TC_HASH_LEN]);
pthread_mutex_t *tenantcache_stripe_lock(struct shm_segment *seg, unsigned stripe);

#endif
