/* provider.c -- the provider layer's shared part: error classes, results, the adapter table and the helpers
 * every adapter uses to classify and sanitise what a provider answered.  See provider.h. */
#include "config.h"
#include "providers/provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "providers/openai_compat.h"
#include "util/buf.h"
#include "util/parse.h"
#include "util/rand.h"

bool
provider_errclass_unhealthy(enum provider_errclass c)
{
	return c == PE_SERVER || c == PE_TIMEOUT || c == PE_CONNECT || c == PE_CUT;
}

const char *
provider_errclass_name(enum provider_errclass c)
{
	switch (c) {
	case PE_NONE: return "none";
	case PE_BAD_REQUEST: return "bad_request";
	case PE_AUTH: return "auth";
	case PE_RATE_LIMITED: return "rate_limited";
	case PE_CONTEXT: return "context";
	case PE_MAX_TOKENS: return "max_tokens";
	case PE_SERVER: return "server";
	case PE_TIMEOUT: return "timeout";
	case PE_CONNECT: return "connect";
	case PE_CUT: return "cut";
	case PE_PROTOCOL: return "protocol";
	}
	return "unknown";
}

void
provider_result_clear(struct provider_result *r)
{
	if (!r)
		return;
	json_decref(r->body);
	free(r->body_text);
	memset(r, 0, sizeof *r);
}

json_t *
provider_result_json(struct provider_result *r)
{
	if (!r->body && r->body_text)
		r->body = json_loadb(r->body_text, r->body_len, 0, NULL);
	return r->body;
}

const struct provider_ops *
provider_ops_for(const char *type)
{
	if (!type || !*type)
		return &openai_compat_ops;
	if (strcmp(type, "azure") == 0 || strcmp(type, "bedrock") == 0)
		return NULL;
	if (strcmp(type, "ollama") == 0)
		return &ollama_compat_ops;
	/* openai, openrouter, vllm, custom, bedrock-proxy, azure-proxy, litellm and anything newer: they all
	 * speak the OpenAI protocol, which is also the safest guess for a type this build does not know. */
	return &openai_compat_ops;
}

/* --- error predicates ------------------------------------------------------------------------------------ */

/* Case-insensitive substring search (ASCII). */
static const char *
ci_find(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return p;
	return NULL;
}

static bool
has(const char *hay, const char *needle)
{
	return ci_find(hay, needle) != NULL;
}

bool
provider_is_max_tokens_error(const char *m)
{
	if (!m)
		return false;
	if (has(m, "maximum tokens") && (has(m, "exceeds") || has(m, "model limit")))
		return true;
	if (has(m, "max_tokens") &&
	    (has(m, "too large") || has(m, "exceeds") || has(m, "invalid") || has(m, "maximum allowed")))
		return true;
	return has(m, "output token") && has(m, "limit");
}

