/* categories.c -- see categories.h. */
#include "config.h"
#include "admin/categories.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "data/catalog.h"
#include "data/registry.h"
#include "util/log.h"

#define PRESET_MAX_IDS 32
#define PRESET_MAX_ID 64

/* --- the built-in seed ----------------------------------------------------------------------------------- */

static bool
number_is(const json_t *v, long n)
{
	return json_is_number(v) && json_number_value(v) == (double)n;
}

/* Does the stored built-in differ from the seed in what a full reset restores? */
static bool
differs_fully(const json_t *doc, const struct catalog_category *c)
{
	json_t *seed = catalog_category_json(c);
	bool same = json_is_true(json_object_get(doc, "isBuiltIn")) &&
		    json_equal(json_object_get(doc, "requiresVision"), json_object_get(seed, "requiresVision")) &&
		    json_equal(json_object_get(doc, "examples"), json_object_get(seed, "examples")) &&
		    strcmp(admin_str(doc, "description"), admin_str(seed, "description")) == 0 &&
		    strcmp(admin_str(doc, "targetSystemPrompt"), c->system_prompt) == 0 &&
		    json_is_string(json_object_get(doc, "targetSystemPrompt"));
	json_decref(seed);
	return !same;
}

static enum prism_err
seed_builtins(struct request *req, struct store *s, bool full, long *created, long *updated)
{
	*created = *updated = 0;
	char serr[256] = "";
	for (size_t i = 0; i < catalog_ncategories; i++) {
		const struct catalog_category *c = &catalog_categories[i];
		json_t *doc = NULL;
		enum prism_err err = admin_find_one(req, s, COLL_ROUTINGCATEGORIES, "key", c->key, &doc);
		if (err)
			return err;
		if (!doc) {
			json_t *fresh = catalog_category_json(c);
			err = s->ops->insert(s, COLL_ROUTINGCATEGORIES, fresh, NULL, serr, sizeof serr);
			json_decref(fresh);
			if (err == PRISM_E_CONFLICT)
				continue;   /* a concurrent seed inserted it */
			if (err)
				return admin_store_fail(req, err, "category insert failed", serr);
			(*created)++;
			continue;
		}
		bool differs = strcmp(admin_str(doc, "costTier"), c->tier) != 0 || strcmp(admin_str(doc, "name"), c->name) != 0 ||
			       !number_is(json_object_get(doc, "order"), c->order);
		bool prompt = !*admin_str(doc, "targetSystemPrompt") && *c->system_prompt;
		bool restore = full && differs_fully(doc, c);
		if (differs || prompt || restore) {
			json_object_set_new(doc, "costTier", json_string(c->tier));
			json_object_set_new(doc, "name", json_string(c->name));
			json_object_set_new(doc, "order", json_integer(c->order));
			json_object_set_new(doc, "isBuiltIn", json_true());
			if (c->description)
				json_object_set_new(doc, "description", json_string(c->description));
			if (prompt)
				json_object_set_new(doc, "targetSystemPrompt", json_string(c->system_prompt));
			if (full) {
				json_t *seed = catalog_category_json(c);
				json_object_set(doc, "description", json_object_get(seed, "description"));
				json_object_set(doc, "examples", json_object_get(seed, "examples"));
				json_object_set(doc, "requiresVision", json_object_get(seed, "requiresVision"));
				json_object_set(doc, "targetSystemPrompt", json_object_get(seed, "targetSystemPrompt"));
				json_decref(seed);
			}
			char id[25];
			snprintf(id, sizeof id, "%s", admin_str(doc, "_id"));
			json_t *ver = json_object_get(doc, "__v");
			err = s->ops->update(s, COLL_ROUTINGCATEGORIES, id, doc, json_is_integer(ver) ? (long)json_integer_value(ver) : -1,
					     NULL, serr, sizeof serr);
			/* NOT_FOUND: deleted meanwhile; CONFLICT: edited meanwhile, and that edit wins over the seed. */
			if (err && err != PRISM_E_NOT_FOUND && err != PRISM_E_CONFLICT) {
				json_decref(doc);
				return admin_store_fail(req, err, "category update failed", serr);
			}
			if (!err)
				(*updated)++;
		}
		json_decref(doc);
	}
	return PRISM_OK;
}

enum prism_err
categories_seed(struct request *req, struct store *s, long *created, long *updated)
{
	return seed_builtins(req, s, false, created, updated);
}

