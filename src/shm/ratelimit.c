/* ratelimit.c -- see ratelimit.h. */
#include "config.h"
#include "shm/ratelimit.h"

#include <stdio.h>
#include <string.h>

#define RING_MASK (SHM_RL_BUCKETS - 1)
_Static_assert((SHM_RL_BUCKETS & RING_MASK) == 0, "ring size must be a power of two");

static inline int64_t
bucket_width(int64_t window_ms)
{
	return (window_ms + SHM_RL_SPAN - 1) / SHM_RL_SPAN;
}

/* The oldest bucket that overlaps the window (now - W, now]. */
static inline int64_t
first_bucket(int64_t now_ms, int64_t window_ms, int64_t w)
{
	int64_t t = now_ms - window_ms + 1;
	return t <= 0 ? 0 : t / w;
}

/* The time at which bucket b stops overlapping the window. */
static inline int64_t
bucket_leaves_at(int64_t b, int64_t window_ms, int64_t w)
{
	return (b + 1) * w + window_ms - 1;
}

static inline long
ms_to_s_ceil(int64_t ms)
{
	return ms <= 0 ? 0 : (long)((ms + 999) / 1000);
}

static bool
slot_expired(const struct shm_rl_slot *s, int64_t now_ms)
{
	int64_t w = bucket_width(s->window_ms);
	return s->last_ms < 0 || s->last_ms / w < first_bucket(now_ms, s->window_ms, w);
}

static void
slot_reset(struct shm_rl_slot *s, int64_t window_ms, int64_t idx)
{
	memset(s->count, 0, sizeof s->count);
	s->window_ms = window_ms;
	s->head = idx;
	s->last_ms = -1;
}

/* Moves the ring forward to bucket idx, zeroing the buckets it skips. */
static void
slot_advance(struct shm_rl_slot *s, int64_t idx)
{
	if (idx <= s->head)
		return;
	int64_t n = idx - s->head;
	if (n > SHM_RL_BUCKETS)
		n = SHM_RL_BUCKETS;
	for (int64_t k = 1; k <= n; k++)
		s->count[(s->head + k) & RING_MASK] = 0;
	s->head = idx;
}

/* After EOWNERDEAD: a slot whose sequence number is odd was being written; forget it. */
static void
repair_stripe(struct shm_segment *seg, void *arg)
{
	unsigned stripe = *(unsigned *)arg;
	uint32_t per = seg->map->hdr.rl_slots / SHM_RL_STRIPES;
	struct shm_rl_slot *s = seg->rl_slot + (size_t)stripe * per;
	for (uint32_t i = 0; i < per; i++) {
		if (s[i].seq & 1) {
			s[i].hash = SHM_RL_TOMBSTONE;
			s[i].keylen = 0;
			s[i].key[0] = '\0';
			s[i].seq++;
			atomic_fetch_add_explicit(&seg->map->rl.repaired, 1, memory_order_relaxed);
		}
	}
}

static inline uint64_t
key_hash(const struct shm_segment *seg, const char *key, size_t len)
{
	uint64_t h = shm_hash(seg, key, len);
	return h < 2 ? h + 2 : h;   /* 0 and 1 mark empty and tombstoned slots */
}

unsigned
ratelimit_stripe_of(const struct shm_segment *seg, const char *key)
{
	return (unsigned)(key_hash(seg, key, strlen(key)) % SHM_RL_STRIPES);
}

pthread_mutex_t *
ratelimit_stripe_lock(struct shm_segment *seg, unsigned stripe)
{
	return &seg->map->rl.stripe[stripe % SHM_RL_STRIPES].m;
}

/* Finds the key's slot or claims one for it; NULL when the probe window holds only live keys. */
static struct shm_rl_slot *
find_slot(struct shm_segment *seg, unsigned stripe, uint64_t h, const char *key, size_t len, int64_t window_ms,
	  int64_t now_ms)
{
	uint32_t per = seg->map->hdr.rl_slots / SHM_RL_STRIPES;
	struct shm_rl_slot *base = seg->rl_slot + (size_t)stripe * per;
	uint32_t start = (uint32_t)((h / SHM_RL_STRIPES) % per);
	struct shm_rl_slot *free_slot = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < SHM_RL_PROBE; i++) {
		struct shm_rl_slot *s = &base[(start + i) % per];
		if (s->hash == SHM_RL_EMPTY) {
			/* Slots never become empty again, so the key cannot be further on. */
			if (!free_slot)
				free_slot = s;
			break;
		}
		if (s->hash == h && s->keylen == len && memcmp(s->key, key, len) == 0)
			return s;
		if (s->hash == SHM_RL_TOMBSTONE) {
			if (!free_slot)
				free_slot = s;
		} else if (!free_slot && slot_expired(s, now_ms) && (!oldest || s->last_ms < oldest->last_ms)) {
			oldest = s;
		}
	}
	struct shm_rl_slot *s = free_slot ? free_slot : oldest;
	if (!s)
		return NULL;
	if (!free_slot)
		atomic_fetch_add_explicit(&seg->map->rl.evictions, 1, memory_order_relaxed);
	s->seq++;
	s->hash = h;
	s->keylen = (uint16_t)len;
	memcpy(s->key, key, len);
	s->key[len] = '\0';
	slot_reset(s, window_ms, now_ms / bucket_width(window_ms));
	s->seq++;
	return s;
}

