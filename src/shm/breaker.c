/* breaker.c -- see breaker.h. */
#include "config.h"
#include "shm/breaker.h"

#include <string.h>

#include "util/clock.h"

/* After EOWNERDEAD: a slot caught mid-update is put back to closed (the safe default that only costs
 * a few more requests to a provider that may be down). */
static void
repair(struct shm_segment *seg, void *arg)
{
	(void)arg;
	struct shm_breaker_table *t = &seg->map->br;
	for (int i = 0; i < SHM_BREAKERS; i++) {
		struct shm_breaker_slot *s = &t->slot[i];
		if (s->seq & 1) {
			s->state = BREAKER_CLOSED;
			s->failures = 0;
			s->probes = 0;
			s->id[SHM_BREAKER_ID_MAX - 1] = '\0';
			s->seq++;
		}
	}
	if (t->used < 0 || t->used > SHM_BREAKERS)
		t->used = SHM_BREAKERS;
}

static struct shm_breaker_slot *
find(struct shm_breaker_table *t, const char *id, bool create)
{
	for (int i = 0; i < t->used; i++)
		if (strcmp(t->slot[i].id, id) == 0)
			return &t->slot[i];
	if (!create || t->used >= SHM_BREAKERS)
		return NULL;
	struct shm_breaker_slot *s = &t->slot[t->used];
	s->seq++;
	memset(s->id, 0, sizeof s->id);
	memcpy(s->id, id, strlen(id));
	s->state = BREAKER_CLOSED;
	s->failures = s->probes = 0;
	s->opened_at_ms = s->probe_at_ms = s->trips = 0;
	s->seq++;
	t->used++;
	return s;
}

static bool
id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	return n > 0 && n < SHM_BREAKER_ID_MAX;
}

/* open -> half-open once the cool-down is over; stale probes (their process died) are forgotten. */
static void
settle(struct shm_breaker_slot *s, int64_t now_ms)
{
	if (s->state == BREAKER_OPEN && now_ms - s->opened_at_ms >= s->cooldown_ms) {
		s->state = BREAKER_HALF_OPEN;
		s->probes = 0;
	} else if (s->state == BREAKER_HALF_OPEN && s->probes > 0 && now_ms - s->probe_at_ms >= s->cooldown_ms) {
		s->probes = 0;
	}
}

enum breaker_verdict
breaker_allow(struct shm_segment *seg, const char *id, int64_t now_ms, const struct breaker_cfg *cfg)
{
	if (!id_ok(id))
		return BREAKER_ALLOW;
	struct shm_breaker_table *t = &seg->map->br;
	enum breaker_verdict v = BREAKER_ALLOW;
	shm_lock(seg, &t->lock.m, repair, NULL);
	struct shm_breaker_slot *s = find(t, id, true);
	if (!s) {
		shm_unlock(&t->lock.m);
		atomic_fetch_add_explicit(&t->untracked, 1, memory_order_relaxed);
		return BREAKER_ALLOW;
	}
	s->seq++;
	s->cooldown_ms = cfg->cooldown_ms;
	settle(s, now_ms);
	if (s->state == BREAKER_OPEN) {
		v = BREAKER_DENY;
	} else if (s->state == BREAKER_HALF_OPEN) {
		if (s->probes < cfg->probes) {
			s->probes++;
			s->probe_at_ms = now_ms;
			v = BREAKER_ALLOW_PROBE;
		} else {
			v = BREAKER_DENY;
		}
	}
	s->seq++;
	shm_unlock(&t->lock.m);
	return v;
}

void
breaker_report(struct shm_segment *seg, const char *id, bool failure, bool was_probe, int64_t now_ms,
	       const struct breaker_cfg *cfg)
{
	if (!id_ok(id))
		return;
	struct shm_breaker_table *t = &seg->map->br;
	shm_lock(seg, &t->lock.m, repair, NULL);
	struct shm_breaker_slot *s = find(t, id, true);
	if (!s) {
		shm_unlock(&t->lock.m);
		return;
	}
	s->seq++;
	s->cooldown_ms = cfg->cooldown_ms;
	if (was_probe && s->probes > 0)
		s->probes--;
	switch ((enum breaker_state)s->state) {
	case BREAKER_CLOSED:
		if (!failure) {
			s->failures = 0;
		} else if (++s->failures >= cfg->failures) {
			s->state = BREAKER_OPEN;
			s->opened_at_ms = now_ms;
			s->trips++;
		}
		break;
	case BREAKER_HALF_OPEN:
		/* Only probes decide; a late answer to a request sent before the breaker opened does not. */
		if (!was_probe)
			break;
		if (failure) {
			s->state = BREAKER_OPEN;
			s->opened_at_ms = now_ms;
			s->probes = 0;
		} else {
			s->state = BREAKER_CLOSED;
			s->failures = 0;
			s->probes = 0;
		}
		break;
	case BREAKER_OPEN:
		/* Late answers to requests let through before the breaker opened change nothing. */
		break;
	}
	s->seq++;
	shm_unlock(&t->lock.m);
}

bool
breaker_peek_open(struct shm_segment *seg, const char *id, int64_t now_ms)
{
	if (!seg || !id)
		return false;
	struct shm_breaker_table *t = &seg->map->br;
	bool open = false;
	shm_lock(seg, &t->lock.m, repair, NULL);
	for (int i = 0; i < t->used; i++) {
		const struct shm_breaker_slot *s = &t->slot[i];
		if (strncmp(s->id, id, sizeof s->id) == 0) {
			open = s->state == BREAKER_OPEN && now_ms - s->opened_at_ms < s->cooldown_ms;
			break;
		}
	}
	shm_unlock(&t->lock.m);
	return open;
}

bool
breaker_peek_open_now(void *seg, const char *id)
{
	return breaker_peek_open(seg, id, clock_monotonic_ms());
}

size_t
breaker_snapshot(struct shm_segment *seg, int64_t now_ms, struct breaker_info *out, size_t max)
{
	struct shm_breaker_table *t = &seg->map->br;
	size_t n = 0;
	shm_lock(seg, &t->lock.m, repair, NULL);
	for (int i = 0; i < t->used && n < max; i++) {
		const struct shm_breaker_slot *s = &t->slot[i];
		struct breaker_info *b = &out[n++];
		memcpy(b->id, s->id, sizeof b->id);
		b->id[sizeof b->id - 1] = '\0';
		b->state = (enum breaker_state)s->state;
		if (b->state == BREAKER_OPEN && now_ms - s->opened_at_ms >= s->cooldown_ms)
			b->state = BREAKER_HALF_OPEN;
		b->failures = s->failures;
		b->probes = s->probes;
		b->opened_at_ms = s->opened_at_ms;
		b->trips = s->trips;
	}
	shm_unlock(&t->lock.m);
	return n;
}

const char *
breaker_state_name(enum breaker_state s)
{
	switch (s) {
	case BREAKER_CLOSED:
		return "closed";
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half_open";
	}
	return "unknown";
}

void
breaker_reset_all(struct shm_segment *seg)
{
	struct shm_breaker_table *t = &seg->map->br;
	shm_lock(seg, &t->lock.m, repair, NULL);
	for (int i = 0; i < SHM_BREAKERS; i++) {
		struct shm_breaker_slot *s = &t->slot[i];
		if (!s->id[0])
			continue;
		s->seq++;
		s->state = BREAKER_CLOSED;
		s->failures = 0;
		s->probes = 0;
		s->seq++;
	}
	shm_unlock(&t->lock.m);
}
