/* gwinfo.c -- model lists, health and the IDE config generators; see gwinfo.h.
 *
 * Differences from the original (reference/original-gateway.md §2.1-2.4, §17):
 *   - `created` is the provider document's creation time, not the time of the request;
 *   - health no longer tells anonymous callers whether the tenant's key is enabled or expired;
 *   - the config endpoints verify the key like every other authenticated endpoint (the original accepted
 *     any non-empty string for a non-default tenant and none at all for the default one), apply the model
 *     policy with the same rule as the chat gate (not substring matching), and write base URLs that work:
 *     the prefix they were fetched from (/v1 for the default routes, never the blocked /api/api/v1);
 *   - the generated files name the auto-router "auto", an id the chat endpoint accepts; the OpenCode file
 *     names the AI SDK package OpenCode needs for an OpenAI-compatible provider;
 *   - values written into YAML are quoted and escaped, so a model id or tenant name cannot break the file.
 * Forwarded scheme and host (X-Forwarded-Proto, X-Forwarded-Host) are honoured only when the request came
 * through a trusted proxy (trusted_proxies): the front resolved the client from X-Forwarded-For, or the
 * peer itself is in the list.  Otherwise the Host header and "http" are used; ?baseUrl= overrides both.
 */
#include "config.h"
#include "gateway/gwinfo.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "admin/tenants.h"
#include "core/response.h"
#include "gateway/gw.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/rand.h"

#define GWINFO_MAX_PROVIDERS TENANT_MAX_PROVIDERS
#define GWINFO_MAX_BASE_URL 2048
#define GWINFO_MAX_QUERY 4096              /* ?models= */
#define GWINFO_MAX_KEY 1024                /* ?apiKey= */
#define GWINFO_MAX_CONFIG (8L * 1024 * 1024)
#define GWINFO_AUTO_ID "auto"
#define GWINFO_AUTO_NAME "Model Prism (Auto Router)"

/* --- loading ------------------------------------------------------------------------------------------- */

static enum prism_err
store_fail(struct request *req, const char *detail)
{
	log_error("rid=%s gateway: store: %s", req->request_id, detail);
	return gw_error(req, 503, "server_error", "store_unavailable",
			"The gateway cannot reach its data store; try again shortly");
}

/* The tenant of an unauthenticated endpoint: the path's slug, or the default tenant.  *doc NULL when there
 * is none or it is inactive. */
static enum prism_err
public_tenant(struct request *req, struct store *s, json_t **doc)
{
	const char *slug = request_param(req, "tenant");
	json_t *v = slug ? json_string(slug) : json_true();
	struct store_cond c = { slug ? "slug" : "isDefault", SOP_EQ, v };
	struct store_query q = { .conds = &c, .nconds = 1, .limit = 1 };
	json_t *docs = NULL;
	char *next = NULL, err[256] = "";
	enum prism_err e = s->ops->find(s, COLL_TENANTS, &q, &docs, &next, err, sizeof err);
	free(next);
	json_decref(v);
	*doc = NULL;
	if (e)
		return store_fail(req, err);
	json_t *d = json_array_get(docs, 0);
	if (d && !json_is_false(json_object_get(d, "active"))) {
		*doc = json_incref(d);
		tenants_fill_defaults(*doc);
		snprintf(req->tenant, sizeof req->tenant, "%s", json_string_value(json_object_get(d, "slug")) ?
			 json_string_value(json_object_get(d, "slug")) : "");
	}
	json_decref(docs);
	return PRISM_OK;
}

