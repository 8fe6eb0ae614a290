/* check_system.c -- closing one circuit breaker, and re-encrypting stored secrets under a new key. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#define SHM_FIXTURE_PREFIX "prism-test-sys-"
#include "shm_fixture.h"

#include "admin/system.h"
#include "shm/breaker.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/crypto.h"

#define P1 "65a1b2c3d4e5f60718293a01"
#define P2 "65a1b2c3d4e5f60718293a02"

static const struct breaker_info *
find_breaker(struct breaker_info *info, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(info[i].id, id) == 0)
			return &info[i];
	return NULL;
}

static struct breaker_info
state_of(struct shm_segment *seg, const char *id, size_t *n_out)
{
	static struct breaker_info info[SHM_BREAKERS];
	size_t n = breaker_snapshot(seg, clock_monotonic_ms(), info, SHM_BREAKERS);
	if (n_out)
		*n_out = n;
	const struct breaker_info *b = find_breaker(info, n, id);
	ck_assert_msg(b != NULL, "breaker %s not tracked", id);
	return *b;
}

START_TEST(close_open_breaker)
{
	struct shm_segment *seg = seg_new(0);
	struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
	int64_t now = clock_monotonic_ms();
	for (int i = 0; i < 5; i++) {
		breaker_report(seg, P1, true, false, now, &cfg);
		breaker_report(seg, P2, true, false, now, &cfg);
	}
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_DENY);
	ck_assert(system_breaker_close(seg, P1));
	struct breaker_info b = state_of(seg, P1, NULL);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 0);
	ck_assert_int_eq(b.probes, 0);
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_ALLOW);
	/* the other breaker is untouched */
	ck_assert_int_eq(state_of(seg, P2, NULL).state, BREAKER_OPEN);
	ck_assert_int_eq(breaker_allow(seg, P2, now, &cfg), BREAKER_DENY);
	/* the breaker still works: five failures open it again */
	for (int i = 0; i < 5; i++)
		breaker_report(seg, P1, true, false, now, &cfg);
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_DENY);
	shm_segment_close(seg);
}
END_TEST

START_TEST(close_half_open_breaker_with_probes_out)
{
	struct shm_segment *seg = seg_new(0);
	struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
	int64_t now = clock_monotonic_ms();
	for (int i = 0; i < 5; i++)
		breaker_report(seg, P1, true, false, now - cfg.cooldown_ms - 1000, &cfg);
	/* cool-down over: both probes taken, the third request is refused */
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_ALLOW_PROBE);
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_DENY);
	ck_assert(system_breaker_close(seg, P1));
	struct breaker_info b = state_of(seg, P1, NULL);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.probes, 0);
	ck_assert_int_eq(breaker_allow(seg, P1, now, &cfg), BREAKER_ALLOW);
	/* the two probes answering late change nothing */
	breaker_report(seg, P1, true, true, now, &cfg);
	breaker_report(seg, P1, false, true, now, &cfg);
	ck_assert_int_eq(state_of(seg, P1, NULL).state, BREAKER_CLOSED);
	shm_segment_close(seg);
}
END_TEST

START_TEST(close_clears_failures_and_takes_no_slot)
{
	struct shm_segment *seg = seg_new(0);
	struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
	int64_t now = clock_monotonic_ms();
	for (int i = 0; i < 3; i++)
		breaker_report(seg, P1, true, false, now, &cfg);
	ck_assert_int_eq(state_of(seg, P1, NULL).failures, 3);
	ck_assert(system_breaker_close(seg, P1));
	size_t n = 0;
	ck_assert_int_eq(state_of(seg, P1, &n).failures, 0);
	ck_assert_uint_eq(n, 1);
	/* an untracked provider: nothing to close, and no slot is used for it */
	ck_assert(!system_breaker_close(seg, P2));
	state_of(seg, P1, &n);
	ck_assert_uint_eq(n, 1);
	shm_segment_close(seg);
}
END_TEST

/* --- rotation -------------------------------------------------------------------------------------------- */

static struct store *st;
static char dbpath[64];
static char serr[1024];
static const char *KEY_A = "key-a-0123456789", *KEY_B = "key-b-0123456789", *KEY_C = "key-c-0123456789";

