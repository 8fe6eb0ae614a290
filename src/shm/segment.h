/* segment.h -- the per-host POSIX shared-memory segment: creation, attachment, layout, robust locks.
 *
 * One segment per host and instance holds what must be exact across every process of the pool: rate-limit
 * windows (ratelimit.h), circuit breakers (breaker.h), metrics (metrics.h) and the tenant/API-key cache
 * (tenantcache.h).  The first process creates it (shm_open O_CREAT|O_EXCL, mode 0600), sizes it, initialises
 * every robust process-shared mutex and then publishes `ready`; every other process attaches, waits
 * (bounded) for `ready` and checks magic, layout version and size.  A segment of another layout version is
 * never read: attaching fails with a message that names the segment and tells the operator what to do.
 *
 * The layout below is the contract between builds: integers, fixed-size arrays and mutexes only (no floats,
 * no pointers), every offset fixed by the types.  Any change to a struct in this file must bump
 * SHM_LAYOUT_VERSION.  The rate-limit slot array is the only variable part: its length is chosen by the
 * creator (from size_hint) and recorded in the header.
 *
 * Locks: each table has its own robust mutexes (64 stripes for the rate-limit table, 64 for the tenant
 * cache, one for the breakers, one for the metric label table); the tenant-cache stripes are initialised by
 * their first user (tenantcache.c), not by the creator.  They are held only for a lookup and an update in
 * memory, never across I/O.  A process killed while holding one leaves it in EOWNERDEAD: the next locker
 * repairs the table (each slot carries a sequence number that is odd while an update is in progress) and
 * marks the mutex consistent before unlocking, so ENOTRECOVERABLE cannot happen.  Metric values are C11
 * atomics and need no lock.
 *
 * Ownership: shm_segment_open returns a handle owned by the caller (shm_segment_close unmaps it; the segment
 * itself lives until shm_segment_unlink).  A handle may be shared by all threads of a process, and a child
 * forked after shm_segment_open may keep using it (the mapping is MAP_SHARED).  Thread- and process-safe.
 */
#ifndef PRISM_SHM_SEGMENT_H
#define PRISM_SHM_SEGMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SHM_MAGIC            UINT64_C(0x4d5052534d534731)  /* "MPRSMSG1" */
#define SHM_LAYOUT_VERSION   2u        /* 2: tenant/API-key cache */
#define SHM_NAME_MAX         64        /* including the leading '/' and the NUL */
#define SHM_READY_WAIT_MS    3000      /* how long an attacher waits for the creator to finish */

/* Rate-limit table (see ratelimit.h for the algorithm). */
#define SHM_RL_STRIPES       64        /* lock stripes; each owns a contiguous run of slots */
#define SHM_RL_BUCKETS       64        /* ring of sub-buckets; a window spans SHM_RL_SPAN of them */
#define SHM_RL_SPAN          60
#define SHM_RL_KEY_MAX       88        /* key bytes including the NUL */
#define SHM_RL_PROBE         16        /* slots examined per lookup (within the stripe) */
#define SHM_RL_MIN_SLOTS     (SHM_RL_STRIPES * SHM_RL_PROBE)
#define SHM_RL_MAX_SLOTS     (1L << 22)
#define SHM_RL_DEFAULT_SLOTS 16384

/* Circuit breakers. */
#define SHM_BREAKERS         256       /* providers tracked per host */
#define SHM_BREAKER_ID_MAX   32        /* provider id bytes including the NUL (ids are 24 hex) */

/* Metrics. */
#define SHM_LABELS           512       /* distinct label sets; id 0 is "other" (the table was full) */
#define SHM_LABEL_MAX        160       /* one rendered label set, e.g. route="/v1/x",status="200" */
#define SHM_LABEL_INDEX      1024      /* open-addressing index over the label sets (power of two) */
#define SHM_COUNTERS         8         /* counter families */
#define SHM_HISTOGRAMS       2         /* histogram families */
#define SHM_HIST_BUCKETS     16        /* finite bounds + the +Inf bucket */

/* Tenant/API-key cache (see tenantcache.h). */
#define SHM_TC_SLOTS         4096      /* cached keys per host */
#define SHM_TC_STRIPES       64        /* lock stripes; each owns SHM_TC_SLOTS / SHM_TC_STRIPES slots */
#define SHM_TC_PROBE         16        /* slots examined per lookup (within the stripe) */
#define SHM_TC_HASH_LEN      32        /* SHA-256 of the API key */
#define SHM_TC_ID_MAX        25        /* tenant and key ids: 24 hex + NUL */
#define SHM_TC_SLUG_MAX      49        /* tenant slug: up to 48 bytes + NUL */