/* The tenant's providers, in the order of its providerIds, each once.  *out a new array. */
static enum prism_err
tenant_providers(struct request *req, struct store *s, const json_t *tenant, json_t **out)
{
	json_t *ids = json_array(), *e;
	size_t i, j;
	json_array_foreach(json_object_get(tenant, "providerIds"), i, e) {
		const char *id = json_string_value(e);
		if (id && store_id_valid(id) && json_array_size(ids) < GWINFO_MAX_PROVIDERS)
			json_array_append(ids, e);
	}
	*out = json_array();
	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return PRISM_OK;
	}
	struct store_cond c = { "_id", SOP_IN, ids };
	struct store_query q = { .conds = &c, .nconds = 1, .limit = GWINFO_MAX_PROVIDERS };
	json_t *docs = NULL, *p;
	char *next = NULL, err[256] = "";
	enum prism_err rc = s->ops->find(s, COLL_PROVIDERS, &q, &docs, &next, err, sizeof err);
	free(next);
	if (rc) {
		json_decref(ids);
		return store_fail(req, err);
	}
	json_array_foreach(ids, i, e) {
		bool dup = false;
		for (j = 0; j < i && !dup; j++)
			dup = strcmp(json_string_value(json_array_get(ids, j)), json_string_value(e)) == 0;
		if (dup)
			continue;
		json_array_foreach(docs, j, p) {
			const char *pid = json_string_value(json_object_get(p, "_id"));
			if (pid && strcmp(pid, json_string_value(e)) == 0) {
				json_array_append(*out, p);
				break;
			}
		}
	}
	json_decref(docs);
	json_decref(ids);
	return PRISM_OK;
}

static const char *
str(const json_t *doc, const char *field)
{
	const char *s = json_string_value(json_object_get(doc, field));
	return s ? s : "";
}

static json_int_t
created_s(const json_t *doc)
{
	int64_t ms;
	const char *c = json_string_value(json_object_get(doc, "createdAt"));
	if (c && clock_parse_iso8601(c, &ms) == 0)
		return (json_int_t)(ms / 1000);
	return 0;
}

/* The OpenAI model list of a tenant: visible models allowed by its policy, as "<slug>/<id>". */
static json_t *
model_list(const json_t *tenant, const json_t *providers, bool with_created)
{
	json_t *data = json_array(), *p, *m;
	size_t i, j;
	if (json_is_true(json_object_get(json_object_get(tenant, "routing"), "enabled"))) {
		json_t *a = json_pack("{s:s, s:s}", "id", "auto-prism", "object", "model");
		if (with_created)
			json_object_set_new(a, "created", json_integer(created_s(tenant)));
		json_object_set_new(a, "owned_by", json_string("open-model-prism"));
		json_array_append_new(data, a);
	}
	json_array_foreach(providers, i, p) {
		const char *slug = str(p, "slug");
		json_array_foreach(json_object_get(p, "discoveredModels"), j, m) {
			const char *id = json_string_value(json_object_get(m, "id"));
			if (!id || !*id || json_is_false(json_object_get(m, "visible")) || !gw_model_allowed(tenant, slug, id))
				continue;
			char full[2 * TENANT_MODEL_MAX + 2];
			snprintf(full, sizeof full, "%s/%s", slug, id);
			json_t *e = json_pack("{s:s, s:s}", "id", full, "object", "model");
			if (with_created)
				json_object_set_new(e, "created", json_integer(created_s(p)));
			json_object_set_new(e, "owned_by", json_string(str(p, "name")));
			json_array_append_new(data, e);
		}
	}
	return data;
}

/* Authenticates, loads the tenant and its providers.  On failure the error is answered. */
static enum prism_err
auth_load(struct request *req, struct gw_tenant *t, json_t **providers, const char *key, size_t keylen)
{
	const char *slug = request_param(req, "tenant");
	enum prism_err e = key ? gw_authenticate_key(req, slug, key, keylen, t) : gw_authenticate(req, slug, t);
	/* Every authenticated request counts against the tenant's requests per minute (no tokens here). */
	if (e || (e = gw_limits_check(req, t, 0)) || (e = gw_tenant_load(req, t)))
		return e;
	struct store *s = store_current();
	if (!s)
		return store_fail(req, "not connected");
	return tenant_providers(req, s, t->doc, providers);
}

