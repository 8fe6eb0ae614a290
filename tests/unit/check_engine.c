/* check_engine.c -- the routing decision (routing/engine.h) over fixed tenants, providers and rule sets:
 * one table of requests and the model, tier, category and overrides each must give. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/tenants.h"
#include "check_main.h"
#include "routing/engine.h"
#include "routing/ruleset.h"

#define TENANT_ID "64b000000000000000000001"
#define P1 "64a000000000000000000001"
#define P2 "64a000000000000000000002"

static json_t *
load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	ck_assert_msg(j != NULL, "fixture JSON: %s at %d", e.text, e.position);
	return j;
}

static json_t *
providers(void)
{
	return load("["
		    "{\"_id\":\"" P1 "\",\"slug\":\"p1\",\"name\":\"P1\",\"type\":\"openai\",\"discoveredModels\":["
		    " {\"id\":\"micro-model\",\"tier\":\"micro\",\"inputPer1M\":0.05,\"outputPer1M\":0.1},"
		    " {\"id\":\"claude-3-haiku\",\"tier\":\"minimal\",\"inputPer1M\":0.25,\"outputPer1M\":1.25},"
		    " {\"id\":\"claude-3-5-haiku\",\"tier\":\"low\",\"inputPer1M\":0.8,\"outputPer1M\":4},"
		    " {\"id\":\"claude-haiku-4-5\",\"tier\":\"low\",\"inputPer1M\":1,\"outputPer1M\":5},"
		    " {\"id\":\"claude-3-5-sonnet\",\"tier\":\"medium\",\"inputPer1M\":3,\"outputPer1M\":15,\"contextWindow\":4000},"
		    " {\"id\":\"hidden-medium\",\"tier\":\"medium\",\"visible\":false},"
		    " {\"id\":\"claude-3-7-sonnet\",\"tier\":\"high\",\"inputPer1M\":3,\"outputPer1M\":15},"
		    " {\"id\":\"claude-opus-4-6\",\"tier\":\"ultra\",\"inputPer1M\":15,\"outputPer1M\":75}]},"
		    "{\"_id\":\"" P2 "\",\"slug\":\"p2\",\"name\":\"P2\",\"type\":\"openai\",\"discoveredModels\":["
		    " {\"id\":\"claude-3-opus\",\"tier\":\"high\",\"inputPer1M\":15,\"outputPer1M\":75}]}]");
}

/* One case: a request, tenant settings, and what the decision must be. */
struct ecase {
	const char *name;
	const char *request;               /* the chat body */
	const char *tenant;                /* merged into the tenant document ("" = defaults) */
	const char *ruleset;               /* merged into the default rule set, stored for the tenant; NULL = none */
	const char *categories;            /* category documents; NULL = the built-in catalog */
	const char *user_model;
	enum route_strictness strictness;
	double fill;
	const char *open_provider;         /* a provider whose breaker is open */
	/* expected */
	bool ok;
	const char *model, *tier, *category, *overrides, *selection;
};

#define HELLO "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"

