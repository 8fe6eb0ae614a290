/* signals.c -- what a chat request says about itself (signals.h; reference/original-gateway.md §5.2 with
 * the defects of its §17.13 fixed).
 *
 * How the texts are scanned.  The original ran some forty JavaScript regexes and sixty substring searches
 * over its texts.  Combined into PCRE2 alternations with JIT, the language patterns alone cost about
 * 9.5 ns per byte of prose (their first characters are common letters, so a match is attempted at a third
 * of all positions), and the original's `you\s+(are|excel)\s+at\s+.*\b(glob|grep|...)\b.*codebase` ran for
 * minutes on 100 KB of "you are at grep ": with JIT the match limit counts per start position, so it does
 * not bound a quadratic scan.  Hence:
 *
 *   - One table-driven pass per text (scan_range): every byte is looked up once in a class table that
 *     says whether a rule can start there (anywhere, at a word start, at a line start), then the pair it
 *     forms with the next byte in a hashed pair table; only then are the few rules and keywords of that
 *     pair tried, each behind a four-byte prefilter, and only while its result is still unknown (a
 *     language found once is not looked for again).  Domains, languages, FIM rules 1/2 and tool-agent
 *     rule 1 share that pass over classifyText.
 *   - The rules are written in a small regex subset (rule_compile) that matches deterministically:
 *     literals, `\b`, `\s+ \s* \w+ \d+`, byte classes with + or *, alternations of sequences (the only
 *     backtracking), `(x)?`, `.{0,N}` and `\s*$`.  A repeat must be followed by something it cannot match
 *     (true of every rule below), so greedy is exact.  `.*` (never crossing a line break, as in JavaScript)
 *     commits to the FIRST place on the line where what follows it up to the next `.*` matches; for the
 *     shapes used here (`A.*B`, `A.*B.*C`) that is exactly "B occurs after A, then C after B", and a line
 *     whose `.*` failed is remembered so it is never searched twice: every scan is linear.
 *   - PCRE2 (compiled once with JIT, match and depth limits) serves the tool-output continuation test: one
 *     anchored match per request whose patterns backtrack linearly from a single start.
 *   - The FIM literal tokens are found in every message text, without copying, eight bytes at a time:
 *     the scan stops only at their first bytes.
 *
 * Regex semantics follow the original's JavaScript regexes without the u flag: `\w`, `\b` and case folding
 * are ASCII; bytes >= 0x80 are not word characters there.  Texts are bytes, so invalid UTF-8 needs no
 * validation; only the copies into route_signals are sanitised (an invalid byte or NUL becomes U+FFFD).
 * "Characters" are code points where the original counted UTF-16 units (`.{0,20}`, the 1000/800/400 and 20
 * character limits): the same on the Basic Multilingual Plane.
 *
 * Domain keywords match on word boundaries (the fix of §17.13) with their own notion of a word character:
 * ASCII letters, digits and '_' (identifiers such as max_tokens are one word in code) and every byte
 * >= 0x80, so that "patient" does not match inside "Patientin" and nothing matches inside a non-ASCII word.
 *
 * Nothing here allocates per message except text(content) of array content with several text blocks (and
 * classifyText, lastUser + "\n" + systemText, when it does not fit a stack buffer).
 */
#include "config.h"
#include "routing/signals.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "util/log.h"
#include "util/xalloc.h"

#define FIM_SHORT_SYSTEM 400            /* code points: a system prompt this short may say just "autocomplete" */
#define FIM_FENCE_REST 20               /* rule 4: less than this much text outside the fenced blocks */
#define TURN_PREFIX 40                  /* bytes of a user message needed to tell tool output */
#define STACK_TEXT 16384
#define SIGNALS_SYSTEM_SCAN 2000        /* code points of the system prompt the scans look at */                 /* classifyText up to this size is built on the stack */
#define RX_MATCH_LIMIT 10000000u
#define RX_DEPTH_LIMIT 10000u

/* --- byte classes ------------------------------------------------------------------------------------- */

enum {
	K_W = 1u << 0,          /* \w: [A-Za-z0-9_] */
	K_DW = 1u << 1,         /* a word byte for domain keywords: \w or >= 0x80 */
	K_NL = 1u << 2,         /* \n \r: ends a line */
	K_SP = 1u << 3,         /* \s (ASCII): space \t \n \v \f \r */
	K_HSP = 1u << 4,        /* space \t \v \f */
	K_DIGIT = 1u << 5,
	/* a rule of a group may start at this byte: anywhere / at a \w word start / at a domain word start */
	K_ANY_LANG = 1u << 8, K_ANY_FA = 1u << 9, K_ANY_FR = 1u << 10, K_ANY_DOM = 1u << 11,
	K_WS_LANG = 1u << 12, K_WS_FA = 1u << 13, K_WS_FR = 1u << 14, K_DWS_DOM = 1u << 15,
};

static uint32_t cls[256];
static unsigned char lower[256];

static inline bool
is_w(unsigned char c)
{
	return cls[c] & K_W;
}

static inline bool
is_sp(unsigned char c)
{
	return cls[c] & K_SP;
}

/* --- UTF-8 ---------------------------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (1..4), 0 when the byte at p does not start one. */
static size_t
u8_valid(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0)
		return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))   /* overlong, surrogate */
			return 0;
		return 3;
	}
	if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
		return 0;
	if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
		return 0;
	return 4;
}

/* One code point forward: an invalid byte counts as one. */
static size_t
u8_step(const unsigned char *p, size_t n)
{
	size_t l = u8_valid(p, n);
	return l ? l : 1;
}

/* Eight bytes without a NUL or a byte >= 0x80 (the common case, taken eight at a time). */
static inline bool
ascii8(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return !(((w - 0x0101010101010101u) | w) & 0x8080808080808080u);
}

static size_t
u8_count(const unsigned char *p, size_t n)
{
	size_t cp = 0;
	for (size_t i = 0; i < n;) {
		if (n - i >= 8 && ascii8(p + i)) {
			i += 8;
			cp += 8;
			continue;
		}
		i += p[i] < 0x80 ? 1 : u8_step(p + i, n - i);
		cp++;
	}
	return cp;
}

/* The length in bytes of the first maxcp code points of p (all of p when it is shorter). */
static size_t
u8_prefix_bytes(const unsigned char *p, size_t n, size_t maxcp)
{
	size_t i = 0, cp = 0;
	while (i < n && cp < maxcp) {
		if (n - i >= 8 && maxcp - cp >= 8 && ascii8(p + i)) {
			i += 8;
			cp += 8;
			continue;
		}
		i += p[i] < 0x80 ? 1 : u8_step(p + i, n - i);
		cp++;
	}
	return i;
}

/* Copies the first maxcp code points of p into dst (room for maxcp * 4 + 1 bytes), NUL-terminated valid
 * UTF-8: an invalid byte or a NUL becomes U+FFFD, so the cut never falls inside a sequence. */
static void
u8_copy_prefix(char *dst, const unsigned char *p, size_t n, size_t maxcp)
{
	size_t o = 0, i = 0, run = 0, cp = 0;   /* p[run..i) is valid and not yet copied */
	while (i < n && cp < maxcp) {
		if (n - i >= 8 && maxcp - cp >= 8 && ascii8(p + i)) {
			i += 8;
			cp += 8;
			continue;
		}
		size_t l = p[i] >= 0x80 ? u8_valid(p + i, n - i) : p[i] != 0;
		cp++;
		if (l) {
			i += l;
			continue;
		}
		memcpy(dst + o, p + run, i - run);
		o += i - run;
		memcpy(dst + o, "\xEF\xBF\xBD", 3);
		o += 3;
		run = ++i;
	}
	memcpy(dst + o, p + run, i - run);
	o += i - run;
	dst[o] = '\0';
}

/* The byte length of the JavaScript whitespace character at p (what trim() and \s remove: ASCII
 * whitespace, NBSP, the Unicode space separators, LS, PS and the BOM), 0 when it is none. */
static size_t
jsws_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return is_sp(p[0]) ? 1 : 0;
	if (n >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
		return 2;
	if (n < 3)
		return 0;
	if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80)
		return 3;
	if (p[0] == 0xE2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 ||
					     p[2] == 0xAF))
		return 3;
	if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F)
		return 3;
	if ((p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) || (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF))
		return 3;
	return 0;
}

/* Leading JavaScript whitespace removed. */
static size_t
ltrim_off(const unsigned char *p, size_t n)
{
	size_t i = 0, l;
	while (i < n && (l = jsws_len(p + i, n - i)) > 0)
		i += l;
	return i;
}

/* --- the text of a message ------------------------------------------------------------------------------ */

static bool
str_is(const json_t *v, const char *s)
{
	const char *x = json_string_value(v);
	return x && strcmp(x, s) == 0;
}

static bool
is_text_block(const json_t *b)
{
	const json_t *t = json_object_get(b, "type");
	return str_is(t, "text") || str_is(t, "input_text");
}

/* A block's type is one of the NULL-terminated names. */
static bool
block_type_in(const json_t *b, const char *const *names)
{
	const char *t = json_string_value(json_object_get(b, "type"));
	if (!t)
		return false;
	for (; *names; names++)
		if (strcmp(t, *names) == 0)
			return true;
	return false;
}

static const char *const image_types[] = { "image_url", "image", "input_image", NULL };
static const char *const tool_block_types[] = { "tool_result", "tool_use", "tool_use_result", NULL };
static const char *const tool_result_types[] = { "tool_result", "tool_use_result", NULL };

static bool
content_has_block(const json_t *content, const char *const *types)
{
	size_t i;
	const json_t *b;
	if (!json_is_array(content))
		return false;
	json_array_foreach(content, i, b)
		if (block_type_in(b, types))
			return true;
	return false;
}

/* The pieces text(content) joins with one space: the string itself, or the text of each text block (a
 * text that is not a string counts as ""). */
struct pieces {
	const json_t *content;
	size_t i;
};

static bool
piece_next(struct pieces *it, const unsigned char **s, size_t *n)
{
	const json_t *c = it->content;
	if (json_is_string(c)) {
		if (it->i++)
			return false;
		*s = (const unsigned char *)json_string_value(c);
		*n = json_string_length(c);
		return true;
	}
	if (!json_is_array(c))
		return false;
	while (it->i < json_array_size(c)) {
		const json_t *b = json_array_get(c, it->i++);
		if (!is_text_block(b))
			continue;
		const json_t *t = json_object_get(b, "text");
		*s = (const unsigned char *)(json_is_string(t) ? json_string_value(t) : "");
		*n = json_is_string(t) ? json_string_length(t) : 0;
		return true;
	}
	return false;
}

/* text(content) of §5.2, borrowed when it is one piece, else owned (joined with one space). */
struct text {
	const unsigned char *s;
	size_t n;
	char *own;
};