/* --- models ------------------------------------------------------------------------------------------ */

enum prism_err
gwinfo_models(struct request *req)
{
	struct gw_tenant t = { 0 };
	json_t *providers = NULL;
	enum prism_err e = auth_load(req, &t, &providers, NULL, 0);
	if (!e)
		resp_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", model_list(t.doc, providers, true)));
	json_decref(providers);
	gw_tenant_free(&t);
	return e;
}

enum prism_err
gwinfo_model(struct request *req)
{
	const char *a = request_param(req, "provider"), *b = request_param(req, "model");
	char want[2 * PRISM_MAX_PARAM_LEN + 2];
	snprintf(want, sizeof want, "%s%s%s", a ? a : "", a ? "/" : "", b ? b : "");
	struct gw_tenant t = { 0 };
	json_t *providers = NULL, *data = NULL, *m, *found = NULL;
	size_t i;
	enum prism_err e = auth_load(req, &t, &providers, NULL, 0);
	if (e)
		goto out;
	data = model_list(t.doc, providers, true);
	/* The listed id, else a bare id naming the first model listed under it. */
	json_array_foreach(data, i, m)
		if (strcmp(str(m, "id"), want) == 0) {
			found = m;
			break;
		}
	for (i = 0; !found && i < json_array_size(data); i++) {
		const char *id = str(json_array_get(data, i), "id"), *slash = strchr(id, '/');
		if (slash && strcmp(slash + 1, want) == 0)
			found = json_array_get(data, i);
	}
	if (!found) {
		e = gw_error(req, 404, "invalid_request_error", "model_not_found",
			     "The model '%.256s' does not exist or is not available to this tenant", want);
		goto out;
	}
	resp_json(req, 200, json_incref(found));
out:
	json_decref(data);
	json_decref(providers);
	gw_tenant_free(&t);
	return e;
}

enum prism_err
gwinfo_models_public(struct request *req)
{
	struct store *s = store_current();
	json_t *tenant = NULL, *providers = NULL;
	if (!s)
		return store_fail(req, "not connected");
	enum prism_err e = public_tenant(req, s, &tenant);
	if (e)
		return e;
	if (!tenant)
		return gw_error(req, 404, "not_found", "tenant_not_found", "Tenant not found");
	if (!(e = tenant_providers(req, s, tenant, &providers)))
		resp_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", model_list(tenant, providers, false)));
	json_decref(providers);
	json_decref(tenant);
	return e;
}

/* --- health -------------------------------------------------------------------------------------------- */

enum prism_err
gwinfo_health(struct request *req)
{
	struct store *s = store_current();
	json_t *tenant = NULL, *providers = NULL, *p;
	if (!s)
		return store_fail(req, "not connected");
	enum prism_err e = public_tenant(req, s, &tenant);
	if (e)
		return e;
	if (!tenant) {
		const char *slug = request_param(req, "tenant");
		resp_json(req, 404, json_pack("{s:s, s:s}", "status", "not_found", "tenant", slug ? slug : ""));
		return PRISM_OK;
	}
	if ((e = tenant_providers(req, s, tenant, &providers))) {
		json_decref(tenant);
		return e;
	}
	json_t *list = json_array();
	bool ok = true;
	size_t i;
	json_array_foreach(providers, i, p) {
		const char *st = json_string_value(json_object_get(p, "status"));
		if (!st)
			st = "unchecked";
		ok = ok && strcmp(st, "connected") == 0;
		json_array_append_new(list, json_pack("{s:s, s:s}", "name", str(p, "name"), "status", st));
	}
	char now[32];
	clock_iso8601(clock_realtime_ms(), now, sizeof now);
	resp_header(req, "Cache-Control", "no-store");
	resp_json(req, ok ? 200 : 207, json_pack("{s:s, s:s, s:o, s:s}", "status", ok ? "ok" : "degraded", "tenant",
						 str(tenant, "slug"), "providers", list, "timestamp", now));
	json_decref(providers);
	json_decref(tenant);
	return PRISM_OK;
}

