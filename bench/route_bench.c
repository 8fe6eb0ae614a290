/* route_bench.c -- the routing decision without the classifier, in microseconds per request (not a test;
 * `make bench` runs it and writes bench/RESULTS-routing.md).
 *
 *   route_bench [iterations]        (default 20000)
 *
 * One decision = route_decide on a 20-message conversation (a system prompt of an agentic coding client,
 * ten user and nine assistant turns of mixed prose and code, about 6 KB) for a tenant with two providers
 * and 40 models, the built-in categories and the default rule set: signal extraction, pre-routing,
 * overrides, cost mode and selection -- everything the gateway runs per routed request except the store
 * (the routing data snapshot is built once, as each process does) and the classifier call.  Scenarios
 * differ by what the request makes the engine do: the conversation as is; with an image and tools; a FIM
 * request (fast path); the conversation behind a 12 KB system prompt of an agentic coding client (the
 * signals scan the whole system prompt); and a 200-message conversation.  Prints median, p99 and mean
 * per decision and the ratio of the median to the 50 us target.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "admin/tenants.h"
#include "routing/engine.h"
#include "util/parse.h"

#define TARGET_US 50.0

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static json_t *
providers(void)
{
	static const char *const tiers[] = { "micro", "minimal", "low", "medium", "advanced", "high", "ultra", "critical" };
	static const char *const known[] = { "claude-3-haiku", "claude-3-5-haiku", "claude-haiku-4-5", "claude-3-5-sonnet",
					     "claude-3-7-sonnet", "claude-sonnet-4-6", "claude-opus-4-6", "claude-3-opus" };
	json_t *out = json_array();
	for (int p = 0; p < 2; p++) {
		json_t *models = json_array();
		for (int i = 0; i < 20; i++) {
			char id[64];
			if (i < 8)
				snprintf(id, sizeof id, "%s", known[i]);
			else
				snprintf(id, sizeof id, "model-%d-%d", p, i);
			json_array_append_new(models, json_pack("{s:s, s:s, s:f, s:f, s:i}", "id", id, "tier", tiers[i % 8],
								"inputPer1M", 0.1 * (i + 1), "outputPer1M", 0.5 * (i + 1),
								"contextWindow", 200000));
		}
		char pid[32], slug[16];
		snprintf(pid, sizeof pid, "64a00000000000000000000%d", p);
		snprintf(slug, sizeof slug, "p%d", p);
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:o}", "_id", pid, "slug", slug, "name", slug,
						     "type", "openai", "discoveredModels", models));
	}
	return out;
}

/* A system prompt of an agentic coding client: tool documentation, about `kb` KB. */
static char *
agent_prompt(int kb)
{
	static const char *const para =
		"You are an interactive CLI tool that helps users with software engineering tasks. Use the tools "
		"available to you to read files, edit them, run shell commands and search the codebase with glob and "
		"grep. When you run a command that changes the system, explain what it does first. Prefer editing "
		"existing files to creating new ones; never commit unless asked. Tool read_file(path): returns the "
		"file's content with line numbers. Tool run_terminal_command(cmd): runs cmd in the project root and "
		"returns its output, truncated after 30000 characters. Follow the conventions of the code around you. ";
	size_t n = strlen(para), want = (size_t)kb * 1024;
	char *s = malloc(want + n + 1);
	size_t len = 0;
	while (len < want) {
		memcpy(s + len, para, n);
		len += n;
	}
	s[len] = '\0';
	return s;
}

static json_t *
conversation(int turns, bool image, bool tools, int system_kb)
{
	json_t *msgs = json_array();
	char *sys = system_kb ? agent_prompt(system_kb) : NULL;
	json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content",
					      sys ? sys :
					      "You are an expert software engineer assistant working in agent mode. You have "
					      "access to tools to read files, search the codebase and run terminal commands. "
					      "Answer concisely and show code in fenced blocks."));
	free(sys);
	for (int i = 0; i < turns; i++) {
		char u[512], a[512];
		snprintf(u, sizeof u,
			 "Step %d: the function parse_config in config.py fails when the file has a BOM. Here is the "
			 "traceback and the code:\n```python\ndef parse_config(path):\n    with open(path) as f:\n        "
			 "return json.load(f)\n```\nWhy does it break, and how do I fix it without changing callers?", i);
		snprintf(a, sizeof a,
			 "The file starts with a UTF-8 byte order mark, which json.load rejects. Open it with "
			 "encoding='utf-8-sig' so the mark is skipped:\n```python\nwith open(path, encoding='utf-8-sig') as "
			 "f:\n    return json.load(f)\n```\nCallers keep the same signature (turn %d).", i);
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", u));
		if (i + 1 < turns)
			json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", a));
	}
	if (image)
		json_array_append_new(msgs, json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}", "role", "user", "content",
						      "type", "text", "text", "What does this screenshot show?", "type",
						      "image_url", "image_url", "url", "data:image/png;base64,iVBORw0KGgo="));
	json_t *req = json_pack("{s:s, s:o}", "model", "auto", "messages", msgs);
	if (tools)
		json_object_set_new(req, "tools", json_pack("[{s:s, s:{s:s}}]", "type", "function", "function", "name",
							    "read_file"));
	return req;
}

