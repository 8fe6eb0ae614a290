/* check_data.c -- the built-in tables: tiers, categories, presets, the model registry, the static price tables
 * and the models.dev index (the bundled snapshot, fixtures, fetch failures). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "data/catalog.h"
#include "data/modelsdev.h"
#include "data/registry.h"

/* --- tiers and categories ---------------------------------------------------------------------------- */

START_TEST(tiers)
{
	static const char *const want[] = { "micro", "minimal", "low", "medium", "advanced", "high", "ultra",
					     "critical" };
	for (int i = 0; i < CATALOG_NTIERS; i++) {
		ck_assert_str_eq(catalog_tiers[i], want[i]);
		ck_assert_int_eq(catalog_tier_index(want[i]), i);
	}
	ck_assert_int_eq(catalog_tier_index("Micro"), -1);
	ck_assert_int_eq(catalog_tier_index(""), -1);
	ck_assert_int_eq(catalog_tier_index(NULL), -1);
}
END_TEST

/* Every seeded category: order, key, tier, vision, number of examples, has a description, has a prompt. */
static const struct {
	int order;
	const char *key, *tier;
	bool vision;
	size_t nexamples;
	bool described, prompted;
} category_cases[] = {
	{ 1, "coding_autocomplete", "micro", false, 3, true, false },
	{ 2, "chat_title_generation", "micro", false, 3, true, false },
	{ 10, "smalltalk_simple", "minimal", false, 3, false, false },
	{ 11, "translation", "minimal", false, 2, false, false },
	{ 12, "summarization_short", "minimal", false, 2, false, false },
	{ 13, "classification_extraction", "minimal", false, 2, false, false },
	{ 14, "creative_writing_short", "minimal", false, 2, false, false },
	{ 15, "vision_simple", "minimal", true, 2, false, false },
	{ 16, "email_professional", "minimal", false, 2, false, false },
	{ 17, "brainstorming", "minimal", false, 3, true, false },
	{ 18, "proofreading", "minimal", false, 3, true, false },
	{ 19, "format_convert", "minimal", false, 3, true, false },
	{ 20, "summarization_long", "low", false, 2, false, false },
	{ 21, "analysis_simple", "low", false, 2, false, false },
	{ 22, "math_simple", "low", false, 2, false, false },
	{ 23, "fact_check_verification", "low", false, 2, false, false },
	{ 24, "conversation_roleplay", "low", false, 2, false, false },
	{ 25, "coding_simple", "low", false, 2, false, true },
	{ 26, "coding_medium", "medium", false, 3, false, true },
	{ 27, "sql_generation", "low", false, 2, false, false },
	{ 28, "data_transformation", "low", false, 2, false, false },
	{ 29, "instruction_following", "low", false, 3, true, false },
	{ 30, "function_calling", "low", false, 3, true, false },
	{ 31, "devops_infrastructure", "medium", false, 3, true, false },
	{ 32, "qa_testing", "medium", false, 3, true, false },
	{ 33, "code_explanation", "low", false, 3, true, false },
	{ 34, "error_debugging", "medium", false, 3, true, true },
	{ 40, "creative_writing_long", "medium", false, 3, false, false },
	{ 41, "tool_use_agentic", "medium", false, 2, false, false },
	{ 42, "vision_complex", "medium", true, 2, false, false },
	{ 43, "document_qa", "medium", false, 2, false, false },
	{ 44, "planning_scheduling", "medium", false, 2, false, false },
	{ 45, "prompt_engineering", "medium", false, 2, false, false },
	{ 46, "multilingual_complex", "medium", false, 2, false, false },
	{ 47, "data_analysis", "medium", false, 3, true, false },
	{ 48, "stem_science", "medium", false, 3, true, false },
	{ 49, "api_integration", "medium", false, 3, true, false },
	{ 60, "analysis_complex", "advanced", false, 2, false, false },
	{ 61, "coding_complex", "advanced", false, 3, false, true },
	{ 62, "math_complex", "advanced", false, 2, false, false },
	{ 63, "reasoning_deep", "advanced", false, 2, false, false },
	{ 64, "long_context_processing", "advanced", false, 3, true, false },
	{ 65, "system_design", "advanced", false, 2, false, true },
	{ 66, "research_scientific", "advanced", false, 2, false, false },
	{ 67, "legal_analysis", "advanced", false, 3, true, true },
	{ 68, "financial_analysis", "advanced", false, 3, true, false },
	{ 70, "swe_agentic", "high", false, 3, true, true },
	{ 71, "code_security_review", "high", false, 3, true, false },
	{ 72, "vision_critical", "high", true, 2, false, false },
	{ 80, "reasoning_formal", "ultra", false, 3, true, false },
	{ 90, "sensitive_critical", "critical", false, 2, false, true },
	{ 91, "medical_analysis", "critical", false, 3, true, true },
};

START_TEST(category_table)
{
	const struct catalog_category *c = catalog_category_find(category_cases[_i].key);
	ck_assert_msg(c != NULL, "%s missing", category_cases[_i].key);
	ck_assert_ptr_eq(c, &catalog_categories[_i]);   /* same position in the seeding order */
	ck_assert_int_eq(c->order, category_cases[_i].order);
	ck_assert_str_eq(c->tier, category_cases[_i].tier);
	ck_assert_int_eq(c->requires_vision, category_cases[_i].vision);
	size_t n = 0;
	while (c->examples[n])
		n++;
	ck_assert_uint_eq(n, category_cases[_i].nexamples);
	ck_assert_int_eq(c->description != NULL, category_cases[_i].described);
	ck_assert_int_eq(*c->system_prompt != '\0', category_cases[_i].prompted);
}
END_TEST

