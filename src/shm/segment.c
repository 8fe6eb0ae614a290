/* segment.c -- see segment.h. */
#include "config.h"
#include "shm/segment.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "shm/tenantcache.h"
#include "util/clock.h"
#include "util/rand.h"
#include "util/xalloc.h"

_Static_assert(sizeof(struct shm_lock) % 64 == 0, "lock padding");
_Static_assert(sizeof(struct shm_layout) % 64 == 0, "layout padding");
_Static_assert(sizeof(struct shm_rl_slot) % 64 == 0, "rate-limit slot padding");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "shared atomics must be lock-free (libatomic locks do not work across processes)");
_Static_assert((SHM_LABEL_INDEX & (SHM_LABEL_INDEX - 1)) == 0, "label index size must be a power of two");
_Static_assert(SHM_RL_BUCKETS > SHM_RL_SPAN, "the ring must hold a whole window plus the current bucket");

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
name_ok(const char *name)
{
	size_t n = strlen(name);
	return n >= 2 && n < SHM_NAME_MAX && name[0] == '/' && !strchr(name + 1, '/');
}

size_t
shm_segment_size_for(size_t size_hint, uint32_t *rl_slots)
{
	size_t fixed = sizeof(struct shm_layout);
	size_t slots = SHM_RL_DEFAULT_SLOTS;
	if (size_hint)
		slots = size_hint > fixed ? (size_hint - fixed) / sizeof(struct shm_rl_slot) : 0;
	slots -= slots % SHM_RL_STRIPES;
	if (slots < SHM_RL_MIN_SLOTS)
		slots = SHM_RL_MIN_SLOTS;
	if (slots > SHM_RL_MAX_SLOTS)
		slots = SHM_RL_MAX_SLOTS;
	if (rl_slots)
		*rl_slots = (uint32_t)slots;
	return fixed + slots * sizeof(struct shm_rl_slot);
}

int
shm_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (rc)
		return rc;
	if (!(rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) &&
	    !(rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)))
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc;
}

