/* check_transfer.c -- configuration export/import: validation first, all or nothing, round trips. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "store/store.h"
#include "store/transfer.h"

static struct store *st;
static char dbpath[64];
static char err[8192];

static void
setup(void)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/check_transfer.XXXXXX");
	int fd = mkstemp(dbpath);
	close(fd);
	unlink(dbpath);
	ck_assert_msg(store_sqlite_open(dbpath, 5000, &st, err, sizeof err) == PRISM_OK, "%s", err);
	int applied;
	ck_assert_int_eq(st->ops->migrate(st, &applied, err, sizeof err), PRISM_OK);
}

static void
teardown(void)
{
	store_close(st);
	char p[128];
	unlink(dbpath);
	snprintf(p, sizeof p, "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", dbpath);
	unlink(p);
}

static long
count(enum store_coll c)
{
	struct store_query q = { NULL, 0, NULL, false, 0, NULL };
	long n = -1;
	ck_assert_int_eq(st->ops->count(st, c, &q, &n, err, sizeof err), PRISM_OK);
	return n;
}

static json_t *
sample(void)
{
	return json_pack("{s:{s:s}, s:[{s:s, s:s, s:s, s:s, s:{s:{s:s}}}], s:[{s:s, s:s, s:s, s:[s]}],"
			 " s:[{s:s, s:s, s:s}], s:[{s:s, s:s, s:s, s:i}], s:{s:s, s:b}, s:[{s:s, s:i}], s:[{s:s}]}",
			 "_meta", "type", TRANSFER_TYPE,
			 "providers", "_id", "65a1b2c3d4e5f60718293a01", "name", "OpenAI", "slug", "openai", "type", "openai",
			 "config", "auth", "apiKey", "enc:00112233445566778899aabbccddeeff:00112233445566778899aabbccddeeff:abcd",
			 "tenants", "_id", "65a1b2c3d4e5f60718293a02", "slug", "team-a", "name", "Team A", "providerIds",
			 "65a1b2c3d4e5f60718293a01",
			 "routingCategories", "key", "coding", "name", "Coding", "costTier", "medium",
			 "quotas", "tenantId", "65a1b2c3d4e5f60718293a02", "quotaType", "requests_daily", "enforcement",
			 "hard_block", "limit", 100,
			 "logConfig", "logLevel", "warn", "promptLogging", 0,
			 "systemConfig", "key", "appearance", "value", 1,
			 "users", "username", "ignored");
}

START_TEST(import_then_export_round_trip)
{
	json_t *in = sample(), *summary = NULL;
	int64_t g0, g1;
	st->ops->generation(st, &g0, err, sizeof err);
	ck_assert_msg(transfer_import(st, in, false, &summary, err, sizeof err) == PRISM_OK, "%s", err);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(summary, "imported"), "tenants")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(summary, "imported"), "other")), 2);
	json_decref(summary);
	ck_assert_int_eq(count(COLL_PROVIDERS), 1);
	ck_assert_int_eq(count(COLL_TENANTS), 1);
	ck_assert_int_eq(count(COLL_ROUTINGCATEGORIES), 1);
	ck_assert_int_eq(count(COLL_QUOTAS), 1);
	ck_assert_int_eq(count(COLL_LOGCONFIGS), 1);
	ck_assert_int_eq(count(COLL_USERS), 0);              /* users are never imported */
	st->ops->generation(st, &g1, err, sizeof err);
	ck_assert_int_eq(g1, g0 + 1);                        /* other hosts notice */
	json_t *t = NULL;
	ck_assert_int_eq(st->ops->get(st, COLL_TENANTS, "65a1b2c3d4e5f60718293a02", &t, err, sizeof err), PRISM_OK);
	ck_assert_str_eq(json_string_value(json_object_get(t, "slug")), "team-a");
	json_decref(t);

	/* importing the same file again changes the documents in place */
	ck_assert_int_eq(transfer_import(st, in, false, &summary, err, sizeof err), PRISM_OK);
	json_decref(summary);
	ck_assert_int_eq(count(COLL_TENANTS), 1);
	ck_assert_int_eq(count(COLL_LOGCONFIGS), 1);
	ck_assert_int_eq(count(COLL_SYSTEMCONFIGS), 1);

	json_t *out = NULL;
	ck_assert_int_eq(transfer_export(st, &out, err, sizeof err), PRISM_OK);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "_meta"), "type")), TRANSFER_TYPE);
	ck_assert_uint_eq(json_array_size(json_object_get(out, "providers")), 1);
	/* the credential stays exactly as stored: encrypted */
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(
				 json_array_get(json_object_get(out, "providers"), 0), "config"), "auth"), "apiKey")),
			 "enc:00112233445566778899aabbccddeeff:00112233445566778899aabbccddeeff:abcd");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "logConfig"), "logLevel")), "warn");
	ck_assert(json_is_null(json_object_get(out, "chatConfig")));
	/* and the export imports cleanly into another store */
	ck_assert_int_eq(transfer_import(st, out, true, &summary, err, sizeof err), PRISM_OK);
	json_decref(summary);
	json_decref(out);
	json_decref(in);
}
END_TEST

