/* modelsdev.c -- see modelsdev.h. */
#include "config.h"
#include "data/modelsdev.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "data/registry.h"
#include "util/buf.h"
#include "util/curlx.h"
#include "util/xalloc.h"

#ifndef PRISM_DATADIR
#error "PRISM_DATADIR must name the installed data directory (see Makefile.am)"
#endif

#define SNAPSHOT_FORMAT "model-prism-modelsdev/1"
#define SNAPSHOT_FIELDS 7

/* Inferred categories, in the order the original adds them. */
static const char *const category_names[] = {
	"reasoning_deep", "vision_complex", "tool_use", "coding_complex", "classification_extraction",
	"summarization_short",
};
enum {
	CAT_REASONING = 1u << 0, CAT_VISION = 1u << 1, CAT_TOOLS = 1u << 2, CAT_CODING = 1u << 3,
	CAT_EMBED = 1u << 4, CAT_SMALL = 1u << 5,
};

/* Strings live in one arena per index and are referred to by offset while it grows. */
#define NO_STRING SIZE_MAX

struct md_model {
	size_t id, name, knowledge;          /* arena offsets; knowledge may be NO_STRING */
	uint32_t provider;
	bool has_in, has_out, has_ctx, reasoning, open_weights;
	double in, out;                      /* USD per 1M tokens */
	double ctx;
	const char *tier;                    /* static; NULL when no price */
	unsigned cats;
};

struct md_provider {
	size_t id, name;
};

struct md_key {
	const char *key;                     /* into the arena, once it no longer moves */
	size_t len;
	uint32_t model;
	uint32_t seq;                        /* when the key was first indexed */
};

struct md_index {
	struct buf arena;
	struct md_provider *providers;
	size_t nproviders, providers_cap;
	struct md_model *models;
	size_t nmodels, models_cap;
	struct md_key *keys;                 /* sorted by key, for bsearch */
	uint32_t *order;                     /* indexes into keys in indexing order, for the scans */
	size_t nkeys;
};

static pthread_rwlock_t index_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct md_index *current;         /* guarded by index_lock */
static const char *current_source = "none";

const char *
modelsdev_default_path(void)
{
	return PRISM_DATADIR "/modelsdev.json";
}

/* --- building an index -------------------------------------------------------------------------------- */

static void
index_free(struct md_index *ix)
{
	if (!ix)
		return;
	buf_free(&ix->arena);
	free(ix->providers);
	free(ix->models);
	free(ix->keys);
	free(ix->order);
	free(ix);
}

static struct md_index *
index_create(void)
{
	struct md_index *ix = xcalloc(1, sizeof *ix);
	/* Every string comes from a body of at most MODELSDEV_MAX_BODY bytes; the normalised keys add at most
	 * twice that again. */
	buf_init(&ix->arena, 4 * (size_t)MODELSDEV_MAX_BODY);
	return ix;
}

static enum prism_err
arena_add(struct md_index *ix, const char *s, size_t *off)
{
	size_t at = ix->arena.len;
	enum prism_err e = buf_append(&ix->arena, s, strlen(s) + 1);
	if (e)
		return e;
	*off = at;
	return PRISM_OK;
}

static const char *
arena_str(const struct md_index *ix, size_t off)
{
	return off == NO_STRING ? NULL : ix->arena.data + off;
}

/* The original weighs output twice: (input + 2 output) / 3. */
static const char *
infer_tier(double in, double out)
{
	double w = (in + out * 2) / 3;
	if (w >= 10)
		return "high";
	if (w >= 2)
		return "medium";
	if (w >= 0.3)
		return "low";
	if (w > 0)
		return "minimal";
	return NULL;
}

static bool
contains_ci(const char *s, const char *word)
{
	size_t n = strlen(word);
	for (; *s; s++)
		if (strncasecmp(s, word, n) == 0)
			return true;
	return false;
}