static void
store_setup(void)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/check_system.XXXXXX");
	int fd = mkstemp(dbpath);
	close(fd);
	unlink(dbpath);
	ck_assert_msg(store_sqlite_open(dbpath, 5000, &st, serr, sizeof serr) == PRISM_OK, "%s", serr);
	int applied;
	ck_assert_int_eq(st->ops->migrate(st, &applied, serr, sizeof serr), PRISM_OK);
}

static void
store_teardown(void)
{
	store_close(st);
	char p[128];
	unlink(dbpath);
	snprintf(p, sizeof p, "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", dbpath);
	unlink(p);
}

static json_t *
enc(const char *key, const char *plain)
{
	char *e = NULL;
	ck_assert_int_eq(crypto_encrypt(key, plain, &e), PRISM_OK);
	json_t *v = json_string(e);
	free(e);
	return v;
}

/* The plaintext of v under key alone ("" when it does not open). */
static const char *
dec(const char *key, const json_t *v)
{
	static char out[256];
	char *p = NULL;
	out[0] = '\0';
	if (json_is_string(v) && crypto_decrypt(key, NULL, json_string_value(v), &p, NULL) == PRISM_OK)
		snprintf(out, sizeof out, "%s", p);
	crypto_free_secret(p);
	return out;
}

static json_t *
get(enum store_coll c, const char *id)
{
	json_t *d = NULL;
	ck_assert_int_eq(st->ops->get(st, c, id, &d, serr, sizeof serr), PRISM_OK);
	return d;
}

struct reported {
	int n;
	char last[256];
};

static void
report(void *arg, const char *collection, const char *id, const char *path, const char *why)
{
	struct reported *r = arg;
	r->n++;
	snprintf(r->last, sizeof r->last, "%s %s %s: %s", collection, id, path, why);
}

static const struct system_rotate_count *
count_of(const struct system_rotate_count *c, const char *coll)
{
	for (size_t i = 0; i < SYSTEM_ROTATE_COLLECTIONS; i++)
		if (c[i].collection && strcmp(c[i].collection, coll) == 0)
			return &c[i];
	ck_abort_msg("no counts for %s", coll);
	return NULL;
}