enum prism_err
categories_reset_builtins(struct request *req, struct store *s, long *created, long *updated)
{
	return seed_builtins(req, s, true, created, updated);
}

/* --- validation -------------------------------------------------------------------------------------- */

/* costTier: one of the eight tiers (catalog_tiers); *out borrowed from body. */
static enum prism_err
valid_tier(struct request *req, const json_t *body, unsigned flags, const char **out)
{
	const char *tier = NULL;
	enum prism_err err = valid_string(req, body, "costTier", flags, 64, &tier);
	if (err || !tier)
		return err;
	if (catalog_tier_index(tier) < 0) {
		char list[160] = "";
		size_t used = 0;
		for (int i = 0; i < CATALOG_NTIERS && used < sizeof list; i++)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", catalog_tiers[i]);
		return admin_fail(req, PRISM_E_BAD_REQUEST, "costTier: must be one of %s", list);
	}
	*out = tier;
	return PRISM_OK;
}

static enum prism_err
valid_key(struct request *req, const json_t *body, unsigned flags, const char **out)
{
	const char *key = NULL;
	enum prism_err err = valid_string(req, body, "key", flags, CATEGORY_MAX_KEY, &key);
	if (err || !key)
		return err;
	for (const char *p = key; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "key: may contain only lowercase letters, digits and underscores");
	}
	*out = key;
	return PRISM_OK;
}

/* Validates the fields a create or an update may set and writes them into doc.  A null description,
 * defaultModel or fallbackModel clears it. */
static enum prism_err
apply_fields(struct request *req, const json_t *body, json_t *doc, bool create)
{
	const char *name = NULL, *tier = NULL, *desc = NULL, *dm = NULL, *fm = NULL, *prompt = NULL;
	json_t *examples = NULL;
	bool vision = false, have_vision = false;
	long order = 0;
	bool have_order = false;
	enum prism_err err;
	unsigned req_flag = create ? VF_REQUIRED : VF_NONEMPTY;

	if ((err = valid_string(req, body, "name", req_flag, CATEGORY_MAX_NAME, &name)) ||
	    (err = valid_tier(req, body, create ? VF_REQUIRED : 0, &tier)) ||
	    (err = valid_string(req, body, "description", 0, CATEGORY_MAX_DESCRIPTION, &desc)) ||
	    (err = valid_string_array(req, body, "examples", 0, CATEGORY_MAX_EXAMPLES, CATEGORY_MAX_EXAMPLE,
				      &examples)) ||
	    (err = valid_string(req, body, "defaultModel", 0, CATEGORY_MAX_MODEL, &dm)) ||
	    (err = valid_string(req, body, "fallbackModel", 0, CATEGORY_MAX_MODEL, &fm)) ||
	    (err = valid_string(req, body, "targetSystemPrompt", 0, CATEGORY_MAX_PROMPT, &prompt)))
		return err;
	if (json_object_get(body, "requiresVision") && !json_is_null(json_object_get(body, "requiresVision"))) {
		if ((err = valid_bool(req, body, "requiresVision", 0, &vision)))
			return err;
		have_vision = true;
	}
	if (!create && json_object_get(body, "order") && !json_is_null(json_object_get(body, "order"))) {
		if ((err = valid_int(req, body, "order", 0, 0, CATEGORY_MAX_ORDER, &order)))
			return err;
		have_order = true;
	}

	if (name)
		json_object_set_new(doc, "name", json_string(name));
	if (tier)
		json_object_set_new(doc, "costTier", json_string(tier));
	if (desc)
		json_object_set_new(doc, "description", json_string(desc));
	if (examples)
		json_object_set_new(doc, "examples", json_deep_copy(examples));
	if (dm)
		json_object_set_new(doc, "defaultModel", json_string(dm));
	if (fm)
		json_object_set_new(doc, "fallbackModel", json_string(fm));
	if (prompt)
		json_object_set_new(doc, "targetSystemPrompt", json_string(prompt));
	if (have_vision)
		json_object_set_new(doc, "requiresVision", json_boolean(vision));
	if (have_order)
		json_object_set_new(doc, "order", json_integer(order));
	static const char *const clearable[] = { "description", "defaultModel", "fallbackModel", NULL };
	for (size_t i = 0; !create && clearable[i]; i++)
		if (json_is_null(json_object_get(body, clearable[i])))
			json_object_del(doc, clearable[i]);
	return PRISM_OK;
}

