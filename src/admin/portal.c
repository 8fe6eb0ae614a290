/* portal.c -- see portal.h. */
#include "config.h"
#include "admin/portal.h"

#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/rbac.h"
#include "admin/tenants.h"

/* The :id of a tenant the caller may see. */
static enum prism_err
portal_scope(struct request *req, const char **id)
{
	enum prism_err err = admin_param_id(req, "id", "Tenant", id);
	if (err)
		return err;
	if (!rbac_tenant_allowed(&req->user, *id))
		return admin_fail(req, PRISM_E_FORBIDDEN, "Access denied \xe2\x80\x94 not your tenant");
	return PRISM_OK;
}

static enum prism_err
portal_load(struct request *req, struct store **s, json_t **doc)
{
	const char *id;
	char serr[256] = "";
	*doc = NULL;
	enum prism_err err = portal_scope(req, &id);
	if (err || (err = admin_store(req, s)))
		return err;
	err = (*s)->ops->get(*s, COLL_TENANTS, id, doc, serr, sizeof serr);
	if (err == PRISM_E_NOT_FOUND)
		return admin_fail(req, err, "Tenant not found");
	return err ? admin_store_fail(req, err, "tenant lookup failed", serr) : PRISM_OK;
}

enum prism_err
portal_mine(struct request *req)
{
	json_t *scope = rbac_tenant_filter(&req->user);
	struct store_cond cond = { "_id", SOP_IN, scope };
	enum prism_err err = tenants_reply_list(req, scope ? &cond : NULL, scope ? 1 : 0);
	json_decref(scope);
	return err;
}

enum prism_err
portal_get(struct request *req)
{
	struct store *s;
	json_t *doc = NULL;
	enum prism_err err = portal_load(req, &s, &doc);
	if (err)
		return err;
	json_t *v = tenants_view(doc);
	json_decref(doc);
	return admin_reply(req, 200, v);
}

static enum prism_err
mut_model_config(struct request *req, struct store *s, json_t *doc, void *ctx)
{
	(void)s;
	return tenants_apply_model_config(req, doc, ctx, "", false);
}

enum prism_err
portal_model_config(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *before = NULL, *after = NULL;
	enum prism_err err = portal_scope(req, &id);
	if (err || (err = admin_body(req, &body)) || (err = admin_store(req, &s)) ||
	    (err = tenants_modify(req, s, id, mut_model_config, body, &before, &after)))
		goto out;
	if (!json_equal(json_object_get(before, "__v"), json_object_get(after, "__v"))) {
		audit_record(req, "update", "tenant", id, admin_str(after, "slug"), before, after);
		admin_changed(req);
	}
	err = admin_reply(req, 200, tenants_view(after));
out:
	json_decref(before);
	json_decref(after);
	json_decref(body);
	return err;
}

static bool
listed(const json_t *list, const char *model, const char *provider_slug)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *s = json_string_value(e);
		if (!s)
			continue;
		if (strcmp(s, model) == 0)
			return true;
		/* "<provider slug>/<model>" names the same model */
		size_t n = strlen(provider_slug);
		if (n && strncmp(s, provider_slug, n) == 0 && s[n] == '/' && strcmp(s + n + 1, model) == 0)
			return true;
	}
	return false;
}

enum prism_err
portal_models(struct request *req)
{
	struct store *s;
	json_t *doc = NULL, *providers = NULL, *out = NULL;
	enum prism_err err = portal_load(req, &s, &doc);
	if (err)
		return err;
	json_t *ids = json_object_get(doc, "providerIds");
	json_t *valid = json_array();
	size_t i, j;
	json_t *e, *p, *m;
	json_array_foreach(ids, i, e)
		if (json_is_string(e) && store_id_valid(json_string_value(e)))
			json_array_append(valid, e);
	struct store_cond cond = { "_id", SOP_IN, valid };
	if ((err = admin_find_all(req, s, COLL_PROVIDERS, &cond, 1, NULL, false, 1000, &providers)))
		goto out;
	json_t *mc = json_object_get(doc, "modelConfig");
	const char *mode = json_string_value(json_object_get(mc, "mode"));
	json_t *list = json_object_get(mc, "list");
	bool white = mode && strcmp(mode, "whitelist") == 0 && json_array_size(list) > 0;
	bool black = mode && strcmp(mode, "blacklist") == 0 && json_array_size(list) > 0;
	out = json_array();
	/* In the tenant's provider order. */
	json_array_foreach(valid, i, e) {
		json_array_foreach(providers, j, p) {
			if (strcmp(admin_str(p, "_id"), json_string_value(e)) != 0)
				continue;
			size_t k;
			json_array_foreach(json_object_get(p, "discoveredModels"), k, m) {
				const char *mid = json_string_value(json_object_get(m, "id"));
				if (!json_is_object(m) || !mid || json_is_false(json_object_get(m, "visible")))
					continue;
				bool on_list = listed(list, mid, admin_str(p, "slug"));
				if ((white && !on_list) || (black && on_list))
					continue;
				json_t *copy = json_deep_copy(m);
				json_object_set_new(copy, "providerId", json_string(admin_str(p, "_id")));
				json_object_set_new(copy, "providerName", json_string(admin_str(p, "name")));
				json_array_append_new(out, copy);
			}
		}
	}
	err = admin_reply(req, 200, out);
	out = NULL;
out:
	json_decref(out);
	json_decref(valid);
	json_decref(providers);
	json_decref(doc);
	return err;
}
