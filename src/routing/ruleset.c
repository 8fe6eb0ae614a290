/* ruleset.c -- see ruleset.h.
 *
 * Fixes against the original (reference/original-gateway.md §5.5, §17):
 *   - keywords match on word boundaries, not as substrings (§17.13: "NDA" no longer matches "standard",
 *     "rce" no longer "source"), with plurals, '*' prefixes and keywords ending in punctuation ("ICD-");
 *   - images no longer pre-route with a nonsense confidence of 0.95 x codeLanguage and no tier (§17.5):
 *     they become vision_simple / vision_complex with at least the low tier, as a hint;
 *   - role patterns are PCRE2 with match, depth and heap limits; a bad pattern is refused when the rule
 *     set is saved instead of being skipped silently;
 *   - the always-high threshold never lowers a tier a rule raised.
 */
#include "config.h"
#include "routing/ruleset.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

/* A role pattern may backtrack this much per start position (PCRE2 counts per position) ... */
#define RS_MATCH_LIMIT 100000
#define RS_DEPTH_LIMIT 10000
#define RS_HEAP_LIMIT_KIB 8192
/* ... and all roles of one request together get this much time: a hostile pattern costs at most one
 * limit-bounded match beyond it, never a hung worker. */
#define RS_ROLES_BUDGET_US 20000

#define RS_PATTERN_FLAGS (PCRE2_CASELESS | PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | RS_INVALID_UTF)
#ifdef PCRE2_MATCH_INVALID_UTF
#define RS_INVALID_UTF PCRE2_MATCH_INVALID_UTF
#else
#define RS_INVALID_UTF 0
#endif

enum rs_search { RS_IN_ALL = 0, RS_IN_USER, RS_IN_SYSTEM };

struct rs_effect {
	char category[ROUTE_MAX_KEY];
	char domain[ROUTE_MAX_KEY];
	int tier_min, tier_max;            /* ROUTE_TIER_NONE when not set */
};

struct rs_keyword {
	unsigned char *text;               /* folded; whitespace runs as one ' ' */
	size_t len;
	size_t seglen;                     /* bytes before the first ' ': the part memmem looks for */
	bool need_start, need_end;         /* a word boundary before / after (with an optional s/es) */
};

struct rs_rule {
	char name[RULESET_MAX_NAME + 1];
	enum rs_search where;
	struct rs_keyword *kw;
	size_t nkw, required;
	struct rs_effect eff;
};

struct rs_role {
	char name[RULESET_MAX_NAME + 1];
	pcre2_code *code;
	struct rs_effect eff;
};

struct rs_priv {
	struct rs_rule *rules;             /* enabled ones only, in document order */
	size_t nrules;
	struct rs_role *roles;             /* enabled ones only */
	size_t nroles;
	bool need_user, need_system, need_all;
};

/* --- text folding and the keyword matcher --------------------------------------------------------------- */

static bool
is_word(unsigned char c)
{
	return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The lowercase of a code point below U+0800 whose lowercase is also below U+0800 and above U+007F, so
 * that folding keeps every byte offset (ASCII is handled by the caller). */
static unsigned
fold2(unsigned cp)
{
	if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
		return cp + 0x20;
	if ((cp >= 0x100 && cp <= 0x12F) || (cp >= 0x132 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177))
		return cp | 1;
	if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
		return (cp & 1) ? cp + 1 : cp;
	if (cp == 0x178)
		return 0xFF;
	if (cp == 0x386)
		return 0x3AC;
	if (cp >= 0x388 && cp <= 0x38A)
		return cp + 0x25;
	if (cp == 0x38C)
		return 0x3CC;
	if (cp == 0x38E || cp == 0x38F)
		return cp + 0x3F;
	if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2)
		return cp + 0x20;
	if (cp == 0x3C2)
		return 0x3C3;                  /* final sigma folds with sigma */
	if (cp >= 0x410 && cp <= 0x42F)
		return cp + 0x20;
	if (cp >= 0x400 && cp <= 0x40F)
		return cp + 0x50;
	return cp;
}

/* Case-folds n bytes of UTF-8 into out (n bytes, same offsets); invalid sequences are copied. */
static void
fold(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = in[i];
		if (c < 0x80) {
			out[i++] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
		} else if (c >= 0xC2 && c <= 0xDF && i + 1 < n && (in[i + 1] & 0xC0) == 0x80) {
			unsigned cp = fold2(((unsigned)(c & 0x1F) << 6) | (in[i + 1] & 0x3F));
			out[i] = (unsigned char)(0xC0 | (cp >> 6));
			out[i + 1] = (unsigned char)(0x80 | (cp & 0x3F));
			i += 2;
		} else {
			out[i] = c;
			i++;
		}
	}
}

/* Prepares a keyword: folded, trimmed, a trailing '*' turned into "prefix", whitespace runs collapsed.
 * False when nothing is left. */
static bool
keyword_prepare(const char *raw, struct rs_keyword *k)
{
	size_t n = strlen(raw);
	unsigned char *f = xmalloc(n + 1);
	fold((const unsigned char *)raw, n, f);
	size_t b = 0, e = n;
	while (b < e && is_space(f[b]))
		b++;
	while (e > b && is_space(f[e - 1]))
		e--;
	bool prefix = e > b && f[e - 1] == '*';
	if (prefix) {
		e--;
		while (e > b && is_space(f[e - 1]))
			e--;
	}
	if (e == b) {
		free(f);
		return false;
	}
	size_t out = 0;
	for (size_t i = b; i < e; i++) {
		if (is_space(f[i])) {
			if (out && f[out - 1] == ' ')
				continue;
			f[out++] = ' ';
		} else {
			f[out++] = f[i];
		}
	}
	f[out] = '\0';
	k->text = f;
	k->len = out;
	const unsigned char *sp = memchr(f, ' ', out);
	k->seglen = sp ? (size_t)(sp - f) : out;
	k->need_start = is_word(f[0]);
	k->need_end = !prefix && is_word(f[out - 1]);
	return true;
}

/* The rest of the keyword after its first segment, from text offset at; *end gets the offset after it. */
static bool
rest_matches(const struct rs_keyword *k, const unsigned char *t, size_t n, size_t at, size_t *end)
{
	for (size_t i = k->seglen; i < k->len; i++) {
		if (k->text[i] == ' ') {
			if (at >= n || !is_space(t[at]))
				return false;
			while (at < n && is_space(t[at]))
				at++;
		} else {
			if (at >= n || t[at] != k->text[i])
				return false;
			at++;
		}
	}
	*end = at;
	return true;
}