START_TEST(category_invariants)
{
	ck_assert_uint_eq(catalog_ncategories, sizeof category_cases / sizeof category_cases[0]);
	ck_assert_uint_eq(catalog_ncategories, 52);
	size_t prompts = 0;
	for (size_t i = 0; i < catalog_ncategories; i++) {
		const struct catalog_category *c = &catalog_categories[i];
		ck_assert_msg(catalog_tier_index(c->tier) >= 0, "%s: tier %s", c->key, c->tier);
		ck_assert_msg(*c->name && *c->key && c->examples[0], "%s incomplete", c->key);
		if (i > 0)
			ck_assert_msg(c->order > catalog_categories[i - 1].order, "%s: order", c->key);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(catalog_categories[j].key, c->key);
		prompts += *c->system_prompt != '\0';
	}
	ck_assert_uint_eq(prompts, 9);
	ck_assert_ptr_null(catalog_category_find("question_answering_complex"));   /* referenced, not seeded */
	ck_assert_ptr_null(catalog_category_find(NULL));
}
END_TEST

START_TEST(category_strings)
{
	const struct catalog_category *c = catalog_category_find("coding_autocomplete");
	ck_assert_str_eq(c->name, "Code Autocomplete / FIM");
	ck_assert_str_eq(c->description, "Fill-in-the-middle (FIM) code completions, inline suggestions, "
			 "autocomplete. Purely mechanical \u2014 no reasoning required.");
	ck_assert_str_eq(c->system_prompt, "");
	c = catalog_category_find("chat_title_generation");
	ck_assert_str_eq(c->description, "Generate a short title or label for a conversation (2\u20135 words). "
			 "Trivial regardless of conversation content.");
	c = catalog_category_find("smalltalk_simple");
	ck_assert_str_eq(c->examples[1], "Wie geht's?");
	ck_assert_ptr_null(c->description);
	c = catalog_category_find("translation");
	ck_assert_str_eq(c->examples[1], "Was hei\u00dft bonjour?");
	c = catalog_category_find("summarization_long");
	ck_assert_str_eq(c->examples[1], "Meeting minutes (text >= 2000)");
	c = catalog_category_find("function_calling");
	ck_assert_str_eq(c->name, "Function Calling & Structured Output");
	c = catalog_category_find("coding_simple");
	ck_assert_str_eq(c->system_prompt, "You are an expert software engineer. Write clean, idiomatic code. Be "
			 "concise \u2014 show the solution, not a lecture.");
	c = catalog_category_find("medical_analysis");
	ck_assert_str_eq(c->system_prompt,
			 "You are a medical information assistant. Cite sources and evidence levels where possible. "
			 "Always include the disclaimer that your output is informational, not a substitute for "
			 "professional medical advice, and recommend consulting a qualified healthcare provider for "
			 "clinical decisions.");
	c = catalog_category_find("sensitive_critical");
	ck_assert_str_eq(c->system_prompt,
			 "This request has been classified as sensitive or critical. Prioritize accuracy over speed. "
			 "State your confidence level, flag assumptions, and recommend human review for high-stakes "
			 "decisions.");
	ck_assert_str_eq(catalog_category_find("vision_critical")->tier, "high");
}
END_TEST

START_TEST(category_document)
{
	json_t *d = catalog_category_json(catalog_category_find("vision_simple"));
	ck_assert_str_eq(json_string_value(json_object_get(d, "key")), "vision_simple");
	ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "Simple Vision");
	ck_assert_str_eq(json_string_value(json_object_get(d, "description")), "");
	ck_assert_str_eq(json_string_value(json_object_get(d, "costTier")), "minimal");
	ck_assert_uint_eq(json_array_size(json_object_get(d, "examples")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(d, "examples"), 0)),
			 "What does this image show?");
	ck_assert(json_is_true(json_object_get(d, "requiresVision")));
	ck_assert_str_eq(json_string_value(json_object_get(d, "targetSystemPrompt")), "");
	ck_assert(json_is_true(json_object_get(d, "isBuiltIn")));
	ck_assert_int_eq(json_integer_value(json_object_get(d, "order")), 15);
	ck_assert_uint_eq(json_object_size(d), 9);
	json_decref(d);

	d = catalog_category_json(catalog_category_find("swe_agentic"));
	ck_assert(json_is_false(json_object_get(d, "requiresVision")));
	ck_assert_str_eq(json_string_value(json_object_get(d, "description")),
			 "Autonomous multi-step software engineering (entire features, refactors, bug triage)");
	static const char agent[] = "You are an autonomous software engineering agent.";
	ck_assert(strncmp(json_string_value(json_object_get(d, "targetSystemPrompt")), agent, strlen(agent)) == 0);
	json_decref(d);
}
END_TEST

/* --- presets ----------------------------------------------------------------------------------------- */

static const struct {
	const char *id, *name, *color, *icon;
	size_t ncategories;
} preset_cases[] = {
	{ "software_development", "Software Development", "blue", "code", 12 },
	{ "customer_support", "Customer Support", "green", "headset", 9 },
	{ "research_analysis", "Research & Analysis", "violet", "flask", 12 },
	{ "creative_content", "Creative Content", "orange", "pencil", 9 },
	{ "data_operations", "Data & Operations", "teal", "chart", 9 },
	{ "agentic_workflows", "Agentic Workflows", "red", "robot", 8 },
	{ "general_all", "General (All Categories)", "gray", "building", 0 },
};

START_TEST(presets)
{
	ck_assert_uint_eq(catalog_npresets, 7);
	json_t *all = catalog_presets_json();
	ck_assert_uint_eq(json_array_size(all), 7);
	for (size_t i = 0; i < catalog_npresets; i++) {
		const struct catalog_preset *p = &catalog_presets[i];
		ck_assert_str_eq(p->id, preset_cases[i].id);
		ck_assert_str_eq(p->name, preset_cases[i].name);
		ck_assert_str_eq(p->color, preset_cases[i].color);
		ck_assert_str_eq(p->icon, preset_cases[i].icon);
		size_t n = 0;
		for (; p->categories[n]; n++)
			ck_assert_msg(catalog_category_find(p->categories[n]) != NULL, "%s: %s not seeded", p->id,
				      p->categories[n]);
		ck_assert_uint_eq(n, preset_cases[i].ncategories);

		json_t *o = json_array_get(all, i);
		ck_assert_uint_eq(json_object_size(o), 6);
		ck_assert_str_eq(json_string_value(json_object_get(o, "id")), p->id);
		ck_assert_str_eq(json_string_value(json_object_get(o, "description")), p->description);
		ck_assert_str_eq(json_string_value(json_object_get(o, "icon")), p->icon);
		ck_assert_uint_eq(json_array_size(json_object_get(o, "categories")), n);
	}
	ck_assert_str_eq(catalog_presets[0].description,
			 "Optimize routing for coding, debugging, code review, SQL, DevOps, and architecture tasks");
	ck_assert_str_eq(catalog_presets[6].description,
			 "Balanced coverage for all business use cases \u2014 enables all 45 categories");
	ck_assert_str_eq(catalog_presets[5].categories[0], "tool_use_agentic");
	json_decref(all);
}
END_TEST

