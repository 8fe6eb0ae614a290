/* breaker.h -- per-provider circuit breakers shared by every process of a host.
 *
 *   closed --(cfg.failures consecutive counted failures)--> open
 *   open   --(cfg.cooldown_ms elapsed; checked lazily by breaker_allow)--> half_open
 *   half_open: at most cfg.probes requests in flight are let through as probes;
 *              a probe that succeeds -> closed, a probe that fails -> open again (new cool-down).
 *
 * Which outcomes count is the caller's decision, made once in the engine: connection errors, timeouts
 * and 5xx responses are failures (they show the provider is unhealthy); 4xx, context-length overflows and
 * client aborts are not -- report them as success (the provider answered).  A probe whose process dies
 * before reporting is forgotten after one cool-down, so half-open cannot wedge.
 *
 * Slots are keyed by the provider id (the 24-hex ObjectId); SHM_BREAKERS of them, one lock.  When the table
 * is full, an unknown provider is always allowed and the event counted.  Thread- and process-safe.
 */
#ifndef PRISM_SHM_BREAKER_H
#define PRISM_SHM_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/segment.h"

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF_OPEN = 2 };
enum breaker_verdict { BREAKER_ALLOW = 0, BREAKER_ALLOW_PROBE = 1, BREAKER_DENY = 2 };

struct breaker_cfg {
	int failures;           /* consecutive counted failures that open the breaker (default 5) */
	long cooldown_ms;       /* open -> half-open after this (default 60000) */
	int probes;             /* concurrent probes in half-open (default 2) */
};
#define BREAKER_CFG_DEFAULT { 5, 60000, 2 }

struct breaker_info {
	char id[SHM_BREAKER_ID_MAX];
	enum breaker_state state;   /* effective: open whose cool-down has passed reads as half-open */
	int failures;
	int probes;
	int64_t opened_at_ms;
	int64_t trips;
};

/* now_ms is clock_monotonic_ms() (metrics rendering uses it too).
 * May a request go to provider `id` now?  BREAKER_ALLOW_PROBE means the request is a half-open probe and
 * must be reported with was_probe = true. */
enum breaker_verdict breaker_allow(struct shm_segment *seg, const char *id, int64_t now_ms,
				   const struct breaker_cfg *cfg);
/* Reports the outcome of a request that breaker_allow let through.  failure: true only for outcomes that
 * show the provider is unhealthy (see above). */
void breaker_report(struct shm_segment *seg, const char *id, bool failure, bool was_probe, int64_t now_ms,
		    const struct breaker_cfg *cfg);
/* Is the breaker of provider `id` open and still cooling down?  A peek: no probe is taken (the router and
 * the context fallback use it to leave such providers out of their choice). */
bool breaker_peek_open(struct shm_segment *seg, const char *id, int64_t now_ms);
/* The same at clock_monotonic_ms(), shaped as the router's and the context fallback's callback: seg is the
 * segment (NULL: never open). */
bool breaker_peek_open_now(void *seg, const char *id);
/* Copies up to max breakers into out (for the admin API and /metrics); returns how many. */
size_t breaker_snapshot(struct shm_segment *seg, int64_t now_ms, struct breaker_info *out, size_t max);
const char *breaker_state_name(enum breaker_state s);
/* Closes every breaker (prismctl shm --reset). */
void breaker_reset_all(struct shm_segment *seg);

#endif