/* Every mutex sits alone on its cache line; the alignment also makes every table 64-byte aligned. */
struct shm_lock {
	_Alignas(64) pthread_mutex_t m;
};

struct shm_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;          /* sizeof(struct shm_layout) of the creator */
	uint64_t size;                 /* total bytes of the segment */
	int64_t created_at_ms;         /* wall clock, for `prismctl shm` */
	uint64_t hash_key[2];          /* SipHash key, random per segment: table positions are not guessable */
	uint32_t rl_slots;             /* length of the rate-limit slot array after the layout */
	int32_t creator_pid;
	atomic_uint ready;             /* 0 while the creator initialises, then 1 */
	atomic_uint workers;           /* live worker processes of the daemon; 0 when not run as one */
	atomic_long lock_recoveries;   /* EOWNERDEAD repairs, all tables */
};

/* seq: odd while a locker is writing the slot; a slot found odd after EOWNERDEAD is tombstoned. */
#define SHM_RL_EMPTY     UINT64_C(0)
#define SHM_RL_TOMBSTONE UINT64_C(1)
struct shm_rl_slot {
	uint64_t hash;                 /* SHM_RL_EMPTY, SHM_RL_TOMBSTONE or the key's hash (>= 2) */
	int64_t window_ms;
	int64_t head;                  /* absolute index of the newest bucket in the ring */
	int64_t last_ms;               /* time of the last counted hit */
	uint32_t seq;
	uint16_t keylen;
	uint16_t pad0;
	char key[SHM_RL_KEY_MAX];
	uint32_t count[SHM_RL_BUCKETS];
};

struct shm_rl_table {
	struct shm_lock stripe[SHM_RL_STRIPES];
	atomic_long untracked;         /* hits allowed because no slot could be found (table pressure) */
	atomic_long evictions;         /* expired entries replaced by new keys */
	atomic_long repaired;          /* slots tombstoned after a holder died mid-update */
};

struct shm_breaker_slot {
	char id[SHM_BREAKER_ID_MAX];   /* "" = free */
	uint32_t seq;
	int32_t state;                 /* enum breaker_state */
	int32_t failures;              /* consecutive counted failures */
	int32_t probes;                /* probes in flight (half-open) */
	int64_t opened_at_ms;
	int64_t probe_at_ms;           /* when the last probe was let through */
	int64_t cooldown_ms;           /* as last configured, so snapshots need no config */
	int64_t trips;                 /* closed -> open transitions */
};

struct shm_breaker_table {
	struct shm_lock lock;
	int32_t used;
	int32_t pad0;
	atomic_long untracked;
	struct shm_breaker_slot slot[SHM_BREAKERS];
};

struct shm_label {
	uint64_t hash;
	char text[SHM_LABEL_MAX];
};

struct shm_metrics_area {
	struct shm_lock lock;          /* serialises label insertion only */
	atomic_int nlabels;            /* published with release after the entry is written */
	atomic_int index[SHM_LABEL_INDEX];  /* 0 = empty, else label id + 1 */
	struct shm_label label[SHM_LABELS];
	atomic_uint used_c[SHM_COUNTERS][SHM_LABELS / 32];   /* which (family, label) pairs to render */
	atomic_uint used_h[SHM_HISTOGRAMS][SHM_LABELS / 32];
	atomic_long counter[SHM_COUNTERS][SHM_LABELS];
	atomic_long hist_bucket[SHM_HISTOGRAMS][SHM_LABELS][SHM_HIST_BUCKETS];  /* not cumulative */
	atomic_long hist_sum_us[SHM_HISTOGRAMS][SHM_LABELS];
};

/* seq: odd while a locker is writing the slot; a slot found odd after EOWNERDEAD is emptied.  A slot is
 * valid only while epoch equals the table's local_epoch. */
