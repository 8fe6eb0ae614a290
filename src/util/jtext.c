/* jtext.c -- see jtext.h. */
#include <config.h> /* the autoconf one, not util/config.h next to this file */
#include "util/jtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

size_t
jtext_utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;   /* the range of the second byte */
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

void
jtext_init(struct jtext *w, struct buf *b)
{
	w->b = b;
	w->depth = 0;
	w->comma[0] = false;
	w->err = PRISM_OK;
}

static void
put(struct jtext *w, const char *s, size_t n)
{
	if (!w->err)
		w->err = buf_append(w->b, s, n);
}

static void
put_string(struct jtext *w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	put(w, "\"", 1);
	while (p < end && !w->err) {
		/* the longest run that needs no escape goes out at once */
		const unsigned char *run = p;
		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\') {
			if (*p < 0x80) {
				p++;
				continue;
			}
			size_t l = jtext_utf8_len(p, end);
			if (!l)
				break;
			p += l;
		}
		put(w, (const char *)run, (size_t)(p - run));
		if (p == end)
			break;
		char esc[6] = { '\\', 0 };
		size_t n = 2;
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (*p < 0x20) {
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				n = 6;
			} else {
				put(w, "\xEF\xBF\xBD", 3);   /* not UTF-8: U+FFFD in its place */
				n = 0;
			}
		}
		put(w, esc, n);
		p++;
	}
	put(w, "\"", 1);
}

/* The separator and the key of the next member. */
static void
member(struct jtext *w, const char *key)
{
	if (w->comma[w->depth])
		put(w, ",", 1);
	w->comma[w->depth] = true;
	if (key) {
		put_string(w, key);
		put(w, ":", 1);
	}
}

static void
open_container(struct jtext *w, const char *key, char c)
{
	if (w->depth > 0)
		member(w, key);
	if (w->depth + 1 >= JTEXT_MAX_DEPTH) {
		if (!w->err)
			w->err = PRISM_E_TOO_LARGE;
		return;
	}
	put(w, &c, 1);
	w->comma[++w->depth] = false;
}

static void
close_container(struct jtext *w, char c)
{
	put(w, &c, 1);
	if (w->depth > 0)
		w->depth--;
}

void
jtext_open(struct jtext *w, const char *key)
{
	open_container(w, key, '{');
}

void
jtext_close(struct jtext *w)
{
	close_container(w, '}');
}

void
jtext_open_array(struct jtext *w, const char *key)
{
	open_container(w, key, '[');
}

void
jtext_close_array(struct jtext *w)
{
	close_container(w, ']');
}

void
jtext_str(struct jtext *w, const char *key, const char *v)
{
	member(w, key);
	if (v)
		put_string(w, v);
	else
		put(w, "null", 4);
}

void
jtext_int(struct jtext *w, const char *key, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof num, "%" PRId64, v);
	member(w, key);
	put(w, num, (size_t)n);
}

void
jtext_real(struct jtext *w, const char *key, double v)
{
	member(w, key);
	if (!isfinite(v)) {
		put(w, "null", 4);
		return;
	}
	char num[40];
	int n = snprintf(num, sizeof num, "%.17g", v);
	if (n <= 0 || (size_t)n >= sizeof num) {
		put(w, "null", 4);
		return;
	}
	/* as jansson: a real always looks like one, and its exponent has no '+' and no leading zeros */
	char *e = strchr(num, 'e');
	if (!e && !strchr(num, '.')) {
		memcpy(num + n, ".0", 3);
		n += 2;
	} else if (e) {
		char *d = e + 1;
		if (*d == '-')
			d++;
		char *z = d;
		while (*z == '+' || *z == '0')
			z++;
		if (*d == '+' || *d == '0') {
			memmove(d, z, strlen(z) + 1);
			n = (int)strlen(num);
		}
	}
	put(w, num, (size_t)n);
}

void
jtext_bool(struct jtext *w, const char *key, bool v)
{
	member(w, key);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void
jtext_members(struct jtext *w, const char *obj, size_t n)
{
	if (n <= 2 || obj[0] != '{' || obj[n - 1] != '}')
		return;
	member(w, NULL);
	put(w, obj + 1, n - 2);
}
