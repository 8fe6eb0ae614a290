/* tenants.c -- see tenants.h. */
#include "config.h"
#include "admin/tenants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "data/catalog.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/rand.h"

enum prism_err
tenants_new_key(char key[TENANT_KEY_LEN + 1], char hash[65], char prefix[TENANT_KEY_PREFIX_LEN + 1])
{
	char hex[65];
	enum prism_err err = rand_hex(hex, 32);
	if (err)
		return err;
	snprintf(key, TENANT_KEY_LEN + 1, "%s%s", TENANT_KEY_PREFIX, hex);
	secure_wipe(hex, sizeof hex);
	crypto_sha256_hex(key, strlen(key), hash);
	snprintf(prefix, TENANT_KEY_PREFIX_LEN + 1, "%.*s", TENANT_KEY_PREFIX_LEN, key);
	return PRISM_OK;
}

json_t *
tenants_key_entry(const char *hash, const char *prefix, const char *label, bool custom, const char *expires_at)
{
	char id[25], now[32];
	store_new_id(id);
	admin_now(now);
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:n, s:s}", "_id", id, "hash", hash, "prefix", prefix,
			 "label", label ? label : "", "enabled", 1, "custom", custom, "expiresAt",
			 expires_at ? json_string(expires_at) : json_null(), "lastUsedAt", "createdAt", now);
}

void
tenants_sync_hashes(json_t *doc)
{
	json_t *hashes = json_array();
	const char *legacy = json_string_value(json_object_get(doc, "apiKeyHash"));
	if (legacy && *legacy)
		json_array_append_new(hashes, json_string(legacy));
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k) {
		const char *h = json_string_value(json_object_get(k, "hash"));
		if (h && *h)
			json_array_append_new(hashes, json_string(h));
	}
	json_object_set_new(doc, "apiKeyHashes", hashes);
}

static void
set_default(json_t *obj, const char *key, json_t *value)
{
	if (!json_object_get(obj, key))
		json_object_set(obj, key, value);
	json_decref(value);
}

static json_t *
sub_object(json_t *doc, const char *key)
{
	json_t *o = json_object_get(doc, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(doc, key, o);
	}
	return o;
}

void
tenants_fill_defaults(json_t *doc)
{
	set_default(doc, "providerIds", json_array());
	json_t *mc = sub_object(doc, "modelConfig");
	set_default(mc, "mode", json_string("all"));
	set_default(mc, "list", json_array());
	set_default(mc, "aliases", json_object());
	json_t *r = sub_object(doc, "routing");
	set_default(r, "enabled", json_false());
	set_default(r, "forceAutoRoute", json_false());
	set_default(r, "forceAutoRouteMode", json_string("off"));
	set_default(r, "classifierFallbacks", json_array());
	json_t *ov = sub_object(r, "overrides");
	set_default(ov, "visionUpgrade", json_true());
	set_default(ov, "toolCallUpgrade", json_true());
	set_default(ov, "toolCallMinTier", json_string("medium"));
	set_default(ov, "confidenceFallback", json_true());
	set_default(ov, "confidenceThreshold", json_real(0.4));
	set_default(ov, "domainGate", json_true());
	set_default(ov, "conversationTurnUpgrade", json_false());
	set_default(ov, "frustrationUpgrade", json_true());
	set_default(ov, "outputLengthUpgrade", json_true());
	set_default(doc, "fallbackChains", json_array());
	set_default(doc, "modelFallbacks", json_array());
	set_default(doc, "pricing", json_object());
	json_t *rl = sub_object(doc, "rateLimit");
	set_default(rl, "requestsPerMinute", json_integer(0));
	set_default(rl, "tokensPerMinute", json_integer(0));
	json_t *bl = sub_object(doc, "budgetLimits");
	set_default(bl, "dailyUsd", json_integer(0));
	set_default(bl, "weeklyUsd", json_integer(0));
	set_default(bl, "monthlyUsd", json_integer(0));
	json_t *bg = sub_object(doc, "budgetGuard");
	set_default(bg, "enabled", json_false());
	set_default(bg, "thresholdPct", json_integer(80));
	set_default(bg, "blockTiers", json_pack("[s,s]", "high", "ultra"));
	set_default(bg, "guardCostMode", json_string("economy"));
	set_default(doc, "active", json_true());
	set_default(doc, "isDefault", json_false());
	set_default(doc, "internal", json_false());
	set_default(doc, "keyEnabled", json_true());
	set_default(doc, "keyLifetimeDays", json_integer(0));
	set_default(doc, "stripThinking", json_true());
	set_default(doc, "printRoutedModel", json_false());
	set_default(doc, "defaultSystemPrompt",
		    json_string("Always respond in the same language the user writes in, unless explicitly asked otherwise."));
	set_default(doc, "apiKeys", json_array());
}

/* --- small helpers -------------------------------------------------------------------------------------- */

static const char *const reserved_slugs[] = {
	"prism", "v1", "admin", "health", "metrics", "public", "docs", "static", "assets", "chat", "_diag",
	"tenant-portal", "ide-config", "setup", "auth", NULL,
};

/* The original's single-key fields. */
static const char *const legacy_fields[] = {
	"apiKeyHash", "apiKeyPrefix", "apiKeyEncrypted", "apiKeyPlaintext", "keyEnabled", "keyExpiresAt", "customApiKey",
	NULL,
};

static const char *const model_modes[] = { "all", "whitelist", "blacklist", NULL };
static const char *const force_modes[] = { "off", "fim_only", "smart", "all", NULL };
static const char *const min_tiers[] = { "low", "medium", "advanced", "high", "ultra", NULL };
static const char *const guard_modes[] = { "economy", "balanced", NULL };
static const char *const fallback_types[] = { "specific", "next-tier", NULL };

#define KEY_SHOWN_ONCE "Save this key \xe2\x80\x94 it will not be shown again."
#define DAY_MS 86400000LL

static bool
nonempty_string(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0;
}

static enum prism_err
bad(struct request *req, const char *field, const char *why)
{
	return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: %s", field, why);
}

static const char *
path_of(char *out, size_t outlen, const char *prefix, const char *key)
{
	snprintf(out, outlen, "%s%s%s", prefix, *prefix ? "." : "", key);
	return out;
}

/* {name: obj[key]} (new reference), so that the valid_* helpers, which name the field they read, name the
 * whole path of a nested field. */
static json_t *
rehome(const json_t *obj, const char *key, const char *name)
{
	json_t *w = json_object();
	json_t *v = json_object_get(obj, key);
	if (v)
		json_object_set(w, name, v);
	return w;
}

/* Provider ids a change refers to, as [field name, id] pairs, checked against the store in one go. */
static void
add_ref(json_t *refs, const char *name, const char *id)
{
	if (refs)
		json_array_append_new(refs, json_pack("[s,s]", name, id));
}

static enum prism_err
provider_refs_check(struct request *req, struct store *s, const json_t *refs)
{
	if (!json_array_size(refs))
		return PRISM_OK;
	json_t *wanted = json_object(), *found = json_object();
	size_t i;
	json_t *r;
	json_array_foreach(refs, i, r)
		json_object_set_new(wanted, json_string_value(json_array_get(r, 1)), json_true());
	enum prism_err err = PRISM_OK;
	const char *id;
	json_t *v;
	json_t *chunk = json_array();
	void *iter = json_object_iter(wanted);
	while (!err && (iter || json_array_size(chunk))) {
		if (iter) {
			json_array_append_new(chunk, json_string(json_object_iter_key(iter)));
			iter = json_object_iter_next(wanted, iter);
			if (iter && json_array_size(chunk) < 200)
				continue;
		}
		struct store_cond cond = { "_id", SOP_IN, chunk };
		json_t *docs = NULL;
		err = admin_find_all(req, s, COLL_PROVIDERS, &cond, 1, NULL, false, 1000, &docs);
		json_array_foreach(docs, i, v)
			json_object_set_new(found, admin_str(v, "_id"), json_true());
		json_decref(docs);
		json_array_clear(chunk);
	}
	json_decref(chunk);
	if (!err) {
		json_array_foreach(refs, i, r) {
			id = json_string_value(json_array_get(r, 1));
			if (!json_object_get(found, id)) {
				err = admin_fail(req, PRISM_E_BAD_REQUEST, "%s: no provider with id %s",
						 json_string_value(json_array_get(r, 0)), id);
				break;
			}
		}
	}
	json_decref(wanted);
	json_decref(found);
	return err;
}

/* --- field validation and merging ----------------------------------------------------------------------- */

enum ftype { F_BOOL, F_INT, F_NUM, F_ENUM, F_STR, F_NULLSTR, F_NULLID };

struct fspec {
	const char *key;
	enum ftype type;
	double min, max;                 /* numbers; max = maximum length for strings */
	const char *const *choices;      /* F_ENUM */
	unsigned flags;                  /* VF_REQUIRED, VF_NONEMPTY */
};

/* Validates the fields of src that specs name and copies them into dst.  An absent or null field keeps
 * dst's value, except for the nullable kinds (F_NULLSTR, F_NULLID, where "" also counts as null), which
 * it removes.  Provider ids go to refs. */