static void
text_of(const json_t *content, struct text *t)
{
	struct pieces it = { content, 0 };
	const unsigned char *p;
	size_t n, count = 0, total = 0;
	t->s = (const unsigned char *)"";
	t->n = 0;
	t->own = NULL;
	while (piece_next(&it, &p, &n)) {
		if (count++ == 0) {
			t->s = p;
			t->n = n;
		}
		total += n + 1;
	}
	if (count < 2)
		return;
	/* Several text blocks: the only copy a message costs.  The size is that of strings already in memory. */
	char *buf = xmalloc(total);
	size_t o = 0;
	it.i = 0;
	for (bool first = true; piece_next(&it, &p, &n); first = false) {
		if (!first)
			buf[o++] = ' ';
		memcpy(buf + o, p, n);
		o += n;
	}
	buf[o] = '\0';
	t->s = (const unsigned char *)buf;
	t->n = o;
	t->own = buf;
}

static void
text_free(struct text *t)
{
	free(t->own);
	t->own = NULL;
}

/* The first bytes of text(content) after leading whitespace, without copying the whole text; returns
 * their length. */
static size_t
text_prefix(const json_t *content, char *out, size_t cap)
{
	struct pieces it = { content, 0 };
	const unsigned char *p;
	size_t n, o = 0;
	bool started = false, first = true;
	while (o < cap && piece_next(&it, &p, &n)) {
		if (!first && started)
			out[o++] = ' ';
		first = false;
		size_t i = started ? 0 : ltrim_off(p, n);
		if (i < n)
			started = true;
		for (; i < n && o < cap; i++)
			out[o++] = (char)p[i];
	}
	return o;
}

/* --- rules: a deterministic regex subset ----------------------------------------------------------------- */

enum opk {
	O_LIT,          /* literal bytes (lowercase in a caseless rule) */
	O_ONE,          /* one byte of a set */
	O_REP,          /* a set repeated, greedy, at least min times */
	O_BOUND,        /* \b */
	O_EOL,          /* \s*$ under (?m): horizontal space, then a line break or the end */
	O_ALT,          /* (a|b|...) of sequences; (x)? has an empty last alternative */
	O_NEAR,         /* .{0,n} */
	O_LINE,         /* .* */
};

struct prog;

struct op {
	unsigned char kind;
	unsigned char min;              /* O_REP: 0 or 1; O_LINE: 1 for the rule's first `.*` */
	unsigned short n;               /* O_LIT length, O_ALT alternatives, O_NEAR maximum */
	unsigned short seg_end;         /* O_LINE: the op after its segment (the next O_LINE or the end) */
	unsigned char *lit;
	struct prog *alts;
	uint8_t set[32];                /* O_ONE, O_REP; O_LINE: the bytes its segment can start with */
};

struct prog {
	struct op *ops;
	size_t nops;
};

static inline bool
in_set(const uint8_t *set, unsigned char c)
{
	return set[c >> 3] & (1u << (c & 7));
}

static void
set_add(uint8_t *set, unsigned char c, bool caseless)
{
	set[c >> 3] |= (uint8_t)(1u << (c & 7));
	if (caseless && c >= 'A' && c <= 'Z')
		set_add(set, (unsigned char)(c + 32), false);
	if (caseless && c >= 'a' && c <= 'z')
		set_add(set, (unsigned char)(c - 32), false);
}

static void
set_class(uint8_t *set, char esc)
{
	for (unsigned c = 0; c < 256; c++)
		if ((esc == 'w' && (cls[c] & K_W)) || (esc == 's' && (cls[c] & K_SP)) ||
		    (esc == 'd' && (cls[c] & K_DIGIT)))
			set_add(set, (unsigned char)c, false);
}

static __attribute__((noreturn)) void
rule_bad(const char *re, const char *why)
{
	/* The rules are constants: this is a programming error that every test run hits at once. */
	log_error("signals: bad built-in rule %s: %s", re, why);
	abort();
}

static struct op *
prog_push(struct prog *p, enum opk kind)
{
	p->ops = xrealloc(p->ops, (p->nops + 1) * sizeof *p->ops);
	struct op *o = &p->ops[p->nops++];
	memset(o, 0, sizeof *o);
	o->kind = (unsigned char)kind;
	return o;
}

/* Appends one literal byte, extending the literal op at the end. */
static void
prog_lit(struct prog *p, unsigned char c, bool caseless)
{
	struct op *o = p->nops ? &p->ops[p->nops - 1] : NULL;
	if (!o || o->kind != O_LIT)
		o = prog_push(p, O_LIT);
	o->lit = xrealloc(o->lit, o->n + 1u);
	o->lit[o->n++] = caseless ? lower[c] : c;
}

/* A quantifier after a class: O_ONE, or O_REP with min 0 or 1. */
static void
prog_set(struct prog *p, const uint8_t *set, const char **pp)
{
	struct op *o;
	if (**pp == '+' || **pp == '*') {
		o = prog_push(p, O_REP);
		o->min = **pp == '+';
		(*pp)++;
	} else {
		o = prog_push(p, O_ONE);
	}
	memcpy(o->set, set, sizeof o->set);
}

static struct prog parse_seq(const char *re, const char **pp, bool caseless, bool top);

static void
parse_group(struct prog *p, const char *re, const char **pp, bool caseless)
{
	struct op *o = prog_push(p, O_ALT);
	struct prog *alts = NULL;
	size_t n = 0;
	for (;;) {
		struct prog a = parse_seq(re, pp, caseless, false);
		alts = xrealloc(alts, (n + 1) * sizeof *alts);
		alts[n++] = a;
		if (**pp == '|') {
			(*pp)++;
			continue;
		}
		if (**pp != ')')
			rule_bad(re, "unclosed group");
		(*pp)++;
		break;
	}
	if (**pp == '?') {
		(*pp)++;
		alts = xrealloc(alts, (n + 1) * sizeof *alts);
		alts[n].ops = NULL;
		alts[n++].nops = 0;
	}
	o = &p->ops[p->nops - 1];      /* the array may have moved */
	o->alts = alts;
	o->n = (unsigned short)n;
}

static struct prog
parse_seq(const char *re, const char **pp, bool caseless, bool top)
{
	struct prog p = { NULL, 0 };
	const char *s = *pp;
	while (*s && *s != '|' && *s != ')') {
		uint8_t set[32];
		memset(set, 0, sizeof set);
		if (*s == '\\') {
			char e = s[1];
			s += 2;
			if (e == 'b') {
				prog_push(&p, O_BOUND);
			} else if (e == 's' && s[0] == '*' && s[1] == '$' && s[2] == '\0') {
				prog_push(&p, O_EOL);
				s += 2;
			} else if (e == 's' || e == 'w' || e == 'd') {
				set_class(set, e);
				prog_set(&p, set, &s);
			} else if (e) {
				prog_lit(&p, (unsigned char)e, caseless);
			} else {
				rule_bad(re, "trailing backslash");
			}
		} else if (*s == '[') {
			for (s++; *s && *s != ']'; s++) {
				if (*s == '\\' && (s[1] == 'w' || s[1] == 's' || s[1] == 'd')) {
					set_class(set, s[1]);
					s++;
				} else if (s[1] == '-' && s[2] && s[2] != ']') {
					for (unsigned c = (unsigned char)s[0]; c <= (unsigned char)s[2]; c++)
						set_add(set, (unsigned char)c, caseless);
					s += 2;
				} else {
					set_add(set, (unsigned char)(*s == '\\' ? *++s : *s), caseless);
				}
			}
			if (*s++ != ']')
				rule_bad(re, "unclosed class");
			prog_set(&p, set, &s);
		} else if (*s == '(') {
			s++;
			parse_group(&p, re, &s, caseless);
		} else if (s[0] == '.' && s[1] == '*') {
			if (!top)
				rule_bad(re, ".* inside a group");
			prog_push(&p, O_LINE);
			s += 2;
		} else if (s[0] == '.' && s[1] == '{' && s[2] == '0' && s[3] == ',') {
			char *end;
			long n = strtol(s + 4, &end, 10);
			if (*end != '}' || n <= 0 || n > 1000)
				rule_bad(re, "bad .{0,N}");
			prog_push(&p, O_NEAR)->n = (unsigned short)n;
			s = end + 1;
		} else if (strchr(".*+?{}$^[]", *s)) {
			rule_bad(re, "syntax outside the subset");
		} else {
			prog_lit(&p, (unsigned char)*s, caseless);
			s++;
		}
	}
	*pp = s;
	return p;
}

/* The bytes a match of ops[k..] can start with (zero-width \b skipped); false when that is unknown. */
static bool
first_set(const struct prog *p, size_t k, uint8_t *set, bool caseless)
{
	while (k < p->nops && p->ops[k].kind == O_BOUND)
		k++;
	if (k >= p->nops)
		return false;
	const struct op *o = &p->ops[k];
	switch (o->kind) {
	case O_LIT:
		set_add(set, o->lit[0], caseless);
		return true;
	case O_ONE:
		for (int i = 0; i < 32; i++)
			set[i] |= o->set[i];
		return true;
	case O_REP:
		if (o->min == 0)
			return false;
		for (int i = 0; i < 32; i++)
			set[i] |= o->set[i];
		return true;
	case O_ALT:
		for (size_t i = 0; i < o->n; i++)
			if (!first_set(&o->alts[i], 0, set, caseless))
				return false;
		return true;
	default:
		return false;
	}
}

/* The bytes that can follow the first byte of a match of ops[k..] (a superset); false when unknown. */
static bool
second_set(const struct prog *p, size_t k, uint8_t *set, bool caseless)
{
	while (k < p->nops && p->ops[k].kind == O_BOUND)
		k++;
	if (k >= p->nops)
		return false;
	const struct op *o = &p->ops[k];
	switch (o->kind) {
	case O_LIT:
		if (o->n >= 2) {
			set_add(set, o->lit[1], caseless);
			return true;
		}
		return first_set(p, k + 1, set, caseless);
	case O_ONE:
		return first_set(p, k + 1, set, caseless);
	case O_ALT:
		for (size_t i = 0; i < o->n; i++) {
			const struct prog *a = &o->alts[i];
			if (a->nops == 0 || a->ops[0].kind != O_LIT || a->ops[0].n < 2)
				return false;
			set_add(set, a->ops[0].lit[1], caseless);
		}
		return true;
	default:
		return false;
	}
}

/* What a rule finds.  Languages are bits 0..10 (ROUTE_LANG_*), the rest follow. */
enum {
	A_LANGS = (1u << ROUTE_NLANGS) - 1,
	A_FIM = 1u << 11,               /* FIM rule 1/2, the specific phrases */
	A_FIM_AUTO = 1u << 12,          /* a bare \bautocomplete\b */
	A_AGENT = 1u << 13,             /* tool-agent rule 1 */
	A_FRUST = 1u << 14,             /* a strong frustration phrase */
	A_FRUST_WEAK = 1u << 15,        /* a weak one (follow-ups only) */
	A_DOM = 1u << 16,               /* domain keywords */
	A_FA = A_FIM | A_FIM_AUTO | A_AGENT,
	A_FR = A_FRUST | A_FRUST_WEAK,
};

