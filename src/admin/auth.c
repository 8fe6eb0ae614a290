/* auth.c -- see auth.h. */
#include "config.h"
#include "admin/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/authtoken.h"
#include "admin/ldapauth.h"
#include "admin/rbac.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/rand.h"
#include "core/response.h"

static long
token_version(const json_t *user)
{
	json_t *v = json_object_get(user, "tokenVersion");
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

static bool
user_active(const json_t *user)
{
	json_t *v = json_object_get(user, "active");
	return !v || json_is_null(v) || json_is_true(v);   /* absent = the schema default, true */
}

static enum prism_err
unauthorized(struct request *req, const char *msg)
{
	resp_header(req, "WWW-Authenticate", "Bearer");
	return admin_fail(req, PRISM_E_UNAUTHORIZED, "%s", msg);
}

/* Fills the principal from the user document (the source of truth for role and tenants). */
static enum prism_err
principal_fill(struct request *req, const json_t *user, const char *id)
{
	struct principal *p = &req->user;
	memset(p, 0, sizeof *p);
	int role = rbac_role_parse(admin_str(user, "role"));
	if (role < 0)
		return unauthorized(req, "Invalid token");
	if (strlen(admin_str(user, "username")) >= sizeof p->username)
		return unauthorized(req, "Invalid token");   /* a name longer than ours cannot be attributed */
	snprintf(p->id, sizeof p->id, "%s", id);
	snprintf(p->username, sizeof p->username, "%s", admin_str(user, "username"));
	p->role = role;
	p->token_version = token_version(user);
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(user, "tenants"), i, t) {
		if (p->ntenants < PRISM_MAX_USER_TENANTS && store_id_valid(json_string_value(t)))
			snprintf(p->tenants[p->ntenants++], sizeof p->tenants[0], "%s", json_string_value(t));
	}
	p->authenticated = true;
	return PRISM_OK;
}

/* Verifies the bearer token of the request and loads its user; *user new reference. */
static enum prism_err
authenticate(struct request *req, struct store *s, const char *header_token, const char *purpose, json_t **user)
{
	*user = NULL;
	const char *token = header_token;
	if (!token) {
		const char *h = request_header(req, "authorization");
		if (!h || strncasecmp(h, "Bearer ", 7) != 0)
			return unauthorized(req, "No token provided");
		token = h + 7;
		while (*token == ' ')
			token++;
	}
	struct authtoken_claims c;
	char why[128] = "";
	if (authtoken_verify(req->cfg->jwt_secret, token, (int64_t)time(NULL), &c, why, sizeof why) != PRISM_OK) {
		log_debug("rid=%s token rejected: %s", req->request_id, why);
		return unauthorized(req, "Invalid token");
	}
	if (strcmp(c.purpose, purpose) != 0)
		return unauthorized(req, "Invalid token");
	char err[256] = "";
	enum prism_err rc = s->ops->get(s, COLL_USERS, c.id, user, err, sizeof err);
	if (rc == PRISM_E_NOT_FOUND)
		return unauthorized(req, "Invalid token");
	if (rc)
		return admin_store_fail(req, rc, "user lookup failed", err);
	if (!user_active(*user))
		rc = unauthorized(req, "Account deactivated");
	else if (token_version(*user) != c.token_version)
		rc = unauthorized(req, "Token revoked");
	else
		rc = principal_fill(req, *user, c.id);
	if (rc) {
		json_decref(*user);
		*user = NULL;
	}
	return rc;
}

enum prism_err
auth_require(struct request *req, unsigned perm)
{
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	json_t *user = NULL;
	err = authenticate(req, s, NULL, "", &user);
	json_decref(user);
	if (err)
		return err;
	if (!(perm & PERM(req->user.role))) {
		char roles[160];
		rbac_describe(perm, roles, sizeof roles);
		return admin_fail(req, PRISM_E_FORBIDDEN, "Access denied. Required role: %s", roles);
	}
	return PRISM_OK;
}

enum prism_err
auth_username_normalise(struct request *req, const char *in, char *out, size_t outlen)
{
	while (isspace((unsigned char)*in))
		in++;
	size_t len = strlen(in);
	while (len && isspace((unsigned char)in[len - 1]))
		len--;
	if (len == 0 || len > PRISM_MAX_USERNAME || len >= outlen)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "username: must be 1 to %d characters", PRISM_MAX_USERNAME);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (!isalnum(ch) && !strchr("._@+-", ch))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "username: only letters, digits and . _ @ + - are allowed");
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	return PRISM_OK;
}