static unsigned
infer_categories(bool reasoning, bool image, bool tools, const char *name)
{
	unsigned c = 0;
	if (reasoning)
		c |= CAT_REASONING;
	if (image)
		c |= CAT_VISION;
	if (tools)
		c |= CAT_TOOLS;
	/* /cod(e|ing|er)/i: "coder" contains "code" */
	if (contains_ci(name, "code") || contains_ci(name, "coding"))
		c |= CAT_CODING;
	if (contains_ci(name, "embed"))
		c |= CAT_EMBED;
	static const char *const small[] = { "flash", "mini", "nano", "lite", "small" };
	for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
		if (contains_ci(name, small[i])) {
			c |= CAT_SMALL;
			break;
		}
	return c;
}

/* One model as both sources describe it. */
struct md_input {
	const char *id, *name, *category_name, *knowledge;
	bool has_cost, has_in, has_out, has_ctx;
	double in, out, ctx;
	bool reasoning, tools, image, open_weights;
};

static enum prism_err
add_provider(struct md_index *ix, const char *id, const char *name)
{
	if (ix->nproviders == ix->providers_cap) {
		ix->providers_cap = ix->providers_cap ? 2 * ix->providers_cap : 128;
		ix->providers = xrealloc(ix->providers, ix->providers_cap * sizeof *ix->providers);
	}
	struct md_provider *p = &ix->providers[ix->nproviders];
	enum prism_err e = arena_add(ix, id, &p->id);
	if (!e)
		e = arena_add(ix, name, &p->name);
	if (!e)
		ix->nproviders++;
	return e;
}

static enum prism_err
add_model(struct md_index *ix, const struct md_input *in)
{
	if (ix->nmodels >= UINT32_MAX / 2)
		return PRISM_E_TOO_LARGE;
	if (ix->nmodels == ix->models_cap) {
		ix->models_cap = ix->models_cap ? 2 * ix->models_cap : 4096;
		ix->models = xrealloc(ix->models, ix->models_cap * sizeof *ix->models);
	}
	struct md_model *m = &ix->models[ix->nmodels];
	memset(m, 0, sizeof *m);
	m->provider = (uint32_t)(ix->nproviders - 1);
	m->knowledge = NO_STRING;
	enum prism_err e = arena_add(ix, in->id, &m->id);
	if (!e)
		e = arena_add(ix, in->name, &m->name);
	if (!e && in->knowledge)
		e = arena_add(ix, in->knowledge, &m->knowledge);
	if (e)
		return e;
	m->has_in = in->has_in;
	m->in = in->in;
	m->has_out = in->has_out;
	m->out = in->out;
	m->has_ctx = in->has_ctx;
	m->ctx = in->ctx;
	m->reasoning = in->reasoning;
	m->open_weights = in->open_weights;
	m->tier = in->has_cost ? infer_tier(in->has_in ? in->in : 0, in->has_out ? in->out : 0) : NULL;
	m->cats = infer_categories(in->reasoning, in->image, in->tools, in->category_name);
	ix->nmodels++;
	return PRISM_OK;
}

/* A candidate key before the winners are chosen. */
struct md_cand {
	const char *key;
	size_t len;
	uint32_t model;
	uint32_t seq;
	bool by_id;                          /* indexed by the bare id (may displace an unpriced holder) */
};

static int
cand_cmp(const void *a, const void *b)
{
	const struct md_cand *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct md_key *x = a, *y = b;
	return strcmp(x->key, y->key);
}