enum where { W_ANY, W_WORD, W_LINE };

struct rule_src {
	unsigned what;                  /* A_* bit (a language: 1u << ROUTE_LANG_*) */
	bool caseless;
	const char *re;
};

#define L(lang) (1u << ROUTE_LANG_##lang)

/* §5.2 code-language patterns, in table order.  Fixed: bash's `\$\{?\w+\}?` matched "$5" in prose; it
 * now needs a shell variable name or "${". */
static const struct rule_src lang_src[] = {
	{ L(PYTHON), false, "\\bdef \\w+\\s*\\(" },
	{ L(PYTHON), false, "\\bimport \\w+" },
	{ L(PYTHON), false, "from \\w+ import" },
	{ L(PYTHON), false, "\\.py\\b" },
	{ L(JAVASCRIPT), false, "\\bfunction \\w+\\s*\\(" },
	{ L(JAVASCRIPT), false, "const \\w+ =" },
	{ L(JAVASCRIPT), false, "=>\\s*[{(]" },
	{ L(JAVASCRIPT), false, "require\\(" },
	{ L(TYPESCRIPT), false, "interface \\w+\\s*\\{" },
	{ L(TYPESCRIPT), false, "type \\w+ =" },
	{ L(TYPESCRIPT), false, ": \\w+\\[\\]" },
	{ L(TYPESCRIPT), false, "\\.ts\\b" },
	{ L(SQL), true, "\\bselect\\b.*\\bfrom\\b" },
	{ L(SQL), true, "\\bcreate table\\b" },
	{ L(SQL), true, "\\binsert into\\b" },
	{ L(SQL), true, "\\balter table\\b" },
	{ L(GO), false, "\\bfunc \\w+\\s*\\(" },
	{ L(GO), false, "\\bpackage \\w+" },
	{ L(GO), false, ":=" },
	{ L(GO), false, "\\.go\\b" },
	{ L(RUST), false, "\\bfn \\w+\\s*\\(" },
	{ L(RUST), false, "\\blet mut\\b" },
	{ L(RUST), false, "\\bimpl\\b" },
	{ L(RUST), false, "\\.rs\\b" },
	{ L(SOLIDITY), false, "pragma solidity" },
	{ L(SOLIDITY), false, "contract \\w+\\s*\\{" },
	{ L(SOLIDITY), false, "\\bmapping\\s*\\(" },
	{ L(SOLIDITY), false, "\\.sol\\b" },
	{ L(BASH), false, "#!/bin/(bash|sh)" },
	{ L(BASH), false, "\\$[A-Za-z_{]" },
	{ L(BASH), false, "\\|\\s*(grep|awk|sed)" },
	{ L(DOCKER), false, "^FROM \\w+" },
	{ L(DOCKER), false, "^RUN \\w+" },
	{ L(DOCKER), false, "^EXPOSE \\d+" },
	{ L(DOCKER), false, "^WORKDIR" },
	{ L(YAML), false, "^---\\s*$" },
	{ L(YAML), false, "^\\w[\\w-]*:\\s*$" },
	{ L(YAML), false, "^  - \\w" },
	{ L(TERRAFORM), false, "\\bresource \"\\w+\" \"\\w+\"" },
	{ L(TERRAFORM), false, "\\bprovider \"\\w+\"" },
	{ L(TERRAFORM), false, "\\.tf\\b" },
};

/* FIM rules 1 and 2 and tool-agent rule 1 (§5.2).  Fixed (§17.13): a bare "autocomplete" (A_FIM_AUTO)
 * makes a request FIM only from a short system prompt (signals_extract decides); the specific phrases of an
 * autocomplete instruction always do. */
static const struct rule_src fa_src[] = {
	{ A_FIM, true, "\\bhole\\s+filler\\b" },
	{ A_FIM, true, "\\bfill.{0,20}middle\\b" },
	{ A_FIM, true, "\\bfim\\b" },
	{ A_FIM, true, "\\bcode\\s+completion\\b" },
	{ A_FIM, true, "\\bfill\\s+in\\s+the\\s+blank" },
	{ A_FIM, true, "\\bfill\\s+the\\s+hole\\b" },
	{ A_FIM, true, "completion\\s+(ai|assistant|model)" },
	{ A_FIM, true, "\\binline\\s+(completion|suggestion)\\b" },
	{ A_FIM, false, "\\{\\{HOLE\\}\\}" },
	{ A_FIM, true, "\\bautocomplete\\s+(engine|assistant|model)\\b" },
	{ A_FIM, true, "\\byou\\s+are\\s+an\\s+autocomplete\\b" },
	{ A_FIM_AUTO, true, "\\bautocomplete\\b" },
	{ A_AGENT, true, "\\bfile\\s+search\\s+specialist\\b" },
	{ A_AGENT, true, "\\bcode\\s+(editor|editing)\\s+(ai|assistant|agent)\\b" },
	{ A_AGENT, true, "\\bsoftware\\s+engineer(ing)?\\s+(ai|assistant|agent)\\b" },
	{ A_AGENT, true, "\\bagentic\\s+(coding|development)\\b" },
	{ A_AGENT, true, "\\bexpert\\s+software\\s+engineer\\b" },
	{ A_AGENT, true, "you\\s+(are|excel)\\s+at\\s+.*\\b(glob|grep|search|navigate)\\b.*codebase" },
	{ A_AGENT, true, "\\bthoroughly\\s+navigating\\s+and\\s+exploring\\s+codebases\\b" },
	{ A_AGENT, true, "\\bin\\s+agent\\s+mode\\b" },
	{ A_AGENT, true, "\\bagent\\s+mode\\b.*\\btool" },
	{ A_AGENT, true, "<tool_use_instructions>" },
	{ A_AGENT, false, "TOOL_NAME:\\s*(read_file|create_new_file|run_terminal_command)" },
	{ A_AGENT, true, "\\byou\\s+have\\s+access\\s+to\\s+.*\\btools\\b" },
};

/* signals_frustrated's phrases (signals.h).  APOS: the apostrophe is often left out or typed as U+2019. */
#define APOS "('|\xE2\x80\x99|)"
#define NEG "(doesn" APOS "t|does\\s+not|didn" APOS "t|did\\s+not|isn" APOS "t|is\\s+not|won" APOS "t|not)"
static const struct rule_src frust_src[] = {
	{ A_FRUST, true, "\\bstill\\s+" NEG "\\s+(work|working|fixed|solved|right|correct)\\b" },
	{ A_FRUST, true, "\\bstill\\s+(broken|wrong|failing|fails|failed|crashing|crashes|incorrect)\\b" },
	{ A_FRUST, true, "\\bstill\\s+(getting|get|having|have|seeing|see)\\s+the\\s+same\\b" },
	{ A_FRUST, true, "\\bstill\\s+the\\s+same\\s+(error|issue|problem|bug|result|output|mistake)" },
	{ A_FRUST, true, "\\b(wrong|broken|failing|fails|failed|incorrect)\\s+again\\b" },
	{ A_FRUST, true, "\\b" NEG "\\s+(work|working)\\s+again\\b" },
	{ A_FRUST, true, "\\bsame\\s+(error|mistake|problem|issue|bug|thing)\\s+again\\b" },
	{ A_FRUST, true, "\\bmaking\\s+the\\s+same\\s+mistake" },
	{ A_FRUST, true, "\\byou\\s+keep\\s+(on\\s+)?(making|giving|ignoring|repeating|doing|breaking|saying|"
			 "forgetting|changing|adding|removing|using|suggesting|returning|writing|missing|getting|"
			 "producing|introducing|reverting|hallucinating|messing|screwing|failing|telling|sending|"
			 "rewriting|deleting|undoing|going)\\b" },
	{ A_FRUST, true, "\\b(again|wieder|nochmal)\\s*(!!|\\?!|!\\?)" },
	{ A_FRUST, true, "\\bi(\\s+have|'ve|\xE2\x80\x99ve)?\\s+already\\s+told\\s+you\\b" },
	{ A_FRUST, true, "\\bi\\s+told\\s+you\\s+(already|before|twice|earlier|so|multiple|several|many)\\b" },
	{ A_FRUST, true, "\\bhow\\s+many\\s+times\\s+(do|have|must|did|should)\\s+i\\b" },
	{ A_FRUST, true, "\\bfor\\s+the\\s+(third|fourth|fifth|tenth|hundredth|umpteenth|nth|last)\\s+time\\b" },
	{ A_FRUST, true, "\\bnot\\s+what\\s+i\\s+(asked|wanted|said|meant)\\b" },
	{ A_FRUST, true, "\\bare\\s+you\\s+(kidding|listening|stupid|dumb|even\\s+(reading|listening|trying))\\b" },
	{ A_FRUST, true, "\\b(wtf|ffs)\\b" },
	{ A_FRUST, true, "\\b(funktioniert|geht|klappt|l\xC3\xA4uft)\\s+(immer\\s+noch|noch\\s+immer|schon\\s+wieder|"
			 "wieder|weiterhin)\\s+nicht\\b" },
	{ A_FRUST, true, "\\b(immer\\s+noch|noch\\s+immer|schon\\s+wieder|wieder)\\s+(falsch|kaputt|"
			 "der\\s+(gleiche|selbe)\\s+fehler|derselbe\\s+fehler|dasselbe|das\\s+gleiche)" },
	{ A_FRUST, true, "\\bdu\\s+(machst|ignorierst|wiederholst|vergisst)\\s+(\\w+\\s+)?(immer\\s+wieder|"
			 "st\xC3\xA4ndig|dauernd|schon\\s+wieder)" },
	{ A_FRUST, true, "\\b(hab|habe)\\s+ich\\s+(dir\\s+)?(doch\\s+)?(schon\\s+|bereits\\s+)?(gesagt|geschrieben)\\b" },
	{ A_FRUST, true, "\\bwie\\s+oft\\s+(noch|denn\\s+noch|soll\\s+ich|muss\\s+ich)\\b" },
	{ A_FRUST, true, "\\bzum\\s+(x-ten|zehnten|dritten|vierten|letzten|hundertsten)\\s+mal\\b" },
	{ A_FRUST, true, "\\bnicht\\s+das(,)?\\s+was\\s+ich\\s+(wollte|gefragt|gesagt|meinte)\\b" },
	{ A_FRUST_WEAK, true, "\\b(doesn" APOS "t|does\\s+not|didn" APOS "t|did\\s+not)\\s+work\\b" },
	{ A_FRUST_WEAK, true, "\\b(not|isn" APOS "t|is\\s+not)\\s+working\\b" },
	{ A_FRUST_WEAK, true, "\\b(this|that|it)(" APOS "s|\\s+is)\\s+(completely\\s+|totally\\s+|all\\s+)?wrong\\b" },
	{ A_FRUST_WEAK, true, "\\b(funktioniert|geht|klappt)\\s+(so\\s+)?(immer\\s+)?nicht\\b" },
	{ A_FRUST_WEAK, true, "\\b(das|es)\\s+ist\\s+(so\\s+|v\xC3\xB6llig\\s+|komplett\\s+)?falsch\\b" },
};