enum prism_err
auth_password_check(struct request *req, const char *field, const char *password)
{
	size_t len = strlen(password);
	if (len < 8)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be at least 8 characters", field);
	if (len > CRYPTO_PASSWORD_MAX)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be at most %d bytes", field, CRYPTO_PASSWORD_MAX);
	return PRISM_OK;
}

enum prism_err
auth_revoke(struct request *req, struct store *s, const char *user_id, long *tv)
{
	char err[256] = "";
	for (int attempt = 0; attempt < 5; attempt++) {
		json_t *user = NULL;
		enum prism_err rc = s->ops->get(s, COLL_USERS, user_id, &user, err, sizeof err);
		if (rc)
			return admin_store_fail(req, rc, "User not found", err);
		long v = token_version(user) + 1;
		long ver = (long)json_integer_value(json_object_get(user, "__v"));
		json_object_set_new(user, "tokenVersion", json_integer(v));
		rc = s->ops->update(s, COLL_USERS, user_id, user, ver, NULL, err, sizeof err);
		json_decref(user);
		if (rc == PRISM_OK) {
			if (tv)
				*tv = v;
			return PRISM_OK;
		}
		if (rc != PRISM_E_CONFLICT)
			return admin_store_fail(req, rc, "User not found", err);
	}
	return admin_fail(req, PRISM_E_CONFLICT, "the user was changed concurrently; try again");
}

enum prism_err
auth_issue(struct request *req, const json_t *user, char **out, char expires[32])
{
	struct authtoken_claims c = { 0 };
	snprintf(c.id, sizeof c.id, "%s", admin_str(user, "_id"));
	snprintf(c.username, sizeof c.username, "%s", admin_str(user, "username"));
	snprintf(c.role, sizeof c.role, "%s", admin_str(user, "role"));
	c.token_version = token_version(user);
	long life = req->cfg->jwt_lifetime_ms / 1000;
	clock_iso8601(((int64_t)time(NULL) + life) * 1000, expires, 32);
	json_t *tenants = json_object_get(user, "tenants");
	return authtoken_issue(req->cfg->jwt_secret, &c, json_is_array(tenants) ? tenants : NULL, life, out);
}