/* --- normalisation and the registry ------------------------------------------------------------------ */

static const struct {
	const char *in, *want;
} norm_cases[] = {
	{ "eu.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4" },
	{ "us-gov.meta.llama3-2-1b-instruct-v1:0", "llama3-2-1b-instruct" },
	{ "global.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5" },
	{ "us.amazon.nova-pro-v1:0", "nova-pro" },
	{ "mistral.mistral-large-2407-v1:0", "mistral-large" },
	{ "qwen.qwen3-coder-30b-a3b-v1:0", "qwen3-coder-30b-a3b" },
	{ "GPT-4o-Mini", "gpt-4o-mini" },
	{ "openai/gpt-4.1", "openai-gpt-4-1" },           /* a slash prefix is not a vendor prefix */
	{ "a--b__c..d", "a-b-c-d" },
	{ "  x  ", "x" },
	{ "x-v1-2x", "x-2x" },                           /* -v1 ends at '-', the -2 is not followed by one */
	{ "x-v12-34", "x" },
	{ "model-1234-5678", "model-5678" },             /* only the first 4-digit stamp */
	{ "model-123456789", "model-123456789" },        /* 9 digits are no stamp */
	{ "gpt-4.1-2025-04-14", "gpt-4-1-04-14" },
	{ "foo-latest-latest", "foo-latest" },
	{ "claude-3-5-sonnet-latest", "claude-3-5-sonnet" },
	{ ":0", "" },
	{ "", "" },
};

START_TEST(normalise_table)
{
	char out[REGISTRY_MAX_NORM];
	registry_normalise(norm_cases[_i].in, out, sizeof out);
	ck_assert_msg(strcmp(out, norm_cases[_i].want) == 0, "normalise(\"%s\") = \"%s\", want \"%s\"",
		      norm_cases[_i].in, out, norm_cases[_i].want);
}
END_TEST

START_TEST(normalise_bounds)
{
	char small[8];
	registry_normalise("eu.anthropic.claude-sonnet-4-20250514-v1:0", small, sizeof small);
	ck_assert_str_eq(small, "claude-");              /* normalised first, then truncated */
	registry_normalise(NULL, small, sizeof small);
	ck_assert_str_eq(small, "");
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char out[REGISTRY_MAX_NORM];
	registry_normalise(big, out, sizeof out);
	ck_assert_uint_eq(strlen(out), REGISTRY_MAX_NORM - 1);
}
END_TEST

static const struct {
	const char *in, *want;                           /* want NULL: no match */
} find_cases[] = {
	{ "claude-sonnet-4", "claude-sonnet-4" },                            /* exact */
	{ "anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku" },      /* normalised pattern */
	{ "eu.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4" },
	{ "gpt-5.2", "gpt-5" },
	{ "gpt-5.3-codex", "gpt-5-codex" },
	{ "codex-mini-latest", "gpt-5-mini" },          /* gpt-5-mini lists codex-mini before codex-mini itself */
	{ "deepseek-chat", "deepseek-v3" },
	{ "o1", "o1" },                                 /* "o1" is no pattern: contained in "o1-2024-12-17" */
	{ "o3", "o3" },
	{ "o1-preview", "o1" },
	{ "gpt-4o-mini-2024-07-18", "gpt-4o-mini" },    /* longest contained pattern */
	{ "my-gpt-4o-mini-finetune", "gpt-4o-mini" },
	{ "meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b" },
	{ "gemini-2.5-flash-lite", "gemini-2.5-flash" },
	{ "kimi-k2.5-thinking", "kimi-k2-thinking" },
	{ "qwen.qwen3-coder-30b-a3b-v1:0", "qwen3-coder" },
	{ "llama", "llama-4-maverick" },                /* first pattern containing it */
	{ "nova", "nova-pro" },
	{ "gpt", "gpt-5" },
	{ "x", NULL },                                  /* too short for the last pass */
	{ "zzz-unknown", NULL },
	{ "", NULL },
};

START_TEST(find_table)
{
	const struct registry_model *m = registry_find(find_cases[_i].in);
	if (!find_cases[_i].want)
		ck_assert_msg(m == NULL, "find(\"%s\") = %s", find_cases[_i].in, m ? m->id : "");
	else
		ck_assert_msg(m && strcmp(m->id, find_cases[_i].want) == 0, "find(\"%s\") = %s, want %s",
			      find_cases[_i].in, m ? m->id : "NULL", find_cases[_i].want);
}
END_TEST

