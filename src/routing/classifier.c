/* classifier.c -- the LLM classifier of the router; see classifier.h.
 *
 * Differences from the original (reference/original-gateway.md §5.7, §17.6, §17.15), on purpose:
 *   - the answer is validated: an unknown category or tier is an error (the router's fallback path), never
 *     a silent "cheapest tier";
 *   - the chain has a deadline for all its calls together and at most CLASSIFIER_MAX_FALLBACKS fallbacks;
 *     a provider that is not one of the tenant's is never called;
 *   - texts are cut in code points (the original: UTF-16 units), never inside a UTF-8 sequence;
 *   - the prompt is bounded (categories, examples, model ids) whatever the stored data holds.
 */
#include "config.h"
#include "routing/classifier.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw.h"
#include "gateway/plan.h"
#include "providers/provider.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define ELLIPSIS "\xE2\x80\xA6"                /* U+2026 */
#define EM_DASH "\xE2\x80\x94"                 /* U+2014 */
#define DEFAULT_CONTEXT_WINDOW 128000L
#define CONTEXT_RESERVE 2000L                  /* tokens kept for the prompt and the answer */
#define CONTEXT_MIN_LIMIT 1000L
#define CONTEXT_MIN_CHARS 50L                  /* below this budget, a message is not worth adding */
#define CONTEXT_MESSAGES 3                     /* the last non-system messages shown */
#define MAX_ROLE_BYTES 32
#define MAX_HINT_ROLE_BYTES 128
#define MIN_CALL_MS 50                         /* less time than this left: no new call */
#define REPLY_MAX_TOKENS 512
#define WHY_VALUE_BYTES 64                     /* the model's value quoted in a parse error */

static const char PROMPT_INTRO[] =
	"You are a precise model router. Analyze the user's prompt and classify it into one of these categories.";

static const char PROMPT_FORMAT[] =
	"## Response Format\n"
	"Reply with ONLY valid JSON, no markdown:\n"
	"{\"category\":\"<key>\",\"confidence\":<0-1>,\"complexity\":\"<simple|medium|complex>\",\"has_image\":<bool>,"
	"\"language\":\"<en|de|other>\",\"estimated_output_length\":\"<short|medium|long>\","
	"\"domain\":\"<general|legal|medical|finance|tech|science>\",\"conversation_turn\":<int>,"
	"\"user_frustration_signal\":<bool>,\"cost_tier\":\"<micro|minimal|low|medium|advanced|high|ultra|critical>\","
	"\"recommended_model\":\"<model_id or null>\",\"reasoning\":\"<1 sentence>\"}";

/* --- UTF-8 ------------------------------------------------------------------------------------------------- */

/* The code point at s (len > 0 bytes left) and its length in *adv; -1 with *adv 1 for a byte that does not
 * start a well-formed sequence (overlong forms, surrogates and values above U+10FFFF included). */
static long
utf8_decode(const unsigned char *s, size_t len, size_t *adv)
{
	unsigned char c = s[0];
	*adv = 1;
	if (c < 0x80)
		return c;
	size_t n;
	long cp, min;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2, cp = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3, cp = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (len < n)
		return -1;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*adv = n;
	return cp;
}

enum { TEXT_KEEP_LINES = 0, TEXT_ONE_LINE = 1 };

/* Appends at most maxcp code points of s (len bytes) to b as valid UTF-8: an ill-formed byte becomes U+FFFD,
 * NUL a space, and with TEXT_ONE_LINE every control character (C0, DEL, C1) a space.  Sets *cut (may be
 * NULL) when s had more.  Returns the code points written. */
