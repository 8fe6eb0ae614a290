/* check_config.c -- the configuration table, file parser, environment overrides and validation. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "util/config.h"

#define GOOD_JWT "0f3c9a7e51b2d4c6e8a0f1b3d5c7e9a1b2c3d4e5f60718293a4b5c6d7e8f9012"
#define GOOD_ENC "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"

/* A fake environment: pairs of name, value. */
static const char *fake_env[16];

static const char *
env_lookup(const char *name)
{
	for (int i = 0; fake_env[i]; i += 2)
		if (strcmp(fake_env[i], name) == 0)
			return fake_env[i + 1];
	return NULL;
}

static char tmpl[64];

static const char *
write_file(const char *text)
{
	snprintf(tmpl, sizeof tmpl, "/tmp/check_config.XXXXXX");
	int fd = mkstemp(tmpl);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmpl;
}

static void
teardown(void)
{
	if (tmpl[0])
		unlink(tmpl);
	tmpl[0] = '\0';
	memset(fake_env, 0, sizeof fake_env);
}

START_TEST(defaults_from_table)
{
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(NULL, env_lookup, &err);
	ck_assert_msg(c != NULL, "%s", buf_cstr(&err));
	ck_assert_int_eq(c->processes, 2);
	ck_assert_int_eq(c->threads, 64);
	ck_assert_int_eq(c->max_body_size, 4L * 1024 * 1024);
	ck_assert_int_eq(c->shutdown_grace_ms, 30000);
	ck_assert_int_eq(c->socket_mode, 0660);
	ck_assert_int_eq(c->role, ROLE_FULL);
	ck_assert(c->access_log);
	ck_assert(!c->offline);
	ck_assert_str_eq(c->listen, "");
	/* every key of the table has a default that parses, and a doc line */
	for (const struct cfg_def *d = config_defs; d->name; d++) {
		ck_assert_ptr_nonnull(d->doc);
		ck_assert_ptr_nonnull(d->dflt);
		ck_assert_ptr_eq(config_find(d->name), d);
	}
	/* without secrets it does not validate */
	ck_assert_int_eq(config_validate(c, &err), PRISM_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "jwt_secret is not set"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "encryption_key is not set"));
	config_release(c);
	buf_free(&err);
}
END_TEST

START_TEST(file_values)
{
	const char *path = write_file("# comment\n"
				      "  processes = 4\n"
				      "threads=16\n"
				      "max_body_size = 10m\n"
				      "shutdown_grace = 1500ms\n"
				      "role = worker\n"
				      "cors_origins = https://a.example, http://b.example:8080\n"
				      "trusted_proxies = 10.0.0.0/8 ::1\n"
				      "jwt_secret = \"" GOOD_JWT "\"\n"
				      "encryption_key = " GOOD_ENC "\n"
				      "\n");
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(path, env_lookup, &err);
	ck_assert_msg(c != NULL, "%s", buf_cstr(&err));
	ck_assert_int_eq(c->processes, 4);
	ck_assert_int_eq(c->threads, 16);
	ck_assert_int_eq(c->max_body_size, 10L * 1024 * 1024);
	ck_assert_int_eq(c->shutdown_grace_ms, 1500);
	ck_assert_int_eq(c->role, ROLE_WORKER);
	ck_assert_uint_eq(c->cors_origins.n, 2);
	ck_assert_str_eq(c->cors_origins.items[1], "http://b.example:8080");
	ck_assert_uint_eq(c->trusted_proxies.n, 2);
	ck_assert_ptr_nonnull(c->proxy_prefixes);
	ck_assert_str_eq(c->jwt_secret, GOOD_JWT);
	ck_assert_int_eq(config_validate(c, &err), PRISM_OK);
	config_release(c);
	buf_free(&err);
}
END_TEST

/* Each bad file must fail with "file:line: ..." containing the given text. */
static const struct {
	const char *text;
	int line;
	const char *why;
} bad_files[] = {
	{ "processes = 2\nbogus_key = 1\n", 2, "unknown key 'bogus_key'" },
	{ "threads = 0\n", 1, "threads: '0' is not an integer between 1 and 1024" },
	{ "threads = 8x\n", 1, "threads: '8x' is not an integer" },
	{ "threads = 99999999999999999999999\n", 1, "threads: '99999999999999999999999' is not an integer" },
	{ "\n\nrole = leader\n", 3, "role: 'leader' is not one of full control worker" },
	{ "offline = perhaps\n", 1, "offline: 'perhaps' is not a boolean" },
	{ "max_body_size = 1t\n", 1, "max_body_size: '1t' is not a size" },
	{ "max_body_size = 300m\n", 1, "max_body_size: '300m' is not a size" },
	{ "shutdown_grace = soon\n", 1, "shutdown_grace: 'soon' is not a duration" },
	{ "socket_mode = 0999\n", 1, "socket_mode: '0999' is not an octal file mode" },
	{ "threads = 4\nthreads = 5\n", 2, "duplicate key 'threads' (first set on line 1)" },
	{ "just some words\n", 1, "expected 'key = value'" },
	{ "trusted_proxies = 10.0.0.0/8, nonsense\n", 1, "trusted_proxies: 'nonsense' is not an IP address or CIDR prefix" },
	{ "cors_origins = https://a.example/path\n", 1, "cors_origins: 'https://a.example/path' is not an origin" },
	{ "data_dir = \n", 1, "data_dir: value must not be empty" },
};

