/* ratelimit.h -- sliding-window rate limits, exact across every process of a host (shared memory).
 *
 * Algorithm: a sliding window counter with sub-buckets.  Each key has a ring of SHM_RL_BUCKETS counters;
 * a window of W ms is cut into SHM_RL_SPAN (60) buckets of w = ceil(W / 60) ms (1 s for a 60 s window),
 * bucket i covering absolute time [i*w, (i+1)*w).  A hit at `now` counts every bucket that overlaps the
 * window (now - W, now]; the oldest one may overlap only partly and is counted whole.  Hence:
 *   - the guarantee is that of a true sliding window: in NO interval of length W are more than `limit`
 *     units allowed (not just in aligned fixed windows; a burst at the edge of two minutes cannot get
 *     2 x limit through);
 *   - the price is that a unit is forgotten up to one bucket (W/60) later than a perfect sliding log
 *     would forget it -- the error is always on the safe side, never an extra "allowed";
 *   - memory is fixed (384 bytes a key) and integer-only, unlike a sliding log; a GCRA/token bucket was
 *     not chosen because it allows a burst of `limit` right after a quiet period *and* refills
 *     continuously, so some W-long intervals see more than `limit`, which is not the contract.
 *
 * Table: a fixed array of slots (sized by the segment's creator) split into SHM_RL_STRIPES stripes, each
 * with its own robust mutex held only for the lookup and the update.  A key's 64-bit SipHash picks the
 * stripe and a start position; up to SHM_RL_PROBE slots of that stripe are probed, the key bytes are
 * compared in full.  Slots are never emptied, only reused: an *expired* slot (every counted bucket out of
 * its window, so its state equals that of a fresh key) may be taken over by a new key, the least recently
 * hit first.  A live slot is never evicted, because forgetting its count would allow too much.  When no
 * slot can be had, the hit is ALLOWED but untracked (result.tracked = false) and counted in the segment
 * (prism_ratelimit_untracked_total): under table pressure the limiter fails open for *new* keys only; a key
 * that has a slot keeps its exact count.
 *
 * Crash safety: a slot's sequence number is odd while it is written; when a lock holder dies, the next
 * locker tombstones any odd slot of the stripe (that one key starts a fresh window) and goes on.
 *
 * Keys are strings chosen by the caller: "tenant:rpm:<id>", "tenant:tpm:<id>", ratelimit_ip_key() output.
 * Thread- and process-safe.  No allocation.
 */
#ifndef PRISM_SHM_RATELIMIT_H
#define PRISM_SHM_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/segment.h"
#include "util/err.h"
#include "util/netaddr.h"

#define RATELIMIT_WINDOW_MAX_S  86400

struct ratelimit_result {
	bool allowed;
	bool tracked;           /* false: no slot was free, allowed without counting */
	long used;              /* units counted in the window, including this hit when allowed */
	long remaining;         /* limit - used, at least 0 */
	long reset_s;           /* seconds until every unit counted now has left the window (0 when none) */
	long retry_after_s;     /* when denied: seconds until this hit would be allowed; 0 when allowed */
};

/* Counts `cost` units (1 for a request, tokens for tokens/min) against `key` if they fit in `limit` per
 * `window_s` seconds at time now_ms (a monotonic clock shared by the host's processes,
 * clock_monotonic_ms()).  Allowed iff used + cost <= limit; cost 0 only checks (allowed while used <
 * limit).  A cost larger than limit is never allowed (retry_after_s = window_s).  Errors: PRISM_E_BAD_REQUEST
 * for an empty or too long key (>= SHM_RL_KEY_MAX), limit < 1, window_s outside 1..RATELIMIT_WINDOW_MAX_S,
 * cost < 0 or now_ms < 0. */
enum prism_err ratelimit_hit(struct shm_segment *seg, const char *key, long limit, long window_s, long cost,
			     int64_t now_ms, struct ratelimit_result *out);
/* Counts `cost` units unconditionally (e.g. the real token count once a response is done, after a
 * ratelimit_hit with cost 0 or an estimate).  out may be NULL. */
enum prism_err ratelimit_charge(struct shm_segment *seg, const char *key, long window_s, long cost, int64_t now_ms,
				struct ratelimit_result *out);

/* "ip:<scope>:<address>" for IPv4 (exact address) and "ip:<scope>:<network>/<bits>" for IPv6, grouped by
 * the first v6_prefix_bits (1..128, default 64) bits so one client cannot multiply its quota by rotating
 * addresses within its /64.  Errors: PRISM_E_BAD_REQUEST (bad bits or scope), PRISM_E_TOO_LARGE (out). */
enum prism_err ratelimit_ip_key(const struct netaddr *a, int v6_prefix_bits, const char *scope, char *out,
				size_t outlen);

/* The IETF header values, following draft-ietf-httpapi-ratelimit-headers-07 (the last version with
 * key=value syntax; -08 and later switched to named policies "name";q=..;w=.. / "name";r=..;t=..):
 *   RateLimit: limit=600, remaining=0, reset=12
 *   RateLimit-Policy: 600;w=60
 * reset is res->reset_s when allowed and res->retry_after_s when denied (so that it agrees with the
 * Retry-After field, RFC 9110, which the caller sets from res->retry_after_s).  Errors: PRISM_E_TOO_LARGE. */
enum prism_err ratelimit_headers(const struct ratelimit_result *res, long limit, long window_s, char *ratelimit,
				 size_t rlen, char *policy, size_t plen);

/* One tracked key and the units counted in its current window. */
struct ratelimit_entry {
	char key[SHM_RL_KEY_MAX];
	long used;
	long window_s;
};
/* The `max` keys with the most units counted in their current window, most first; returns how many. */
size_t ratelimit_top(struct shm_segment *seg, int64_t now_ms, struct ratelimit_entry *out, size_t max);
/* Forgets every window (prismctl shm --reset): safe while the pool runs, one stripe lock at a time. */
void ratelimit_clear(struct shm_segment *seg);

/* The stripe a key falls in and that stripe's mutex: for tests (kill a holder) and `prismctl shm`. */
unsigned ratelimit_stripe_of(const struct shm_segment *seg, const char *key);
pthread_mutex_t *ratelimit_stripe_lock(struct shm_segment *seg, unsigned stripe);

#endif