static size_t
put_text(struct buf *b, const char *s, size_t len, size_t maxcp, int mode, bool *cut)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, ncp = 0, run = 0;    /* run: bytes from i - run copied verbatim at the next flush */
	if (cut)
		*cut = false;
	while (i < len) {
		if (ncp >= maxcp) {
			if (cut)
				*cut = true;
			break;
		}
		size_t adv;
		long cp = utf8_decode(p + i, len - i, &adv);
		const char *repl = NULL;
		if (cp < 0)
			repl = "\xEF\xBF\xBD";
		else if (cp == 0 || (mode == TEXT_ONE_LINE && (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))))
			repl = " ";
		if (repl) {
			buf_append(b, p + i - run, run);
			buf_puts(b, repl);
			run = 0;
		} else {
			run += adv;
		}
		i += adv;
		ncp++;
	}
	buf_append(b, p + i - run, run);
	return ncp;
}

/* Copies s into out (outlen bytes) as one safe line: at most outlen - 1 bytes, never cut inside a
 * character. */
static void
copy_line(char *out, size_t outlen, const char *s, size_t len)
{
	struct buf b;
	buf_init(&b, 4 * len + 16);
	put_text(&b, s, len, len, TEXT_ONE_LINE, NULL);
	const char *t = buf_cstr(&b);
	size_t n = strlen(t);
	if (n >= outlen) {
		n = outlen - 1;
		while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, t, n);
	out[n] = '\0';
	buf_free(&b);
}

/* A name the classifier can be asked to repeat verbatim: non-empty, at most max bytes, valid UTF-8, no
 * control characters. */
static bool
plain_name(const char *s, size_t max)
{
	if (!s || !*s)
		return false;
	size_t len = strlen(s);
	if (len > max)
		return false;
	for (size_t i = 0; i < len;) {
		size_t adv;
		long cp = utf8_decode((const unsigned char *)s + i, len - i, &adv);
		if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
			return false;
		i += adv;
	}
	return true;
}

/* --- the prompt ------------------------------------------------------------------------------------------ */

/* A number as JavaScript's Number.prototype.toString prints it: the shortest digits that read back as the
 * same double, positional between 1e-7 and 1e21, else with an exponent ("3", "0.075", "1e-7"). */
