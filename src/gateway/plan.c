/* plan.c -- see plan.h. */
#include "config.h"
#include "gateway/plan.h"

#include <stdlib.h>
#include <string.h>

#include "admin/providers.h"
#include "data/registry.h"
#include "gateway/gw.h"
#include "util/crypto.h"
#include "util/xalloc.h"

static const char *const tier_order[] = { "micro", "minimal", "low", "medium", "advanced", "high", "ultra",
					  "critical" };
#define NTIERS ((int)(sizeof tier_order / sizeof tier_order[0]))

int
plan_tier_index(const char *tier)
{
	if (!tier)
		return -1;
	for (int i = 0; i < NTIERS; i++)
		if (strcmp(tier, tier_order[i]) == 0)
			return i;
	return -1;
}

bool
plan_is_auto_model(const char *model)
{
	return model && (strcmp(model, "auto") == 0 || strcmp(model, "auto-prism") == 0 ||
			 strcmp(model, "model-prism") == 0);
}

static const char *
str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

const json_t *
plan_provider_by_slug(const json_t *providers, const char *slug)
{
	size_t i;
	const json_t *p;
	if (!slug || !*slug)
		return NULL;
	json_array_foreach(providers, i, p)
		if (strcmp(str_of(p, "slug"), slug) == 0)
			return p;
	return NULL;
}

const char *
plan_split_prefix(const json_t *providers, const char *model, char slug[PLAN_MAX_SLUG + 1])
{
	slug[0] = '\0';
	const char *sl = strchr(model, '/');
	if (!sl || sl == model || (size_t)(sl - model) > PLAN_MAX_SLUG || !sl[1])
		return model;
	char cand[PLAN_MAX_SLUG + 1];
	memcpy(cand, model, (size_t)(sl - model));
	cand[sl - model] = '\0';
	if (!plan_provider_by_slug(providers, cand))
		return model;
	memcpy(slug, cand, sizeof cand);
	return sl + 1;
}

const char *
plan_alias(const json_t *tenant_doc, const char *model)
{
	const json_t *al = json_object_get(json_object_get(tenant_doc, "modelConfig"), "aliases");
	const char *to = json_string_value(json_object_get(al, model));
	return to && *to ? to : NULL;
}

bool
plan_glob(const char *pat, const char *s)
{
	/* Iterative matcher with one backtrack point: linear in practice, never exponential. */
	const char *star = NULL, *resume = NULL;
	while (*s) {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

bool
plan_policy_allows(const json_t *tenant_doc, const char *model, const char *slug)
{
	/* One rule for the whole gateway: the model listings filter with the same function. */
	return gw_model_allowed(tenant_doc, slug && *slug ? slug : NULL, model);
}

json_t *
plan_tenant_providers(const json_t *tenant_doc, const json_t *providers)
{
	json_t *out = json_array();
	size_t i, j;
	const json_t *id, *p;
	json_array_foreach(json_object_get(tenant_doc, "providerIds"), i, id) {
		const char *s = json_string_value(id);
		if (!s)
			continue;
		json_array_foreach(providers, j, p) {
			if (strcmp(str_of(p, "_id"), s) != 0)
				continue;
			/* providerIds could name one provider twice: keep the first. */
			bool dup = false;
			size_t k;
			const json_t *q;
			json_array_foreach(out, k, q)
				dup = dup || q == p;
			if (!dup)
				json_array_append(out, (json_t *)p);
			break;
		}
	}
	return out;
}

const json_t *
plan_model_entry(const json_t *provider, const char *model, bool visible_only)
{
	size_t i;
	const json_t *m;
	json_array_foreach(json_object_get(provider, "discoveredModels"), i, m) {
		if (strcmp(str_of(m, "id"), model) != 0)
			continue;
		if (visible_only && json_is_false(json_object_get(m, "visible")))
			return NULL;
		return m;
	}
	return NULL;
}

static long
positive(const json_t *v)
{
	if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < (json_int_t)1 << 40)
		return (long)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) >= 1 && json_real_value(v) < 1e12)
		return (long)json_real_value(v);
	return 0;
}

long
plan_context_window(const json_t *entry, const char *model)
{
	long v = positive(json_object_get(entry, "contextWindow"));
	if (v)
		return v;
	const struct registry_model *r = registry_find(model);
	return r ? r->context_window : 0;
}

long
plan_max_output(const json_t *entry, const char *model)
{
	long v = positive(json_object_get(entry, "maxOutputTokens"));
	if (v)
		return v;
	const struct registry_model *r = registry_find(model);
	return r ? r->max_output_tokens : 0;
}

static bool
plan_has(const struct plan *p, const json_t *provider)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->c[i].provider == provider)
			return true;
	return false;
}