static const struct ecase cases[] = {
	/* the original's worked example (§5.17): a hint of micro, confidence 0.28, raised to medium */
	{ "hello", HELLO, "", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-5-sonnet", "medium", "chat_title_generation", "confidence_fallback", "benchmark_balanced" },
	{ "fim", "{\"messages\":[{\"role\":\"system\",\"content\":\"You are a code completion assistant.\"},"
		 "{\"role\":\"user\",\"content\":\"def add(a, b):\"}]}", "", NULL, NULL, NULL, 0, -1, NULL,
	  true, "micro-model", "micro", "coding_autocomplete", "", "benchmark_balanced" },
	{ "tools raise to medium first", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
		 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", "", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-5-sonnet", "medium", "chat_title_generation", "tool_call_upgrade", "benchmark_balanced" },
	{ "tool minimum tier from the tenant", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
		 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
	  "{\"routing\":{\"overrides\":{\"toolCallMinTier\":\"high\"}}}", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-7-sonnet", "high", "chat_title_generation", "tool_call_upgrade", "benchmark_balanced" },
	{ "no confidence fallback: the hint tier stays", HELLO,
	  "{\"routing\":{\"overrides\":{\"confidenceFallback\":false}}}", NULL, NULL, NULL, 0, -1, NULL,
	  true, "micro-model", "micro", "chat_title_generation", "", "benchmark_balanced" },
	{ "policy: only a high model allowed, the nearest tier above", HELLO,
	  "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"claude-3-7-sonnet\"]}}", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-7-sonnet", "medium", "chat_title_generation", "confidence_fallback+tier_step:high",
	  "benchmark_balanced" },
	{ "policy: blacklist a provider's model by slug, the nearest tier (below: advanced is empty)", HELLO,
	  "{\"modelConfig\":{\"mode\":\"blacklist\",\"list\":[\"p1/claude-3-5-sonnet\"]}}", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-5-haiku", "medium", "chat_title_generation", "confidence_fallback+tier_step:low",
	  "benchmark_balanced" },
	{ "open breaker: the other provider", HELLO, "", NULL, NULL, NULL, 0, -1, P1,
	  true, "claude-3-opus", "medium", "chat_title_generation", "confidence_fallback+tier_step:high",
	  "benchmark_balanced" },
	{ "nearest tier: one below when none above", HELLO,
	  "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"claude-3-5-haiku\"]}}", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-5-haiku", "medium", "chat_title_generation", "confidence_fallback+tier_step:low",
	  "benchmark_balanced" },
	{ "economy", HELLO, "", "{\"costMode\":\"economy\"}", NULL, NULL, 0, -1, NULL,
	  true, "claude-3-5-haiku", "low", "chat_title_generation", "confidence_fallback+cost_economy",
	  "benchmark_economy" },
	{ "quality", HELLO, "", "{\"costMode\":\"quality\"}", NULL, NULL, 0, -1, NULL,
	  true, "claude-3-7-sonnet", "advanced", "chat_title_generation", "confidence_fallback+cost_quality+tier_step:high",
	  "benchmark_quality" },
	{ "tier boost +2", HELLO, "", "{\"tierBoost\":2}", NULL, NULL, 0, -1, NULL,
	  true, "claude-3-7-sonnet", "high", "chat_title_generation", "confidence_fallback+tier_boost:+2",
	  "benchmark_balanced" },
	{ "tier boost +2 after quality: ultra", HELLO, "", "{\"tierBoost\":2,\"costMode\":\"quality\"}", NULL, NULL, 0,
	  -1, NULL, true, "claude-opus-4-6", "ultra", "chat_title_generation",
	  "confidence_fallback+cost_quality+tier_boost:+2", "benchmark_quality" },
	{ "tier boost -2", HELLO, "", "{\"tierBoost\":-2}", NULL, NULL, 0, -1, NULL,
	  true, "claude-3-haiku", "minimal", "chat_title_generation", "confidence_fallback+tier_boost:-2",
	  "benchmark_balanced" },
	{ "economy and tier boost -2 stop at micro", HELLO, "", "{\"tierBoost\":-2,\"costMode\":\"economy\"}", NULL,
	  NULL, 0, -1, NULL, true, "micro-model", "micro", "chat_title_generation",
	  "confidence_fallback+cost_economy+tier_boost:-2", "benchmark_economy" },
	{ "session fill upgrade", HELLO, "", NULL, NULL, NULL, 0, 0.8, NULL,
	  true, "claude-3-7-sonnet", "advanced", "chat_title_generation",
	  "confidence_fallback+session_context_upgrade(80%)+tier_step:high", "benchmark_balanced" },
	{ "session fill below the threshold", HELLO, "", NULL, NULL, NULL, 0, 0.5, NULL,
	  true, "claude-3-5-sonnet", "medium", "chat_title_generation", "confidence_fallback", "benchmark_balanced" },
	{ "force all: capped at the user's tier", HELLO, "", NULL, NULL, "claude-3-haiku", ROUTE_STRICT_NONE, -1, NULL,
	  true, "claude-3-haiku", "minimal", "chat_title_generation", "confidence_fallback+tier_cap:claude-3-haiku",
	  "benchmark_balanced" },
	{ "force all: a cheaper route is kept", HELLO, "", NULL, NULL, "claude-opus-4-6", ROUTE_STRICT_NONE, -1, NULL,
	  true, "claude-3-5-sonnet", "medium", "chat_title_generation", "confidence_fallback", "benchmark_balanced" },
	{ "smart: a trivial task is rerouted", HELLO, "", NULL, NULL, "claude-opus-4-6", ROUTE_STRICT_SMART, -1, NULL,
	  true, "claude-3-5-sonnet", "medium", "chat_title_generation", "confidence_fallback", "benchmark_balanced" },
	{ "smart: a substantial task keeps the user's model",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"Please review this NDA clause for GDPR compliance\"}]}", "",
	  NULL, NULL, "claude-opus-4-6", ROUTE_STRICT_SMART, -1, NULL,
	  true, "claude-opus-4-6", "ultra", "legal_analysis", "strictness_smart", "strictness_smart_keep_user" },
	{ "fim_only: a chat request keeps the user's model", HELLO, "", NULL, NULL, "claude-opus-4-6",
	  ROUTE_STRICT_FIM_ONLY, -1, NULL,
	  true, "claude-opus-4-6", "ultra", "", "strictness_fim_only", "strictness_keep_user" },
	{ "FIM: the rule set's cost mode and boost do not apply",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"<fim_prefix>def f(<fim_suffix>)<fim_middle>\"}]}", "",
	  "{\"costMode\":\"quality\",\"tierBoost\":2}", NULL, NULL, 0, -1, NULL,
	  true, "micro-model", "micro", "coding_autocomplete", "", "benchmark_quality" },
	{ "default model refused by the policy: no route", HELLO,
	  "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"nothing\"]},\"routing\":{\"defaultModel\":\"gpt-4o\"}}",
	  NULL, NULL, NULL, 0, -1, NULL,
	  false, "", "medium", "chat_title_generation", "confidence_fallback", "" },
	{ "fim_only: a FIM request is routed",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"<fim_prefix>def f(<fim_suffix>)<fim_middle>\"}]}", "", NULL,
	  NULL, "claude-opus-4-6", ROUTE_STRICT_FIM_ONLY, -1, NULL,
	  true, "micro-model", "micro", "coding_autocomplete", "", "benchmark_balanced" },
	{ "legal keywords: a hint of advanced, the nearest tier above",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"Please review this NDA clause for GDPR compliance\"}]}", "",
	  NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-7-sonnet", "advanced", "legal_analysis", "tier_step:high", "benchmark_balanced" },
	{ "'standard' is not 'nda'",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"Our standard calendar for Monday\"}]}", "", NULL, NULL, NULL, 0,
	  -1, NULL, true, "claude-3-5-sonnet", "medium", "chat_title_generation", "confidence_fallback",
	  "benchmark_balanced" },
	{ "context: the medium model is too small, the nearest tier that holds it",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"@@BIG@@\"}]}", "", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-3-5-haiku", "medium", NULL, "tier_step:low", "benchmark_balanced" },
	{ "context: only the largest window holds it (the registry's window when the entry has none)",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"@@HUGE@@\"}]}", "", NULL, NULL, NULL, 0, -1, NULL,
	  true, "claude-opus-4-6", "high", NULL, "tier_step:ultra", "benchmark_balanced" },
	{ "category default model",
	  HELLO, "", NULL,
	  "[{\"key\":\"chat_title_generation\",\"costTier\":\"micro\",\"order\":1,\"defaultModel\":\"claude-3-haiku\"}]",
	  NULL, 0, -1, NULL,
	  true, "claude-3-haiku", "medium", "chat_title_generation", "confidence_fallback", "category_default" },
	{ "category default model not usable: benchmark",
	  HELLO, "", NULL,
	  "[{\"key\":\"chat_title_generation\",\"costTier\":\"micro\",\"order\":1,\"defaultModel\":\"nowhere\"}]",
	  NULL, 0, -1, NULL,
	  true, "claude-3-5-sonnet", "medium", "chat_title_generation", "confidence_fallback", "benchmark_balanced" },
	{ "no model at all: the tenant's default", HELLO,
	  "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"gpt-4o\"]},\"routing\":{\"defaultModel\":\"gpt-4o\"}}",
	  NULL, NULL, NULL, 0, -1, NULL,
	  true, "gpt-4o", "medium", "chat_title_generation", "confidence_fallback", "tenant_default" },
	{ "no model and no default: no route", HELLO,
	  "{\"modelConfig\":{\"mode\":\"whitelist\",\"list\":[\"nothing\"]}}", NULL, NULL, NULL, 0, -1, NULL,
	  false, "", "medium", "chat_title_generation", "confidence_fallback", "" },
	{ "keyword rules pre-route with a confident rule set",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"Please generate a title for this chat\"}]}", "",
	  "{\"signalWeights\":{\"tokenCount\":0.8,\"systemPromptRole\":0.9,\"contentKeywords\":0.85,\"codeLanguage\":0.7,"
	  "\"conversationTurns\":0.4}}", NULL, NULL, 0, -1, NULL,
	  true, "micro-model", "micro", "chat_title_generation", "", "benchmark_balanced" },
};

/* The rule set of a case: the default one with the case's fields, for the tenant. */
static json_t *
ruleset_docs(const char *patch)
{
	if (!patch)
		return json_array();
	json_t *doc = ruleset_default_doc();
	json_t *p = load(patch);
	json_object_update(doc, p);
	json_decref(p);
	json_object_set_new(doc, "tenantId", json_string(TENANT_ID));
	json_object_set_new(doc, "isGlobalDefault", json_false());
	char err[256] = "";
	json_t *norm = ruleset_normalise(doc, NULL, err, sizeof err);
	ck_assert_msg(norm != NULL, "rule set: %s", err);
	json_decref(doc);
	json_object_set_new(norm, "_id", json_string("64c000000000000000000001"));
	json_object_set_new(norm, "isDefault", json_false());
	return json_pack("[o]", norm);
}

static bool
open_fn(void *arg, const char *id)
{
	return arg && strcmp(arg, id) == 0;
}

static json_t *
tenant_doc(const char *patch)
{
	json_t *t = load("{\"_id\":\"" TENANT_ID "\",\"slug\":\"t\",\"providerIds\":[\"" P1 "\",\"" P2 "\"],"
			 "\"routing\":{\"enabled\":true}}");
	tenants_fill_defaults(t);
	if (patch && *patch) {
		json_t *p = load(patch);
		const char *k;
		json_t *v;
		json_object_foreach(p, k, v) {
			json_t *cur = json_object_get(t, k);
			if (json_is_object(cur) && json_is_object(v)) {
				const char *k2;
				json_t *v2;
				json_object_foreach(v, k2, v2) {
					json_t *c2 = json_object_get(cur, k2);
					if (json_is_object(c2) && json_is_object(v2))
						json_object_update(c2, v2);
					else
						json_object_set(cur, k2, v2);
				}
			} else {
				json_object_set(t, k, v);
			}
		}
		json_decref(p);
	}
	return t;
}

static json_t *
request_doc(const char *text)
{
	if (strstr(text, "@@BIG@@") || strstr(text, "@@HUGE@@")) {
		/* about 5,000 tokens of prose: above the medium model's 4,000-token window; or about 300,000:
		 * above every window (the registry's 200,000 for the Claude models) */
		size_t n = strstr(text, "@@BIG@@") ? 17500 : 1050000;
		char *big = malloc(n + 1);
		for (size_t i = 0; i < n; i++)
			big[i] = i % 6 == 5 ? ' ' : 'a' + (char)(i % 7);
		big[n] = '\0';
		json_t *r = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user", "content", big);
		free(big);
		return r;
	}
	return load(text);
}

START_TEST(decision_table)
{
	const struct ecase *c = &cases[_i];
	json_t *prov = providers(), *t = tenant_doc(c->tenant), *req = request_doc(c->request);
	json_t *rs = ruleset_docs(c->ruleset), *cats = c->categories ? load(c->categories) : NULL;
	json_t *tprov = json_array();
	json_array_extend(tprov, prov);
	struct rdata *rd = rdata_build(cats, rs);
	struct route_input in = {
		.request = req, .tenant_doc = t, .tprov = tprov, .rd = rd, .user_model = c->user_model,
		.strictness = c->strictness, .prev_fill_pct = c->fill, .use_classifier = false,
		.is_open = open_fn, .open_arg = (void *)c->open_provider,
	};
	struct route_result *r = malloc(sizeof *r);
	route_decide(&in, r, NULL);
	ck_assert_msg(r->ok == c->ok, "%s: ok %d", c->name, r->ok);
	ck_assert_msg(strcmp(r->model, c->model) == 0, "%s: model %s, expected %s (overrides %s)", c->name, r->model,
		      c->model, r->overrides);
	ck_assert_msg(strcmp(route_tier_name(r->tier) ? route_tier_name(r->tier) : "-", c->tier) == 0,
		      "%s: tier %s, expected %s", c->name, route_tier_name(r->tier), c->tier);
	if (c->category)
		ck_assert_msg(strcmp(r->category, c->category) == 0, "%s: category %s, expected %s", c->name, r->category,
			      c->category);
	ck_assert_msg(strcmp(r->overrides, c->overrides) == 0, "%s: overrides '%s', expected '%s'", c->name,
		      r->overrides, c->overrides);
	ck_assert_msg(strcmp(r->selection, c->selection) == 0, "%s: selection %s, expected %s", c->name, r->selection,
		      c->selection);
	ck_assert_msg(!r->classifier_called, "%s: no classifier in a dry run", c->name);
	free(r);
	rdata_put(rd);
	json_decref(tprov);
	json_decref(cats);
	json_decref(rs);
	json_decref(req);
	json_decref(t);
	json_decref(prov);
}
END_TEST

START_TEST(trace_and_json)
{
	json_t *prov = providers(), *t = tenant_doc(""), *req = load(HELLO);
	struct rdata *rd = rdata_build(NULL, NULL);
	struct route_input in = { .request = req, .tenant_doc = t, .tprov = prov, .rd = rd, .prev_fill_pct = -1,
				  .use_classifier = true };
	struct route_result *r = malloc(sizeof *r);
	json_t *trace = json_array();
	route_decide(&in, r, trace);
	const char *names[] = { "Signal Extraction", "Fast-Path Detection", "Rule-Set Pre-Routing", "Classifier Decision",
				"Tenant Override Rules", "Cost Mode", "Tier Boost", "Model Selection" };
	ck_assert_int_eq(json_array_size(trace), 8);
	for (size_t i = 0; i < 8; i++) {
		json_t *s = json_array_get(trace, i);
		ck_assert_str_eq(json_string_value(json_object_get(s, "name")), names[i]);
		ck_assert_int_eq(json_integer_value(json_object_get(s, "step")), (json_int_t)i + 1);
	}
	/* no classifier configured: said so, not called */
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(trace, 3), "data"), "skipped")),
			 "classifier not configured");
	ck_assert(!r->classifier_called);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_array_get(trace, 0), "data"), "totalTokens")),
			 r->sig.total_tokens);
	json_t *sel = json_object_get(json_array_get(trace, 7), "data");
	ck_assert_str_eq(json_string_value(json_object_get(sel, "model")), "claude-3-5-sonnet");
	ck_assert_int_eq(json_array_size(json_object_get(sel, "candidates")), 1);   /* the hidden one is not listed */

	json_t *j = route_result_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "selected_model")), "claude-3-5-sonnet");
	ck_assert_str_eq(json_string_value(json_object_get(j, "cost_tier")), "medium");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "overrides"), 0)),
			 "confidence_fallback");
	json_decref(j);
	json_t *log = json_object();
	route_result_log(r, log);
	ck_assert_ptr_null(json_object_get(log, "isAutoRouted"));   /* the caller writes it, once */
	ck_assert_str_eq(json_string_value(json_object_get(log, "costTier")), "medium");
	ck_assert_str_eq(json_string_value(json_object_get(log, "taskType")), "chat");
	ck_assert(json_is_object(json_object_get(log, "routingSignals")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(log, "routingSignals"), "signalSource")),
			 "token_threshold");
	json_decref(log);
	free(r);
	json_decref(trace);
	rdata_put(rd);
	json_decref(req);
	json_decref(t);
	json_decref(prov);
}
END_TEST