static void
js_number(double v, char *out, size_t outlen)
{
	if (!isfinite(v)) {
		snprintf(out, outlen, "%s", isnan(v) ? "NaN" : v < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (v == 0) {
		snprintf(out, outlen, "0");
		return;
	}
	char e[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof e, "%.*e", prec - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	/* e: [-]d[.ddd]e[+-]x */
	char digits[24];
	size_t k = 0;
	const char *p = e;
	bool neg = *p == '-';
	if (neg)
		p++;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && k < sizeof digits - 1)
			digits[k++] = *p;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	long x = *p == 'e' ? strtol(p + 1, NULL, 10) : 0;
	long n = x + 1;                     /* the decimal point sits after n digits */
	struct buf b;
	buf_init(&b, 64);
	if (neg)
		buf_puts(&b, "-");
	if ((long)k <= n && n <= 21) {
		buf_puts(&b, digits);
		for (long i = (long)k; i < n; i++)
			buf_puts(&b, "0");
	} else if (0 < n && n <= 21) {
		buf_append(&b, digits, (size_t)n);
		buf_puts(&b, ".");
		buf_puts(&b, digits + n);
	} else if (-6 < n && n <= 0) {
		buf_puts(&b, "0.");
		for (long i = 0; i < -n; i++)
			buf_puts(&b, "0");
		buf_puts(&b, digits);
	} else {
		buf_append(&b, digits, 1);
		if (k > 1) {
			buf_puts(&b, ".");
			buf_puts(&b, digits + 1);
		}
		buf_printf(&b, "e%c%ld", n - 1 >= 0 ? '+' : '-', labs(n - 1));
	}
	snprintf(out, outlen, "%s", buf_cstr(&b));
	buf_free(&b);
}

static void
category_line(struct buf *b, const struct route_category *c)
{
	buf_puts(b, "- ");
	buf_puts(b, c->key);
	if (route_tier_name(c->tier))
		buf_printf(b, " [%s]", route_tier_name(c->tier));
	size_t shown = 0, total = 0;
	for (size_t i = 0; c->examples && i < c->nexamples && c->examples[i]; i++) {
		const char *ex = c->examples[i];
		if (!*ex)
			continue;
		if (shown == CLASSIFIER_MAX_EXAMPLES || total >= CLASSIFIER_MAX_EXAMPLES_CHARS)
			break;
		buf_puts(b, shown ? ", " : " " EM_DASH " Examples: ");
		size_t budget = CLASSIFIER_MAX_EXAMPLES_CHARS - total;
		if (budget > CLASSIFIER_MAX_EXAMPLE_CHARS)
			budget = CLASSIFIER_MAX_EXAMPLE_CHARS;
		bool cut;
		total += put_text(b, ex, strlen(ex), budget, TEXT_ONE_LINE, &cut);
		if (cut)
			buf_puts(b, ELLIPSIS);
		shown++;
	}
}

static bool
model_usable(const struct route_model *m)
{
	return plain_name(m->id, sizeof ((struct classifier_answer *)0)->recommended - 1);
}

static int
tier_bucket(int tier)
{
	return tier >= 0 && tier < ROUTE_NTIERS ? tier : ROUTE_NTIERS;
}

/* By id, then by position: the first of equal ids comes first.  (qsort has no context argument, hence the
 * thread-local pointer.) */
static _Thread_local const struct route_model *cmp_models;

static int
cmp_by_id(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(cmp_models[x].id, cmp_models[y].id);
	return c ? c : (x > y) - (x < y);
}

static void
model_line(struct buf *b, const struct route_model *m)
{
	buf_puts(b, "\n- ");
	buf_puts(b, m->id);
	if (route_tier_name(m->tier))
		buf_printf(b, " [%s]", route_tier_name(m->tier));
	if (m->input_per_1m >= 0 && m->output_per_1m >= 0 && isfinite(m->input_per_1m) && isfinite(m->output_per_1m)) {
		char in[40], out[40];
		js_number(m->input_per_1m, in, sizeof in);
		js_number(m->output_per_1m, out, sizeof out);
		buf_printf(b, " " EM_DASH " in:$%s/out:$%s/1M", in, out);
	}
}

/* The model lines: usable ids, first occurrence of each, by tier (untiered last, stable), at most
 * CLASSIFIER_MAX_MODELS.  Returns how many were written. */
static size_t
model_lines(struct buf *b, const struct route_model *models, size_t nmodels)
{
	size_t n = 0;
	size_t *idx = xmalloc((nmodels ? nmodels : 1) * sizeof *idx);
	bool *first = xcalloc(nmodels ? nmodels : 1, sizeof *first);
	for (size_t i = 0; i < nmodels; i++)
		if (model_usable(&models[i]))
			idx[n++] = i;
	cmp_models = models;
	qsort(idx, n, sizeof *idx, cmp_by_id);
	cmp_models = NULL;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(models[idx[i]].id, models[idx[i - 1]].id) != 0)
			first[idx[i]] = true;
	size_t written = 0;
	for (int t = 0; t <= ROUTE_NTIERS && written < CLASSIFIER_MAX_MODELS; t++)
		for (size_t i = 0; i < nmodels && written < CLASSIFIER_MAX_MODELS; i++)
			if (first[i] && tier_bucket(models[i].tier) == t) {
				if (written == 0)
					buf_puts(b, "\n\n## Available Models\n"
						    "Pick the best one for this request as \"recommended_model\":");
				model_line(b, &models[i]);
				written++;
			}
	free(first);
	free(idx);
	return written;
}

char *
classifier_prompt(const struct route_category *cats, size_t ncats, const struct route_model *models, size_t nmodels)
{
	struct buf b;
	buf_init(&b, CLASSIFIER_MAX_PROMPT);
	buf_puts(&b, PROMPT_INTRO);
	buf_puts(&b, "\n\n## Categories\n");
	size_t lines = 0;
	for (size_t i = 0; cats && i < ncats && lines < CLASSIFIER_MAX_CATEGORIES; i++) {
		if (!plain_name(cats[i].key, ROUTE_MAX_KEY - 1))
			continue;     /* a key the answer could not carry back */
		if (lines)
			buf_puts(&b, "\n");
		category_line(&b, &cats[i]);
		lines++;
	}
	if (models)
		model_lines(&b, models, nmodels);
	buf_puts(&b, "\n\n");
	buf_puts(&b, PROMPT_FORMAT);
	return buf_take(&b, NULL);
}

/* --- the context ----------------------------------------------------------------------------------------- */

/* Appends as much of s (len bytes) as the bound of b allows; false when it did not all fit. */
static bool
append_prefix(struct buf *b, const char *s, size_t len)
{
	size_t room = b->max - b->len;
	buf_append(b, s, len < room ? len : room);
	return len <= room;
}

/* The text of a message's content into out (bounded by out's maximum: a cut there is past the budget the
 * caller applies): a string, or the text blocks of an array joined by a space; "" for anything else. */
static void
content_text(const json_t *content, struct buf *out)
{
	if (json_is_string(content)) {
		append_prefix(out, json_string_value(content), json_string_length(content));
		return;
	}
	size_t i, n = 0;
	const json_t *blk;
	json_array_foreach(content, i, blk) {
		const json_t *type = json_object_get(blk, "type");
		const json_t *text = json_object_get(blk, "text");
		if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 || !json_is_string(text))
			continue;
		if (n++ && !append_prefix(out, " ", 1))
			return;
		if (!append_prefix(out, json_string_value(text), json_string_length(text)))
			return;
	}
}