static void
plan_add(struct plan *p, const json_t *provider, const json_t *entry, const char *model)
{
	if (p->n >= PLAN_MAX_CANDIDATES || plan_has(p, provider))
		return;
	if (p->n == p->cap) {
		/* Most plans have one or two candidates: a request that waits on its provider keeps its plan. */
		p->cap = p->cap ? 2 * p->cap : 2;
		p->c = xrealloc(p->c, p->cap * sizeof *p->c);
	}
	struct plan_candidate *c = &p->c[p->n++];
	memset(c, 0, sizeof *c);
	c->provider = provider;
	c->entry = entry;
	c->id = str_of(provider, "_id");
	c->name = str_of(provider, "name");
	c->slug = str_of(provider, "slug");
	c->type = str_of(provider, "type");
	snprintf(c->model, sizeof c->model, "%s", model);
	c->context_window = plan_context_window(entry, model);
	c->max_output = plan_max_output(entry, model);
}

/* The fallback chain for model: exact pattern, else the first glob that matches, else "*". */
static const json_t *
find_chain(const json_t *tenant_doc, const char *model)
{
	const json_t *chains = json_object_get(tenant_doc, "fallbackChains");
	const json_t *glob = NULL, *star = NULL, *ch;
	size_t i;
	json_array_foreach(chains, i, ch) {
		const char *pat = str_of(ch, "modelPattern");
		if (!json_array_size(json_object_get(ch, "providers")))
			continue;
		if (strcmp(pat, model) == 0)
			return ch;
		if (strcmp(pat, "*") == 0) {
			if (!star)
				star = ch;
		} else if (!glob && strchr(pat, '*') && plan_glob(pat, model)) {
			glob = ch;
		}
	}
	return glob ? glob : star;
}

void
plan_build(struct plan *p, const json_t *tenant_doc, const json_t *tprov, const char *model,
	   const char *explicit_slug, bool any_visibility)
{
	memset(p, 0, sizeof *p);
	size_t i, j;
	const json_t *prov, *id;
	if (explicit_slug && *explicit_slug) {
		/* The prefix only narrows the choice to that provider: the model must still be one the admin
		 * made available there (a prefix must not open hidden or undiscovered models). */
		prov = plan_provider_by_slug(tprov, explicit_slug);
		const json_t *e = prov ? plan_model_entry(prov, model, !any_visibility) : NULL;
		if (e)
			plan_add(p, prov, e, model);
		return;
	}
	const json_t *chain = find_chain(tenant_doc, model);
	if (chain) {
		snprintf(p->chain, sizeof p->chain, "%s", str_of(chain, "modelPattern"));
		json_array_foreach(json_object_get(chain, "providers"), i, id) {
			const char *s = json_string_value(id);
			json_array_foreach(tprov, j, prov) {
				if (!s || strcmp(str_of(prov, "_id"), s) != 0)
					continue;
				const json_t *e = plan_model_entry(prov, model, false);
				if (e)
					plan_add(p, prov, e, model);
			}
		}
	}
	json_array_foreach(tprov, i, prov) {
		const json_t *e = plan_model_entry(prov, model, !any_visibility);
		if (e)
			plan_add(p, prov, e, model);
	}
}

void
plan_free(struct plan *p)
{
	free(p->c);
	p->c = NULL;
	p->n = p->cap = 0;
}

size_t
plan_apply_policy(struct plan *p, const json_t *tenant_doc)
{
	size_t kept = 0, dropped = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (!plan_policy_allows(tenant_doc, p->c[i].model, p->c[i].slug)) {
			dropped++;
			continue;
		}
		if (kept != i)
			p->c[kept] = p->c[i];
		kept++;
	}
	p->n = kept;
	p->dropped_policy += dropped;
	return dropped;
}

static const char *
tier_of(const json_t *entry, const char *model)
{
	const char *t = json_string_value(json_object_get(entry, "tier"));
	if (t && plan_tier_index(t) >= 0)
		return t;
	const struct registry_model *r = registry_find(model);
	return r && r->tier ? r->tier : NULL;
}