/* --- CRUD ------------------------------------------------------------------------------------------------ */

enum prism_err
categories_list(struct request *req)
{
	struct store *s;
	json_t *all = NULL;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_find_all(req, s, COLL_ROUTINGCATEGORIES, NULL, 0, "order", false, CATEGORY_MAX_COUNT,
					 &all)))
		return err;
	return admin_reply(req, 200, all);
}

static enum prism_err
next_order(struct request *req, struct store *s, long *out)
{
	struct store_query q = { NULL, 0, "order", true, 1, NULL };
	json_t *page = NULL;
	char *next = NULL, serr[256] = "";
	enum prism_err err = s->ops->find(s, COLL_ROUTINGCATEGORIES, &q, &page, &next, serr, sizeof serr);
	free(next);
	if (err) {
		json_decref(page);
		return admin_store_fail(req, err, "query failed", serr);
	}
	json_t *o = json_object_get(json_array_get(page, 0), "order");
	double max = json_is_number(o) ? json_number_value(o) : 0;
	json_decref(page);
	*out = max >= 0 && max < CATEGORY_MAX_ORDER ? (long)max + 1 : CATEGORY_MAX_ORDER;
	return PRISM_OK;
}

/* The stored document after a write (with its _id, __v and timestamps). */
static enum prism_err
reload(struct request *req, struct store *s, const char *id, json_t **out)
{
	char serr[256] = "";
	enum prism_err err = s->ops->get(s, COLL_ROUTINGCATEGORIES, id, out, serr, sizeof serr);
	return err ? admin_store_fail(req, err, "Category not found", serr) : PRISM_OK;
}

enum prism_err
categories_create(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *doc = NULL, *stored = NULL, *dup = NULL;
	const char *key = NULL;
	char id[25], serr[256] = "";
	long order = 1;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_body(req, &body)))
		goto out;
	doc = json_object();
	if ((err = valid_key(req, body, VF_REQUIRED, &key)) || (err = apply_fields(req, body, doc, true)))
		goto out;
	if ((err = admin_find_one(req, s, COLL_ROUTINGCATEGORIES, "key", key, &dup)))
		goto out;
	if (dup) {
		err = admin_fail(req, PRISM_E_CONFLICT, "Category key already exists");
		goto out;
	}
	struct store_query all = { NULL, 0, NULL, false, 0, NULL };
	long n = 0;
	if ((err = s->ops->count(s, COLL_ROUTINGCATEGORIES, &all, &n, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "query failed", serr);
		goto out;
	}
	if (n >= CATEGORY_MAX_COUNT) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "at most %d categories can be defined", CATEGORY_MAX_COUNT);
		goto out;
	}
	if ((err = next_order(req, s, &order)))
		goto out;
	json_object_set_new(doc, "key", json_string(key));
	if (!json_object_get(doc, "examples"))
		json_object_set_new(doc, "examples", json_array());
	if (!json_object_get(doc, "requiresVision"))
		json_object_set_new(doc, "requiresVision", json_false());
	if (!json_object_get(doc, "targetSystemPrompt"))
		json_object_set_new(doc, "targetSystemPrompt", json_string(""));
	json_object_set_new(doc, "isBuiltIn", json_false());
	json_object_set_new(doc, "order", json_integer(order));
	err = s->ops->insert(s, COLL_ROUTINGCATEGORIES, doc, id, serr, sizeof serr);
	if (err) {
		err = admin_store_fail(req, err, "Category key already exists", serr);
		goto out;
	}
	if ((err = reload(req, s, id, &stored)))
		goto out;
	audit_record(req, "create", "category", id, key, NULL, stored);
	admin_changed(req);
	err = admin_reply(req, 201, json_incref(stored));
out:
	json_decref(stored);
	json_decref(dup);
	json_decref(doc);
	json_decref(body);
	return err;
}