char *
classifier_context(const struct route_signals *s, const json_t *messages, long context_window,
		   enum ruleset_ctx_strategy strategy, const char *hint_role)
{
	struct buf b;
	buf_init(&b, CLASSIFIER_MAX_CONTEXT_BYTES);
	const char *summary = s ? s->summary : "";
	if (strategy != RS_CTX_METADATA_ONLY) {
		long cw = context_window > 0 ? context_window : DEFAULT_CONTEXT_WINDOW;
		long limit = cw - CONTEXT_RESERVE > CONTEXT_MIN_LIMIT ? cw - CONTEXT_RESERVE : CONTEXT_MIN_LIMIT;
		long used = 0;
		size_t chars = 0;     /* code points of message text so far: the hard bound */
		if (s && s->system_prompt[0]) {
			long max_sys = limit * 3 / 10;
			bool cut;
			buf_puts(&b, "[System]: ");
			const char *sys = s->system_prompt;
			put_text(&b, sys, strnlen(sys, sizeof s->system_prompt), (size_t)(max_sys * 7 / 2), TEXT_KEEP_LINES, &cut);
			if (cut)
				buf_puts(&b, ELLIPSIS);
			used = tokens_estimate_text(buf_cstr(&b), b.len);
		}
		/* The last CONTEXT_MESSAGES non-system messages, oldest first. */
		const json_t *pick[CONTEXT_MESSAGES];
		size_t npick = 0;
		for (size_t i = json_array_size(messages); i > 0 && npick < CONTEXT_MESSAGES; i--) {
			const json_t *m = json_array_get(messages, i - 1);
			const char *role = json_string_value(json_object_get(m, "role"));
			if (!json_is_object(m) || (role && strcmp(role, "system") == 0))
				continue;
			pick[npick++] = m;
		}
		struct buf text;
		for (size_t j = npick; j > 0; j--) {
			const json_t *m = pick[j - 1];
			long remaining = (limit - used) * 7 / 2;
			if (remaining > (long)(CLASSIFIER_MAX_CONTEXT_CHARS - chars))
				remaining = (long)(CLASSIFIER_MAX_CONTEXT_CHARS - chars);
			if (remaining < CONTEXT_MIN_CHARS)
				break;
			/* The first remaining + 1 code points fit in this many bytes: enough to know whether it is cut. */
			buf_init(&text, (size_t)remaining * 4 + 4);
			content_text(json_object_get(m, "content"), &text);
			const char *role = json_string_value(json_object_get(m, "role"));
			if (b.len)
				buf_puts(&b, "\n");
			buf_puts(&b, "[");
			if (role && *role)
				put_text(&b, role, strlen(role), MAX_ROLE_BYTES, TEXT_ONE_LINE, NULL);
			else
				buf_puts(&b, "unknown");
			buf_puts(&b, "]: ");
			size_t start = b.len;
			bool cut;
			chars += put_text(&b, buf_cstr(&text), text.len, (size_t)remaining, TEXT_KEEP_LINES, &cut);
			used += tokens_estimate_text(buf_cstr(&b) + start, b.len - start);
			if (cut)
				buf_puts(&b, ELLIPSIS);
			buf_free(&text);
		}
		if (b.len)
			buf_puts(&b, "\n");
	}
	buf_puts(&b, "[CONTEXT_SIGNALS: ");
	put_text(&b, summary, strnlen(summary, sizeof s->summary), sizeof s->summary, TEXT_ONE_LINE, NULL);
	buf_puts(&b, "]");
	if (hint_role) {
		buf_puts(&b, "\n[HINT: Request originates from a \"");
		put_text(&b, hint_role, strlen(hint_role), MAX_HINT_ROLE_BYTES, TEXT_ONE_LINE, NULL);
		buf_puts(&b, "\" IDE context. Classify based on the ACTUAL user message complexity, not the system prompt.]");
	}
	return buf_take(&b, NULL);
}

