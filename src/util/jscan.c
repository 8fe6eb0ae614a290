/* jscan.c -- see jscan.h. */
#include <config.h> /* the autoconf one, not util/config.h next to this file */
#include "util/jscan.h"

#include <ctype.h>
#include <string.h>

#include "util/jtext.h"
#include "util/parse.h"

/* What a value is to the gateway, from where it sits. */
enum role {
	R_ANY = 0,
	R_ROOT,
	R_USAGE,                        /* root.usage */
	R_PROMPT,                       /* root.usage.prompt_tokens */
	R_COMPLETION,                   /* root.usage.completion_tokens */
	R_CHOICES,                      /* root.choices */
	R_CHOICE,                       /* root.choices[i] */
	R_FINISH,                       /* root.choices[i].finish_reason */
	R_ERROR,                        /* root.error */
	R_CONTENT,                      /* a "content" member anywhere */
};

struct scan {
	const unsigned char *base, *p, *end;
	int depth;
	struct jscan_answer *out;
	/* the usage object being read, and the choice */
	bool prompt_set, completion_set;
	char finish[32];
};

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
hex4(const unsigned char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int d = parse_hexval(p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* A string at s->p (its opening quote): *raw and *n are the bytes between the quotes, *escaped whether it
 * has escapes.  False when jansson would refuse it. */
static bool
string(struct scan *s, const unsigned char **raw, size_t *n, bool *escaped)
{
	s->p++;
	const unsigned char *start = s->p;
	*escaped = false;
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			*raw = start;
			*n = (size_t)(s->p - start);
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			*escaped = true;
			if (s->end - s->p < 2)
				return false;
			c = s->p[1];
			if (c != 'u') {
				if (!strchr("\"\\/bfnrt", c) || !c)
					return false;
				s->p += 2;
				continue;
			}
			if (s->end - s->p < 6)
				return false;
			int u = hex4(s->p + 2);
			if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF))
				return false;           /* \u0000 (jansson's default) or a lone low surrogate */
			s->p += 6;
			if (u >= 0xD800 && u <= 0xDBFF) {
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
					return false;
				int lo = hex4(s->p + 2);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return false;
				s->p += 6;
			}
			continue;
		}
		if (c >= 0x80) {
			size_t l = jtext_utf8_len(s->p, s->end);
			if (!l)
				return false;
			s->p += l;
			continue;
		}
		s->p++;
	}
	return false;
}

/* A number; *integer and *value (clamped to the token range) when it has no fraction or exponent.  False
 * when it is malformed, or may not fit where jansson puts it (an integer of more than 18 digits, a real
 * near a double's range). */
static bool
number(struct scan *s, bool *integer, long *value)
{
	bool neg = false;
	if (s->p < s->end && *s->p == '-') {
		neg = true;
		s->p++;
	}
	const unsigned char *d = s->p;
	if (s->p >= s->end || !isdigit(*s->p))
		return false;
	if (*s->p == '0')
		s->p++;
	else
		while (s->p < s->end && isdigit(*s->p))
			s->p++;
	size_t ndigits = (size_t)(s->p - d);
	*integer = true;
	if (s->p < s->end && *s->p == '.') {
		*integer = false;
		s->p++;
		if (s->p >= s->end || !isdigit(*s->p))
			return false;
		while (s->p < s->end && isdigit(*s->p))
			s->p++;
	}
	long exp = 0;
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		*integer = false;
		s->p++;
		bool eneg = false;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			eneg = *s->p++ == '-';
		if (s->p >= s->end || !isdigit(*s->p))
			return false;
		while (s->p < s->end && isdigit(*s->p)) {
			if (exp < 100000)
				exp = exp * 10 + (*s->p - '0');
			s->p++;
		}
		if (eneg)
			exp = -exp;
	}
	if (*integer) {
		if (ndigits > 18)
			return false;
		long long v = 0;
		for (size_t i = 0; i < ndigits; i++)
			v = v * 10 + (d[i] - '0');
		*value = neg ? 0 : v > 1000000000 ? 1000000000 : (long)v;
		return true;
	}
	return ndigits <= 300 && exp >= -300 && exp <= 300 && (long)ndigits + exp <= 300;
}

static bool
key_is(const unsigned char *k, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(k, name, n) == 0;
}

static bool value(struct scan *s, enum role role);

/* The role of the member named k in an object of role parent; false: a member the gateway must not pass
 * through this way. */
static bool
member_role(struct scan *s, enum role parent, const unsigned char *k, size_t n, enum role *role)
{
	*role = R_ANY;
	if (key_is(k, n, "reasoning_content") || key_is(k, n, "reasoning"))
		s->out->reasoning = true;
	if (key_is(k, n, "content"))
		*role = R_CONTENT;
	switch (parent) {
	case R_ROOT:
		if (key_is(k, n, "cost_info") || key_is(k, n, "auto_routing") || key_is(k, n, "context_fallback") ||
		    key_is(k, n, "session_id"))
			return false;
		if (key_is(k, n, "usage"))
			*role = R_USAGE;
		else if (key_is(k, n, "choices"))
			*role = R_CHOICES;
		else if (key_is(k, n, "error"))
			*role = R_ERROR;
		break;
	case R_USAGE:
		if (key_is(k, n, "prompt_tokens"))
			*role = R_PROMPT;
		else if (key_is(k, n, "completion_tokens"))
			*role = R_COMPLETION;
		break;
	case R_CHOICE:
		if (key_is(k, n, "finish_reason"))
			*role = R_FINISH;
		break;
	default:
		break;
	}
	return true;
}