enum prism_err
categories_update(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *doc = NULL, *before = NULL, *stored = NULL, *dup = NULL;
	const char *id = NULL, *key = NULL;
	char serr[256] = "";
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_param_id(req, "id", "Category", &id)) || (err = admin_body(req, &body)))
		goto out;
	err = s->ops->get(s, COLL_ROUTINGCATEGORIES, id, &doc, serr, sizeof serr);
	if (err) {
		err = admin_store_fail(req, err, "Category not found", serr);
		goto out;
	}
	before = json_deep_copy(doc);
	if ((err = valid_key(req, body, VF_NONEMPTY, &key)) || (err = apply_fields(req, body, doc, false)))
		goto out;
	if (key && strcmp(key, admin_str(doc, "key")) != 0) {
		if (json_is_true(json_object_get(doc, "isBuiltIn"))) {
			err = admin_fail(req, PRISM_E_BAD_REQUEST, "key: the key of a built-in category cannot be changed");
			goto out;
		}
		if ((err = admin_find_one(req, s, COLL_ROUTINGCATEGORIES, "key", key, &dup)))
			goto out;
		if (dup) {
			err = admin_fail(req, PRISM_E_CONFLICT, "Category key already exists");
			goto out;
		}
		json_object_set_new(doc, "key", json_string(key));
	}
	json_t *v = json_object_get(before, "__v");
	long version = json_is_integer(v) ? (long)json_integer_value(v) : -1;
	err = s->ops->update(s, COLL_ROUTINGCATEGORIES, id, doc, version, NULL, serr, sizeof serr);
	if (err == PRISM_E_CONFLICT) {
		/* Either a concurrent update (stale __v) or a concurrent create of the same key. */
		err = admin_fail(req, PRISM_E_CONFLICT, "Category was changed concurrently or its key exists; reload and retry");
		goto out;
	}
	if (err) {
		err = admin_store_fail(req, err, "Category not found", serr);
		goto out;
	}
	if ((err = reload(req, s, id, &stored)))
		goto out;
	audit_record(req, "update", "category", id, admin_str(stored, "key"), before, stored);
	admin_changed(req);
	err = admin_reply(req, 200, json_incref(stored));
out:
	json_decref(stored);
	json_decref(dup);
	json_decref(before);
	json_decref(doc);
	json_decref(body);
	return err;
}

enum prism_err
categories_delete(struct request *req)
{
	struct store *s;
	json_t *doc = NULL;
	const char *id = NULL;
	char serr[256] = "";
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_param_id(req, "id", "Category", &id)))
		return err;
	err = s->ops->get(s, COLL_ROUTINGCATEGORIES, id, &doc, serr, sizeof serr);
	if (!err)
		err = s->ops->remove(s, COLL_ROUTINGCATEGORIES, id, serr, sizeof serr);
	if (err) {
		json_decref(doc);
		return admin_store_fail(req, err, "Category not found", serr);
	}
	audit_record(req, "delete", "category", id, admin_str(doc, "key"), doc, NULL);
	json_decref(doc);
	admin_changed(req);
	return admin_reply(req, 200, json_pack("{s:b}", "success", 1));
}

/* --- seed, reset, presets ----------------------------------------------------------------------------- */

static enum prism_err
seed_reply(struct request *req, bool full)
{
	struct store *s;
	long created = 0, updated = 0;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = seed_builtins(req, s, full, &created, &updated)))
		return err;
	json_t *counts = json_pack("{s:I, s:I, s:I}", "created", (json_int_t)created, "updated", (json_int_t)updated,
				   "total", (json_int_t)catalog_ncategories);
	audit_record(req, full ? "reset-defaults" : "seed", "category", NULL, "built-in categories", NULL, counts);
	if (created || updated)
		admin_changed(req);
	return admin_reply(req, 200, counts);
}

enum prism_err
categories_seed_handler(struct request *req)
{
	return seed_reply(req, false);
}

enum prism_err
categories_reset(struct request *req)
{
	return seed_reply(req, true);
}

enum prism_err
categories_presets(struct request *req)
{
	return admin_reply(req, 200, catalog_presets_json());
}

/* --- apply-preset --------------------------------------------------------------------------------------- */

struct best_model {
	const char *id;                      /* borrowed from the provider document; NULL = none */
	int score;
};

/* The best discovered model of each tier: the highest registry intelligence benchmark (50 when the
 * registry has none), the first discovered on a tie. */
static void
best_by_tier(const json_t *provider, struct best_model best[CATALOG_NTIERS])
{
	for (int t = 0; t < CATALOG_NTIERS; t++)
		best[t] = (struct best_model){ NULL, 0 };
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(provider, "discoveredModels"), i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));
		int t = catalog_tier_index(json_string_value(json_object_get(m, "tier")));
		if (!id || !*id || t < 0)
			continue;
		const struct registry_model *r = registry_find(id);
		int score = r && r->has_bench ? r->bench_intelligence : 50;
		if (!best[t].id || score > best[t].score)
			best[t] = (struct best_model){ id, score };
	}
}