static enum prism_err
merge_fields(struct request *req, const json_t *src, const char *prefix, const struct fspec *specs, size_t n,
	     json_t *dst, json_t *refs)
{
	for (size_t i = 0; i < n; i++) {
		const struct fspec *f = &specs[i];
		char name[320];
		path_of(name, sizeof name, prefix, f->key);
		json_t *v = json_object_get(src, f->key);
		bool nullish = !v || json_is_null(v) || (f->type == F_NULLID && json_is_string(v) &&
							 json_string_length(v) == 0);
		if (nullish) {
			if (f->flags & VF_REQUIRED)
				return bad(req, name, "is required");
			if (v && (f->type == F_NULLSTR || f->type == F_NULLID))
				json_object_del(dst, f->key);
			continue;
		}
		json_t *w = rehome(src, f->key, name), *out = NULL;
		enum prism_err err = PRISM_OK;
		switch (f->type) {
		case F_BOOL: {
			bool b = false;
			if (!(err = valid_bool(req, w, name, 0, &b)))
				out = json_boolean(b);
			break;
		}
		case F_INT: {
			long l = 0;
			if (!(err = valid_int(req, w, name, 0, (long)f->min, (long)f->max, &l)))
				out = json_integer(l);
			break;
		}
		case F_NUM: {
			double d = 0;
			if (!(err = valid_number(req, w, name, 0, f->min, f->max, &d)))
				out = json_is_integer(v) ? json_integer(json_integer_value(v)) : json_real(d);
			break;
		}
		case F_ENUM: {
			const char *s = NULL;
			if (!(err = valid_enum(req, w, name, 0, f->choices, &s)))
				out = json_string(s);
			break;
		}
		case F_STR:
		case F_NULLSTR: {
			const char *s = NULL;
			if (!(err = valid_string(req, w, name, f->flags & VF_NONEMPTY, (size_t)f->max, &s)))
				out = json_string(s);
			break;
		}
		case F_NULLID: {
			const char *s = NULL;
			if (!(err = valid_id(req, w, name, 0, &s))) {
				out = json_string(s);
				add_ref(refs, name, s);
			}
			break;
		}
		}
		json_decref(w);
		if (err)
			return err;
		json_object_set_new(dst, f->key, out);
	}
	return PRISM_OK;
}

/* src[key] when it is an object (borrowed), NULL when absent or null; 400 otherwise. */
static enum prism_err
sub_input(struct request *req, const json_t *src, const char *prefix, const char *key, json_t **out)
{
	char name[320];
	*out = NULL;
	json_t *w = rehome(src, key, path_of(name, sizeof name, prefix, key));
	enum prism_err err = valid_object(req, w, name, 0, out);
	json_decref(w);
	return err;
}

/* src[key] when it is an array of at most max items (borrowed), NULL when absent or null. */
static enum prism_err
array_input(struct request *req, const json_t *src, const char *prefix, const char *key, size_t max, json_t **out)
{
	char name[320];
	*out = NULL;
	path_of(name, sizeof name, prefix, key);
	json_t *v = json_object_get(src, key);
	if (!v || json_is_null(v))
		return PRISM_OK;
	if (!json_is_array(v))
		return bad(req, name, "must be an array");
	if (json_array_size(v) > max)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must have at most %zu items", name, max);
	*out = v;
	return PRISM_OK;
}

/* An array of provider ids (deduplicated copy in *out), NULL when absent. */
static enum prism_err
id_array_input(struct request *req, const json_t *src, const char *prefix, const char *key, size_t max, json_t **out,
	       json_t *refs)
{
	char name[320];
	*out = NULL;
	json_t *w = rehome(src, key, path_of(name, sizeof name, prefix, key)), *ids = NULL;
	enum prism_err err = valid_id_array(req, w, name, 0, max, &ids);
	if (!err && ids) {
		json_t *seen = json_object();
		*out = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(ids, i, e) {
			const char *id = json_string_value(e);
			if (json_object_get(seen, id))
				continue;
			json_object_set_new(seen, id, json_true());
			json_array_append_new(*out, json_string(id));
			char item[360];
			snprintf(item, sizeof item, "%s[%zu]", name, i);
			add_ref(refs, item, id);
		}
		json_decref(seen);
	}
	json_decref(w);
	return err;
}

enum prism_err
tenants_apply_model_config(struct request *req, json_t *doc, const json_t *body, const char *prefix, bool aliases)
{
	static const struct fspec spec[] = { { "mode", F_ENUM, 0, 0, model_modes, 0 } };
	json_t *mc = sub_object(doc, "modelConfig");
	enum prism_err err = merge_fields(req, body, prefix, spec, 1, mc, NULL);
	if (err)
		return err;
	char name[320];
	json_t *w = rehome(body, "list", path_of(name, sizeof name, prefix, "list")), *list = NULL;
	err = valid_string_array(req, w, name, 0, TENANT_MAX_MODEL_LIST, TENANT_MODEL_MAX, &list);
	if (!err && list)
		json_object_set_new(mc, "list", json_deep_copy(list));
	json_decref(w);
	if (err || !aliases)
		return err;
	json_t *al = NULL;
	if ((err = sub_input(req, body, prefix, "aliases", &al)) || !al)
		return err;
	path_of(name, sizeof name, prefix, "aliases");
	if (json_object_size(al) > TENANT_MAX_ALIASES)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must have at most %d entries", name, TENANT_MAX_ALIASES);
	const char *k;
	json_t *v;
	json_object_foreach(al, k, v) {
		if (!*k || strlen(k) > TENANT_MODEL_MAX)
			return bad(req, name, "alias names must be 1 to 256 bytes long");
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > TENANT_MODEL_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%s.%s: must be a model id of 1 to %d bytes", name, k,
					  TENANT_MODEL_MAX);
	}
	json_object_set_new(mc, "aliases", json_deep_copy(al));
	return PRISM_OK;
}

static enum prism_err
apply_routing(struct request *req, json_t *doc, const json_t *in, json_t *refs)
{
	static const struct fspec spec[] = {
		{ "enabled", F_BOOL, 0, 0, NULL, 0 },
		{ "forceAutoRoute", F_BOOL, 0, 0, NULL, 0 },
		{ "forceAutoRouteMode", F_ENUM, 0, 0, force_modes, 0 },
		{ "classifierModel", F_NULLSTR, 0, TENANT_MODEL_MAX, NULL, 0 },
		{ "classifierProvider", F_NULLID, 0, 0, NULL, 0 },
		{ "defaultModel", F_NULLSTR, 0, TENANT_MODEL_MAX, NULL, 0 },
		{ "baselineModel", F_NULLSTR, 0, TENANT_MODEL_MAX, NULL, 0 },
		{ "classifierTimeoutMs", F_INT, 100, 30000, NULL, 0 },
		{ "sessionFillUpgradeThreshold", F_NUM, 0, 1, NULL, 0 },
	};
	static const struct fspec ov_spec[] = {
		{ "visionUpgrade", F_BOOL, 0, 0, NULL, 0 },
		{ "toolCallUpgrade", F_BOOL, 0, 0, NULL, 0 },
		{ "toolCallMinTier", F_ENUM, 0, 0, min_tiers, 0 },
		{ "confidenceFallback", F_BOOL, 0, 0, NULL, 0 },
		{ "confidenceThreshold", F_NUM, 0, 1, NULL, 0 },
		{ "domainGate", F_BOOL, 0, 0, NULL, 0 },
		{ "conversationTurnUpgrade", F_BOOL, 0, 0, NULL, 0 },
		{ "frustrationUpgrade", F_BOOL, 0, 0, NULL, 0 },
		{ "outputLengthUpgrade", F_BOOL, 0, 0, NULL, 0 },
	};
	static const struct fspec cf_spec[] = {
		{ "model", F_STR, 0, TENANT_MODEL_MAX, NULL, VF_REQUIRED | VF_NONEMPTY },
		{ "provider", F_NULLID, 0, 0, NULL, 0 },
	};
	json_t *r = sub_object(doc, "routing");
	enum prism_err err = merge_fields(req, in, "routing", spec, sizeof spec / sizeof spec[0], r, refs);
	json_t *ov = NULL, *cf = NULL;
	if (err || (err = sub_input(req, in, "routing", "overrides", &ov)))
		return err;
	if (ov && (err = merge_fields(req, ov, "routing.overrides", ov_spec, sizeof ov_spec / sizeof ov_spec[0],
				      sub_object(r, "overrides"), NULL)))
		return err;
	if ((err = array_input(req, in, "routing", "classifierFallbacks", TENANT_MAX_CLASSIFIER_FALLBACKS, &cf)) || !cf)
		return err;
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(cf, i, e) {
		char p[64];
		snprintf(p, sizeof p, "routing.classifierFallbacks[%zu]", i);
		if (!json_is_object(e)) {
			err = bad(req, p, "must be an object {model, provider}");
			break;
		}
		json_t *item = json_object();
		json_array_append_new(out, item);
		if ((err = merge_fields(req, e, p, cf_spec, 2, item, refs)))
			break;
	}
	if (err)
		json_decref(out);
	else
		json_object_set_new(r, "classifierFallbacks", out);
	return err;
}

