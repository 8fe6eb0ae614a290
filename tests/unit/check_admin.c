/* check_admin.c -- the control plane's building blocks: secret encryption (compatible with the original),
 * bcrypt, session tokens (what libjwt does not check), roles, the audit diff, ISO dates. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>

#include "check_main.h"
#include "admin/audit.h"
#include "admin/authtoken.h"
#include "admin/rbac.h"
#include "util/clock.h"
#include "util/crypto.h"

#define KEY "test-encryption-key-0123456789abcdef"
#define SECRET "jwt-secret-for-the-unit-tests-0123456789"

/* Written by Node's crypto exactly as the original's encrypt() does (16-byte IV, tag, hex). */
#define NODE_VECTOR "enc:000102030405060708090a0b0c0d0e0f:9bc016878acc5fe234fbc825eef28433:c683035a50de691a2cba4a55ce0f23"

START_TEST(decrypts_the_originals_format)
{
	char *out = NULL;
	bool prev = true;
	ck_assert_int_eq(crypto_decrypt(KEY, NULL, NODE_VECTOR, &out, &prev), PRISM_OK);
	ck_assert_str_eq(out, "sk-hello-w\xc3\xb6rld");
	ck_assert(!prev);
	crypto_free_secret(out);
}
END_TEST

START_TEST(encrypt_roundtrip_and_keys)
{
	char *enc = NULL, *out = NULL;
	bool prev = false;
	ck_assert_int_eq(crypto_encrypt(KEY, "provider-api-key", &enc), PRISM_OK);
	ck_assert(crypto_is_encrypted(enc));
	ck_assert_ptr_null(strstr(enc, "provider-api-key"));
	ck_assert_uint_eq(strlen(enc), 4 + 32 + 1 + 32 + 1 + 2 * strlen("provider-api-key"));
	/* Fresh IV each time. */
	char *enc2 = NULL;
	ck_assert_int_eq(crypto_encrypt(KEY, "provider-api-key", &enc2), PRISM_OK);
	ck_assert_str_ne(enc, enc2);
	ck_assert_int_eq(crypto_decrypt(KEY, NULL, enc, &out, NULL), PRISM_OK);
	ck_assert_str_eq(out, "provider-api-key");
	crypto_free_secret(out);
	/* The wrong key fails; the previous key is a fallback and says so. */
	ck_assert_int_eq(crypto_decrypt("another-key-0123456789abcdef0123", NULL, enc, &out, NULL), PRISM_E_CONFIG);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(crypto_decrypt("another-key-0123456789abcdef0123", KEY, enc, &out, &prev), PRISM_OK);
	ck_assert_str_eq(out, "provider-api-key");
	ck_assert(prev);
	crypto_free_secret(out);
	/* A tampered ciphertext or tag never decrypts. */
	enc[strlen(enc) - 1] = enc[strlen(enc) - 1] == '0' ? '1' : '0';
	ck_assert_int_eq(crypto_decrypt(KEY, NULL, enc, &out, NULL), PRISM_E_CONFIG);
	free(enc);
	free(enc2);
}
END_TEST

/* Each thread keeps the key it derived last: threads that switch between keys (one the other's prefix)
 * decrypt each value with the key given, never with the one kept, and end cleanly. */
#define KEY2 KEY "-rotated"
static char *enc_a, *enc_b;

static void *
decrypt_worker(void *arg)
{
	long fails = 0;
	for (int i = 0; i < 300; i++) {
		bool a = (i + (long)arg) % 3 != 0;
		char *out = NULL;
		if (crypto_decrypt(a ? KEY : KEY2, NULL, a ? enc_a : enc_b, &out, NULL) != PRISM_OK ||
		    strcmp(out, a ? "secret-a" : "secret-b") != 0)
			fails++;
		crypto_free_secret(out);
		out = NULL;
		if (crypto_decrypt(a ? KEY2 : KEY, NULL, a ? enc_a : enc_b, &out, NULL) != PRISM_E_CONFIG || out)
			fails++;
		crypto_free_secret(out);
	}
	return (void *)fails;
}

START_TEST(decrypt_keys_per_thread)
{
	ck_assert_int_eq(crypto_encrypt(KEY, "secret-a", &enc_a), PRISM_OK);
	ck_assert_int_eq(crypto_encrypt(KEY2, "secret-b", &enc_b), PRISM_OK);
	pthread_t th[4];
	for (long i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, decrypt_worker, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		void *fails = NULL;
		pthread_join(th[i], &fails);
		ck_assert_int_eq((long)fails, 0);
	}
	ck_assert_int_eq((long)decrypt_worker((void *)1), 0);
	free(enc_a);
	free(enc_b);
}
END_TEST