START_TEST(file_errors_name_line)
{
	const char *path = write_file(bad_files[_i].text);
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(path, env_lookup, &err);
	ck_assert_ptr_null(c);
	char want[512];
	snprintf(want, sizeof want, "%s:%d: %s", path, bad_files[_i].line, bad_files[_i].why);
	ck_assert_msg(strstr(buf_cstr(&err), want) != NULL, "wanted '%s' in '%s'", want, buf_cstr(&err));
	buf_free(&err);
}
END_TEST

START_TEST(all_errors_reported)
{
	const char *path = write_file("a = 1\nthreads = x\nb = 2\n");
	struct buf err;
	buf_init(&err, 4096);
	ck_assert_ptr_null(config_load(path, env_lookup, &err));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), ":1: unknown key 'a'"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), ":2: threads:"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), ":3: unknown key 'b'"));
	buf_free(&err);
}
END_TEST

START_TEST(missing_file)
{
	struct buf err;
	buf_init(&err, 4096);
	ck_assert_ptr_null(config_load("/nonexistent/prism.conf", env_lookup, &err));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "/nonexistent/prism.conf: cannot open"));
	buf_free(&err);
}
END_TEST

START_TEST(env_overrides_file)
{
	const char *path = write_file("role = control\nlog_level = warn\njwt_secret = " GOOD_JWT "\n");
	char secret_path[] = "/tmp/check_config_secret.XXXXXX";
	int fd = mkstemp(secret_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, GOOD_ENC "\n", strlen(GOOD_ENC) + 1), (ssize_t)strlen(GOOD_ENC) + 1);
	close(fd);
	fake_env[0] = "NODE_ROLE";
	fake_env[1] = "worker";
	fake_env[2] = "LOG_LEVEL";
	fake_env[3] = "debug";
	fake_env[4] = "ENCRYPTION_KEY_FILE";
	fake_env[5] = secret_path;
	fake_env[6] = "OFFLINE";
	fake_env[7] = "true";
	fake_env[8] = "CORS_ORIGINS";
	fake_env[9] = "";                    /* empty = unset */
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(path, env_lookup, &err);
	unlink(secret_path);
	ck_assert_msg(c != NULL, "%s", buf_cstr(&err));
	ck_assert_int_eq(c->role, ROLE_WORKER);
	ck_assert_int_eq(c->log_level, 3);
	ck_assert(c->offline);
	ck_assert_str_eq(c->encryption_key, GOOD_ENC);   /* trailing newline stripped */
	ck_assert_uint_eq(c->cors_origins.n, 0);
	config_release(c);

	fake_env[0] = "NODE_ROLE";
	fake_env[1] = "boss";
	buf_reset(&err);
	ck_assert_ptr_null(config_load(path, env_lookup, &err));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "environment NODE_ROLE: 'boss' is not one of"));
	buf_free(&err);
}
END_TEST

START_TEST(secret_file_missing)
{
	fake_env[0] = "JWT_SECRET_FILE";
	fake_env[1] = "/nonexistent/jwt";
	struct buf err;
	buf_init(&err, 4096);
	ck_assert_ptr_null(config_load(NULL, env_lookup, &err));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "environment JWT_SECRET_FILE: cannot read /nonexistent/jwt"));
	buf_free(&err);
}
END_TEST

static const struct {
	const char *jwt, *enc, *role;
	int ok;
	const char *why;
} secret_cases[] = {
	{ GOOD_JWT, GOOD_ENC, "full", 1, NULL },
	{ NULL, GOOD_ENC, "worker", 1, NULL },             /* workers sign no tokens */
	{ NULL, GOOD_ENC, "control", 0, "jwt_secret is not set" },
	{ GOOD_JWT, NULL, "worker", 0, "encryption_key is not set" },
	{ "change-me-in-production", GOOD_ENC, "full", 0, "jwt_secret is a well-known default" },
	{ GOOD_JWT, "change-me-32-chars-encryption-k!", "full", 0, "encryption_key is a well-known default" },
	{ "short-secret", GOOD_ENC, "full", 0, "jwt_secret is too short (12 characters" },
	{ "abababababababababababababababababababab", GOOD_ENC, "full", 0, "too little variety" },
	{ GOOD_JWT, GOOD_JWT, "full", 0, "must differ" },
};

