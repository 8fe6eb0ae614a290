/* jtext.h -- JSON written straight as compact text, without building a tree.
 *
 * For documents the gateway makes per request (its RequestLog, the members it adds to an answer) where a
 * jansson tree would cost a node and an allocation per member only to be serialised once, and for trees
 * that are sent on (jtext_dump), without json_dumps' cycle check.  The output is byte for byte what
 * json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(w->precision)) writes for the same members: strings escaped
 * as jansson escapes them.  A byte that is not valid UTF-8 (jansson would have refused the string
 * altogether) becomes U+FFFD, so the text is always one valid line of JSON.
 *
 * Members go into the object or array opened last; a NULL key writes a bare value (in an array).  Errors
 * are sticky: the first append that fails (the buffer's maximum) is kept in w->err and later calls do
 * nothing.  Not thread-safe (one writer per buffer).
 */
#ifndef PRISM_UTIL_JTEXT_H
#define PRISM_UTIL_JTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

#define JTEXT_MAX_DEPTH 64

struct jtext {
	struct buf *b;
	int depth;
	bool comma[JTEXT_MAX_DEPTH];   /* the container at that depth has a member already */
	enum prism_err err;
	int precision;                  /* significant digits of reals: 17 (jtext_init), as JSON_REAL_PRECISION */
};

/* Starts writing at the end of b. */
void jtext_init(struct jtext *w, struct buf *b);
/* Starts adding members to an object whose opening (and `members` members, if true) b already ends with. */
void jtext_resume(struct jtext *w, struct buf *b, bool members);
void jtext_open(struct jtext *w, const char *key);          /* { */
void jtext_close(struct jtext *w);                          /* } */
void jtext_open_array(struct jtext *w, const char *key);    /* [ */
void jtext_close_array(struct jtext *w);                    /* ] */
void jtext_str(struct jtext *w, const char *key, const char *v);   /* v NULL: null */
void jtext_int(struct jtext *w, const char *key, int64_t v);
/* A real as json_dumps writes one with w->precision digits ("1.0", not "1"); NaN and the infinities,
 * which JSON cannot hold, are written as null. */
void jtext_real(struct jtext *w, const char *key, double v);
/* micro / 1e6 as a real in decimal ("0.000123", "2.0"): the double it reads back as is (double)micro / 1e6,
 * for any |micro| < 2^53 -- the amounts of money the gateway counts in millionths of a dollar. */
void jtext_micros(struct jtext *w, const char *key, int64_t micro);
void jtext_bool(struct jtext *w, const char *key, bool v);
/* The tree v as a member (a value in an array when key is NULL), as json_dumps would write it with w's
 * precision; false (w->err) when it does not fit or nests deeper than JTEXT_MAX_DEPTH. */
bool jtext_value(struct jtext *w, const char *key, const json_t *v);
/* v as compact text, as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision)) writes
 * it, without its cost (jansson checks every container for a cycle by formatting its address into a hash
 * table); *len its length when len is not NULL.  Malloc'd, NULL without memory.  What nests deeper than
 * JTEXT_MAX_DEPTH is left to json_dumps. */
char *jtext_dump(const json_t *v, int precision, size_t *len);

/* One UTF-8 sequence at p (p[0] >= 0x80, p < end): its length, 0 when it is not valid UTF-8 (overlong, a
 * surrogate, beyond U+10FFFF, cut short) -- the check jansson makes. */
size_t jtext_utf8_len(const unsigned char *p, const unsigned char *end);

#endif