static enum prism_err
hit(struct shm_segment *seg, const char *key, long limit, long window_s, long cost, int64_t now_ms, bool force,
    struct ratelimit_result *out)
{
	size_t len = key ? strlen(key) : 0;
	if (len == 0 || len >= SHM_RL_KEY_MAX || limit < 1 || window_s < 1 || window_s > RATELIMIT_WINDOW_MAX_S ||
	    cost < 0 || now_ms < 0)
		return PRISM_E_BAD_REQUEST;
	int64_t W = (int64_t)window_s * 1000, w = bucket_width(W);
	int64_t idx = now_ms / w, lo = first_bucket(now_ms, W, w);
	uint64_t h = key_hash(seg, key, len);
	unsigned stripe = (unsigned)(h % SHM_RL_STRIPES);
	pthread_mutex_t *m = &seg->map->rl.stripe[stripe].m;
	struct ratelimit_result r = { .allowed = true, .tracked = true };

	shm_lock(seg, m, repair_stripe, &stripe);
	struct shm_rl_slot *s = find_slot(seg, stripe, h, key, len, W, now_ms);
	if (!s) {
		shm_unlock(m);
		atomic_fetch_add_explicit(&seg->map->rl.untracked, 1, memory_order_relaxed);
		r.tracked = false;
		r.used = cost;
		r.remaining = limit > cost ? limit - cost : 0;
		goto out;
	}
	s->seq++;
	if (s->window_ms != W)
		slot_reset(s, W, idx);    /* the window was reconfigured: start afresh */
	/* Another thread may have moved the ring past our `now` already: count into its newest bucket, which
	 * only makes the unit live a little longer. */
	slot_advance(s, idx);
	int64_t head = s->head, from = lo > head - (SHM_RL_BUCKETS - 1) ? lo : head - (SHM_RL_BUCKETS - 1);
	int64_t used = 0;
	for (int64_t b = from; b <= head; b++)
		used += s->count[b & RING_MASK];
	if (!force)
		r.allowed = cost == 0 ? used < limit : cost <= limit && used + cost <= limit;
	if (r.allowed && cost > 0) {
		uint32_t *c = &s->count[head & RING_MASK];
		*c = (uint64_t)*c + (uint64_t)cost > UINT32_MAX ? UINT32_MAX : *c + (uint32_t)cost;
		used += cost;
		s->last_ms = now_ms > s->last_ms ? now_ms : s->last_ms;
	}
	/* Reset: when the newest counted bucket leaves the window. */
	for (int64_t b = head; b >= from; b--) {
		if (s->count[b & RING_MASK]) {
			r.reset_s = ms_to_s_ceil(bucket_leaves_at(b, W, w) - now_ms);
			break;
		}
	}
	if (!r.allowed) {
		if (cost > limit) {
			r.retry_after_s = window_s;
		} else {
			int64_t need = cost == 0 ? used - limit + 1 : used + cost - limit, freed = 0;
			for (int64_t b = from; b <= head; b++) {
				freed += s->count[b & RING_MASK];
				if (freed >= need) {
					r.retry_after_s = ms_to_s_ceil(bucket_leaves_at(b, W, w) - now_ms);
					break;
				}
			}
			if (r.retry_after_s < 1)
				r.retry_after_s = 1;
		}
	}
	s->seq++;
	shm_unlock(m);
	r.used = (long)used;
	r.remaining = used < limit ? limit - (long)used : 0;
out:
	if (out)
		*out = r;
	return PRISM_OK;
}

enum prism_err
ratelimit_hit(struct shm_segment *seg, const char *key, long limit, long window_s, long cost, int64_t now_ms,
	      struct ratelimit_result *out)
{
	return hit(seg, key, limit, window_s, cost, now_ms, false, out);
}

enum prism_err
ratelimit_charge(struct shm_segment *seg, const char *key, long window_s, long cost, int64_t now_ms,
		 struct ratelimit_result *out)
{
	return hit(seg, key, cost > 0 ? cost : 1, window_s, cost, now_ms, true, out);
}