START_TEST(secrets_validated)
{
	int k = 0;
	if (secret_cases[_i].jwt) {
		fake_env[k++] = "JWT_SECRET";
		fake_env[k++] = secret_cases[_i].jwt;
	}
	if (secret_cases[_i].enc) {
		fake_env[k++] = "ENCRYPTION_KEY";
		fake_env[k++] = secret_cases[_i].enc;
	}
	fake_env[k++] = "NODE_ROLE";
	fake_env[k++] = secret_cases[_i].role;
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(NULL, env_lookup, &err);
	ck_assert_ptr_nonnull(c);
	enum prism_err r = config_validate(c, &err);
	if (secret_cases[_i].ok) {
		ck_assert_msg(r == PRISM_OK, "%s", buf_cstr(&err));
	} else {
		ck_assert_int_eq(r, PRISM_E_CONFIG);
		ck_assert_msg(strstr(buf_cstr(&err), secret_cases[_i].why) != NULL, "'%s' not in '%s'",
			      secret_cases[_i].why, buf_cstr(&err));
	}
	config_release(c);
	buf_free(&err);
}
END_TEST

START_TEST(cross_key_rules)
{
	fake_env[0] = "JWT_SECRET";
	fake_env[1] = GOOD_JWT;
	fake_env[2] = "ENCRYPTION_KEY";
	fake_env[3] = GOOD_ENC;
	fake_env[4] = "CORS_ORIGINS";
	fake_env[5] = "*,https://a.example";
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(NULL, env_lookup, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(config_validate(c, &err), PRISM_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "'*' cannot be combined"));
	config_release(c);

	fake_env[5] = "*";
	buf_reset(&err);
	c = config_load(NULL, env_lookup, &err);
	ck_assert_int_eq(config_set(c, "listen", "http://0.0.0.0:80", &err), PRISM_OK);
	ck_assert_int_eq(config_set(c, "log_target", "file", &err), PRISM_OK);
	ck_assert_int_eq(config_validate(c, &err), PRISM_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "must be unix:/ABSOLUTE/PATH or tcp:HOST:PORT"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "log_target = file needs log_file"));
	ck_assert_int_eq(config_set(c, "nope", "1", &err), PRISM_E_CONFIG);
	ck_assert_int_eq(config_set(c, "threads", "0", &err), PRISM_E_CONFIG);
	config_release(c);
	buf_free(&err);
}
END_TEST

START_TEST(reload_keeps_static_keys)
{
	struct buf err, notes;
	buf_init(&err, 4096);
	buf_init(&notes, 4096);
	struct config *old = config_load(NULL, env_lookup, &err);
	struct config *fresh = config_load(NULL, env_lookup, &err);
	config_set(fresh, "threads", "32", &err);          /* static */
	config_set(fresh, "listen", "unix:/tmp/x.sock", &err);
	config_set(fresh, "log_level", "debug", &err);     /* reloadable */
	config_set(fresh, "max_body_size", "1m", &err);
	config_keep_static(fresh, old, &notes);
	ck_assert_int_eq(fresh->threads, 64);
	ck_assert_str_eq(fresh->listen, "");
	ck_assert_int_eq(fresh->log_level, 3);
	ck_assert_int_eq(fresh->max_body_size, 1024 * 1024);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&notes), "threads changed; it takes effect after a restart"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&notes), "listen changed"));
	ck_assert_ptr_null(strstr(buf_cstr(&notes), "log_level"));
	config_release(old);
	config_release(fresh);
	buf_free(&err);
	buf_free(&notes);
}
END_TEST

START_TEST(current_refcounting)
{
	struct buf err;
	buf_init(&err, 4096);
	struct config *a = config_load(NULL, env_lookup, &err);
	config_install(a);
	struct config *held = config_acquire();
	ck_assert_ptr_eq(held, a);
	struct config *b = config_load(NULL, env_lookup, &err);
	config_set(b, "threads", "3", &err);
	config_install(b);                  /* a stays alive: a request still holds it */
	ck_assert_int_eq(held->threads, 64);
	config_release(held);
	struct config *now = config_acquire();
	ck_assert_int_eq(now->threads, 3);
	config_release(now);
	config_install(NULL);
	buf_free(&err);
}
END_TEST

START_TEST(secrets_masked_when_shown)
{
	fake_env[0] = "JWT_SECRET";
	fake_env[1] = GOOD_JWT;
	struct buf err;
	buf_init(&err, 4096);
	struct config *c = config_load(NULL, env_lookup, &err);
	char v[256];
	config_format_value(c, config_find("jwt_secret"), v, sizeof v);
	ck_assert_str_eq(v, "(set)");
	config_format_value(c, config_find("encryption_key"), v, sizeof v);
	ck_assert_str_eq(v, "(unset)");
	config_format_value(c, config_find("socket_mode"), v, sizeof v);
	ck_assert_str_eq(v, "0660");
	config_release(c);
	buf_free(&err);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, defaults_from_table);
	tcase_add_test(tc, file_values);
	tcase_add_loop_test(tc, file_errors_name_line, 0, sizeof bad_files / sizeof bad_files[0]);
	tcase_add_test(tc, all_errors_reported);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, env_overrides_file);
	tcase_add_test(tc, secret_file_missing);
	tcase_add_loop_test(tc, secrets_validated, 0, sizeof secret_cases / sizeof secret_cases[0]);
	tcase_add_test(tc, cross_key_rules);
	tcase_add_test(tc, reload_keeps_static_keys);
	tcase_add_test(tc, current_refcounting);
	tcase_add_test(tc, secrets_masked_when_shown);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)