/* Indexes every model under its two normalised keys. */
static enum prism_err
build_keys(struct md_index *ix)
{
	enum prism_err e = PRISM_OK;
	size_t *offs = NULL;
	struct md_cand *cands = NULL;
	uint32_t *byseq = NULL;
	size_t ncands = 2 * ix->nmodels;

	/* First all key strings into the arena (it may move), then pointers to them. */
	offs = xcalloc(ncands ? ncands : 1, sizeof *offs);
	for (size_t i = 0; i < ix->nmodels; i++) {
		const struct md_model *m = &ix->models[i];
		char norm[REGISTRY_MAX_NORM], qualified[2 * REGISTRY_MAX_NORM];
		registry_normalise(arena_str(ix, m->id), norm, sizeof norm);
		if ((e = arena_add(ix, norm, &offs[2 * i])))
			goto out;
		snprintf(qualified, sizeof qualified, "%s/%s", arena_str(ix, ix->providers[m->provider].id),
			 arena_str(ix, m->id));
		registry_normalise(qualified, norm, sizeof norm);
		if ((e = arena_add(ix, norm, &offs[2 * i + 1])))
			goto out;
	}
	cands = xcalloc(ncands ? ncands : 1, sizeof *cands);
	for (size_t i = 0; i < ncands; i++) {
		cands[i].key = ix->arena.data + offs[i];
		cands[i].len = strlen(cands[i].key);
		cands[i].model = (uint32_t)(i / 2);
		cands[i].seq = (uint32_t)i;
		cands[i].by_id = i % 2 == 0;
	}
	qsort(cands, ncands, sizeof *cands, cand_cmp);

	/* Each group of equal keys in indexing order: the first holds the key, a later bare-id candidate
	 * with a price replaces a holder without one; the key keeps its first position. */
	ix->keys = xcalloc(ncands ? ncands : 1, sizeof *ix->keys);
	for (size_t i = 0; i < ncands;) {
		size_t j = i + 1;
		uint32_t holder = cands[i].model;
		for (; j < ncands && strcmp(cands[j].key, cands[i].key) == 0; j++)
			if (cands[j].by_id && ix->models[cands[j].model].has_in && !ix->models[holder].has_in)
				holder = cands[j].model;
		ix->keys[ix->nkeys++] = (struct md_key){ cands[i].key, cands[i].len, holder, cands[i].seq };
		i = j;
	}
	/* The scans go through the keys in the order they were first indexed: seq is unique and below
	 * ncands, so a table by seq gives that order without sorting. */
	byseq = xmalloc((ncands ? ncands : 1) * sizeof *byseq);
	for (size_t i = 0; i < ncands; i++)
		byseq[i] = UINT32_MAX;
	for (size_t i = 0; i < ix->nkeys; i++)
		byseq[ix->keys[i].seq] = (uint32_t)i;
	ix->order = xcalloc(ix->nkeys ? ix->nkeys : 1, sizeof *ix->order);
	for (size_t i = 0, n = 0; i < ncands; i++)
		if (byseq[i] != UINT32_MAX)
			ix->order[n++] = byseq[i];
out:
	free(offs);
	free(cands);
	free(byseq);
	return e;
}

/* --- the compact snapshot ----------------------------------------------------------------------------- */

static bool
optional_number(json_t *v, bool *has, double *out)
{
	if (json_is_null(v)) {
		*has = false;
		return true;
	}
	if (!json_is_number(v))
		return false;
	*has = true;
	*out = json_number_value(v);
	return true;
}

/* NULL when the row is fine, else what is wrong with it. */
static const char *
snapshot_model(struct md_index *ix, json_t *row)
{
	if (!json_is_array(row) || json_array_size(row) != SNAPSHOT_FIELDS)
		return "expected [id, name, input, output, context, flags, knowledge]";
	struct md_input in = { 0 };
	json_t *id = json_array_get(row, 0), *name = json_array_get(row, 1), *flags = json_array_get(row, 5),
	       *knowledge = json_array_get(row, 6);
	if (!json_is_string(id) || !json_is_string(name) || !json_is_string(flags) ||
	    !(json_is_null(knowledge) || json_is_string(knowledge)) ||
	    !optional_number(json_array_get(row, 2), &in.has_in, &in.in) ||
	    !optional_number(json_array_get(row, 3), &in.has_out, &in.out) ||
	    !optional_number(json_array_get(row, 4), &in.has_ctx, &in.ctx))
		return "a field has the wrong type";
	in.id = json_string_value(id);
	in.name = *json_string_value(name) ? json_string_value(name) : in.id;
	in.category_name = in.name;
	in.knowledge = json_string_value(knowledge);
	in.has_cost = in.has_in || in.has_out;
	for (const char *f = json_string_value(flags); *f; f++) {
		switch (*f) {
		case 'r': in.reasoning = true; break;
		case 't': in.tools = true; break;
		case 'i': in.image = true; break;
		case 'w': in.open_weights = true; break;
		default: return "unknown flag (not one of r, t, i, w)";
		}
	}
	enum prism_err e = add_model(ix, &in);
	return e ? prism_strerror(e) : NULL;
}