/* --- IDE configs --------------------------------------------------------------------------------------- */

struct tier_advice {
	const char *tier, *label, *cost, *recommendation;
};

static const struct tier_advice tiers[] = {
	{ "micro", "Micro", "negligible", "autocomplete" },
	{ "minimal", "Minimal", "very low", "autocomplete" },
	{ "low", "Low", "low", "autocomplete, small tasks" },
	{ "medium", "Medium", "moderate", "general coding, code review, debugging" },
	{ "advanced", "Advanced", "moderate", "complex coding, architecture questions" },
	{ "high", "High", "high", "agentic SWE, complex refactoring, security reviews" },
	{ "ultra", "Ultra", "very high", NULL },
	{ "critical", "Critical", "very high", NULL },
};
#define NTIERS (sizeof tiers / sizeof tiers[0])

static const struct tier_advice *
advice_of(const char *tier)
{
	for (size_t i = 0; tier && i < NTIERS; i++)
		if (strcmp(tiers[i].tier, tier) == 0)
			return &tiers[i];
	return NULL;
}

static bool
tier_in(const json_t *m, const char *const *set)
{
	const char *t = json_string_value(json_object_get(m, "tier"));
	for (; t && *set; set++)
		if (strcmp(t, *set) == 0)
			return true;
	return false;
}

static bool
premium(const json_t *m)
{
	return tier_in(m, (const char *const[]){ "ultra", "critical", NULL });
}

/* Is id in the comma-separated, trimmed list? */
static bool
selected(const char *list, const char *id)
{
	size_t n = strlen(id);
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if ((size_t)(b - a) == n && strncmp(a, id, n) == 0)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/* The catalogue: {id, name, provider, slug, tier, inputPer1M, outputPer1M} of each visible, allowed model
 * (bare ids, each once, the first provider's entry), optionally only those in ?models=. */
static json_t *
ide_models(const json_t *tenant, const json_t *providers, const char *only)
{
	json_t *out = json_array(), *p, *m, *seen = json_object();
	size_t i, j;
	json_array_foreach(providers, i, p) {
		const char *slug = str(p, "slug");
		json_array_foreach(json_object_get(p, "discoveredModels"), j, m) {
			const char *id = json_string_value(json_object_get(m, "id"));
			if (!id || !*id || json_is_false(json_object_get(m, "visible")) || json_object_get(seen, id) ||
			    !gw_model_allowed(tenant, slug, id) || (only && !selected(only, id)))
				continue;
			json_object_set_new(seen, id, json_true());
			json_t *tier = json_object_get(m, "tier");
			json_t *in = json_object_get(m, "inputPer1M"), *o = json_object_get(m, "outputPer1M");
			json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:O}", "id", id, "name", id,
							     "provider", str(p, "name"), "slug", slug, "tier",
							     json_is_string(tier) ? tier : json_null(), "inputPer1M",
							     json_is_number(in) ? in : json_null(), "outputPer1M",
							     json_is_number(o) ? o : json_null()));
		}
	}
	json_decref(seen);
	return out;
}

#define PREMIUM_WARNING \
	"This is an ultra/critical-tier model with very high per-request costs. Use sparingly \u2014 recommended " \
	"only for formal proofs, critical security reviews, sensitive legal/medical analysis, or complex " \
	"multi-step reasoning where cheaper models fall short."
#define PREMIUM_SUGGESTION \
	"For everyday coding, medium\u2013high tier models (e.g. Sonnet 4.6, GPT-5.2, Qwen3 Coder) deliver " \
	"excellent results at a fraction of the cost."

