/* setup.c -- see setup.h. */
#include "config.h"
#include "admin/setup.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/auth.h"
#include "admin/categories.h"
#include "admin/routing.h"
#include "admin/tenants.h"
#include "util/crypto.h"
#include "util/log.h"

static atomic_bool complete_seen;

void
setup_forget(void)
{
	atomic_store(&complete_seen, false);
}

enum prism_err
setup_is_complete(struct store *s, bool *complete, char *err, size_t errlen)
{
	*complete = atomic_load(&complete_seen);
	if (*complete)
		return PRISM_OK;
	json_t *t = json_true();
	struct store_cond cond = { "completed", SOP_EQ, t };
	struct store_query q = { &cond, 1, NULL, false, 1, NULL };
	long n = 0;
	enum prism_err rc = s->ops->count(s, COLL_SETUPS, &q, &n, err, errlen);
	json_decref(t);
	if (rc)
		return rc;
	*complete = n > 0;
	if (*complete)
		atomic_store(&complete_seen, true);
	return PRISM_OK;
}

enum prism_err
setup_gate(struct request *req)
{
	if (atomic_load(&complete_seen))
		return PRISM_OK;
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	bool done;
	char serr[256];
	if ((err = setup_is_complete(s, &done, serr, sizeof serr)))
		return admin_store_fail(req, err, "setup state unreadable", serr);
	if (!done)
		return admin_fail(req, PRISM_E_SETUP_REQUIRED,
				  "Setup not completed: create the first admin (POST /api/prism/setup/admin), log in and "
				  "call POST /api/prism/setup/complete");
	return PRISM_OK;
}

static enum prism_err
count_all(struct store *s, enum store_coll c, long *n, char *err, size_t errlen)
{
	struct store_query q = { NULL, 0, NULL, false, 0, NULL };
	return s->ops->count(s, c, &q, n, err, errlen);
}

enum prism_err
setup_status(struct request *req)
{
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	bool done;
	long users = 0;
	char serr[256];
	if ((err = setup_is_complete(s, &done, serr, sizeof serr)) ||
	    (err = count_all(s, COLL_USERS, &users, serr, sizeof serr)))
		return admin_store_fail(req, err, "setup state unreadable", serr);
	return admin_reply(req, 200, json_pack("{s:b, s:b}", "setupComplete", done, "adminCreated", users > 0));
}

enum prism_err
setup_admin(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *claim = NULL, *user = NULL;
	char *hash = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *uname = NULL, *password = NULL;
	char username[PRISM_MAX_USERNAME + 1], serr[256] = "";
	if ((err = valid_string(req, body, "username", VF_REQUIRED, 1024, &uname)) ||
	    (err = valid_string(req, body, "password", VF_REQUIRED, 4096, &password)) ||
	    (err = auth_username_normalise(req, uname, username, sizeof username)) ||
	    (err = auth_password_check(req, "password", password)) || (err = admin_store(req, &s)))
		goto out;
	bool done;
	long users = 0;
	if ((err = setup_is_complete(s, &done, serr, sizeof serr)) ||
	    (err = count_all(s, COLL_USERS, &users, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "setup state unreadable", serr);
		goto out;
	}
	if (done) {
		err = admin_fail(req, PRISM_E_CONFLICT, "Setup already completed");
		goto out;
	}
	if (users > 0) {
		err = admin_fail(req, PRISM_E_CONFLICT, "Admin already exists: log in as that admin to complete setup");
		goto out;
	}
	if ((err = crypto_password_hash(password, &hash)))
		goto out;
	/* The claim: only one request can insert this id. */
	claim = json_pack("{s:s, s:b, s:s}", "_id", SETUP_CLAIM_ID, "completed", 0, "adminUser", username);
	err = s->ops->insert(s, COLL_SETUPS, claim, NULL, serr, sizeof serr);
	if (err) {
		err = admin_store_fail(req, err, "Admin already exists: log in as that admin to complete setup", serr);
		goto out;
	}
	user = json_pack("{s:s, s:s, s:s, s:[], s:s, s:b, s:i}", "username", username, "passwordHash", hash, "role",
			 "admin", "tenants", "source", "local", "active", 1, "tokenVersion", 0);
	char id[25];
	err = s->ops->insert(s, COLL_USERS, user, id, serr, sizeof serr);
	if (err) {
		char rerr[256];
		if (s->ops->remove(s, COLL_SETUPS, SETUP_CLAIM_ID, rerr, sizeof rerr))
			log_error("rid=%s setup: cannot release the admin claim: %s", req->request_id, rerr);
		err = admin_store_fail(req, err, "Admin already exists", serr);
		goto out;
	}
	log_info("rid=%s setup: first admin %s created from %s", req->request_id, username, req->client_ip);
	audit_record(req, "create", "user", id, username, NULL, NULL);
	err = admin_reply(req, 200, json_pack("{s:b, s:s}", "success", 1, "message", "Admin account created"));
out:
	free(hash);
	json_decref(claim);
	json_decref(user);
	json_decref(body);
	return err;
}

enum prism_err
setup_complete(struct request *req)
{
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	bool done;
	char serr[256];
	if ((err = setup_is_complete(s, &done, serr, sizeof serr)))
		return admin_store_fail(req, err, "setup state unreadable", serr);
	if (done)
		return admin_fail(req, PRISM_E_CONFLICT, "Setup already completed");
	long created = 0, updated = 0;
	if ((err = categories_seed(req, s, &created, &updated)))
		return err;
	bool ruleset_created;
	if ((err = routing_seed_default(req, s, &ruleset_created)))
		return err;
	json_t *tenant = NULL;
	if ((err = tenants_create_default(req, s, &tenant)))
		return err;
	char now[32];
	admin_now(now);
	json_t *doc = NULL;
	err = s->ops->get(s, COLL_SETUPS, SETUP_CLAIM_ID, &doc, serr, sizeof serr);
	if (err == PRISM_E_NOT_FOUND) {
		doc = json_pack("{s:s}", "_id", SETUP_CLAIM_ID);
		json_object_set_new(doc, "completed", json_true());
		json_object_set_new(doc, "adminUser", json_string(req->user.username));
		json_object_set_new(doc, "completedAt", json_string(now));
		err = s->ops->insert(s, COLL_SETUPS, doc, NULL, serr, sizeof serr);
	} else if (err == PRISM_OK) {
		json_object_set_new(doc, "completed", json_true());
		json_object_set_new(doc, "adminUser", json_string(req->user.username));
		json_object_set_new(doc, "completedAt", json_string(now));
		err = s->ops->update(s, COLL_SETUPS, SETUP_CLAIM_ID, doc, -1, NULL, serr, sizeof serr);
	}
	json_decref(doc);
	if (err) {
		json_decref(tenant);
		return admin_store_fail(req, err, "setup state not writable", serr);
	}
	atomic_store(&complete_seen, true);
	audit_record(req, "complete", "setup", NULL, "initial setup", NULL, NULL);
	admin_changed(req);
	json_t *body = json_pack("{s:b, s:s, s:{s:i, s:i}}", "success", 1, "message", "Setup completed", "categories",
				 "created", (json_int_t)created, "updated", (json_int_t)updated);
	if (tenant)
		json_object_set_new(body, "defaultTenant", tenant);
	return admin_reply(req, 200, body);
}