START_TEST(registry_invariants)
{
	ck_assert_uint_eq(registry_nmodels, 88);
	size_t bench = 0;
	for (size_t i = 0; i < registry_nmodels; i++) {
		const struct registry_model *m = &registry_models[i];
		ck_assert_msg(catalog_tier_index(m->tier) >= 0, "%s: tier %s", m->id, m->tier);
		ck_assert_msg(m->patterns[0] && m->categories[0] && *m->family && *m->vendor, "%s incomplete", m->id);
		ck_assert_msg(m->input_per_1m >= 0 && m->output_per_1m >= 0 && m->context_window > 0, "%s", m->id);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(registry_models[j].id, m->id);
		/* every entry is found by its own id, except two that an earlier entry shadows: codex-mini is
		 * also a pattern of gpt-5-mini, and deepseek-v2.5 normalises to "deepseek" (the "-v2-5" looks
		 * like a version tag), as deepseek-v3 does */
		const struct registry_model *f = registry_find(m->id);
		if (strcmp(m->id, "codex-mini") == 0)
			ck_assert_str_eq(f->id, "gpt-5-mini");
		else if (strcmp(m->id, "deepseek-v2.5") == 0)
			ck_assert_str_eq(f->id, "deepseek-v3");
		else
			ck_assert_msg(f == m, "find(%s) = %s", m->id, f ? f->id : "NULL");
		bench += m->has_bench;
	}
	ck_assert_uint_eq(bench, 51);
	const struct registry_model *m = registry_find("claude-opus-4-6");
	ck_assert_str_eq(m->family, "Claude Opus 4.6");
	ck_assert_double_eq(m->input_per_1m, 5);
	ck_assert_double_eq(m->output_per_1m, 25);
	ck_assert_int_eq(m->context_window, 1000000);
	ck_assert_int_eq(m->max_output_tokens, 32000);
	ck_assert_int_eq(m->priority, 90);
	ck_assert_int_eq(m->bench_intelligence, 93);
	ck_assert_int_eq(m->bench_speed, 25);
	m = registry_find("nova-2-omni");
	ck_assert_double_eq_tol(m->output_per_1m, 26, 1e-9);
	ck_assert_int_eq(m->max_output_tokens, 10000);
	ck_assert_str_eq(registry_find("minimax-m2.5")->vendor, "Minimax AI");
	ck_assert_double_eq_tol(registry_find("gemma-3-4b")->input_per_1m, 0.024, 1e-12);
}
END_TEST

START_TEST(registry_suggestion)
{
	json_t *s = registry_suggestion_json(registry_find("claude-3-haiku-20240307"));
	char *text = json_dumps(s, JSON_COMPACT);
	ck_assert_str_eq(text, "{\"family\":\"Claude 3 Haiku\",\"vendor\":\"Anthropic\",\"tier\":\"minimal\","
			 "\"inputPer1M\":0.25,\"outputPer1M\":1.25,\"contextWindow\":200000,\"maxOutputTokens\":4096,"
			 "\"categories\":[\"smalltalk\",\"summarization_short\",\"classification_extraction\","
			 "\"email\",\"translation\"],\"priority\":30,\"openrouterId\":\"anthropic/claude-3-haiku\","
			 "\"benchmarks\":{\"intelligence\":64,\"coding\":60,\"math\":55,\"speed\":95},"
			 "\"source\":\"local_registry\"}");
	free(text);
	json_decref(s);

	/* no benchmarks, no max output, no OpenRouter id */
	s = registry_suggestion_json(registry_find("gpt-4.1-mini"));
	ck_assert(json_is_real(json_object_get(s, "inputPer1M")));
	ck_assert_double_eq_tol(json_number_value(json_object_get(s, "inputPer1M")), 0.4, 1e-12);
	ck_assert_double_eq_tol(json_number_value(json_object_get(s, "outputPer1M")), 1.6, 1e-12);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "contextWindow")), 1000000);
	ck_assert(json_is_null(json_object_get(s, "maxOutputTokens")));
	ck_assert(json_is_null(json_object_get(s, "benchmarks")));
	ck_assert_ptr_null(json_object_get(s, "openrouterId"));
	json_decref(s);
}
END_TEST

/* --- static prices ----------------------------------------------------------------------------------- */

static const struct {
	const char *id;
	bool found;
	double in, out;
} default_price_cases[] = {
	{ "gpt-5", true, 10, 40 },                      /* exact */
	{ "gpt-5.2", true, 10, 40 },                    /* the gpt-5 key is the longest contained */
	{ "gpt-5.3-codex", true, 10, 40 },              /* "gpt-5-codex" is not a substring */
	{ "GPT-4o-mini-2024-07-18", true, 0.15, 0.6 },  /* gpt-4o-mini beats gpt-4o */
	{ "gpt-4-0613", true, 30, 60 },
	{ "claude-3-5-haiku-20241022", true, 0.8, 4 },
	{ "anthropic.claude-3-haiku-20240307-v1:0", true, 0.25, 1.25 },
	{ "o3-mini-high", true, 1.1, 4.4 },
	{ "o1", true, 15, 60 },
	{ "gpt-4.1-nano", true, 0.1, 0.4 },
	{ "unknown-model", false, 0, 0 },
	{ "", false, 0, 0 },
};

START_TEST(default_price_table)
{
	double in = -1, out = -1;
	bool found = registry_default_price(default_price_cases[_i].id, &in, &out);
	ck_assert_msg(found == default_price_cases[_i].found, "%s", default_price_cases[_i].id);
	if (found) {
		ck_assert_double_eq_tol(in, default_price_cases[_i].in, 1e-12);
		ck_assert_double_eq_tol(out, default_price_cases[_i].out, 1e-12);
	} else {
		ck_assert_double_eq(in, -1);
		ck_assert_double_eq(out, -1);
	}
}
END_TEST

static const struct {
	const char *id, *type, *name;
	bool found;
	double in, out;
} provider_price_cases[] = {
	{ "anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock", "AWS", true, 1, 5 },
	{ "gpt-5.4", "azure", "", true, 1.25, 10 },     /* keys with '.' never match: falls back to gpt-5 */
	{ "gpt-5.4-mini", "azure-openai", "prod", true, 1.25, 10 },
	{ "gpt-4.1", "openai", "OpenAI", true, 2, 8 },  /* via the gpt-4-1 key */
	{ "gpt-4-1-mini", "openai", "x", true, 0.4, 1.6 },
	{ "gemini-2.5-flash", "openai", "Vertex AI", true, 0.3, 2.5 },      /* the name picks the table */
	{ "models/gemini-2.5-pro", "google", "", true, 1.25, 10 },
	{ "claude-opus-4-1", "anthropic", "", true, 15, 75 },
	{ "gpt-4o", "openai", "My Azure", true, 2.5, 10 },                  /* azure is tried before openai */
	{ "qwen.qwen3-coder-30b-a3b-v1:0", "bedrock", "", true, 0.2, 0.79 },
	{ "minimax.minimax-m2.5", "bedrock", "", false, 0, 0 },
	{ "anthropic/claude-3-haiku", "openrouter", "", false, 0, 0 },     /* the OpenAI table */
	{ "llama-3.3-70b", "ollama", "local", false, 0, 0 },               /* no table */
	{ "unknown", "openai", NULL, false, 0, 0 },
};