static const struct {
	const char *json;
	const char *why;
} bad_files[] = {
	{ "{}", "_meta.type must be" },
	{ "[1]", "_meta.type must be" },
	{ "{\"_meta\":{\"type\":\"other\"}}", "_meta.type must be" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"tenants\":{}}", "tenants: must be an array" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"tenants\":[{\"slug\":\"a\"}]}", "tenants[0]: name must be a non-empty string" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"tenants\":[{\"slug\":\"a\",\"name\":\"A\",\"_id\":\"xyz\"}]}", "_id must be 24" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"tenants\":[{\"slug\":\"a\",\"name\":\"A\"},{\"slug\":\"a\",\"name\":\"B\"}]}",
	  "tenants[1]: slug 'a' appears twice" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"providers\":[{\"name\":\"P\",\"slug\":\"p\",\"type\":7}]}", "type must be a non-empty string" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"quotas\":[{\"tenantId\":\"t\",\"quotaType\":\"q\",\"limit\":\"x\"}]}", "limit must be a number" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"logConfig\":[1]}", "logConfig: must be an object or null" },
	{ "{\"_meta\":{\"type\":\"" TRANSFER_TYPE "\"},\"systemConfig\":[{\"key\":\"prism_generation\",\"value\":9}]}", "reserved" },
};

START_TEST(invalid_files_change_nothing)
{
	json_t *in = json_loads(bad_files[_i].json, JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(in);
	json_t *summary = (json_t *)1;
	ck_assert_int_eq(transfer_import(st, in, false, &summary, err, sizeof err), PRISM_E_BAD_REQUEST);
	ck_assert_ptr_null(summary);
	ck_assert_msg(strstr(err, bad_files[_i].why) != NULL, "'%s' not in '%s'", bad_files[_i].why, err);
	ck_assert_int_eq(count(COLL_TENANTS), 0);
	ck_assert_int_eq(count(COLL_PROVIDERS), 0);
	json_decref(in);
}
END_TEST

START_TEST(conflict_with_existing_document)
{
	json_t *t = json_pack("{s:s, s:s}", "slug", "team-a", "name", "Existing");
	char id[25];
	ck_assert_int_eq(st->ops->insert(st, COLL_TENANTS, t, id, err, sizeof err), PRISM_OK);
	json_decref(t);
	json_t *in = sample(), *summary = NULL;
	ck_assert_int_eq(transfer_import(st, in, false, &summary, err, sizeof err), PRISM_E_BAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(err, "slug 'team-a' already belongs to"));
	ck_assert_int_eq(count(COLL_PROVIDERS), 0);          /* validated before anything was written */
	json_decref(in);
}
END_TEST

START_TEST(failure_midway_is_rolled_back)
{
	/* An existing provider that the import will change, and two quotas with the same (tenantId, quotaType):
	 * the second write fails after providers and tenants were already written. */
	json_t *p = json_pack("{s:s, s:s, s:s, s:s}", "_id", "65a1b2c3d4e5f60718293a01", "name", "Before", "slug", "openai",
			      "type", "openai");
	ck_assert_int_eq(st->ops->insert(st, COLL_PROVIDERS, p, NULL, err, sizeof err), PRISM_OK);
	json_decref(p);
	json_t *in = sample();
	json_object_set_new(json_array_get(json_object_get(in, "quotas"), 0), "_id",
			    json_string("65a1b2c3d4e5f60718293a03"));
	json_array_append_new(json_object_get(in, "quotas"), json_pack("{s:s, s:s, s:s, s:i}", "_id",
		"65a1b2c3d4e5f60718293a04", "tenantId", "65a1b2c3d4e5f60718293a02", "quotaType", "requests_daily",
		"limit", 5));
	json_t *summary = NULL;
	ck_assert_int_ne(transfer_import(st, in, false, &summary, err, sizeof err), PRISM_OK);
	ck_assert_ptr_nonnull(strstr(err, "rolled back"));
	ck_assert_int_eq(count(COLL_TENANTS), 0);
	ck_assert_int_eq(count(COLL_QUOTAS), 0);
	ck_assert_int_eq(count(COLL_ROUTINGCATEGORIES), 0);
	json_t *got = NULL;
	ck_assert_int_eq(st->ops->get(st, COLL_PROVIDERS, "65a1b2c3d4e5f60718293a01", &got, err, sizeof err), PRISM_OK);
	ck_assert_str_eq(json_string_value(json_object_get(got, "name")), "Before");
	json_decref(got);
	json_decref(in);
}
END_TEST

START_TEST(dry_run_writes_nothing)
{
	json_t *in = sample(), *summary = NULL;
	ck_assert_int_eq(transfer_import(st, in, true, &summary, err, sizeof err), PRISM_OK);
	ck_assert(json_is_true(json_object_get(summary, "dryRun")));
	ck_assert_int_eq(count(COLL_TENANTS), 0);
	json_decref(summary);
	json_decref(in);
}
END_TEST

static Suite *
transfer_suite(void)
{
	Suite *s = suite_create("transfer");
	TCase *tc = tcase_create("transfer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, import_then_export_round_trip);
	tcase_add_loop_test(tc, invalid_files_change_nothing, 0, sizeof bad_files / sizeof bad_files[0]);
	tcase_add_test(tc, conflict_with_existing_document);
	tcase_add_test(tc, failure_midway_is_rolled_back);
	tcase_add_test(tc, dry_run_writes_nothing);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(transfer_suite)