static enum prism_err
snapshot_convert(const char *path, json_t *root, struct md_index *ix, char *err, size_t errlen)
{
	json_t *format = json_object_get(root, "format"), *providers = json_object_get(root, "providers");
	if (!json_is_object(root) || !json_is_string(format) ||
	    strcmp(json_string_value(format), SNAPSHOT_FORMAT) != 0) {
		snprintf(err, errlen, "%s: not a model-prism models.dev snapshot (\"format\" is not \"%s\")", path,
			 SNAPSHOT_FORMAT);
		return PRISM_E_CONFIG;
	}
	if (!json_is_array(providers)) {
		snprintf(err, errlen, "%s: \"providers\" is not an array", path);
		return PRISM_E_CONFIG;
	}
	size_t i, j;
	json_t *p, *row;
	json_array_foreach(providers, i, p) {
		json_t *id = json_object_get(p, "id"), *name = json_object_get(p, "name"),
		       *models = json_object_get(p, "models");
		if (!json_is_string(id) || !json_is_string(name) || !json_is_array(models)) {
			snprintf(err, errlen, "%s: providers[%zu]: expected {id, name, models: [...]}", path, i);
			return PRISM_E_CONFIG;
		}
		enum prism_err e = add_provider(ix, json_string_value(id), json_string_value(name));
		if (e) {
			snprintf(err, errlen, "%s: providers[%zu]: %s", path, i, prism_strerror(e));
			return PRISM_E_CONFIG;
		}
		json_array_foreach(models, j, row) {
			const char *why = snapshot_model(ix, row);
			if (why) {
				snprintf(err, errlen, "%s: providers[%zu].models[%zu]: %s", path, i, j, why);
				return PRISM_E_CONFIG;
			}
		}
	}
	return PRISM_OK;
}

/* --- the models.dev api.json -------------------------------------------------------------------------- */

/* JavaScript truthiness, which the original applies to the flags. */
static bool
truthy(const json_t *v)
{
	if (!v)
		return false;                    /* absent */
	switch (json_typeof(v)) {
	case JSON_TRUE: case JSON_OBJECT: case JSON_ARRAY: return true;
	case JSON_STRING: return json_string_length(v) > 0;
	case JSON_INTEGER: return json_integer_value(v) != 0;
	case JSON_REAL: return json_real_value(v) != 0;
	case JSON_FALSE: case JSON_NULL: return false;
	}
	return false;
}

static const char *
nonempty_string(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static bool
has_image_input(json_t *model)
{
	json_t *input = json_object_get(json_object_get(model, "modalities"), "input"), *v;
	size_t i;
	json_array_foreach(input, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), "image") == 0)
			return true;
	return false;
}

static enum prism_err
api_convert(const char *url, json_t *root, struct md_index *ix, char *err, size_t errlen)
{
	if (!json_is_object(root)) {
		snprintf(err, errlen, "GET %s: not a models.dev api.json object", url);
		return PRISM_E_UPSTREAM;
	}
	const char *pid, *mid;
	json_t *p, *model;
	json_object_foreach(root, pid, p) {
		json_t *models = json_object_get(p, "models");
		if (!json_is_object(models))
			continue;
		const char *pname = nonempty_string(json_object_get(p, "name"));
		enum prism_err e = add_provider(ix, pid, pname ? pname : pid);
		json_object_foreach(models, mid, model) {
			if (e)
				break;
			if (!json_is_object(model))
				continue;
			struct md_input in = { 0 };
			const char *name = nonempty_string(json_object_get(model, "name"));
			const char *own_id = nonempty_string(json_object_get(model, "id"));
			json_t *cost = json_object_get(model, "cost");
			in.id = mid;
			in.name = name ? name : mid;
			in.category_name = name ? name : own_id ? own_id : "";
			in.knowledge = json_string_value(json_object_get(model, "knowledge"));
			in.has_cost = cost && truthy(cost);
			optional_number(json_object_get(cost, "input"), &in.has_in, &in.in);
			optional_number(json_object_get(cost, "output"), &in.has_out, &in.out);
			optional_number(json_object_get(json_object_get(model, "limit"), "context"), &in.has_ctx,
					&in.ctx);
			in.reasoning = truthy(json_object_get(model, "reasoning"));
			in.tools = truthy(json_object_get(model, "tool_call"));
			in.image = has_image_input(model);
			in.open_weights = truthy(json_object_get(model, "open_weights"));
			e = add_model(ix, &in);
		}
		if (e) {
			snprintf(err, errlen, "GET %s: provider %s: %s", url, pid, prism_strerror(e));
			return PRISM_E_UPSTREAM;
		}
	}
	return PRISM_OK;
}