static enum prism_err
apply_chains(struct request *req, json_t *doc, const json_t *body, json_t *refs)
{
	static const struct fspec spec[] = {
		{ "modelPattern", F_STR, 0, TENANT_MODEL_MAX, NULL, VF_REQUIRED | VF_NONEMPTY },
		{ "maxRetries", F_INT, 0, 10, NULL, 0 },
	};
	json_t *in = NULL;
	enum prism_err err = array_input(req, body, "", "fallbackChains", TENANT_MAX_CHAINS, &in);
	if (err || !in)
		return err;
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(in, i, e) {
		char p[64];
		snprintf(p, sizeof p, "fallbackChains[%zu]", i);
		if (!json_is_object(e)) {
			err = bad(req, p, "must be an object {modelPattern, providers, maxRetries}");
			break;
		}
		json_t *item = json_pack("{s:s, s:[], s:i}", "modelPattern", "", "providers", "maxRetries", 2), *ids = NULL;
		json_array_append_new(out, item);
		if ((err = merge_fields(req, e, p, spec, 2, item, refs)) ||
		    (err = id_array_input(req, e, p, "providers", TENANT_MAX_CHAIN_ITEMS, &ids, refs)))
			break;
		if (ids)
			json_object_set_new(item, "providers", ids);
	}
	if (err)
		json_decref(out);
	else
		json_object_set_new(doc, "fallbackChains", out);
	return err;
}

static enum prism_err
apply_model_fallbacks(struct request *req, json_t *doc, const json_t *body, json_t *refs)
{
	static const struct fspec spec[] = {
		{ "type", F_ENUM, 0, 0, fallback_types, 0 },
		{ "sourcePattern", F_STR, 0, TENANT_MODEL_MAX, NULL, VF_REQUIRED | VF_NONEMPTY },
	};
	static const struct fspec fb_spec[] = {
		{ "model", F_STR, 0, TENANT_MODEL_MAX, NULL, VF_REQUIRED | VF_NONEMPTY },
		{ "providerId", F_NULLID, 0, 0, NULL, 0 },
	};
	json_t *in = NULL;
	enum prism_err err = array_input(req, body, "", "modelFallbacks", TENANT_MAX_CHAINS, &in);
	if (err || !in)
		return err;
	json_t *out = json_array();
	size_t i, j;
	json_t *e, *f;
	json_array_foreach(in, i, e) {
		char p[64];
		snprintf(p, sizeof p, "modelFallbacks[%zu]", i);
		if (!json_is_object(e)) {
			err = bad(req, p, "must be an object {type, sourcePattern, fallbacks}");
			break;
		}
		json_t *item = json_pack("{s:s, s:s, s:[]}", "type", "specific", "sourcePattern", "", "fallbacks"), *fbs = NULL;
		json_array_append_new(out, item);
		if ((err = merge_fields(req, e, p, spec, 2, item, refs)) ||
		    (err = array_input(req, e, p, "fallbacks", TENANT_MAX_CHAIN_ITEMS, &fbs)))
			break;
		json_array_foreach(fbs, j, f) {
			char q[96];
			snprintf(q, sizeof q, "%s.fallbacks[%zu]", p, j);
			if (!json_is_object(f)) {
				err = bad(req, q, "must be an object {model, providerId}");
				break;
			}
			json_t *fb = json_object();
			json_array_append_new(json_object_get(item, "fallbacks"), fb);
			if ((err = merge_fields(req, f, q, fb_spec, 2, fb, refs)))
				break;
			if (!json_object_get(fb, "providerId"))
				json_object_set_new(fb, "providerId", json_null());
		}
		if (err)
			break;
	}
	if (err)
		json_decref(out);
	else
		json_object_set_new(doc, "modelFallbacks", out);
	return err;
}

static enum prism_err
apply_pricing(struct request *req, json_t *doc, const json_t *body)
{
	static const struct fspec spec[] = {
		{ "input", F_NUM, 0, TENANT_MAX_AMOUNT, NULL, VF_REQUIRED },
		{ "output", F_NUM, 0, TENANT_MAX_AMOUNT, NULL, VF_REQUIRED },
	};
	json_t *in = NULL;
	enum prism_err err = sub_input(req, body, "", "pricing", &in);
	if (err || !in)
		return err;
	if (json_object_size(in) > TENANT_MAX_PRICING)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "pricing: must have at most %d models", TENANT_MAX_PRICING);
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(in, k, v) {
		char p[320];
		if (!*k || strlen(k) > TENANT_MODEL_MAX) {
			err = bad(req, "pricing", "model ids must be 1 to 256 bytes long");
			break;
		}
		snprintf(p, sizeof p, "pricing.%s", k);
		if (!json_is_object(v)) {
			err = bad(req, p, "must be an object {input, output} (USD per million tokens)");
			break;
		}
		json_t *item = json_object();
		json_object_set_new(out, k, item);
		if ((err = merge_fields(req, v, p, spec, 2, item, NULL)))
			break;
	}
	if (err)
		json_decref(out);
	else
		json_object_set_new(doc, "pricing", out);
	return err;
}

static enum prism_err
apply_budget_guard(struct request *req, json_t *doc, const json_t *in)
{
	static const struct fspec spec[] = {
		{ "enabled", F_BOOL, 0, 0, NULL, 0 },
		{ "thresholdPct", F_NUM, 0, 100, NULL, 0 },
		{ "guardCostMode", F_ENUM, 0, 0, guard_modes, 0 },
	};
	json_t *bg = sub_object(doc, "budgetGuard");
	enum prism_err err = merge_fields(req, in, "budgetGuard", spec, sizeof spec / sizeof spec[0], bg, NULL);
	if (err)
		return err;
	json_t *w = rehome(in, "blockTiers", "budgetGuard.blockTiers"), *tiers = NULL;
	err = valid_string_array(req, w, "budgetGuard.blockTiers", 0, CATALOG_NTIERS + 1, 32, &tiers);
	size_t i;
	json_t *t;
	json_array_foreach(tiers, i, t) {
		/* "premium" is in the original's default list although no such tier exists; it matches nothing. */
		if (err || catalog_tier_index(json_string_value(t)) >= 0 || strcmp(json_string_value(t), "premium") == 0)
			continue;
		err = admin_fail(req, PRISM_E_BAD_REQUEST,
				 "budgetGuard.blockTiers[%zu]: must be one of micro, minimal, low, medium, advanced, high, ultra, critical",
				 i);
	}
	if (!err && tiers)
		json_object_set_new(bg, "blockTiers", json_deep_copy(tiers));
	json_decref(w);
	return err;
}

/* Validates every tenant field body names (those of PUT /tenants/:id) and merges it into doc; provider
 * ids go to refs for providers_check. */
static enum prism_err
apply_fields(struct request *req, json_t *doc, const json_t *body, json_t *refs)
{
	static const struct fspec top[] = {
		{ "name", F_STR, 0, TENANT_NAME_MAX, NULL, VF_NONEMPTY },
		{ "active", F_BOOL, 0, 0, NULL, 0 },
		{ "keyLifetimeDays", F_INT, 0, TENANT_MAX_LIFETIME_DAYS, NULL, 0 },
		{ "stripThinking", F_BOOL, 0, 0, NULL, 0 },
		{ "printRoutedModel", F_BOOL, 0, 0, NULL, 0 },
		{ "defaultSystemPrompt", F_STR, 0, TENANT_MAX_PROMPT, NULL, 0 },
	};
	static const struct fspec rate[] = {
		{ "requestsPerMinute", F_INT, 0, TENANT_MAX_AMOUNT, NULL, 0 },
		{ "tokensPerMinute", F_INT, 0, TENANT_MAX_AMOUNT, NULL, 0 },
	};
	static const struct fspec budget[] = {
		{ "dailyUsd", F_NUM, 0, TENANT_MAX_AMOUNT, NULL, 0 },
		{ "weeklyUsd", F_NUM, 0, TENANT_MAX_AMOUNT, NULL, 0 },
		{ "monthlyUsd", F_NUM, 0, TENANT_MAX_AMOUNT, NULL, 0 },
	};
	json_t *sub = NULL, *ids = NULL;
	enum prism_err err = merge_fields(req, body, "", top, sizeof top / sizeof top[0], doc, refs);
	if (err || (err = id_array_input(req, body, "", "providerIds", TENANT_MAX_PROVIDERS, &ids, refs)))
		return err;
	if (ids)
		json_object_set_new(doc, "providerIds", ids);
	if ((err = sub_input(req, body, "", "modelConfig", &sub)) ||
	    (sub && (err = tenants_apply_model_config(req, doc, sub, "modelConfig", true))))
		return err;
	if ((err = sub_input(req, body, "", "routing", &sub)) || (sub && (err = apply_routing(req, doc, sub, refs))))
		return err;
	if ((err = sub_input(req, body, "", "rateLimit", &sub)) ||
	    (sub && (err = merge_fields(req, sub, "rateLimit", rate, 2, sub_object(doc, "rateLimit"), NULL))))
		return err;
	if ((err = sub_input(req, body, "", "budgetLimits", &sub)) ||
	    (sub && (err = merge_fields(req, sub, "budgetLimits", budget, 3, sub_object(doc, "budgetLimits"), NULL))))
		return err;
	if ((err = sub_input(req, body, "", "budgetGuard", &sub)) || (sub && (err = apply_budget_guard(req, doc, sub))))
		return err;
	if ((err = apply_pricing(req, doc, body)) || (err = apply_chains(req, doc, body, refs)) ||
	    (err = apply_model_fallbacks(req, doc, body, refs)))
		return err;
	return PRISM_OK;
}

static enum prism_err
slug_check(struct request *req, const char *slug)
{
	size_t n = strlen(slug);
	if (n == 0 || n > TENANT_SLUG_MAX)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "slug: must be 1 to %d characters long", TENANT_SLUG_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = slug[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
		if (!ok)
			return bad(req, "slug", "must start with a lowercase letter or digit and contain only lowercase "
					   "letters, digits and '-'");
	}
	for (size_t i = 0; reserved_slugs[i]; i++)
		if (strcmp(slug, reserved_slugs[i]) == 0)
			return admin_fail(req, PRISM_E_BAD_REQUEST, "slug: \"%s\" is reserved", slug);
	return PRISM_OK;
}

