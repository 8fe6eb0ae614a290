/* routetest.c -- the routing decision as a dry run (routetest.h).
 *
 * Both endpoints run route_decide (routing/engine.h) exactly as the gateway does for a tenant -- the same
 * rule set resolution, overrides, policy, breakers and selection -- but never call the target model.  The
 * classifier is called only when the body asks for it (useClassifier) and the tenant has one.
 */
#include "config.h"
#include "admin/routetest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/tenants.h"
#include "analytics/writer.h"
#include "gateway/plan.h"
#include "routing/engine.h"
#include "shm/breaker.h"
#include "shm/segment.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/xalloc.h"

#define RT_MAX_PROMPT 1000000          /* bytes of one prompt */
#define RT_MAX_MESSAGES 1000
#define RT_CLASSIFIER_BUDGET_MS 120000L   /* classifier time of one suite run; later cases go without it */

/* Everything a decision needs about one tenant. */
struct rt_env {
	json_t *tenant;
	json_t *providers;
	json_t *tprov;
	struct rdata *rd;
};

static void
env_free(struct rt_env *e)
{
	json_decref(e->tenant);
	json_decref(e->providers);
	json_decref(e->tprov);
	rdata_put(e->rd);
}

static enum prism_err
env_load(struct request *req, struct store *s, const char *tenant_id, struct rt_env *e)
{
	memset(e, 0, sizeof *e);
	char serr[256] = "";
	enum prism_err err = s->ops->get(s, COLL_TENANTS, tenant_id, &e->tenant, serr, sizeof serr);
	if (err)
		return admin_store_fail(req, err, "Tenant not found", serr);
	tenants_fill_defaults(e->tenant);
	if ((err = admin_find_all(req, s, COLL_PROVIDERS, NULL, 0, NULL, false, STORE_MAX_LIMIT, &e->providers)))
		return err;
	e->tprov = plan_tenant_providers(e->tenant, e->providers);
	if ((err = rdata_get(&e->rd, serr, sizeof serr)))
		return admin_store_fail(req, err, "routing data", serr);
	return PRISM_OK;
}

/* The synthetic request: the given messages, or [system?, user: prompt]. */
static enum prism_err
build_request(struct request *req, const json_t *src, const char *prefix, json_t **out)
{
	*out = NULL;
	char field[128];
	const json_t *msgs = json_object_get(src, "messages");
	if (msgs && !json_is_null(msgs)) {
		if (!json_is_array(msgs) || json_array_size(msgs) == 0 || json_array_size(msgs) > RT_MAX_MESSAGES)
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%smessages: must be an array of 1 to %d messages", prefix,
					  RT_MAX_MESSAGES);
		size_t i;
		const json_t *m;
		json_array_foreach(msgs, i, m) {
			if (!json_is_object(m) || !json_string_value(json_object_get(m, "role")))
				return admin_fail(req, PRISM_E_BAD_REQUEST, "%smessages[%zu]: must be an object with a role",
						  prefix, i);
		}
		*out = json_pack("{s:O}", "messages", msgs);
	} else {
		const json_t *p = json_object_get(src, "prompt"), *sp = json_object_get(src, "systemPrompt");
		snprintf(field, sizeof field, "%sprompt", prefix);
		if (!json_is_string(p) || !*json_string_value(p))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "prompt is required (%s: a non-empty string)", field);
		if (json_string_length(p) > RT_MAX_PROMPT || (json_is_string(sp) && json_string_length(sp) > RT_MAX_PROMPT))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: at most %d bytes", field, RT_MAX_PROMPT);
		if (sp && !json_is_null(sp) && !json_is_string(sp))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%ssystemPrompt: must be a string", prefix);
		json_t *m = json_array();
		if (json_is_string(sp) && *json_string_value(sp))
			json_array_append_new(m, json_pack("{s:s, s:O}", "role", "system", "content", sp));
		json_array_append_new(m, json_pack("{s:s, s:O}", "role", "user", "content", p));
		*out = json_pack("{s:o}", "messages", m);
	}
	const char *keys[] = { "tools", "tool_choice" };
	for (size_t i = 0; i < 2; i++)
		if (json_object_get(src, keys[i]))
			json_object_set(*out, keys[i], json_object_get(src, keys[i]));
	return PRISM_OK;
}