START_TEST(provider_price_table)
{
	double in = -1, out = -1;
	bool found = registry_provider_type_price(provider_price_cases[_i].type, provider_price_cases[_i].name,
						  provider_price_cases[_i].id, &in, &out);
	ck_assert_msg(found == provider_price_cases[_i].found, "%s on %s", provider_price_cases[_i].id,
		      provider_price_cases[_i].type);
	if (found) {
		ck_assert_double_eq_tol(in, provider_price_cases[_i].in, 1e-12);
		ck_assert_double_eq_tol(out, provider_price_cases[_i].out, 1e-12);
	}
}
END_TEST

START_TEST(price_tables_json)
{
	json_t *p = registry_prices_json();
	json_t *dflt = json_object_get(p, "default"), *types = json_object_get(p, "providerTypes");
	ck_assert_uint_eq(json_array_size(dflt), 41);
	json_t *first = json_array_get(dflt, 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "model")), "claude-opus-4-6");
	ck_assert_int_eq(json_integer_value(json_object_get(first, "input")), 5);
	ck_assert_uint_eq(json_array_size(types), 5);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(json_array_get(types, 0), "keywords"), 0)),
			 "bedrock");
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(types, 0), "prices")), 57);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(types, 1), "prices")), 43);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(types, 2), "prices")), 13);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(types, 3), "prices")), 8);
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(types, 4), "prices")), 20);
	json_decref(p);
}
END_TEST

/* --- models.dev -------------------------------------------------------------------------------------- */

static char snapshot_path[4096];

static void
md_setup(void)
{
	const char *top = getenv("top_srcdir");
	snprintf(snapshot_path, sizeof snapshot_path, "%s/data/modelsdev.json", top ? top : ".");
	modelsdev_reset();
}

static void
md_teardown(void)
{
	modelsdev_reset();
}

static void
load_snapshot(void)
{
	char err[512] = "";
	ck_assert_msg(modelsdev_load_file(snapshot_path, err, sizeof err) == PRISM_OK, "%s", err);
}

static const char *
str_field(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Lookups in the bundled snapshot; the expected answers are the original program's. */
static const struct {
	const char *in;
	const char *provider, *id, *tier;                /* provider NULL: no match; tier NULL: none */
} snapshot_cases[] = {
	{ "gpt-4o", "openai", "gpt-4o", "medium" },
	{ "openai/gpt-4o", "openai", "gpt-4o", "medium" },                  /* provider-qualified key */
	{ "claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5-20250929", "high" },
	{ "amazon-bedrock/anthropic.claude-3-haiku-20240307-v1:0", "amazon-bedrock",
	  "anthropic.claude-3-haiku-20240307-v1:0", "low" },
	{ "anthropic/claude-opus-4-1", "cloudflare-ai-gateway", "anthropic/claude-opus-4-1", "high" },
	{ "mistral-large-3:675b", "ollama-cloud", "mistral-large-3:675b", NULL },      /* no price */
	{ "kimi-k2.5", "tencent-coding-plan", "kimi-k2.5", NULL },                     /* price 0 */
	{ "o3", "openai", "o3", "medium" },
	{ "sonar-pro", "perplexity", "sonar-pro", "high" },
	{ "text-embedding-3-large", "openai", "text-embedding-3-large", "minimal" },
	{ "deepseek-r1", "azure-cognitive-services", "deepseek-r1-0528", "medium" },
	{ "xyz-gpt-4o-mini-turbo", "openai", "gpt-4o-mini", "low" },       /* longest key contained */
	{ "grok-4", "jiekou", "grok-4-0709", "medium" },                   /* first key containing it */
	{ "lama-3", "inference", "meta/llama-3.2-1b-instruct", "minimal" },
	{ "qwen3-vl", "ollama-cloud", "qwen3-vl:235b-instruct", NULL },
	{ "ab", NULL, NULL, NULL },                                         /* too short */
	{ "zzzzqqq", NULL, NULL, NULL },
	{ "some-new-model-x", NULL, NULL, NULL },
};

START_TEST(snapshot_table)
{
	load_snapshot();
	json_t *s = modelsdev_suggest(snapshot_cases[_i].in);
	if (!snapshot_cases[_i].provider) {
		ck_assert_msg(s == NULL, "%s matched %s", snapshot_cases[_i].in, s ? str_field(s, "id") : "");
		return;
	}
	ck_assert_msg(s != NULL, "%s: no match", snapshot_cases[_i].in);
	ck_assert_str_eq(str_field(s, "providerId"), snapshot_cases[_i].provider);
	ck_assert_str_eq(str_field(s, "id"), snapshot_cases[_i].id);
	if (snapshot_cases[_i].tier)
		ck_assert_str_eq(str_field(s, "tier"), snapshot_cases[_i].tier);
	else
		ck_assert(json_is_null(json_object_get(s, "tier")));
	ck_assert_str_eq(str_field(s, "source"), "models_dev");
	json_decref(s);
}
END_TEST

START_TEST(snapshot_loaded)
{
	ck_assert_str_eq(modelsdev_source(), "none");
	ck_assert_ptr_null(modelsdev_suggest("gpt-4o"));
	load_snapshot();
	ck_assert_str_eq(modelsdev_source(), "snapshot");
	ck_assert_uint_eq(modelsdev_count(), 4149);
	ck_assert_ptr_null(modelsdev_suggest(""));
	ck_assert_ptr_null(modelsdev_suggest(NULL));

	json_t *s = modelsdev_suggest("GPT-4o");
	char *text = json_dumps(s, JSON_COMPACT);
	ck_assert_str_eq(text, "{\"id\":\"gpt-4o\",\"providerId\":\"openai\",\"providerName\":\"OpenAI\","
			 "\"name\":\"GPT-4o\",\"tier\":\"medium\",\"inputPer1M\":2.5,\"outputPer1M\":10,"
			 "\"contextWindow\":128000,\"categories\":[\"vision_complex\",\"tool_use\"],"
			 "\"reasoning\":false,\"openWeights\":false,\"knowledge\":\"2023-09\","
			 "\"source\":\"models_dev\"}");
	free(text);
	json_decref(s);

	s = modelsdev_suggest("mistral-large-3:675b");
	ck_assert(json_is_null(json_object_get(s, "inputPer1M")));
	ck_assert(json_is_null(json_object_get(s, "knowledge")));
	ck_assert(json_is_true(json_object_get(s, "openWeights")));
	ck_assert_int_eq(json_integer_value(json_object_get(s, "contextWindow")), 262144);
	json_decref(s);

	s = modelsdev_suggest("text-embedding-3-large");
	ck_assert_uint_eq(json_array_size(json_object_get(s, "categories")), 1);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "categories"), 0)),
			 "classification_extraction");
	json_decref(s);

	modelsdev_reset();
	ck_assert_str_eq(modelsdev_source(), "none");
	ck_assert_uint_eq(modelsdev_count(), 0);
	ck_assert_ptr_null(modelsdev_suggest("gpt-4o"));
}
END_TEST