/* --- keys ------------------------------------------------------------------------------------------------ */

static void
expiry_from_days(long days, char out[32])
{
	out[0] = '\0';
	if (days > 0)
		clock_iso8601(clock_realtime_ms() + (int64_t)days * DAY_MS, out, 32);
}

static json_t *
iso_or_null(const char *iso)
{
	return iso && *iso ? json_string(iso) : json_null();
}

/* The expiry a request asks for: expiresAt (an ISO-8601 UTC date in the future, or null for never) wins
 * over keyLifetimeDays (0..3650, 0 = never).  *given is false when the body names neither. */
static enum prism_err
expiry_input(struct request *req, const json_t *body, char out[32], bool *given)
{
	out[0] = '\0';
	*given = false;
	json_t *e = json_object_get(body, "expiresAt");
	if (e) {
		*given = true;
		if (json_is_null(e))
			return PRISM_OK;
		const char *s = NULL;
		int64_t ms;
		enum prism_err err = valid_string(req, body, "expiresAt", 0, 64, &s);
		if (err)
			return err;
		if (clock_parse_iso8601(s, &ms))
			return bad(req, "expiresAt", "must be an ISO-8601 date in UTC, e.g. 2027-01-31 or 2027-01-31T12:00:00Z");
		if (ms <= clock_realtime_ms())
			return bad(req, "expiresAt", "must be in the future");
		clock_iso8601(ms, out, 32);
		return PRISM_OK;
	}
	long days = -1;
	enum prism_err err = valid_int(req, body, "keyLifetimeDays", 0, 0, TENANT_MAX_LIFETIME_DAYS, &days);
	if (!err && days >= 0) {
		*given = true;
		expiry_from_days(days, out);
	}
	return err;
}

/* A custom key from body.apiKey (borrowed): 16..256 printable ASCII characters, no spaces. */
static enum prism_err
custom_key_input(struct request *req, const json_t *body, const char **key, size_t *len)
{
	json_t *v = json_object_get(body, "apiKey");
	if (!v || json_is_null(v))
		return bad(req, "apiKey", "is required");
	if (!json_is_string(v))
		return bad(req, "apiKey", "must be a string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n < TENANT_CUSTOM_KEY_MIN || n > TENANT_CUSTOM_KEY_MAX)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "apiKey: must be %d to %d characters long",
				  TENANT_CUSTOM_KEY_MIN, TENANT_CUSTOM_KEY_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return bad(req, "apiKey", "must consist of printable ASCII characters without spaces");
	*key = s;
	*len = n;
	return PRISM_OK;
}

/* The display prefix of a custom key: at most a quarter of it, so the prefix never gives most of a short
 * key away (the original showed the first 12 characters of any key). */
static void
custom_prefix(const char *key, size_t len, char prefix[TENANT_KEY_PREFIX_LEN + 1])
{
	size_t n = len / 4 < TENANT_KEY_PREFIX_LEN ? len / 4 : TENANT_KEY_PREFIX_LEN;
	memcpy(prefix, key, n);
	prefix[n] = '\0';
}

/* Whether any tenant holds a key with this hash: one key must never open two tenants (the original checked
 * only the tenant itself). */
static enum prism_err
hash_in_use(struct request *req, struct store *s, const char *hash, bool *used)
{
	*used = false;
	json_t *all = NULL;
	enum prism_err err = admin_find_all(req, s, COLL_TENANTS, NULL, 0, NULL, false, TENANT_MAX_COUNT, &all);
	if (err)
		return err;
	size_t i, j;
	json_t *t, *k;
	json_array_foreach(all, i, t) {
		const char *legacy = json_string_value(json_object_get(t, "apiKeyHash"));
		if (legacy && crypto_str_eq(legacy, hash))
			*used = true;
		json_array_foreach(json_object_get(t, "apiKeyHashes"), j, k)
			if (json_is_string(k) && crypto_str_eq(json_string_value(k), hash))
				*used = true;
		json_array_foreach(json_object_get(t, "apiKeys"), j, k) {
			const char *h = json_string_value(json_object_get(k, "hash"));
			if (h && crypto_str_eq(h, hash))
				*used = true;
		}
	}
	json_decref(all);
	return PRISM_OK;
}

static json_t *
value_or(const json_t *o, const char *key, json_t *dflt)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return dflt;
	json_decref(dflt);
	return json_deep_copy(v);
}

/* What an answer may show of an apiKeys[] entry. */
static json_t *
key_view(const json_t *k)
{
	json_t *v = json_object();
	json_object_set_new(v, "_id", value_or(k, "_id", json_null()));
	/* A custom key's stored prefix may be most of the key (the original kept 12 characters of any key). */
	const char *pre = json_string_value(json_object_get(k, "prefix"));
	if (json_is_true(json_object_get(k, "custom")) && pre && strlen(pre) > 4) {
		char shown[5];
		snprintf(shown, sizeof shown, "%.4s", pre);
		json_object_set_new(v, "prefix", json_string(shown));
	} else {
		json_object_set_new(v, "prefix", value_or(k, "prefix", json_string("")));
	}
	json_object_set_new(v, "label", value_or(k, "label", json_string("")));
	json_object_set_new(v, "enabled", json_boolean(!json_is_false(json_object_get(k, "enabled"))));
	json_object_set_new(v, "custom", json_boolean(json_is_true(json_object_get(k, "custom"))));
	json_object_set_new(v, "expiresAt", value_or(k, "expiresAt", json_null()));
	json_object_set_new(v, "lastUsedAt", value_or(k, "lastUsedAt", json_null()));
	json_object_set_new(v, "createdAt", value_or(k, "createdAt", json_null()));
	if (json_is_true(json_object_get(k, "primary")))
		json_object_set_new(v, "isPrimary", json_true());
	return v;
}

static bool
has_legacy(const json_t *doc)
{
	return nonempty_string(json_object_get(doc, "apiKeyHash")) || nonempty_string(json_object_get(doc, "apiKeyPrefix"));
}

/* The display prefix of a legacy key.  The original stored the first 12 characters of any key, so a
 * short custom key was readable in full: only generated keys ("omp-" + 64 hex) keep their 12 characters,
 * others show at most 4. */
static json_t *
legacy_prefix(const json_t *doc)
{
	const char *p = admin_str(doc, "apiKeyPrefix");
	if (strncmp(p, TENANT_KEY_PREFIX, strlen(TENANT_KEY_PREFIX)) == 0 && !json_is_true(json_object_get(doc, "customApiKey")))
		return json_string(p);
	char shown[8];
	snprintf(shown, sizeof shown, "%.*s", strlen(p) >= 12 ? 4 : 0, p);
	return json_string(shown);
}

/* The original's default tenant key was the public string "model-prism". */
static bool
legacy_key_is_public(const json_t *doc)
{
	char h[65];
	crypto_sha256_hex("model-prism", strlen("model-prism"), h);
	return crypto_str_eq(admin_str(doc, "apiKeyHash"), h);
}

/* The original's single key as the synthetic entry "legacy", as its GET /keys showed it. */
static json_t *
legacy_view(const json_t *doc)
{
	json_t *v = json_pack("{s:s, s:o, s:s, s:b, s:b, s:o, s:n, s:o, s:b}", "_id", TENANT_LEGACY_KEY_ID, "prefix",
			      legacy_prefix(doc), "label", TENANT_PRIMARY_LABEL, "enabled",
			      !json_is_false(json_object_get(doc, "keyEnabled")), "custom",
			      json_is_true(json_object_get(doc, "customApiKey")), "expiresAt",
			      value_or(doc, "keyExpiresAt", json_null()), "lastUsedAt", "createdAt",
			      value_or(doc, "createdAt", json_null()), "isLegacy", 1);
	return v;
}

json_t *
tenants_view(const json_t *doc)
{
	static const char *const hidden[] = { "apiKeyHash", "apiKeyEncrypted", "apiKeyPlaintext", "apiKeyHashes", NULL };
	json_t *v = json_deep_copy(doc);
	tenants_fill_defaults(v);
	for (size_t i = 0; hidden[i]; i++)
		json_object_del(v, hidden[i]);
	if (json_object_get(v, "apiKeyPrefix"))
		json_object_set_new(v, "apiKeyPrefix", legacy_prefix(doc));
	if (legacy_key_is_public(doc))
		json_object_set_new(v, "insecureDefaultKey", json_true());   /* rotate it: everybody knows it */
	json_t *keys = json_array();
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k)
		json_array_append_new(keys, key_view(k));
	json_object_set_new(v, "apiKeys", keys);
	return v;
}

static json_t *
key_array(json_t *doc)
{
	json_t *a = json_object_get(doc, "apiKeys");
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(doc, "apiKeys", a);
	}
	return a;
}

static json_t *
key_find(json_t *doc, const char *key_id, size_t *index)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k) {
		if (strcmp(admin_str(k, "_id"), key_id) == 0) {
			if (index)
				*index = i;
			return k;
		}
	}
	return NULL;
}

static json_t *
primary_entry(json_t *doc)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k)
		if (json_is_true(json_object_get(k, "primary")))
			return k;
	return NULL;
}

/* Removes the original's single-key fields.  On its gateway keyEnabled = false disabled every key of the
 * tenant and keyExpiresAt expired every key; both are carried over to each apiKeys[] entry, so no key
 * becomes usable that was not.  Returns whether the legacy key was disabled. */