/* A tenant's own rule set never leaks to another tenant (the original's single cache slot did). */
START_TEST(ruleset_per_tenant)
{
	json_t *rs = ruleset_docs("{\"tierBoost\":2}");
	struct rdata *rd = rdata_build(NULL, rs);
	ck_assert_int_eq(rdata_ruleset_for(rd, TENANT_ID)->tier_boost, 2);
	ck_assert_int_eq(rdata_ruleset_for(rd, "64b000000000000000000002")->tier_boost, 0);
	ck_assert_ptr_eq(rdata_ruleset_for(rd, "64b000000000000000000002"), ruleset_builtin());
	ck_assert_ptr_eq(rdata_ruleset_for(rd, NULL), ruleset_builtin());
	rdata_put(rd);
	json_decref(rs);
	/* no categories stored: the built-in catalog */
	rd = rdata_build(NULL, NULL);
	ck_assert_int_ge(rd->ncats, 50);
	ck_assert_str_eq(rd->cats[0].key, "coding_autocomplete");
	ck_assert_ptr_nonnull(rdata_category(rd, "vision_simple"));
	ck_assert(rdata_category(rd, "vision_simple")->requires_vision);
	ck_assert_ptr_null(rdata_category(rd, "nope"));
	rdata_put(rd);
}
END_TEST