START_TEST(encrypt_edge_cases)
{
	char *out = NULL;
	/* Plaintext passes through (legacy values). */
	ck_assert_int_eq(crypto_decrypt(KEY, NULL, "plain-value", &out, NULL), PRISM_OK);
	ck_assert_str_eq(out, "plain-value");
	crypto_free_secret(out);
	/* Malformed encrypted strings. */
	const char *bad[] = { "enc:", "enc:00:11:22", "enc:zz0102030405060708090a0b0c0d0e0f:9bc016878acc5fe234fbc825eef28433:00",
			      "enc:000102030405060708090a0b0c0d0e0f:9bc016878acc5fe234fbc825eef28433:0", NODE_VECTOR ":extra" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(crypto_decrypt(KEY, NULL, bad[i], &out, NULL), PRISM_E_BAD_REQUEST);
		ck_assert_ptr_null(out);
	}
	/* A value that looks encrypted is never stored as if it were (the original stored it in clear). */
	ck_assert_int_eq(crypto_encrypt(KEY, "enc:not-really", &out), PRISM_E_BAD_REQUEST);
	ck_assert_int_eq(crypto_encrypt("", "x", &out), PRISM_E_CONFIG);
	/* The empty string encrypts and decrypts. */
	ck_assert_int_eq(crypto_encrypt(KEY, "", &out), PRISM_OK);
	char *back = NULL;
	ck_assert_int_eq(crypto_decrypt(KEY, NULL, out, &back, NULL), PRISM_OK);
	ck_assert_str_eq(back, "");
	free(out);
	free(back);
}
END_TEST

