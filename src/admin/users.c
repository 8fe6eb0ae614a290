/* users.c -- see users.h. */
#include "config.h"
#include "admin/users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/auth.h"
#include "admin/rbac.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/rand.h"

#define TENANT_IN_CHUNK 500       /* ids per IN query (the store takes at most 1000) */
#define ROLLBACK_TRIES 5

/* --- document helpers -------------------------------------------------------------------------------- */

static bool
user_active(const json_t *u)
{
	json_t *v = json_object_get(u, "active");
	return !v || json_is_null(v) || json_is_true(v);   /* absent = the schema default, true */
}

static bool
user_is_admin(const json_t *u)
{
	return strcmp(admin_str(u, "role"), "admin") == 0;
}

static bool
user_active_admin(const json_t *u)
{
	return user_is_admin(u) && user_active(u);
}

static bool
user_is_ldap(const json_t *u)
{
	return strcmp(admin_str(u, "source"), "ldap") == 0;
}

static long
user_token_version(const json_t *u)
{
	json_t *v = json_object_get(u, "tokenVersion");
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* The stored __v, or -1 (no optimistic check) for a document without one. */
static long
doc_version(const json_t *d)
{
	json_t *v = json_object_get(d, "__v");
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static bool
caller_is_admin(const struct request *req)
{
	return req->user.role == UR_ADMIN;
}

static bool
is_self(const struct request *req, const char *id)
{
	return strcmp(req->user.id, id) == 0;
}

/* The tenants of `ids` (strings) that exist, as an object id -> {_id, name, slug}; *out new reference. */
static enum prism_err
tenant_lookup(struct request *req, struct store *s, const json_t *ids, json_t **out)
{
	*out = json_object();
	size_t n = json_array_size(ids);
	for (size_t start = 0; start < n; start += TENANT_IN_CHUNK) {
		json_t *chunk = json_array();
		for (size_t i = start; i < n && i < start + TENANT_IN_CHUNK; i++)
			json_array_append(chunk, json_array_get(ids, i));
		struct store_cond cond = { "_id", SOP_IN, chunk };
		json_t *docs = NULL;
		enum prism_err err = admin_find_all(req, s, COLL_TENANTS, &cond, 1, NULL, false, TENANT_IN_CHUNK, &docs);
		json_decref(chunk);
		if (err) {
			json_decref(*out);
			*out = NULL;
			return err;
		}
		size_t i;
		json_t *t;
		json_array_foreach(docs, i, t) {
			const char *id = admin_str(t, "_id");
			json_object_set_new(*out, id, json_pack("{s:s, s:s, s:s}", "_id", id, "name", admin_str(t, "name"),
								"slug", admin_str(t, "slug")));
		}
		json_decref(docs);
	}
	return PRISM_OK;
}

/* What clients see of a user: no passwordHash, no tokenVersion; with `tenants` (an id -> {_id, name, slug}
 * map) the tenant ids are populated as the original's list did (ids of deleted tenants are dropped). */
static json_t *
user_view(const json_t *u, const json_t *tenants)
{
	json_t *v = admin_without(u, (const char *const[]){ "passwordHash", "tokenVersion", NULL });
	json_t *ids = json_object_get(v, "tenants");
	if (!json_is_array(ids)) {
		json_object_set_new(v, "tenants", json_array());
		return v;
	}
	if (!tenants)
		return v;
	json_t *pop = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id) {
		json_t *t = json_is_string(id) ? json_object_get(tenants, json_string_value(id)) : NULL;
		if (t)
			json_array_append(pop, t);
	}
	json_object_set_new(v, "tenants", pop);
	return v;
}

/* Active admins: role admin and active not false (absent counts as active, like the login does). */
static enum prism_err
count_active_admins(struct request *req, struct store *s, long *n)
{
	json_t *role = json_string("admin"), *no = json_false();
	struct store_cond c[2] = { { "role", SOP_EQ, role }, { "active", SOP_EQ, no } };
	struct store_query q = { c, 1, NULL, false, 0, NULL };
	long all = 0, inactive = 0;
	char serr[256] = "";
	enum prism_err err = s->ops->count(s, COLL_USERS, &q, &all, serr, sizeof serr);
	if (!err) {
		q.nconds = 2;
		err = s->ops->count(s, COLL_USERS, &q, &inactive, serr, sizeof serr);
	}
	json_decref(role);
	json_decref(no);
	if (err)
		return admin_store_fail(req, err, "user count failed", serr);
	*n = all - inactive;
	return PRISM_OK;
}

/* The tenants field of a body: a list of existing tenant ids, duplicates dropped; *out new reference (NULL
 * when the field is absent). */
static enum prism_err
read_tenants(struct request *req, struct store *s, const json_t *body, json_t **out)
{
	*out = NULL;
	json_t *ids = NULL;
	enum prism_err err = valid_id_array(req, body, "tenants", 0, PRISM_MAX_USER_TENANTS, &ids);
	if (err)
		return err;
	if (!ids) {
		if (json_is_null(json_object_get(body, "tenants")))
			*out = json_array();   /* null clears the assignment */
		return PRISM_OK;
	}
	json_t *uniq = json_array(), *found = NULL;
	size_t i, j;
	json_t *e, *f;
	json_array_foreach(ids, i, e) {
		bool dup = false;
		json_array_foreach(uniq, j, f)
			dup = dup || strcmp(json_string_value(e), json_string_value(f)) == 0;
		if (!dup)
			json_array_append_new(uniq, json_string(json_string_value(e)));
	}
	if ((err = tenant_lookup(req, s, uniq, &found))) {
		json_decref(uniq);
		return err;
	}
	json_array_foreach(ids, i, e) {
		if (!json_object_get(found, json_string_value(e))) {
			json_decref(uniq);
			json_decref(found);
			return admin_fail(req, PRISM_E_BAD_REQUEST, "tenants[%zu]: no tenant has the id %s", i,
					  json_string_value(e));
		}
	}
	json_decref(found);
	*out = uniq;
	return PRISM_OK;
}

static enum prism_err
read_role(struct request *req, const json_t *body, unsigned flags, const char **out)
{
	const char *choices[UR_COUNT + 1];
	for (int i = 0; i < UR_COUNT; i++)
		choices[i] = rbac_role_name(i);
	choices[UR_COUNT] = NULL;
	return valid_enum(req, body, "role", flags, choices, out);
}

/* The same set of ids, in any order. */
static bool
same_ids(const json_t *a, const json_t *b)
{
	if (json_array_size(a) != json_array_size(b))
		return false;
	size_t i, j;
	json_t *x, *y;
	json_array_foreach(a, i, x) {
		bool hit = false;
		json_array_foreach(b, j, y)
			hit = hit || json_equal(x, y);
		if (!hit)
			return false;
	}
	return true;
}

static enum prism_err
load_user(struct request *req, struct store *s, const char *id, json_t **out)
{
	char serr[256] = "";
	enum prism_err err = s->ops->get(s, COLL_USERS, id, out, serr, sizeof serr);
	return err ? admin_store_fail(req, err, "User not found", serr) : PRISM_OK;
}

/* Puts the pre-change state back after a write that left no active admin.  When nobody changed the
 * document since our write (its version is still ours) the whole previous document returns; otherwise
 * only role and active do.  tokenVersion keeps its new value: revoked tokens stay revoked. */
static void
rollback(struct request *req, struct store *s, const char *id, const json_t *before, long our_version)
{
	char serr[256] = "";
	for (int attempt = 0; attempt < ROLLBACK_TRIES; attempt++) {
		json_t *cur = NULL;
		enum prism_err err = s->ops->get(s, COLL_USERS, id, &cur, serr, sizeof serr);
		if (err == PRISM_E_NOT_FOUND) {
			/* A guarded delete removed it meanwhile: it comes back. */
			json_t *doc = json_deep_copy(before);
			json_object_del(doc, "__v");
			err = s->ops->insert(s, COLL_USERS, doc, NULL, serr, sizeof serr);
			json_decref(doc);
			if (err == PRISM_OK)
				return;
			continue;
		}
		if (err)
			break;
		long cur_version = doc_version(cur);
		json_t *doc;
		if (cur_version == our_version) {
			doc = json_deep_copy(before);
			json_object_set_new(doc, "tokenVersion", json_integer(user_token_version(cur)));
		} else {
			doc = json_incref(cur);
			json_object_set(doc, "role", json_object_get(before, "role"));
			json_object_set_new(doc, "active", json_boolean(user_active(before)));
		}
		err = s->ops->update(s, COLL_USERS, id, doc, cur_version, NULL, serr, sizeof serr);
		json_decref(doc);
		json_decref(cur);
		if (err == PRISM_OK)
			return;
		if (err != PRISM_E_CONFLICT)
			break;
	}
	log_error("rid=%s cannot roll back user %s after a change that left no active admin: %s", req->request_id, id,
		  serr[0] ? serr : "the user kept changing");
}

/* Writes doc over the stored user (version `expect`); when `guard` (the change takes an active admin away)
 * the active admins are counted afterwards and the change is undone when none is left, which two concurrent
 * demotions cannot both pass.  `what` names the change for the error. */
static enum prism_err
guarded_update(struct request *req, struct store *s, const char *id, const json_t *before, json_t *doc, bool guard,
	       const char *what)
{
	char serr[256] = "";
	long newv = 0;
	enum prism_err err = s->ops->update(s, COLL_USERS, id, doc, doc_version(before), &newv, serr, sizeof serr);
	if (err == PRISM_E_CONFLICT)
		return admin_fail(req, PRISM_E_CONFLICT, "The user was changed concurrently; reload and try again");
	if (err)
		return admin_store_fail(req, err, "User not found", serr);
	json_object_set_new(doc, "__v", json_integer(newv));
	if (!guard)
		return PRISM_OK;
	long admins = 0;
	if ((err = count_active_admins(req, s, &admins)) == PRISM_OK && admins > 0)
		return PRISM_OK;
	rollback(req, s, id, before, newv);
	if (err)
		return err;
	log_warn("rid=%s %s of user %s undone: a concurrent change left no active admin", req->request_id, what, id);
	return admin_fail(req, PRISM_E_CONFLICT, "Cannot %s the last active admin (another admin was demoted, "
			  "deactivated or deleted at the same time)", what);
}

/* --- handlers ---------------------------------------------------------------------------------------- */

enum prism_err
users_list(struct request *req)
{
	struct store *s;
	json_t *users = NULL, *ids = NULL, *tenants = NULL, *out = NULL;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	if ((err = admin_find_all(req, s, COLL_USERS, NULL, 0, "createdAt", false, USERS_MAX_LIST, &users)))
		return err;
	/* Every tenant id any user holds, once. */
	json_t *seen = json_object();
	ids = json_array();
	size_t i, j;
	json_t *u, *t;
	json_array_foreach(users, i, u) {
		json_array_foreach(json_object_get(u, "tenants"), j, t) {
			if (json_is_string(t) && !json_object_get(seen, json_string_value(t))) {
				json_object_set_new(seen, json_string_value(t), json_true());
				json_array_append(ids, t);
			}
		}
	}
	json_decref(seen);
	if ((err = tenant_lookup(req, s, ids, &tenants)))
		goto out;
	out = json_array();
	json_array_foreach(users, i, u)
		json_array_append_new(out, user_view(u, tenants));
	err = admin_reply(req, 200, out);
	out = NULL;
out:
	json_decref(out);
	json_decref(tenants);
	json_decref(ids);
	json_decref(users);
	return err;
}

enum prism_err
users_get(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *user = NULL, *tenants = NULL;
	enum prism_err err;
	if ((err = admin_param_id(req, "id", "User", &id)) || (err = admin_store(req, &s)) ||
	    (err = load_user(req, s, id, &user)))
		return err;
	json_t *ids = json_object_get(user, "tenants");
	json_t *empty = json_array();
	err = tenant_lookup(req, s, json_is_array(ids) ? ids : empty, &tenants);
	json_decref(empty);
	if (!err)
		err = admin_reply(req, 200, user_view(user, tenants));
	json_decref(tenants);
	json_decref(user);
	return err;
}

enum prism_err
users_create(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *tenants = NULL, *doc = NULL;
	char *hash = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *uname = NULL, *password = NULL, *role = NULL, *source = NULL;
	bool active = true;
	char username[PRISM_MAX_USERNAME + 1];
	if ((err = valid_string(req, body, "username", VF_REQUIRED, 1024, &uname)) ||
	    (err = auth_username_normalise(req, uname, username, sizeof username)) ||
	    (err = valid_string(req, body, "password", VF_REQUIRED, 4096, &password)) ||
	    (err = auth_password_check(req, "password", password)) ||
	    (err = read_role(req, body, VF_REQUIRED, &role)) ||
	    (err = valid_bool(req, body, "active", 0, &active)) ||
	    (err = valid_enum(req, body, "source", 0, (const char *const[]){ "local", NULL }, &source)) ||
	    (err = admin_store(req, &s)) || (err = read_tenants(req, s, body, &tenants)))
		goto out;
	if (strcmp(role, "admin") == 0 && !caller_is_admin(req)) {
		err = admin_fail(req, PRISM_E_FORBIDDEN, "Only an admin may create an admin account");
		goto out;
	}
	if ((err = crypto_password_hash(password, &hash)))
		goto out;
	doc = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:i}", "username", username, "passwordHash", hash, "role", role,
			"tenants", tenants ? json_incref(tenants) : json_array(), "source", "local", "active", active,
			"tokenVersion", 0);
	char id[25], serr[256] = "";
	if ((err = s->ops->insert(s, COLL_USERS, doc, id, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "Username already exists", serr);
		goto out;
	}
	json_object_set_new(doc, "_id", json_string(id));
	json_decref(tenants);
	tenants = NULL;
	/* The stored document (timestamps, __v) is what the original returned. */
	json_t *stored = NULL;
	if (s->ops->get(s, COLL_USERS, id, &stored, serr, sizeof serr) == PRISM_OK) {
		json_decref(doc);
		doc = stored;
	}
	log_info("rid=%s user %s (%s) created by %s", req->request_id, username, role, req->user.username);
	audit_record(req, "create", "user", id, username, NULL, NULL);
	admin_changed(req);
	err = admin_reply(req, 201, user_view(doc, NULL));
out:
	if (hash) {
		secure_wipe(hash, strlen(hash));
		free(hash);
	}
	json_decref(doc);
	json_decref(tenants);
	json_decref(body);
	return err;
}