START_TEST(force_modes)
{
	static const struct {
		const char *routing, *mode;
	} rows[] = {
		{ "{\"enabled\":true,\"forceAutoRouteMode\":\"all\"}", "all" },
		{ "{\"enabled\":true,\"forceAutoRouteMode\":\"smart\"}", "smart" },
		{ "{\"enabled\":true,\"forceAutoRouteMode\":\"fim_only\"}", "fim_only" },
		{ "{\"enabled\":true,\"forceAutoRouteMode\":\"off\"}", "off" },
		{ "{\"enabled\":false,\"forceAutoRouteMode\":\"all\"}", "off" },
		{ "{\"enabled\":true,\"forceAutoRouteMode\":\"off\",\"forceAutoRoute\":true}", "all" },
		{ "{\"enabled\":true,\"forceAutoRoute\":true}", "all" },
		{ "{\"enabled\":true,\"forceAutoRouteMode\":\"bogus\"}", "off" },
		{ "{}", "off" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		json_t *t = json_pack("{s:o}", "routing", load(rows[i].routing));
		ck_assert_msg(strcmp(route_force_mode(t), rows[i].mode) == 0, "%s: %s", rows[i].routing, route_force_mode(t));
		json_decref(t);
	}
	ck_assert_int_eq(route_strictness_of("smart"), ROUTE_STRICT_SMART);
	ck_assert_int_eq(route_strictness_of("fim_only"), ROUTE_STRICT_FIM_ONLY);
	ck_assert_int_eq(route_strictness_of("all"), ROUTE_STRICT_NONE);
}
END_TEST

/* An output reserve counts against the window: a model that holds the input but not input + max_tokens
 * is not chosen. */
START_TEST(reserve_counts)
{
	json_t *prov = providers(), *t = tenant_doc(""), *req = load(HELLO);
	struct rdata *rd = rdata_build(NULL, NULL);
	struct route_input in = { .request = req, .tenant_doc = t, .tprov = prov, .rd = rd, .prev_fill_pct = -1,
				  .reserve_tokens = 3990 };
	struct route_result *r = malloc(sizeof *r);
	route_decide(&in, r, NULL);
	ck_assert_str_eq(r->model, "claude-3-5-haiku");          /* the 4,000-token medium model cannot hold it */
	ck_assert_str_eq(r->overrides, "confidence_fallback+tier_step:low");
	in.reserve_tokens = 100;
	route_decide(&in, r, NULL);
	ck_assert_str_eq(r->model, "claude-3-5-sonnet");
	free(r);
	rdata_put(rd);
	json_decref(req);
	json_decref(t);
	json_decref(prov);
}
END_TEST

/* The hook before the classifier stops the decision (the gateway's limits). */
static bool
refuse(void *arg)
{
	(*(int *)arg)++;
	return false;
}

START_TEST(before_classifier_hook)
{
	json_t *prov = providers(), *req = load(HELLO);
	json_t *t = tenant_doc("{\"routing\":{\"classifierProvider\":\"" P1 "\",\"classifierModel\":\"micro-model\"}}");
	struct rdata *rd = rdata_build(NULL, NULL);
	int calls = 0;
	struct route_input in = { .request = req, .tenant_doc = t, .tprov = prov, .rd = rd, .prev_fill_pct = -1,
				  .use_classifier = true, .before_classifier = refuse, .before_arg = &calls };
	struct route_result *r = malloc(sizeof *r);
	route_decide(&in, r, NULL);
	ck_assert_int_eq(calls, 1);
	ck_assert(r->stopped);
	ck_assert(!r->ok);
	ck_assert(!r->classifier_called);
	/* a confident pre-route never asks */
	json_decref(req);
	req = load("{\"messages\":[{\"role\":\"user\",\"content\":\"<fim_prefix>x<fim_suffix><fim_middle>\"}]}");
	in.request = req;
	route_decide(&in, r, NULL);
	ck_assert_int_eq(calls, 1);
	ck_assert(r->ok && !r->stopped);
	free(r);
	rdata_put(rd);
	json_decref(req);
	json_decref(t);
	json_decref(prov);
}
END_TEST

struct icase {
	const char *name, *request, *expect;
};

static const struct icase inject_cases[] = {
	{ "no system message: a new first one", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"BE BRIEF\"},{\"role\":\"user\",\"content\":\"hi\"}]}" },
	{ "string system: appended", "{\"messages\":[{\"role\":\"system\",\"content\":\"You help.\"},{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"You help.\\n\\nBE BRIEF\"},{\"role\":\"user\",\"content\":\"hi\"}]}" },
	{ "already there: unchanged", "{\"messages\":[{\"role\":\"system\",\"content\":\"x BE BRIEF y\"}]}",
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"x BE BRIEF y\"}]}" },
	{ "array system: one more text block",
	  "{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You help.\"}]}]}",
	  "{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You help.\"},{\"type\":\"text\",\"text\":\"BE BRIEF\"}]}]}" },
	{ "the last system message", "{\"messages\":[{\"role\":\"system\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"b\"}]}",
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"b\\n\\nBE BRIEF\"}]}" },
	{ "null content", "{\"messages\":[{\"role\":\"system\",\"content\":null}]}",
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"BE BRIEF\"}]}" },
	{ "no messages array: nothing", "{\"prompt\":\"x\"}", "{\"prompt\":\"x\"}" },
};

START_TEST(inject_table)
{
	const struct icase *c = &inject_cases[_i];
	json_t *r = load(c->request), *want = load(c->expect);
	route_inject_system(r, "BE BRIEF");
	char *got = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS), *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_msg(strcmp(got, exp) == 0, "%s: %s", c->name, got);
	free(got);
	free(exp);
	json_decref(r);
	json_decref(want);
}
END_TEST

static Suite *
engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("decide");
	tcase_add_loop_test(tc, decision_table, 0, (int)(sizeof cases / sizeof cases[0]));
	tcase_add_test(tc, trace_and_json);
	tcase_add_test(tc, ruleset_per_tenant);
	tcase_add_test(tc, force_modes);
	tcase_add_test(tc, reserve_counts);
	tcase_add_test(tc, before_classifier_hook);
	tcase_add_loop_test(tc, inject_table, 0, (int)(sizeof inject_cases / sizeof inject_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(engine_suite)