static json_t *
enriched(const json_t *m)
{
	const char *tier = json_string_value(json_object_get(m, "tier"));
	const struct tier_advice *a = advice_of(tier);
	json_t *e = json_pack("{s:O, s:O, s:O, s:O, s:s}", "id", json_object_get(m, "id"), "name",
			      json_object_get(m, "id"), "provider", json_object_get(m, "provider"), "tier",
			      json_object_get(m, "tier"), "cost", a ? a->cost : "unknown");
	if (premium(m)) {
		json_object_set_new(e, "warning", json_string(PREMIUM_WARNING));
		json_object_set_new(e, "suggestion", json_string(PREMIUM_SUGGESTION));
	}
	if (a && a->recommendation)
		json_object_set_new(e, "recommendedFor", json_string(a->recommendation));
	return e;
}

/* Ids of the models whose tier is in set, at most max (0 = all). */
static json_t *
ids_in(const json_t *models, const char *const *set, size_t max)
{
	json_t *out = json_array(), *m;
	size_t i;
	json_array_foreach(models, i, m)
		if (tier_in(m, set) && (!max || json_array_size(out) < max))
			json_array_append(out, json_object_get(m, "id"));
	return out;
}

static json_t *
strings(const char *const *set)
{
	json_t *a = json_array();
	for (; *set; set++)
		json_array_append_new(a, json_string(*set));
	return a;
}

static bool
host_valid(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && !strchr(".-:[]_", h[i]))
			return false;
	return true;
}

/* Did a trusted proxy vouch for this request?  The front walked X-Forwarded-For only from a trusted peer,
 * and then resolved the client to one of its hops; without that header the client is the peer itself. */