bool
provider_is_context_error(const char *m)
{
	if (!m || provider_is_max_tokens_error(m))
		return false;
	static const char *const words[] = {
		"context_length_exceeded", "context length", "maximum context", "context window",
		"input tokens exceeded", "request too large", "prompt is too long", "input is too long",
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (has(m, words[i]))
			return true;
	if (has(m, "input tokens") && (has(m, "context") || (has(m, "exceeds") && has(m, "maximum"))))
		return true;
	/* The original also counted any Bedrock ValidationException that mentions "input"; that sends every
	 * malformed request down the larger-context path, so only the context wording counts here. */
	if (has(m, "validationexception") && (has(m, "context") || has(m, "too long")))
		return true;
	return has(m, "mantle streaming error") && has(m, "badrequesterror") && (has(m, "input") || has(m, "context"));
}

/* Digits at p (after optional spaces) as a limit; 0 when none or absurd. */
static long
number_at(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = 0;
	while (isdigit((unsigned char)p[n]))
		n++;
	long v = 0;
	if (!n || parse_long_n(p, n, 1, 100000000L, &v) != PRISM_OK)
		return 0;
	return v;
}

long
provider_max_tokens_limit(const char *m)
{
	if (!m)
		return 0;
	/* (?:limit|maximum)\s+(?:of|is)\s+(\d+), as the original. */
	for (const char *p = m; *p; p++) {
		size_t kw = strncasecmp(p, "limit", 5) == 0 ? 5 : strncasecmp(p, "maximum", 7) == 0 ? 7 : 0;
		if (!kw)
			continue;
		const char *q = p + kw;
		if (!isspace((unsigned char)*q))
			continue;
		while (isspace((unsigned char)*q))
			q++;
		if (strncasecmp(q, "of", 2) != 0 && strncasecmp(q, "is", 2) != 0)
			continue;
		q += 2;
		if (!isspace((unsigned char)*q))
			continue;
		long v = number_at(q);
		if (v)
			return v;
	}
	/* OpenAI: "This model supports at most 4096 completion tokens". */
	const char *p = ci_find(m, "at most ");
	if (p) {
		long v = number_at(p + 8);
		if (v)
			return v;
	}
	/* Anthropic: "max_tokens: 100000 > 8192, which is the maximum allowed number of output tokens". */
	p = ci_find(m, ", which is the maximum");
	if (p) {
		const char *s = p;
		while (s > m && isdigit((unsigned char)s[-1]))
			s--;
		if (s < p)
			return number_at(s);
	}
	return 0;
}

/* --- classification -------------------------------------------------------------------------------------- */

static enum provider_errclass
class_of_status(int status)
{
	if (status == 401 || status == 403)
		return PE_AUTH;
	if (status == 429)
		return PE_RATE_LIMITED;
	if (status == 408)
		return PE_TIMEOUT;
	if (status >= 500)
		return PE_SERVER;
	if (status >= 400)
		return PE_BAD_REQUEST;
	/* A redirect we do not follow, or anything else that is no answer. */
	return PE_PROTOCOL;
}

/* An error object's type or code word. */
static enum provider_errclass
class_of_word(const char *w)
{
	if (!w || !*w)
		return PE_NONE;
	if (has(w, "rate_limit") || has(w, "too_many_requests") || has(w, "throttl") || has(w, "quota"))
		return PE_RATE_LIMITED;
	if (has(w, "auth") || has(w, "api_key") || has(w, "permission") || has(w, "forbidden"))
		return PE_AUTH;
	if (has(w, "timeout") || has(w, "timed_out"))
		return PE_TIMEOUT;
	if (has(w, "server") || has(w, "internal") || has(w, "overloaded") || has(w, "unavailable") ||
	    has(w, "api_error") || has(w, "upstream"))
		return PE_SERVER;
	if (has(w, "invalid") || has(w, "bad_request") || has(w, "not_found") || has(w, "validation") ||
	    has(w, "unsupported"))
		return PE_BAD_REQUEST;
	return PE_NONE;
}

enum provider_errclass
provider_classify(int status, const char *type, const char *code, const char *message, long *max_tokens_limit)
{
	if (max_tokens_limit)
		*max_tokens_limit = 0;
	bool in_body = status == 0 || (status >= 200 && status < 300);
	if (status != 401 && status != 403 && status != 408 && status != 429) {
		if (provider_is_max_tokens_error(message)) {
			if (max_tokens_limit)
				*max_tokens_limit = provider_max_tokens_limit(message);
			return PE_MAX_TOKENS;
		}
		if (provider_is_context_error(message) || (code && strcmp(code, "context_length_exceeded") == 0))
			return PE_CONTEXT;
	}
	if (!in_body)
		return class_of_status(status);
	/* An error inside a successful answer: its code (a status, or a word), then its type. */
	long st = 0;
	if (code && parse_long(code, 100, 599, &st) == PRISM_OK)
		return class_of_status((int)st);
	enum provider_errclass c = class_of_word(code);
	if (c == PE_NONE)
		c = class_of_word(type);
	/* Unknown: a stream that breaks off with an error is the provider's failure more often than ours. */
	return c == PE_NONE ? PE_SERVER : c;
}

/* --- sanitising ------------------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 when invalid (as jansson judges it:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* Sanitising looks at this much of a text; the excerpt is far shorter, so nothing kept is lost. */
#define EXCERPT_SCAN (8 * 1024)

void
provider_excerpt(const char *text, size_t len, const char *secret, char *out, size_t outlen)
{
	if (!outlen)
		return;
	out[0] = '\0';
	if (!text || !len)
		return;
	if (len > EXCERPT_SCAN)
		len = EXCERPT_SCAN;
	/* 1. One line of valid UTF-8. */
	char *clean = malloc(len + 1);
	if (!clean)
		return;
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		const unsigned char *s = (const unsigned char *)text + i;
		size_t l = utf8_len(s, len - i);
		if (l == 0) {
			/* An invalid byte -- or a character cut by the scan limit, which the cut below drops anyway. */
			clean[n++] = '?';
			i++;
			continue;
		}
		if (l == 1 && (s[0] < 0x20 || s[0] == 0x7f)) {
			if (n && clean[n - 1] != ' ')
				clean[n++] = ' ';
			i++;
			continue;
		}
		if (l == 1 && s[0] == ' ' && (n == 0 || clean[n - 1] == ' ')) {
			i++;
			continue;
		}
		memcpy(clean + n, s, l);
		n += l;
		i += l;
	}
	while (n && clean[n - 1] == ' ')
		n--;
	clean[n] = '\0';

	/* 2. Redact before cutting, so a cut never leaves a piece of a credential behind. */
	size_t slen = secret ? strlen(secret) : 0;
	if (slen < 4)
		slen = 0;   /* a "secret" that short would redact ordinary words */
	struct buf r;
	buf_init(&r, (size_t)EXCERPT_SCAN * 4);
	for (size_t i = 0; i < n;) {
		if (slen && strncmp(clean + i, secret, slen) == 0) {
			buf_puts(&r, "***");
			i += slen;
			continue;
		}
		if (strncasecmp(clean + i, "bearer ", 7) == 0 && clean[i + 7] && clean[i + 7] != ' ') {
			buf_append(&r, clean + i, 7);
			buf_puts(&r, "***");
			i += 7;
			while (i < n && clean[i] != ' ' && clean[i] != '"' && clean[i] != '\'' && clean[i] != ',')
				i++;
			continue;
		}
		buf_append(&r, clean + i, 1);
		i++;
	}
	secure_wipe(clean, n);
	free(clean);

	/* 3. Cut at a character boundary. */
	const char *s = buf_cstr(&r);
	size_t rl = r.len;
	size_t max = PROVIDER_MAX_EXCERPT < outlen - 1 ? PROVIDER_MAX_EXCERPT : outlen - 1;
	if (rl <= max) {
		memcpy(out, s, rl + 1);
	} else if (max > 3) {
		size_t cut = max - 3;
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(out, s, cut);
		memcpy(out + cut, "...", 4);
	}
	if (r.data)
		secure_wipe(r.data, r.len);
	buf_free(&r);
}

const char *
provider_error_message(const json_t *root)
{
	const json_t *e = json_object_get(root, "error");
	if (json_is_string(e))
		return json_string_value(e);
	const char *m = json_string_value(json_object_get(e, "message"));
	if (m)
		return m;
	m = json_string_value(json_object_get(root, "message"));
	if (m)
		return m;
	return json_string_value(json_object_get(root, "detail"));
}

long
provider_retry_after(const char *value, int64_t now)
{
	if (!value)
		return 0;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (!n)
		return 0;
	long v = 0;
	if (isdigit((unsigned char)value[0])) {
		size_t d = 0;
		while (d < n && isdigit((unsigned char)value[d]))
			d++;
		if (d != n)
			return 0;
		if (d > 9)
			return 86400;
		if (parse_long_n(value, n, 0, 999999999L, &v) != PRISM_OK)
			return 0;
		return v > 86400 ? 86400 : v;
	}
	char date[128];
	if (n >= sizeof date)
		return 0;
	memcpy(date, value, n);
	date[n] = '\0';
	time_t t = curl_getdate(date, NULL);
	if (t == (time_t)-1 || (int64_t)t <= now)
		return 0;
	int64_t d = (int64_t)t - now;
	return d > 86400 ? 86400 : (long)d;
}
