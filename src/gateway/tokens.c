/* tokens.c -- the one token estimator (the original's tokenService, reference/original-gateway.md §12.2).
 *
 * estimate(s) = 0 for "", else ceil(len / cpt) with cpt = 3.0 when more than 15 % of the characters are
 * "code characters" ({}()[]<>=+-*\/\|^~;:,.@#$%&), else 3.5.  A message costs 4 + estimate(role) +
 * estimate(text of its content); a request 3 more.
 *
 * One deliberate difference: `len` counts Unicode code points (UTF-8 lead bytes), where the original
 * counted UTF-16 code units (JavaScript's string length).  The two agree on everything in the Basic
 * Multilingual Plane; a character outside it (most emoji, some CJK) counts 1 here and 2 there.  Code points
 * are what a reader means by "characters", need no conversion, and the estimate is a heuristic either way.
 * Invalid UTF-8 counts each byte that is not a continuation byte (0x80..0xBF) as one character.
 *
 * All arithmetic is integer: ceil(len / 3.5) = ceil(2 len / 7), and "ratio > 0.15" is 20 code > 3 len, which
 * is exactly what the original's double comparison decides (0.15 as a double lies just below 3/20).
 */
#include "config.h"
#include "gateway/gw.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

/* The "code characters", as a table: the per-byte loop stays free of branches (the estimator runs over
 * every message of every request: the pre-flight and the router's signals). */
static const unsigned char code_byte[256] = {
	['{'] = 1, ['}'] = 1, ['('] = 1, [')'] = 1, ['['] = 1, [']'] = 1, ['<'] = 1, ['>'] = 1, ['='] = 1, ['+'] = 1,
	['-'] = 1, ['*'] = 1, ['/'] = 1, ['\\'] = 1, ['|'] = 1, ['^'] = 1, ['~'] = 1, [';'] = 1, [':'] = 1, [','] = 1,
	['.'] = 1, ['@'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1,
};

long
tokens_estimate_text(const char *s, size_t len)
{
	if (!s || !len)
		return 0;
	size_t chars = 0, code = 0;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len; i++) {
		chars += (p[i] & 0xC0) != 0x80;
		code += code_byte[p[i]];
	}
	if (chars == 0)
		return 0;
	if (20 * code > 3 * chars)
		return (long)((chars + 2) / 3);
	return (long)((2 * chars + 6) / 7);
}

static long
estimate_str(const char *s)
{
	return s ? tokens_estimate_text(s, strlen(s)) : 0;
}

/* JSON.stringify of v, estimated. */
static long
estimate_json(const json_t *v)
{
	char *text = json_dumps(v, DUMP_FLAGS);
	long n = estimate_str(text);
	free(text);
	return n;
}

bool
gw_json_truthy(const json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_real(v))
		return json_real_value(v) != 0 && json_real_value(v) == json_real_value(v);
	return true;
}

static const char *
str_or_empty(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* Appends the text one content block contributes (§12.2 extractMessageText). */
static void
block_text(const json_t *part, json_t *pieces)
{
	const char *type = json_string_value(json_object_get(part, "type"));
	if (!type) {
		json_array_append_new(pieces, json_string(""));
		return;
	}
	if (strcmp(type, "text") == 0) {
		json_array_append_new(pieces, json_string(str_or_empty(json_object_get(part, "text"))));
	} else if (strcmp(type, "image_url") == 0) {
		json_array_append_new(pieces, json_string("[IMAGE]"));
	} else if (strcmp(type, "tool_result") == 0) {
		const json_t *c = json_object_get(part, "content");
		if (!gw_json_truthy(c)) {
			json_array_append_new(pieces, json_string(""));
		} else if (json_is_string(c)) {
			json_array_append(pieces, (json_t *)c);
		} else if (json_is_array(c)) {
			/* Text parts joined with a space; other parts count as empty strings. */
			json_t *sub = json_array();
			size_t i;
			json_t *p;
			json_array_foreach(c, i, p) {
				const char *pt = json_string_value(json_object_get(p, "type"));
				json_array_append_new(sub, json_string(pt && strcmp(pt, "text") == 0 ?
								       str_or_empty(json_object_get(p, "text")) : ""));
			}
			json_array_append_new(pieces, sub);
		} else {
			char *text = json_dumps(c, DUMP_FLAGS);
			json_array_append_new(pieces, json_string(text ? text : ""));
			free(text);
		}
	} else if (strcmp(type, "tool_use") == 0) {
		json_t *sub = json_array();
		json_array_append_new(sub, json_string(str_or_empty(json_object_get(part, "name"))));
		const json_t *in = json_object_get(part, "input");
		char *text = in && !json_is_null(in) ? json_dumps(in, DUMP_FLAGS) : NULL;
		json_array_append_new(sub, json_string(text ? text : ""));
		free(text);
		json_array_append_new(pieces, sub);
	} else {
		json_array_append_new(pieces, json_string(""));
	}
}

/* Flattens pieces (strings, or arrays of strings joined with a space) joined with a space into out. */
static void
join(const json_t *pieces, struct buf *out)
{
	size_t i;
	json_t *p;
	json_array_foreach(pieces, i, p) {
		if (i)
			buf_append(out, " ", 1);
		if (json_is_array(p))
			join(p, out);
		else
			buf_append(out, json_string_value(p), json_string_length(p));
	}
}

/* estimate(extractMessageText(content)). */
static long
estimate_content(const json_t *content)
{
	if (!gw_json_truthy(content))
		return 0;
	if (json_is_string(content))
		return tokens_estimate_text(json_string_value(content), json_string_length(content));
	if (!json_is_array(content))
		return estimate_json(content);
	json_t *pieces = json_array();
	size_t i;
	json_t *part;
	json_array_foreach(content, i, part)
		block_text(part, pieces);
	struct buf b;
	buf_init(&b, PRISM_BODY_HARD_MAX);   /* the text comes from a request body, bounded by it */
	join(pieces, &b);
	long n = b.data ? tokens_estimate_text(b.data, b.len) : 0;
	buf_free(&b);
	json_decref(pieces);
	return n;
}

long
tokens_estimate_messages(const json_t *messages)
{
	if (!json_is_array(messages) || json_array_size(messages) == 0)
		return 0;
	long total = 3;
	size_t i;
	json_t *m;
	json_array_foreach(messages, i, m)
		total += 4 + estimate_str(json_string_value(json_object_get(m, "role"))) +
			 estimate_content(json_object_get(m, "content"));
	return total;
}

/* Not in the original (it had no completions endpoint): a string prompt is estimated as text; an array
 * prompt sums its elements, where a string is text, an integer is one token id and an array of integers
 * is that many token ids (the OpenAI API's forms of `prompt`). */
long
tokens_estimate_prompt(const json_t *prompt)
{
	if (json_is_string(prompt))
		return tokens_estimate_text(json_string_value(prompt), json_string_length(prompt));
	if (!json_is_array(prompt))
		return 0;
	long total = 0;
	size_t i;
	json_t *e;
	json_array_foreach(prompt, i, e) {
		if (json_is_string(e))
			total += tokens_estimate_text(json_string_value(e), json_string_length(e));
		else if (json_is_integer(e))
			total += 1;
		else if (json_is_array(e))
			total += (long)json_array_size(e);
	}
	return total;
}