struct rule {
	unsigned what;
	bool caseless;
	unsigned char where;
	signed char memo;               /* index of its `.*` memo, -1 = none */
	struct prog prog;
};

#define MAX_RULES 128
#define MAX_MEMO 8

static struct rule rules[MAX_RULES];
static size_t nrules;
static size_t nmemo;

/* Rules (or keywords) by their first two bytes (hashed): anywhere / at a \w word start; line-start rules in
 * one list.  Each entry carries the first bytes of its literal prefix, compared four at a time before the
 * matcher runs. */
struct ent {
	uint32_t pfx, mask, fold;       /* match: ((4 text bytes | fold) & mask) == pfx */
	unsigned char id;
};
struct list {
	struct ent *e;
	size_t n;
};
static struct list line_rules;

/* Per way of dispatching: the byte pairs its entries can start with, and the entries by pair.  The scan
 * leaves its loop only when the pair a byte forms with the next one may start something, which skips
 * almost every position of prose, and then tries only the few entries of that pair.  Both are hashed: the
 * pair table (one bit per way, 8 KB) stays in L1, and a false positive costs one bucket whose prefilters
 * reject it. */
enum { BIG_ANY, BIG_WORD, BIG_KW_ANY, BIG_KW_WORD, NBIG };
#define BIG_BITS 13
#define NBUCKET 2048
static uint8_t bigrams[1u << BIG_BITS];         /* bit t: a pair of way t hashes here */
static struct list buckets[NBIG][NBUCKET];
/* The ways (1 << BIG_*) that the class bits of a byte qualify for, by bits 8..15 of cls. */
static uint8_t ways_of[256];

static inline unsigned
big_hash(unsigned char a, unsigned char b)
{
	return (((unsigned)a << 8 | b) * 2654435761u) >> (32 - BIG_BITS);
}

static inline const struct list *
big_list(int t, unsigned char a, unsigned char b)
{
	return &buckets[t][big_hash(a, b) & (NBUCKET - 1)];
}

static void list_add(struct list *l, size_t id, const unsigned char *lit, size_t n, bool caseless);

static void
big_add(int t, const uint8_t *first, const uint8_t *second, size_t id, const unsigned char *lit, size_t n,
	bool caseless)
{
	for (unsigned a = 0; a < 256; a++) {
		if (!in_set(first, (unsigned char)a))
			continue;
		for (unsigned b = 0; b < 256; b++)
			if (in_set(second, (unsigned char)b)) {
				bigrams[big_hash((unsigned char)a, (unsigned char)b)] |= (uint8_t)(1u << t);
				struct list *l = (struct list *)big_list(t, (unsigned char)a, (unsigned char)b);
				if (l->n == 0 || l->e[l->n - 1].id != id)
					list_add(l, id, lit, n, caseless);
			}
	}
}

/* The prefilter of up to four literal bytes (caseless: compared with ASCII letters folded by | 0x20, which
 * may let a non-letter through but never stops a match). */
static void
list_add(struct list *l, size_t id, const unsigned char *lit, size_t n, bool caseless)
{
	unsigned char pfx[4] = { 0 }, mask[4] = { 0 }, fold[4] = { 0 };
	for (size_t i = 0; i < n && i < 4; i++) {
		fold[i] = caseless ? 0x20 : 0;
		pfx[i] = lit[i] | fold[i];
		mask[i] = 0xFF;
	}
	struct ent e = { 0, 0, 0, (unsigned char)id };
	memcpy(&e.pfx, pfx, 4);          /* in memory order, as load4 reads the text */
	memcpy(&e.mask, mask, 4);
	memcpy(&e.fold, fold, 4);
	l->e = xrealloc(l->e, (l->n + 1) * sizeof *l->e);
	l->e[l->n++] = e;
}

static inline uint32_t
load4(const unsigned char *p)
{
	uint32_t w;
	memcpy(&w, p, 4);
	return w;
}

static inline bool
ent_may(const struct ent *e, const unsigned char *s, size_t n, size_t i)
{
	return n - i < 4 || ((load4(s + i) | e->fold) & e->mask) == e->pfx;
}

static uint32_t
group_bit(unsigned what, bool word)
{
	if (what & A_LANGS)
		return word ? K_WS_LANG : K_ANY_LANG;
	if (what & A_FA)
		return word ? K_WS_FA : K_ANY_FA;
	return word ? K_WS_FR : K_ANY_FR;
}

static void
rule_compile(const struct rule_src *src)
{
	if (nrules >= MAX_RULES)
		rule_bad(src->re, "too many rules");
	struct rule *r = &rules[nrules];
	const char *s = src->re;
	r->what = src->what;
	r->caseless = src->caseless;
	r->memo = -1;
	r->where = W_ANY;
	if (s[0] == '^') {
		r->where = W_LINE;
		s++;
	} else if (s[0] == '\\' && s[1] == 'b') {
		r->where = W_WORD;
		s += 2;
	}
	r->prog = parse_seq(src->re, &s, src->caseless, true);
	if (*s)
		rule_bad(src->re, "unbalanced ')' or '|'");
	for (size_t k = 0; k < r->prog.nops; k++) {
		struct op *o = &r->prog.ops[k];
		if (o->kind != O_LINE)
			continue;
		o->seg_end = (unsigned short)r->prog.nops;
		for (size_t j = k + 1; j < r->prog.nops; j++)
			if (r->prog.ops[j].kind == O_LINE) {
				o->seg_end = (unsigned short)j;
				break;
			}
		if (!first_set(&r->prog, k + 1, o->set, src->caseless))
			memset(o->set, 0xFF, sizeof o->set);
		if (r->memo < 0) {
			o->min = 1;
			if (nmemo >= MAX_MEMO)
				rule_bad(src->re, "too many .* rules");
			r->memo = (signed char)nmemo++;
		}
	}
	const struct op *o0 = &r->prog.ops[0];
	const unsigned char *plit = o0->kind == O_LIT ? o0->lit : NULL;
	size_t pn = plit ? o0->n : 0;
	if (r->where == W_LINE) {
		list_add(&line_rules, nrules, NULL, 0, false);
	} else {
		uint8_t set[32], second[32];
		memset(set, 0, sizeof set);
		memset(second, 0, sizeof second);
		if (!first_set(&r->prog, 0, set, src->caseless))
			rule_bad(src->re, "no first byte to dispatch on");
		if (!second_set(&r->prog, 0, second, src->caseless))
			memset(second, 0xFF, sizeof second);
		big_add(r->where == W_WORD ? BIG_WORD : BIG_ANY, set, second, nrules, plit, pn, src->caseless);
		for (unsigned c = 0; c < 256; c++) {
			if (!in_set(set, (unsigned char)c))
				continue;
			if (r->where == W_WORD && !(cls[c] & K_W))
				rule_bad(src->re, "\\b before a non-word byte");
			cls[c] |= group_bit(r->what, r->where == W_WORD);
		}
	}
	nrules++;
}

/* --- matching ----------------------------------------------------------------------------------------------- */

struct memo {
	size_t from, to;                /* a `.*` starting in [from, to] fails: its line was searched */
	bool set;
};

struct mctx {
	const unsigned char *s;
	size_t lim;                     /* a match ends here at the latest */
	bool caseless;
	struct memo *memo;              /* the rule's, or NULL */
};

struct cont {
	const struct prog *p;
	size_t k, end;
	const struct cont *next;
};

