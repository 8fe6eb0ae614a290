/* engine.c -- the routing decision (engine.h). */
#include "config.h"
#include "routing/engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/registry.h"
#include "gateway/plan.h"
#include "gateway/relay.h"
#include "routing/signals.h"
#include "util/clock.h"
#include "util/xalloc.h"

#define MAX_MODELS 2000           /* models of a tenant considered; the rest are ignored */

/* A model of the tenant with what selection needs to know about it. */
struct cand {
	struct route_model m;
	bool allowed;                 /* policy */
	bool healthy;                 /* breaker not open */
	bool fits;                    /* context window holds the request */
};

struct ctx {
	const struct route_input *in;
	struct route_result *r;
	json_t *trace;
	struct cand *models;
	size_t nmodels;
	const struct ruleset *rs;
	int step;
};

static const char *
str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void
copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* Appends one entry to the override list (never overwriting what earlier steps wrote). */
static void
add_override(struct route_result *r, const char *fmt, ...)
{
	char item[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(item, sizeof item, fmt, ap);
	va_end(ap);
	relay_utf8_fix(item);           /* a long model id may have been cut inside a character */
	size_t n = strlen(r->overrides);
	if (n + strlen(item) + 2 > sizeof r->overrides)
		return;
	snprintf(r->overrides + n, sizeof r->overrides - n, "%s%s", n ? "+" : "", item);
}

static void
trace_step(struct ctx *x, const char *name, bool changed, json_t *data)
{
	x->step++;
	if (!x->trace) {
		json_decref(data);
		return;
	}
	json_array_append_new(x->trace, json_pack("{s:i, s:s, s:b, s:o}", "step", x->step, "name", name, "changed",
						  changed, "data", data ? data : json_object()));
}

static json_t *
tier_json(int t)
{
	const char *n = route_tier_name(t);
	return n ? json_string(n) : json_null();
}

/* --- the tenant's models --------------------------------------------------------------------------------- */

static double
price_of(const json_t *entry, const char *k)
{
	const json_t *v = json_object_get(entry, k);
	return json_is_number(v) && json_number_value(v) >= 0 ? json_number_value(v) : -1;
}

static void
load_models(struct ctx *x)
{
	const struct route_input *in = x->in;
	size_t cap = 16;
	x->models = xcalloc(cap, sizeof *x->models);
	size_t i, k;
	const json_t *p, *e;
	json_array_foreach(in->tprov, i, p) {
		const char *pid = str_of(p, "_id"), *slug = str_of(p, "slug");
		bool healthy = !(in->is_open && in->is_open(in->open_arg, pid));
		json_array_foreach(json_object_get(p, "discoveredModels"), k, e) {
			const char *id = json_string_value(json_object_get(e, "id"));
			if (!id || !*id || strlen(id) >= ROUTE_MAX_MODEL || json_is_false(json_object_get(e, "visible")))
				continue;
			if (x->nmodels >= MAX_MODELS)
				return;
			if (x->nmodels == cap) {
				cap *= 2;
				x->models = xrealloc(x->models, cap * sizeof *x->models);
			}
			struct cand *c = &x->models[x->nmodels++];
			memset(c, 0, sizeof *c);
			c->m.id = id;
			c->m.provider_id = pid;
			c->m.provider_slug = slug;
			c->m.tier = route_tier_index(json_string_value(json_object_get(e, "tier")));
			c->m.input_per_1m = price_of(e, "inputPer1M");
			c->m.output_per_1m = price_of(e, "outputPer1M");
			const json_t *pr = json_object_get(e, "priority");
			c->m.priority = json_is_integer(pr) ? (int)json_integer_value(pr) : 50;
			c->m.context_window = plan_context_window(e, id);
			c->allowed = plan_policy_allows(in->tenant_doc, id, slug);
			c->healthy = healthy;
			long tokens = x->r->sig.total_tokens;
			c->fits = tokens <= 0 || c->m.context_window <= 0 ||
				  c->m.context_window >= tokens + (in->reserve_tokens > 0 ? in->reserve_tokens : 0);
		}
	}
}

static bool
usable(const struct cand *c)
{
	return c->allowed && c->healthy && c->fits;
}

/* The first usable candidate with this id (any tier). */
static const struct cand *
find_usable(const struct ctx *x, const char *id)
{
	if (!id || !*id)
		return NULL;
	for (size_t i = 0; i < x->nmodels; i++)
		if (strcmp(x->models[i].m.id, id) == 0 && usable(&x->models[i]))
			return &x->models[i];
	return NULL;
}

static const struct cand *
find_any(const struct ctx *x, const char *id)
{
	for (size_t i = 0; id && i < x->nmodels; i++)
		if (strcmp(x->models[i].m.id, id) == 0)
			return &x->models[i];
	return NULL;
}

static void
select_model(struct ctx *x, const struct cand *c, const char *method)
{
	struct route_result *r = x->r;
	copy(r->model, sizeof r->model, c->m.id);
	copy(r->provider_id, sizeof r->provider_id, c->m.provider_id);
	copy(r->selection, sizeof r->selection, method);
	r->model_tier = c->m.tier;
	r->ok = true;
}

/* --- benchmark-per-price scoring (§5.15) ------------------------------------------------------------------ */

struct weights {
	const char *key;
	double intelligence, coding, math, speed;
};

static const struct weights bench_weights[] = {
	{ "coding", 0.2, 0.6, 0.1, 0.1 },        { "math", 0.2, 0.1, 0.6, 0.1 },
	{ "reasoning", 0.6, 0.1, 0.2, 0.1 },     { "research", 0.6, 0.1, 0.1, 0.2 },
	{ "summarization", 0.3, 0, 0, 0.7 },     { "classification", 0.3, 0, 0, 0.7 },
	{ "translation", 0.3, 0, 0, 0.7 },       { "creative", 0.6, 0, 0, 0.4 },
	{ "analysis", 0.5, 0.1, 0.2, 0.2 },      { "tool_use", 0.3, 0.4, 0.1, 0.2 },
	{ "system_design", 0.4, 0.3, 0.1, 0.2 }, { "planning", 0.5, 0.2, 0.1, 0.2 },
	{ "sensitive", 0.6, 0.1, 0.1, 0.2 },     { "vision", 0.5, 0.1, 0.1, 0.3 },
	{ "document", 0.4, 0.1, 0.1, 0.4 },      { "smalltalk", 0.2, 0, 0, 0.8 },
	{ "email", 0.3, 0, 0, 0.7 },             { "sql", 0.2, 0.5, 0.2, 0.1 },
};
static const struct weights default_weights = { "_default", 0.4, 0.2, 0.1, 0.3 };

/* The exact key, else ever shorter '_'-prefixes of it, else the default. */
static const struct weights *
weights_for(const char *category)
{
	char k[ROUTE_MAX_KEY];
	copy(k, sizeof k, category);
	while (*k) {
		for (size_t i = 0; i < sizeof bench_weights / sizeof bench_weights[0]; i++)
			if (strcmp(bench_weights[i].key, k) == 0)
				return &bench_weights[i];
		char *us = strrchr(k, '_');
		if (!us)
			break;
		*us = '\0';
	}
	return &default_weights;
}

static double
score(const struct cand *c, const struct weights *w, enum route_cost_mode mode)
{
	const struct registry_model *rm = registry_find(c->m.id);
	if (!rm || !rm->has_bench)
		return 0;
	double q = w->intelligence * rm->bench_intelligence + w->coding * rm->bench_coding + w->math * rm->bench_math +
		   w->speed * rm->bench_speed;
	double in = c->m.input_per_1m, out = c->m.output_per_1m;
	/* Unknown discovered prices: the registry's, so an unpriced entry does not look free. */
	if (in < 0 && out < 0 && rm->input_per_1m >= 0) {
		in = rm->input_per_1m;
		out = rm->output_per_1m;
	}
	double cost = (in > 0 ? in : 0) + (out > 0 ? out : 0);
	if (cost <= 0)
		return q * 1000;
	double e = mode == ROUTE_COST_ECONOMY ? 2.0 : mode == ROUTE_COST_QUALITY ? 0.3 : 1.0;
	return q / pow(cost, e);
}

/* The best usable candidate of a tier, or NULL. */
static const struct cand *
best_of_tier(const struct ctx *x, int tier, const struct weights *w, enum route_cost_mode mode)
{
	const struct cand *best = NULL;
	double best_score = 0;
	for (size_t i = 0; i < x->nmodels; i++) {
		const struct cand *c = &x->models[i];
		if (c->m.tier != tier || !usable(c))
			continue;
		double s = score(c, w, mode);
		if (!best || s > best_score || (s == best_score && c->m.priority > best->m.priority)) {
			best = c;
			best_score = s;
		}
	}
	return best;
}

/* --- steps ----------------------------------------------------------------------------------------------- */

static const char *
complexity_for(long tokens)
{
	return tokens > 15000 ? "complex" : tokens > 2000 ? "medium" : "simple";
}

/* The default category of a tier (§5.6 inferCategoryFromTier), or the first category when it is unknown. */
static const char *
category_for_tier(const struct ctx *x, int tier, const char *domain)
{
	const char *k;
	bool legal = strcmp(domain, "legal") == 0, medical = strcmp(domain, "medical") == 0;
	switch (tier) {
	case 0: k = "chat_title_generation"; break;
	case 1: k = "smalltalk_simple"; break;
	case 2: k = "summarization_short"; break;
	case 3: k = legal ? "legal_analysis" : "document_qa"; break;
	case 4: k = legal ? "legal_analysis" : "analysis_complex"; break;
	case 5: k = "swe_agentic"; break;
	case 6: k = "reasoning_formal"; break;
	case 7: k = medical ? "medical_analysis" : "sensitive_critical"; break;
	default: k = "question_answering_complex"; break;
	}
	if (rdata_category(x->in->rd, k))
		return k;
	return x->in->rd && x->in->rd->ncats ? x->in->rd->cats[0].key : "smalltalk_simple";
}

static void
task_type(struct route_result *r)
{
	copy(r->task_type, sizeof r->task_type, r->category[0] ? r->category : "general");
	char *us = strchr(r->task_type, '_');
	if (us && r->category[0])
		*us = '\0';
}

static bool
keep_user_fim_only(struct ctx *x)
{
	const struct route_input *in = x->in;
	struct route_result *r = x->r;
	if (in->strictness != ROUTE_STRICT_FIM_ONLY || !in->user_model || r->sig.is_fim)
		return false;
	const struct cand *c = find_usable(x, in->user_model);
	trace_step(x, "Strictness (fim_only)", c != NULL,
		   json_pack("{s:s, s:b}", "userModel", in->user_model, "kept", c != NULL));
	if (!c)
		return false;
	select_model(x, c, "strictness_keep_user");
	r->tier = c->m.tier >= 0 ? c->m.tier : 3;
	r->confidence = 1;
	copy(r->complexity, sizeof r->complexity, complexity_for(r->sig.total_tokens));
	copy(r->domain, sizeof r->domain, signals_infer_domain(&r->sig));
	copy(r->reason, sizeof r->reason, "strictness_fim_only_keep_user_model");
	r->prerouted = true;
	add_override(r, "strictness_fim_only");
	return true;
}

static void
preroute(struct ctx *x, struct route_preroute *pre)
{
	struct route_result *r = x->r;
	if (r->sig.is_fim) {
		memset(pre, 0, sizeof *pre);
		pre->tier = 0;
		copy(pre->category, sizeof pre->category, "coding_autocomplete");
		copy(pre->domain, sizeof pre->domain, "tech");
		pre->confidence = 0.99;
		copy(pre->source, sizeof pre->source, "fim_detection");
		pre->prerouted = true;
		trace_step(x, "Fast-Path Detection", true,
			   json_pack("{s:s, s:s, s:s, s:f, s:s}", "tier", "micro", "category", "coding_autocomplete", "domain",
				     "tech", "confidence", 0.99, "source", "fim_detection"));
		return;
	}
	trace_step(x, "Fast-Path Detection", false, json_object());
	ruleset_apply(x->rs, &r->sig, pre);
	trace_step(x, "Rule-Set Pre-Routing", pre->confidence > 0,
		   json_pack("{s:s, s:s?, s:o, s:s, s:s, s:f, s:s, s:b}", "ruleSetName", x->rs->name, "ruleSetId",
			     x->rs->id[0] ? x->rs->id : NULL, "tier", tier_json(pre->tier), "category", pre->category,
			     "domain", pre->domain, "confidence", pre->confidence, "source", pre->source, "preRouted",
			     pre->prerouted));
}

static void
from_preroute(struct ctx *x, const struct route_preroute *pre)
{
	struct route_result *r = x->r;
	copy(r->domain, sizeof r->domain, pre->domain[0] ? pre->domain : signals_infer_domain(&r->sig));
	copy(r->category, sizeof r->category,
	     pre->category[0] ? pre->category : category_for_tier(x, pre->tier, r->domain));
	r->confidence = pre->confidence;
	copy(r->complexity, sizeof r->complexity, complexity_for(r->sig.total_tokens));
	r->tier = pre->tier >= 0 ? pre->tier : 3;
	r->prerouted = pre->prerouted;
	snprintf(r->reason, sizeof r->reason, "Pre-routed via %s", pre->source[0] ? pre->source : "defaults");
	relay_utf8_fix(r->reason);
}

/* Step 4: the classifier.  true when its answer decided the category and tier. */
static bool
classify(struct ctx *x, const struct route_preroute *pre)
{
	const struct route_input *in = x->in;
	struct route_result *r = x->r;
	if (pre->prerouted || !in->use_classifier || !classifier_configured(in->tenant_doc, in->tprov)) {
		trace_step(x, "Classifier Decision", false,
			   json_pack("{s:s}", "skipped", pre->prerouted ? "pre-routed" : !in->use_classifier ? "dry-run"
							   : "classifier not configured"));
		return false;
	}
	if (in->before_classifier && !in->before_classifier(in->before_arg)) {
		r->stopped = true;
		return false;
	}
	/* The prompt lists the tenant's tiered models the router could pick. */
	struct route_model *ms = xcalloc(x->nmodels ? x->nmodels : 1, sizeof *ms);
	size_t nm = 0;
	for (size_t i = 0; i < x->nmodels; i++)
		if (x->models[i].m.tier >= 0 && x->models[i].allowed)
			ms[nm++] = x->models[i].m;
	const struct rdata *rd = in->rd;
	char *prompt = classifier_prompt(rd->cats, rd->ncats, ms, nm);
	const char *hint = strncmp(pre->source, "system_prompt_role:", 19) == 0 ? pre->source + 19 : NULL;
	/* The classifier model's own window bounds the context, else the rule set's limit. */
	long window = x->rs->context_limit_tokens;
	const json_t *routing = json_object_get(in->tenant_doc, "routing");
	const struct cand *cm = find_any(x, str_of(routing, "classifierModel"));
	if (cm && cm->m.context_window > 0)
		window = cm->m.context_window;
	char *context = classifier_context(&r->sig, json_object_get(in->request, "messages"), window,
					   x->rs->context_strategy, hint);
	long timeout = in->classifier_timeout_ms;
	const json_t *to = json_object_get(routing, "classifierTimeoutMs");
	if (timeout <= 0 && json_is_integer(to))
		timeout = (long)json_integer_value(to);
	struct classifier_request rq = { in->cfg, in->tenant_doc, in->tprov, prompt, context, timeout, in->is_open,
					 in->open_arg };
	struct classifier_outcome out;
	classifier_call(&rq, &out);
	r->classifier_called = true;
	copy(r->classifier_model, sizeof r->classifier_model, out.model);
	r->classifier_in = out.input_tokens;
	r->classifier_out = out.output_tokens;
	r->classifier_cost_micro = out.cost_micro;
	r->classifier_ms = out.elapsed_ms;
	struct classifier_answer a;
	char why[256] = "";
	bool good = out.ok && classifier_parse(out.content, rd->cats, rd->ncats, ms, nm, &a, why, sizeof why) == PRISM_OK;
	if (!out.ok)
		copy(why, sizeof why, out.error);
	copy(r->classifier_error, sizeof r->classifier_error, good ? "" : why);
	if (x->trace)
		trace_step(x, "Classifier Output", good,
			   good ? json_pack("{s:s, s:f, s:s, s:o, s:s, s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:f, s:I}",
					    "category", a.category, "confidence", a.confidence, "complexity", a.complexity,
					    "costTier", tier_json(a.tier), "domain", a.domain, "language", a.language,
					    "estimatedOutputLength", a.output_length, "recommendedModel",
					    a.recommended[0] ? a.recommended : NULL, "reasoning", a.reasoning,
					    "classifierModel", out.model, "inputTokens", (json_int_t)out.input_tokens,
					    "outputTokens", (json_int_t)out.output_tokens, "routingCostUsd",
					    (double)out.cost_micro / 1e6, "elapsedMs", (json_int_t)out.elapsed_ms)
				: json_pack("{s:s, s:s, s:I}", "error", why, "classifierModel", out.model, "elapsedMs",
					    (json_int_t)out.elapsed_ms));
	else
		x->step++;
	classifier_outcome_free(&out);
	free(prompt);
	free(context);
	free(ms);
	if (!good) {
		/* Routing goes on from the rules and signals; the log says why the classifier did not decide. */
		from_preroute(x, pre);
		snprintf(r->reason, sizeof r->reason, "classifier unavailable (%s); pre-routed via %s", why,
			 pre->source[0] ? pre->source : "defaults");
		relay_utf8_fix(r->reason);
		add_override(r, "classifier_fallback");
		return false;
	}
	copy(r->category, sizeof r->category, a.category);
	r->tier = a.tier;
	r->confidence = a.confidence;
	copy(r->complexity, sizeof r->complexity, a.complexity);
	copy(r->language, sizeof r->language, a.language);
	copy(r->output_length, sizeof r->output_length, a.output_length);
	copy(r->domain, sizeof r->domain, a.domain[0] ? a.domain : pre->domain[0] ? pre->domain
									    : signals_infer_domain(&r->sig));
	r->conversation_turn = a.conversation_turn ? a.conversation_turn : r->sig.conversation_turns;
	r->frustration = a.frustration;
	copy(r->recommended, sizeof r->recommended, a.recommended);
	copy(r->reason, sizeof r->reason, a.reasoning);
	relay_utf8_fix(r->reason);
	r->prerouted = false;
	return true;
}

static void
tier_floor(struct ctx *x, const struct route_preroute *pre)
{
	struct route_result *r = x->r;
	int before = r->tier;
	if (pre->tier > r->tier) {
		r->tier = pre->tier;
		add_override(r, "rule_tiermin:%s", pre->source);
	}
	trace_step(x, "Tier Enforcement (Rule-Set Floor)", before != r->tier,
		   json_pack("{s:o, s:o}", "before", tier_json(before), "after", tier_json(r->tier)));
}

static bool
opt(const json_t *ov, const char *k)
{
	return json_is_true(json_object_get(ov, k));
}

static void
raise_to(struct route_result *r, int tier, const char *why)
{
	if (r->tier < tier) {
		r->tier = tier;
		add_override(r, "%s", why);
	}
}

static void
up_one(struct route_result *r, const char *why)
{
	if (r->tier < ROUTE_NTIERS - 1) {
		r->tier++;
		add_override(r, "%s", why);
	}
}

static void
overrides(struct ctx *x)
{
	struct route_result *r = x->r;
	const json_t *ov = json_object_get(json_object_get(x->in->tenant_doc, "routing"), "overrides");
	int before = r->tier;
	size_t olen = strlen(r->overrides);
	const struct route_category *cat = rdata_category(x->in->rd, r->category);
	bool has_image = r->sig.has_images;
	if (ov && opt(ov, "visionUpgrade") && has_image && !(cat && cat->requires_vision))
		raise_to(r, r->tier < 2 ? 2 : 3, "vision_upgrade");
	if (ov && opt(ov, "toolCallUpgrade") && r->sig.has_tool_calls) {
		int min = route_tier_index(str_of(ov, "toolCallMinTier"));
		raise_to(r, min >= 0 ? min : 3, "tool_call_upgrade");
	}
	if (ov && opt(ov, "confidenceFallback")) {
		const json_t *t = json_object_get(ov, "confidenceThreshold");
		double thr = json_is_number(t) ? json_number_value(t) : 0.4;
		if (r->confidence < thr)
			raise_to(r, 3, "confidence_fallback");      /* a floor: never a downgrade */
	}
	if (ov && opt(ov, "domainGate") &&
	    (strcmp(r->domain, "legal") == 0 || strcmp(r->domain, "medical") == 0 || strcmp(r->domain, "finance") == 0))
		raise_to(r, 3, "domain_gate");
	static const char *const no_turns[] = { "classification_extraction", "summarization_short", "summarization_long",
						"translation" };
	bool turn_cat = true;
	for (size_t i = 0; i < 4; i++)
		turn_cat = turn_cat && strcmp(r->category, no_turns[i]) != 0;
	int turns = r->conversation_turn ? r->conversation_turn : r->sig.conversation_turns;
	if (ov && opt(ov, "conversationTurnUpgrade") && turns >= 4 && turn_cat)
		up_one(r, "conversation_turn_upgrade");
	if (!r->classifier_called || r->classifier_error[0])
		r->frustration = signals_frustrated(&r->sig);
	if (ov && opt(ov, "frustrationUpgrade") && r->frustration && !r->sig.tool_output_continuation &&
	    r->sig.total_tokens >= 30)
		up_one(r, "frustration_upgrade");
	if (ov && opt(ov, "outputLengthUpgrade") && strcmp(r->output_length, "long") == 0)
		raise_to(r, 2, "output_length_upgrade");
	trace_step(x, "Tenant Override Rules", before != r->tier || strlen(r->overrides) != olen,
		   json_pack("{s:o, s:o, s:s}", "before", tier_json(before), "after", tier_json(r->tier), "overrides",
			     r->overrides));
}

static void
session_fill(struct ctx *x)
{
	struct route_result *r = x->r;
	const json_t *t = json_object_get(json_object_get(x->in->tenant_doc, "routing"), "sessionFillUpgradeThreshold");
	double thr = json_is_number(t) ? json_number_value(t) : ROUTE_SESSION_FILL_DEFAULT;
	double pct = x->in->prev_fill_pct;
	int before = r->tier;
	if (pct >= 0 && pct >= thr && r->tier < ROUTE_NTIERS - 1) {
		r->tier++;
		add_override(r, "session_context_upgrade(%d%%)", (int)lround(pct * 100));
	}
	if (x->trace && pct >= 0)
		trace_step(x, "Session Context Fill", before != r->tier,
			   json_pack("{s:f, s:f, s:o}", "previousFill", pct, "threshold", thr, "after", tier_json(r->tier)));
}

static void
cost_mode(struct ctx *x)
{
	struct route_result *r = x->r;
	int before = r->tier;
	if (r->sig.is_fim) {
		/* autocompletion stays on the fast path's tier: a rule set's cost mode and boost are for tasks */
		trace_step(x, "Cost Mode", false, json_pack("{s:s}", "skipped", "fill-in-the-middle"));
		trace_step(x, "Tier Boost", false, json_pack("{s:s}", "skipped", "fill-in-the-middle"));
		return;
	}
	if (x->rs->cost_mode == ROUTE_COST_ECONOMY && r->tier > 0) {
		r->tier--;
		add_override(r, "cost_economy");
	} else if (x->rs->cost_mode == ROUTE_COST_QUALITY) {
		up_one(r, "cost_quality");
	}
	trace_step(x, "Cost Mode", before != r->tier,
		   json_pack("{s:s, s:o}", "costMode", route_cost_mode_name(x->rs->cost_mode), "after", tier_json(r->tier)));
	before = r->tier;
	if (x->rs->tier_boost) {
		int t = route_tier_clamp(r->tier + x->rs->tier_boost);
		if (t != r->tier) {
			r->tier = t;
			add_override(r, "tier_boost:%+d", x->rs->tier_boost);
		}
	}
	trace_step(x, "Tier Boost", before != r->tier,
		   json_pack("{s:i, s:o}", "tierBoost", x->rs->tier_boost, "after", tier_json(r->tier)));
}

/* A task that deserves the model the user chose (smart strictness): a category whose own tier is at least
 * medium.  The original matched key prefixes, so data_analysis and financial_analysis were trivial while
 * creative_writing_short (a minimal-tier category) was substantial (§17, routing 14). */
static bool
substantial(const struct route_category *cat)
{
	return cat && cat->tier >= 3;
}

static void
selection(struct ctx *x)
{
	const struct route_input *in = x->in;
	struct route_result *r = x->r;
	const struct route_category *cat = rdata_category(in->rd, r->category);
	const struct cand *c;
	/* smart strictness: a substantial task keeps the user's model */
	if (in->strictness == ROUTE_STRICT_SMART && in->user_model && !r->sig.is_fim && substantial(cat) &&
	    (c = find_usable(x, in->user_model))) {
		select_model(x, c, "strictness_smart_keep_user");
		add_override(r, "strictness_smart");
		if (c->m.tier >= 0)
			r->tier = c->m.tier;
	} else if (r->recommended[0] && (c = find_usable(x, r->recommended)) && (c->m.tier < 0 || c->m.tier >= r->tier)) {
		select_model(x, c, "classifier_recommendation");
	} else if (cat && cat->default_model[0] && (c = find_usable(x, cat->default_model))) {
		select_model(x, c, "category_default");
	} else {
		const struct weights *w = weights_for(r->category);
		char method[48];
		snprintf(method, sizeof method, "benchmark_%s", route_cost_mode_name(x->rs->cost_mode));
		c = best_of_tier(x, r->tier, w, x->rs->cost_mode);
		/* the nearest tier with a model: one above before one below (quality first) */
		for (int d = 1; !c && d < ROUTE_NTIERS; d++) {
			int t;
			if ((t = r->tier + d) < ROUTE_NTIERS && (c = best_of_tier(x, t, w, x->rs->cost_mode)))
				add_override(r, "tier_step:%s", route_tier_name(t));
			else if ((t = r->tier - d) >= 0 && (c = best_of_tier(x, t, w, x->rs->cost_mode)))
				add_override(r, "tier_step:%s", route_tier_name(t));
		}
		if (c) {
			select_model(x, c, method);
		} else {
			const char *dm = str_of(json_object_get(in->tenant_doc, "routing"), "defaultModel");
			/* the last resort still obeys the tenant's model policy */
			if (*dm && plan_policy_allows(in->tenant_doc, dm, NULL)) {
				copy(r->model, sizeof r->model, dm);
				copy(r->selection, sizeof r->selection, "tenant_default");
				const struct cand *d = find_any(x, dm);
				r->model_tier = d ? d->m.tier : ROUTE_TIER_NONE;
				r->ok = true;
			}
		}
	}
	/* force-routed away from a named model: never to a dearer tier than the user's own choice */
	const struct cand *u;
	if (r->ok && in->user_model && strcmp(r->model, in->user_model) != 0 && (u = find_usable(x, in->user_model)) &&
	    u->m.tier >= 0 && r->model_tier > u->m.tier) {
		char method[sizeof r->selection];
		copy(method, sizeof method, r->selection);
		select_model(x, u, method);
		add_override(r, "tier_cap:%s", in->user_model);
		r->tier = u->m.tier;
	}
	if (x->trace) {
		json_t *d = json_pack("{s:s?, s:s?, s:s, s:o, s:o}", "model", r->ok ? r->model : NULL, "providerId",
				      r->provider_id[0] ? r->provider_id : NULL, "selectionMethod", r->selection,
				      "tier", tier_json(r->tier), "modelTier", tier_json(r->model_tier));
		json_t *cands = json_array();
		for (size_t i = 0; i < x->nmodels && json_array_size(cands) < 50; i++) {
			const struct cand *m = &x->models[i];
			if (m->m.tier != r->tier)
				continue;
			json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:b}", "id", m->m.id, "provider", m->m.provider_slug,
					      "allowed", m->allowed, "healthy", m->healthy, "fits", m->fits);
			if (usable(m))
				json_object_set_new(o, "score", json_real(score(m, weights_for(r->category), x->rs->cost_mode)));
			json_array_append_new(cands, o);
		}
		json_object_set_new(d, "candidates", cands);
		trace_step(x, "Model Selection", r->ok, d);
	} else {
		x->step++;
	}
}