enum prism_err
users_update(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *before = NULL, *doc = NULL, *tenants = NULL;
	char *hash = NULL;
	enum prism_err err;
	if ((err = admin_param_id(req, "id", "User", &id)) || (err = admin_body(req, &body)))
		return err;
	const char *role = NULL, *password = NULL;
	bool active = true, have_active = json_object_get(body, "active") && !json_is_null(json_object_get(body, "active"));
	if ((err = read_role(req, body, 0, &role)) || (err = valid_bool(req, body, "active", 0, &active)) ||
	    (err = valid_string(req, body, "password", 0, 4096, &password)) ||
	    (password && *password && (err = auth_password_check(req, "password", password))) ||
	    (err = admin_store(req, &s)) || (err = read_tenants(req, s, body, &tenants)) ||
	    (err = load_user(req, s, id, &before)))
		goto out;
	if (password && !*password)
		password = NULL;            /* the original: an empty password leaves it unchanged */

	/* Who may touch whom. */
	if (user_is_admin(before) && !caller_is_admin(req)) {
		err = admin_fail(req, PRISM_E_FORBIDDEN, "Only an admin may modify an admin account");
		goto out;
	}
	if (role && strcmp(role, "admin") == 0 && !user_is_admin(before) && !caller_is_admin(req)) {
		err = admin_fail(req, PRISM_E_FORBIDDEN, "Only an admin may grant the admin role");
		goto out;
	}
	bool role_changes = role && strcmp(role, admin_str(before, "role")) != 0;
	if (role_changes && is_self(req, id)) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "role: Cannot change your own role");
		goto out;
	}
	if (have_active && !active && is_self(req, id)) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "active: Cannot deactivate your own account");
		goto out;
	}
	/* A stolen session must not become a permanent takeover: one's own password changes only with the
	 * current one (and the login rate limit), through /auth/change-password. */
	if (password && is_self(req, id)) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST,
				 "password: change your own password with POST /api/prism/auth/change-password");
		goto out;
	}
	if (password && user_is_ldap(before)) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST,
				 "password: directory (LDAP) accounts have no local password; change it in the directory");
		goto out;
	}

	doc = json_deep_copy(before);
	bool revoke = false;
	if (role_changes) {
		json_object_set_new(doc, "role", json_string(role));
		revoke = true;
	}
	if (have_active) {
		revoke = revoke || (user_active(before) && !active);
		json_object_set_new(doc, "active", json_boolean(active));
	}
	if (tenants) {
		json_t *old = json_object_get(before, "tenants"), *none = json_array();
		revoke = revoke || !same_ids(json_is_array(old) ? old : none, tenants);
		json_decref(none);
		json_object_set(doc, "tenants", tenants);
	}
	if (password) {
		if ((err = crypto_password_hash(password, &hash)))
			goto out;
		json_object_set_new(doc, "passwordHash", json_string(hash));
		revoke = true;
	}
	if (revoke)
		json_object_set_new(doc, "tokenVersion", json_integer(user_token_version(before) + 1));

	/* The last active admin stays. */
	bool removes_admin = user_active_admin(before) && !user_active_admin(doc);
	const char *what = role_changes && !user_is_admin(doc) ? "demote" : "deactivate";
	if (removes_admin) {
		long admins = 0;
		if ((err = count_active_admins(req, s, &admins)))
			goto out;
		if (admins <= 1) {
			err = admin_fail(req, PRISM_E_BAD_REQUEST, "%s: Cannot %s the last active admin",
					 strcmp(what, "demote") == 0 ? "role" : "active", what);
			goto out;
		}
	}
	if (json_equal(before, doc)) {
		err = admin_reply(req, 200, user_view(doc, NULL));
		goto out;
	}
	if ((err = guarded_update(req, s, id, before, doc, removes_admin, what)))
		goto out;
	log_info("rid=%s user %s updated by %s%s", req->request_id, admin_str(doc, "username"), req->user.username,
		 revoke ? " (its sessions are revoked)" : "");
	/* tokenVersion is bookkeeping: the log line above says when sessions ended. */
	json_t *ab = admin_without(before, (const char *const[]){ "tokenVersion", NULL });
	json_t *aa = admin_without(doc, (const char *const[]){ "tokenVersion", NULL });
	audit_record(req, "update", "user", id, admin_str(doc, "username"), ab, aa);
	json_decref(ab);
	json_decref(aa);
	admin_changed(req);
	err = admin_reply(req, 200, user_view(doc, NULL));