/* --- the answer ------------------------------------------------------------------------------------------ */

static void
set_why(char *why, size_t whylen, const char *code, const json_t *value)
{
	if (!why || !whylen)
		return;
	if (!value) {
		snprintf(why, whylen, "%s", code);
		return;
	}
	char v[WHY_VALUE_BYTES + 1];
	if (json_is_string(value)) {
		copy_line(v, sizeof v, json_string_value(value), json_string_length(value));
	} else {
		char *d = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
		copy_line(v, sizeof v, d ? d : "?", d ? strlen(d) : 1);
		free(d);
	}
	snprintf(why, whylen, "%s:%s", code, v);
}

/* The JSON text inside content: a ```json fence (or a bare ``` fence), else the first '{' to the last '}',
 * else all of it.  Sets *start and *len. */
static void
json_span(const char *content, const char **start, size_t *len)
{
	const char *f = strstr(content, "```");
	if (f) {
		const char *p = f + 3;
		if (strncasecmp(p, "json", 4) == 0)
			p += 4;
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		const char *end = strstr(p, "```");
		if (end) {
			*start = p;
			*len = (size_t)(end - p);
			return;
		}
	}
	const char *open = strchr(content, '{');
	const char *close = strrchr(content, '}');
	if (open && close && close > open) {
		*start = open;
		*len = (size_t)(close - open) + 1;
		return;
	}
	*start = content;
	*len = strlen(content);
}

/* A string member of one of the allowed values, copied to out; else def. */
static void
enum_field(const json_t *root, const char *k, const char *const *allowed, const char *def, char *out, size_t outlen)
{
	const char *v = json_string_value(json_object_get(root, k));
	for (size_t i = 0; v && allowed[i]; i++)
		if (strcmp(v, allowed[i]) == 0) {
			snprintf(out, outlen, "%s", v);
			return;
		}
	snprintf(out, outlen, "%s", def);
}

/* A string member that fits out and is one plain line; else def. */
static void
name_field(const json_t *root, const char *k, const char *def, char *out, size_t outlen)
{
	const json_t *v = json_object_get(root, k);
	const char *s = json_string_value(v);
	if (s && *s && json_string_length(v) == strlen(s) && plain_name(s, outlen - 1))
		snprintf(out, outlen, "%s", s);
	else
		snprintf(out, outlen, "%s", def);
}

static void
answer_reset(struct classifier_answer *out)
{
	memset(out, 0, sizeof *out);
	out->tier = ROUTE_TIER_NONE;
}