static bool
end_ok(const struct rs_keyword *k, const unsigned char *t, size_t n, size_t e)
{
	if (!k->need_end || e == n || !is_word(t[e]))
		return true;
	if (t[e] == 's' && (e + 1 == n || !is_word(t[e + 1])))
		return true;
	return t[e] == 'e' && e + 1 < n && t[e + 1] == 's' && (e + 2 == n || !is_word(t[e + 2]));
}

/* Does the folded text contain the keyword? */
static bool
keyword_in(const struct rs_keyword *k, const unsigned char *t, size_t n)
{
	size_t from = 0;
	while (from < n && n - from >= k->seglen) {
		const unsigned char *hit = memmem(t + from, n - from, k->text, k->seglen);
		if (!hit)
			return false;
		size_t pos = (size_t)(hit - t), e;
		if ((!k->need_start || pos == 0 || !is_word(t[pos - 1])) && rest_matches(k, t, n, pos + k->seglen, &e) &&
		    end_ok(k, t, n, e))
			return true;
		from = pos + 1;
	}
	return false;
}

bool
ruleset_keyword_match(const char *keyword, const char *text, size_t len)
{
	struct rs_keyword k;
	if (!keyword || !text || !keyword_prepare(keyword, &k))
		return false;
	unsigned char *t = xmalloc(len + 1);
	fold((const unsigned char *)text, len, t);
	bool hit = keyword_in(&k, t, len);
	free(t);
	free(k.text);
	return hit;
}

/* --- role patterns ---------------------------------------------------------------------------------------- */

static pthread_once_t mctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *mctx;      /* set once, then only read: PCRE2 allows sharing it */

static void
mctx_init(void)
{
	mctx = pcre2_match_context_create(NULL);
	if (!mctx) {
		log_error("ruleset: out of memory creating the PCRE2 match context");
		abort();
	}
	pcre2_set_match_limit(mctx, RS_MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, RS_DEPTH_LIMIT);
	pcre2_set_heap_limit(mctx, RS_HEAP_LIMIT_KIB);
}

/* Compiles a role pattern; NULL with "<offset>: <PCRE2 message>" style detail in err. */
static pcre2_code *
pattern_compile(const char *pattern, bool jit, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, strlen(pattern), RS_PATTERN_FLAGS, &code, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];
		if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
			snprintf((char *)msg, sizeof msg, "error %d", code);
		snprintf(err, errlen, "invalid regular expression at offset %zu: %s", (size_t)off, (const char *)msg);
		return NULL;
	}
	if (jit)
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* without JIT the interpreter runs it */
	return re;
}

/* 1 match, 0 no match; a limit hit, invalid input or any other error counts as no match. */
static int
pattern_run(const pcre2_code *re, const char *text, size_t len, pcre2_match_data *md)
{
	pthread_once(&mctx_once, mctx_init);
	int rc = pcre2_match(re, (PCRE2_SPTR)text, len, 0, 0, md, mctx);
	return rc >= 0 ? 1 : 0;
}

int
ruleset_pattern_match(const char *pattern, const char *text, size_t len, char *err, size_t errlen)
{
	pcre2_code *re = pattern_compile(pattern ? pattern : "", true, err, errlen);
	if (!re)
		return -1;
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	if (!md) {
		log_error("ruleset: out of memory creating PCRE2 match data");
		abort();
	}
	int rc = pattern_run(re, text ? text : "", text ? len : 0, md);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return rc;
}

/* --- validation: one pass that checks a document and writes the complete normalised one ------------------ */

struct vctx {
	char *err;
	size_t errlen;
	bool assign_ids;                   /* give sub-documents without _id a new one */
};

static bool vfail(struct vctx *v, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool
vfail(struct vctx *v, const char *path, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (v->err && v->errlen)
		snprintf(v->err, v->errlen, "%s: %s", path, why);
	return false;
}

static bool
absent(const json_t *val)
{
	return !val || json_is_null(val);
}

/* A string of at most maxlen bytes (nonblank: with a non-space character). */
static bool
v_string(struct vctx *v, const char *path, const json_t *val, size_t maxlen, bool nonblank, const char **out)
{
	if (!json_is_string(val))
		return vfail(v, path, "must be a string");
	const char *s = json_string_value(val);
	size_t len = json_string_length(val);
	if (strlen(s) != len)
		return vfail(v, path, "must not contain NUL characters");
	if (len > maxlen)
		return vfail(v, path, "must be at most %zu bytes long", maxlen);
	if (nonblank) {
		bool blank = true;
		for (const char *p = s; *p && blank; p++)
			blank = is_space((unsigned char)*p);
		if (blank)
			return vfail(v, path, "must not be empty");
	}
	*out = s;
	return true;
}

/* An integer (an integral real too) in [min, max]; `why` is the whole complaint. */
static bool
v_int(struct vctx *v, const char *path, const json_t *val, long min, long max, const char *why, long *out)
{
	double d;
	if (json_is_integer(val))
		d = (double)json_integer_value(val);
	else if (json_is_real(val) && isfinite(json_real_value(val)) && floor(json_real_value(val)) == json_real_value(val))
		d = json_real_value(val);
	else
		return vfail(v, path, "%s", why);
	if (d < (double)min || d > (double)max)
		return vfail(v, path, "%s", why);
	*out = (long)d;
	return true;
}

static bool
v_bool(struct vctx *v, const char *path, const json_t *val, bool dflt, bool *out)
{
	if (absent(val)) {
		*out = dflt;
		return true;
	}
	if (!json_is_boolean(val))
		return vfail(v, path, "must be a boolean");
	*out = json_is_true(val);
	return true;
}

/* One of choices (NULL-terminated); absent gives choices[0]. */
static bool
v_enum(struct vctx *v, const char *path, const json_t *val, const char *const *choices, const char **out)
{
	if (absent(val)) {
		*out = choices[0];
		return true;
	}
	const char *s = json_string_value(val);
	for (size_t i = 0; s && choices[i]; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = choices[i];
			return true;
		}
	}
	char list[128] = "";
	size_t used = 0;
	for (size_t i = 0; choices[i] && used < sizeof list; i++)
		used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
	return vfail(v, path, "must be one of %s", list);
}