out:
	if (hash) {
		secure_wipe(hash, strlen(hash));
		free(hash);
	}
	json_decref(tenants);
	json_decref(doc);
	json_decref(before);
	json_decref(body);
	return err;
}

enum prism_err
users_delete(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *before = NULL, *doc = NULL;
	enum prism_err err;
	if ((err = admin_param_id(req, "id", "User", &id)))
		return err;
	if (is_self(req, id))
		return admin_fail(req, PRISM_E_BAD_REQUEST, "Cannot delete yourself");
	if ((err = admin_store(req, &s)) || (err = load_user(req, s, id, &before)))
		return err;
	if (user_is_admin(before) && !caller_is_admin(req)) {
		err = admin_fail(req, PRISM_E_FORBIDDEN, "Only an admin may delete an admin account");
		goto out;
	}
	char serr[256] = "";
	if (user_active_admin(before)) {
		long admins = 0;
		if ((err = count_active_admins(req, s, &admins)))
			goto out;
		if (admins <= 1) {
			err = admin_fail(req, PRISM_E_BAD_REQUEST, "Cannot delete the last active admin");
			goto out;
		}
		/* First deactivate it under the same guard as a deactivation, then remove it. */
		doc = json_deep_copy(before);
		json_object_set_new(doc, "active", json_false());
		json_object_set_new(doc, "tokenVersion", json_integer(user_token_version(before) + 1));
		if ((err = guarded_update(req, s, id, before, doc, true, "delete")))
			goto out;
	}
	if ((err = s->ops->remove(s, COLL_USERS, id, serr, sizeof serr))) {
		if (doc && err != PRISM_E_NOT_FOUND)   /* the guarded deactivation is undone */
			rollback(req, s, id, before, doc_version(doc));
		err = admin_store_fail(req, err, "User not found", serr);
		goto out;
	}
	log_info("rid=%s user %s deleted by %s", req->request_id, admin_str(before, "username"), req->user.username);
	audit_record(req, "delete", "user", id, admin_str(before, "username"), NULL, NULL);
	admin_changed(req);
	err = admin_reply(req, 200, json_pack("{s:b}", "success", 1));
out:
	json_decref(doc);
	json_decref(before);
	return err;
}

enum prism_err
users_revoke(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *user = NULL;
	enum prism_err err;
	if ((err = admin_param_id(req, "id", "User", &id)) || (err = admin_store(req, &s)) ||
	    (err = load_user(req, s, id, &user)))
		return err;
	if (user_is_admin(user) && !caller_is_admin(req)) {
		err = admin_fail(req, PRISM_E_FORBIDDEN, "Only an admin may revoke the sessions of an admin account");
		goto out;
	}
	long tv = 0;
	if ((err = auth_revoke(req, s, id, &tv)))
		goto out;
	char name[PRISM_MAX_USERNAME + 1];
	snprintf(name, sizeof name, "%s", admin_str(user, "username"));
	log_info("rid=%s sessions of %s revoked by %s", req->request_id, name, req->user.username);
	audit_record(req, "revoke-sessions", "user", id, name, NULL, NULL);
	admin_changed(req);
	char msg[PRISM_MAX_USERNAME + 64];
	snprintf(msg, sizeof msg, "All sessions of %s have ended", name);
	err = admin_reply(req, 200, json_pack("{s:b, s:s}", "success", 1, "message", msg));
out:
	json_decref(user);
	return err;
}