/* --- installing --------------------------------------------------------------------------------------- */

static void
install(struct md_index *ix, const char *source)
{
	pthread_rwlock_wrlock(&index_lock);
	struct md_index *old = current;
	current = ix;
	current_source = ix ? source : "none";
	pthread_rwlock_unlock(&index_lock);
	index_free(old);
}

/* Builds the keys and installs the index, or frees it. */
static enum prism_err
finish(struct md_index *ix, const char *source, char *err, size_t errlen)
{
	enum prism_err e = build_keys(ix);
	if (e) {
		snprintf(err, errlen, "indexing: %s", prism_strerror(e));
		index_free(ix);
		return e;
	}
	install(ix, source);
	return PRISM_OK;
}

static enum prism_err
read_file(const char *path, struct buf *b, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PRISM_E_IO;
	}
	enum prism_err e = PRISM_OK;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (buf_append(b, chunk, n) != PRISM_OK) {
			snprintf(err, errlen, "%s: larger than %ld bytes", path, MODELSDEV_MAX_BODY);
			e = PRISM_E_CONFIG;
			break;
		}
	}
	if (!e && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		e = PRISM_E_IO;
	}
	fclose(f);
	return e;
}

enum prism_err
modelsdev_load_file(const char *path, char *err, size_t errlen)
{
	struct buf body;
	json_t *root = NULL;
	struct md_index *ix = NULL;
	json_error_t jerr;
	enum prism_err e;

	buf_init(&body, (size_t)MODELSDEV_MAX_BODY);
	if ((e = read_file(path, &body, err, errlen)))
		goto out;
	root = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column, jerr.text);
		e = PRISM_E_CONFIG;
		goto out;
	}
	ix = index_create();
	if ((e = snapshot_convert(path, root, ix, err, errlen)))
		goto out;
	e = finish(ix, "snapshot", err, errlen);
	ix = NULL;
out:
	index_free(ix);
	json_decref(root);
	buf_free(&body);
	return e;
}

/* --- fetching ----------------------------------------------------------------------------------------- */

enum prism_err
modelsdev_fetch(const char *url, long timeout_ms, char *err, size_t errlen)
{
	CURL *c = NULL;
	struct curl_slist *headers = NULL;
	struct buf body;
	json_t *root = NULL;
	struct md_index *ix = NULL;
	char curlerr[CURL_ERROR_SIZE] = "";
	json_error_t jerr;
	enum prism_err e = PRISM_E_UPSTREAM;
	long status = 0;

	buf_init(&body, (size_t)MODELSDEV_MAX_BODY);
	if (timeout_ms <= 0)
		timeout_ms = MODELSDEV_TIMEOUT_MS;
	curlx_global_init();
	if (!url || !(c = curl_easy_init())) {
		snprintf(err, errlen, "GET %s: cannot start a transfer", url ? url : "(no url)");
		e = PRISM_E_INTERNAL;
		goto out;
	}
	headers = curl_slist_append(headers, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curlx_basics(c, curlerr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curlx_http_only(c);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MODELSDEV_MAX_BODY);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curlx_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);

	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "GET %s: response body larger than %ld bytes", url, MODELSDEV_MAX_BODY);
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "GET %s: %s", url, *curlerr ? curlerr : curl_easy_strerror(rc));
		e = rc == CURLE_OPERATION_TIMEDOUT ? PRISM_E_TIMEOUT : PRISM_E_UPSTREAM;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "GET %s: HTTP %ld", url, status);
		goto out;
	}
	root = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "GET %s: invalid JSON at line %d: %s", url, jerr.line, jerr.text);
		goto out;
	}
	ix = index_create();
	if ((e = api_convert(url, root, ix, err, errlen)))
		goto out;
	e = finish(ix, "online", err, errlen);
	ix = NULL;