/* The LDAP attempt: PRISM_OK with *user (new reference) when the directory accepts the credentials. */
static enum prism_err
ldap_attempt(struct request *req, struct store *s, const char *username, const char *password, json_t **user)
{
	*user = NULL;
	json_t *cfgdoc = NULL, *t = json_true();
	struct store_cond cond = { "enabled", SOP_EQ, t };
	struct store_query q = { &cond, 1, NULL, false, 1, NULL };
	json_t *page = NULL;
	char *next = NULL, err[256] = "";
	enum prism_err rc = s->ops->find(s, COLL_LDAPCONFIGS, &q, &page, &next, err, sizeof err);
	json_decref(t);
	free(next);
	if (rc || json_array_size(page) == 0) {
		json_decref(page);
		return rc ? admin_store_fail(req, rc, "LDAP configuration unreadable", err) : PRISM_E_UNAUTHORIZED;
	}
	cfgdoc = json_incref(json_array_get(page, 0));
	json_decref(page);
	char *bindpw = NULL;
	const char *enc = admin_str(cfgdoc, "bindPassword");
	if (*enc && crypto_decrypt(req->cfg->encryption_key, req->cfg->encryption_key_previous, enc, &bindpw, NULL)) {
		log_error("rid=%s LDAP: the stored bind password does not decrypt with encryption_key", req->request_id);
		json_decref(cfgdoc);
		return PRISM_E_UNAUTHORIZED;
	}
	struct ldapauth_settings *ls = calloc(1, sizeof *ls);
	char role[32] = "", dn[512] = "";
	rc = ls ? ldapauth_settings_from_json(cfgdoc, bindpw ? bindpw : "", ls, err, sizeof err) : PRISM_E_NOMEM;
	crypto_free_secret(bindpw);
	json_decref(cfgdoc);
	if (rc == PRISM_OK)
		rc = ldapauth_login(ls, username, password, role, sizeof role, dn, sizeof dn, err, sizeof err);
	if (ls) {
		memset(ls->bind_password, 0, sizeof ls->bind_password);
		free(ls);
	}
	if (rc) {
		if (rc != PRISM_E_UNAUTHORIZED)
			log_warn("rid=%s LDAP login of %s failed: %s", req->request_id, username, err);
		return PRISM_E_UNAUTHORIZED;
	}
	/* The directory said yes: find or create the local record.  A local account of the same name is not
	 * taken over, and a deactivated LDAP account stays deactivated. */
	json_t *existing = NULL;
	rc = admin_find_one(req, s, COLL_USERS, "username", username, &existing);
	if (rc)
		return rc;
	char now[32];
	admin_now(now);
	if (existing) {
		if (strcmp(admin_str(existing, "source"), "ldap") != 0 || !user_active(existing)) {
			json_decref(existing);
			return PRISM_E_UNAUTHORIZED;
		}
		const char *id = admin_str(existing, "_id");
		char idc[25];
		snprintf(idc, sizeof idc, "%s", id);
		bool role_changed = strcmp(admin_str(existing, "role"), role) != 0;
		json_t *before = json_pack("{s:s}", "role", admin_str(existing, "role"));
		json_object_set_new(existing, "role", json_string(role));
		if (role_changed)   /* tokens issued under the old role end, as with an admin's role change */
			json_object_set_new(existing, "tokenVersion", json_integer((json_int_t)token_version(existing) + 1));
		json_object_set_new(existing, "lastLogin", json_string(now));
		json_object_set_new(existing, "ldapDn", json_string(dn));
		long ver = (long)json_integer_value(json_object_get(existing, "__v"));
		rc = s->ops->update(s, COLL_USERS, idc, existing, ver, NULL, err, sizeof err);
		if (rc) {
			json_decref(before);
			json_decref(existing);
			/* Changed meanwhile (deactivated, say): this login does not win over it. */
			return rc == PRISM_E_CONFLICT ? PRISM_E_UNAUTHORIZED : admin_store_fail(req, rc, "user update failed", err);
		}
		if (role_changed) {
			log_info("rid=%s LDAP user %s now has role %s (group mapping)", req->request_id, username, role);
			json_t *after = json_pack("{s:s}", "role", role);
			audit_record(req, "update", "user", idc, username, before, after);
			json_decref(after);
		}
		json_decref(before);
		*user = existing;
		return PRISM_OK;
	}
	json_t *doc = json_pack("{s:s, s:s, s:[], s:s, s:b, s:s, s:i, s:s}", "username", username, "role", role,
				"tenants", "source", "ldap", "active", 1, "lastLogin", now, "tokenVersion", 0, "ldapDn", dn);
	char id[25];
	rc = s->ops->insert(s, COLL_USERS, doc, id, err, sizeof err);
	if (rc) {
		json_decref(doc);
		return rc == PRISM_E_CONFLICT ? PRISM_E_UNAUTHORIZED : admin_store_fail(req, rc, "user insert failed", err);
	}
	json_object_set_new(doc, "_id", json_string(id));
	audit_record(req, "create", "user", id, username, NULL, NULL);
	*user = doc;
	return PRISM_OK;
}

/* Records the login time on the account as it is now, and only if it is still the account the password
 * was checked against (same hash, still active, same token version): a deactivation, password reset or
 * revocation that lands during the bcrypt work wins, and is never written back over.  *out: the written
 * document (new reference). */
static enum prism_err
record_login(struct request *req, struct store *s, const json_t *checked, json_t **out)
{
	*out = NULL;
	char id[25], serr[256] = "";
	snprintf(id, sizeof id, "%s", admin_str(checked, "_id"));
	for (int attempt = 0; attempt < 5; attempt++) {
		json_t *cur = NULL;
		enum prism_err err = s->ops->get(s, COLL_USERS, id, &cur, serr, sizeof serr);
		if (err == PRISM_E_NOT_FOUND)
			return PRISM_E_UNAUTHORIZED;
		if (err)
			return admin_store_fail(req, err, "user lookup failed", serr);
		if (!user_active(cur) || token_version(cur) != token_version(checked) ||
		    !json_equal(json_object_get(cur, "passwordHash"), json_object_get(checked, "passwordHash"))) {
			json_decref(cur);
			return PRISM_E_UNAUTHORIZED;
		}
		char now[32];
		admin_now(now);
		json_object_set_new(cur, "lastLogin", json_string(now));
		long ver = (long)json_integer_value(json_object_get(cur, "__v"));
		err = s->ops->update(s, COLL_USERS, id, cur, ver, NULL, serr, sizeof serr);
		if (err == PRISM_OK) {
			*out = cur;
			return PRISM_OK;
		}
		json_decref(cur);
		if (err != PRISM_E_CONFLICT)
			return admin_store_fail(req, err, "user update failed", serr);
	}
	return admin_fail(req, PRISM_E_CONFLICT, "the account is being changed; try again");
}

