/* ldapadmin.c -- see ldapadmin.h. */
#include "config.h"
#include "admin/ldapadmin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/ldapauth.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/rand.h"

#define MASK "***"

/* The fields a request may set; everything else in a body is ignored (the UI sends whole documents). */
static const char *const known_fields[] = {
	"enabled", "url", "bindDn", "searchBase", "searchFilter", "defaultRole", "groupMapping", "tlsInsecure",
	"startTls", "caFile", "connectTimeoutMs", "timeoutMs", NULL,
};

/* The stored document or *out NULL. */
static enum prism_err
load_config(struct request *req, struct store *s, json_t **out)
{
	*out = NULL;
	struct store_query q = { NULL, 0, NULL, false, 1, NULL };
	json_t *page = NULL;
	char *next = NULL, serr[256] = "";
	enum prism_err err = s->ops->find(s, COLL_LDAPCONFIGS, &q, &page, &next, serr, sizeof serr);
	free(next);
	if (err) {
		json_decref(page);
		return admin_store_fail(req, err, "LDAP configuration unreadable", serr);
	}
	if (json_array_size(page))
		*out = json_incref(json_array_get(page, 0));
	json_decref(page);
	return PRISM_OK;
}

static bool
has_password(const json_t *doc)
{
	const char *p = json_string_value(json_object_get(doc, "bindPassword"));
	return p && *p;
}

static json_t *
masked_view(const json_t *doc)
{
	json_t *v = json_deep_copy(doc);
	if (has_password(v))
		json_object_set_new(v, "bindPassword", json_string(MASK));
	else
		json_object_del(v, "bindPassword");
	return v;
}

/* The stored document (or {}) with the body's known fields laid over it; null removes a field. */
static json_t *
merge(const json_t *stored, const json_t *body)
{
	json_t *m = stored ? json_deep_copy(stored) : json_object();
	for (size_t i = 0; known_fields[i]; i++) {
		json_t *v = json_object_get(body, known_fields[i]);
		if (!v)
			continue;
		if (json_is_null(v))
			json_object_del(m, known_fields[i]);
		else
			json_object_set_new(m, known_fields[i], json_deep_copy(v));
	}
	return m;
}

static void
set_default(json_t *doc, const char *key, json_t *value)
{
	if (!json_object_get(doc, key) || json_is_null(json_object_get(doc, key)))
		json_object_set(doc, key, value);
	json_decref(value);
}

/* The body's bindPassword: *plain borrowed, NULL when the stored one stays; *clear for null. */
static enum prism_err
read_password(struct request *req, const json_t *body, const char **plain, bool *clear)
{
	*plain = NULL;
	*clear = false;
	json_t *v = json_object_get(body, "bindPassword");
	if (!v)
		return PRISM_OK;
	if (json_is_null(v)) {
		*clear = true;
		return PRISM_OK;
	}
	const char *p = NULL;
	enum prism_err err = valid_string(req, body, "bindPassword", 0, LDAPAUTH_MAX_BIND_PASSWORD - 1, &p);
	if (err)
		return err;
	if (*p && strcmp(p, MASK) != 0)
		*plain = p;
	return PRISM_OK;
}

/* Do the connection settings of `doc` send the bind password where `stored` sent it?  (Same URL, bind DN
 * and TLS settings: a changed URL or weakened TLS would hand the stored password to someone else.) */
static bool
same_destination(const json_t *doc, const json_t *stored)
{
	static const char *const strs[] = { "url", "bindDn", "caFile", NULL };
	for (size_t i = 0; strs[i]; i++)
		if (strcmp(admin_str(doc, strs[i]), admin_str(stored, strs[i])) != 0)
			return false;
	static const char *const bools[] = { "startTls", "tlsInsecure", NULL };
	for (size_t i = 0; bools[i]; i++)
		if (json_is_true(json_object_get(doc, bools[i])) != json_is_true(json_object_get(stored, bools[i])))
			return false;
	return true;
}

enum prism_err
ldapadmin_get(struct request *req)
{
	struct store *s;
	json_t *doc = NULL;
	enum prism_err err;
	if ((err = admin_store(req, &s)) || (err = load_config(req, s, &doc)))
		return err;
	if (!doc)
		return admin_reply(req, 200, json_pack("{s:b}", "enabled", 0));
	err = admin_reply(req, 200, masked_view(doc));
	json_decref(doc);
	return err;
}