static void
decide(const struct rt_env *e, struct request *req, json_t *request, const char *model, bool use_classifier,
       struct route_result *r, json_t *trace)
{
	/* the gateway's rule: a named model goes through the router when the tenant's force-route mode says so */
	const char *mode = route_force_mode(e->tenant);
	bool forced = model && *model && !plan_is_auto_model(model) && strcmp(mode, "off") != 0;
	struct route_input in = {
		.request = request,
		.tenant_doc = e->tenant,
		.tprov = e->tprov,
		.rd = e->rd,
		.user_model = forced ? model : NULL,
		.strictness = forced ? route_strictness_of(mode) : ROUTE_STRICT_NONE,
		.prev_fill_pct = -1,
		.use_classifier = use_classifier,
		.cfg = req->cfg,
		.is_open = breaker_peek_open_now,
		.open_arg = shm_segment_current(),
	};
	route_decide(&in, r, trace);
}

/* A classifier call made by a dry run costs money on the tenant's provider: one RequestLog for it, like the
 * original's ("requestedModel" auto, override "test_route" or "synthetic_test"). */
static void
log_classifier(struct request *req, const char *tenant_id, const struct route_result *r, const char *what,
	       const char *session)
{
	if (!r->classifier_called)
		return;
	char user[160];
	snprintf(user, sizeof user, "admin:%s", req->user.username);
	double cost = (double)r->classifier_cost_micro / 1e6;
	json_t *log = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:b, s:b, s:s, s:I, s:s, s:s, s:s}",
				"tenantId", tenant_id, "requestedModel", "auto", "routedModel",
				r->classifier_model[0] ? r->classifier_model : "none", "endpoint", "routing/classifier",
				"status", r->classifier_error[0] && !r->classifier_in ? "error" : "success", "inputTokens",
				(json_int_t)r->classifier_in, "outputTokens", (json_int_t)r->classifier_out,
				"actualCostUsd", cost, "baselineCostUsd", cost, "savedUsd", 0.0, "isAutoRouted", 0,
				"streaming", 0, "overrideApplied", what, "durationMs", (json_int_t)r->classifier_ms,
				"sessionId", session, "userName", user, "requestId", req->request_id);
	if (r->classifier_error[0])
		json_object_set_new(log, "errorMessage", json_string(r->classifier_error));
	analytics_submit(log);
}

static json_t *
tier_json(int t)
{
	return route_tier_name(t) ? json_string(route_tier_name(t)) : json_null();
}