void
route_decide(const struct route_input *in, struct route_result *r, json_t *trace)
{
	int64_t t0 = clock_monotonic_us();
	memset(r, 0, sizeof *r);
	r->tier = ROUTE_TIER_NONE;
	r->model_tier = ROUTE_TIER_NONE;
	copy(r->language, sizeof r->language, "en");
	copy(r->output_length, sizeof r->output_length, "medium");
	r->category_prompt = "";
	struct ctx x = { .in = in, .r = r, .trace = trace };
	signals_extract(in->request, &r->sig);
	r->conversation_turn = r->sig.conversation_turns;
	if (trace) {
		json_t *doms = json_array(), *langs = json_array();
		for (int i = 0; i < ROUTE_NDOMAINS; i++)
			if (r->sig.domains & (1u << i))
				json_array_append_new(doms, json_string(route_domain_names[i]));
		for (int i = 0; i < ROUTE_NLANGS; i++)
			if (r->sig.langs & (1u << i))
				json_array_append_new(langs, json_string(route_lang_names[i]));
		trace_step(&x, "Signal Extraction", true,
			   json_pack("{s:I, s:b, s:b, s:i, s:o, s:o, s:b, s:b, s:b, s:s}", "totalTokens",
				     (json_int_t)r->sig.total_tokens, "hasImages", r->sig.has_images, "hasToolCalls",
				     r->sig.has_tool_calls, "conversationTurns", r->sig.conversation_turns, "detectedDomains",
				     doms, "detectedLanguages", langs, "isFimRequest", r->sig.is_fim, "isToolAgentRequest",
				     r->sig.is_tool_agent, "isToolOutputContinuation", r->sig.tool_output_continuation,
				     "summary", r->sig.summary));
	} else {
		x.step++;
	}
	x.rs = rdata_ruleset_for(in->rd, str_of(in->tenant_doc, "_id"));
	load_models(&x);
	int64_t classifier_us = 0;
	if (!keep_user_fim_only(&x)) {
		struct route_preroute pre;
		preroute(&x, &pre);
		copy(r->source, sizeof r->source, pre.source);
		int64_t c0 = clock_monotonic_us();
		bool by_classifier = classify(&x, &pre);
		classifier_us = r->classifier_called ? clock_monotonic_us() - c0 : 0;
		if (r->stopped) {
			free(x.models);
			return;
		}
		if (by_classifier)
			tier_floor(&x, &pre);
		else if (!r->classifier_called)
			from_preroute(&x, &pre);
		overrides(&x);
		session_fill(&x);
		cost_mode(&x);
		selection(&x);
	}
	task_type(r);
	const struct route_category *cat = rdata_category(in->rd, r->category);
	r->category_prompt = cat ? cat->system_prompt : "";
	free(x.models);
	r->analysis_us = clock_monotonic_us() - t0 - classifier_us;
}

