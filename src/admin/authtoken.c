/* authtoken.c -- see authtoken.h. */
#include "config.h"
#include "admin/authtoken.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>

#include "core/request.h"
#include "store/store.h"
#include "util/limits.h"

enum prism_err
authtoken_issue(const char *secret, const struct authtoken_claims *c, const json_t *tenants, long lifetime_s,
		char **out)
{
	*out = NULL;
	if (!secret || !*secret)
		return PRISM_E_CONFIG;
	jwt_t *jwt = NULL;
	enum prism_err err = PRISM_E_INTERNAL;
	char *tj = NULL;
	if (jwt_new(&jwt) != 0)
		return PRISM_E_NOMEM;
	int64_t now = (int64_t)time(NULL);
	json_t *t = json_object();
	json_object_set_new(t, "tenants", tenants ? json_deep_copy(tenants) : json_array());
	tj = json_dumps(t, JSON_COMPACT);
	json_decref(t);
	if (jwt_add_grant(jwt, "id", c->id) || jwt_add_grant(jwt, "username", c->username) ||
	    jwt_add_grant(jwt, "role", c->role) || !tj || jwt_add_grants_json(jwt, tj) ||
	    jwt_add_grant_int(jwt, "tv", c->token_version) || jwt_add_grant_int(jwt, "iat", (long)now) ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + lifetime_s)))
		goto out;
	if (c->purpose[0] && jwt_add_grant(jwt, "purpose", c->purpose))
		goto out;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
		goto out;
	*out = jwt_encode_str(jwt);
	err = *out ? PRISM_OK : PRISM_E_INTERNAL;
out:
	free(tj);
	jwt_free(jwt);
	return err;
}

static enum prism_err
fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return PRISM_E_UNAUTHORIZED;
}

static bool
copy_grant(jwt_t *jwt, const char *name, char *out, size_t outlen, bool required)
{
	const char *v = jwt_get_grant(jwt, name);
	if (!v) {
		out[0] = '\0';
		return !required;
	}
	if (strlen(v) >= outlen)
		return false;
	memcpy(out, v, strlen(v) + 1);
	return true;
}

enum prism_err
authtoken_verify(const char *secret, const char *token, int64_t now_s, struct authtoken_claims *c, char *err,
		 size_t errlen)
{
	memset(c, 0, sizeof *c);
	if (!secret || !*secret)
		return fail(err, errlen, "no jwt_secret configured");
	if (!token || !*token || strlen(token) > PRISM_MAX_TOKEN)
		return fail(err, errlen, "missing or oversize token");
	/* Three base64url parts, nothing else (libjwt is lenient about what it accepts). */
	if (strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(token))
		return fail(err, errlen, "malformed token");
	jwt_t *jwt = NULL;
	if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0 || !jwt)
		return fail(err, errlen, "bad signature or malformed token");
	enum prism_err rc = PRISM_E_UNAUTHORIZED;
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		snprintf(err, errlen, "algorithm is not HS256");
		goto out;
	}
	errno = 0;
	long exp = jwt_get_grant_int(jwt, "exp");
	if (errno || exp <= 0) {
		snprintf(err, errlen, "no exp claim");
		goto out;
	}
	errno = 0;
	long iat = jwt_get_grant_int(jwt, "iat");
	if (errno || iat <= 0) {
		snprintf(err, errlen, "no iat claim");
		goto out;
	}
	if ((int64_t)exp <= now_s) {
		snprintf(err, errlen, "token expired");
		goto out;
	}
	if ((int64_t)iat > now_s + AUTHTOKEN_SKEW_S) {
		snprintf(err, errlen, "token issued in the future");
		goto out;
	}
	errno = 0;
	long tv = jwt_get_grant_int(jwt, "tv");
	if (errno) {
		snprintf(err, errlen, "no token version (issued by another program?)");
		goto out;
	}
	if (!copy_grant(jwt, "id", c->id, sizeof c->id, true) || !store_id_valid(c->id) ||
	    !copy_grant(jwt, "username", c->username, sizeof c->username, true) ||
	    !copy_grant(jwt, "role", c->role, sizeof c->role, true) ||
	    !copy_grant(jwt, "purpose", c->purpose, sizeof c->purpose, false)) {
		snprintf(err, errlen, "malformed claims");
		goto out;
	}
	c->token_version = tv;
	c->iat = iat;
	c->exp = exp;
	rc = PRISM_OK;
out:
	jwt_free(jwt);
	if (rc != PRISM_OK)
		memset(c, 0, sizeof *c);
	return rc;
}