enum prism_err
classifier_parse(const char *content, const struct route_category *cats, size_t ncats,
		 const struct route_model *models, size_t nmodels, struct classifier_answer *out, char *why,
		 size_t whylen)
{
	static const char *const complexities[] = { "simple", "medium", "complex", NULL };
	static const char *const lengths[] = { "short", "medium", "long", NULL };
	enum prism_err rc = PRISM_E_BAD_REQUEST;
	json_t *root = NULL;
	answer_reset(out);
	if (why && whylen)
		why[0] = '\0';
	if (!content) {
		set_why(why, whylen, "invalid_json", NULL);
		goto out;
	}
	const char *start;
	size_t len;
	json_span(content, &start, &len);
	while (len && (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n'))
		start++, len--;
	root = json_loadb(start, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		set_why(why, whylen, "invalid_json", NULL);
		goto out;
	}

	const json_t *v = json_object_get(root, "category");
	if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
		set_why(why, whylen, "missing_category", NULL);
		goto out;
	}
	const struct route_category *cat = NULL;
	for (size_t i = 0; json_is_string(v) && cats && i < ncats && !cat; i++)
		if (cats[i].key && strlen(cats[i].key) < sizeof out->category &&
		    strlen(cats[i].key) == json_string_length(v) && strcmp(cats[i].key, json_string_value(v)) == 0)
			cat = &cats[i];
	if (!cat) {
		set_why(why, whylen, "unknown_category", v);
		goto out;
	}
	snprintf(out->category, sizeof out->category, "%s", cat->key);

	v = json_object_get(root, "cost_tier");
	if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
		if (!route_tier_name(cat->tier)) {
			set_why(why, whylen, "missing_tier", NULL);
			goto out;
		}
		out->tier = cat->tier;
	} else {
		out->tier = json_is_string(v) ? route_tier_index(json_string_value(v)) : ROUTE_TIER_NONE;
		if (out->tier < 0) {
			set_why(why, whylen, "unknown_tier", v);
			goto out;
		}
	}

	v = json_object_get(root, "confidence");
	if (!v || json_is_null(v)) {
		out->confidence = 0.5;     /* the original's default: the verdict itself is complete */
	} else if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1)) {
		set_why(why, whylen, "invalid_confidence", NULL);
		goto out;
	} else {
		out->confidence = json_number_value(v);
	}

	enum_field(root, "complexity", complexities, "medium", out->complexity, sizeof out->complexity);
	enum_field(root, "estimated_output_length", lengths, "medium", out->output_length, sizeof out->output_length);
	name_field(root, "language", "en", out->language, sizeof out->language);
	name_field(root, "domain", "", out->domain, sizeof out->domain);
	v = json_object_get(root, "conversation_turn");
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= INT_MAX)
		out->conversation_turn = (int)json_integer_value(v);
	out->has_image = json_is_true(json_object_get(root, "has_image"));
	out->frustration = json_is_true(json_object_get(root, "user_frustration_signal"));
	const char *rec = json_string_value(json_object_get(root, "recommended_model"));
	for (size_t i = 0; rec && models && i < nmodels; i++)
		if (models[i].id && strcmp(models[i].id, rec) == 0 && strlen(rec) < sizeof out->recommended) {
			snprintf(out->recommended, sizeof out->recommended, "%s", rec);
			break;
		}
	v = json_object_get(root, "reasoning");
	if (json_is_string(v))
		copy_line(out->reasoning, sizeof out->reasoning, json_string_value(v), json_string_length(v));
	rc = PRISM_OK;
out:
	json_decref(root);
	if (rc != PRISM_OK)
		answer_reset(out);
	return rc;
}

/* --- the call -------------------------------------------------------------------------------------------- */

static const char *
str_member(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : NULL;
}

/* The tenant's provider document with this _id (borrowed), or NULL. */
static const json_t *
tenant_provider(const json_t *tprov, const char *id)
{
	size_t i;
	const json_t *p;
	json_array_foreach(tprov, i, p) {
		const char *pid = str_member(p, "_id");
		if (pid && strcmp(pid, id) == 0)
			return p;
	}
	return NULL;
}