out:
	index_free(ix);
	json_decref(root);
	buf_free(&body);
	curl_slist_free_all(headers);
	if (c)
		curl_easy_cleanup(c);
	return e;
}

/* --- lookups ------------------------------------------------------------------------------------------ */

const char *
modelsdev_source(void)
{
	pthread_rwlock_rdlock(&index_lock);
	const char *s = current_source;
	pthread_rwlock_unlock(&index_lock);
	return s;
}

size_t
modelsdev_count(void)
{
	pthread_rwlock_rdlock(&index_lock);
	size_t n = current ? current->nmodels : 0;
	pthread_rwlock_unlock(&index_lock);
	return n;
}

void
modelsdev_reset(void)
{
	install(NULL, "none");
}

static json_t *
number_json(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *
model_json(const struct md_index *ix, const struct md_model *m)
{
	const struct md_provider *p = &ix->providers[m->provider];
	json_t *cats = json_array();
	for (size_t i = 0; i < sizeof category_names / sizeof category_names[0]; i++)
		if (m->cats & (1u << i))
			json_array_append_new(cats, json_string(category_names[i]));
	const char *knowledge = arena_str(ix, m->knowledge);

	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(arena_str(ix, m->id)));
	json_object_set_new(o, "providerId", json_string(arena_str(ix, p->id)));
	json_object_set_new(o, "providerName", json_string(arena_str(ix, p->name)));
	json_object_set_new(o, "name", json_string(arena_str(ix, m->name)));
	json_object_set_new(o, "tier", m->tier ? json_string(m->tier) : json_null());
	json_object_set_new(o, "inputPer1M", m->has_in ? number_json(m->in) : json_null());
	json_object_set_new(o, "outputPer1M", m->has_out ? number_json(m->out) : json_null());
	json_object_set_new(o, "contextWindow", m->has_ctx ? number_json(m->ctx) : json_null());
	json_object_set_new(o, "categories", cats);
	json_object_set_new(o, "reasoning", json_boolean(m->reasoning));
	json_object_set_new(o, "openWeights", json_boolean(m->open_weights));
	json_object_set_new(o, "knowledge", knowledge ? json_string(knowledge) : json_null());
	json_object_set_new(o, "source", json_string("models_dev"));
	return o;
}

static const struct md_model *
lookup(const struct md_index *ix, const char *needle)
{
	struct md_key probe = { .key = needle };
	const struct md_key *k = bsearch(&probe, ix->keys, ix->nkeys, sizeof *ix->keys, key_cmp);
	if (k)
		return &ix->models[k->model];

	size_t nlen = strlen(needle), best_len = 0;
	const struct md_key *best = NULL;
	for (size_t i = 0; i < ix->nkeys; i++) {
		const struct md_key *c = &ix->keys[ix->order[i]];
		if (c->len > best_len && c->len <= nlen && strstr(needle, c->key)) {
			best = c;
			best_len = c->len;
		}
	}
	if (best)
		return &ix->models[best->model];

	if (nlen >= 3)
		for (size_t i = 0; i < ix->nkeys; i++) {
			const struct md_key *c = &ix->keys[ix->order[i]];
			if (c->len >= nlen && strstr(c->key, needle))
				return &ix->models[c->model];
		}
	return NULL;
}

json_t *
modelsdev_suggest(const char *model_id)
{
	if (!model_id || !*model_id)
		return NULL;
	char needle[REGISTRY_MAX_NORM];
	registry_normalise(model_id, needle, sizeof needle);

	json_t *res = NULL;
	pthread_rwlock_rdlock(&index_lock);
	if (current) {
		const struct md_model *m = lookup(current, needle);
		if (m)
			res = model_json(current, m);
	}
	pthread_rwlock_unlock(&index_lock);
	return res;
}