static bool
via_trusted_proxy(const struct request *req)
{
	const struct config *cfg = req->cfg;
	if (!cfg || cfg->trusted_proxies.n == 0)
		return false;
	const char *xff = request_header(req, "x-forwarded-for");
	if (!xff) {
		for (size_t i = 0; i < cfg->trusted_proxies.n; i++)
			if (netprefix_contains(&cfg->proxy_prefixes[i], &req->client_addr))
				return true;
		return false;
	}
	const char *p = xff;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char hop[64], canon[64];
		while (n && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		struct netaddr a;
		if (n && n < sizeof hop) {
			memcpy(hop, p, n);
			hop[n] = '\0';
			if (netaddr_parse(hop, &a) == PRISM_OK) {
				netaddr_format(&a, canon, sizeof canon);
				if (strcmp(canon, req->client_ip) == 0)
					return true;
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* The base URL the generated files point to; false (and an answered 400) for a bad ?baseUrl=. */
static bool
base_url(struct request *req, char *out, size_t outlen)
{
	char q[GWINFO_MAX_BASE_URL + 1];
	if (request_query(req, "baseUrl", q, sizeof q) && *q) {
		bool ok = strncmp(q, "http://", 7) == 0 || strncmp(q, "https://", 8) == 0;
		for (const char *c = q; ok && *c; c++)
			ok = (unsigned char)*c > 0x20 && *c != 0x7f && *c != '"' && *c != '\\';
		if (!ok) {
			gw_error(req, 400, "invalid_request_error", "invalid_base_url",
				 "baseUrl: must be an http:// or https:// URL without spaces or quotes");
			return false;
		}
		size_t n = strlen(q);
		while (n > 0 && q[n - 1] == '/')
			q[--n] = '\0';
		snprintf(out, outlen, "%s", q);
		return true;
	}
	const char *scheme = "http", *host = request_header(req, "host");
	if (via_trusted_proxy(req)) {
		const char *fp = request_header(req, "x-forwarded-proto"), *fh = request_header(req, "x-forwarded-host");
		if (fp && (strcasecmp(fp, "https") == 0 || strcasecmp(fp, "http") == 0))
			scheme = strcasecmp(fp, "https") == 0 ? "https" : "http";
		if (fh && host_valid(fh))
			host = fh;
	}
	if (!host || !host_valid(host))
		host = "localhost";
	/* The prefix this endpoint was reached under: /api/<slug>/v1, /api/v1 or /v1. */
	const char *cut = strstr(req->path, "/config/");
	int plen = cut ? (int)(cut - req->path) : (int)strlen(req->path);
	snprintf(out, outlen, "%s://%s%.*s", scheme, host, plen, req->path);
	return true;
}

/* Common part of the three config endpoints: the verified tenant, its catalogue, the base URL and the key
 * to embed (the one that was verified). */
struct ide_ctx {
	struct gw_tenant t;
	json_t *providers, *models;
	char base[GWINFO_MAX_BASE_URL + PRISM_MAX_PARAM_LEN + 300];
	char key[GWINFO_MAX_KEY + 1];
};

static enum prism_err
ide_begin(struct request *req, struct ide_ctx *c, bool selectable)
{
	const char *k;
	size_t n;
	enum prism_err e;
	if (gw_request_key(req, &k, &n)) {
		if (n > GWINFO_MAX_KEY)
			return gw_error(req, 401, "authentication_error", "invalid_api_key", "Invalid API key or tenant");
		memcpy(c->key, k, n);
		c->key[n] = '\0';
	} else if (!request_query(req, "apiKey", c->key, sizeof c->key)) {
		c->key[0] = '\0';
	}
	if ((e = auth_load(req, &c->t, &c->providers, c->key, strlen(c->key))))
		return e;
	if (!base_url(req, c->base, sizeof c->base))
		return PRISM_E_BAD_REQUEST;
	char only[GWINFO_MAX_QUERY + 1];
	bool filter = selectable && request_query(req, "models", only, sizeof only) && *only;
	c->models = ide_models(c->t.doc, c->providers, filter ? only : NULL);
	return PRISM_OK;
}

static void
ide_end(struct ide_ctx *c)
{
	secure_wipe(c->key, sizeof c->key);
	json_decref(c->models);
	json_decref(c->providers);
	gw_tenant_free(&c->t);
}

static void
download(struct request *req, const char *prefix, const char *slug, const char *ext)
{
	char cd[256];
	snprintf(cd, sizeof cd, "attachment; filename=\"%s-%.64s.%s\"", prefix, slug, ext);
	resp_header(req, "Content-Disposition", cd);
	resp_header(req, "Cache-Control", "no-store");
}

enum prism_err
gwinfo_config_models(struct request *req)
{
	struct ide_ctx c = { 0 };
	enum prism_err e = ide_begin(req, &c, false);
	if (e)
		goto out;
	json_t *list = json_array(), *m;
	size_t i;
	json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:s}", "id", GWINFO_AUTO_ID, "name",
					      GWINFO_AUTO_NAME, "locked", 1, "selected", 1, "tier", "auto",
					      "recommendedFor",
					      "all tasks \u2014 automatically selects the optimal model for each request",
					      "suggestion",
					      "Best default choice. The auto-router classifies your prompt and picks the right "
					      "model and tier, saving costs without sacrificing quality."));
	json_array_foreach(c.models, i, m) {
		json_t *x = enriched(m);
		json_object_set_new(x, "selected", json_false());
		json_array_append_new(list, x);
	}
	static const char *const ac[] = { "micro", "minimal", "low", NULL }, *const small[] = { "low", "medium", NULL },
				 *const rec[] = { "medium", "high", NULL }, *const prem[] = { "ultra", "critical", NULL };
	json_t *recs = json_pack(
		"{s:{s:s, s:o, s:o}, s:{s:s, s:o, s:o}, s:{s:s, s:o, s:o}, s:{s:s, s:o, s:o}}",
		"autocomplete", "description", "For tab-autocomplete / FIM code completion, use cheap fast models:",
		"models", ids_in(c.models, ac, 3), "tiers", strings(ac),
		"smallTasks", "description", "For quick questions, simple code, translations \u2014 affordable and fast:",
		"models", ids_in(c.models, small, 3), "tiers", strings(small),
		"recommended", "description",
		"Best balance of quality and cost for everyday coding and architecture work:", "models",
		ids_in(c.models, rec, 3), "tiers", strings(rec),
		"premium", "description",
		"Ultra/critical-tier models are very expensive. Use only for: formal proofs, critical security audits, "
		"sensitive legal/medical analysis, or when cheaper models demonstrably fail.",
		"models", ids_in(c.models, prem, 0), "tiers", strings(prem));
	resp_header(req, "Cache-Control", "no-store");
	resp_json(req, 200, json_pack("{s:{s:s, s:s}, s:s, s:o, s:o, s:[s, s]}", "tenant", "slug", str(c.t.doc, "slug"),
				      "name", str(c.t.doc, "name"), "baseUrl", c.base, "models", list,
				      "recommendations", recs, "formats", "continue", "opencode"));
out:
	ide_end(&c);
	return e;
}

/* A YAML double-quoted scalar. */
static void
yq(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			buf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			buf_printf(b, "\\x%02x", ch);
		else
			buf_append(b, s, 1);
	}
	buf_append(b, "\"", 1);
}