enum prism_err
routetest_handler(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *request = NULL;
	struct rt_env env = { 0 };
	const char *tenant_id = NULL, *model = NULL;
	bool use_classifier = false;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_body(req, &body)))
		goto out;
	if (!json_object_get(body, "tenantId")) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "tenantId is required");
		goto out;
	}
	if ((err = valid_id(req, body, "tenantId", VF_REQUIRED, &tenant_id)) ||
	    (err = valid_bool(req, body, "useClassifier", 0, &use_classifier)) ||
	    (err = valid_string(req, body, "model", 0, PLAN_MAX_MODEL, &model)) ||
	    (err = build_request(req, body, "", &request)) || (err = env_load(req, s, tenant_id, &env)))
		goto out;
	struct route_result *r = xmalloc(sizeof *r);
	json_t *trace = json_array();
	decide(&env, req, request, model, use_classifier, r, trace);
	char session[48];
	snprintf(session, sizeof session, "test-route-%lld", (long long)clock_realtime_ms());
	log_classifier(req, tenant_id, r, "test_route", session);
	json_t *summary = json_pack("{s:s?, s:s?, s:o, s:s?, s:f, s:s, s:s, s:s?, s:s, s:b, s:f, s:f, s:s?}",
				    "finalModel", r->ok ? r->model : NULL, "providerId",
				    r->provider_id[0] ? r->provider_id : NULL, "finalTier", tier_json(r->tier), "category",
				    r->category[0] ? r->category : NULL, "confidence", r->confidence, "domain", r->domain,
				    "complexity", r->complexity, "overridesApplied", r->overrides[0] ? r->overrides : NULL,
				    "selectionMethod", r->selection, "preRouted", r->prerouted, "routingMs",
				    (double)r->analysis_us / 1000.0, "routingCostUsd", (double)r->classifier_cost_micro / 1e6,
				    "reason", r->reason);
	json_object_set_new(summary, "categoryPrompt", json_boolean(r->category_prompt && r->category_prompt[0]));
	if (r->classifier_called)
		json_object_set_new(summary, "classifier",
				    json_pack("{s:s, s:I, s:I, s:I, s:s?}", "model", r->classifier_model, "inputTokens",
					      (json_int_t)r->classifier_in, "outputTokens", (json_int_t)r->classifier_out,
					      "elapsedMs", (json_int_t)r->classifier_ms, "error",
					      r->classifier_error[0] ? r->classifier_error : NULL));
	free(r);
	err = admin_reply(req, 200, json_pack("{s:o, s:o}", "trace", trace, "summary", summary));
out:
	env_free(&env);
	json_decref(request);
	json_decref(body);
	return err;
}

/* --- test suites ----------------------------------------------------------------------------------------- */

static int
tier_or(const json_t *o, const char *k, int dflt)
{
	int t = route_tier_index(json_string_value(json_object_get(o, k)));
	return t >= 0 ? t : dflt;
}