static bool
lit_at(const struct mctx *c, size_t pos, const unsigned char *lit, size_t n)
{
	if (c->lim - pos < n)
		return false;
	const unsigned char *s = c->s + pos;
	if (!c->caseless) {
		for (size_t i = 0; i < n; i++)
			if (s[i] != lit[i])
				return false;
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if (lower[s[i]] != lit[i])
			return false;
	return true;
}

static bool
bound_at(const struct mctx *c, size_t pos)
{
	bool before = pos > 0 && is_w(c->s[pos - 1]);
	bool after = pos < c->lim && is_w(c->s[pos]);
	return before != after;
}

static ptrdiff_t m_run(struct mctx *c, const struct prog *p, size_t k, size_t end, const struct cont *next,
		       size_t pos);

/* `.*` at ops[k]: the first place on the rest of the line where its segment matches, then the rest. */
static ptrdiff_t
m_line(struct mctx *c, const struct prog *p, size_t k, size_t end, const struct cont *next, size_t pos)
{
	const struct op *o = &p->ops[k];
	struct memo *memo = o->min ? c->memo : NULL;    /* only the rule's first `.*` is remembered */
	if (memo && memo->set && pos >= memo->from && pos <= memo->to)
		return -1;
	size_t saved = c->lim, le = pos;
	while (le < c->lim && !(cls[c->s[le]] & K_NL))
		le++;
	c->lim = le;
	ptrdiff_t r = -1;
	for (size_t q = pos; q <= le; q++) {
		if (q < le && !in_set(o->set, c->s[q]))
			continue;
		ptrdiff_t e = m_run(c, p, k + 1, o->seg_end, NULL, q);
		if (e >= 0) {
			r = m_run(c, p, o->seg_end, end, next, (size_t)e);
			break;
		}
	}
	c->lim = saved;
	if (r < 0 && memo) {
		/* Any later start on this line searches a part of what was searched: it fails too. */
		memo->set = true;
		memo->from = pos;
		memo->to = le;
	}
	return r;
}

/* Matches ops[k..end) of p at pos, then the continuation; the end of the match or -1. */
static ptrdiff_t
m_run(struct mctx *c, const struct prog *p, size_t k, size_t end, const struct cont *next, size_t pos)
{
	const unsigned char *s = c->s;
	for (; k < end; k++) {
		const struct op *o = &p->ops[k];
		switch (o->kind) {
		case O_LIT:
			if (!lit_at(c, pos, o->lit, o->n))
				return -1;
			pos += o->n;
			break;
		case O_ONE:
			if (pos >= c->lim || !in_set(o->set, s[pos]))
				return -1;
			pos++;
			break;
		case O_REP: {
			size_t q = pos;
			while (q < c->lim && in_set(o->set, s[q]))
				q++;
			if (q - pos < o->min)
				return -1;
			pos = q;
			break;
		}
		case O_BOUND:
			if (!bound_at(c, pos))
				return -1;
			break;
		case O_EOL:
			while (pos < c->lim && (cls[s[pos]] & K_HSP))
				pos++;
			if (pos < c->lim && !(cls[s[pos]] & K_NL))
				return -1;
			break;
		case O_ALT: {
			struct cont after = { p, k + 1, end, next };
			for (size_t i = 0; i < o->n; i++) {
				ptrdiff_t r = m_run(c, &o->alts[i], 0, o->alts[i].nops, &after, pos);
				if (r >= 0)
					return r;
			}
			return -1;
		}
		case O_NEAR:
			for (size_t i = 0, q = pos;; i++) {
				ptrdiff_t r = m_run(c, p, k + 1, end, next, q);
				if (r >= 0)
					return r;
				if (i == o->n || q >= c->lim || (cls[s[q]] & K_NL))
					return -1;
				q += u8_step(s + q, c->lim - q);
			}
		case O_LINE:
			return m_line(c, p, k, end, next, pos);
		default:
			return -1;
		}
	}
	if (next)
		return m_run(c, next->p, next->k, next->end, next->next, pos);
	return (ptrdiff_t)pos;
}

/* --- domain keywords ------------------------------------------------------------------------------------------ */

enum { KW_STEM = 1 };   /* matches as a word prefix (no end boundary) */

struct kw {
	unsigned char dom;
	unsigned char flags;
	const char *w;          /* lowercase; a space matches a run of ASCII whitespace */
};

/* The lists of §5.2 on word boundaries.  A keyword may be followed by a plural "s" or "es"; a keyword that
 * ends in a non-word byte ("cve-", "article ") needs no end boundary; KW_STEM entries match as prefixes of
 * a word.  Changes, each for a false positive in developer text or a miss the substring match hid:
 *   security: "vulnerabilit" (vulnerability/-ies), "exploit", "encrypt", "decrypt", "cryptograph" and
 *     "oauth" (oauth2) are stems.  "token" stays a whole word: alone it is everyday LLM and parser talk,
 *     but with the threshold of two distinct keywords it only counts next to a real security word, and
 *     max_tokens is one word.
 *   legal: "liabilit" (liability/-ies) and "indemnif" are stems; "legal entity"/"legal entities".
 *   medical: "symptom" (the original's "symptoms" as singular + plural); "diagnoses" added.
 *   finance: the bare "audit" is dropped: in developer text it is "npm audit", "audit log", "security
 *     audit" and with a threshold of one it alone made a request financial; "financial audit", "tax
 *     audit" and "auditor" remain.  "amortiz"/"amortis" and "depreciat" are stems. */
static const struct kw kw_table[] = {
	{ ROUTE_DOM_SECURITY, 0, "private key" },
	{ ROUTE_DOM_SECURITY, 0, "secret key" },
	{ ROUTE_DOM_SECURITY, 0, "api key" },
	{ ROUTE_DOM_SECURITY, 0, "password" },
	{ ROUTE_DOM_SECURITY, 0, "credential" },
	{ ROUTE_DOM_SECURITY, 0, "jwt" },
	{ ROUTE_DOM_SECURITY, 0, "token" },
	{ ROUTE_DOM_SECURITY, 0, "bearer" },
	{ ROUTE_DOM_SECURITY, KW_STEM, "oauth" },
	{ ROUTE_DOM_SECURITY, KW_STEM, "vulnerabilit" },
	{ ROUTE_DOM_SECURITY, KW_STEM, "exploit" },
	{ ROUTE_DOM_SECURITY, 0, "cve-" },
	{ ROUTE_DOM_SECURITY, 0, "sql injection" },
	{ ROUTE_DOM_SECURITY, 0, "xss" },
	{ ROUTE_DOM_SECURITY, 0, "csrf" },
	{ ROUTE_DOM_SECURITY, 0, "buffer overflow" },
	{ ROUTE_DOM_SECURITY, KW_STEM, "cryptograph" },
	{ ROUTE_DOM_SECURITY, KW_STEM, "encrypt" },
	{ ROUTE_DOM_SECURITY, KW_STEM, "decrypt" },
	{ ROUTE_DOM_SECURITY, 0, "certificate" },
	{ ROUTE_DOM_SECURITY, 0, "-----begin" },
	{ ROUTE_DOM_SECURITY, 0, "authorization" },
	{ ROUTE_DOM_SECURITY, 0, "privilege escalation" },
	{ ROUTE_DOM_SECURITY, 0, "rce" },
	{ ROUTE_DOM_SECURITY, 0, "sandbox escape" },
	{ ROUTE_DOM_LEGAL, 0, "gdpr" },
	{ ROUTE_DOM_LEGAL, 0, "ccpa" },
	{ ROUTE_DOM_LEGAL, 0, "compliance" },
	{ ROUTE_DOM_LEGAL, 0, "regulation" },
	{ ROUTE_DOM_LEGAL, 0, "nda" },
	{ ROUTE_DOM_LEGAL, 0, "non-disclosure" },
	{ ROUTE_DOM_LEGAL, KW_STEM, "liabilit" },
	{ ROUTE_DOM_LEGAL, KW_STEM, "indemnif" },
	{ ROUTE_DOM_LEGAL, 0, "intellectual property" },
	{ ROUTE_DOM_LEGAL, 0, "copyright" },
	{ ROUTE_DOM_LEGAL, 0, "trademark" },
	{ ROUTE_DOM_LEGAL, 0, "jurisdiction" },
	{ ROUTE_DOM_LEGAL, 0, "contract clause" },
	{ ROUTE_DOM_LEGAL, 0, "article " },
	{ ROUTE_DOM_LEGAL, 0, "governing law" },
	{ ROUTE_DOM_LEGAL, 0, "data processing agreement" },
	{ ROUTE_DOM_LEGAL, 0, "dpa" },
	{ ROUTE_DOM_LEGAL, 0, "legal entity" },
	{ ROUTE_DOM_LEGAL, 0, "legal entities" },
	{ ROUTE_DOM_MEDICAL, 0, "diagnosis" },
	{ ROUTE_DOM_MEDICAL, 0, "diagnoses" },
	{ ROUTE_DOM_MEDICAL, 0, "icd-" },
	{ ROUTE_DOM_MEDICAL, 0, "treatment" },
	{ ROUTE_DOM_MEDICAL, 0, "medication" },
	{ ROUTE_DOM_MEDICAL, 0, "symptom" },
	{ ROUTE_DOM_MEDICAL, 0, "clinical trial" },
	{ ROUTE_DOM_MEDICAL, 0, "patient" },
	{ ROUTE_DOM_MEDICAL, 0, "disease" },
	{ ROUTE_DOM_MEDICAL, 0, "syndrome" },
	{ ROUTE_DOM_MEDICAL, 0, "dosage" },
	{ ROUTE_DOM_MEDICAL, 0, "prescription" },
	{ ROUTE_DOM_MEDICAL, 0, "pathology" },
	{ ROUTE_DOM_MEDICAL, 0, "pathologies" },
	{ ROUTE_DOM_MEDICAL, 0, "differential diagnosis" },
	{ ROUTE_DOM_MEDICAL, 0, "adverse effect" },
	{ ROUTE_DOM_MEDICAL, 0, "contraindication" },
	{ ROUTE_DOM_FINANCE, 0, "balance sheet" },
	{ ROUTE_DOM_FINANCE, 0, "income statement" },
	{ ROUTE_DOM_FINANCE, 0, "cash flow" },
	{ ROUTE_DOM_FINANCE, 0, "ebitda" },
	{ ROUTE_DOM_FINANCE, 0, "p&l" },
	{ ROUTE_DOM_FINANCE, 0, "financial audit" },
	{ ROUTE_DOM_FINANCE, 0, "tax audit" },
	{ ROUTE_DOM_FINANCE, 0, "auditor" },
	{ ROUTE_DOM_FINANCE, 0, "tax return" },
	{ ROUTE_DOM_FINANCE, 0, "valuation" },
	{ ROUTE_DOM_FINANCE, 0, "roi" },
	{ ROUTE_DOM_FINANCE, 0, "hedge fund" },
	{ ROUTE_DOM_FINANCE, 0, "derivative" },
	{ ROUTE_DOM_FINANCE, 0, "quarterly earnings" },
	{ ROUTE_DOM_FINANCE, 0, "fiscal year" },
	{ ROUTE_DOM_FINANCE, KW_STEM, "amortiz" },
	{ ROUTE_DOM_FINANCE, KW_STEM, "amortis" },
	{ ROUTE_DOM_FINANCE, KW_STEM, "depreciat" },
};
#define NKW (sizeof kw_table / sizeof kw_table[0])

/* Distinct keywords a domain needs: security 2, the others 1 (as the original). */
static const unsigned dom_need[ROUTE_NDOMAINS] = { 2, 1, 1, 1 };

static unsigned char kw_index[NKW];     /* the keyword's bit within its domain */

static bool
dom_boundary(const unsigned char *s, size_t n, size_t j)
{
	return j >= n || !(cls[s[j]] & K_DW);
}

/* The keyword at s[i..]: its end boundary rules included. */
static bool
kw_at(const struct kw *k, const unsigned char *s, size_t n, size_t i)
{
	size_t j = i;
	const char *w = k->w;
	for (; *w; w++) {
		if (*w == ' ') {
			if (j >= n || !is_sp(s[j]))
				return false;
			while (j < n && is_sp(s[j]))
				j++;
		} else {
			if (j >= n || lower[s[j]] != (unsigned char)*w)
				return false;
			j++;
		}
	}
	if ((k->flags & KW_STEM) || !(cls[(unsigned char)w[-1]] & K_DW))
		return true;
	if (dom_boundary(s, n, j))
		return true;
	if (lower[s[j]] == 's' && dom_boundary(s, n, j + 1))
		return true;
	return j + 1 < n && lower[s[j]] == 'e' && lower[s[j + 1]] == 's' && dom_boundary(s, n, j + 2);
}

/* --- compile once ----------------------------------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pcre2_code *rx_cont;
static pcre2_match_context *rx_mctx;

/* §5.2 tool-output continuation, on the last user text with leading whitespace removed. */
static const char cont_src[] =
	"(?i:tool output for|tool_result|tool_call_result|result of|output of)"
	"|(?i:<tool_result|<function_results|<result>)"
	"|```[\\w./\\\\]"
	"|(?i:\"?[A-Z]:\\\\.*\\\\(?:java|javaw|node|python)\\.exe)"
	"|(?i:this is the currently open file:|use the above (?:code|context|file))"
	"|\\([\\w.-]+\\)\\s*\\|git:"
	"|/[\\w/.-]+\\.(?:py|js|ts|yaml|yml|json|sh|go|rs|java|c|cpp|h|rb|log|cfg|conf|toml|xml|csv)"
	"|/repos/"
	"|(?i:output:\\s*\\()";

static void
init_tables(void)
{
	for (unsigned c = 0; c < 256; c++) {
		uint32_t k = 0;
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum || c == '_')
			k |= K_W | K_DW;
		if (c >= 0x80)
			k |= K_DW;
		if (c == '\n' || c == '\r')
			k |= K_NL;
		if (c == ' ' || (c >= '\t' && c <= '\r'))
			k |= K_SP;
		if (c == ' ' || c == '\t' || c == '\v' || c == '\f')
			k |= K_HSP;
		if (c >= '0' && c <= '9')
			k |= K_DIGIT;
		cls[c] = k;
		lower[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	for (unsigned h = 0; h < 256; h++) {
		uint32_t k = h << 8;
		ways_of[h] = (uint8_t)(((k & (K_ANY_LANG | K_ANY_FA | K_ANY_FR)) ? 1u << BIG_ANY : 0) |
				       ((k & K_ANY_DOM) ? 1u << BIG_KW_ANY : 0) |
				       ((k & (K_WS_LANG | K_WS_FA | K_WS_FR)) ? 1u << BIG_WORD : 0) |
				       ((k & K_DWS_DOM) ? 1u << BIG_KW_WORD : 0));
	}
	for (size_t i = 0; i < sizeof lang_src / sizeof lang_src[0]; i++)
		rule_compile(&lang_src[i]);
	for (size_t i = 0; i < sizeof fa_src / sizeof fa_src[0]; i++)
		rule_compile(&fa_src[i]);
	for (size_t i = 0; i < sizeof frust_src / sizeof frust_src[0]; i++)
		rule_compile(&frust_src[i]);

	unsigned char next[ROUTE_NDOMAINS] = { 0 };
	for (size_t i = 0; i < NKW; i++) {
		const struct kw *k = &kw_table[i];
		unsigned char c0 = (unsigned char)k->w[0];
		uint8_t f[32], sec[32];
		memset(f, 0, sizeof f);
		memset(sec, 0, sizeof sec);
		set_add(f, c0, true);
		set_add(sec, (unsigned char)k->w[1], true);
		kw_index[i] = next[k->dom]++;
		if (kw_index[i] >= 64)
			rule_bad(k->w, "more than 64 keywords in a domain");
		size_t pn = strcspn(k->w, " ");          /* a space matches any whitespace: not prefiltered */
		bool word = cls[c0] & K_DW;
		big_add(word ? BIG_KW_WORD : BIG_KW_ANY, f, sec, i, (const unsigned char *)k->w, pn, true);
		for (unsigned c = 0; c < 256; c++)
			if (in_set(f, (unsigned char)c))
				cls[c] |= word ? K_DWS_DOM : K_ANY_DOM;
	}

	int err;
	PCRE2_SIZE eoff;
	pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
	pcre2_set_newline(cc, PCRE2_NEWLINE_ANYCRLF);   /* `.` stops at \r as JavaScript's does */
	rx_cont = pcre2_compile((PCRE2_SPTR)cont_src, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, &err, &eoff, cc);
	pcre2_compile_context_free(cc);
	if (!rx_cont)
		rule_bad(cont_src, "PCRE2 compile");
	(void)pcre2_jit_compile(rx_cont, PCRE2_JIT_COMPLETE);   /* without JIT the interpreter is used */
	rx_mctx = pcre2_match_context_create(NULL);
	if (!rx_mctx)
		abort();
	pcre2_set_match_limit(rx_mctx, RX_MATCH_LIMIT);
	pcre2_set_depth_limit(rx_mctx, RX_DEPTH_LIMIT);
}

static void
init(void)
{
	pthread_once(&init_once, init_tables);
}

/* --- the scan ----------------------------------------------------------------------------------------------- */

struct scan {
	const unsigned char *s;
	size_t n;
	unsigned active;                /* A_* still looked for */
	unsigned found;                 /* A_* found */
	uint64_t dom_hits[ROUTE_NDOMAINS];      /* the keywords found, by their bit */
	unsigned dom_count[ROUTE_NDOMAINS];     /* how many */
	struct memo memo[MAX_MEMO];
};

static void
scan_init(struct scan *sc, const unsigned char *s, size_t n, unsigned want)
{
	memset(sc, 0, sizeof *sc);
	sc->s = s;
	sc->n = n;
	sc->active = want;
}

/* Tries the listed rules at i; lim_fa bounds FIM/agent matches (the region they may see). */
static void
try_rules(struct scan *sc, const struct list *l, size_t i, unsigned act, size_t lim_fa)
{
	for (size_t j = 0; j < l->n; j++) {
		const struct rule *r = &rules[l->e[j].id];
		if (!(r->what & act & sc->active) || !ent_may(&l->e[j], sc->s, sc->n, i))
			continue;
		struct mctx c = { sc->s, (r->what & A_FA) ? lim_fa : sc->n, r->caseless,
				  r->memo >= 0 ? &sc->memo[(int)r->memo] : NULL };
		if (m_run(&c, &r->prog, 0, r->prog.nops, NULL, i) >= 0) {
			sc->found |= r->what;
			sc->active &= ~r->what;
		}
	}
}

static void
try_keywords(struct scan *sc, const struct list *l, size_t i)
{
	for (size_t j = 0; j < l->n; j++) {
		if (!ent_may(&l->e[j], sc->s, sc->n, i))
			continue;
		const struct kw *k = &kw_table[l->e[j].id];
		uint64_t bit = (uint64_t)1 << kw_index[l->e[j].id];
		if (sc->dom_count[k->dom] >= dom_need[k->dom] || (sc->dom_hits[k->dom] & bit) ||
		    !kw_at(k, sc->s, sc->n, i))
			continue;
		sc->dom_hits[k->dom] |= bit;
		sc->dom_count[k->dom]++;
		bool all = true;
		for (int d = 0; d < ROUTE_NDOMAINS; d++)
			all = all && sc->dom_count[d] >= dom_need[d];
		if (all)
			sc->active &= ~A_DOM;
	}
}

/* The byte classes worth stopping at for what is still active. */
struct masks {
	uint32_t any, word, dword;
	bool line;
};

static struct masks
scan_masks(unsigned act)
{
	struct masks m = { 0, 0, 0, (act & (L(DOCKER) | L(YAML))) != 0 };
	if (act & A_LANGS) {
		m.any |= K_ANY_LANG;
		m.word |= K_WS_LANG;
	}
	if (act & A_FA) {
		m.any |= K_ANY_FA;
		m.word |= K_WS_FA;
	}
	if (act & A_FR) {
		m.any |= K_ANY_FR;
		m.word |= K_WS_FR;
	}
	if (act & A_DOM) {
		m.any |= K_ANY_DOM;
		m.dword |= K_DWS_DOM;
	}
	return m;
}

/* The slow path of scan_range at a byte where something may start: ways holds the ways to try (1 << BIG_*),
 * line that the byte starts a line. */
static void
scan_at(struct scan *sc, size_t i, unsigned ways, bool line, unsigned act, size_t lim_fa)
{
	const unsigned char *s = sc->s;
	if (line)
		try_rules(sc, &line_rules, i, act, lim_fa);
	if (!ways)
		return;
	unsigned char ch = s[i], nx = s[i + 1];
	if (ways & (1u << BIG_ANY))
		try_rules(sc, big_list(BIG_ANY, ch, nx), i, act, lim_fa);
	if (ways & (1u << BIG_KW_ANY))
		try_keywords(sc, big_list(BIG_KW_ANY, ch, nx), i);
	if (ways & (1u << BIG_WORD))
		try_rules(sc, big_list(BIG_WORD, ch, nx), i, act, lim_fa);
	if (ways & (1u << BIG_KW_WORD))
		try_keywords(sc, big_list(BIG_KW_WORD, ch, nx), i);
}

/* One pass over s[a..b): rules in `allowed` may start there; FIM/agent matches end by lim_fa.  The loop
 * keeps its state in registers and leaves it only where a rule or keyword may start. */
static void
scan_range(struct scan *sc, size_t a, size_t b, unsigned allowed, size_t lim_fa)
{
	const unsigned char *s = sc->s;
	unsigned act = sc->active & allowed;
	struct masks m = scan_masks(act);
	uint32_t prevk = a > 0 ? cls[s[a - 1]] : K_NL;
	/* No rule or keyword matches a single byte, so the last byte only matters as a line start. */
	for (size_t i = a; i < b && act; i++) {
		uint32_t k = cls[s[i]];
		uint32_t hit = k & (m.any | ((prevk & K_W) ? 0 : m.word) | ((prevk & K_DW) ? 0 : m.dword));
		bool line = m.line && (prevk & K_NL);
		prevk = k;
		unsigned ways = 0;
		if (hit && i + 1 < sc->n)
			ways = ways_of[(hit >> 8) & 0xFF] & bigrams[big_hash(s[i], s[i + 1])];
		if (!ways && !line)
			continue;
		scan_at(sc, i, ways, line, act, lim_fa);
		if ((sc->active & allowed) != act) {
			act = sc->active & allowed;
			m = scan_masks(act);
		}
	}
}

static unsigned
scan_domains(const struct scan *sc)
{
	unsigned d = 0;
	for (int i = 0; i < ROUTE_NDOMAINS; i++)
		if (sc->dom_count[i] >= dom_need[i])
			d |= 1u << i;
	return d;
}

unsigned
signals_domains(const char *text, size_t len)
{
	init();
	if (!text)
		return 0;
	struct scan sc;
	scan_init(&sc, (const unsigned char *)text, len, A_DOM);
	scan_range(&sc, 0, len, A_DOM, len);
	return scan_domains(&sc);
}

unsigned
signals_langs(const char *text, size_t len)
{
	init();
	if (!text)
		return 0;
	struct scan sc;
	scan_init(&sc, (const unsigned char *)text, len, A_LANGS);
	scan_range(&sc, 0, len, A_LANGS, len);
	return sc.found & A_LANGS;
}

/* --- FIM literal tokens (rule 3) -------------------------------------------------------------------------- */

/* §5.2 rule 3.  Fixed (§17.13): "// END" is gone (it ends code listings everywhere), and "◊" (U+25CA), a
 * cursor marker of some editor plug-ins, counts only in a message that also holds code (a fenced block or
 * a detected language): as the only clue it made any prose that used the character FIM. */
#define TOK(s) { s, sizeof s - 1 }
static const struct {
	const char *s;
	size_t n;
} fim_tokens[] = {
	TOK("<fim_prefix>"), TOK("<fim_suffix>"), TOK("<fim_middle>"),
	TOK("<|fim_begin|>"), TOK("<|fim_hole|>"), TOK("<|fim_end|>"),
	TOK("<fim\xE2\x96\x81prefix>"), TOK("<fim\xE2\x96\x81suffix>"), TOK("<fim\xE2\x96\x81middle>"),
	TOK("<|fim\xE2\x96\x81" "begin|>"), TOK("<|fim\xE2\x96\x81hole|>"), TOK("<|fim\xE2\x96\x81" "end|>"),
	TOK("<PRE>"), TOK("<SUF>"), TOK("<MID>"),
	TOK("[PREFIX]"), TOK("[SUFFIX]"), TOK("[MIDDLE]"),
	TOK("<|prefix|>"), TOK("<|suffix|>"), TOK("<|middle|>"),
	TOK("<FILL_ME>"), TOK("<FILL>"),
	TOK("<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>"),
	TOK("<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>"),
	TOK("{{HOLE}}"),
	TOK("<CURSOR>"), TOK("<cursor>"),
};
#define LOZENGE "\xE2\x97\x8A"

enum fim_hit { FIM_NONE, FIM_TOKEN, FIM_LOZENGE };

#define ONES ((uint64_t)0x0101010101010101u)
#define HIGHS ((uint64_t)0x8080808080808080u)

/* Whether one of the 8 bytes of w is b (the classic "has a zero byte" test on w ^ b...b). */
static inline uint64_t
swar_has(uint64_t w, unsigned char b)
{
	uint64_t x = w ^ (ONES * b);
	return (x - ONES) & ~x & HIGHS;
}

/* One pass over every message text, so it goes eight bytes at a time and stops only at the first bytes of
 * the tokens ('<', '[', '{', 0xE2): about 0.2 ns per byte of prose against 1 ns byte by byte. */
static enum fim_hit
fim_scan(const unsigned char *s, size_t n)
{
	enum fim_hit hit = FIM_NONE;
	for (size_t i = 0; i < n; i++) {
		while (n - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (swar_has(w, '<') | swar_has(w, '[') | swar_has(w, '{') | swar_has(w, 0xE2))
				break;
			i += 8;
		}
		if (i >= n)
			break;
		unsigned char c = s[i];
		if (c != '<' && c != '[' && c != '{' && c != 0xE2)
			continue;
		if (c == 0xE2) {
			if (n - i >= 3 && s[i + 1] == 0x97 && s[i + 2] == 0x8A)
				hit = FIM_LOZENGE;
			continue;
		}
		for (size_t t = 0; t < sizeof fim_tokens / sizeof fim_tokens[0]; t++) {
			size_t l = fim_tokens[t].n;
			if ((unsigned char)fim_tokens[t].s[0] == c && n - i >= l && memcmp(s + i, fim_tokens[t].s, l) == 0)
				return FIM_TOKEN;
		}
	}
	return hit;
}

static bool
looks_like_code(const unsigned char *s, size_t n)
{
	return memmem(s, n, "```", 3) != NULL || signals_langs((const char *)s, n) != 0;
}

/* Rule 3 over one message's text pieces. */
static bool
fim_literal_message(const json_t *content)
{
	struct pieces it = { content, 0 };
	const unsigned char *p;
	size_t n;
	bool lozenge = false;
	while (piece_next(&it, &p, &n)) {
		enum fim_hit h = fim_scan(p, n);
		if (h == FIM_TOKEN)
			return true;
		lozenge = lozenge || h == FIM_LOZENGE;
	}
	if (!lozenge)
		return false;
	struct text t;
	text_of(content, &t);
	bool code = looks_like_code(t.s, t.n);
	text_free(&t);
	return code;
}

/* --- rule 4: a lone fenced code block ------------------------------------------------------------------- */

static bool
fim_fenced_only(const unsigned char *s, size_t n)
{
	size_t i = ltrim_off(s, n);
	if (n - i < 3 || memcmp(s + i, "```", 3) != 0)
		return false;
	i += 3;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		i++;
	/* \s*\n[\s\S]+$: a line break in the whitespace that follows, and something after it. */
	bool nl = false;
	for (; i < n && is_sp(s[i]); i++)
		if (s[i] == '\n') {
			nl = true;
			break;
		}
	if (!nl || i + 1 >= n)
		return false;

	/* The text outside complete ``` blocks, trimmed, must be shorter than FIM_FENCE_REST code points. */
	size_t pos = 0, cp = 0, cp_last = 0;
	bool started = false;
	while (pos < n) {
		const unsigned char *f1 = memmem(s + pos, n - pos, "```", 3);
		const unsigned char *f2 = f1 ? memmem(f1 + 3, (size_t)(s + n - (f1 + 3)), "```", 3) : NULL;
		size_t kept_end = f2 ? (size_t)(f1 - s) : n;
		for (size_t j = pos; j < kept_end;) {
			size_t w = jsws_len(s + j, kept_end - j);
			size_t step = w ? w : u8_step(s + j, kept_end - j);
			if (!w)
				started = true;
			if (started) {
				cp++;
				if (!w)
					cp_last = cp;
				if (cp_last >= FIM_FENCE_REST)
					return false;
			}
			j += step;
		}
		pos = f2 ? (size_t)(f2 - s) + 3 : n;
	}
	return cp_last < FIM_FENCE_REST;
}

/* --- per-message tests ------------------------------------------------------------------------------------ */

static bool
ascii_prefix_ci(const char *s, size_t n, const char *p)
{
	size_t l = strlen(p);
	if (n < l)
		return false;
	for (size_t i = 0; i < l; i++)
		if (lower[(unsigned char)s[i]] != (unsigned char)p[i])
			return false;
	return true;
}

/* A user message that is tool output: ^\[?tool (result|output) for\s or ^tool_call_result (i), after
 * leading whitespace. */
static bool
is_tool_output_text(const json_t *content)
{
	char pre[TURN_PREFIX];
	size_t n = text_prefix(content, pre, sizeof pre);
	if (ascii_prefix_ci(pre, n, "tool_call_result"))
		return true;
	size_t o = n > 0 && pre[0] == '[' ? 1 : 0;
	if (!ascii_prefix_ci(pre + o, n - o, "tool result for") && !ascii_prefix_ci(pre + o, n - o, "tool output for"))
		return false;
	o += strlen("tool result for");
	return o < n && jsws_len((const unsigned char *)pre + o, n - o) > 0;
}


static bool
continuation_text(const unsigned char *s, size_t n)
{
	size_t o = ltrim_off(s, n);
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(rx_cont, NULL);
	if (!md)
		return false;
	int rc = pcre2_match(rx_cont, s + o, n - o, 0, 0, md, rx_mctx);
	pcre2_match_data_free(md);
	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
		log_warn("signals: continuation pattern: error %d (treated as no match)", rc);
	return rc >= 0;
}

/* --- summary --------------------------------------------------------------------------------------------- */

static void
summary_names(char *out, size_t cap, size_t *o, const char *label, unsigned bits, const char *const *names,
	      int count)
{
	if (!bits)
		return;
	int w = snprintf(out + *o, cap - *o, ", %s=[", label);
	if (w > 0)
		*o = *o + (size_t)w < cap ? *o + (size_t)w : cap - 1;
	bool first = true;
	for (int i = 0; i < count; i++) {
		if (!(bits & (1u << i)))
			continue;
		w = snprintf(out + *o, cap - *o, "%s%s", first ? "" : ",", names[i]);
		if (w > 0)
			*o = *o + (size_t)w < cap ? *o + (size_t)w : cap - 1;
		first = false;
	}
	w = snprintf(out + *o, cap - *o, "]");
	if (w > 0)
		*o = *o + (size_t)w < cap ? *o + (size_t)w : cap - 1;
}

static void
summary_add(char *out, size_t cap, size_t *o, bool on, const char *part)
{
	if (!on)
		return;
	int w = snprintf(out + *o, cap - *o, ", %s", part);
	if (w > 0)
		*o = *o + (size_t)w < cap ? *o + (size_t)w : cap - 1;
}

static void
summary_build(struct route_signals *out)
{
	char *b = out->summary;
	size_t cap = sizeof out->summary, o;
	int w = snprintf(b, cap, "tokens\xE2\x89\x88%ld", out->total_tokens);
	o = w > 0 ? (size_t)w : 0;
	summary_add(b, cap, &o, out->is_fim, "fim_autocomplete");
	summary_add(b, cap, &o, out->is_tool_agent, "tool_agent");
	summary_add(b, cap, &o, out->tool_output_continuation, "tool_output_continuation");
	summary_add(b, cap, &o, out->has_images, "has_images");
	summary_add(b, cap, &o, out->has_tool_calls, "has_tools");
	if (out->conversation_turns > 1) {
		char t[32];
		snprintf(t, sizeof t, "turns=%d", out->conversation_turns);
		summary_add(b, cap, &o, true, t);
	}
	summary_names(b, cap, &o, "domains", out->domains, route_domain_names, ROUTE_NDOMAINS);
	summary_names(b, cap, &o, "langs", out->langs, route_lang_names, ROUTE_NLANGS);
}

/* --- signals_extract ------------------------------------------------------------------------------------ */

/* Measured (gcc -O2, one core of the shared 2-core build machine, best of 7 runs of a few thousand calls;
 * the runs vary by about 25 %): "Hello" 0.5 us; 20 messages of 400 bytes (half code, half prose dense
 * with trigger words such as "you", "code", "from", "tools") with a 1.5 KB system prompt 20-27 us, of
 * which 7.5 us is tokens_estimate_messages; with a 10 KB system prompt 65-80 us (14-16 us estimator),
 * 40 KB 200-240 us (35 us estimator): about 4 ns per byte of classifyText on such prose, 1.5-2 ns on
 * plain text.  signals_frustrated on a 400-byte last message: about 3 us.  A 10 MB message takes tens of
 * milliseconds, linearly. */
void
signals_extract(const json_t *request, struct route_signals *out)
{
	init();
	memset(out, 0, sizeof *out);
	const json_t *messages = json_object_get(request, "messages");
	out->total_tokens = tokens_estimate_messages(messages);

	const json_t *tools = json_object_get(request, "tools");
	const json_t *choice = json_object_get(request, "tool_choice");
	out->has_tool_calls = (json_is_array(tools) && json_array_size(tools) > 0) ||
			      (gw_json_truthy(choice) && !str_is(choice, "none"));

	/* One walk over the messages: structure, turns and the FIM tokens. */
	const json_t *sys_msg = NULL, *first_user = NULL, *last_user = NULL;
	size_t nuser = 0;
	bool agent_struct = false, fim = false;
	size_t i;
	const json_t *m;
	if (json_is_array(messages)) {
		json_array_foreach(messages, i, m) {
			if (!json_is_object(m))
				continue;
			const json_t *role = json_object_get(m, "role");
			const json_t *content = json_object_get(m, "content");
			if (json_is_array(content)) {
				out->has_images = out->has_images || content_has_block(content, image_types);
				agent_struct = agent_struct || content_has_block(content, tool_block_types);
			}
			const json_t *calls = json_object_get(m, "tool_calls");
			if (str_is(role, "tool") || (json_is_array(calls) && json_array_size(calls) > 0))
				agent_struct = true;
			if (!fim)
				fim = fim_literal_message(content);
			if (str_is(role, "system") && !sys_msg) {
				sys_msg = m;
			} else if (str_is(role, "user")) {
				if (!first_user)
					first_user = m;
				last_user = m;
				nuser++;
				if (!is_tool_output_text(content))
					out->conversation_turns++;
			}
		}
	}

	struct text sys, lu;
	text_of(json_object_get(sys_msg, "content"), &sys);
	text_of(json_object_get(last_user, "content"), &lu);
	out->system_chars = (long)u8_count(sys.s, sys.n);
	u8_copy_prefix(out->system_prompt, sys.s, sys.n, ROUTE_SYSTEM_CHARS);
	u8_copy_prefix(out->last_user, lu.s, lu.n, ROUTE_USER_CHARS);

	/* classifyText = lastUserText + "\n" + systemText: domains and languages everywhere; FIM rule 1 and
	 * tool-agent rule 1 on the system part, FIM rule 2 and tool-agent rule 1 on the user part when the
	 * last user message is also the first. */
	char stackbuf[STACK_TEXT];
	char *heap = NULL;
	const unsigned char *ct = lu.s;
	size_t ctn = lu.n, sys_off = ctn;
	/* Of the system prompt only its head counts, SIGNALS_SYSTEM_SCAN code points: that is where a
	 * client says what it is, and an agentic client's tens of KB of tool documentation mention every
	 * language and "password", "token", "credential" -- domains and languages of the client, not of the
	 * task -- and would cost more to scan than the whole decision may (bench/RESULTS-routing.md). */
	size_t sys_n = u8_prefix_bytes(sys.s, sys.n, SIGNALS_SYSTEM_SCAN);
	if (sys_n) {
		ctn = lu.n + 1 + sys_n;
		char *buf = ctn < sizeof stackbuf ? stackbuf : (heap = xmalloc(ctn + 1));
		memcpy(buf, lu.s, lu.n);
		buf[lu.n] = '\n';
		memcpy(buf + lu.n + 1, sys.s, sys_n);
		buf[ctn] = '\0';
		ct = (const unsigned char *)buf;
		sys_off = lu.n + 1;
	}
	unsigned fa = fim ? A_AGENT : A_FA;
	struct scan sc;
	scan_init(&sc, ct, ctn, A_DOM | A_LANGS | fa);
	bool user_is_first = last_user && last_user == first_user;
	scan_range(&sc, 0, lu.n, A_DOM | A_LANGS | (user_is_first ? (fa & ~A_FIM_AUTO) : 0), lu.n);
	scan_range(&sc, lu.n, sys_off, A_DOM | A_LANGS, ctn);
	scan_range(&sc, sys_off, ctn, A_DOM | A_LANGS | fa, ctn);
	out->domains = scan_domains(&sc);
	out->langs = sc.found & A_LANGS;
	unsigned found = sc.found;

	if (first_user && !user_is_first && !fim && (found & (A_FIM | A_AGENT)) != (A_FIM | A_AGENT)) {
		/* Rules 2 and tool-agent 1 on the first user message.  A bare "autocomplete" does not count in
		 * a user message: there it is a question about the feature far more often than an instruction. */
		struct text fu;
		text_of(json_object_get(first_user, "content"), &fu);
		struct scan su;
		scan_init(&su, fu.s, fu.n, (A_FIM | A_AGENT) & ~found);
		scan_range(&su, 0, fu.n, A_FIM | A_AGENT, fu.n);
		found |= su.found;
		text_free(&fu);
	}

	/* Rule 1 fixed: a bare "autocomplete" counts only from a short system prompt. */
	bool auto_short = (found & A_FIM_AUTO) && out->system_chars <= FIM_SHORT_SYSTEM;
	out->is_fim = fim || (found & A_FIM) || auto_short || (nuser == 1 && fim_fenced_only(lu.s, lu.n));
	out->is_tool_agent = !out->is_fim && (agent_struct || (found & A_AGENT));

	if (last_user) {
		const json_t *lc = json_object_get(last_user, "content");
		out->tool_output_continuation = continuation_text(lu.s, lu.n) ||
						content_has_block(lc, tool_result_types) ||
						gw_json_truthy(json_object_get(last_user, "tool_call_id"));
	}

	free(heap);
	text_free(&sys);
	text_free(&lu);
	summary_build(out);
}

const char *
signals_infer_domain(const struct route_signals *s)
{
	for (int i = 0; i < ROUTE_NDOMAINS; i++)
		if (s->domains & (1u << i))
			return route_domain_names[i];
	return s->langs ? "tech" : "general";
}

/* --- the opt-out token ----------------------------------------------------------------------------------- */

static bool
ascii_ws(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* s without the token; whitespace around each occurrence collapses to what was before it (or what was
 * after it when nothing was before), and to nothing at the start or end of the text.  NULL when absent. */
static char *
strip_token(const char *s, size_t n, size_t *outn)
{
	static const char tok[] = SIGNALS_OPT_OUT_TOKEN;
	const size_t tl = sizeof tok - 1;
	const char *q = memmem(s, n, tok, tl);
	if (!q)
		return NULL;
	char *out = xmalloc(n + 1);
	size_t o = 0, p = 0;
	bool content = false;           /* out holds something besides whitespace */
	while (q) {
		size_t at = (size_t)(q - s);
		for (size_t j = p; j < at; j++) {
			out[o++] = s[j];
			content = content || !ascii_ws((unsigned char)s[j]);
		}
		size_t after = at + tl, skip = after;
		while (skip < n && ascii_ws((unsigned char)s[skip]))
			skip++;
		if (!content)
			o = 0;                   /* at the start: drop the whitespace on both sides */
		if (!content || (o > 0 && ascii_ws((unsigned char)out[o - 1])))
			p = skip;                /* the whitespace before it stays, the one after goes */
		else
			p = after;
		if (p == n || skip == n) {   /* at the end: nothing trails */
			while (o > 0 && ascii_ws((unsigned char)out[o - 1]))
				o--;
			p = n;
		}
		q = p < n ? memmem(s + p, n - p, tok, tl) : NULL;
	}
	memcpy(out + o, s + p, n - p);
	o += n - p;
	out[o] = '\0';
	*outn = o;
	return out;
}

bool
signals_take_opt_out(json_t *request)
{
	json_t *messages = json_object_get(request, "messages");
	if (!json_is_array(messages))
		return false;
	size_t idx = json_array_size(messages);
	json_t *msg = NULL;
	while (idx > 0) {
		json_t *m = json_array_get(messages, --idx);
		if (json_is_object(m) && str_is(json_object_get(m, "role"), "user")) {
			msg = m;
			break;
		}
	}
	if (!msg)
		return false;

	/* The message, its content array and its blocks may be shared with other parts of the request:
	 * changed ones are replaced by shallow copies, never edited in place. */
	json_t *content = json_object_get(msg, "content");
	json_t *newc = NULL;
	size_t n;
	char *s;
	if (json_is_string(content)) {
		s = strip_token(json_string_value(content), json_string_length(content), &n);
		if (s)
			newc = json_stringn_nocheck(s, n);
		free(s);
	} else if (json_is_array(content)) {
		size_t i;
		json_t *b;
		bool found = false;
		newc = json_array();
		json_array_foreach(content, i, b) {
			json_t *t = json_object_get(b, "text");
			s = is_text_block(b) && json_is_string(t) ?
				strip_token(json_string_value(t), json_string_length(t), &n) : NULL;
			if (!s) {
				json_array_append(newc, b);
				continue;
			}
			json_t *copy = json_copy(b);
			json_object_set_new(copy, "text", json_stringn_nocheck(s, n));
			json_array_append_new(newc, copy);
			free(s);
			found = true;
		}
		if (!found) {
			json_decref(newc);
			newc = NULL;
		}
	}
	if (!newc)
		return false;
	json_t *copy = json_copy(msg);
	json_object_set_new(copy, "content", newc);
	json_array_set_new(messages, idx, copy);
	return true;
}

/* --- frustration ----------------------------------------------------------------------------------------- */

/* Three or more consecutive all-capital words that make up at least half of the words. */
static bool
shouting(const unsigned char *s, size_t n)
{
	size_t words = 0, caps = 0, run = 0, best = 0;
	for (size_t i = 0; i < n;) {
		if (!(cls[s[i]] & K_DW)) {
			i++;
			continue;
		}
		size_t up = 0, low = 0, other = 0;
		for (; i < n && (cls[s[i]] & K_DW); i++) {
			unsigned char c = s[i];
			if (c >= 'A' && c <= 'Z')
				up++;
			else if (c >= 'a' && c <= 'z')
				low++;
			else if (c == 0xC3 && i + 1 < n && s[i + 1] >= 0xA0 && s[i + 1] <= 0xBF) {
				low++;           /* a lowercase Latin-1 letter (ä ö ü ß ...) */
				i++;
			} else if (c == 0xC3 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9E) {
				up++;            /* Ä Ö Ü ... */
				i++;
			} else if (c < 0x80) {
				other++;         /* a digit or '_': an identifier, not a word */
			}
		}
		if (up + low < 2 || other) {
			if (other)
				run = 0;
			continue;
		}
		words++;
		if (low == 0) {
			caps++;
			if (++run > best)
				best = run;
		} else {
			run = 0;
		}
	}
	return best >= 3 && caps * 2 >= words;
}

/* "?!" twice, or a run of three or more '?'/'!' that mixes both. */
static bool
interrobangs(const unsigned char *s, size_t n)
{
	size_t mixed = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] != '?' && s[i] != '!') {
			i++;
			continue;
		}
		size_t j = i;
		bool q = false, e = false;
		for (; j < n && (s[j] == '?' || s[j] == '!'); j++) {
			q = q || s[j] == '?';
			e = e || s[j] == '!';
		}
		if (q && e) {
			if (j - i >= 3)
				return true;
			mixed++;
		}
		i = j;
	}
	return mixed >= 2;
}

bool
signals_frustrated(const struct route_signals *s)
{
	init();
	if (!s || s->tool_output_continuation)
		return false;
	const unsigned char *t = (const unsigned char *)s->last_user;
	size_t n = strlen(s->last_user);
	struct scan sc;
	scan_init(&sc, t, n, A_FR);
	scan_range(&sc, 0, n, A_FR, n);
	if (sc.found & A_FRUST)
		return true;
	if ((sc.found & A_FRUST_WEAK) && s->conversation_turns >= 2)
		return true;
	if (interrobangs(t, n))
		return true;
	return shouting(t, n) && signals_langs(s->last_user, n) == 0;
}