struct shm_tc_slot {
	int64_t epoch;                 /* local_epoch the snapshot was read under */
	int64_t inserted_at_ms;        /* monotonic clock */
	int64_t key_expires_at_ms;     /* wall clock; 0 = never */
	int64_t rpm_limit;
	int64_t tpm_limit;
	uint32_t seq;
	uint8_t used;                  /* 0 = free */
	uint8_t tenant_enabled;
	uint8_t key_enabled;
	uint8_t model_policy_mode;
	uint8_t routing_enabled;
	uint8_t routing_force_mode;
	uint8_t pad0[2];
	unsigned char key_hash[SHM_TC_HASH_LEN];
	char tenant_id[SHM_TC_ID_MAX];
	char key_id[SHM_TC_ID_MAX];
	char slug[SHM_TC_SLUG_MAX];
	char pad1[9];                  /* to 192 bytes: three cache lines */
};

#define SHM_TC_INIT_NONE  0u
#define SHM_TC_INIT_READY 2u
struct shm_tc_table {
	struct shm_lock stripe[SHM_TC_STRIPES];
	atomic_uint init;              /* SHM_TC_INIT_*: the stripes are set up by the first user */
	uint32_t pad0;
	atomic_llong generation;       /* the last store generation observed */
	atomic_llong local_epoch;      /* bumped by every invalidation; slots of another epoch are stale */
	atomic_long used;              /* filled slots (emptied only by a repair) */
	atomic_long hits;
	atomic_long misses;
	atomic_long evictions;         /* live or stale entries replaced by another key */
	atomic_long stale_puts;        /* puts refused because an invalidation happened meanwhile */
	atomic_long invalidations;
	atomic_long repaired;          /* slots emptied after a holder died mid-update */
	struct shm_tc_slot slot[SHM_TC_SLOTS];
};

struct shm_layout {
	struct shm_header hdr;
	struct shm_rl_table rl;
	struct shm_breaker_table br;
	struct shm_metrics_area mx;
	struct shm_tc_table tc;
	/* followed by struct shm_rl_slot[hdr.rl_slots], 64-byte aligned */
};

/* The process-local handle. */
struct shm_segment {
	struct shm_layout *map;
	struct shm_rl_slot *rl_slot;   /* borrowed, inside map */
	size_t size;
	bool created;                  /* this process created the segment */
	char name[SHM_NAME_MAX];
};

/* Creates or attaches the segment `name` ("/model-prism-..."), no other '/', shorter than SHM_NAME_MAX).
 * size_hint is the total size the creator should use; it decides how many rate-limit keys fit (0: the
 * default, 16384 keys in about 7 MiB; a small value gives the minimum, 1024 keys) and is ignored when
 * attaching (the creator's size wins).  On failure returns PRISM_E_IO or PRISM_E_CONFIG with a message for
 * the operator in err. */
enum prism_err shm_segment_open(const char *name, size_t size_hint, struct shm_segment **out, char *err,
				size_t errlen);
/* Unmaps; NULL is a no-op.  The segment stays for the other processes. */
void shm_segment_close(struct shm_segment *seg);
/* The process's segment (set by the server at start, inherited across fork); NULL when none. */
struct shm_segment *shm_segment_current(void);
void shm_segment_set_current(struct shm_segment *seg);
/* Removes the name (processes that have it mapped keep using their mapping).  A missing name is PRISM_OK. */
enum prism_err shm_segment_unlink(const char *name, char *err, size_t errlen);
/* "/model-prism-<first 12 hex of SHA-256(instance_key)>": two instances of one host never collide as long
 * as their keys differ (the caller passes e.g. the config file path and the listen address). */
enum prism_err shm_segment_default_name(const char *instance_key, char *out, size_t outlen);
/* The instance key of a pool: its configuration file (canonical path), or "listen:<spec>" when it runs
 * from the environment alone.  The server and prismctl derive the same name from it. */
bool shm_instance_key(const char *config_path, const char *listen, char *out, size_t outlen);
/* The total segment size that size_hint would produce, and the number of rate-limit slots in it. */
size_t shm_segment_size_for(size_t size_hint, uint32_t *rl_slots);

/* Locks a robust mutex of the segment.  When the previous holder died (EOWNERDEAD), calls repair(arg) with
 * the lock held, then marks the mutex consistent; returns true in that case.  Any other failure is a bug
 * and aborts. */
bool shm_lock(struct shm_segment *seg, pthread_mutex_t *m, void (*repair)(struct shm_segment *, void *),
	      void *arg);
void shm_unlock(pthread_mutex_t *m);
/* Initialises a process-shared robust mutex inside the segment (creator only); 0 or an errno value. */
int shm_mutex_init(pthread_mutex_t *m);

/* SipHash-2-4 of the bytes under the segment's random key. */
uint64_t shm_hash(const struct shm_segment *seg, const void *data, size_t len);

#endif