static char tmp_path[64];

static const char *
write_tmp(const char *text)
{
	snprintf(tmp_path, sizeof tmp_path, "/tmp/check_data.XXXXXX");
	int fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmp_path;
}

static void
unlink_tmp(void)
{
	if (tmp_path[0])
		unlink(tmp_path);
	tmp_path[0] = '\0';
}

/* Price tiers, inferred categories and the rules for shared keys, on a small snapshot. */
static const char fixture[] =
	"{\"format\":\"model-prism-modelsdev/1\",\"providers\":[\n"
	"{\"id\":\"alpha\",\"name\":\"Alpha\",\"models\":[\n"
	"[\"shared-model\",\"\",null,null,1000,\"\",null],\n"
	"[\"tier-high\",\"\",10,10,null,\"\",null],\n"
	"[\"tier-medium-top\",\"\",0,14.99,null,\"\",null],\n"
	"[\"tier-medium\",\"\",2,2,null,\"\",null],\n"
	"[\"tier-low\",\"\",0.9,0,null,\"\",null],\n"
	"[\"tier-outonly\",\"\",null,0.45,null,\"\",null],\n"
	"[\"tier-minimal\",\"\",0.29,0.29,null,\"\",null],\n"
	"[\"tier-free\",\"\",0,0,null,\"\",null],\n"
	"[\"all-cats\",\"Coder Embed Mini\",1,2,8192,\"rtiw\",\"2024-01\"]]},\n"
	"{\"id\":\"beta\",\"name\":\"Beta\",\"models\":[\n"
	"[\"shared-model\",\"Shared, priced\",1,1,2000,\"\",null],\n"
	"[\"tier-high\",\"Second\",1,1,null,\"\",null]]}]}\n";

static const struct {
	const char *in, *name, *tier;
} fixture_cases[] = {
	{ "tier-high", "tier-high", "high" },           /* w = 10: the first priced entry keeps the key */
	{ "beta/tier-high", "Second", "low" },
	{ "tier-medium-top", "tier-medium-top", "medium" },     /* w = 9.99 */
	{ "tier-medium", "tier-medium", "medium" },     /* w = 2 */
	{ "tier-low", "tier-low", "low" },              /* w = 0.3 */
	{ "tier-outonly", "tier-outonly", "low" },      /* a missing input price counts as 0 */
	{ "tier-minimal", "tier-minimal", "minimal" },
	{ "tier-free", "tier-free", NULL },             /* w = 0 */
	{ "shared-model", "Shared, priced", "low" },    /* a later priced entry replaces an unpriced one */
	{ "alpha/shared-model", "shared-model", NULL },
	{ "all-cats", "Coder Embed Mini", "low" },      /* w = (1 + 2 * 2) / 3 */
};

START_TEST(fixture_table)
{
	char err[512] = "";
	ck_assert_msg(modelsdev_load_file(write_tmp(fixture), err, sizeof err) == PRISM_OK, "%s", err);
	ck_assert_uint_eq(modelsdev_count(), 11);
	json_t *s = modelsdev_suggest(fixture_cases[_i].in);
	ck_assert_msg(s != NULL, "%s", fixture_cases[_i].in);
	ck_assert_str_eq(str_field(s, "name"), fixture_cases[_i].name);
	if (fixture_cases[_i].tier)
		ck_assert_str_eq(str_field(s, "tier"), fixture_cases[_i].tier);
	else
		ck_assert(json_is_null(json_object_get(s, "tier")));
	json_decref(s);
}
END_TEST

START_TEST(fixture_categories)
{
	char err[512] = "";
	ck_assert_msg(modelsdev_load_file(write_tmp(fixture), err, sizeof err) == PRISM_OK, "%s", err);
	json_t *s = modelsdev_suggest("all-cats");
	char *text = json_dumps(json_object_get(s, "categories"), JSON_COMPACT);
	ck_assert_str_eq(text, "[\"reasoning_deep\",\"vision_complex\",\"tool_use\",\"coding_complex\","
			 "\"classification_extraction\",\"summarization_short\"]");
	free(text);
	ck_assert(json_is_true(json_object_get(s, "reasoning")));
	ck_assert(json_is_true(json_object_get(s, "openWeights")));
	ck_assert_str_eq(str_field(s, "knowledge"), "2024-01");
	ck_assert_str_eq(str_field(s, "providerName"), "Alpha");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "contextWindow")), 8192);
	json_decref(s);
	s = modelsdev_suggest("tier-free");
	ck_assert_uint_eq(json_array_size(json_object_get(s, "categories")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "inputPer1M")), 0);
	ck_assert(json_is_false(json_object_get(s, "reasoning")));
	json_decref(s);
}
END_TEST