static void
run_quiet(json_t *req, json_t *tenant, json_t *tprov, const struct rdata *rd, long iters)
{
	struct route_result *r = malloc(sizeof *r);
	struct route_input in = { .request = req, .tenant_doc = tenant, .tprov = tprov, .rd = rd, .prev_fill_pct = -1 };
	for (long i = 0; i < iters; i++)
		route_decide(&in, r, NULL);
	free(r);
}

static void
run(const char *name, json_t *req, json_t *tenant, json_t *tprov, const struct rdata *rd, long iters)
{
	int64_t *t = malloc((size_t)iters * sizeof *t);
	struct route_result *r = malloc(sizeof *r);
	struct route_input in = { .request = req, .tenant_doc = tenant, .tprov = tprov, .rd = rd, .prev_fill_pct = -1,
				  .use_classifier = false };
	for (long i = 0; i < iters / 10; i++)        /* warm-up: caches, lazily compiled patterns */
		route_decide(&in, r, NULL);
	int64_t sum = 0;
	for (long i = 0; i < iters; i++) {
		int64_t t0 = now_ns();
		route_decide(&in, r, NULL);
		t[i] = now_ns() - t0;
		sum += t[i];
	}
	qsort(t, (size_t)iters, sizeof *t, cmp64);
	double med = (double)t[iters / 2] / 1000.0, p99 = (double)t[iters * 99 / 100] / 1000.0;
	char *body = json_dumps(req, JSON_COMPACT);
	printf("| %s | %zu | %zu | %.1f | %.1f | %.1f | %.2f | %s, %s |\n", name,
	       json_array_size(json_object_get(req, "messages")), strlen(body), med, p99,
	       (double)sum / (double)iters / 1000.0, med / TARGET_US, r->model, route_tier_name(r->tier));
	free(body);
	free(r);
	free(t);
}

int
main(int argc, char **argv)
{
	long iters = 20000;
	if (argc > 1 && parse_long(argv[1], 100, 100000000, &iters)) {
		fprintf(stderr, "usage: route_bench [iterations >= 100]\n");
		return 2;
	}
	json_t *prov = providers();
	json_t *tenant = json_pack("{s:s, s:s, s:[s, s], s:{s:b}}", "_id", "64b000000000000000000001", "slug", "bench",
				   "providerIds", "64a000000000000000000000", "64a000000000000000000001", "routing",
				   "enabled", 1);
	tenants_fill_defaults(tenant);
	struct rdata *rd = rdata_build(NULL, NULL);
	printf("| scenario | messages | bytes | median us | p99 us | mean us | median / 50 us | routed to |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	json_t *req = conversation(10, false, false, 0);
	run_quiet(req, tenant, prov, rd, iters);     /* the first run pays for page faults and a cold CPU */
	run("20-message conversation", req, tenant, prov, rd, iters);
	json_decref(req);
	req = conversation(10, true, true, 0);
	run("20 messages + image + tools", req, tenant, prov, rd, iters);
	json_decref(req);
	req = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user", "content",
			"<fim_prefix>def add(a, b):\n    <fim_suffix>\n<fim_middle>");
	run("FIM (fast path)", req, tenant, prov, rd, iters);
	json_decref(req);
	req = conversation(10, false, true, 12);
	run("20 messages, 12 KB agent system prompt", req, tenant, prov, rd, iters);
	json_decref(req);
	req = conversation(100, false, true, 0);
	run("200-message conversation", req, tenant, prov, rd, iters / 10 > 100 ? iters / 10 : 100);
	json_decref(req);
	rdata_put(rd);
	json_decref(tenant);
	json_decref(prov);
	return 0;
}