enum prism_err
auth_login(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *user = NULL;
	char *token = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *uname = NULL, *password = NULL;
	if (valid_string(req, body, "username", 0, 1024, &uname) || valid_string(req, body, "password", 0, 4096, &password)) {
		err = PRISM_E_BAD_REQUEST;
		goto out;
	}
	if (!uname || !*uname || !password || !*password) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "Username and password required");
		goto out;
	}
	if ((err = admin_store(req, &s)))
		goto out;
	char username[PRISM_MAX_USERNAME + 1];
	bool name_ok = auth_username_normalise(req, uname, username, sizeof username) == PRISM_OK;
	req->errdetail[0] = '\0';
	json_t *local = NULL;
	if (name_ok && (err = admin_find_one(req, s, COLL_USERS, "username", username, &local)))
		goto out;
	const char *hash = NULL;
	if (local && strcmp(admin_str(local, "source"), "ldap") != 0 && user_active(local))
		hash = json_string_value(json_object_get(local, "passwordHash"));
	/* Unknown users and LDAP users go through the same bcrypt work as a wrong password. */
	bool ok = crypto_password_verify(password, hash);
	if (ok) {
		err = record_login(req, s, local, &user);
		if (err && err != PRISM_E_UNAUTHORIZED) {
			json_decref(local);
			goto out;
		}
		err = PRISM_OK;
	} else if (name_ok && (!local || strcmp(admin_str(local, "source"), "ldap") == 0)) {
		err = ldap_attempt(req, s, username, password, &user);
		if (err && err != PRISM_E_UNAUTHORIZED) {
			json_decref(local);
			goto out;
		}
	}
	json_decref(local);
	if (!user) {
		log_info("rid=%s login failed for %.128s from %s", req->request_id, name_ok ? username : "(invalid name)",
			 req->client_ip);
		err = unauthorized(req, "Invalid credentials");
		goto out;
	}
	char expires[32];
	if ((err = auth_issue(req, user, &token, expires)))
		goto out;
	log_info("rid=%s login of %s (%s) from %s", req->request_id, admin_str(user, "username"),
		 admin_str(user, "role"), req->client_ip);
	err = admin_reply(req, 200, json_pack("{s:s, s:s, s:s, s:s}", "token", token, "username",
					      admin_str(user, "username"), "role", admin_str(user, "role"),
					      "expiresAt", expires));
out:
	if (token) {
		secure_wipe(token, strlen(token));
		free(token);
	}
	json_decref(user);
	json_decref(body);
	return err;
}

static json_t *
user_view(const json_t *user)
{
	return admin_without(user, (const char *const[]){ "passwordHash", "tokenVersion", NULL });
}

enum prism_err
auth_me(struct request *req)
{
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	json_t *user = NULL;
	char serr[256];
	err = s->ops->get(s, COLL_USERS, req->user.id, &user, serr, sizeof serr);
	if (err)
		return admin_store_fail(req, err, "User not found", serr);
	json_t *v = user_view(user);
	json_object_set_new(v, "id", json_string(req->user.id));
	json_decref(user);
	return admin_reply(req, 200, v);
}

enum prism_err
auth_logout(struct request *req)
{
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	if ((err = auth_revoke(req, s, req->user.id, NULL)))
		return err;
	log_info("rid=%s logout of %s: its tokens are revoked", req->request_id, req->user.username);
	return admin_reply(req, 200, json_pack("{s:b, s:s}", "success", 1, "message", "Logged out; all sessions of this account have ended"));
}