static bool
legacy_strip(json_t *doc)
{
	bool disabled = json_is_false(json_object_get(doc, "keyEnabled"));
	const char *exp = json_string_value(json_object_get(doc, "keyExpiresAt"));
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k) {
		if (disabled)
			json_object_set_new(k, "enabled", json_false());
		const char *own = json_string_value(json_object_get(k, "expiresAt"));
		if (exp && *exp && (!own || strcmp(exp, own) < 0))
			json_object_set_new(k, "expiresAt", json_string(exp));
	}
	for (i = 0; legacy_fields[i]; i++)
		json_object_del(doc, legacy_fields[i]);
	return disabled;
}

/* Moves the legacy key, unchanged, into apiKeys[] (as the primary key when there is none); NULL when the
 * tenant has no legacy key hash. */
static json_t *
legacy_migrate(json_t *doc)
{
	const char *hash = json_string_value(json_object_get(doc, "apiKeyHash"));
	if (!hash || !*hash)
		return NULL;
	json_t *shown = legacy_prefix(doc);
	json_t *e = tenants_key_entry(hash, json_string_value(shown), TENANT_PRIMARY_LABEL,
				      json_is_true(json_object_get(doc, "customApiKey")),
				      json_string_value(json_object_get(doc, "keyExpiresAt")));
	json_decref(shown);
	if (json_object_get(doc, "createdAt"))
		json_object_set(e, "createdAt", json_object_get(doc, "createdAt"));
	if (!primary_entry(doc))
		json_object_set_new(e, "primary", json_true());
	if (legacy_strip(doc))
		json_object_set_new(e, "enabled", json_false());
	json_array_insert_new(key_array(doc), 0, e);
	return e;
}

/* The tenant's primary key gets a new secret: the legacy fields go (the original's key stops working), the
 * primary entry keeps its _id, label and state, or a new one is created. */
static json_t *
install_primary(json_t *doc, const char *hash, const char *prefix, bool custom, const char *expires)
{
	bool disabled = legacy_strip(doc);
	char now[32];
	admin_now(now);
	json_t *p = primary_entry(doc);
	if (!p) {
		p = tenants_key_entry(hash, prefix, TENANT_PRIMARY_LABEL, custom, expires && *expires ? expires : NULL);
		json_object_set_new(p, "primary", json_true());
		json_array_insert_new(key_array(doc), 0, p);
	} else {
		json_object_set_new(p, "hash", json_string(hash));
		json_object_set_new(p, "prefix", json_string(prefix));
		json_object_set_new(p, "custom", json_boolean(custom));
		json_object_set_new(p, "expiresAt", iso_or_null(expires));
		json_object_set_new(p, "lastUsedAt", json_null());
		json_object_set_new(p, "createdAt", json_string(now));
		json_object_del(p, "encrypted");
	}
	if (disabled)
		json_object_set_new(p, "enabled", json_false());
	return p;
}

/* Before every write: no encrypted key copies, an exact apiKeyHashes. */
static void
scrub(json_t *doc)
{
	json_object_del(doc, "apiKeyEncrypted");
	json_object_del(doc, "apiKeyPlaintext");
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k)
		json_object_del(k, "encrypted");
	tenants_sync_hashes(doc);
}

/* --- the default tenant (setup) ------------------------------------------------------------------------- */

enum prism_err
tenants_create_default(struct request *req, struct store *s, json_t **info)
{
	*info = NULL;
	json_t *t = json_true(), *page = NULL;
	struct store_cond cond = { "isDefault", SOP_EQ, t };
	struct store_query q = { &cond, 1, NULL, false, 1, NULL };
	char *next = NULL, serr[256] = "";
	enum prism_err err = s->ops->find(s, COLL_TENANTS, &q, &page, &next, serr, sizeof serr);
	json_decref(t);
	free(next);
	if (err)
		return admin_store_fail(req, err, "tenant lookup failed", serr);
	bool have = json_array_size(page) > 0;
	json_decref(page);
	if (have)
		return PRISM_OK;
	json_t *existing = NULL;
	if ((err = admin_find_one(req, s, COLL_TENANTS, "slug", "api", &existing)))
		return err;
	if (existing) {
		/* A tenant named "api" without the flag (imported data): it becomes the default. */
		char id[25];
		snprintf(id, sizeof id, "%s", admin_str(existing, "_id"));
		json_object_set_new(existing, "isDefault", json_true());
		scrub(existing);
		err = s->ops->update(s, COLL_TENANTS, id, existing, -1, NULL, serr, sizeof serr);
		json_decref(existing);
		return err ? admin_store_fail(req, err, "tenant update failed", serr) : PRISM_OK;
	}
	char key[TENANT_KEY_LEN + 1], hash[65], prefix[TENANT_KEY_PREFIX_LEN + 1];
	if ((err = tenants_new_key(key, hash, prefix)))
		return err;
	json_t *entry = tenants_key_entry(hash, prefix, TENANT_PRIMARY_LABEL, false, NULL);
	json_object_set_new(entry, "primary", json_true());
	json_t *doc = json_pack("{s:s, s:s, s:b, s:[o]}", "slug", "api", "name", "Default", "isDefault", 1, "apiKeys",
				entry);
	tenants_fill_defaults(doc);
	json_object_del(doc, "keyEnabled");
	tenants_sync_hashes(doc);
	char id[25];
	err = s->ops->insert(s, COLL_TENANTS, doc, id, serr, sizeof serr);
	json_decref(doc);
	if (err) {
		secure_wipe(key, sizeof key);
		return admin_store_fail(req, err, "A tenant with the slug api already exists", serr);
	}
	audit_record(req, "create", "tenant", id, "api", NULL, NULL);
	*info = json_pack("{s:s, s:s, s:s, s:s, s:s}", "_id", id, "slug", "api", "name", "Default", "apiKey", key,
			  "keyPrefix", prefix);
	secure_wipe(key, sizeof key);
	return PRISM_OK;
}

/* --- reading and writing tenants ------------------------------------------------------------------------ */

static enum prism_err
tenant_load(struct request *req, struct store *s, const char *id, json_t **doc)
{
	char serr[256] = "";
	*doc = NULL;
	enum prism_err err = s->ops->get(s, COLL_TENANTS, id, doc, serr, sizeof serr);
	if (err == PRISM_E_NOT_FOUND)
		return admin_fail(req, err, "Tenant not found");
	return err ? admin_store_fail(req, err, "tenant lookup failed", serr) : PRISM_OK;
}

static long
version_of(const json_t *doc)
{
	json_t *v = json_object_get(doc, "__v");
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

enum prism_err
tenants_modify(struct request *req, struct store *s, const char *id, tenants_mutator fn, void *ctx, json_t **before,
	       json_t **after)
{
	if (before)
		*before = NULL;
	if (after)
		*after = NULL;
	for (int attempt = 0;; attempt++) {
		json_t *doc = NULL;
		enum prism_err err = tenant_load(req, s, id, &doc);
		if (err)
			return err;
		long version = version_of(doc);
		json_t *orig = json_deep_copy(doc);
		if ((err = fn(req, s, doc, ctx))) {
			json_decref(orig);
			json_decref(doc);
			return err;
		}
		scrub(doc);
		if (json_equal(orig, doc)) {
			if (before)
				*before = json_incref(orig);
			if (after)
				*after = json_incref(doc);
			json_decref(orig);
			json_decref(doc);
			return PRISM_OK;
		}
		char serr[256] = "";
		long nv = version;
		err = s->ops->update(s, COLL_TENANTS, id, doc, version, &nv, serr, sizeof serr);
		if (err == PRISM_E_CONFLICT && attempt + 1 < TENANT_WRITE_RETRIES) {
			/* Someone else wrote the tenant since we read it: apply the change to their version. */
			json_decref(orig);
			json_decref(doc);
			continue;
		}
		if (err) {
			json_decref(orig);
			json_decref(doc);
			if (err == PRISM_E_NOT_FOUND)
				return admin_fail(req, err, "Tenant not found");
			return admin_store_fail(req, err, "The tenant was changed concurrently; try again", serr);
		}
		/* The stored document (with the store's updatedAt); the local one if it cannot be read. */
		json_t *fresh = NULL;
		if (s->ops->get(s, COLL_TENANTS, id, &fresh, serr, sizeof serr) == PRISM_OK) {
			json_decref(doc);
			doc = fresh;
		} else {
			json_object_set_new(doc, "__v", json_integer(nv));
		}
		if (before)
			*before = json_incref(orig);
		if (after)
			*after = json_incref(doc);
		json_decref(orig);
		json_decref(doc);
		return PRISM_OK;
	}
}

static bool
changed(const json_t *before, const json_t *after)
{
	return version_of(before) != version_of(after);
}

/* "slug" or "slug: label" for the audit trail. */
static void
key_audit_name(const json_t *doc, const json_t *entry_view, char *out, size_t outlen)
{
	const char *label = entry_view ? admin_str(entry_view, "label") : "";
	snprintf(out, outlen, "%s%s%s", admin_str(doc, "slug"), *label ? ": " : "", label);
}

static enum prism_err
optional_body(struct request *req, json_t **out)
{
	*out = NULL;
	enum prism_err err = request_read_body(req);
	if (err)
		return err;
	if (req->body.len == 0) {
		*out = json_object();
		return PRISM_OK;
	}
	return admin_body(req, out);
}

/* --- tenant handlers ------------------------------------------------------------------------------------ */

enum prism_err
tenants_list(struct request *req)
{
	return tenants_reply_list(req, NULL, 0);
}

enum prism_err
tenants_reply_list(struct request *req, const struct store_cond *conds, size_t nconds)
{
	struct store *s;
	json_t *all = NULL;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_find_all(req, s, COLL_TENANTS, conds, nconds, "createdAt", false, TENANT_MAX_COUNT,
					 &all)))
		return err;
	json_t *out = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(all, i, t)
		json_array_append_new(out, tenants_view(t));
	json_decref(all);
	return admin_reply(req, 200, out);
}