/* ftruncate zero-filled the segment: every table starts empty, so only header and mutexes need work. */
static enum prism_err
init_layout(struct shm_layout *L, size_t size, uint32_t rl_slots, char *err, size_t errlen)
{
	int rc = 0;
	for (int i = 0; i < SHM_RL_STRIPES && !rc; i++)
		rc = shm_mutex_init(&L->rl.stripe[i].m);
	if (!rc)
		rc = shm_mutex_init(&L->br.lock.m);
	if (!rc)
		rc = shm_mutex_init(&L->mx.lock.m);
	if (rc) {
		seterr(err, errlen, "cannot initialise a process-shared robust mutex: %s", strerror(rc));
		return PRISM_E_INTERNAL;
	}
	if (rand_bytes(L->hdr.hash_key, sizeof L->hdr.hash_key)) {
		seterr(err, errlen, "no randomness for the shared-memory hash key");
		return PRISM_E_INTERNAL;
	}
	/* Label id 0 is the overflow bucket; it exists from the start. */
	snprintf(L->mx.label[0].text, sizeof L->mx.label[0].text, "overflow=\"true\"");
	atomic_store_explicit(&L->mx.nlabels, 1, memory_order_relaxed);
	if (tenantcache_layout_init(&L->tc)) {
		seterr(err, errlen, "cannot initialise the tenant cache locks");
		return PRISM_E_INTERNAL;
	}
	L->hdr.magic = SHM_MAGIC;
	L->hdr.layout_version = SHM_LAYOUT_VERSION;
	L->hdr.header_size = (uint32_t)sizeof(struct shm_layout);
	L->hdr.size = size;
	L->hdr.created_at_ms = clock_realtime_ms();
	L->hdr.rl_slots = rl_slots;
	L->hdr.creator_pid = (int32_t)getpid();
	atomic_store_explicit(&L->hdr.ready, 1, memory_order_release);
	return PRISM_OK;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

#define RESET_HINT "stop every process of the old pool (a segment they left behind is removed with `prismctl shm --remove`), then start again"

/* Attaches to an existing segment: waits for the creator to size and initialise it, then checks that it
 * has our layout.  Returns PRISM_E_UNAVAILABLE when the name vanished meanwhile (the caller retries). */
static enum prism_err
attach(const char *name, struct shm_segment *seg, char *err, size_t errlen)
{
	int fd = shm_open(name, O_RDWR, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return PRISM_E_UNAVAILABLE;
		seterr(err, errlen, "shared memory %s: cannot open: %s (it must belong to the user the pool runs as)",
		       name, strerror(errno));
		return PRISM_E_IO;
	}
	enum prism_err e = PRISM_E_CONFIG;
	void *map = MAP_FAILED;
	struct stat st;
	int64_t deadline = clock_monotonic_ms() + SHM_READY_WAIT_MS;
	for (;;) {
		if (fstat(fd, &st) != 0) {
			seterr(err, errlen, "shared memory %s: fstat: %s", name, strerror(errno));
			e = PRISM_E_IO;
			goto out;
		}
		if ((size_t)st.st_size >= sizeof(struct shm_header))
			break;
		if (clock_monotonic_ms() > deadline) {
			seterr(err, errlen, "shared memory %s exists but was never sized (its creator died?): %s", name,
			       RESET_HINT);
			goto out;
		}
		sleep_ms(1);
	}
	size_t size = (size_t)st.st_size;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		seterr(err, errlen, "shared memory %s: mmap: %s", name, strerror(errno));
		e = PRISM_E_IO;
		goto out;
	}
	struct shm_layout *L = map;
	while (atomic_load_explicit(&L->hdr.ready, memory_order_acquire) != 1) {
		if (clock_monotonic_ms() > deadline) {
			seterr(err, errlen, "shared memory %s was never initialised (its creator died?): %s", name,
			       RESET_HINT);
			goto out;
		}
		sleep_ms(1);
	}
	if (L->hdr.magic != SHM_MAGIC) {
		seterr(err, errlen, "shared memory %s is not a Model Prism segment (bad magic): %s", name, RESET_HINT);
		goto out;
	}
	if (L->hdr.layout_version != SHM_LAYOUT_VERSION || L->hdr.header_size != sizeof(struct shm_layout)) {
		seterr(err, errlen,
		       "shared memory %s has layout version %u (%u-byte header) but this build uses version %u "
		       "(%zu bytes), probably left by an older or newer prism.fcgi: %s",
		       name, (unsigned)L->hdr.layout_version, (unsigned)L->hdr.header_size, SHM_LAYOUT_VERSION,
		       sizeof(struct shm_layout), RESET_HINT);
		goto out;
	}
	uint32_t slots = L->hdr.rl_slots;
	if (L->hdr.size != size || slots < SHM_RL_MIN_SLOTS || slots > SHM_RL_MAX_SLOTS ||
	    slots % SHM_RL_STRIPES != 0 || sizeof(struct shm_layout) + (size_t)slots * sizeof(struct shm_rl_slot) != size) {
		seterr(err, errlen, "shared memory %s is %zu bytes but its header says %llu bytes and %u slots: %s", name,
		       size, (unsigned long long)L->hdr.size, (unsigned)slots, RESET_HINT);
		goto out;
	}
	seg->map = L;
	seg->size = size;
	map = MAP_FAILED;
	e = PRISM_OK;
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	close(fd);
	return e;
}

static enum prism_err
create(const char *name, size_t size_hint, struct shm_segment *seg, char *err, size_t errlen)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return PRISM_E_CONFLICT;
		seterr(err, errlen, "shared memory %s: cannot create: %s", name, strerror(errno));
		return PRISM_E_IO;
	}
	enum prism_err e = PRISM_E_IO;
	uint32_t slots = 0;
	size_t size = shm_segment_size_for(size_hint, &slots);
	void *map = MAP_FAILED;
	if (ftruncate(fd, (off_t)size) != 0) {
		seterr(err, errlen, "shared memory %s: cannot size to %zu bytes: %s", name, size, strerror(errno));
		goto out;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		seterr(err, errlen, "shared memory %s: mmap: %s", name, strerror(errno));
		goto out;
	}
	e = init_layout(map, size, slots, err, errlen);
	if (e)
		goto out;
	seg->map = map;
	seg->size = size;
	seg->created = true;
	map = MAP_FAILED;
out:
	if (map != MAP_FAILED)
		munmap(map, size);
	close(fd);
	/* A half-made segment would make every attacher wait and fail: remove it. */
	if (e)
		shm_unlink(name);
	return e;
}