enum prism_err
auth_verify_own_password(struct request *req, struct store *s, const char *password)
{
	json_t *user = NULL;
	char serr[256];
	enum prism_err err = s->ops->get(s, COLL_USERS, req->user.id, &user, serr, sizeof serr);
	if (err)
		return admin_store_fail(req, err, "User not found", serr);
	bool local = strcmp(admin_str(user, "source"), "ldap") != 0;
	const char *hash = local ? json_string_value(json_object_get(user, "passwordHash")) : NULL;
	bool ok = crypto_password_verify(password, hash);
	json_decref(user);
	if (!local)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "Directory (LDAP) accounts cannot re-enter a local password");
	if (!ok)
		return admin_fail(req, PRISM_E_UNAUTHORIZED, "Invalid password");
	return PRISM_OK;
}

enum prism_err
auth_change_password(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *user = NULL;
	char *hash = NULL, *token = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *current = NULL, *fresh = NULL;
	if ((err = valid_string(req, body, "currentPassword", VF_REQUIRED, 4096, &current)) ||
	    (err = valid_string(req, body, "newPassword", VF_REQUIRED, 4096, &fresh)) ||
	    (err = auth_password_check(req, "newPassword", fresh)) || (err = admin_store(req, &s)) ||
	    (err = auth_verify_own_password(req, s, current)))
		goto out;
	if ((err = crypto_password_hash(fresh, &hash)))
		goto out;
	char serr[256];
	if ((err = s->ops->get(s, COLL_USERS, req->user.id, &user, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "User not found", serr);
		goto out;
	}
	if (token_version(user) != req->user.token_version || !user_active(user)) {
		err = unauthorized(req, "Token revoked");
		goto out;
	}
	json_object_set_new(user, "passwordHash", json_string(hash));
	json_object_set_new(user, "tokenVersion", json_integer((json_int_t)req->user.token_version + 1));
	long ver = (long)json_integer_value(json_object_get(user, "__v"));
	if ((err = s->ops->update(s, COLL_USERS, req->user.id, user, ver, NULL, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "the account was changed meanwhile; try again", serr);
		goto out;
	}
	audit_record(req, "password", "user", req->user.id, req->user.username, NULL, NULL);
	char expires[32];
	if ((err = auth_issue(req, user, &token, expires)))
		goto out;
	err = admin_reply(req, 200, json_pack("{s:b, s:s, s:s}", "success", 1, "token", token, "expiresAt", expires));
out:
	free(hash);
	free(token);
	json_decref(user);
	json_decref(body);
	return err;
}

enum prism_err
auth_verify_password(struct request *req)
{
	struct store *s;
	json_t *body = NULL;
	char *token = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *password = NULL;
	if ((err = valid_string(req, body, "password", 0, 4096, &password)))
		goto out;
	if (!password || !*password) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "Password required");
		goto out;
	}
	if ((err = admin_store(req, &s)) || (err = auth_verify_own_password(req, s, password)))
		goto out;
	struct authtoken_claims c = { 0 };
	snprintf(c.id, sizeof c.id, "%s", req->user.id);
	snprintf(c.username, sizeof c.username, "%s", req->user.username);
	snprintf(c.role, sizeof c.role, "%s", rbac_role_name(req->user.role));
	snprintf(c.purpose, sizeof c.purpose, "reauth");
	c.token_version = req->user.token_version;
	if ((err = authtoken_issue(req->cfg->jwt_secret, &c, NULL, AUTHTOKEN_REAUTH_S, &token)))
		goto out;
	char expires[32];
	clock_iso8601(((int64_t)time(NULL) + AUTHTOKEN_REAUTH_S) * 1000, expires, sizeof expires);
	err = admin_reply(req, 200, json_pack("{s:b, s:s, s:s}", "verified", 1, "reauthToken", token, "expiresAt", expires));
out:
	free(token);
	json_decref(body);
	return err;
}

bool
auth_reauthenticated(struct request *req)
{
	const char *t = request_header(req, "x-reauth-token");
	struct store *s = store_current();
	if (!t || !s)
		return false;
	json_t *user = NULL;
	struct principal saved = req->user;
	enum prism_err err = authenticate(req, s, t, "reauth", &user);
	json_decref(user);
	bool same = err == PRISM_OK && strcmp(req->user.id, saved.id) == 0;
	req->user = saved;
	req->errdetail[0] = '\0';
	return same;
}