/* A malformed file fails with a message naming the place, and the loaded index stays. */
static const struct {
	const char *text, *detail;
} bad_snapshots[] = {
	{ "{\"format\": ", ":1:" },
	{ "[]", "not a model-prism models.dev snapshot" },
	{ "{\"format\":\"model-prism-modelsdev/2\",\"providers\":[]}", "format" },
	{ "{\"format\":\"model-prism-modelsdev/1\",\"providers\":{}}", "\"providers\" is not an array" },
	{ "{\"format\":\"model-prism-modelsdev/1\",\"providers\":[{\"id\":\"a\",\"models\":[]}]}",
	  "providers[0]: expected" },
	{ "{\"format\":\"model-prism-modelsdev/1\",\"providers\":[{\"id\":\"a\",\"name\":\"A\",\"models\":"
	  "[[\"m\",\"\",1,2,3,\"\",null],[\"m2\",\"\",1,2,3,\"\"]]}]}", "providers[0].models[1]: expected" },
	{ "{\"format\":\"model-prism-modelsdev/1\",\"providers\":[{\"id\":\"a\",\"name\":\"A\",\"models\":"
	  "[[\"m\",\"\",\"1\",2,3,\"\",null]]}]}", "wrong type" },
	{ "{\"format\":\"model-prism-modelsdev/1\",\"providers\":[{\"id\":\"a\",\"name\":\"A\",\"models\":"
	  "[[\"m\",\"\",1,2,3,\"rx\",null]]}]}", "unknown flag" },
};

START_TEST(snapshot_errors)
{
	load_snapshot();
	char err[512] = "";
	enum prism_err e = modelsdev_load_file(write_tmp(bad_snapshots[_i].text), err, sizeof err);
	ck_assert_int_eq(e, PRISM_E_CONFIG);
	ck_assert_msg(strstr(err, bad_snapshots[_i].detail) != NULL, "err = %s", err);
	ck_assert_msg(strstr(err, tmp_path) != NULL, "err without the path: %s", err);
	ck_assert_str_eq(modelsdev_source(), "snapshot");
	ck_assert_uint_eq(modelsdev_count(), 4149);
}
END_TEST

START_TEST(snapshot_missing)
{
	char err[512] = "";
	ck_assert_int_eq(modelsdev_load_file("/nonexistent/modelsdev.json", err, sizeof err), PRISM_E_IO);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/modelsdev.json"));
	ck_assert_str_eq(modelsdev_source(), "none");
	ck_assert(strcmp(modelsdev_default_path() + strlen(modelsdev_default_path()) - 15, "/modelsdev.json") == 0);
}
END_TEST

/* Lookups keep working, and see a whole index, while another thread swaps indexes. */
static void *
lookup_loop(void *arg)
{
	long *hits = arg;
	for (int i = 0; i < 300; i++) {
		json_t *s = modelsdev_suggest(i % 2 ? "openai/gpt-4o" : "tier-high");
		if (s && json_object_size(s) == 13)
			(*hits)++;
		json_decref(s);
	}
	return NULL;
}

START_TEST(concurrent_reload)
{
	char err[512] = "";
	const char *fix = write_tmp(fixture);
	load_snapshot();
	pthread_t t[4];
	long hits[4] = { 0 };
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, lookup_loop, &hits[i]), 0);
	for (int i = 0; i < 6; i++) {
		if (i % 2)
			load_snapshot();
		else
			ck_assert_msg(modelsdev_load_file(fix, err, sizeof err) == PRISM_OK, "%s", err);
	}
	long total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += hits[i];
	}
	/* Which lookups hit depends on the index of the moment; the point is that nothing crashes or reads
	 * a half-swapped index (run it under -fsanitize=thread), and that the last load wins. */
	ck_assert_int_gt(total, 0);
	ck_assert_str_eq(modelsdev_source(), "snapshot");
	ck_assert_uint_eq(modelsdev_count(), 4149);
}
END_TEST

/* --- fetching ---------------------------------------------------------------------------------------- */

/* A one-shot HTTP server on a loopback port: answers one request with status and body (when the
 * request carries our User-Agent, else 400), or never answers when status is 0. */
static pid_t
serve_once(int status, const char *body, int *port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(s, 1), 0);
	socklen_t alen = sizeof a;
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0) {
		close(s);
		return pid;
	}
	int c = accept(s, NULL, NULL);
	char req[8192];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[n] = '\0';
	if (status == 0) {
		sleep(30);
		_exit(0);
	}
	if (!strstr(req, "User-Agent: model-prism/" PACKAGE_VERSION "\r\n"))
		status = 400;
	char head[256];
	int hl = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen(body));
	if (write(c, head, (size_t)hl) < 0 || write(c, body, strlen(body)) < 0)
		_exit(1);
	close(c);
	_exit(0);
}

static void
reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static const char api_json[] =
	"{\"prov\":{\"id\":\"prov\",\"env\":[],\"npm\":\"x\",\"name\":\"Prov\",\"doc\":\"\",\"models\":{"
	"\"m-1\":{\"id\":\"m-1\",\"name\":\"Model One Flash\",\"attachment\":false,\"reasoning\":true,"
	"\"tool_call\":false,\"cost\":{\"input\":3,\"output\":15,\"cache_read\":0.3},"
	"\"limit\":{\"context\":100000,\"output\":8000},\"modalities\":{\"input\":[\"text\",\"image\"],"
	"\"output\":[\"text\"]},\"open_weights\":false,\"knowledge\":\"2025-01\"},"
	"\"m-2\":{\"id\":\"m-2\",\"cost\":{},\"limit\":{\"context\":5}}}},"
	"\"no-models\":{\"name\":\"Empty\"},"
	"\"other\":{\"models\":{\"m-1\":{\"name\":\"Other M1\",\"cost\":{\"input\":1,\"output\":1}}}}}";