enum prism_err
tenants_get(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = admin_store(req, &s)) || (err = tenant_load(req, s, id, &doc)))
		return err;
	json_t *v = tenants_view(doc);
	json_decref(doc);
	return admin_reply(req, 200, v);
}

enum prism_err
tenants_create(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *doc = NULL, *refs = json_array(), *existing = NULL, *stored = NULL;
	const char *slug = NULL, *name = NULL;
	char key[TENANT_KEY_LEN + 1] = "", hash[65], prefix[TENANT_KEY_PREFIX_LEN + 1], expires[32], serr[256] = "";
	bool given;
	enum prism_err err = admin_body(req, &body);
	if (err || (err = valid_string(req, body, "slug", VF_REQUIRED, 256, &slug)) || (err = slug_check(req, slug)) ||
	    (err = valid_string(req, body, "name", VF_REQUIRED, TENANT_NAME_MAX, &name)))
		goto out;
	doc = json_object();
	tenants_fill_defaults(doc);
	json_object_del(doc, "keyEnabled");       /* a legacy field: keys carry their own state */
	json_object_set_new(doc, "slug", json_string(slug));
	if ((err = apply_fields(req, doc, body, refs)) || (err = expiry_input(req, body, expires, &given)) ||
	    (err = admin_store(req, &s)) || (err = provider_refs_check(req, s, refs)) ||
	    (err = admin_find_one(req, s, COLL_TENANTS, "slug", slug, &existing)))
		goto out;
	if (existing) {
		err = admin_fail(req, PRISM_E_CONFLICT, "Slug already in use");
		goto out;
	}
	if ((err = tenants_new_key(key, hash, prefix)))
		goto out;
	json_t *entry = tenants_key_entry(hash, prefix, TENANT_PRIMARY_LABEL, false, expires[0] ? expires : NULL);
	json_object_set_new(entry, "primary", json_true());
	json_array_append_new(key_array(doc), entry);
	scrub(doc);
	char id[25];
	if ((err = s->ops->insert(s, COLL_TENANTS, doc, id, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "Slug already in use", serr);
		goto out;
	}
	audit_record(req, "create", "tenant", id, slug, NULL, NULL);
	admin_changed(req);
	if (s->ops->get(s, COLL_TENANTS, id, &stored, serr, sizeof serr) != PRISM_OK) {
		json_object_set_new(doc, "_id", json_string(id));
		stored = json_incref(doc);
	}
	json_t *v = tenants_view(stored);
	json_object_set_new(v, "apiKey", json_string(key));
	json_object_set_new(v, "keyPrefix", json_string(prefix));
	err = admin_reply(req, 201, v);
out:
	secure_wipe(key, sizeof key);
	json_decref(stored);
	json_decref(existing);
	json_decref(refs);
	json_decref(doc);
	json_decref(body);
	return err;
}

struct update_ctx {
	const json_t *body;
};

static enum prism_err
mut_update(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	struct update_ctx *c = vctx;
	json_t *slug = json_object_get(c->body, "slug");
	if (slug && !json_is_null(slug) && (!json_is_string(slug) || strcmp(json_string_value(slug), admin_str(doc, "slug"))))
		return bad(req, "slug", "cannot be changed");
	bool enabled;
	enum prism_err err = valid_bool(req, c->body, "keyEnabled", 0, &enabled);
	if (err)
		return err;
	if (json_object_get(c->body, "keyEnabled") && !json_is_null(json_object_get(c->body, "keyEnabled"))) {
		/* The original's switch for its single key; tenants without one manage each key. */
		if (has_legacy(doc))
			json_object_set_new(doc, "keyEnabled", json_boolean(enabled));
		else if (!enabled)
			return bad(req, "keyEnabled", "this tenant's keys are enabled and disabled one by one: "
						      "PATCH /api/prism/admin/tenants/:id/keys/:keyId");
	}
	json_t *refs = json_array();
	if (!(err = apply_fields(req, doc, c->body, refs)))
		err = provider_refs_check(req, s, refs);
	json_decref(refs);
	return err;
}

enum prism_err
tenants_update(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *before = NULL, *after = NULL;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = admin_body(req, &body)) || (err = admin_store(req, &s)))
		goto out;
	struct update_ctx c = { body };
	if ((err = tenants_modify(req, s, id, mut_update, &c, &before, &after)))
		goto out;
	if (changed(before, after)) {
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

struct provider_ctx {
	const char *provider_id;
	bool added;
};

static enum prism_err
mut_add_provider(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	(void)req;
	(void)s;
	struct provider_ctx *c = vctx;
	json_t *ids = json_object_get(doc, "providerIds");
	if (!json_is_array(ids)) {
		ids = json_array();
		json_object_set_new(doc, "providerIds", ids);
	}
	size_t i;
	json_t *e;
	c->added = true;
	json_array_foreach(ids, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), c->provider_id) == 0)
			c->added = false;
	if (c->added)
		json_array_append_new(ids, json_string(c->provider_id));
	return PRISM_OK;
}

enum prism_err
tenants_default_add_provider(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *provider = NULL, *page = NULL, *before = NULL, *after = NULL, *t = json_true();
	const char *pid = NULL;
	char serr[256] = "", *next = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err || (err = valid_id(req, body, "providerId", VF_REQUIRED, &pid)) || (err = admin_store(req, &s)))
		goto out;
	if ((err = s->ops->get(s, COLL_PROVIDERS, pid, &provider, serr, sizeof serr))) {
		err = err == PRISM_E_NOT_FOUND ? admin_fail(req, err, "Provider not found") :
						 admin_store_fail(req, err, "provider lookup failed", serr);
		goto out;
	}
	struct store_cond cond = { "isDefault", SOP_EQ, t };
	struct store_query q = { &cond, 1, NULL, false, 1, NULL };
	if ((err = s->ops->find(s, COLL_TENANTS, &q, &page, &next, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "tenant lookup failed", serr);
		goto out;
	}
	if (!json_array_size(page)) {
		err = admin_fail(req, PRISM_E_NOT_FOUND, "Default tenant not found");
		goto out;
	}
	char id[25];
	snprintf(id, sizeof id, "%s", admin_str(json_array_get(page, 0), "_id"));
	struct provider_ctx c = { pid, false };
	if ((err = tenants_modify(req, s, id, mut_add_provider, &c, &before, &after)))
		goto out;
	if (changed(before, after)) {
		audit_record(req, "update", "tenant", id, admin_str(after, "slug"), before, after);
		admin_changed(req);
	}
	err = admin_reply(req, 200, json_pack("{s:b, s:s, s:s}", "added", c.added, "tenantId", id, "tenantSlug",
					      admin_str(after, "slug")));
out:
	free(next);
	json_decref(t);
	json_decref(page);
	json_decref(provider);
	json_decref(before);
	json_decref(after);
	json_decref(body);
	return err;
}

static enum prism_err
mut_deactivate(struct request *req, struct store *s, json_t *doc, void *ctx)
{
	(void)req;
	(void)s;
	(void)ctx;
	json_object_set_new(doc, "active", json_false());
	return PRISM_OK;
}

/* Deletes every document of c whose `field` is value, a page at a time. */
static enum prism_err
delete_where(struct request *req, struct store *s, enum store_coll c, const char *field, const char *value, long *count)
{
	json_t *v = json_string(value);
	struct store_cond cond = { field, SOP_EQ, v };
	struct store_query q = { &cond, 1, NULL, false, 500, NULL };
	char serr[256] = "";
	enum prism_err err = PRISM_OK;
	*count = 0;
	for (;;) {
		json_t *page = NULL;
		char *next = NULL;
		err = s->ops->find(s, c, &q, &page, &next, serr, sizeof serr);
		free(next);
		if (err || !json_array_size(page)) {
			json_decref(page);
			break;
		}
		size_t i;
		json_t *d;
		long removed = 0;
		json_array_foreach(page, i, d) {
			enum prism_err e = s->ops->remove(s, c, admin_str(d, "_id"), serr, sizeof serr);
			if (e == PRISM_OK)
				removed++;
			else if (e != PRISM_E_NOT_FOUND)
				err = e;
			if (err)
				break;
		}
		json_decref(page);
		*count += removed;
		/* A page of which nothing could be removed would come back forever. */
		if (err || removed == 0)
			break;
	}
	json_decref(v);
	if (err)
		return admin_store_fail(req, err, "cascade delete failed", serr);
	return PRISM_OK;
}