enum prism_err
ratelimit_ip_key(const struct netaddr *a, int v6_prefix_bits, const char *scope, char *out, size_t outlen)
{
	if (v6_prefix_bits < 1 || v6_prefix_bits > 128 || !scope || !*scope || strchr(scope, ':'))
		return PRISM_E_BAD_REQUEST;
	char text[64];
	int n;
	if (netaddr_is_v4(a)) {
		netaddr_format(a, text, sizeof text);
		n = snprintf(out, outlen, "ip:%s:%s", scope, text);
	} else {
		struct netaddr net = *a;
		for (int i = 0; i < 16; i++) {
			int keep = v6_prefix_bits - i * 8;
			if (keep <= 0)
				net.a[i] = 0;
			else if (keep < 8)
				net.a[i] &= (uint8_t)(0xff << (8 - keep));
		}
		netaddr_format(&net, text, sizeof text);
		n = snprintf(out, outlen, "ip:%s:%s/%d", scope, text, v6_prefix_bits);
	}
	return n < 0 || (size_t)n >= outlen ? PRISM_E_TOO_LARGE : PRISM_OK;
}

enum prism_err
ratelimit_headers(const struct ratelimit_result *res, long limit, long window_s, char *ratelimit, size_t rlen,
		  char *policy, size_t plen)
{
	int n = snprintf(ratelimit, rlen, "limit=%ld, remaining=%ld, reset=%ld", limit, res->remaining,
			 res->allowed ? res->reset_s : res->retry_after_s);
	if (n < 0 || (size_t)n >= rlen)
		return PRISM_E_TOO_LARGE;
	n = snprintf(policy, plen, "%ld;w=%ld", limit, window_s);
	return n < 0 || (size_t)n >= plen ? PRISM_E_TOO_LARGE : PRISM_OK;
}

/* Units counted in the slot's window at now_ms (under the stripe lock). */
static long
slot_used(const struct shm_rl_slot *s, int64_t now_ms)
{
	if (s->window_ms <= 0 || slot_expired(s, now_ms))
		return 0;
	int64_t w = bucket_width(s->window_ms), lo = first_bucket(now_ms, s->window_ms, w);
	int64_t from = lo > s->head - (SHM_RL_BUCKETS - 1) ? lo : s->head - (SHM_RL_BUCKETS - 1);
	long used = 0;
	for (int64_t b = from; b <= s->head; b++)
		used += (long)s->count[b & RING_MASK];
	return used;
}

size_t
ratelimit_top(struct shm_segment *seg, int64_t now_ms, struct ratelimit_entry *out, size_t max)
{
	size_t n = 0;
	uint32_t per = seg->map->hdr.rl_slots / SHM_RL_STRIPES;
	for (unsigned stripe = 0; stripe < SHM_RL_STRIPES && max > 0; stripe++) {
		pthread_mutex_t *m = &seg->map->rl.stripe[stripe].m;
		shm_lock(seg, m, repair_stripe, &stripe);
		struct shm_rl_slot *base = seg->rl_slot + (size_t)stripe * per;
		for (uint32_t i = 0; i < per; i++) {
			const struct shm_rl_slot *s = &base[i];
			if (s->hash < 2)
				continue;
			long used = slot_used(s, now_ms);
			if (used <= 0)
				continue;
			/* Insertion into the sorted top list. */
			size_t pos = n < max ? n : max;
			while (pos > 0 && out[pos - 1].used < used)
				pos--;
			if (pos >= max)
				continue;
			size_t last = n < max ? n : max - 1;
			memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof *out);
			snprintf(out[pos].key, sizeof out[pos].key, "%s", s->key);
			out[pos].used = used;
			out[pos].window_s = (long)(s->window_ms / 1000);
			if (n < max)
				n++;
		}
		shm_unlock(m);
	}
	return n;
}

void
ratelimit_clear(struct shm_segment *seg)
{
	uint32_t per = seg->map->hdr.rl_slots / SHM_RL_STRIPES;
	for (unsigned stripe = 0; stripe < SHM_RL_STRIPES; stripe++) {
		pthread_mutex_t *m = &seg->map->rl.stripe[stripe].m;
		shm_lock(seg, m, repair_stripe, &stripe);
		struct shm_rl_slot *base = seg->rl_slot + (size_t)stripe * per;
		for (uint32_t i = 0; i < per; i++) {
			struct shm_rl_slot *s = &base[i];
			if (s->hash < 2)
				continue;
			s->seq++;
			s->hash = SHM_RL_TOMBSTONE;   /* reusable, and a probe for the key goes on past it */
			s->keylen = 0;
			s->key[0] = '\0';
			s->seq++;
		}
		shm_unlock(m);
	}
}