enum prism_err
routetest_suite_run(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *suite = NULL, *results = NULL, *dist = NULL, *run = NULL;
	struct rt_env env = { 0 };
	const char *id = NULL, *tenant_id = NULL;
	bool use_classifier = false;
	char serr[256] = "";
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_param_id(req, "id", "Test suite", &id)) || (err = admin_body(req, &body)))
		goto out;
	if (!json_object_get(body, "tenantId")) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "tenantId is required");
		goto out;
	}
	if ((err = valid_id(req, body, "tenantId", VF_REQUIRED, &tenant_id)) ||
	    (err = valid_bool(req, body, "useClassifier", 0, &use_classifier)))
		goto out;
	if ((err = s->ops->get(s, COLL_SYNTHETICTESTS, id, &suite, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "Test suite not found", serr);
		goto out;
	}
	const json_t *cases = json_object_get(suite, "testCases");
	if (json_array_size(cases) == 0) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "Test suite has no test cases");
		goto out;
	}
	if ((err = env_load(req, s, tenant_id, &env)))
		goto out;
	results = json_array();
	dist = json_object();
	long tier_matches = 0, cat_matches = 0;
	double conf_sum = 0, ms_sum = 0;
	struct route_result *r = xmalloc(sizeof *r);
	int64_t classifier_ms = 0;
	char session[64];
	snprintf(session, sizeof session, "synthetic-test-%s", id);
	size_t i;
	const json_t *tc;
	json_array_foreach(cases, i, tc) {
		json_t *request = NULL;
		char prefix[48];
		snprintf(prefix, sizeof prefix, "testCases[%zu].", i);
		if ((err = build_request(req, tc, prefix, &request)))
			break;
		json_t *trace = json_array();
		/* a suite of slow classifier answers must not hold the admin worker for hours */
		bool with_classifier = use_classifier && classifier_ms < RT_CLASSIFIER_BUDGET_MS;
		decide(&env, req, request, NULL, with_classifier, r, trace);
		json_decref(request);
		classifier_ms += r->classifier_ms;
		log_classifier(req, tenant_id, r, "synthetic_test", session);
		int lo = tier_or(tc, "expectedTierMin", 0), hi = tier_or(tc, "expectedTierMax", ROUTE_NTIERS - 1);
		const char *want = json_string_value(json_object_get(tc, "expectedCategory"));
		bool tier_ok = r->tier >= lo && r->tier <= hi;
		bool cat_ok = !want || !*want || strcmp(want, r->category) == 0;
		tier_matches += tier_ok;
		cat_matches += cat_ok;
		conf_sum += r->confidence;
		ms_sum += (double)r->analysis_us / 1000.0;
		const char *tn = route_tier_name(r->tier) ? route_tier_name(r->tier) : "none";
		json_object_set_new(dist, tn, json_integer(json_integer_value(json_object_get(dist, tn)) + 1));
		const char *prompt = json_string_value(json_object_get(tc, "prompt"));
		char excerpt[484];
		snprintf(excerpt, sizeof excerpt, "%s", prompt ? prompt : "");
		/* 120 code points at most, never cut inside a UTF-8 sequence */
		size_t cp = 0, k = 0;
		for (; excerpt[k] && cp <= 120; k++)
			if (((unsigned char)excerpt[k] & 0xC0) != 0x80 && ++cp > 120)
				break;
		excerpt[k] = '\0';
		json_t *row = json_pack("{s:O?, s:s, s:s, s:o, s:s, s:f, s:s, s:s, s:f, s:b, s:b, s:O?, s:O?, s:O?, s:s, s:o}",
					"testCaseId", json_object_get(tc, "_id"), "prompt", excerpt, "routedModel",
					r->ok ? r->model : "", "routedTier", tier_json(r->tier), "category", r->category,
					"confidence", r->confidence, "overrides", r->overrides, "selectionMethod", r->selection,
					"routingMs", (double)r->analysis_us / 1000.0, "tierMatch", tier_ok, "categoryMatch",
					cat_ok, "expectedTierMin", json_object_get(tc, "expectedTierMin"), "expectedTierMax",
					json_object_get(tc, "expectedTierMax"), "expectedCategory",
					json_object_get(tc, "expectedCategory"), "reasoning", r->reason, "trace", trace);
		if (r->classifier_called)
			json_object_set_new(row, "classifierModel", json_string(r->classifier_model));
		if (use_classifier && !with_classifier)
			json_object_set_new(row, "classifierSkipped", json_string("time budget of the run spent"));
		json_array_append_new(results, row);
	}
	free(r);
	if (err)
		goto out;
	size_t n = json_array_size(results);
	char ts[32], rid[25];
	store_now_iso(ts);
	const struct ruleset *rs = rdata_ruleset_for(env.rd, tenant_id);
	run = json_pack("{s:s, s:s, s:s, s:O, s:{s:I, s:I, s:I, s:f, s:f, s:O}, s:s}", "testSuiteId", id, "tenantId",
			tenant_id, "ruleSetName", rs->name[0] ? rs->name : "none", "results", results, "summary", "total",
			(json_int_t)n, "tierMatches", (json_int_t)tier_matches, "categoryMatches", (json_int_t)cat_matches,
			"avgConfidence", n ? round(conf_sum / (double)n * 1000) / 1000 : 0.0, "avgRoutingMs",
			n ? ms_sum / (double)n : 0.0, "tierDistribution", dist, "createdAt", ts);
	if ((err = s->ops->insert(s, COLL_TESTRUNS, run, rid, serr, sizeof serr))) {
		err = admin_store_fail(req, err, "cannot store the test run", serr);
		goto out;
	}
	json_object_set_new(run, "_id", json_string(rid));
	err = admin_reply(req, 201, json_incref(run));
out:
	env_free(&env);
	json_decref(run);
	json_decref(dist);
	json_decref(results);
	json_decref(suite);
	json_decref(body);
	return err;
}