/* Removes the tenant from the users assigned to it. */
static enum prism_err
users_unassign(struct request *req, struct store *s, const char *tenant_id, long *count)
{
	json_t *v = json_string(tenant_id), *users = NULL;
	struct store_cond cond = { "tenants", SOP_CONTAINS, v };
	enum prism_err err = admin_find_all(req, s, COLL_USERS, &cond, 1, NULL, false, TENANT_MAX_COUNT, &users);
	json_decref(v);
	*count = 0;
	size_t i;
	json_t *u;
	json_array_foreach(users, i, u) {
		char uid[25], serr[256] = "";
		snprintf(uid, sizeof uid, "%s", admin_str(u, "_id"));
		for (int attempt = 0; !err; attempt++) {
			json_t *doc = NULL, *kept = json_array();
			err = s->ops->get(s, COLL_USERS, uid, &doc, serr, sizeof serr);
			if (err == PRISM_E_NOT_FOUND) {
				err = PRISM_OK;
				json_decref(kept);
				break;
			}
			size_t j;
			json_t *t;
			json_array_foreach(json_object_get(doc, "tenants"), j, t)
				if (!json_is_string(t) || strcmp(json_string_value(t), tenant_id))
					json_array_append(kept, t);
			if (!err) {
				json_object_set_new(doc, "tenants", kept);
				kept = NULL;
				err = s->ops->update(s, COLL_USERS, uid, doc, version_of(doc), NULL, serr, sizeof serr);
			}
			json_decref(kept);
			json_decref(doc);
			if (err == PRISM_E_CONFLICT && attempt + 1 < TENANT_WRITE_RETRIES) {
				err = PRISM_OK;
				continue;
			}
			if (err == PRISM_E_NOT_FOUND)
				err = PRISM_OK;
			else if (!err)
				(*count)++;
			break;
		}
		if (err) {
			err = admin_store_fail(req, err, "cannot update the users of the tenant", serr);
			break;
		}
	}
	json_decref(users);
	return err;
}

enum prism_err
tenants_delete(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL, *before = NULL, *after = NULL;
	char serr[256] = "";
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = admin_store(req, &s)) || (err = tenant_load(req, s, id, &doc)))
		goto out;
	if (json_is_true(json_object_get(doc, "isDefault"))) {
		err = admin_fail(req, PRISM_E_FORBIDDEN, "Cannot delete the default tenant");
		goto out;
	}
	/* First the keys stop working (and the gateway stops logging for it), then its data goes, then the
	 * tenant: a failure midway leaves an inactive tenant whose deletion can simply be repeated. */
	if (!json_is_false(json_object_get(doc, "active"))) {
		if ((err = tenants_modify(req, s, id, mut_deactivate, NULL, &before, &after)))
			goto out;
		admin_changed(req);
	}
	static const struct {
		const char *name;
		enum store_coll coll;
	} cascade[] = {
		{ "requestLogs", COLL_REQUESTLOGS },
		{ "dailyStats", COLL_DAILYSTATS },
		{ "dailyCategoryStats", COLL_DAILYCATEGORYSTATS },
		{ "dailyUserStats", COLL_DAILYUSERSTATS },
		{ "quotas", COLL_QUOTAS },
		{ "ruleSets", COLL_ROUTINGRULESETS },
	};
	json_t *counts = json_object();
	long n = 0;
	for (size_t i = 0; i < sizeof cascade / sizeof cascade[0]; i++) {
		if ((err = delete_where(req, s, cascade[i].coll, "tenantId", id, &n)))
			break;
		json_object_set_new(counts, cascade[i].name, json_integer(n));
	}
	if (!err && !(err = users_unassign(req, s, id, &n)))
		json_object_set_new(counts, "users", json_integer(n));
	if (!err && (err = s->ops->remove(s, COLL_TENANTS, id, serr, sizeof serr)))
		err = err == PRISM_E_NOT_FOUND ? admin_fail(req, err, "Tenant not found") :
						 admin_store_fail(req, err, "tenant delete failed", serr);
	if (err) {
		json_decref(counts);
		goto out;
	}
	audit_record(req, "delete", "tenant", id, admin_str(doc, "slug"), NULL, NULL);
	admin_changed(req);
	err = admin_reply(req, 200, json_pack("{s:b, s:o}", "success", 1, "cascade", counts));
out:
	json_decref(before);
	json_decref(after);
	json_decref(doc);
	return err;
}

/* --- key handlers --------------------------------------------------------------------------------------- */

struct key_ctx {
	const char *key_id;             /* the :keyId, or NULL */
	char hash[65];
	char prefix[TENANT_KEY_PREFIX_LEN + 1];
	bool custom;
	const char *label;              /* NULL: keep */
	bool set_enabled, enabled;
	bool set_expiry;
	char expires[32];
	long lifetime;                  /* >= 0: store as the tenant's keyLifetimeDays */
	json_t *before, *result;        /* the entry's view before and after (new references) */
};

static void
key_ctx_free(struct key_ctx *c)
{
	secure_wipe(c->hash, sizeof c->hash);
	json_decref(c->before);
	json_decref(c->result);
	c->before = c->result = NULL;
}

static void
key_ctx_result(struct key_ctx *c, const json_t *before, const json_t *after)
{
	json_decref(c->before);
	json_decref(c->result);
	c->before = before ? json_incref((json_t *)before) : NULL;
	c->result = after ? json_incref((json_t *)after) : NULL;
}

/* rotate-key, set-key and the rotation of "legacy": a new secret for the primary key. */
static enum prism_err
mut_primary(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	(void)req;
	(void)s;
	struct key_ctx *c = vctx;
	if (c->lifetime >= 0)
		json_object_set_new(doc, "keyLifetimeDays", json_integer(c->lifetime));
	char expires[32];
	if (c->set_expiry) {
		snprintf(expires, sizeof expires, "%s", c->expires);
	} else {
		json_t *l = json_object_get(doc, "keyLifetimeDays");
		expiry_from_days(json_is_number(l) ? (long)json_number_value(l) : 0, expires);
	}
	json_t *old = primary_entry(doc);
	json_t *bv = old ? key_view(old) : has_legacy(doc) ? legacy_view(doc) : NULL;
	json_t *av = key_view(install_primary(doc, c->hash, c->prefix, c->custom, expires));
	key_ctx_result(c, bv, av);
	json_decref(bv);
	json_decref(av);
	return PRISM_OK;
}

static enum prism_err
mut_add_key(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	(void)s;
	struct key_ctx *c = vctx;
	json_t *keys = key_array(doc);
	if (json_array_size(keys) >= TENANT_MAX_KEYS)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "apiKeys: a tenant has at most %d keys; revoke one first",
				  TENANT_MAX_KEYS);
	json_t *e = tenants_key_entry(c->hash, c->prefix, c->label ? c->label : "", c->custom,
				      c->expires[0] ? c->expires : NULL);
	json_array_append_new(keys, e);
	json_t *av = key_view(e);
	key_ctx_result(c, NULL, av);
	json_decref(av);
	return PRISM_OK;
}

static enum prism_err
mut_patch_key(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	(void)s;
	struct key_ctx *c = vctx;
	json_t *k;
	if (strcmp(c->key_id, TENANT_LEGACY_KEY_ID) == 0) {
		json_t *bv = has_legacy(doc) ? legacy_view(doc) : NULL;
		k = legacy_migrate(doc);
		json_decref(c->before);
		c->before = bv;
	} else {
		k = key_find(doc, c->key_id, NULL);
		json_decref(c->before);
		c->before = k ? key_view(k) : NULL;
	}
	if (!k)
		return admin_fail(req, PRISM_E_NOT_FOUND, "API key not found");
	if (c->label)
		json_object_set_new(k, "label", json_string(c->label));
	if (c->set_enabled)
		json_object_set_new(k, "enabled", json_boolean(c->enabled));
	if (c->set_expiry)
		json_object_set_new(k, "expiresAt", iso_or_null(c->expires));
	json_decref(c->result);
	c->result = key_view(k);
	return PRISM_OK;
}

static enum prism_err
mut_delete_key(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	(void)s;
	struct key_ctx *c = vctx;
	json_decref(c->before);
	c->before = NULL;
	if (strcmp(c->key_id, TENANT_LEGACY_KEY_ID) == 0) {
		if (!has_legacy(doc))
			return admin_fail(req, PRISM_E_NOT_FOUND, "API key not found");
		c->before = legacy_view(doc);
		legacy_strip(doc);
		return PRISM_OK;
	}
	size_t index;
	json_t *k = key_find(doc, c->key_id, &index);
	if (!k)
		return admin_fail(req, PRISM_E_NOT_FOUND, "API key not found");
	c->before = key_view(k);
	json_array_remove(json_object_get(doc, "apiKeys"), index);
	return PRISM_OK;
}

static enum prism_err
mut_rotate_key(struct request *req, struct store *s, json_t *doc, void *vctx)
{
	struct key_ctx *c = vctx;
	if (strcmp(c->key_id, TENANT_LEGACY_KEY_ID) == 0) {
		if (!has_legacy(doc))
			return admin_fail(req, PRISM_E_NOT_FOUND, "API key not found");
		return mut_primary(req, s, doc, c);
	}
	json_t *k = key_find(doc, c->key_id, NULL);
	if (!k)
		return admin_fail(req, PRISM_E_NOT_FOUND, "API key not found");
	json_t *bv = key_view(k);
	char expires[32] = "", now[32];
	if (c->set_expiry) {
		snprintf(expires, sizeof expires, "%s", c->expires);
	} else {
		/* The new secret lives as long as the old one was meant to. */
		int64_t exp_ms, created_ms;
		const char *exp = json_string_value(json_object_get(k, "expiresAt"));
		const char *created = json_string_value(json_object_get(k, "createdAt"));
		if (exp && created && !clock_parse_iso8601(exp, &exp_ms) && !clock_parse_iso8601(created, &created_ms) &&
		    exp_ms > created_ms)
			clock_iso8601(clock_realtime_ms() + (exp_ms - created_ms), expires, sizeof expires);
		else if (exp)
			expiry_from_days(json_is_number(json_object_get(doc, "keyLifetimeDays")) ?
						 (long)json_number_value(json_object_get(doc, "keyLifetimeDays")) : 0,
					 expires);
	}
	admin_now(now);
	json_object_set_new(k, "hash", json_string(c->hash));
	json_object_set_new(k, "prefix", json_string(c->prefix));
	json_object_set_new(k, "custom", json_false());
	json_object_set_new(k, "expiresAt", iso_or_null(expires));
	json_object_set_new(k, "lastUsedAt", json_null());
	json_object_set_new(k, "createdAt", json_string(now));
	json_t *av = key_view(k);
	key_ctx_result(c, bv, av);
	json_decref(bv);
	json_decref(av);
	return PRISM_OK;
}