/* Text for a YAML comment: one line, control characters dropped. */
static void
ycomment(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_append(b, (unsigned char)*s < 0x20 || *s == 0x7f ? " " : s, 1);
}

/* One model: an item of the models: list, or the tabAutocompleteModel mapping. */
static void
yentry(struct buf *b, const char *title, const char *model, const struct ide_ctx *c, bool item)
{
	const char *indent = item ? "    " : "  ";
	buf_printf(b, "%stitle: ", item ? "  - " : "  ");
	yq(b, title);
	buf_printf(b, "\n%sprovider: openai\n%smodel: ", indent, indent);
	yq(b, model);
	buf_printf(b, "\n%sapiBase: ", indent);
	yq(b, c->base);
	buf_printf(b, "\n%sapiKey: ", indent);
	yq(b, c->key);
	buf_append(b, "\n", 1);
}

enum prism_err
gwinfo_config_continue(struct request *req)
{
	struct ide_ctx c = { 0 };
	struct buf b;
	buf_init(&b, GWINFO_MAX_CONFIG);
	enum prism_err e = ide_begin(req, &c, true);
	if (e)
		goto out;
	static const char *const ac[] = { "micro", "minimal", "low", NULL };
	const json_t *auto_m = NULL, *m;
	size_t i;
	json_array_foreach(c.models, i, m)
		if (!auto_m && tier_in(m, ac))
			auto_m = m;
	char now[32];
	clock_iso8601(clock_realtime_ms(), now, sizeof now);
	const char *slug = str(c.t.doc, "slug");
	buf_puts(&b, "# Continue.dev config \u2014 generated by Model Prism\n# Tenant: \"");
	ycomment(&b, str(c.t.doc, "name"));
	buf_printf(&b, "\" (%s)\n# Generated: %s\n#\n", slug, now);
	buf_puts(&b, "# RECOMMENDATION: Use \"" GWINFO_AUTO_NAME "\" as your primary model.\n"
		     "# It classifies each prompt and routes to the optimal model automatically.\n"
		     "# Add specific models below only if you need to bypass the auto-router.\n#\n# For autocomplete/FIM: ");
	ycomment(&b, auto_m ? str(auto_m, "id") : GWINFO_AUTO_ID);
	buf_puts(&b, " (low cost)\n"
		     "# For general coding:   medium\u2013high tier models offer the best quality/cost ratio.\n"
		     "# Avoid ultra/critical tier for everyday work \u2014 reserve for edge cases.\n\nmodels:\n"
		     "  # \u2500\u2500 Auto Router (always included, cannot be removed) \u2500\u2500\n");
	yentry(&b, GWINFO_AUTO_NAME, GWINFO_AUTO_ID, &c, true);
	buf_puts(&b, "\n");
	for (size_t t = 0; t < NTIERS; t++) {
		bool any = false;
		json_array_foreach(c.models, i, m) {
			if (!tier_in(m, (const char *const[]){ tiers[t].tier, NULL }))
				continue;
			if (!any) {
				buf_printf(&b, "  # \u2500\u2500 %s tier (cost: %s)", tiers[t].label, tiers[t].cost);
				if (!tiers[t].recommendation)
					buf_puts(&b, " \u2014 WARNING: very high costs, use sparingly!");
				else
					buf_printf(&b, " \u2014 good for: %s", tiers[t].recommendation);
				buf_puts(&b, "\n");
				any = true;
			}
			yentry(&b, str(m, "id"), str(m, "id"), &c, true);
		}
		if (any)
			buf_puts(&b, "\n");
	}
	/* Models without a known tier (the original left them out of the file). */
	bool any = false;
	json_array_foreach(c.models, i, m) {
		if (advice_of(json_string_value(json_object_get(m, "tier"))))
			continue;
		if (!any)
			buf_puts(&b, "  # \u2500\u2500 Models without a tier (cost: unknown)\n");
		any = true;
		yentry(&b, str(m, "id"), str(m, "id"), &c, true);
	}
	if (any)
		buf_puts(&b, "\n");
	buf_puts(&b, "tabAutocompleteModel:\n");
	char title[TENANT_MODEL_MAX + 32];
	snprintf(title, sizeof title, "%s (autocomplete)", auto_m ? str(auto_m, "id") : "");
	yentry(&b, auto_m ? title : "Model Prism (FIM)", auto_m ? str(auto_m, "id") : GWINFO_AUTO_ID, &c, false);
	if (!b.data) {
		e = gw_error(req, 500, "server_error", "internal_error", "Cannot generate the configuration");
		goto out;
	}
	download(req, "continue-config", slug, "yaml");
	resp_body(req, "text/yaml; charset=utf-8", b.data, b.len);
out:
	secure_wipe(b.data, b.len);
	buf_free(&b);
	ide_end(&c);
	return e;
}

