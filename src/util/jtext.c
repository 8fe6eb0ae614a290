/* jtext.c -- see jtext.h. */
#include <config.h> /* the autoconf one, not util/config.h next to this file */
#include "util/jtext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
	w->precision = 17;
}

void
jtext_resume(struct jtext *w, struct buf *b, bool members)
{
	jtext_init(w, b);
	w->depth = 1;
	w->comma[1] = members;
}

static void
put(struct jtext *w, const char *s, size_t n)
{
	if (!w->err)
		w->err = buf_append(w->b, s, n);
}

/* What a byte needs in a JSON string: 0 nothing, 1 an escape, 2 a UTF-8 check (a lead or stray byte). */
static const unsigned char byte_class[256] = {
	[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 2,
};

/* The escape of c (< 0x20, '"' or '\\') into e: its length. */
static size_t
escape(unsigned char c, char e[6])
{
	static const char hex[] = "0123456789ABCDEF";
	e[0] = '\\';
	switch (c) {
	case '"': e[1] = '"'; return 2;
	case '\\': e[1] = '\\'; return 2;
	case '\b': e[1] = 'b'; return 2;
	case '\f': e[1] = 'f'; return 2;
	case '\n': e[1] = 'n'; return 2;
	case '\r': e[1] = 'r'; return 2;
	case '\t': e[1] = 't'; return 2;
	default:
		e[1] = 'u';
		e[2] = '0';
		e[3] = '0';
		e[4] = hex[c >> 4];
		e[5] = hex[c & 15];
		return 6;
	}
}

static void
put_string(struct jtext *w, const char *s, size_t n)
{
	/* At most 6 bytes out per byte in (\u00XX; U+FFFD is 3 for 1); written in place. */
	char *o = w->err || n > (SIZE_MAX - 2) / 6 ? NULL : buf_room(w->b, 6 * n + 2);
	if (!o) {
		if (!w->err)
			w->err = PRISM_E_TOO_LARGE;
		return;
	}
	char *start = o;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	*o++ = '"';
	while (p < end) {
		unsigned char k = byte_class[*p];
		if (k == 0) {
			*o++ = (char)*p++;
		} else if (k == 1) {
			o += escape(*p++, o);
		} else {
			size_t l = jtext_utf8_len(p, end);
			if (l) {
				memcpy(o, p, l);
				o += l;
				p += l;
			} else {
				memcpy(o, "\xEF\xBF\xBD", 3);   /* not UTF-8: U+FFFD in its place */
				o += 3;
				p++;
			}
		}
	}
	*o++ = '"';
	buf_added(w->b, (size_t)(o - start));
}

/* The decimal digits of u, ending at end: where they start. */
static char *
digits(uint64_t u, char *end)
{
	do
		*--end = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	return end;
}

/* The separator and the key of the next member. */
static void
member(struct jtext *w, const char *key)
{
	if (w->comma[w->depth])
		put(w, ",", 1);
	w->comma[w->depth] = true;
	if (key) {
		put_string(w, key, strlen(key));
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
		put_string(w, v, strlen(v));
	else
		put(w, "null", 4);
}

void
jtext_int(struct jtext *w, const char *key, int64_t v)
{
	char num[24];
	char *d = digits(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, num + sizeof num);
	if (v < 0)
		*--d = '-';
	member(w, key);
	put(w, d, (size_t)(num + sizeof num - d));
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
	int n = snprintf(num, sizeof num, "%.*g", w->precision, v);
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
jtext_micros(struct jtext *w, const char *key, int64_t micro)
{
	/* The exact decimal of micro / 10^6: (double)micro / 1e6 is the double nearest to it (one correctly
	 * rounded division of two exact doubles), and reading the decimal back gives the nearest double too. */
	char num[32], *end = num + sizeof num, *d = end;
	uint64_t u = micro < 0 ? 0 - (uint64_t)micro : (uint64_t)micro;
	uint64_t frac = u % 1000000;
	int width = 6;                  /* fraction digits, without trailing zeros, at least one */
	while (width > 1 && frac % 10 == 0) {
		frac /= 10;
		width--;
	}
	for (int i = 0; i < width; i++) {
		*--d = (char)('0' + frac % 10);
		frac /= 10;
	}
	*--d = '.';
	d = digits(u / 1000000, d);
	if (micro < 0)
		*--d = '-';
	member(w, key);
	put(w, d, (size_t)(end - d));
}

void
jtext_bool(struct jtext *w, const char *key, bool v)
{
	member(w, key);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

bool
jtext_value(struct jtext *w, const char *key, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *m;
		jtext_open(w, key);
		json_object_foreach((json_t *)v, k, m)
			if (!jtext_value(w, k, m))
				return false;
		jtext_close(w);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;
		jtext_open_array(w, key);
		json_array_foreach(v, i, m)
			if (!jtext_value(w, NULL, m))
				return false;
		jtext_close_array(w);
		break;
	}
	case JSON_STRING:
		member(w, key);
		put_string(w, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		jtext_int(w, key, json_integer_value(v));
		break;
	case JSON_REAL:
		jtext_real(w, key, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		jtext_bool(w, key, json_is_true(v));
		break;
	default:
		member(w, key);
		put(w, "null", 4);
	}
	return w->err == PRISM_OK;
}

char *
jtext_dump(const json_t *v, int precision, size_t *len)
{
	struct buf b;
	buf_init(&b, (size_t)1 << 30);
	struct jtext w;
	jtext_init(&w, &b);
	w.precision = precision;
	if (jtext_value(&w, NULL, v))
		return buf_take(&b, len);
	buf_free(&b);
	/* deeper than JTEXT_MAX_DEPTH, or larger than a gigabyte: jansson decides */
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision));
	if (text && len)
		*len = strlen(text);
	return text;
}