/* A sub-object; NULL (absent or null) is fine. */
static bool
v_object(struct vctx *v, const char *path, const json_t *val, const json_t **out)
{
	*out = NULL;
	if (absent(val))
		return true;
	if (!json_is_object(val))
		return vfail(v, path, "must be an object");
	*out = val;
	return true;
}

/* "" or one of the eight tiers. */
static bool
v_tier(struct vctx *v, const char *path, const json_t *val, const char **out)
{
	if (absent(val)) {
		*out = "";
		return true;
	}
	const char *s = json_string_value(val);
	if (s && (!*s || route_tier_index(s) >= 0)) {
		*out = s;
		return true;
	}
	return vfail(v, path, "must be one of \"\", micro, minimal, low, medium, advanced, high, ultra, critical");
}

/* A sub-document's _id: kept when valid, new when absent; ids[] collects them to refuse duplicates. */
static bool
v_subid(struct vctx *v, const char *path, const json_t *val, char (*ids)[25], size_t n, json_t *out)
{
	char id[25];
	if (absent(val)) {
		if (!v->assign_ids)
			return true;
		store_new_id(id);
	} else {
		const char *s = json_string_value(val);
		if (!s || !store_id_valid(s))
			return vfail(v, path, "must be a 24-hex id");
		snprintf(id, sizeof id, "%s", s);
		for (size_t i = 0; i < n; i++)
			if (strcmp(ids[i], id) == 0)
				return vfail(v, path, "duplicate id %s", id);
	}
	snprintf(ids[n], sizeof ids[n], "%s", id);
	json_object_set_new(out, "_id", json_string(id));
	return true;
}