enum prism_err
shm_segment_open(const char *name, size_t size_hint, struct shm_segment **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!name_ok(name)) {
		seterr(err, errlen, "invalid shared memory name \"%s\" (want /name, at most %d characters)", name,
		       SHM_NAME_MAX - 1);
		return PRISM_E_CONFIG;
	}
	struct shm_segment *seg = xcalloc(1, sizeof *seg);
	snprintf(seg->name, sizeof seg->name, "%s", name);
	enum prism_err e = PRISM_E_UNAVAILABLE;
	/* Create, or attach; a segment unlinked between our two calls sends us round again. */
	for (int tries = 0; tries < 5 && e == PRISM_E_UNAVAILABLE; tries++) {
		e = create(name, size_hint, seg, err, errlen);
		if (e == PRISM_E_CONFLICT)
			e = attach(name, seg, err, errlen);
	}
	if (e == PRISM_E_UNAVAILABLE) {
		seterr(err, errlen, "shared memory %s keeps disappearing while attaching", name);
		e = PRISM_E_IO;
	}
	if (e) {
		free(seg);
		return e;
	}
	seg->rl_slot = (struct shm_rl_slot *)((char *)seg->map + sizeof(struct shm_layout));
	*out = seg;
	return PRISM_OK;
}

void
shm_segment_close(struct shm_segment *seg)
{
	if (!seg)
		return;
	munmap(seg->map, seg->size);
	free(seg);
}

bool
shm_instance_key(const char *config_path, const char *listen, char *out, size_t outlen)
{
	if (config_path && *config_path) {
		char real[PATH_MAX];
		const char *p = realpath(config_path, real) ? real : config_path;
		return snprintf(out, outlen, "config:%s", p) < (int)outlen;
	}
	return snprintf(out, outlen, "listen:%s", listen ? listen : "") < (int)outlen;
}

static _Atomic(struct shm_segment *) current_segment;

struct shm_segment *
shm_segment_current(void)
{
	return atomic_load(&current_segment);
}

void
shm_segment_set_current(struct shm_segment *seg)
{
	atomic_store(&current_segment, seg);
}

enum prism_err
shm_segment_unlink(const char *name, char *err, size_t errlen)
{
	if (!name_ok(name)) {
		seterr(err, errlen, "invalid shared memory name \"%s\"", name);
		return PRISM_E_CONFIG;
	}
	if (shm_unlink(name) != 0 && errno != ENOENT) {
		seterr(err, errlen, "shared memory %s: cannot remove: %s", name, strerror(errno));
		return PRISM_E_IO;
	}
	return PRISM_OK;
}

enum prism_err
shm_segment_default_name(const char *instance_key, char *out, size_t outlen)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	SHA256((const unsigned char *)instance_key, strlen(instance_key), md);
	hex_encode(md, 6, hex);
	int n = snprintf(out, outlen, "/model-prism-%s", hex);
	return n < 0 || (size_t)n >= outlen ? PRISM_E_TOO_LARGE : PRISM_OK;
}

bool
shm_lock(struct shm_segment *seg, pthread_mutex_t *m, void (*repair)(struct shm_segment *, void *), void *arg)
{
	int rc = pthread_mutex_lock(m);
	if (rc == 0)
		return false;
	if (rc == EOWNERDEAD) {
		/* The holder died inside its critical section: make the table consistent, then the mutex. */
		if (repair)
			repair(seg, arg);
		atomic_fetch_add_explicit(&seg->map->hdr.lock_recoveries, 1, memory_order_relaxed);
		rc = pthread_mutex_consistent(m);
		if (rc == 0)
			return true;
	}
	/* ENOTRECOVERABLE cannot happen (we always call consistent), EINVAL means a corrupt segment. */
	fprintf(stderr, "model-prism: shared memory %s: pthread_mutex_lock: %s\n", seg->name, strerror(rc));
	abort();
}

void
shm_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

/* SipHash-2-4 (Aumasson & Bernstein): keyed, so a client cannot choose keys that pile into one stripe. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                           \
	do {                                                                                               \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                  \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                     \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                     \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                  \
	} while (0)

uint64_t
shm_hash(const struct shm_segment *seg, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t k0 = seg->map->hdr.hash_key[0], k1 = seg->map->hdr.hash_key[1];
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0, v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0, v3 = UINT64_C(0x7465646279746573) ^ k1;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t m = 0;
		for (int j = 7; j >= 0; j--)
			m = (m << 8) | p[i + (size_t)j];
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}