static bool
object(struct scan *s, enum role role)
{
	s->p++;
	if (role == R_CHOICE)
		s->finish[0] = '\0';
	skip_ws(s);
	bool first = true;
	while (s->p < s->end && *s->p != '}') {
		if (!first) {
			if (*s->p != ',')
				return false;
			s->p++;
			skip_ws(s);
		}
		first = false;
		if (s->p >= s->end || *s->p != '"')
			return false;
		const unsigned char *k;
		size_t kn;
		bool escaped;
		if (!string(s, &k, &kn, &escaped) || escaped)
			return false;           /* an escaped name could be any of the names that matter */
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		enum role child;
		if (!member_role(s, role, k, kn, &child) || !value(s, child))
			return false;
		skip_ws(s);
	}
	if (s->p >= s->end)
		return false;
	if (role == R_ROOT) {
		s->out->close_at = (size_t)(s->p - s->base);
		s->out->empty = first;
	}
	s->p++;
	if (role == R_USAGE)
		s->out->usage_reported = s->prompt_set || s->completion_set;
	if (role == R_CHOICE && s->finish[0])
		memcpy(s->out->finish_reason, s->finish, sizeof s->finish);
	return true;
}

static bool
array(struct scan *s, enum role role)
{
	s->p++;
	skip_ws(s);
	bool first = true;
	while (s->p < s->end && *s->p != ']') {
		if (!first) {
			if (*s->p != ',')
				return false;
			s->p++;
		}
		first = false;
		if (!value(s, role == R_CHOICES ? R_CHOICE : R_ANY))
			return false;
		skip_ws(s);
	}
	if (s->p >= s->end)
		return false;
	s->p++;
	return true;
}

static bool
literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool
value(struct scan *s, enum role role)
{
	skip_ws(s);
	if (s->p >= s->end)
		return false;
	/* A later member of the same name replaces an earlier one, as in jansson's tree. */
	if (role == R_USAGE) {
		s->out->usage_reported = s->prompt_set = s->completion_set = false;
		s->out->prompt_tokens = s->out->completion_tokens = 0;
	} else if (role == R_CHOICES) {
		s->out->finish_reason[0] = '\0';
	} else if (role == R_FINISH) {
		s->finish[0] = '\0';
	} else if (role == R_PROMPT) {
		s->prompt_set = false;
		s->out->prompt_tokens = 0;
	} else if (role == R_COMPLETION) {
		s->completion_set = false;
		s->out->completion_tokens = 0;
	}
	unsigned char c = *s->p;
	if (role == R_ERROR && c != 'n')
		return false;                   /* an error answer: jansson's path classifies it */
	if (role == R_ROOT && c != '{')
		return false;
	bool ok;
	if (c == '{' || c == '[') {
		if (++s->depth > JSCAN_MAX_DEPTH)
			return false;
		if (c == '[' && role == R_CONTENT)
			s->out->reasoning = true;       /* content blocks may hold thinking */
		ok = c == '{' ? object(s, role) : array(s, role);
		s->depth--;
		return ok;
	}
	if (c == '"') {
		const unsigned char *raw;
		size_t n;
		bool escaped;
		if (!string(s, &raw, &n, &escaped))
			return false;
		if (memmem(raw, n, "<think", 6) || (escaped && memmem(raw, n, "think", 5)))
			s->out->reasoning = true;
		if (role == R_FINISH) {
			if (escaped)
				return false;
			size_t o = 0;
			for (size_t i = 0; i < n && o + 1 < sizeof s->finish; i++)
				if (isalnum(raw[i]) || raw[i] == '_' || raw[i] == '-')
					s->finish[o++] = (char)raw[i];
			s->finish[o] = '\0';
		}
		return true;
	}
	if (c == '-' || isdigit(c)) {
		bool integer;
		long v = 0;
		if (!number(s, &integer, &v))
			return false;
		if (integer && role == R_PROMPT) {
			s->out->prompt_tokens = v;
			s->prompt_set = true;
		} else if (integer && role == R_COMPLETION) {
			s->out->completion_tokens = v;
			s->completion_set = true;
		}
		return true;
	}
	return literal(s, "true") || literal(s, "false") || literal(s, "null");
}

bool
jscan_answer(const char *text, size_t len, struct jscan_answer *out)
{
	memset(out, 0, sizeof *out);
	const unsigned char *t = (const unsigned char *)text;
	struct scan s = { .base = t, .p = t, .end = t + len, .out = out };
	if (!value(&s, R_ROOT))
		return false;
	skip_ws(&s);
	return s.p == s.end;
}