enum prism_err
ldapadmin_put(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *stored = NULL, *doc = NULL, *saved = NULL;
	char *enc = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *plain = NULL;
	bool clear = false;
	char verr[PRISM_MAX_ERRDETAIL] = "", serr[256] = "";
	if ((err = read_password(req, body, &plain, &clear)) || (err = admin_store(req, &s)) ||
	    (err = load_config(req, s, &stored)))
		goto out;
	doc = merge(stored, body);
	if (clear)
		json_object_del(doc, "bindPassword");
	/* The original's schema defaults. */
	set_default(doc, "enabled", json_false());
	set_default(doc, "searchFilter", json_string(LDAPAUTH_DEFAULT_FILTER));
	set_default(doc, "defaultRole", json_string(LDAPAUTH_DEFAULT_ROLE));
	set_default(doc, "groupMapping", json_array());
	set_default(doc, "tlsInsecure", json_false());
	if (ldapauth_validate_json(doc, verr, sizeof verr) != PRISM_OK) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "%s", verr);
		goto out;
	}
	if (!plain && !clear && has_password(stored) && !same_destination(doc, stored)) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST,
				 "bindPassword: enter the bind password again when changing url, bindDn or the TLS settings "
				 "(or set it to null)");
		goto out;
	}
	if (plain) {
		if ((err = crypto_encrypt(req->cfg->encryption_key, plain, &enc))) {
			if (err == PRISM_E_BAD_REQUEST)
				err = admin_fail(req, err, "bindPassword: must be the plaintext password, not an encrypted value");
			goto out;
		}
		json_object_set_new(doc, "bindPassword", json_string(enc));
	}
	char id[25];
	if (stored) {
		snprintf(id, sizeof id, "%s", admin_str(stored, "_id"));
		json_t *v = json_object_get(stored, "__v");
		err = s->ops->update(s, COLL_LDAPCONFIGS, id, doc, json_is_integer(v) ? (long)json_integer_value(v) : -1,
				     NULL, serr, sizeof serr);
	} else {
		snprintf(id, sizeof id, "%s", LDAPADMIN_CONFIG_ID);
		json_object_set_new(doc, "_id", json_string(id));
		err = s->ops->insert(s, COLL_LDAPCONFIGS, doc, NULL, serr, sizeof serr);
	}
	if (err == PRISM_E_CONFLICT) {
		err = admin_fail(req, err, "The LDAP configuration was changed concurrently; reload and try again");
		goto out;
	}
	if (err) {
		err = admin_store_fail(req, err, "LDAP configuration not found", serr);
		goto out;
	}
	log_info("rid=%s LDAP configuration saved by %s (enabled: %s)", req->request_id, req->user.username,
		 json_is_true(json_object_get(doc, "enabled")) ? "yes" : "no");
	audit_record(req, "update", "ldap", id, "LDAP", stored, doc);
	admin_changed(req);
	if (s->ops->get(s, COLL_LDAPCONFIGS, id, &saved, serr, sizeof serr) != PRISM_OK)
		saved = json_incref(doc);
	err = admin_reply(req, 200, masked_view(saved));
out:
	if (enc)
		crypto_free_secret(enc);
	json_decref(saved);
	json_decref(doc);
	json_decref(stored);
	json_decref(body);
	return err;
}

static enum prism_err
test_reply(struct request *req, bool ok, const char *error)
{
	if (ok)
		return admin_reply(req, 200, json_pack("{s:b, s:s}", "success", 1, "message", "LDAP bind successful"));
	return admin_reply(req, 400, json_pack("{s:b, s:s}", "success", 0, "error", error));
}

enum prism_err
ldapadmin_test(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *stored = NULL, *doc = NULL;
	char *stored_plain = NULL;
	struct ldapauth_settings *ls = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *plain = NULL;
	bool clear = false;
	char msg[PRISM_MAX_ERRDETAIL] = "";
	if ((err = read_password(req, body, &plain, &clear)) || (err = admin_store(req, &s)) ||
	    (err = load_config(req, s, &stored)))
		goto out;
	doc = merge(stored, body);
	json_object_del(doc, "bindPassword");
	json_object_del(doc, "enabled");   /* a disabled configuration can be tested before it is switched on */
	if (ldapauth_validate_json(doc, msg, sizeof msg) != PRISM_OK) {
		err = test_reply(req, false, msg);
		goto out;
	}
	if (!admin_str(doc, "url")[0]) {
		err = test_reply(req, false, "url: is required");
		goto out;
	}
	if (!plain && !clear && has_password(stored) && admin_str(doc, "bindDn")[0]) {
		/* The stored password goes only where it is meant to go. */
		if (!same_destination(doc, stored)) {
			err = test_reply(req, false, "bindPassword: the stored bind password is used only with the stored "
					 "url, bindDn and TLS settings; enter the password to test other settings");
			goto out;
		}
		if (crypto_decrypt(req->cfg->encryption_key, req->cfg->encryption_key_previous,
				   admin_str(stored, "bindPassword"), &stored_plain, NULL) != PRISM_OK) {
			log_error("rid=%s LDAP test: the stored bind password does not decrypt with encryption_key",
				  req->request_id);
			err = test_reply(req, false, "bindPassword: the stored bind password cannot be decrypted with the "
					 "current encryption_key; enter it again");
			goto out;
		}
		plain = stored_plain;
	}
	ls = calloc(1, sizeof *ls);
	if (!ls) {
		err = PRISM_E_NOMEM;
		goto out;
	}
	if (ldapauth_settings_from_json(doc, plain ? plain : "", ls, msg, sizeof msg) != PRISM_OK) {
		err = test_reply(req, false, msg);
		goto out;
	}
	enum prism_err rc = ldapauth_test_bind(ls, msg, sizeof msg);
	log_info("rid=%s LDAP test bind to %s as %s by %s: %s", req->request_id, ls->url,
		 ls->bind_dn[0] ? ls->bind_dn : "(anonymous)", req->user.username, rc ? msg : "ok");
	err = test_reply(req, rc == PRISM_OK, msg[0] ? msg : prism_strerror(rc));
out:
	if (ls) {
		secure_wipe(ls->bind_password, sizeof ls->bind_password);
		free(ls);
	}
	crypto_free_secret(stored_plain);
	json_decref(doc);
	json_decref(stored);
	json_decref(body);
	return err;
}