/* A :keyId is an entry's _id or "legacy"; anything else cannot exist. */
static enum prism_err
key_param(struct request *req, const char **out)
{
	const char *v = request_param(req, "keyId");
	if (!v || (strcmp(v, TENANT_LEGACY_KEY_ID) != 0 && !store_id_valid(v)))
		return admin_fail(req, PRISM_E_NOT_FOUND, "API key not found");
	*out = v;
	return PRISM_OK;
}

/* Runs a key change on tenant :id and records it; *after gets the tenant after the change. */
static enum prism_err
key_change(struct request *req, struct store *s, const char *id, tenants_mutator fn, struct key_ctx *c,
	   const char *action, json_t **after)
{
	json_t *before = NULL;
	enum prism_err err = tenants_modify(req, s, id, fn, c, &before, after);
	if (err)
		return err;
	if (changed(before, *after)) {
		char name[256];
		key_audit_name(*after, c->result ? c->result : c->before, name, sizeof name);
		audit_record(req, action, "api-key", id, name, c->before, c->result);
		admin_changed(req);
	}
	json_decref(before);
	return PRISM_OK;
}

enum prism_err
tenants_keys_list(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = admin_store(req, &s)) || (err = tenant_load(req, s, id, &doc)))
		return err;
	json_t *keys = json_array();
	if (has_legacy(doc))
		json_array_append_new(keys, legacy_view(doc));
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k)
		json_array_append_new(keys, key_view(k));
	json_decref(doc);
	return admin_reply(req, 200, json_pack("{s:o}", "keys", keys));
}

static enum prism_err
new_key_answer(struct request *req, int status, const struct key_ctx *c, const char *key, const char *message)
{
	json_t *r = c->result;
	json_t *body = json_pack("{s:O, s:O, s:O, s:O}", "_id", json_object_get(r, "_id"), "prefix",
				 json_object_get(r, "prefix"), "label", json_object_get(r, "label"), "expiresAt",
				 json_object_get(r, "expiresAt"));
	if (key)
		json_object_set_new(body, "apiKey", json_string(key));
	json_object_set_new(body, "message", json_string(message));
	return admin_reply(req, status, body);
}

enum prism_err
tenants_keys_create(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	char key[TENANT_KEY_LEN + 1] = "";
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = optional_body(req, &body)) ||
	    (err = valid_string(req, body, "label", 0, TENANT_LABEL_MAX, &c.label)) ||
	    (err = expiry_input(req, body, c.expires, &c.set_expiry)) || (err = admin_store(req, &s)) ||
	    (err = tenants_new_key(key, c.hash, c.prefix)) ||
	    (err = key_change(req, s, id, mut_add_key, &c, "create", &after)))
		goto out;
	err = new_key_answer(req, 201, &c, key, "Additional API key created. " KEY_SHOWN_ONCE);
out:
	secure_wipe(key, sizeof key);
	key_ctx_free(&c);
	json_decref(after);
	json_decref(body);
	return err;
}

/* Stores the client-chosen key (already validated) through fn and answers; the key must not be in use yet. */
static enum prism_err
custom_key_save(struct request *req, struct store *s, const char *id, const char *key, size_t len,
		struct key_ctx *c, tenants_mutator fn, const char *action, json_t **after, int status,
		const char *message)
{
	bool used = false;
	crypto_sha256_hex(key, len, c->hash);
	custom_prefix(key, len, c->prefix);
	enum prism_err err = hash_in_use(req, s, c->hash, &used);
	if (err)
		return err;
	if (used)
		return admin_fail(req, PRISM_E_CONFLICT, "This key is already in use");
	if ((err = key_change(req, s, id, fn, c, action, after)))
		return err;
	return new_key_answer(req, status, c, NULL, message);
}

enum prism_err
tenants_keys_custom(struct request *req)
{
	struct store *s;
	const char *id, *key = NULL;
	size_t len = 0;
	json_t *body = NULL, *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	c.custom = true;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = admin_body(req, &body)) || (err = custom_key_input(req, body, &key, &len)) ||
	    (err = valid_string(req, body, "label", 0, TENANT_LABEL_MAX, &c.label)) ||
	    (err = expiry_input(req, body, c.expires, &c.set_expiry)) || (err = admin_store(req, &s)))
		goto out;
	err = custom_key_save(req, s, id, key, len, &c, mut_add_key, "create", &after, 201, "Custom API key added.");
out:
	if (key)
		secure_wipe((char *)key, len);
	key_ctx_free(&c);
	json_decref(after);
	json_decref(body);
	return err;
}

enum prism_err
tenants_rotate_key(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	char key[TENANT_KEY_LEN + 1] = "";
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = optional_body(req, &body)) || (err = expiry_input(req, body, c.expires, &c.set_expiry)) ||
	    (err = admin_store(req, &s)) || (err = tenants_new_key(key, c.hash, c.prefix)) ||
	    (err = key_change(req, s, id, mut_primary, &c, "rotate", &after)))
		goto out;
	err = new_key_answer(req, 200, &c, key, "API key rotated. " KEY_SHOWN_ONCE);
out:
	secure_wipe(key, sizeof key);
	key_ctx_free(&c);
	json_decref(after);
	json_decref(body);
	return err;
}

enum prism_err
tenants_set_key(struct request *req)
{
	struct store *s;
	const char *id, *key = NULL;
	size_t len = 0;
	json_t *body = NULL, *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	c.custom = true;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = admin_body(req, &body)) || (err = custom_key_input(req, body, &key, &len)) ||
	    (err = valid_int(req, body, "keyLifetimeDays", 0, 0, TENANT_MAX_LIFETIME_DAYS, &c.lifetime)) ||
	    (err = expiry_input(req, body, c.expires, &c.set_expiry)) || (err = admin_store(req, &s)))
		goto out;
	err = custom_key_save(req, s, id, key, len, &c, mut_primary, "set-key", &after, 200, "Custom API key saved.");
out:
	if (key)
		secure_wipe((char *)key, len);
	key_ctx_free(&c);
	json_decref(after);
	json_decref(body);
	return err;
}

enum prism_err
tenants_keys_patch(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = key_param(req, &c.key_id)) || (err = admin_body(req, &body)) ||
	    (err = valid_string(req, body, "label", 0, TENANT_LABEL_MAX, &c.label)) ||
	    (err = valid_bool(req, body, "enabled", 0, &c.enabled)))
		goto out;
	c.set_enabled = json_is_boolean(json_object_get(body, "enabled"));
	if (json_object_get(body, "expiresAt")) {
		json_t *only = json_pack("{s:O}", "expiresAt", json_object_get(body, "expiresAt"));
		err = expiry_input(req, only, c.expires, &c.set_expiry);
		json_decref(only);
		if (err)
			goto out;
	}
	if ((err = admin_store(req, &s)) || (err = key_change(req, s, id, mut_patch_key, &c, "update", &after)))
		goto out;
	err = admin_reply(req, 200, json_pack("{s:O, s:O, s:O, s:O, s:O}", "_id", json_object_get(c.result, "_id"),
					      "prefix", json_object_get(c.result, "prefix"), "label",
					      json_object_get(c.result, "label"), "enabled",
					      json_object_get(c.result, "enabled"), "expiresAt",
					      json_object_get(c.result, "expiresAt")));
out:
	key_ctx_free(&c);
	json_decref(after);
	json_decref(body);
	return err;
}

enum prism_err
tenants_keys_delete(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = key_param(req, &c.key_id)) || (err = admin_store(req, &s)) ||
	    (err = key_change(req, s, id, mut_delete_key, &c, "delete", &after)))
		goto out;
	err = admin_reply(req, 200, json_pack("{s:b, s:s}", "success", 1, "message", "API key revoked"));
out:
	key_ctx_free(&c);
	json_decref(after);
	return err;
}

enum prism_err
tenants_keys_rotate(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *after = NULL;
	struct key_ctx c = { 0 };
	c.lifetime = -1;
	char key[TENANT_KEY_LEN + 1] = "";
	enum prism_err err = admin_param_id(req, "id", "Tenant", &id);
	if (err || (err = key_param(req, &c.key_id)) || (err = optional_body(req, &body)) ||
	    (err = expiry_input(req, body, c.expires, &c.set_expiry)) || (err = admin_store(req, &s)) ||
	    (err = tenants_new_key(key, c.hash, c.prefix)) ||
	    (err = key_change(req, s, id, mut_rotate_key, &c, "rotate", &after)))
		goto out;
	err = new_key_answer(req, 200, &c, key, "API key rotated. " KEY_SHOWN_ONCE);
out:
	secure_wipe(key, sizeof key);
	key_ctx_free(&c);
	json_decref(after);
	json_decref(body);
	return err;
}