bool
classifier_configured(const json_t *tenant_doc, const json_t *tprov)
{
	const json_t *r = json_object_get(tenant_doc, "routing");
	const char *prov = str_member(r, "classifierProvider");
	return prov && str_member(r, "classifierModel") && tenant_provider(tprov, prov);
}

struct chain_entry {
	const char *provider, *model;
};

/* The primary, then at most CLASSIFIER_MAX_FALLBACKS fallbacks that name both a provider and a model.
 * Returns the count; 0 when the primary is not configured. */
static size_t
build_chain(const json_t *tenant_doc, struct chain_entry *c)
{
	const json_t *r = json_object_get(tenant_doc, "routing");
	size_t n = 0;
	c[0].provider = str_member(r, "classifierProvider");
	c[0].model = str_member(r, "classifierModel");
	if (!c[0].provider || !c[0].model)
		return 0;
	n = 1;
	size_t i;
	const json_t *f;
	json_array_foreach(json_object_get(r, "classifierFallbacks"), i, f) {
		if (n == 1 + CLASSIFIER_MAX_FALLBACKS)
			break;
		const char *p = str_member(f, "provider"), *m = str_member(f, "model");
		if (p && m) {
			c[n].provider = p;
			c[n].model = m;
			n++;
		}
	}
	return n;
}

static long
bounded_ms(long configured, long dflt, long remaining)
{
	long v = configured > 0 ? configured : dflt;
	return v < remaining ? v : remaining;
}

/* choices[0].message.content when it is a string, else NULL (borrowed). */
static const char *
reply_content(const json_t *body)
{
	const json_t *msg = json_object_get(json_array_get(json_object_get(body, "choices"), 0), "message");
	return json_string_value(json_object_get(msg, "content"));
}