enum prism_err
gwinfo_config_opencode(struct request *req)
{
	struct ide_ctx c = { 0 };
	enum prism_err e = ide_begin(req, &c, true);
	if (e)
		goto out;
	json_t *models = json_pack("{s:{s:s}}", GWINFO_AUTO_ID, "name", GWINFO_AUTO_NAME), *warnings = json_array(), *m;
	size_t i;
	json_array_foreach(c.models, i, m) {
		const char *id = str(m, "id");
		json_object_set_new(models, id, json_pack("{s:s}", "name", id));
		if (premium(m)) {
			char w[TENANT_MODEL_MAX + 128];
			snprintf(w, sizeof w, "WARNING: %s is %s-tier \u2014 very high costs. Use sparingly.", id,
				 str(m, "tier"));
			json_array_append_new(warnings, json_string(w));
		}
	}
	char now[32];
	clock_iso8601(clock_realtime_ms(), now, sizeof now);
	json_t *gen = json_pack("{s:s, s:s, s:s, s:s}", "by", "Model Prism", "tenant", str(c.t.doc, "name"), "at", now,
				"recommendation", "Use model-prism/" GWINFO_AUTO_ID " as default \u2014 the auto-router "
				"picks the optimal model for each task.");
	if (json_array_size(warnings))
		json_object_set(gen, "warnings", warnings);
	json_decref(warnings);
	json_t *cfg = json_pack("{s:s, s:o, s:{s:{s:s, s:s, s:{s:s, s:s}, s:o}}, s:s, s:{s:b, s:b}}",
				"$schema", "https://opencode.ai/config.json", "_generated", gen, "provider", "model-prism",
				"npm", "@ai-sdk/openai-compatible", "name", "Model Prism", "options", "baseURL", c.base,
				"apiKey", c.key, "models", models, "model", "model-prism/" GWINFO_AUTO_ID, "compaction",
				"auto", 1, "prune", 1);
	download(req, "opencode", str(c.t.doc, "slug"), "json");
	resp_json(req, 200, cfg);
out:
	ide_end(&c);
	return e;
}