/* --- output ---------------------------------------------------------------------------------------------- */

static json_t *
overrides_json(const struct route_result *r)
{
	json_t *a = json_array();
	char buf[ROUTE_MAX_OVERRIDES];
	copy(buf, sizeof buf, r->overrides);
	char *save = NULL;
	for (char *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

json_t *
route_result_json(const struct route_result *r)
{
	json_t *o = json_pack("{s:s, s:s?, s:o, s:f, s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:f}", "selected_model", r->model,
			      "category", r->category[0] ? r->category : NULL, "cost_tier", tier_json(r->tier),
			      "confidence", r->confidence, "complexity", r->complexity, "domain", r->domain, "reason",
			      r->reason, "selection_method", r->selection, "overrides", overrides_json(r),
			      "override_applied", r->overrides, "pre_routed", r->prerouted, "routing_time_ms",
			      (double)r->analysis_us / 1000.0);
	if (r->classifier_called) {
		json_object_set_new(o, "classifier", json_pack("{s:s, s:I, s:I, s:f, s:I, s:s?}", "model",
							       r->classifier_model, "input_tokens",
							       (json_int_t)r->classifier_in, "output_tokens",
							       (json_int_t)r->classifier_out, "cost_usd",
							       (double)r->classifier_cost_micro / 1e6, "time_ms",
							       (json_int_t)r->classifier_ms, "error",
							       r->classifier_error[0] ? r->classifier_error : NULL));
	}
	return o;
}

void
route_result_log(const struct route_result *r, json_t *log)
{
	const struct route_signals *s = &r->sig;
	if (r->category[0])
		json_object_set_new(log, "category", json_string(r->category));
	json_object_set_new(log, "taskType", json_string(r->task_type));
	json_object_set_new(log, "complexity", json_string(r->complexity));
	if (route_tier_name(r->tier))
		json_object_set_new(log, "costTier", json_string(route_tier_name(r->tier)));
	json_object_set_new(log, "confidence", json_real(r->confidence));
	json_object_set_new(log, "overrideApplied", json_string(r->overrides));
	json_object_set_new(log, "routingOverrides", overrides_json(r));
	json_object_set_new(log, "domain", json_string(r->domain));
	json_object_set_new(log, "language", json_string(r->language));
	json_object_set_new(log, "selectionMethod", json_string(r->selection));
	json_object_set_new(log, "routingReason", json_string(r->reason));
	json_object_set_new(log, "routingMs", json_real((double)r->analysis_us / 1000.0));
	json_object_set_new(log, "routingCostUsd", json_real((double)r->classifier_cost_micro / 1e6));
	if (r->classifier_called) {
		json_object_set_new(log, "classifierModel", json_string(r->classifier_model));
		json_object_set_new(log, "classifierInputTokens", json_integer(r->classifier_in));
		json_object_set_new(log, "classifierOutputTokens", json_integer(r->classifier_out));
		json_object_set_new(log, "classifierMs", json_integer(r->classifier_ms));
		if (r->classifier_error[0])
			json_object_set_new(log, "classifierError", json_string(r->classifier_error));
	}
	json_t *doms = json_array(), *langs = json_array();
	for (int i = 0; i < ROUTE_NDOMAINS; i++)
		if (s->domains & (1u << i))
			json_array_append_new(doms, json_string(route_domain_names[i]));
	for (int i = 0; i < ROUTE_NLANGS; i++)
		if (s->langs & (1u << i))
			json_array_append_new(langs, json_string(route_lang_names[i]));
	json_t *sig = json_pack("{s:I, s:b, s:b, s:i, s:o, s:o, s:b, s:s}", "totalTokens", (json_int_t)s->total_tokens,
				"hasImages", s->has_images, "hasToolCalls", s->has_tool_calls, "conversationTurns",
				s->conversation_turns, "detectedDomains", doms, "detectedLanguages", langs, "preRouted",
				r->prerouted, "signalSource", r->source);
	if (s->is_fim)
		json_object_set_new(sig, "isFimRequest", json_true());
	if (s->is_tool_agent)
		json_object_set_new(sig, "isToolAgentRequest", json_true());
	if (s->tool_output_continuation)
		json_object_set_new(sig, "isToolOutputContinuation", json_true());
	json_object_set_new(log, "routingSignals", sig);
}

void
route_inject_system(json_t *request, const char *instruction)
{
	if (!instruction || !*instruction)
		return;
	json_t *msgs = json_object_get(request, "messages");
	if (!json_is_array(msgs))
		return;
	json_t *last = NULL;
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m)
		if (strcmp(str_of(m, "role"), "system") == 0 || strcmp(str_of(m, "role"), "developer") == 0)
			last = m;
	if (!last) {
		json_array_insert_new(msgs, 0, json_pack("{s:s, s:s}", "role", "system", "content", instruction));
		return;
	}
	json_t *content = json_object_get(last, "content");
	if (json_is_string(content)) {
		const char *s = json_string_value(content);
		if (strstr(s, instruction))
			return;
		size_t n = strlen(s) + strlen(instruction) + 3;
		char *joined = xmalloc(n);
		snprintf(joined, n, "%s%s%s", s, *s ? "\n\n" : "", instruction);
		json_object_set_new(last, "content", json_string(joined));
		free(joined);
	} else if (json_is_array(content)) {
		/* blocks stay blocks: the instruction is one more text block (the original turned the array into
		 * "[object Object]") */
		size_t k;
		json_t *b;
		json_array_foreach(content, k, b) {
			const char *t = json_string_value(json_object_get(b, "text"));
			if (t && strstr(t, instruction))
				return;
		}
		json_array_append_new(content, json_pack("{s:s, s:s}", "type", "text", "text", instruction));
	} else {
		json_object_set_new(last, "content", json_string(instruction));
	}
}

const char *
route_force_mode(const json_t *tenant_doc)
{
	const json_t *routing = json_object_get(tenant_doc, "routing");
	if (!json_is_true(json_object_get(routing, "enabled")))
		return "off";
	const char *m = json_string_value(json_object_get(routing, "forceAutoRouteMode"));
	if (m && (strcmp(m, "all") == 0 || strcmp(m, "smart") == 0 || strcmp(m, "fim_only") == 0))
		return m;
	/* the legacy boolean of the original: "all" when no mode says otherwise */
	return json_is_true(json_object_get(routing, "forceAutoRoute")) ? "all" : "off";
}

enum route_strictness
route_strictness_of(const char *mode)
{
	if (strcmp(mode, "fim_only") == 0)
		return ROUTE_STRICT_FIM_ONLY;
	if (strcmp(mode, "smart") == 0)
		return ROUTE_STRICT_SMART;
	return ROUTE_STRICT_NONE;
}