static char *
bounded_copy(const char *s)
{
	size_t n = strlen(s);
	if (n > CLASSIFIER_MAX_REPLY) {
		n = CLASSIFIER_MAX_REPLY;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return xstrndup(s, n);
}

void
classifier_call(const struct classifier_request *rq, struct classifier_outcome *out)
{
	memset(out, 0, sizeof *out);
	int64_t t0 = clock_monotonic_ms();
	long budget = rq->timeout_ms > 0 ? rq->timeout_ms : CLASSIFIER_DEFAULT_TIMEOUT_MS;
	int64_t deadline = t0 + budget;
	struct chain_entry chain[1 + CLASSIFIER_MAX_FALLBACKS];
	size_t n = build_chain(rq->tenant_doc, chain);
	json_t *body = NULL;
	if (n == 0) {
		snprintf(out->error, sizeof out->error, "classifier_not_configured");
		goto out;
	}
	body = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:i, s:b}", "model", "", "messages", "role",
			 "system", "content", rq->system_prompt ? rq->system_prompt : "", "role", "user", "content",
			 rq->user_context ? rq->user_context : "", "temperature", 0, "max_tokens", REPLY_MAX_TOKENS,
			 "stream", 0);
	if (!body) {
		snprintf(out->error, sizeof out->error, "provider_error: cannot build the request");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct chain_entry *ce = &chain[i];
		long remaining = (long)(deadline - clock_monotonic_ms());
		if (remaining < MIN_CALL_MS) {
			snprintf(out->error, sizeof out->error, "timeout");
			break;
		}
		snprintf(out->model, sizeof out->model, "%s", ce->model);
		snprintf(out->provider_id, sizeof out->provider_id, "%s", ce->provider);
		const json_t *pdoc = tenant_provider(rq->tprov, ce->provider);
		if (!pdoc) {
			snprintf(out->error, sizeof out->error, "classifier_provider_not_of_tenant");
			log_warn("classifier: provider %s (model '%s') is not one of the tenant's: skipped", ce->provider,
				 ce->model);
			continue;
		}
		const char *pname = str_member(pdoc, "name") ? str_member(pdoc, "name") : ce->provider;
		if (rq->is_open && rq->is_open(rq->open_arg, ce->provider)) {
			snprintf(out->error, sizeof out->error, "circuit_open");
			log_warn("classifier: provider '%s' (model '%s') skipped: circuit open", pname, ce->model);
			continue;
		}
		const char *type = str_member(pdoc, "type") ? str_member(pdoc, "type") : "";
		const struct provider_ops *ops = provider_ops_for(type);
		if (!ops) {
			snprintf(out->error, sizeof out->error, "provider_error: provider type '%.32s' is not supported", type);
			log_warn("classifier: provider '%s' (model '%s') skipped: type '%s' not supported", pname, ce->model,
				 type);
			continue;
		}
		struct plan_target pt;
		char terr[256] = "";
		if (plan_target_open(rq->cfg, pdoc, &pt, terr, sizeof terr) != PRISM_OK) {
			plan_target_close(&pt);
			snprintf(out->error, sizeof out->error, "provider_error: the provider's credentials cannot be read");
			log_warn("classifier: %s", terr);
			continue;
		}
		struct provider_target *t = &pt.t;
		t->connect_timeout_ms = bounded_ms(t->connect_timeout_ms, PROVIDER_DEFAULT_CONNECT_MS, remaining);
		t->first_byte_timeout_ms = bounded_ms(t->first_byte_timeout_ms, PROVIDER_DEFAULT_FIRST_BYTE_MS, remaining);
		t->idle_timeout_ms = bounded_ms(t->idle_timeout_ms, PROVIDER_DEFAULT_IDLE_MS, remaining);
		t->total_timeout_ms = bounded_ms(t->total_timeout_ms, PROVIDER_DEFAULT_TOTAL_MS, remaining);
		json_object_set_new(body, "model", json_string(ce->model));

		struct provider_result r;
		memset(&r, 0, sizeof r);
		out->attempts++;
		enum prism_err e = ops->call(t, PROVIDER_CHAT, body, NULL, &r);
		plan_target_close(&pt);
		if (r.usage_reported) {
			struct price price;
			cost_price(rq->tenant_doc, pdoc, ce->model, &price);
			out->input_tokens += r.prompt_tokens;
			out->output_tokens += r.completion_tokens;
			out->cost_micro += cost_micro_usd(&price, r.prompt_tokens, r.completion_tokens);
		}
		const char *content =
			e == PRISM_OK && r.errclass == PE_NONE ? reply_content(provider_result_json(&r)) : NULL;
		if (content) {
			out->content = bounded_copy(content);
			out->ok = true;
			out->error[0] = '\0';
			provider_result_clear(&r);
			break;
		}
		bool timeout = e == PRISM_E_TIMEOUT || r.errclass == PE_TIMEOUT;
		const char *cls = e == PRISM_OK && r.errclass == PE_NONE ? "no_content"
				  : provider_errclass_name(r.errclass != PE_NONE ? r.errclass : timeout ? PE_TIMEOUT : PE_PROTOCOL);
		if (timeout) {
			snprintf(out->error, sizeof out->error, "timeout");
		} else {
			char msg[sizeof out->error - sizeof "provider_error: " + 1];
			const char *m = r.message[0] ? r.message : e == PRISM_OK ? "the reply has no text content" : cls;
			copy_line(msg, sizeof msg, m, strlen(m));
			snprintf(out->error, sizeof out->error, "provider_error: %s", msg);
		}
		log_warn("classifier: provider '%s' model '%s' failed (%s)%s%s", pname, ce->model, cls,
			 r.message[0] ? ": " : "", r.message);
		provider_result_clear(&r);
	}
out:
	json_decref(body);
	out->elapsed_ms = clock_monotonic_ms() - t0;
}

void
classifier_outcome_free(struct classifier_outcome *out)
{
	if (!out)
		return;
	free(out->content);
	out->content = NULL;
}