START_TEST(rotate_reencrypts_and_is_idempotent)
{
	char pid[25], lid[25], bad[25];
	json_t *prov = json_pack("{s:s, s:s, s:s, s:{s:{s:o, s:s}}}", "name", "P", "slug", "p", "type", "openai", "config",
				 "auth", "apiKey", enc(KEY_A, "sk-1"), "type", "api_key");
	ck_assert_int_eq(st->ops->insert(st, COLL_PROVIDERS, prov, pid, serr, sizeof serr), PRISM_OK);
	json_t *log = json_pack("{s:s, s:{s:o}, s:[o, o]}", "timestamp", "2026-01-01T00:00:00.000Z", "promptSnapshot",
				"lastUserMessage", enc(KEY_B, "already new"), "capturedPaths", enc(KEY_A, "/a"),
				enc(KEY_A, "/b"));
	ck_assert_int_eq(st->ops->insert(st, COLL_REQUESTLOGS, log, lid, serr, sizeof serr), PRISM_OK);
	json_t *lost = json_pack("{s:s, s:{s:o}}", "timestamp", "2026-01-01T00:00:00.000Z", "responseSnapshot",
				 "content", enc(KEY_C, "lost"));
	ck_assert_int_eq(st->ops->insert(st, COLL_REQUESTLOGS, lost, bad, serr, sizeof serr), PRISM_OK);

	struct system_rotate_count c[SYSTEM_ROTATE_COLLECTIONS];
	struct reported r = { 0, "" };
	/* dry run: counted, not written */
	ck_assert_int_eq(system_rotate_secrets(st, KEY_B, KEY_A, true, c, report, &r, serr, sizeof serr), PRISM_OK);
	ck_assert_int_eq(count_of(c, "providers")->rotated, 1);
	ck_assert_int_eq(count_of(c, "requestlogs")->rotated, 2);
	json_t *d = get(COLL_PROVIDERS, pid);
	ck_assert_str_eq(dec(KEY_A, store_path_get(d, "config.auth.apiKey")), "sk-1");
	json_decref(d);

	memset(&r, 0, sizeof r);
	ck_assert_int_eq(system_rotate_secrets(st, KEY_B, KEY_A, false, c, report, &r, serr, sizeof serr), PRISM_OK);
	const struct system_rotate_count *pc = count_of(c, "providers"), *lc = count_of(c, "requestlogs");
	ck_assert_int_eq(pc->documents, 1);
	ck_assert_int_eq(pc->changed, 1);
	ck_assert_int_eq(pc->rotated, 1);
	ck_assert_int_eq(lc->documents, 2);
	ck_assert_int_eq(lc->changed, 1);
	ck_assert_int_eq(lc->rotated, 2);
	ck_assert_int_eq(lc->current, 1);
	ck_assert_int_eq(lc->unreadable, 1);
	ck_assert_int_eq(r.n, 1);
	char want[128];
	snprintf(want, sizeof want, "requestlogs %s responseSnapshot.content: readable with neither", bad);
	ck_assert_msg(strncmp(r.last, want, strlen(want)) == 0, "reported: %s", r.last);

	d = get(COLL_PROVIDERS, pid);
	ck_assert_str_eq(dec(KEY_B, store_path_get(d, "config.auth.apiKey")), "sk-1");
	ck_assert_str_eq(dec(KEY_A, store_path_get(d, "config.auth.apiKey")), "");
	json_decref(d);
	d = get(COLL_REQUESTLOGS, lid);
	ck_assert_str_eq(dec(KEY_B, json_array_get(json_object_get(d, "capturedPaths"), 0)), "/a");
	ck_assert_str_eq(dec(KEY_B, json_array_get(json_object_get(d, "capturedPaths"), 1)), "/b");
	ck_assert_str_eq(dec(KEY_B, store_path_get(d, "promptSnapshot.lastUserMessage")), "already new");
	json_decref(d);
	d = get(COLL_REQUESTLOGS, bad);
	ck_assert_str_eq(dec(KEY_C, store_path_get(d, "responseSnapshot.content")), "lost");
	ck_assert_int_eq(json_integer_value(json_object_get(d, "__v")), 0);
	json_decref(d);

	/* again: nothing left to do */
	ck_assert_int_eq(system_rotate_secrets(st, KEY_B, KEY_A, false, c, NULL, NULL, serr, sizeof serr), PRISM_OK);
	ck_assert_int_eq(count_of(c, "providers")->rotated, 0);
	ck_assert_int_eq(count_of(c, "providers")->current, 1);
	ck_assert_int_eq(count_of(c, "requestlogs")->rotated, 0);
	ck_assert_int_eq(count_of(c, "requestlogs")->changed, 0);
	json_decref(prov);
	json_decref(log);
	json_decref(lost);
}
END_TEST

START_TEST(rotate_needs_a_key)
{
	struct system_rotate_count c[SYSTEM_ROTATE_COLLECTIONS];
	ck_assert_int_eq(system_rotate_secrets(st, "", KEY_A, false, c, NULL, NULL, serr, sizeof serr), PRISM_E_CONFIG);
}
END_TEST

static Suite *
system_suite(void)
{
	Suite *s = suite_create("system");
	TCase *tb = tcase_create("breakers");
	tcase_add_unchecked_fixture(tb, runner_setup, runner_teardown);
	tcase_add_checked_fixture(tb, NULL, teardown);
	tcase_add_test(tb, close_open_breaker);
	tcase_add_test(tb, close_half_open_breaker_with_probes_out);
	tcase_add_test(tb, close_clears_failures_and_takes_no_slot);
	suite_add_tcase(s, tb);
	TCase *tr = tcase_create("rotation");
	tcase_add_checked_fixture(tr, store_setup, store_teardown);
	tcase_add_test(tr, rotate_reencrypts_and_is_idempotent);
	tcase_add_test(tr, rotate_needs_a_key);
	suite_add_tcase(s, tr);
	return s;
}

CHECK_MAIN(system_suite)