START_TEST(fetch_converts)
{
	load_snapshot();
	int port;
	pid_t pid = serve_once(200, api_json, &port);
	char url[64], err[512] = "";
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api.json", port);
	enum prism_err e = modelsdev_fetch(url, 5000, err, sizeof err);
	reap(pid);
	ck_assert_msg(e == PRISM_OK, "%s", err);
	ck_assert_str_eq(modelsdev_source(), "online");
	ck_assert_uint_eq(modelsdev_count(), 3);

	json_t *s = modelsdev_suggest("m-1");
	char *text = json_dumps(s, JSON_COMPACT);
	ck_assert_str_eq(text, "{\"id\":\"m-1\",\"providerId\":\"prov\",\"providerName\":\"Prov\","
			 "\"name\":\"Model One Flash\",\"tier\":\"high\",\"inputPer1M\":3,\"outputPer1M\":15,"
			 "\"contextWindow\":100000,\"categories\":[\"reasoning_deep\",\"vision_complex\","
			 "\"summarization_short\"],\"reasoning\":true,\"openWeights\":false,\"knowledge\":\"2025-01\","
			 "\"source\":\"models_dev\"}");
	free(text);
	json_decref(s);
	s = modelsdev_suggest("m-2");
	ck_assert_str_eq(str_field(s, "name"), "m-2");
	ck_assert(json_is_null(json_object_get(s, "tier")));
	ck_assert(json_is_null(json_object_get(s, "inputPer1M")));
	json_decref(s);
	s = modelsdev_suggest("other/m-1");
	ck_assert_str_eq(str_field(s, "providerName"), "other");   /* no name: the provider id */
	ck_assert_str_eq(str_field(s, "tier"), "low");
	json_decref(s);
}
END_TEST

START_TEST(fetch_failures)
{
	load_snapshot();
	char err[512] = "";
	/* nothing listens on port 1 */
	ck_assert_int_eq(modelsdev_fetch("http://127.0.0.1:1/", 2000, err, sizeof err), PRISM_E_UPSTREAM);
	ck_assert_msg(strstr(err, "GET http://127.0.0.1:1/") != NULL, "%s", err);
	ck_assert_int_eq(modelsdev_fetch("ftp://127.0.0.1/api.json", 2000, err, sizeof err), PRISM_E_UPSTREAM);
	ck_assert_int_eq(modelsdev_fetch("not a url", 2000, err, sizeof err), PRISM_E_UPSTREAM);

	int port;
	char url[64];
	pid_t pid = serve_once(503, "{}", &port);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api.json", port);
	ck_assert_int_eq(modelsdev_fetch(url, 5000, err, sizeof err), PRISM_E_UPSTREAM);
	reap(pid);
	ck_assert_msg(strstr(err, "HTTP 503") != NULL, "%s", err);

	pid = serve_once(200, "{\"truncated\":", &port);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api.json", port);
	ck_assert_int_eq(modelsdev_fetch(url, 5000, err, sizeof err), PRISM_E_UPSTREAM);
	reap(pid);
	ck_assert_msg(strstr(err, "invalid JSON") != NULL, "%s", err);

	pid = serve_once(200, "[1,2]", &port);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api.json", port);
	ck_assert_int_eq(modelsdev_fetch(url, 5000, err, sizeof err), PRISM_E_UPSTREAM);
	reap(pid);

	pid = serve_once(0, "", &port);                 /* accepts, never answers */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api.json", port);
	ck_assert_int_eq(modelsdev_fetch(url, 300, err, sizeof err), PRISM_E_TIMEOUT);
	reap(pid);

	/* the snapshot stayed in place through all of it */
	ck_assert_str_eq(modelsdev_source(), "snapshot");
	ck_assert_uint_eq(modelsdev_count(), 4149);
}
END_TEST

static Suite *
data_suite(void)
{
	Suite *s = suite_create("data");
	TCase *tc = tcase_create("catalog");
	tcase_add_test(tc, tiers);
	tcase_add_loop_test(tc, category_table, 0, sizeof category_cases / sizeof category_cases[0]);
	tcase_add_test(tc, category_invariants);
	tcase_add_test(tc, category_strings);
	tcase_add_test(tc, category_document);
	tcase_add_test(tc, presets);
	suite_add_tcase(s, tc);

	tc = tcase_create("registry");
	tcase_add_loop_test(tc, normalise_table, 0, sizeof norm_cases / sizeof norm_cases[0]);
	tcase_add_test(tc, normalise_bounds);
	tcase_add_loop_test(tc, find_table, 0, sizeof find_cases / sizeof find_cases[0]);
	tcase_add_test(tc, registry_invariants);
	tcase_add_test(tc, registry_suggestion);
	tcase_add_loop_test(tc, default_price_table, 0, sizeof default_price_cases / sizeof default_price_cases[0]);
	tcase_add_loop_test(tc, provider_price_table, 0, sizeof provider_price_cases / sizeof provider_price_cases[0]);
	tcase_add_test(tc, price_tables_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("modelsdev");
	tcase_add_checked_fixture(tc, md_setup, md_teardown);
	tcase_add_checked_fixture(tc, NULL, unlink_tmp);
	tcase_add_loop_test(tc, snapshot_table, 0, sizeof snapshot_cases / sizeof snapshot_cases[0]);
	tcase_add_test(tc, snapshot_loaded);
	tcase_add_loop_test(tc, fixture_table, 0, sizeof fixture_cases / sizeof fixture_cases[0]);
	tcase_add_test(tc, fixture_categories);
	tcase_add_loop_test(tc, snapshot_errors, 0, sizeof bad_snapshots / sizeof bad_snapshots[0]);
	tcase_add_test(tc, snapshot_missing);
	tcase_add_test(tc, concurrent_reload);
	tcase_add_test(tc, fetch_converts);
	tcase_add_test(tc, fetch_failures);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(data_suite)