enum prism_err
categories_apply_preset(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *ids = NULL, *provider = NULL, *cats = NULL, *keys = NULL, *names = NULL,
	       *assignments = NULL;
	const char *provider_id = NULL;
	char serr[256] = "";
	struct best_model best[CATALOG_NTIERS];
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_body(req, &body)))
		goto out;
	if ((err = valid_string_array(req, body, "profileIds", VF_REQUIRED, PRESET_MAX_IDS, PRESET_MAX_ID, &ids)) ||
	    (err = valid_id(req, body, "providerId", 0, &provider_id)))
		goto out;
	if (json_array_size(ids) == 0) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "profileIds required");
		goto out;
	}
	/* The union of the selected profiles' categories; a profile without a list (general_all) means all. */
	names = json_array();
	keys = json_array();
	bool all = false;
	for (size_t p = 0; p < catalog_npresets; p++) {
		const struct catalog_preset *pr = &catalog_presets[p];
		bool selected = false;
		size_t i;
		json_t *e;
		json_array_foreach(ids, i, e)
			selected = selected || strcmp(json_string_value(e), pr->id) == 0;
		if (!selected)
			continue;
		json_array_append_new(names, json_string(pr->name));
		if (!pr->categories || !pr->categories[0])
			all = true;
		for (const char *const *k = pr->categories; k && *k; k++)
			json_array_append_new(keys, json_string(*k));
	}
	if (json_array_size(names) == 0) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "No matching profiles found");
		goto out;
	}
	best_by_tier(NULL, best);
	if (provider_id) {
		err = s->ops->get(s, COLL_PROVIDERS, provider_id, &provider, serr, sizeof serr);
		if (err) {
			err = admin_store_fail(req, err, "Provider not found", serr);
			goto out;
		}
		best_by_tier(provider, best);
	}
	struct store_cond cond = { "key", SOP_IN, keys };
	if ((err = admin_find_all(req, s, COLL_ROUTINGCATEGORIES, all ? NULL : &cond, all ? 0 : 1, "order", false,
				  CATEGORY_MAX_COUNT, &cats)))
		goto out;
	long updated = 0, skipped = 0;
	assignments = json_array();
	size_t i;
	json_t *cat;
	json_array_foreach(cats, i, cat) {
		int t = catalog_tier_index(admin_str(cat, "costTier"));
		if (*admin_str(cat, "defaultModel") || t < 0 || !best[t].id) {
			skipped++;
			continue;
		}
		char cid[25];
		snprintf(cid, sizeof cid, "%s", admin_str(cat, "_id"));
		json_t *before = json_deep_copy(cat);
		json_object_set_new(cat, "defaultModel", json_string(best[t].id));
		json_t *v = json_object_get(before, "__v");
		err = s->ops->update(s, COLL_ROUTINGCATEGORIES, cid, cat, json_is_integer(v) ? (long)json_integer_value(v) : -1,
				     NULL, serr, sizeof serr);
		if (err == PRISM_E_CONFLICT || err == PRISM_E_NOT_FOUND) {
			/* Changed or deleted meanwhile: the other writer's state stands. */
			json_decref(before);
			skipped++;
			err = PRISM_OK;
			continue;
		}
		if (err) {
			json_decref(before);
			err = admin_store_fail(req, err, "category update failed", serr);
			goto out;
		}
		audit_record(req, "update", "category", cid, admin_str(cat, "key"), before, cat);
		json_decref(before);
		updated++;
		json_array_append_new(assignments, json_pack("{s:s, s:s, s:s, s:i}", "category", admin_str(cat, "key"),
							     "tier", catalog_tiers[t], "model", best[t].id, "score",
							     best[t].score));
	}
	if (updated)
		admin_changed(req);
	err = admin_reply(req, 200, json_pack("{s:O, s:I, s:I, s:I, s:O}", "profiles", names, "categoriesConsidered",
					       (json_int_t)json_array_size(cats), "updated", (json_int_t)updated,
					       "skipped", (json_int_t)skipped, "assignments", assignments));
out:
	json_decref(assignments);
	json_decref(names);
	json_decref(keys);
	json_decref(cats);
	json_decref(provider);
	json_decref(body);
	return err;
}