/* An effect's category: a category key (lowercase letters, digits, '_'), or "". */
static bool
v_category(struct vctx *v, const char *path, const json_t *val, const char **out)
{
	*out = "";
	if (absent(val))
		return true;
	if (!v_string(v, path, val, ROUTE_MAX_KEY - 1, false, out))
		return false;
	for (const char *p = *out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return vfail(v, path, "may contain only lowercase letters, digits and underscores");
	return true;
}

/* effect {category, tierMin[, tierMax], domain}; with_max for keyword rules. */
static bool
v_effect(struct vctx *v, const char *base, const json_t *val, bool with_max, json_t *out)
{
	char path[128];
	const json_t *e;
	const char *cat, *tmin, *tmax = "", *dom = "";
	snprintf(path, sizeof path, "%s.effect", base);
	if (!v_object(v, path, val, &e))
		return false;
	snprintf(path, sizeof path, "%s.effect.category", base);
	if (!v_category(v, path, json_object_get(e, "category"), &cat))
		return false;
	snprintf(path, sizeof path, "%s.effect.tierMin", base);
	if (!v_tier(v, path, json_object_get(e, "tierMin"), &tmin))
		return false;
	snprintf(path, sizeof path, "%s.effect.tierMax", base);
	if (with_max && !v_tier(v, path, json_object_get(e, "tierMax"), &tmax))
		return false;
	snprintf(path, sizeof path, "%s.effect.domain", base);
	if (!absent(json_object_get(e, "domain")) &&
	    !v_string(v, path, json_object_get(e, "domain"), ROUTE_MAX_KEY - 1, false, &dom))
		return false;
	json_t *o = json_pack("{s:s, s:s}", "category", cat, "tierMin", tmin);
	if (with_max)
		json_object_set_new(o, "tierMax", json_string(tmax));
	json_object_set_new(o, "domain", json_string(dom));
	json_object_set_new(out, "effect", o);
	return true;
}

static const char *const thr_names[5] = { "micro", "minimal", "low", "medium", "alwaysHigh" };
static const long thr_defaults[5] = { 150, 500, 2000, 15000, 50000 };
static const char *const weight_names[5] = { "tokenCount", "systemPromptRole", "contentKeywords", "codeLanguage",
					     "conversationTurns" };
static const double weight_defaults[5] = { 0.8, 0.9, 0.85, 0.7, 0.4 };
static const char *const match_choices[] = { "any", "all", NULL };
static const char *const search_choices[] = { "all", "user", "system", NULL };
static const char *const strategy_choices[] = { "truncate", "metadata_only", "summary", NULL };
static const char *const cost_choices[] = { "balanced", "economy", "quality", NULL };

static bool
v_thresholds(struct vctx *v, const json_t *src, json_t *out)
{
	const json_t *o;
	if (!v_object(v, "tokenThresholds", json_object_get(src, "tokenThresholds"), &o))
		return false;
	json_t *t = json_object();
	json_object_set_new(out, "tokenThresholds", t);
	long prev = -1;
	int prev_i = -1;
	for (int i = 0; i < 5; i++) {
		char path[64];
		snprintf(path, sizeof path, "tokenThresholds.%s", thr_names[i]);
		json_t *val = json_object_get(o, thr_names[i]);
		long n = thr_defaults[i];
		if (val && json_is_null(val)) {
			json_object_set_new(t, thr_names[i], json_null());   /* this threshold is not used */
			continue;
		}
		if (val && !v_int(v, path, val, 0, RULESET_MAX_THRESHOLD, "must be a non-negative integer", &n))
			return false;
		if (n > RULESET_MAX_THRESHOLD)
			return vfail(v, path, "must be at most %ld", RULESET_MAX_THRESHOLD);
		if (prev_i >= 0 && n < prev)
			return vfail(v, path, "must not be below tokenThresholds.%s (%ld): the thresholds must not "
				     "decrease from micro to alwaysHigh", thr_names[prev_i], prev);
		prev = n;
		prev_i = i;
		json_object_set_new(t, thr_names[i], json_integer(n));
	}
	return true;
}

static bool
v_weights(struct vctx *v, const json_t *src, json_t *out)
{
	const json_t *o;
	if (!v_object(v, "signalWeights", json_object_get(src, "signalWeights"), &o))
		return false;
	json_t *w = json_object();
	json_object_set_new(out, "signalWeights", w);
	for (int i = 0; i < 5; i++) {
		json_t *val = json_object_get(o, weight_names[i]);
		double d = weight_defaults[i];
		if (!absent(val)) {
			d = json_is_number(val) ? json_number_value(val) : -1;
			if (!json_is_number(val) || !isfinite(d) || d < 0 || d > 1) {
				char path[64];
				snprintf(path, sizeof path, "signalWeights.%s", weight_names[i]);
				return vfail(v, path, "must be a number between 0 and 1");
			}
		}
		json_object_set_new(w, weight_names[i], json_real(d));
	}
	return true;
}

static bool
v_turns(struct vctx *v, const json_t *src, json_t *out)
{
	const json_t *o;
	bool enabled = true;
	long threshold = 4;
	if (!v_object(v, "turnUpgrade", json_object_get(src, "turnUpgrade"), &o) ||
	    !v_bool(v, "turnUpgrade.enabled", json_object_get(o, "enabled"), true, &enabled))
		return false;
	json_t *val = json_object_get(o, "threshold");
	if (!absent(val) && !v_int(v, "turnUpgrade.threshold", val, 1, 1000, "must be an integer between 1 and 1000",
				   &threshold))
		return false;
	json_object_set_new(out, "turnUpgrade", json_pack("{s:b, s:I}", "enabled", enabled, "threshold",
							  (json_int_t)threshold));
	return true;
}

static bool
v_classifier(struct vctx *v, const json_t *src, json_t *out)
{
	const json_t *o;
	const char *strategy;
	double conf = 0.65;
	long limit = 4000;
	if (!v_object(v, "classifier", json_object_get(src, "classifier"), &o))
		return false;
	json_t *val = json_object_get(o, "confidenceThreshold");
	if (!absent(val)) {
		conf = json_is_number(val) ? json_number_value(val) : -1;
		if (!json_is_number(val) || !isfinite(conf) || conf < 0 || conf > 1)
			return vfail(v, "classifier.confidenceThreshold", "must be a number between 0 and 1");
	}
	val = json_object_get(o, "contextLimitTokens");
	if (!absent(val) && !v_int(v, "classifier.contextLimitTokens", val, 500, 2000000,
				   "must be an integer between 500 and 2000000", &limit))
		return false;
	if (!v_enum(v, "classifier.contextStrategy", json_object_get(o, "contextStrategy"), strategy_choices, &strategy))
		return false;
	json_object_set_new(out, "classifier", json_pack("{s:f, s:I, s:s}", "confidenceThreshold", conf,
							 "contextLimitTokens", (json_int_t)limit, "contextStrategy", strategy));
	return true;
}

/* name (required) and enabled of a rule or role. */
static bool
v_named(struct vctx *v, const char *base, const json_t *in, json_t *out)
{
	char path[96];
	const char *name = NULL;
	bool enabled = true;
	snprintf(path, sizeof path, "%s.name", base);
	json_t *val = json_object_get(in, "name");
	if (absent(val))
		return vfail(v, path, "is required");
	if (!v_string(v, path, val, RULESET_MAX_NAME, true, &name))
		return false;
	snprintf(path, sizeof path, "%s.enabled", base);
	if (!v_bool(v, path, json_object_get(in, "enabled"), true, &enabled))
		return false;
	json_object_set_new(out, "name", json_string(name));
	json_object_set_new(out, "enabled", json_boolean(enabled));
	return true;
}

static bool
v_rule(struct vctx *v, size_t idx, const json_t *in, char (*ids)[25], json_t *out)
{
	char base[48], path[96];
	snprintf(base, sizeof base, "keywordRules[%zu]", idx);
	if (!json_is_object(in))
		return vfail(v, base, "must be an object");
	snprintf(path, sizeof path, "%s._id", base);
	if (!v_subid(v, path, json_object_get(in, "_id"), ids, idx, out) || !v_named(v, base, in, out))
		return false;
	snprintf(path, sizeof path, "%s.keywords", base);
	json_t *kws = json_object_get(in, "keywords");
	if (!json_is_array(kws) || json_array_size(kws) == 0 || json_array_size(kws) > RULESET_MAX_KEYWORDS)
		return vfail(v, path, "must be an array of 1 to %d keywords", RULESET_MAX_KEYWORDS);
	json_t *list = json_array();
	json_object_set_new(out, "keywords", list);
	size_t i;
	json_t *kw;
	json_array_foreach(kws, i, kw) {
		const char *s;
		struct rs_keyword k;
		snprintf(path, sizeof path, "%s.keywords[%zu]", base, i);
		if (!v_string(v, path, kw, RULESET_MAX_KEYWORD, true, &s))
			return false;
		if (!keyword_prepare(s, &k))
			return vfail(v, path, "must have more than a '*'");
		free(k.text);
		json_array_append_new(list, json_string(s));
	}
	const char *match, *where;
	long min = 1;
	snprintf(path, sizeof path, "%s.match", base);
	if (!v_enum(v, path, json_object_get(in, "match"), match_choices, &match))
		return false;
	snprintf(path, sizeof path, "%s.minMatches", base);
	json_t *val = json_object_get(in, "minMatches");
	if (!absent(val) && !v_int(v, path, val, 1, RULESET_MAX_KEYWORDS, "must be an integer between 1 and 200", &min))
		return false;
	if (strcmp(match, "any") == 0 && (size_t)min > json_array_size(kws))
		return vfail(v, path, "must not exceed the number of keywords (%zu)", json_array_size(kws));
	snprintf(path, sizeof path, "%s.searchIn", base);
	if (!v_enum(v, path, json_object_get(in, "searchIn"), search_choices, &where))
		return false;
	json_object_set_new(out, "match", json_string(match));
	json_object_set_new(out, "minMatches", json_integer(min));
	json_object_set_new(out, "searchIn", json_string(where));
	return v_effect(v, base, json_object_get(in, "effect"), true, out);
}

static bool
v_role(struct vctx *v, size_t idx, const json_t *in, char (*ids)[25], json_t *out)
{
	char base[48], path[96];
	snprintf(base, sizeof base, "systemPromptRoles[%zu]", idx);
	if (!json_is_object(in))
		return vfail(v, base, "must be an object");
	snprintf(path, sizeof path, "%s._id", base);
	if (!v_subid(v, path, json_object_get(in, "_id"), ids, idx, out) || !v_named(v, base, in, out))
		return false;
	snprintf(path, sizeof path, "%s.pattern", base);
	json_t *val = json_object_get(in, "pattern");
	const char *pattern;
	if (absent(val))
		return vfail(v, path, "is required");
	if (!v_string(v, path, val, RULESET_MAX_PATTERN, true, &pattern))
		return false;
	char why[224];
	pcre2_code *re = pattern_compile(pattern, false, why, sizeof why);
	if (!re)
		return vfail(v, path, "%s", why);
	pcre2_code_free(re);
	json_object_set_new(out, "pattern", json_string(pattern));
	return v_effect(v, base, json_object_get(in, "effect"), false, out);
}

/* keywordRules or systemPromptRoles. */
static bool
v_list(struct vctx *v, const json_t *src, const char *field, size_t max, json_t *out)
{
	json_t *val = json_object_get(src, field);
	json_t *list = json_array();
	json_object_set_new(out, field, list);
	if (absent(val))
		return true;
	if (!json_is_array(val))
		return vfail(v, field, "must be an array");
	if (json_array_size(val) > max)
		return vfail(v, field, "must have at most %zu entries", max);
	char(*ids)[25] = xcalloc(max ? max : 1, sizeof *ids);
	bool ok = true;
	size_t i;
	json_t *e;
	json_array_foreach(val, i, e) {
		json_t *o = json_object();
		json_array_append_new(list, o);
		ok = strcmp(field, "keywordRules") == 0 ? v_rule(v, i, e, ids, o) : v_role(v, i, e, ids, o);
		if (!ok)
			break;
	}
	free(ids);
	return ok;
}

/* The whole document from src (a body, a body merged onto a stored document, or a stored document);
 * every field validated, defaults filled in.  NULL with the complaint in v->err. */
static json_t *
build(struct vctx *v, const json_t *src)
{
	json_t *out = json_object(), *val;
	const char *name = NULL, *desc = "", *tenant = NULL, *cost;
	bool global = false;
	long boost = 0;

	val = json_object_get(src, "name");
	if (absent(val)) {
		vfail(v, "name", "is required");
		goto fail;
	}
	if (!v_string(v, "name", val, RULESET_MAX_NAME, true, &name))
		goto fail;
	val = json_object_get(src, "description");
	if (!absent(val) && !v_string(v, "description", val, RULESET_MAX_DESCRIPTION, false, &desc))
		goto fail;
	if (!v_bool(v, "isGlobalDefault", json_object_get(src, "isGlobalDefault"), false, &global))
		goto fail;
	val = json_object_get(src, "tenantId");
	if (json_is_string(val) && !*json_string_value(val))
		val = NULL;   /* the original's UI sends "" for "no tenant" */
	if (!absent(val)) {
		tenant = json_string_value(val);
		if (!tenant || !store_id_valid(tenant)) {
			vfail(v, "tenantId", "must be a 24-hex id or null");
			goto fail;
		}
	}
	if (global && tenant) {
		/* the global default serves every tenant without a rule set of its own; a tenant's would leak */
		vfail(v, "isGlobalDefault", "a tenant's rule set cannot be the global default (clear tenantId)");
		goto fail;
	}
	json_object_set_new(out, "name", json_string(name));
	json_object_set_new(out, "description", json_string(desc));
	json_object_set_new(out, "isGlobalDefault", json_boolean(global));
	json_object_set_new(out, "tenantId", tenant ? json_string(tenant) : json_null());
	if (!v_thresholds(v, src, out) || !v_weights(v, src, out) || !v_turns(v, src, out) ||
	    !v_list(v, src, "keywordRules", RULESET_MAX_RULES, out) ||
	    !v_list(v, src, "systemPromptRoles", RULESET_MAX_ROLES, out) || !v_classifier(v, src, out))
		goto fail;
	if (!v_enum(v, "costMode", json_object_get(src, "costMode"), cost_choices, &cost))
		goto fail;
	val = json_object_get(src, "tierBoost");
	if (!absent(val) && !v_int(v, "tierBoost", val, -2, 2, "must be an integer between -2 and 2", &boost))
		goto fail;
	json_object_set_new(out, "costMode", json_string(cost));
	json_object_set_new(out, "tierBoost", json_integer(boost));
	return out;
fail:
	json_decref(out);
	return NULL;
}

static const char *const top_fields[] = {
	"name", "description", "isGlobalDefault", "tenantId", "tokenThresholds", "signalWeights", "turnUpgrade",
	"keywordRules", "systemPromptRoles", "classifier", "costMode", "tierBoost", NULL
};

static bool
is_subobject(const char *field)
{
	return strcmp(field, "tokenThresholds") == 0 || strcmp(field, "signalWeights") == 0 ||
	       strcmp(field, "turnUpgrade") == 0 || strcmp(field, "classifier") == 0;
}

json_t *
ruleset_normalise(const json_t *body, const json_t *existing, char *err, size_t errlen)
{
	struct vctx v = { err, errlen, true };
	if (!json_is_object(body)) {
		vfail(&v, "body", "must be a JSON object");
		return NULL;
	}
	/* PUT: what the body omits keeps its stored value, and inside the four settings objects each field
	 * the body omits too. */
	json_t *src = json_object();
	for (size_t i = 0; top_fields[i]; i++) {
		const char *f = top_fields[i];
		json_t *bv = json_object_get(body, f), *ev = existing ? json_object_get(existing, f) : NULL;
		if (bv && json_is_object(bv) && json_is_object(ev) && is_subobject(f)) {
			json_t *m = json_deep_copy(ev);
			json_object_update(m, bv);
			json_object_set_new(src, f, m);
		} else if (bv) {
			json_object_set(src, f, bv);
		} else if (ev) {
			json_object_set(src, f, ev);
		}
	}
	json_t *out = build(&v, src);
	json_decref(src);
	if (!out)
		return NULL;
	json_object_set_new(out, "isDefault", json_boolean(existing && json_is_true(json_object_get(existing, "isDefault"))));
	return out;
}

/* --- compilation ------------------------------------------------------------------------------------------ */

static void
copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void
effect_read(const json_t *e, struct rs_effect *out)
{
	copy_str(out->category, sizeof out->category, json_string_value(json_object_get(e, "category")));
	copy_str(out->domain, sizeof out->domain, json_string_value(json_object_get(e, "domain")));
	out->tier_min = route_tier_index(json_string_value(json_object_get(e, "tierMin")));
	out->tier_max = route_tier_index(json_string_value(json_object_get(e, "tierMax")));
}

static long
thr_read(const json_t *t, const char *name)
{
	json_t *v = json_object_get(t, name);
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static double
num_read(const json_t *o, const char *name)
{
	return json_number_value(json_object_get(o, name));
}

struct ruleset *
ruleset_compile(const json_t *doc, char *err, size_t errlen)
{
	struct vctx v = { err, errlen, false };
	if (!json_is_object(doc)) {
		vfail(&v, "rule set", "must be a JSON object");
		return NULL;
	}
	json_t *n = build(&v, doc);
	if (!n)
		return NULL;
	struct ruleset *rs = xcalloc(1, sizeof *rs);
	struct rs_priv *p = xcalloc(1, sizeof *p);
	rs->priv = p;
	const char *id = json_string_value(json_object_get(doc, "_id"));
	copy_str(rs->id, sizeof rs->id, id && store_id_valid(id) ? id : "");
	copy_str(rs->name, sizeof rs->name, json_string_value(json_object_get(n, "name")));
	const char *tenant = json_string_value(json_object_get(n, "tenantId"));
	copy_str(rs->tenant_id, sizeof rs->tenant_id, tenant);
	rs->global_default = json_is_true(json_object_get(n, "isGlobalDefault"));
	rs->is_default = json_is_true(json_object_get(doc, "isDefault"));

	json_t *t = json_object_get(n, "tokenThresholds");
	rs->thr_micro = thr_read(t, "micro");
	rs->thr_minimal = thr_read(t, "minimal");
	rs->thr_low = thr_read(t, "low");
	rs->thr_medium = thr_read(t, "medium");
	rs->thr_always_high = thr_read(t, "alwaysHigh");
	json_t *w = json_object_get(n, "signalWeights");
	rs->w_token_count = num_read(w, "tokenCount");
	rs->w_system_prompt_role = num_read(w, "systemPromptRole");
	rs->w_content_keywords = num_read(w, "contentKeywords");
	rs->w_code_language = num_read(w, "codeLanguage");
	json_t *tu = json_object_get(n, "turnUpgrade");
	rs->turn_upgrade = json_is_true(json_object_get(tu, "enabled"));
	rs->turn_threshold = (int)json_integer_value(json_object_get(tu, "threshold"));
	json_t *c = json_object_get(n, "classifier");
	rs->confidence_threshold = num_read(c, "confidenceThreshold");
	rs->context_limit_tokens = (long)json_integer_value(json_object_get(c, "contextLimitTokens"));
	const char *strategy = json_string_value(json_object_get(c, "contextStrategy"));
	rs->context_strategy = strcmp(strategy, "metadata_only") == 0 ? RS_CTX_METADATA_ONLY :
			       strcmp(strategy, "summary") == 0	      ? RS_CTX_SUMMARY :
									RS_CTX_TRUNCATE;
	const char *cost = json_string_value(json_object_get(n, "costMode"));
	rs->cost_mode = strcmp(cost, "economy") == 0 ? ROUTE_COST_ECONOMY :
			strcmp(cost, "quality") == 0 ? ROUTE_COST_QUALITY :
						       ROUTE_COST_BALANCED;
	rs->tier_boost = (int)json_integer_value(json_object_get(n, "tierBoost"));

	json_t *rules = json_object_get(n, "keywordRules"), *roles = json_object_get(n, "systemPromptRoles"), *e;
	size_t i;
	p->rules = xcalloc(json_array_size(rules) + 1, sizeof *p->rules);
	json_array_foreach(rules, i, e) {
		if (!json_is_true(json_object_get(e, "enabled")))
			continue;
		struct rs_rule *r = &p->rules[p->nrules++];
		copy_str(r->name, sizeof r->name, json_string_value(json_object_get(e, "name")));
		const char *where = json_string_value(json_object_get(e, "searchIn"));
		r->where = strcmp(where, "user") == 0 ? RS_IN_USER : strcmp(where, "system") == 0 ? RS_IN_SYSTEM : RS_IN_ALL;
		p->need_user |= r->where == RS_IN_USER;
		p->need_system |= r->where == RS_IN_SYSTEM;
		p->need_all |= r->where == RS_IN_ALL;
		json_t *kws = json_object_get(e, "keywords"), *kw;
		size_t j;
		r->kw = xcalloc(json_array_size(kws), sizeof *r->kw);
		json_array_foreach(kws, j, kw) {
			if (keyword_prepare(json_string_value(kw), &r->kw[r->nkw]))   /* always, after build */
				r->nkw++;
		}
		bool all = strcmp(json_string_value(json_object_get(e, "match")), "all") == 0;
		r->required = all ? r->nkw : (size_t)json_integer_value(json_object_get(e, "minMatches"));
		effect_read(json_object_get(e, "effect"), &r->eff);
	}
	p->roles = xcalloc(json_array_size(roles) + 1, sizeof *p->roles);
	json_array_foreach(roles, i, e) {
		if (!json_is_true(json_object_get(e, "enabled")))
			continue;
		char why[224];
		pcre2_code *re = pattern_compile(json_string_value(json_object_get(e, "pattern")), true, why, sizeof why);
		if (!re) {   /* build compiled it already: only a library failure gets here */
			snprintf(err, errlen, "systemPromptRoles[%zu].pattern: %s", i, why);
			json_decref(n);
			ruleset_free(rs);
			return NULL;
		}
		struct rs_role *r = &p->roles[p->nroles++];
		r->code = re;
		copy_str(r->name, sizeof r->name, json_string_value(json_object_get(e, "name")));
		effect_read(json_object_get(e, "effect"), &r->eff);
	}
	json_decref(n);
	return rs;
}

void
ruleset_free(struct ruleset *rs)
{
	if (!rs)
		return;
	struct rs_priv *p = rs->priv;
	if (p) {
		for (size_t i = 0; i < p->nrules; i++) {
			for (size_t j = 0; j < p->rules[i].nkw; j++)
				free(p->rules[i].kw[j].text);
			free(p->rules[i].kw);
		}
		for (size_t i = 0; i < p->nroles; i++)
			pcre2_code_free(p->roles[i].code);
		free(p->rules);
		free(p->roles);
		free(p);
	}
	free(rs);
}

/* --- the default rule set --------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	const char *const keywords[12];
	int min;
	const char *category, *tier_min, *tier_max, *domain;
} default_rules[] = {
	{ "Security Escalation",
	  { "vulnerability", "CVE", "exploit", "penetration test", "OWASP", "private key", "injection", "XSS", "CSRF",
	    "authentication bypass", NULL },
	  2, "code_security_review", "high", "", "security" },
	{ "Legal / Compliance",
	  { "GDPR", "lawsuit", "legal advice", "NDA", "intellectual property", "liability clause", "compliance audit",
	    "terms of service", "regulation", NULL },
	  2, "legal_analysis", "advanced", "", "legal" },
	{ "Medical / Clinical",
	  { "diagnosis", "clinical trial", "symptoms", "patient history", "prescription", "ICD-", "drug interaction",
	    "pathology", "dosage", NULL },
	  2, "medical_analysis", "critical", "", "medical" },
	{ "Finance / Investment",
	  { "portfolio", "investment strategy", "stock valuation", "financial model", "derivative", "hedge fund",
	    "risk assessment", "earnings report", "P&L statement", NULL },
	  2, "financial_analysis", "advanced", "", "finance" },
	{ "Chat Title Generation",
	  { "reply with a title", "title for this chat", "title for the chat", "generate a title",
	    "name this conversation", "chat title", NULL },
	  1, "chat_title_generation", "", "micro", "" },
};

static const struct {
	const char *name, *pattern, *category, *tier_min, *domain;
} default_roles[] = {
	{ "Security Auditor", "security.*(auditor|analyst|engineer|researcher)|penetration.?test|red.?team",
	  "code_security_review", "high", "security" },
	{ "Customer Support", "customer.*(support|service|success)|help.?desk|support.?agent", "smalltalk_simple",
	  "minimal", "" },
	{ "Legal Advisor", "legal.*(advisor|counsel|assistant)|lawyer|attorney|paralegal", "legal_analysis", "advanced",
	  "legal" },
	{ "Data Scientist", "data.*(scientist|analyst|engineer)|machine.?learning|ml.?engineer", "data_analysis", "low",
	  "" },
	{ "Coding Agent / SWE",
	  "opencode|open.?code|coding.?agent|software.?engineer.*agent|you are.*coding.*assistant|"
	  "interactive.*cli.*tool.*software|best coding agent",
	  "swe_agentic", "medium", "tech" },
	{ "DevOps / Infrastructure Agent",
	  "devops.*(agent|engineer|assistant)|infrastructure.*(agent|engineer)|ansible|terraform.*(agent|engineer)",
	  "devops_infrastructure", "low", "tech" },
};

json_t *
ruleset_default_doc(void)
{
	char id[25];
	json_t *rules = json_array(), *roles = json_array();
	for (size_t i = 0; i < sizeof default_rules / sizeof default_rules[0]; i++) {
		json_t *kws = json_array();
		for (size_t k = 0; default_rules[i].keywords[k]; k++)
			json_array_append_new(kws, json_string(default_rules[i].keywords[k]));
		store_new_id(id);
		json_array_append_new(rules, json_pack("{s:s, s:s, s:b, s:o, s:s, s:i, s:s, s:{s:s, s:s, s:s, s:s}}", "_id",
						       id, "name", default_rules[i].name, "enabled", 1, "keywords", kws,
						       "match", "any", "minMatches", default_rules[i].min, "searchIn",
						       "user", "effect", "category", default_rules[i].category,
						       "tierMin", default_rules[i].tier_min, "tierMax",
						       default_rules[i].tier_max, "domain", default_rules[i].domain));
	}
	for (size_t i = 0; i < sizeof default_roles / sizeof default_roles[0]; i++) {
		store_new_id(id);
		json_array_append_new(roles, json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:s, s:s}}", "_id", id, "name",
						       default_roles[i].name, "enabled", 1, "pattern",
						       default_roles[i].pattern, "effect", "category",
						       default_roles[i].category, "tierMin", default_roles[i].tier_min,
						       "domain", default_roles[i].domain));
	}
	json_t *doc = json_pack("{s:s, s:s, s:b, s:n}", "name", "Default Rule Set", "description",
				"Built-in defaults: keyword rules and system-prompt roles give the classifier hints; "
				"token thresholds pick a tier when nothing else does.",
				"isGlobalDefault", 1, "tenantId");
	json_object_set_new(doc, "tokenThresholds", json_pack("{s:i, s:i, s:i, s:i, s:i}", "micro", 150, "minimal", 500,
							      "low", 2000, "medium", 15000, "alwaysHigh", 50000));
	json_object_set_new(doc, "signalWeights", json_pack("{s:f, s:f, s:f, s:f, s:f}", "tokenCount", 0.8,
							    "systemPromptRole", 0.9, "contentKeywords", 0.62,
							    "codeLanguage", 0.7, "conversationTurns", 0.4));
	json_object_set_new(doc, "turnUpgrade", json_pack("{s:b, s:i}", "enabled", 0, "threshold", 4));
	json_object_set_new(doc, "keywordRules", rules);
	json_object_set_new(doc, "systemPromptRoles", roles);
	json_object_set_new(doc, "classifier", json_pack("{s:f, s:i, s:s}", "confidenceThreshold", 0.65,
							 "contextLimitTokens", 6000, "contextStrategy", "truncate"));
	json_object_set_new(doc, "costMode", json_string("balanced"));
	json_object_set_new(doc, "tierBoost", json_integer(0));
	json_object_set_new(doc, "isDefault", json_true());
	return doc;
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static struct ruleset *builtin;

static void
builtin_init(void)
{
	char err[256];
	json_t *doc = ruleset_default_doc();
	builtin = ruleset_compile(doc, err, sizeof err);
	json_decref(doc);
	if (!builtin) {
		log_error("ruleset: the built-in default rule set does not compile: %s", err);
		abort();
	}
}

const struct ruleset *
ruleset_builtin(void)
{
	pthread_once(&builtin_once, builtin_init);
	return builtin;
}

/* --- applying a rule set ----------------------------------------------------------------------------------- */

static int
tier_min(int cur, int min)
{
	if (min < 0)
		return cur;
	return cur < 0 || min > cur ? min : cur;
}

static int
tier_max(int cur, int max)
{
	if (max < 0)
		return cur;
	return cur < 0 || max < cur ? max : cur;
}

static void
take_effect(struct route_preroute *r, const struct rs_effect *e, double conf, const char *kind, const char *name)
{
	r->confidence = conf;
	snprintf(r->source, sizeof r->source, "%s:%s", kind, name);
	if (e->category[0])
		copy_str(r->category, sizeof r->category, e->category);
	r->tier = tier_max(tier_min(r->tier, e->tier_min), e->tier_max);
	if (e->domain[0])
		copy_str(r->domain, sizeof r->domain, e->domain);
}

static void
apply_roles(const struct rs_priv *p, const char *sys, size_t len, double conf, struct route_preroute *r)
{
	if (!p->nroles || !len || conf <= r->confidence)
		return;
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	if (!md) {
		log_error("ruleset: out of memory creating PCRE2 match data");
		abort();
	}
	int64_t start = clock_monotonic_us();
	for (size_t i = 0; i < p->nroles; i++) {
		if (i && clock_monotonic_us() - start > RS_ROLES_BUDGET_US)
			break;   /* patterns that slow are hostile or broken: the remaining roles count as no match */
		if (pattern_run(p->roles[i].code, sys, len, md)) {
			take_effect(r, &p->roles[i].eff, conf, "system_prompt_role", p->roles[i].name);
			break;   /* the strict '>' lets only the first matching role count */
		}
	}
	pcre2_match_data_free(md);
}

static bool
rule_hits(const struct rs_rule *rule, const unsigned char *t, size_t n)
{
	size_t hits = 0;
	for (size_t k = 0; k < rule->nkw && hits < rule->required; k++) {
		if (rule->nkw - k < rule->required - hits)
			return false;   /* not enough keywords left */
		if (keyword_in(&rule->kw[k], t, n))
			hits++;
	}
	return hits >= rule->required;
}

static void
apply_keywords(const struct rs_priv *p, const struct route_signals *s, double conf, struct route_preroute *r)
{
	if (!p->nrules || conf <= r->confidence)
		return;
	unsigned char user[sizeof s->last_user], sys[sizeof s->system_prompt],
		all[sizeof s->last_user + 1 + sizeof s->system_prompt];
	size_t nu = strnlen(s->last_user, sizeof s->last_user - 1);
	size_t ns = strnlen(s->system_prompt, sizeof s->system_prompt - 1);
	size_t na = 0;
	fold((const unsigned char *)s->last_user, nu, user);
	if (p->need_system || p->need_all)
		fold((const unsigned char *)s->system_prompt, ns, sys);
	if (p->need_all) {
		memcpy(all, user, nu);
		all[nu] = ' ';
		memcpy(all + nu + 1, sys, ns);
		na = nu + 1 + ns;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct rs_rule *rule = &p->rules[i];
		bool hit = rule->where == RS_IN_USER   ? rule_hits(rule, user, nu) :
			   rule->where == RS_IN_SYSTEM ? rule_hits(rule, sys, ns) :
							 rule_hits(rule, all, na);
		if (hit) {
			take_effect(r, &rule->eff, conf, "keyword_rule", rule->name);
			return;   /* first match wins: no later rule has a higher confidence */
		}
	}
}

void
ruleset_apply(const struct ruleset *rs, const struct route_signals *s, struct route_preroute *out)
{
	memset(out, 0, sizeof *out);
	out->tier = ROUTE_TIER_NONE;
	if (!rs || !s)
		return;
	const struct rs_priv *p = rs->priv;
	long tokens = s->total_tokens;

	/* 1. Images: a vision category and at least the low tier, as a hint (never a pre-route alone). */
	if (s->has_images) {
		long low = rs->thr_low >= 0 ? rs->thr_low : 2000;
		copy_str(out->category, sizeof out->category, tokens > low ? "vision_complex" : "vision_simple");
		out->tier = tier_min(out->tier, route_tier_index("low"));
		if (out->confidence < 0.5)
			out->confidence = 0.5;
		copy_str(out->source, sizeof out->source, "image_input");
	}

	/* 2. System-prompt roles, capped at 0.5: a role alone is a hint. */
	if (p) {
		double conf = rs->w_system_prompt_role < 0.5 ? rs->w_system_prompt_role : 0.5;
		apply_roles(p, s->system_prompt, strnlen(s->system_prompt, sizeof s->system_prompt - 1), conf, out);
	}

	/* 3. Keyword rules. */
	if (p)
		apply_keywords(p, s, rs->w_content_keywords, out);

	/* 4. Token thresholds, when nothing chose a tier. */
	if (out->tier < 0) {
		double tc = rs->w_token_count * 0.35;
		int cand = ROUTE_TIER_NONE;
		if (rs->thr_micro >= 0 && tokens <= rs->thr_micro)
			cand = 0;
		else if (rs->thr_minimal >= 0 && tokens <= rs->thr_minimal)
			cand = 1;
		else if (rs->thr_low >= 0 && tokens <= rs->thr_low)
			cand = 2;
		else if (rs->thr_medium >= 0 && tokens <= rs->thr_medium)
			cand = 3;
		else if (tokens > (rs->thr_medium >= 0 ? rs->thr_medium : 15000))
			cand = 4;
		if (cand >= 0 && tc > out->confidence) {
			out->tier = cand;
			out->confidence = tc;
			copy_str(out->source, sizeof out->source, "token_threshold");
		}
	}

	/* 5. Always-high: at least high; the source only when it is now the strongest signal. */
	if (rs->thr_always_high >= 0 && tokens >= rs->thr_always_high) {
		out->tier = tier_min(out->tier, route_tier_index("high"));
		if (out->confidence < 0.4) {
			out->confidence = 0.4;
			copy_str(out->source, sizeof out->source, "token_threshold_high");
		}
	}

	/* 6. The domain from the request's own signals when no rule named one. */
	if (!out->domain[0]) {
		for (int d = 0; d < ROUTE_NDOMAINS; d++) {
			if (s->domains & (1u << d)) {
				copy_str(out->domain, sizeof out->domain, route_domain_names[d]);
				break;
			}
		}
	}

	/* 7. Turn upgrade. */
	if (rs->turn_upgrade && s->conversation_turns >= rs->turn_threshold && out->tier >= 0 &&
	    out->tier < ROUTE_NTIERS - 1)
		out->tier++;

	/* 8. */
	out->prerouted = out->confidence >= rs->confidence_threshold;
}