START_TEST(bcrypt_compatibility)
{
	/* Openwall's crypt_blowfish vectors, and the $2y$ spelling of the same hash. */
	ck_assert(crypto_password_verify("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	ck_assert(crypto_password_verify("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"));
	ck_assert(crypto_password_verify("U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	ck_assert(!crypto_password_verify("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	ck_assert(!crypto_password_verify("U*U", NULL));
	ck_assert(!crypto_password_verify("U*U", "$1$notbcrypt$xxxxxxxxxxxxxxxxxxxxxx"));
	ck_assert(!crypto_password_verify("", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	char *h = NULL;
	ck_assert_int_eq(crypto_password_hash("correct horse battery", &h), PRISM_OK);
	ck_assert_int_eq(strncmp(h, "$2b$12$", 7), 0);
	ck_assert_uint_eq(strlen(h), 60);
	ck_assert(crypto_password_verify("correct horse battery", h));
	ck_assert(!crypto_password_verify("correct horse batterY", h));
	free(h);
}
END_TEST

START_TEST(hashes_and_compare)
{
	char hex[CRYPTO_SHA256_HEX];
	crypto_sha256_hex("abc", 3, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_hmac_sha256_hex("key", 3, "The quick brown fox jumps over the lazy dog", 43, hex);
	ck_assert_str_eq(hex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	ck_assert(crypto_str_eq("abc", "abc"));
	ck_assert(!crypto_str_eq("abc", "abd"));
	ck_assert(!crypto_str_eq("abc", "abcd"));
	ck_assert(crypto_str_eq("", ""));
}
END_TEST

static char *
issue(const char *secret, long lifetime, const char *purpose)
{
	struct authtoken_claims c = { 0 };
	strcpy(c.id, "5f1e2d3c4b5a697887766554");
	strcpy(c.username, "alice");
	strcpy(c.role, "admin");
	strcpy(c.purpose, purpose);
	c.token_version = 3;
	char *tok = NULL;
	json_t *tenants = json_pack("[s]", "0123456789abcdef01234567");
	ck_assert_int_eq(authtoken_issue(secret, &c, tenants, lifetime, &tok), PRISM_OK);
	json_decref(tenants);
	return tok;
}

/* A token signed by libjwt with any algorithm and claims. */
static char *
forge(jwt_alg_t alg, const char *key, const char *grants_json)
{
	jwt_t *jwt = NULL;
	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grants_json(jwt, grants_json), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, key ? (const unsigned char *)key : NULL, key ? (int)strlen(key) : 0), 0);
	char *t = jwt_encode_str(jwt);
	jwt_free(jwt);
	return t;
}

START_TEST(tokens_verify)
{
	int64_t now = (int64_t)time(NULL);
	char *tok = issue(SECRET, 3600, "");
	struct authtoken_claims c;
	char err[128];
	ck_assert_int_eq(authtoken_verify(SECRET, tok, now, &c, err, sizeof err), PRISM_OK);
	ck_assert_str_eq(c.id, "5f1e2d3c4b5a697887766554");
	ck_assert_str_eq(c.username, "alice");
	ck_assert_str_eq(c.role, "admin");
	ck_assert_int_eq(c.token_version, 3);
	ck_assert_int_eq(c.exp - c.iat, 3600);
	ck_assert_str_eq(c.purpose, "");
	/* The wrong secret, an empty one, expiry, a tampered payload. */
	ck_assert_int_eq(authtoken_verify("another-secret-0123456789abcdef012345", tok, now, &c, err, sizeof err),
			 PRISM_E_UNAUTHORIZED);
	ck_assert_int_eq(authtoken_verify("", tok, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	ck_assert_int_eq(authtoken_verify(SECRET, tok, now + 3601, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	ck_assert_str_eq(err, "token expired");
	char *dot = strchr(tok, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(authtoken_verify(SECRET, tok, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(tok);
	tok = issue(SECRET, 300, "reauth");
	ck_assert_int_eq(authtoken_verify(SECRET, tok, now, &c, err, sizeof err), PRISM_OK);
	ck_assert_str_eq(c.purpose, "reauth");
	free(tok);
}
END_TEST

START_TEST(tokens_reject_what_libjwt_accepts)
{
	int64_t now = (int64_t)time(NULL);
	struct authtoken_claims c;
	char err[128], grants[256];
	snprintf(grants, sizeof grants,
		 "{\"id\":\"5f1e2d3c4b5a697887766554\",\"username\":\"a\",\"role\":\"admin\",\"tv\":0,\"iat\":%lld,\"exp\":%lld}",
		 (long long)now, (long long)now + 600);
	/* alg none, HS512 with the right secret, no exp, no tv, iat in the future. */
	char *none = forge(JWT_ALG_NONE, NULL, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, none, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(none);
	char *hs512 = forge(JWT_ALG_HS512, SECRET, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, hs512, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(hs512);
	char *good = forge(JWT_ALG_HS256, SECRET, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, good, now, &c, err, sizeof err), PRISM_OK);
	free(good);
	snprintf(grants, sizeof grants, "{\"id\":\"5f1e2d3c4b5a697887766554\",\"username\":\"a\",\"role\":\"admin\",\"tv\":0,\"iat\":%lld}",
		 (long long)now);
	char *noexp = forge(JWT_ALG_HS256, SECRET, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, noexp, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(noexp);
	/* A token of the original program: no token version, so it cannot be revoked: refused. */
	snprintf(grants, sizeof grants, "{\"id\":\"5f1e2d3c4b5a697887766554\",\"username\":\"a\",\"role\":\"admin\",\"iat\":%lld,\"exp\":%lld}",
		 (long long)now, (long long)now + 600);
	char *notv = forge(JWT_ALG_HS256, SECRET, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, notv, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(notv);
	snprintf(grants, sizeof grants, "{\"id\":\"5f1e2d3c4b5a697887766554\",\"username\":\"a\",\"role\":\"admin\",\"tv\":0,\"iat\":%lld,\"exp\":%lld}",
		 (long long)now + 3600, (long long)now + 7200);
	char *future = forge(JWT_ALG_HS256, SECRET, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, future, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(future);
	/* A bad id claim. */
	snprintf(grants, sizeof grants, "{\"id\":\"{\\\"$ne\\\":1}\",\"username\":\"a\",\"role\":\"admin\",\"tv\":0,\"iat\":%lld,\"exp\":%lld}",
		 (long long)now, (long long)now + 600);
	char *badid = forge(JWT_ALG_HS256, SECRET, grants);
	ck_assert_int_eq(authtoken_verify(SECRET, badid, now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	free(badid);
	ck_assert_int_eq(authtoken_verify(SECRET, "not a token", now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
	ck_assert_int_eq(authtoken_verify(SECRET, "", now, &c, err, sizeof err), PRISM_E_UNAUTHORIZED);
}
END_TEST

START_TEST(roles)
{
	char out[160];
	rbac_describe(PERM_READ_CONFIG, out, sizeof out);
	ck_assert_str_eq(out, "admin, maintainer or auditor");
	rbac_describe(PERM_ADMIN, out, sizeof out);
	ck_assert_str_eq(out, "admin");
	ck_assert_int_eq(rbac_role_parse("tenant-viewer"), UR_TENANT_VIEWER);
	ck_assert_int_eq(rbac_role_parse("root"), -1);
	ck_assert_int_eq(rbac_role_parse(NULL), -1);
	ck_assert_str_eq(rbac_role_name(UR_CHAT_USER), "chat-user");
	ck_assert_ptr_null(rbac_role_name(UR_COUNT));
	struct principal p = { .authenticated = true, .role = UR_TENANT_ADMIN, .ntenants = 1 };
	strcpy(p.tenants[0], "0123456789abcdef01234567");
	ck_assert(rbac_tenant_allowed(&p, "0123456789abcdef01234567"));
	ck_assert(!rbac_tenant_allowed(&p, "0123456789abcdef01234568"));
	json_t *f = rbac_tenant_filter(&p);
	ck_assert_uint_eq(json_array_size(f), 1);
	json_decref(f);
	p.role = UR_AUDITOR;
	ck_assert(rbac_tenant_allowed(&p, "0123456789abcdef01234568"));
	ck_assert_ptr_null(rbac_tenant_filter(&p));
	p.authenticated = false;
	ck_assert(!rbac_tenant_allowed(&p, "0123456789abcdef01234567"));
}
END_TEST

START_TEST(audit_masks_secrets)
{
	json_t *before = json_pack("{s:s, s:{s:s, s:{s:s, s:s}}, s:i, s:[i,i]}", "name", "OpenAI", "config", "baseUrl",
				   "https://a", "auth", "type", "api_key", "apiKey", "enc:old", "__v", 1, "list", 1, 2);
	json_t *after = json_pack("{s:s, s:{s:s, s:{s:s, s:s}}, s:i, s:[i,i,i]}", "name", "OpenAI 2", "config", "baseUrl",
				  "https://a", "auth", "type", "api_key", "apiKey", "enc:new", "__v", 2, "list", 1, 2, 3);
	json_t *d = audit_diff(before, after);
	char *s = json_dumps(d, JSON_COMPACT);
	ck_assert_ptr_null(strstr(s, "enc:"));
	ck_assert_ptr_nonnull(strstr(s, "\"field\":\"config.auth.apiKey\",\"before\":\"(set)\",\"after\":\"(changed)\""));
	ck_assert_ptr_nonnull(strstr(s, "\"field\":\"name\",\"before\":\"OpenAI\",\"after\":\"OpenAI 2\""));
	ck_assert_ptr_nonnull(strstr(s, "\"field\":\"list\""));
	ck_assert_ptr_null(strstr(s, "__v"));
	ck_assert_ptr_null(strstr(s, "baseUrl"));
	ck_assert_uint_eq(json_array_size(d), 3);
	free(s);
	json_decref(d);
	/* Secrets nested in arrays of objects are masked too. */
	json_t *b2 = json_pack("{s:[{s:s, s:s}]}", "apiKeys", "hash", "abc", "label", "x");
	json_t *a2 = json_pack("{s:[]}", "apiKeys");
	d = audit_diff(a2, b2);
	s = json_dumps(d, JSON_COMPACT);
	ck_assert_ptr_null(strstr(s, "abc"));
	free(s);
	json_decref(d);
	ck_assert(audit_is_secret_field("bindPassword"));
	ck_assert(audit_is_secret_field("secret_access_key"));
	ck_assert(!audit_is_secret_field("baseUrl"));
	json_decref(before);
	json_decref(after);
	json_decref(b2);
	json_decref(a2);
}
END_TEST

START_TEST(iso_dates)
{
	int64_t ms;
	ck_assert_int_eq(clock_parse_iso8601("2026-11-26T22:30:00.123Z", &ms), 0);
	char out[32];
	clock_iso8601(ms, out, sizeof out);
	ck_assert_str_eq(out, "2026-11-26T22:30:00.123Z");
	ck_assert_int_eq(clock_parse_iso8601("2026-11-26", &ms), 0);
	clock_iso8601(ms, out, sizeof out);
	ck_assert_str_eq(out, "2026-11-26T00:00:00.000Z");
	ck_assert_int_eq(clock_parse_iso8601("2026-11-26T22:30", &ms), 0);
	ck_assert_int_eq(clock_parse_iso8601("2026-11-26T22:30:00.5Z", &ms), 0);
	ck_assert_int_eq(ms % 1000, 500);
	const char *bad[] = { "", "2026-13-01", "2026-02-30", "26-11-26", "2026-11-26T25:00", "2026-11-26X",
			      "2026-11-26T22:30:00+01:00", "2026-11-26T22:30:00." };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(clock_parse_iso8601(bad[i], &ms) == -1, "accepted %s", bad[i]);
}
END_TEST

static Suite *
admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("admin");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, decrypts_the_originals_format);
	tcase_add_test(tc, encrypt_roundtrip_and_keys);
	tcase_add_test(tc, decrypt_keys_per_thread);
	tcase_add_test(tc, encrypt_edge_cases);
	tcase_add_test(tc, bcrypt_compatibility);
	tcase_add_test(tc, hashes_and_compare);
	tcase_add_test(tc, tokens_verify);
	tcase_add_test(tc, tokens_reject_what_libjwt_accepts);
	tcase_add_test(tc, roles);
	tcase_add_test(tc, audit_masks_secrets);
	tcase_add_test(tc, iso_dates);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(admin_suite)