bool
plan_larger_model(const json_t *tenant_doc, const json_t *tprov, const char *current, long needed,
		  plan_open_fn is_open, void *arg, char out[PLAN_MAX_MODEL + 1], long *ctx_out)
{
	/* The current model's window and tier: from the first provider that lists it, else the registry. */
	const json_t *cur_entry = NULL, *prov, *m;
	size_t i, j;
	json_array_foreach(tprov, i, prov)
		if (!cur_entry)
			cur_entry = plan_model_entry(prov, current, false);
	long cur_ctx = plan_context_window(cur_entry, current);
	int cur_tier = plan_tier_index(tier_of(cur_entry, current));
	long floor = needed > cur_ctx ? needed : cur_ctx + 1;

	/* The best candidate per tier search step (0: same, 1: below, 2: above) and overall (3). */
	const char *best[4] = { NULL, NULL, NULL, NULL };
	long best_ctx[4] = { 0, 0, 0, 0 };
	json_array_foreach(tprov, i, prov) {
		const char *pid = str_of(prov, "_id"), *slug = str_of(prov, "slug");
		if (is_open && is_open(arg, pid))
			continue;
		json_array_foreach(json_object_get(prov, "discoveredModels"), j, m) {
			const char *id = str_of(m, "id");
			if (!*id || strcmp(id, current) == 0 || json_is_false(json_object_get(m, "visible")) ||
			    strlen(id) > PLAN_MAX_MODEL)
				continue;
			long c = plan_context_window(m, id);
			if (c < floor || !plan_policy_allows(tenant_doc, id, slug))
				continue;
			int t = plan_tier_index(tier_of(m, id));
			int slot = -1;
			if (cur_tier >= 0 && t >= 0) {
				if (t == cur_tier)
					slot = 0;
				else if (t == cur_tier - 1)
					slot = 1;
				else if (t == cur_tier + 1)
					slot = 2;
			}
			if (slot >= 0 && (!best[slot] || c < best_ctx[slot])) {
				best[slot] = id;
				best_ctx[slot] = c;
			}
			if (!best[3] || c < best_ctx[3]) {
				best[3] = id;
				best_ctx[3] = c;
			}
		}
	}
	for (int k = 0; k < 4; k++) {
		if (!best[k])
			continue;
		snprintf(out, PLAN_MAX_MODEL + 1, "%s", best[k]);
		if (ctx_out)
			*ctx_out = best_ctx[k];
		return true;
	}
	return false;
}

static long
option_ms(const json_t *opt, const char *k, long min, long max)
{
	const json_t *v = json_object_get(opt, k);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return 0;
	return (long)json_integer_value(v);
}

enum prism_err
plan_target_open(const struct config *cfg, const json_t *provider, struct plan_target *pt, char *err, size_t errlen)
{
	memset(pt, 0, sizeof *pt);
	const json_t *c = json_object_get(provider, "config");
	const json_t *auth = json_object_get(c, "auth");
	const json_t *opt = json_object_get(c, "options");
	struct provider_target *t = &pt->t;
	t->id = str_of(provider, "_id");
	t->name = str_of(provider, "name");
	t->type = str_of(provider, "type");
	const char *base = str_of(c, "baseUrl");
	if (!*base)
		base = strcmp(t->type, "ollama") == 0 ? "http://localhost:11434" : "https://api.openai.com";
	pt->base_url = xstrdup(base);
	size_t n = strlen(pt->base_url);
	if (n && pt->base_url[n - 1] == '/')
		pt->base_url[n - 1] = '\0';
	t->base_url = pt->base_url;
	t->api_path = str_of(opt, "apiPath");
	t->auth_type = *str_of(auth, "type") ? str_of(auth, "type") : "api_key";
	t->http_proxy = str_of(opt, "httpProxy");
	t->tls_verify = !json_is_false(json_object_get(opt, "tlsVerify"));
	t->ca_file = str_of(opt, "caFile");
	t->extra_headers = json_is_object(json_object_get(opt, "extraHeaders")) ? json_object_get(opt, "extraHeaders")
										 : NULL;
	/* The bounds the admin API validates; a stored value outside them (an import) means the default. */
	t->connect_timeout_ms = option_ms(opt, "connectTimeoutMs", PROVIDER_CONNECT_TIMEOUT_MIN, PROVIDER_CONNECT_TIMEOUT_MAX);
	t->first_byte_timeout_ms = option_ms(opt, "firstByteTimeoutMs", PROVIDER_TIMEOUT_MIN, PROVIDER_TIMEOUT_MAX);
	t->idle_timeout_ms = option_ms(opt, "idleTimeoutMs", PROVIDER_TIMEOUT_MIN, PROVIDER_TIMEOUT_MAX);
	t->total_timeout_ms = option_ms(opt, "timeoutMs", PROVIDER_TIMEOUT_MIN, PROVIDER_TIMEOUT_MAX);

	const char *key = str_of(auth, "apiKey");
	bool bearer = strcmp(t->auth_type, "api_key") == 0 || strcmp(t->auth_type, "bearer") == 0;
	if (bearer && *key) {
		enum prism_err e = crypto_decrypt(cfg->encryption_key, cfg->encryption_key_previous, key, &pt->api_key,
						  NULL);
		if (e) {
			snprintf(err, errlen, "provider '%s': the stored API key cannot be decrypted (%s)", t->name,
				 e == PRISM_E_CONFIG ? "was encryption_key changed?" : "malformed value");
			plan_target_close(pt);
			return PRISM_E_CONFIG;
		}
	}
	t->api_key = pt->api_key;
	return PRISM_OK;
}

void
plan_target_close(struct plan_target *pt)
{
	if (!pt)
		return;
	crypto_free_secret(pt->api_key);
	pt->api_key = NULL;
	pt->t.api_key = NULL;
	free(pt->base_url);
	pt->base_url = NULL;
	pt->t.base_url = NULL;
}
