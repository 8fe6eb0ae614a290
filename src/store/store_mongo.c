/* store_mongo.c -- the MongoDB backend of store.h (mongo-c-driver), for several hosts sharing one database.
 *
 * Documents are the original program's: ObjectIds for `_id` and the collection's oid_fields, BSON dates for
 * its date_fields, `__v` as the version.  JSON ⇄ BSON conversion is by hand (bson_iter), so nothing stored
 * by someone else (Decimal128, binary, regex, invalid UTF-8, deep nesting) can crash a reader.
 *
 * Only plain CRUD, findAndModify and createIndexes are used: no transactions, change streams or TTL
 * indexes, so FerretDB and any MongoDB-wire-compatible server work.  FerretDB 1.x applies updates
 * non-atomically; there increments and versioned updates also take a lease lock (rmw_begin, collection
 * prismlocks, the only collection of ours the original does not have).  Each operation pops a client from one
 * pool per process and pushes it back; the URI carries the store timeout as server-selection, connect,
 * socket and pool-wait timeouts, so no request thread waits longer than that for a dead server.
 * Migrations and retention deletes run on a short-lived client with a long socket timeout instead.
 */
#include "config.h"
#include "store/store.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define MONGO_DEFAULT_DB "openmodelprism"
#define MONGO_APPNAME "model-prism"
#define MONGO_MAX_DB_NAME 63
/* Socket timeout of the maintenance client (index builds and retention deletes on big collections). */
#define MONGO_SLOW_SOCKET_MS (10 * 60 * 1000)
/* Conversion bounds: MongoDB itself refuses documents nested deeper than 100 levels. */
#define MONGO_MAX_DEPTH 100
#define MONGO_MAX_READ_DEPTH 200
#define MONGO_MAX_PATH 512
/* A version-checked replace that keeps losing to other writers gives up after this many tries. */
#define MONGO_UPDATE_TRIES 16
#define GENERATION_KEY "prism_generation"
#define MONGO_RMW_STRIPES 64
/* Cross-process write locks on servers without atomic updates (rmw_begin): collection and lease. */
#define MONGO_LOCK_COLL "prismlocks"
#define MONGO_LOCK_LEASE_FACTOR 4

struct mongo_store {
	struct store base;
	mongoc_client_pool_t *pool;
	mongoc_uri_t *uri;             /* with our options; copied for the maintenance client */
	char db[MONGO_MAX_DB_NAME + 1];
	char *password;                /* scrubbed from every error text; NULL when none */
	long timeout_ms;
	bool nonatomic;                /* the server applies updates non-atomically (FerretDB 1.x): rmw_begin */
	pthread_mutex_t stripes[MONGO_RMW_STRIPES];
};

/* --- mongoc's log into ours ------------------------------------------------------------------------------ */

/* Replaces the password of any mongodb:// URI in `in` ("user:secret@" → "user:***@"). */
static void
redact_uri(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	if (outlen == 0)
		return;
	for (size_t i = 0; in[i] && o + 1 < outlen;) {
		if (strncmp(in + i, "mongodb://", 10) == 0 || strncmp(in + i, "mongodb+srv://", 14) == 0) {
			size_t start = i + (in[i + 7] == '+' ? 14 : 10);
			size_t host_end = start + strcspn(in + start, "/?# \t\r\n\"'");
			const char *at = memchr(in + start, '@', host_end - start);
			/* Copy up to the userinfo; the last '@' before the host ends it. */
			while (at) {
				const char *more = memchr(at + 1, '@', host_end - (size_t)(at + 1 - in));
				if (!more)
					break;
				at = more;
			}
			size_t copy_to = start;
			if (at) {
				const char *colon = memchr(in + start, ':', (size_t)(at - in) - start);
				copy_to = colon ? (size_t)(colon - in) : (size_t)(at - in);
			}
			while (i < copy_to && o + 1 < outlen)
				out[o++] = in[i++];
			if (at) {
				if (in[i] == ':') {
					const char *mask = ":***";
					for (size_t k = 0; mask[k] && o + 1 < outlen; k++)
						out[o++] = mask[k];
				}
				i = (size_t)(at - in);
			}
			continue;
		}
		out[o++] = in[i++];
	}
	out[o] = '\0';
}

static void
mongoc_log_to_ours(mongoc_log_level_t level, const char *domain, const char *message, void *user_data)
{
	enum log_level ours;
	switch (level) {
	case MONGOC_LOG_LEVEL_ERROR:
	case MONGOC_LOG_LEVEL_CRITICAL:
		ours = LOG_LVL_ERROR;
		break;
	case MONGOC_LOG_LEVEL_WARNING:
		ours = LOG_LVL_WARN;
		break;
	case MONGOC_LOG_LEVEL_MESSAGE:
		ours = LOG_LVL_INFO;
		break;
	default:
		ours = LOG_LVL_DEBUG;
		break;
	}
	/* Servers without sessions (FerretDB 1.x) refuse endSessions each time a client goes away: not news. */
	if (ours == LOG_LVL_WARN && message && strstr(message, "endSessions"))
		ours = LOG_LVL_DEBUG;
	if (!log_enabled(ours))
		return;
	char clean[1024];
	redact_uri(message ? message : "", clean, sizeof clean);
	log_msg(ours, "mongoc %s: %s", domain ? domain : "-", clean);
}

static pthread_once_t mongo_once = PTHREAD_ONCE_INIT;

static void
mongo_global_init(void)
{
	/* Before mongoc_init: its default handler prints DEBUG lines to stdout, i.e. into FastCGI replies. */
	mongoc_log_set_handler(mongoc_log_to_ours, NULL);
	mongoc_log_trace_disable();
	mongoc_init();
}

void
store_mongo_before_exec(void)
{
	/* The driver names the file after the pid and maps it: removing the name leaves this image's counters
	 * working, should the exec fail. */
	char name[32];
	snprintf(name, sizeof name, "/mongoc-%u", (unsigned)getpid());
	shm_unlink(name);
}

/* --- errors ------------------------------------------------------------------------------------------------ */

/* Overwrites every occurrence of the URI password in err (mongoc never should print it; make sure). */
static void
scrub_secret(char *text, const char *secret)
{
	if (!secret || strlen(secret) < 3)
		return;
	size_t n = strlen(secret);
	for (char *p = strstr(text, secret); p; p = strstr(p + n, secret))
		memset(p, '*', n);
}

static bool
server_code_is(int32_t code, const int32_t *codes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (codes[i] == code)
			return true;
	return false;
}

/* The duplicate-key code of a bulk reply's first write error, for servers that report it only there. */
static int32_t
reply_write_error_code(const bson_t *reply)
{
	bson_iter_t it, sub;
	if (reply && bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &sub) && bson_iter_next(&sub) && BSON_ITER_HOLDS_DOCUMENT(&sub)) {
		bson_iter_t doc;
		if (bson_iter_recurse(&sub, &doc) && bson_iter_find(&doc, "code"))
			return (int32_t)bson_iter_as_int64(&doc);
	}
	return 0;
}

static enum prism_err
map_error(const struct mongo_store *ms, const bson_error_t *e, const bson_t *reply, const char *what, char *err,
	  size_t errlen)
{
	static const int32_t dup[] = { 11000, 11001, 12582 };
	static const int32_t timeouts[] = { 50, 262 };
	/* BadValue, FailedToParse, TypeMismatch, ConflictingUpdateOperators, DollarPrefixedFieldName,
	 * InvalidPath, ..., DottedFieldName, BSONObjectTooLarge: a document or query we cannot express. */
	static const int32_t bad[] = { 2, 9, 14, 40, 52, 55, 56, 57, 10334 };
	enum prism_err rc = PRISM_E_STORE;
	int32_t code = (int32_t)e->code;
	if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_WRITE_CONCERN ||
	    e->domain == MONGOC_ERROR_COLLECTION || e->domain == MONGOC_ERROR_QUERY) {
		int32_t wcode = reply_write_error_code(reply);
		/* FerretDB 1.x reports a unique violation of an update as InternalError with SQLite's text. */
		if (server_code_is(code, dup, 3) || server_code_is(wcode, dup, 3) ||
		    strstr(e->message, "UNIQUE constraint failed") || strstr(e->message, "duplicate key"))
			rc = PRISM_E_CONFLICT;
		else if (server_code_is(code, timeouts, 2))
			rc = PRISM_E_STORE;
		else if (server_code_is(code, bad, sizeof bad / sizeof bad[0]))
			rc = PRISM_E_BAD_REQUEST;
	} else if (e->domain == MONGOC_ERROR_BSON ||
		   (e->domain == MONGOC_ERROR_COMMAND && e->code == MONGOC_ERROR_COMMAND_INVALID_ARG)) {
		rc = PRISM_E_BAD_REQUEST;
	} else if (e->domain == MONGOC_ERROR_STREAM && e->code == MONGOC_ERROR_STREAM_SOCKET &&
		   (strstr(e->message, "timed out") || strstr(e->message, "Timed out"))) {
		rc = PRISM_E_STORE;
	}
	snprintf(err, errlen, "mongodb %s: %s", what, e->message);
	scrub_secret(err, ms->password);
	return rc;
}

/* --- ISO-8601 dates ⇄ milliseconds ---------------------------------------------------------------------- */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool
digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* "YYYY-MM-DD" (UTC midnight, as JavaScript's Date) or "YYYY-MM-DDTHH:MM[:SS[.fff…]](Z|±HH:MM|±HHMM)". */
static bool
iso_parse(const char *s, size_t len, int64_t *ms)
{
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	int64_t offset_min = 0;
	if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return false;
	size_t i = 10;
	if (i < len) {
		if (s[i] != 'T' || len < i + 6 || !digits(s + i + 1, 2, &h) || s[i + 3] != ':' ||
		    !digits(s + i + 4, 2, &mi))
			return false;
		i += 6;
		if (i < len && s[i] == ':') {
			if (len < i + 3 || !digits(s + i + 1, 2, &sec))
				return false;
			i += 3;
			if (i < len && s[i] == '.') {
				size_t nd = 0;
				i++;
				while (i < len && s[i] >= '0' && s[i] <= '9') {
					if (nd < 3)
						frac = frac * 10 + (unsigned)(s[i] - '0');
					nd++;
					i++;
				}
				if (nd == 0 || nd > 9)
					return false;
				for (size_t k = nd; k < 3; k++)
					frac *= 10;
			}
		}
		if (i < len && s[i] == 'Z' && i + 1 == len) {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			unsigned oh, om;
			bool colon = len == i + 6 && s[i + 3] == ':';
			if (!(colon || len == i + 5) || !digits(s + i + 1, 2, &oh) ||
			    !digits(s + i + (colon ? 4 : 3), 2, &om) || oh > 23 || om > 59)
				return false;
			offset_min = (int64_t)(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
			i = len;
		} else {
			return false;      /* a local time without a zone: not a date we can place */
		}
	}
	if (i != len || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return false;
	int64_t days = days_from_civil((int64_t)y, mo, d), cy;
	unsigned cm, cd;
	civil_from_days(days, &cy, &cm, &cd);
	if (cy != (int64_t)y || cm != mo || cd != d)
		return false;           /* 2026-02-30 */
	*ms = ((days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec) - offset_min * 60) * 1000 + frac;
	return true;
}

/* As JavaScript's toISOString; false for years outside 0..9999 (the caller keeps the number). */
static bool
iso_format(int64_t ms, char out[64])
{
	if (ms < -62167219200000LL || ms > 253402300799999LL)
		return false;
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t rem = ms - days * 86400000, y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(out, 64, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d, (int)(rem / 3600000),
		 (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
	return true;
}

/* --- BSON → JSON: never fails on what the server holds ---------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (jansson's rules: no overlongs, surrogates or > U+10FFFF), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned v;
	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		len = 2;
		v = c & 0x1F;
	} else if (c < 0xF0) {
		len = 3;
		v = c & 0x0F;
	} else if (c < 0xF5) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000))
		return 0;
	return len;
}

/* A copy of s with each invalid byte replaced by U+FFFD (NUL-terminated; *outlen without the NUL). */
static char *
utf8_repair(const char *s, size_t len, size_t *outlen)
{
	char *out = xmalloc(len * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq((const unsigned char *)s + i, len - i);
		if (k == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

static json_t *
json_string_safe(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	size_t n;
	char *fixed = utf8_repair(s, len, &n);
	j = json_stringn(fixed, n);
	free(fixed);
	return j ? j : json_string("");
}

static void
json_set_safe(json_t *obj, const char *key, json_t *v)
{
	if (!v)
		v = json_null();
	if (json_object_set_new(obj, key, json_incref(v)) != 0) {
		size_t n;
		char *fixed = utf8_repair(key, strlen(key), &n);
		json_object_set_new_nocheck(obj, fixed, json_incref(v));
		free(fixed);
	}
	json_decref(v);
}

static json_t *bson_value_to_json(bson_iter_t *it, int depth);

static json_t *
bson_container_to_json(bson_iter_t *it, bool array, int depth)
{
	bson_iter_t child;
	if (depth >= MONGO_MAX_READ_DEPTH || !bson_iter_recurse(it, &child))
		return json_null();
	json_t *out = array ? json_array() : json_object();
	while (bson_iter_next(&child)) {
		json_t *v = bson_value_to_json(&child, depth + 1);
		if (array)
			json_array_append_new(out, v ? v : json_null());
		else
			json_set_safe(out, bson_iter_key(&child), v);
	}
	return out;
}

static json_t *
bson_value_to_json(bson_iter_t *it, int depth)
{
	char buf[64];
	uint32_t len;
	switch (bson_iter_type(it)) {
	case BSON_TYPE_DOUBLE: {
		double d = bson_iter_double(it);
		return isfinite(d) ? json_real(d) : json_null();
	}
	case BSON_TYPE_UTF8: {
		const char *s = bson_iter_utf8(it, &len);
		return json_string_safe(s, len);
	}
	case BSON_TYPE_DOCUMENT:
		return bson_container_to_json(it, false, depth);
	case BSON_TYPE_ARRAY:
		return bson_container_to_json(it, true, depth);
	case BSON_TYPE_BINARY: {
		bson_subtype_t sub;
		const uint8_t *data;
		bson_iter_binary(it, &sub, &len, &data);
		char *hex = xmalloc((size_t)len * 2 + 1);
		hex_encode(data, len, hex);
		json_t *j = json_string(hex);
		free(hex);
		return j;
	}
	case BSON_TYPE_OID:
		bson_oid_to_string(bson_iter_oid(it), buf);
		return json_string(buf);
	case BSON_TYPE_BOOL:
		return json_boolean(bson_iter_bool(it));
	case BSON_TYPE_DATE_TIME: {
		int64_t ms = bson_iter_date_time(it);
		return iso_format(ms, buf) ? json_string(buf) : json_integer(ms);
	}
	case BSON_TYPE_REGEX: {
		const char *opts = NULL;
		const char *re = bson_iter_regex(it, &opts);
		size_t n = strlen(re ? re : "") + strlen(opts ? opts : "") + 3;
		char *text = xmalloc(n);
		snprintf(text, n, "/%s/%s", re ? re : "", opts ? opts : "");
		json_t *j = json_string_safe(text, strlen(text));
		free(text);
		return j;
	}
	case BSON_TYPE_DBPOINTER: {
		const char *coll;
		const bson_oid_t *oid;
		bson_iter_dbpointer(it, &len, &coll, &oid);
		bson_oid_to_string(oid, buf);
		return json_string(buf);
	}
	case BSON_TYPE_CODE: {
		const char *s = bson_iter_code(it, &len);
		return json_string_safe(s, len);
	}
	case BSON_TYPE_SYMBOL: {
		const char *s = bson_iter_symbol(it, &len);
		return json_string_safe(s, len);
	}
	case BSON_TYPE_CODEWSCOPE: {
		uint32_t scope_len;
		const uint8_t *scope;
		const char *s = bson_iter_codewscope(it, &len, &scope_len, &scope);
		return json_string_safe(s, len);
	}
	case BSON_TYPE_INT32:
		return json_integer(bson_iter_int32(it));
	case BSON_TYPE_TIMESTAMP: {
		uint32_t t, inc;
		bson_iter_timestamp(it, &t, &inc);
		return json_integer((json_int_t)(((uint64_t)t << 32 | inc) & INT64_MAX));
	}
	case BSON_TYPE_INT64:
		return json_integer(bson_iter_int64(it));
	case BSON_TYPE_DECIMAL128: {
		bson_decimal128_t dec;
		char text[BSON_DECIMAL128_STRING];
		if (!bson_iter_decimal128(it, &dec))
			return json_null();
		bson_decimal128_to_string(&dec, text);
		return json_string(text);
	}
	case BSON_TYPE_EOD:
	case BSON_TYPE_UNDEFINED:
	case BSON_TYPE_NULL:
	case BSON_TYPE_MAXKEY:
	case BSON_TYPE_MINKEY:
	default:
		return json_null();
	}
}

static json_t *
bson_to_json(const bson_t *b)
{
	json_t *out = json_object();
	bson_iter_t it;
	if (!bson_iter_init(&it, b))
		return out;
	while (bson_iter_next(&it))
		json_set_safe(out, bson_iter_key(&it), bson_value_to_json(&it, 1));
	return out;
}

/* --- JSON → BSON: ObjectIds and dates by path --------------------------------------------------------------- */

enum kind { K_PLAIN, K_OID, K_DATE };

/* Dotted path equality; a "*" segment in the pattern matches any one key. */
static bool
path_match(const char *pattern, const char *path)
{
	while (*pattern && *path) {
		size_t pl = strcspn(pattern, "."), ql = strcspn(path, ".");
		if (!(pl == 1 && *pattern == '*') && (pl != ql || strncmp(pattern, path, pl) != 0))
			return false;
		pattern += pl;
		path += ql;
		if (*pattern != *path)
			return false;
		if (*pattern == '.') {
			pattern++;
			path++;
		}
	}
	return *pattern == '\0' && *path == '\0';
}

static bool
path_in(const char *const *list, const char *path)
{
	for (; list && *list; list++)
		if (path_match(*list, path))
			return true;
	return false;
}

static enum kind
path_kind(const struct store_coll_desc *d, const char *path)
{
	const char *last = strrchr(path, '.');
	last = last ? last + 1 : path;
	/* Mongoose gives subdocuments of arrays an ObjectId _id too (tenants.apiKeys[]._id). */
	if (strcmp(last, "_id") == 0 || path_in(d->oid_fields, path))
		return K_OID;
	if (path_in(d->date_fields, path) ||
	    (d->timestamps && (strcmp(path, "createdAt") == 0 || strcmp(path, "updatedAt") == 0)))
		return K_DATE;
	return K_PLAIN;
}

struct wctx {
	const struct store_coll_desc *d;
	char path[MONGO_MAX_PATH];
	size_t plen;
	bool overflow;                 /* path too long to match anything: convert nothing below */
	char *err;
	size_t errlen;
};

static bool put_value(struct wctx *w, bson_t *b, const char *key, const json_t *v, int depth);

static void
path_push(struct wctx *w, const char *key, size_t *saved, bool *saved_over)
{
	*saved = w->plen;
	*saved_over = w->overflow;
	size_t kl = strlen(key), need = w->plen + (w->plen ? 1 : 0) + kl;
	if (w->overflow || need >= sizeof w->path) {
		w->overflow = true;
		return;
	}
	if (w->plen)
		w->path[w->plen++] = '.';
	memcpy(w->path + w->plen, key, kl + 1);
	w->plen += kl;
}

static void
path_pop(struct wctx *w, size_t saved, bool saved_over)
{
	w->plen = saved;
	w->overflow = saved_over;
	w->path[saved] = '\0';
}

/* Appends the members of obj to b, skipping `skip` (NULL-terminated, may be NULL). */
static bool
put_members(struct wctx *w, bson_t *b, const json_t *obj, const char *const *skip, int depth)
{
	const char *key;
	json_t *v;
	void *iter;
	for (iter = json_object_iter((json_t *)obj); iter; iter = json_object_iter_next((json_t *)obj, iter)) {
		key = json_object_iter_key(iter);
		v = json_object_iter_value(iter);
		if (strlen(key) != json_object_iter_key_len(iter)) {
			snprintf(w->err, w->errlen, "a field name contains a NUL character");
			return false;
		}
		bool skipped = false;
		for (const char *const *s = skip; s && *s && !skipped; s++)
			skipped = strcmp(*s, key) == 0;
		if (skipped)
			continue;
		size_t saved;
		bool saved_over;
		path_push(w, key, &saved, &saved_over);
		bool ok = put_value(w, b, key, v, depth);
		path_pop(w, saved, saved_over);
		if (!ok)
			return false;
	}
	return true;
}

/* Appends v under key; w->path names v's field (arrays are transparent, as in MongoDB's dotted paths). */
static bool
put_value(struct wctx *w, bson_t *b, const char *key, const json_t *v, int depth)
{
	bool ok;
	if (depth > MONGO_MAX_DEPTH) {
		snprintf(w->err, w->errlen, "document nested deeper than %d levels", MONGO_MAX_DEPTH);
		return false;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		bson_t child;
		bson_append_document_begin(b, key, -1, &child);
		ok = put_members(w, &child, v, NULL, depth + 1);
		bson_append_document_end(b, &child);
		return ok;
	}
	case JSON_ARRAY: {
		bson_t child;
		bson_append_array_begin(b, key, -1, &child);
		ok = true;
		for (size_t i = 0; ok && i < json_array_size(v); i++) {
			char ibuf[16];
			const char *ikey;
			bson_uint32_to_string((uint32_t)i, &ikey, ibuf, sizeof ibuf);
			ok = put_value(w, &child, ikey, json_array_get(v, i), depth + 1);
		}
		bson_append_array_end(b, &child);
		return ok;
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		enum kind k = w->overflow ? K_PLAIN : path_kind(w->d, w->path);
		int64_t ms;
		if (k == K_OID && len == 24 && bson_oid_is_valid(s, len)) {
			bson_oid_t oid;
			bson_oid_init_from_string(&oid, s);
			ok = bson_append_oid(b, key, -1, &oid);
		} else if (k == K_DATE && iso_parse(s, len, &ms)) {
			ok = bson_append_date_time(b, key, -1, ms);
		} else {
			ok = len <= INT32_MAX && bson_append_utf8(b, key, -1, s, (int)len);
		}
		break;
	}
	case JSON_INTEGER:
		ok = bson_append_int64(b, key, -1, json_integer_value(v));
		break;
	case JSON_REAL:
		ok = bson_append_double(b, key, -1, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		ok = bson_append_bool(b, key, -1, json_is_true(v));
		break;
	case JSON_NULL:
	default:
		ok = bson_append_null(b, key, -1);
		break;
	}
	if (!ok)
		snprintf(w->err, w->errlen, "document too large for BSON");
	return ok;
}

static void
wctx_init(struct wctx *w, const struct store_coll_desc *d, const char *path, char *err, size_t errlen)
{
	w->d = d;
	w->plen = 0;
	w->overflow = false;
	w->path[0] = '\0';
	w->err = err;
	w->errlen = errlen;
	if (path) {
		size_t saved;
		bool over;
		path_push(w, path, &saved, &over);
	}
}

/* Appends `key: v` with v converted as the field `path` of collection d. */
static bool
put_field(const struct store_coll_desc *d, bson_t *b, const char *key, const char *path, const json_t *v, char *err,
	  size_t errlen)
{
	struct wctx w;
	wctx_init(&w, d, path, err, errlen);
	return put_value(&w, b, key, v, 1);
}

static bool
put_oid(bson_t *b, const char *key, const char *hex)
{
	bson_oid_t oid;
	if (bson_oid_is_valid(hex, strlen(hex)) && strlen(hex) == 24) {
		bson_oid_init_from_string(&oid, hex);
		return bson_append_oid(b, key, -1, &oid);
	}
	return bson_append_utf8(b, key, -1, hex, -1);   /* a foreign, non-ObjectId _id */
}

/* --- connections ------------------------------------------------------------------------------------------ */

struct conn {
	mongoc_client_t *client;
	mongoc_collection_t *coll;
	bool pooled;
};

static enum prism_err
conn_open(struct mongo_store *ms, const char *coll, struct conn *k, char *err, size_t errlen)
{
	k->coll = NULL;
	k->pooled = true;
	/* Waits at most waitQueueTimeoutMS when all clients are busy. */
	k->client = mongoc_client_pool_pop(ms->pool);
	if (!k->client) {
		snprintf(err, errlen, "mongodb: no free connection within %ld ms", ms->timeout_ms);
		return PRISM_E_STORE;
	}
	if (coll)
		k->coll = mongoc_client_get_collection(k->client, ms->db, coll);
	return PRISM_OK;
}

/* A client of its own with a long socket timeout, for operations that may legitimately take minutes. */
static enum prism_err
conn_open_slow(struct mongo_store *ms, const char *coll, struct conn *k, char *err, size_t errlen)
{
	k->coll = NULL;
	k->pooled = false;
	mongoc_uri_t *uri = mongoc_uri_copy(ms->uri);
	mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, MONGO_SLOW_SOCKET_MS);
	k->client = mongoc_client_new_from_uri(uri);
	mongoc_uri_destroy(uri);
	if (!k->client) {
		snprintf(err, errlen, "mongodb: cannot create a client");
		return PRISM_E_STORE;
	}
	mongoc_client_set_error_api(k->client, MONGOC_ERROR_API_VERSION_2);
	if (coll)
		k->coll = mongoc_client_get_collection(k->client, ms->db, coll);
	return PRISM_OK;
}

static void
conn_close(struct mongo_store *ms, struct conn *k)
{
	if (k->coll)
		mongoc_collection_destroy(k->coll);
	if (k->client) {
		if (k->pooled)
			mongoc_client_pool_push(ms->pool, k->client);
		else
			mongoc_client_destroy(k->client);
	}
	k->coll = NULL;
	k->client = NULL;
}

static int64_t
reply_int(const bson_t *reply, const char *key)
{
	bson_iter_t it;
	if (bson_iter_init_find(&it, reply, key) && (BSON_ITER_HOLDS_NUMBER(&it) || BSON_ITER_HOLDS_BOOL(&it)))
		return bson_iter_as_int64(&it);
	return 0;
}

static struct mongo_store *
ms_of(struct store *s)
{
	return (struct mongo_store *)s;
}

/* --- filters ---------------------------------------------------------------------------------------------- */

static bool
append_cond(const struct store_coll_desc *d, bson_t *b, const struct store_cond *c, char *err, size_t errlen)
{
	static const char *const ops[] = {
		[SOP_NE] = "$ne", [SOP_LT] = "$lt", [SOP_LTE] = "$lte", [SOP_GT] = "$gt", [SOP_GTE] = "$gte",
		[SOP_IN] = "$in",
	};
	bson_t sub;
	bool ok = true;
	switch (c->op) {
	case SOP_EQ:
	case SOP_CONTAINS:         /* {field: v} matches an array holding v */
		return put_field(d, b, c->field, c->field, c->value, err, errlen);
	case SOP_EXISTS:
		/* {f: {$ne: null}} is "present and not null"; {f: null} is "absent or null". */
		if (json_is_true(c->value)) {
			bson_append_document_begin(b, c->field, -1, &sub);
			bson_append_null(&sub, "$ne", -1);
			bson_append_document_end(b, &sub);
		} else {
			bson_append_null(b, c->field, -1);
		}
		return true;
	case SOP_NE:
	case SOP_LT:
	case SOP_LTE:
	case SOP_GT:
	case SOP_GTE:
	case SOP_IN:
		bson_append_document_begin(b, c->field, -1, &sub);
		ok = put_field(d, &sub, ops[c->op], c->field, c->value, err, errlen);
		bson_append_document_end(b, &sub);
		return ok;
	}
	snprintf(err, errlen, "unknown query operator on %s", c->field);
	return false;
}

/* The keyset condition after (sv, id) in the order (sort, _id): MongoDB puts null/absent first ascending. */
static bool
append_after(const struct store_coll_desc *d, bson_t *b, const char *sort, bool desc, const json_t *sv,
	     const char *id, char *err, size_t errlen)
{
	const char *cmp = desc ? "$lt" : "$gt";
	bson_t sub, or, alt;
	if (!sort) {
		bson_append_document_begin(b, "_id", -1, &sub);
		put_oid(&sub, cmp, id);
		bson_append_document_end(b, &sub);
		return true;
	}
	bool isnull = !sv || json_is_null(sv);
	bool ok = true;
	int n = 0;
	char ibuf[16];
	const char *ikey;
	bson_append_array_begin(b, "$or", -1, &or);
	/* Same sort value, later _id. */
	bson_uint32_to_string((uint32_t)n++, &ikey, ibuf, sizeof ibuf);
	bson_append_document_begin(&or, ikey, -1, &alt);
	if (isnull)
		bson_append_null(&alt, sort, -1);
	else
		ok = put_field(d, &alt, sort, sort, sv, err, errlen);
	bson_append_document_begin(&alt, "_id", -1, &sub);
	put_oid(&sub, cmp, id);
	bson_append_document_end(&alt, &sub);
	bson_append_document_end(&or, &alt);
	if (ok && !isnull) {
		/* A later sort value. */
		bson_uint32_to_string((uint32_t)n++, &ikey, ibuf, sizeof ibuf);
		bson_append_document_begin(&or, ikey, -1, &alt);
		bson_append_document_begin(&alt, sort, -1, &sub);
		ok = put_field(d, &sub, cmp, sort, sv, err, errlen);
		bson_append_document_end(&alt, &sub);
		bson_append_document_end(&or, &alt);
		if (desc) {
			/* Descending: the null/absent ones come last. */
			bson_uint32_to_string((uint32_t)n++, &ikey, ibuf, sizeof ibuf);
			bson_append_document_begin(&or, ikey, -1, &alt);
			bson_append_null(&alt, sort, -1);
			bson_append_document_end(&or, &alt);
		}
	} else if (ok && !desc) {
		/* Ascending after a null: every non-null value. */
		bson_uint32_to_string((uint32_t)n++, &ikey, ibuf, sizeof ibuf);
		bson_append_document_begin(&or, ikey, -1, &alt);
		bson_append_document_begin(&alt, sort, -1, &sub);
		bson_append_null(&sub, "$ne", -1);
		bson_append_document_end(&alt, &sub);
		bson_append_document_end(&or, &alt);
	}
	bson_append_array_end(b, &or);
	return ok;
}

/* {$and: [cond…, keyset]} (each condition its own document: a field may be constrained twice). */
static enum prism_err
build_filter(const struct store_coll_desc *d, const struct store_query *q, bool with_after, bson_t *filter,
	     char *err, size_t errlen)
{
	enum prism_err rc = store_query_check(q, err, errlen);
	json_t *sv = NULL;
	char id[25];
	if (rc)
		return rc;
	const char *sort = q->sort && strcmp(q->sort, "_id") != 0 ? q->sort : NULL;
	if (with_after && q->after) {
		if (store_cursor_parse(q->after, &sv, id) != PRISM_OK) {
			snprintf(err, errlen, "invalid page cursor");
			return PRISM_E_BAD_REQUEST;
		}
	}
	if (q->nconds == 0 && !(with_after && q->after))
		return PRISM_OK;
	bson_t arr, el;
	char ibuf[16];
	const char *ikey;
	uint32_t n = 0;
	bool ok = true;
	bson_append_array_begin(filter, "$and", -1, &arr);
	for (size_t i = 0; ok && i < q->nconds; i++) {
		bson_uint32_to_string(n++, &ikey, ibuf, sizeof ibuf);
		bson_append_document_begin(&arr, ikey, -1, &el);
		ok = append_cond(d, &el, &q->conds[i], err, errlen);
		bson_append_document_end(&arr, &el);
	}
	if (ok && with_after && q->after) {
		bson_uint32_to_string(n++, &ikey, ibuf, sizeof ibuf);
		bson_append_document_begin(&arr, ikey, -1, &el);
		ok = append_after(d, &el, sort, q->desc, sv, id, err, errlen);
		bson_append_document_end(&arr, &el);
	}
	bson_append_array_end(filter, &arr);
	json_decref(sv);
	return ok ? PRISM_OK : PRISM_E_BAD_REQUEST;
}

/* --- read-modify-write guard ------------------------------------------------------------------------------
 * MongoDB applies $inc, findAndModify and a filtered replace atomically: there the guard does nothing.
 * FerretDB 1.x does not: it reads the matching document, changes it in Go and writes it back by _id, so
 * concurrent writers lose increments and a version check can pass twice.  The one thing it does
 * atomically is an insert under a unique index, so on such a server a writer of one key first takes
 * (a) a mutex stripe within the process and (b) a lease lock shared by all processes and hosts: a document
 * {_id: lock name, owner, until} in prismlocks, inserted to take it and deleted to give it back.  A lock
 * whose holder died is taken over after its lease (MONGO_LOCK_LEASE_FACTOR × the store timeout, longer
 * than any write can take while the timeouts hold). */

struct rmw {
	pthread_mutex_t *stripe;
	char name[96];
	char owner[25];
	bool locked;
};

static uint64_t
fnv1a64(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static enum prism_err
lock_insert(struct mongo_store *ms, mongoc_collection_t *lc, struct rmw *r, char *err, size_t errlen)
{
	bson_t doc = BSON_INITIALIZER;
	bson_error_t e;
	enum prism_err rc = PRISM_OK;
	BSON_APPEND_UTF8(&doc, "_id", r->name);
	BSON_APPEND_UTF8(&doc, "owner", r->owner);
	bson_append_date_time(&doc, "until", -1, clock_realtime_ms() + MONGO_LOCK_LEASE_FACTOR * ms->timeout_ms);
	if (!mongoc_collection_insert_one(lc, &doc, NULL, NULL, &e))
		rc = map_error(ms, &e, NULL, "lock", err, errlen);
	bson_destroy(&doc);
	return rc;
}

/* Deletes the lock `name` if its lease has run out (its holder is gone). */
static void
lock_expire(mongoc_collection_t *lc, const char *name)
{
	bson_t filter = BSON_INITIALIZER, sub;
	BSON_APPEND_UTF8(&filter, "_id", name);
	bson_append_document_begin(&filter, "until", -1, &sub);
	bson_append_date_time(&sub, "$lt", -1, clock_realtime_ms());
	bson_append_document_end(&filter, &sub);
	bson_t reply;
	if (mongoc_collection_delete_one(lc, &filter, NULL, &reply, NULL) && reply_int(&reply, "deletedCount") > 0)
		log_warn("store: removed the expired write lock %s (its holder died or stalled)", name);
	bson_destroy(&reply);
	bson_destroy(&filter);
}

static enum prism_err
rmw_begin(struct mongo_store *ms, struct conn *k, const char *coll, const char *key, struct rmw *r, char *err,
	  size_t errlen)
{
	memset(r, 0, sizeof *r);
	if (!ms->nonatomic)
		return PRISM_OK;
	uint64_t h = fnv1a64(fnv1a64(14695981039346656037ULL, coll), key);
	int64_t deadline = clock_monotonic_ms() + ms->timeout_ms;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms->timeout_ms / 1000;
	until.tv_nsec += (ms->timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_t *m = &ms->stripes[h % MONGO_RMW_STRIPES];
	if (pthread_mutex_timedlock(m, &until) != 0) {
		snprintf(err, errlen, "mongodb: a write to %s waited %ld ms for another one", coll, ms->timeout_ms);
		return PRISM_E_STORE;
	}
	r->stripe = m;
	snprintf(r->name, sizeof r->name, "%s:%016llx", coll, (unsigned long long)h);
	store_new_id(r->owner);
	mongoc_collection_t *lc = mongoc_client_get_collection(k->client, ms->db, MONGO_LOCK_COLL);
	enum prism_err rc;
	unsigned pause_us = 500;
	for (;;) {
		rc = lock_insert(ms, lc, r, err, errlen);
		if (rc != PRISM_E_CONFLICT)
			break;
		lock_expire(lc, r->name);
		if (clock_monotonic_ms() >= deadline) {
			snprintf(err, errlen, "mongodb: a write to %s waited %ld ms for another process", coll,
				 ms->timeout_ms);
			rc = PRISM_E_STORE;
			break;
		}
		unsigned jitter = 0;
		(void)rand_bytes(&jitter, sizeof jitter);
		usleep(pause_us + jitter % pause_us);
		if (pause_us < 16000)
			pause_us *= 2;
	}
	mongoc_collection_destroy(lc);
	if (rc) {
		pthread_mutex_unlock(r->stripe);
		r->stripe = NULL;
		return rc;
	}
	r->locked = true;
	return PRISM_OK;
}

static void
rmw_end(struct mongo_store *ms, struct conn *k, struct rmw *r)
{
	if (r->locked) {
		mongoc_collection_t *lc = mongoc_client_get_collection(k->client, ms->db, MONGO_LOCK_COLL);
		bson_t filter = BSON_INITIALIZER;
		bson_error_t e;
		BSON_APPEND_UTF8(&filter, "_id", r->name);
		BSON_APPEND_UTF8(&filter, "owner", r->owner);
		if (!mongoc_collection_delete_one(lc, &filter, NULL, NULL, &e))
			log_warn("store: cannot release the write lock %s (it expires by itself): %s", r->name, e.message);
		bson_destroy(&filter);
		mongoc_collection_destroy(lc);
		r->locked = false;
	}
	if (r->stripe)
		pthread_mutex_unlock(r->stripe);
	r->stripe = NULL;
}

/* --- operations -------------------------------------------------------------------------------------------- */

static void
mongo_close(struct store *s)
{
	struct mongo_store *ms = ms_of(s);
	if (!ms)
		return;
	if (ms->pool)
		mongoc_client_pool_destroy(ms->pool);
	if (ms->uri)
		mongoc_uri_destroy(ms->uri);
	if (ms->password) {
		secure_wipe(ms->password, strlen(ms->password));
		free(ms->password);
	}
	for (int i = 0; i < MONGO_RMW_STRIPES; i++)
		pthread_mutex_destroy(&ms->stripes[i]);
	free(ms);
}

static enum prism_err
ping_client(struct mongo_store *ms, mongoc_client_t *client, char *err, size_t errlen)
{
	bson_t cmd = BSON_INITIALIZER, reply;
	bson_error_t e;
	enum prism_err rc = PRISM_OK;
	BSON_APPEND_INT32(&cmd, "ping", 1);
	if (!mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &e))
		rc = map_error(ms, &e, &reply, "ping", err, errlen);
	bson_destroy(&reply);
	bson_destroy(&cmd);
	return rc;
}

static enum prism_err
mongo_ping(struct store *s, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	struct conn k;
	enum prism_err rc = conn_open(ms, NULL, &k, err, errlen);
	if (rc)
		return rc;
	rc = ping_client(ms, k.client, err, errlen);
	conn_close(ms, &k);
	return rc;
}

/* "prism_tenantId_1_timestamp_-1" and its key document. */
static void
index_spec(const char *fields, bson_t *key, char *name, size_t namelen)
{
	size_t o = (size_t)snprintf(name, namelen, "prism");
	const char *p = fields;
	while (*p) {
		size_t len = strcspn(p, ",");
		bool desc = *p == '-';
		const char *f = p + (desc ? 1 : 0);
		size_t flen = len - (desc ? 1 : 0);
		char field[MONGO_MAX_PATH];
		snprintf(field, sizeof field, "%.*s", (int)flen, f);
		bson_append_int32(key, field, -1, desc ? -1 : 1);
		if (o < namelen)
			o += (size_t)snprintf(name + o, namelen - o, "_%s_%d", field, desc ? -1 : 1);
		p += len;
		if (*p == ',')
			p++;
	}
}

static enum prism_err
create_index(struct mongo_store *ms, struct conn *k, const char *coll, const char *fields, bool unique, int *applied,
	     char *err, size_t errlen)
{
	bson_t cmd = BSON_INITIALIZER, indexes, spec, key, reply;
	bson_error_t e;
	char name[256];
	enum prism_err rc = PRISM_OK;
	BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
	bson_append_array_begin(&cmd, "indexes", -1, &indexes);
	bson_append_document_begin(&indexes, "0", -1, &spec);
	bson_append_document_begin(&spec, "key", -1, &key);
	index_spec(fields, &key, name, sizeof name);
	bson_append_document_end(&spec, &key);
	BSON_APPEND_UTF8(&spec, "name", name);
	if (unique) {
		BSON_APPEND_BOOL(&spec, "unique", true);
		/* Documents without the field may repeat (store.h); FerretDB accepts and ignores the flag. */
		BSON_APPEND_BOOL(&spec, "sparse", true);
	}
	bson_append_document_end(&indexes, &spec);
	bson_append_array_end(&cmd, &indexes);
	if (!mongoc_collection_write_command_with_opts(k->coll, &cmd, NULL, &reply, &e)) {
		/* 68 IndexAlreadyExists, 85 IndexOptionsConflict, 86 IndexKeySpecsConflict: the original's Mongoose
		 * indexes cover the same keys under other names (or with other options); keep them. */
		if (e.domain == MONGOC_ERROR_SERVER && (e.code == 68 || e.code == 85 || e.code == 86)) {
			log_info("store: %s index %s already exists as another index (%s); kept", coll, name, e.message);
		} else {
			rc = map_error(ms, &e, &reply, "createIndexes", err, errlen);
			size_t used = strlen(err);
			snprintf(err + used, errlen - used, " (%s.%s)", coll, name);
		}
	} else if (reply_int(&reply, "numIndexesAfter") > reply_int(&reply, "numIndexesBefore")) {
		(*applied)++;
		log_debug("store: created index %s on %s", name, coll);
	}
	bson_destroy(&reply);
	bson_destroy(&cmd);
	return rc;
}

static enum prism_err
mongo_migrate(struct store *s, int *applied, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	int n = 0;
	struct conn k;
	enum prism_err rc = conn_open_slow(ms, NULL, &k, err, errlen);
	for (int c = 0; c < COLL_COUNT && !rc; c++) {
		const struct store_coll_desc *d = store_coll_desc((enum store_coll)c);
		k.coll = mongoc_client_get_collection(k.client, ms->db, d->name);
		for (const char *const *ix = d->indexes; !rc && *ix; ix++)
			rc = create_index(ms, &k, d->name, *ix, false, &n, err, errlen);
		for (const char *const *ix = d->unique; !rc && *ix; ix++)
			rc = create_index(ms, &k, d->name, *ix, true, &n, err, errlen);
		mongoc_collection_destroy(k.coll);
		k.coll = NULL;
	}
	if (k.client)
		conn_close(ms, &k);
	if (n)
		log_info("store: created %d indexes in database %s", n, ms->db);
	if (applied)
		*applied = n;
	return rc;
}

/* Runs find and converts up to `max` documents into *docs. */
static enum prism_err
run_find(struct mongo_store *ms, struct conn *k, const bson_t *filter, const bson_t *opts, json_t **docs, char *err,
	 size_t errlen)
{
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(k->coll, filter, opts, NULL);
	const bson_t *doc;
	bson_error_t e;
	json_t *out = json_array();
	enum prism_err rc = PRISM_OK;
	while (mongoc_cursor_next(cur, &doc))
		json_array_append_new(out, bson_to_json(doc));
	if (mongoc_cursor_error_document(cur, &e, &doc)) {
		rc = map_error(ms, &e, doc, "find", err, errlen);
		json_decref(out);
		out = NULL;
	}
	mongoc_cursor_destroy(cur);
	*docs = out;
	return rc;
}

static enum prism_err
mongo_get(struct store *s, enum store_coll c, const char *id, json_t **doc, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	json_t *docs = NULL;
	struct conn k;
	*doc = NULL;
	if (!d || !id || !*id) {
		snprintf(err, errlen, "no such document");
		return PRISM_E_NOT_FOUND;
	}
	enum prism_err rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	put_oid(&filter, "_id", id);
	BSON_APPEND_INT64(&opts, "limit", 1);
	rc = run_find(ms, &k, &filter, &opts, &docs, err, errlen);
	conn_close(ms, &k);
	if (rc)
		goto out;
	if (json_array_size(docs) == 0) {
		snprintf(err, errlen, "%s %s not found", d->name, id);
		rc = PRISM_E_NOT_FOUND;
		goto out;
	}
	*doc = json_incref(json_array_get(docs, 0));
out:
	json_decref(docs);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

static enum prism_err
mongo_find(struct store *s, enum store_coll c, const struct store_query *q, json_t **docs, char **next, char *err,
	   size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sortdoc;
	struct conn k = { 0 };
	json_t *out = NULL;
	*docs = NULL;
	if (next)
		*next = NULL;
	if (!d) {
		snprintf(err, errlen, "unknown collection");
		return PRISM_E_BAD_REQUEST;
	}
	enum prism_err rc = build_filter(d, q, true, &filter, err, errlen);
	if (rc)
		goto out;
	const char *sort = q->sort && strcmp(q->sort, "_id") != 0 ? q->sort : NULL;
	long limit = q->limit ? q->limit : STORE_MAX_LIMIT;
	int dir = q->desc ? -1 : 1;
	bson_append_document_begin(&opts, "sort", -1, &sortdoc);
	if (sort)
		bson_append_int32(&sortdoc, sort, -1, dir);
	bson_append_int32(&sortdoc, "_id", -1, dir);
	bson_append_document_end(&opts, &sortdoc);
	BSON_APPEND_INT64(&opts, "limit", limit + 1);     /* one more tells whether a next page exists */
	rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	rc = run_find(ms, &k, &filter, &opts, &out, err, errlen);
	conn_close(ms, &k);
	if (rc)
		goto out;
	if ((long)json_array_size(out) > limit) {
		json_array_remove(out, (size_t)limit);
		if (next) {
			json_t *last = json_array_get(out, (size_t)limit - 1);
			const char *id = json_string_value(json_object_get(last, "_id"));
			*next = store_id_valid(id) ? store_cursor_make(sort ? store_path_get(last, sort) : NULL, id) : NULL;
			if (!*next) {
				snprintf(err, errlen, "cannot page past a document with a foreign _id or a long sort value");
				rc = PRISM_E_BAD_REQUEST;
				goto out;
			}
		}
	}
	*docs = out;
	out = NULL;
out:
	json_decref(out);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

static enum prism_err
mongo_count(struct store *s, enum store_coll c, const struct store_query *q, long *n, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t filter = BSON_INITIALIZER;
	bson_error_t e;
	struct conn k;
	*n = 0;
	if (!d) {
		snprintf(err, errlen, "unknown collection");
		return PRISM_E_BAD_REQUEST;
	}
	enum prism_err rc = build_filter(d, q, false, &filter, err, errlen);
	if (rc)
		goto out;
	rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	int64_t cnt = mongoc_collection_count_documents(k.coll, &filter, NULL, NULL, NULL, &e);
	if (cnt < 0)
		rc = map_error(ms, &e, NULL, "count", err, errlen);
	else
		*n = (long)cnt;
	conn_close(ms, &k);
out:
	bson_destroy(&filter);
	return rc;
}

/* The BSON of a new document: _id, fields, createdAt/updatedAt, __v (Mongoose's order). */
static enum prism_err
build_insert(const struct store_coll_desc *d, const json_t *doc, bson_t *b, char id_out[25], char *err, size_t errlen)
{
	static const char *const skip[] = { "_id", "__v", NULL };
	static const char *const skip_ts[] = { "_id", "__v", "createdAt", "updatedAt", NULL };
	struct wctx w;
	char id[25];
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "a document must be a JSON object");
		return PRISM_E_BAD_REQUEST;
	}
	json_t *jid = json_object_get(doc, "_id");
	if (jid && !json_is_null(jid)) {
		if (!store_id_valid(json_string_value(jid))) {
			snprintf(err, errlen, "_id must be 24 lowercase hex digits");
			return PRISM_E_BAD_REQUEST;
		}
		memcpy(id, json_string_value(jid), 25);
	} else {
		store_new_id(id);
	}
	put_oid(b, "_id", id);
	wctx_init(&w, d, NULL, err, errlen);
	if (!put_members(&w, b, doc, d->timestamps ? skip_ts : skip, 1))
		return PRISM_E_BAD_REQUEST;
	if (d->timestamps) {
		int64_t ms = clock_realtime_ms(), created = ms;
		json_t *jc = json_object_get(doc, "createdAt");
		/* An imported document keeps its creation time. */
		if (json_is_string(jc) && !iso_parse(json_string_value(jc), json_string_length(jc), &created))
			created = ms;
		bson_append_date_time(b, "createdAt", -1, created);
		bson_append_date_time(b, "updatedAt", -1, ms);
	}
	bson_append_int32(b, "__v", -1, 0);
	if (id_out)
		memcpy(id_out, id, 25);
	return PRISM_OK;
}

static enum prism_err
mongo_insert(struct store *s, enum store_coll c, json_t *doc, char *id_out, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t b = BSON_INITIALIZER, reply;
	bson_error_t e;
	struct conn k;
	char id[25];
	if (!d) {
		snprintf(err, errlen, "unknown collection");
		return PRISM_E_BAD_REQUEST;
	}
	enum prism_err rc = build_insert(d, doc, &b, id, err, errlen);
	if (rc)
		goto out;
	rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	if (!mongoc_collection_insert_one(k.coll, &b, NULL, &reply, &e))
		rc = map_error(ms, &e, &reply, "insert", err, errlen);
	else if (id_out)
		memcpy(id_out, id, 25);
	bson_destroy(&reply);
	conn_close(ms, &k);
out:
	bson_destroy(&b);
	return rc;
}

static enum prism_err
mongo_insert_many(struct store *s, enum store_coll c, json_t *docs, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	size_t n = json_array_size(docs), built = 0;
	bson_t **bs = NULL, opts = BSON_INITIALIZER, reply = BSON_INITIALIZER;
	bson_error_t e;
	struct conn k;
	enum prism_err rc = PRISM_OK;
	if (!d || !json_is_array(docs)) {
		snprintf(err, errlen, "insert_many needs a collection and an array of documents");
		return PRISM_E_BAD_REQUEST;
	}
	if (n == 0)
		return PRISM_OK;
	bs = xcalloc(n, sizeof *bs);
	for (; built < n; built++) {
		bs[built] = bson_new();
		rc = build_insert(d, json_array_get(docs, built), bs[built], NULL, err, errlen);
		if (rc) {
			built++;
			goto out;
		}
	}
	BSON_APPEND_BOOL(&opts, "ordered", true);
	rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	bson_destroy(&reply);
	if (!mongoc_collection_insert_many(k.coll, (const bson_t **)bs, n, &opts, &reply, &e))
		rc = map_error(ms, &e, &reply, "insert_many", err, errlen);
	conn_close(ms, &k);
out:
	for (size_t i = 0; i < built; i++)
		bson_destroy(bs[i]);
	free(bs);
	bson_destroy(&opts);
	bson_destroy(&reply);
	return rc;
}

/* Reads the stored __v and createdAt of `id`: *found false when there is no such document. */
static enum prism_err
read_version(struct mongo_store *ms, struct conn *k, const char *id, bool *found, bson_t *meta, char *err,
	     size_t errlen)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
	bson_error_t e;
	const bson_t *doc;
	enum prism_err rc = PRISM_OK;
	put_oid(&filter, "_id", id);
	bson_append_document_begin(&opts, "projection", -1, &proj);
	BSON_APPEND_INT32(&proj, "__v", 1);
	BSON_APPEND_INT32(&proj, "createdAt", 1);
	bson_append_document_end(&opts, &proj);
	BSON_APPEND_INT64(&opts, "limit", 1);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(k->coll, &filter, &opts, NULL);
	*found = false;
	if (mongoc_cursor_next(cur, &doc)) {
		*found = true;
		bson_copy_to(doc, meta);
	} else if (mongoc_cursor_error_document(cur, &e, &doc)) {
		rc = map_error(ms, &e, doc, "find", err, errlen);
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

static enum prism_err
mongo_update(struct store *s, enum store_coll c, const char *id, json_t *doc, long expect_version, long *new_version,
	     char *err, size_t errlen)
{
	static const char *const skip[] = { "_id", "__v", "createdAt", NULL };
	static const char *const skip_ts[] = { "_id", "__v", "createdAt", "updatedAt", NULL };
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	struct conn k = { 0 };
	struct rmw guard;
	enum prism_err rc;
	int64_t deadline = clock_monotonic_ms() + ms->timeout_ms;
	if (!d || !id || !json_is_object(doc)) {
		snprintf(err, errlen, "update needs a collection, an id and a document");
		return PRISM_E_BAD_REQUEST;
	}
	rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		return rc;
	rc = rmw_begin(ms, &k, d->name, id, &guard, err, errlen);
	if (rc) {
		conn_close(ms, &k);
		return rc;
	}
	for (int attempt = 0;; attempt++) {
		bool retry = false;
		bson_t meta = BSON_INITIALIZER, filter = BSON_INITIALIZER, b = BSON_INITIALIZER, reply = BSON_INITIALIZER;
		bson_iter_t it;
		bson_error_t e;
		bool found = false, has_v = false;
		int64_t old_v = 0;
		struct wctx w;
		rc = read_version(ms, &k, id, &found, &meta, err, errlen);
		if (rc == PRISM_OK && !found) {
			snprintf(err, errlen, "%s %s not found", d->name, id);
			rc = PRISM_E_NOT_FOUND;
		}
		if (rc == PRISM_OK) {
			/* Documents written by Mongoose may lack __v: that is version 0. */
			has_v = bson_iter_init_find(&it, &meta, "__v") && BSON_ITER_HOLDS_NUMBER(&it);
			old_v = has_v ? bson_iter_as_int64(&it) : 0;
			if (expect_version >= 0 && old_v != expect_version) {
				snprintf(err, errlen, "%s %s was changed by someone else (version %lld, expected %ld)", d->name,
					 id, (long long)old_v, expect_version);
				rc = PRISM_E_CONFLICT;
			}
		}
		if (rc == PRISM_OK) {
			put_oid(&b, "_id", id);
			wctx_init(&w, d, NULL, err, errlen);
			if (!put_members(&w, &b, doc, d->timestamps ? skip_ts : skip, 1))
				rc = PRISM_E_BAD_REQUEST;
		}
		if (rc == PRISM_OK) {
			/* createdAt stays what it was (for non-timestamp collections: the stored one, else the new one). */
			if (bson_iter_init_find(&it, &meta, "createdAt"))
				bson_append_iter(&b, "createdAt", -1, &it);
			else if (d->timestamps)
				bson_append_date_time(&b, "createdAt", -1, clock_realtime_ms());
			else if (json_object_get(doc, "createdAt"))
				put_field(d, &b, "createdAt", "createdAt", json_object_get(doc, "createdAt"), err, errlen);
			if (d->timestamps)
				bson_append_date_time(&b, "updatedAt", -1, clock_realtime_ms());
			bson_append_int64(&b, "__v", -1, old_v + 1);
			/* Conditional on the version read above: the replace is the compare-and-swap. */
			put_oid(&filter, "_id", id);
			if (has_v && bson_iter_init_find(&it, &meta, "__v")) {
				bson_append_iter(&filter, "__v", -1, &it);
			} else {
				bson_t ex;
				bson_append_document_begin(&filter, "__v", -1, &ex);
				BSON_APPEND_BOOL(&ex, "$exists", false);
				bson_append_document_end(&filter, &ex);
			}
			bson_destroy(&reply);
			if (!mongoc_collection_replace_one(k.coll, &filter, &b, NULL, &reply, &e)) {
				rc = map_error(ms, &e, &reply, "update", err, errlen);
			} else if (reply_int(&reply, "matchedCount") == 1) {
				if (new_version)
					*new_version = (long)(old_v + 1);
			} else if (expect_version >= 0 || attempt + 1 >= MONGO_UPDATE_TRIES ||
				   clock_monotonic_ms() >= deadline) {
				snprintf(err, errlen, "%s %s was changed by someone else", d->name, id);
				rc = PRISM_E_CONFLICT;
			} else {
				retry = true;               /* lost a race between read and replace: read again */
			}
		}
		bson_destroy(&meta);
		bson_destroy(&filter);
		bson_destroy(&b);
		bson_destroy(&reply);
		if (!retry)
			break;
	}
	/* A CONFLICT for a document that has meanwhile been deleted is a NOT_FOUND. */
	if (rc == PRISM_E_CONFLICT) {
		bson_t meta = BSON_INITIALIZER;
		bool found = true;
		char e2[128];
		if (read_version(ms, &k, id, &found, &meta, e2, sizeof e2) == PRISM_OK && !found) {
			snprintf(err, errlen, "%s %s not found", d->name, id);
			rc = PRISM_E_NOT_FOUND;
		}
		bson_destroy(&meta);
	}
	rmw_end(ms, &k, &guard);
	conn_close(ms, &k);
	return rc;
}

static enum prism_err
mongo_remove(struct store *s, enum store_coll c, const char *id, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t filter = BSON_INITIALIZER, reply = BSON_INITIALIZER;
	bson_error_t e;
	struct conn k;
	if (!d || !id) {
		snprintf(err, errlen, "remove needs a collection and an id");
		return PRISM_E_BAD_REQUEST;
	}
	enum prism_err rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	put_oid(&filter, "_id", id);
	bson_destroy(&reply);
	if (!mongoc_collection_delete_one(k.coll, &filter, NULL, &reply, &e)) {
		rc = map_error(ms, &e, &reply, "remove", err, errlen);
	} else if (reply_int(&reply, "deletedCount") == 0) {
		snprintf(err, errlen, "%s %s not found", d->name, id);
		rc = PRISM_E_NOT_FOUND;
	}
	conn_close(ms, &k);
out:
	bson_destroy(&filter);
	bson_destroy(&reply);
	return rc;
}

/* Key values are equalities: an object there would be an operator ({"$ne": ...}), so only scalars. */
static bool
key_ok(const json_t *obj, bool numbers_only, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "upsert key, increments and insert fields must be objects");
		return false;
	}
	json_object_foreach((json_t *)obj, k, v) {
		if (!*k || *k == '$') {
			snprintf(err, errlen, "invalid field name \"%s\"", k);
			return false;
		}
		if (numbers_only ? !json_is_number(v) : (json_is_object(v) || json_is_array(v))) {
			snprintf(err, errlen, "field %s: %s", k, numbers_only ? "increments must be numbers" :
				 "upsert key values must be scalars");
			return false;
		}
	}
	return true;
}

static enum prism_err
mongo_upsert_inc(struct store *s, enum store_coll c, json_t *key, json_t *inc, json_t *set_on_insert, char *err,
		 size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, sub, opts = BSON_INITIALIZER;
	struct conn k = { 0 };
	struct rmw guard = { 0 };
	char *keytext = NULL;
	enum prism_err rc = PRISM_OK;
	const char *f;
	json_t *v;
	struct wctx w;
	if (!d || !key_ok(key, false, err, errlen) || !key_ok(inc, true, err, errlen) ||
	    (set_on_insert && !json_is_object(set_on_insert))) {
		if (!d)
			snprintf(err, errlen, "unknown collection");
		rc = PRISM_E_BAD_REQUEST;
		goto out;
	}
	/* The unique index on the key is what makes two first upserts of one key collide instead of creating
	 * two documents. */
	if (!store_unique_for_key(d, key)) {
		snprintf(err, errlen, "the upsert key of %s must be one of its unique keys", d->name);
		rc = PRISM_E_BAD_REQUEST;
		goto out;
	}
	json_object_foreach(key, f, v) {
		if (!put_field(d, &filter, f, f, v, err, errlen)) {
			rc = PRISM_E_BAD_REQUEST;
			goto out;
		}
	}
	if (json_object_size(inc) > 0) {
		bson_append_document_begin(&update, "$inc", -1, &sub);
		wctx_init(&w, d, NULL, err, errlen);
		bool ok = put_members(&w, &sub, inc, NULL, 1);
		bson_append_document_end(&update, &sub);
		if (!ok) {
			rc = PRISM_E_BAD_REQUEST;
			goto out;
		}
	}
	if (d->timestamps) {
		bson_append_document_begin(&update, "$set", -1, &sub);
		bson_append_date_time(&sub, "updatedAt", -1, clock_realtime_ms());
		bson_append_document_end(&update, &sub);
	}
	/* $setOnInsert may not name a field that $inc or the key already sets (MongoDB rejects the conflict). */
	bson_append_document_begin(&update, "$setOnInsert", -1, &sub);
	json_object_foreach(set_on_insert, f, v) {
		if (json_object_get(key, f) || json_object_get(inc, f) || !strcmp(f, "_id") || !strcmp(f, "__v") ||
		    (d->timestamps && (!strcmp(f, "createdAt") || !strcmp(f, "updatedAt"))))
			continue;
		if (!put_field(d, &sub, f, f, v, err, errlen)) {
			bson_append_document_end(&update, &sub);
			rc = PRISM_E_BAD_REQUEST;
			goto out;
		}
	}
	if (d->timestamps)
		bson_append_date_time(&sub, "createdAt", -1, clock_realtime_ms());
	bson_append_int32(&sub, "__v", -1, 0);
	bson_append_document_end(&update, &sub);
	BSON_APPEND_BOOL(&opts, "upsert", true);
	keytext = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
	rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	rc = rmw_begin(ms, &k, d->name, keytext ? keytext : "", &guard, err, errlen);
	if (rc)
		goto out;
	/* Two first upserts of one key race: one inserts, the other hits the unique index; the retry then
	 * finds the document and increments it. */
	for (int attempt = 0; attempt < 2; attempt++) {
		bson_t reply;
		bson_error_t e;
		bool ok = mongoc_collection_update_one(k.coll, &filter, &update, &opts, &reply, &e);
		rc = ok ? PRISM_OK : map_error(ms, &e, &reply, "upsert", err, errlen);
		bson_destroy(&reply);
		if (rc != PRISM_E_CONFLICT)
			break;
	}
out:
	if (k.client)
		rmw_end(ms, &k, &guard);
	conn_close(ms, &k);
	free(keytext);
	bson_destroy(&filter);
	bson_destroy(&update);
	bson_destroy(&opts);
	return rc;
}

static enum prism_err
mongo_delete_before(struct store *s, enum store_coll c, const char *field, const char *before_iso, long *deleted,
		    char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(c);
	bson_t filter = BSON_INITIALIZER, sub, reply = BSON_INITIALIZER;
	bson_error_t e;
	struct conn k;
	int64_t when;
	if (deleted)
		*deleted = 0;
	if (!d || !field || !before_iso || !iso_parse(before_iso, strlen(before_iso), &when) ||
	    strspn(field, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != strlen(field)) {
		snprintf(err, errlen, "delete_before needs a field and an ISO-8601 time");
		return PRISM_E_BAD_REQUEST;
	}
	bson_append_document_begin(&filter, field, -1, &sub);
	if (path_kind(d, field) == K_DATE)
		bson_append_date_time(&sub, "$lt", -1, when);
	else
		BSON_APPEND_UTF8(&sub, "$lt", before_iso);
	bson_append_document_end(&filter, &sub);
	enum prism_err rc = conn_open_slow(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	bson_destroy(&reply);
	if (!mongoc_collection_delete_many(k.coll, &filter, NULL, &reply, &e))
		rc = map_error(ms, &e, &reply, "delete", err, errlen);
	else if (deleted)
		*deleted = (long)reply_int(&reply, "deletedCount");
	conn_close(ms, &k);
out:
	bson_destroy(&filter);
	bson_destroy(&reply);
	return rc;
}

static bool
generation_of(const bson_t *doc, int64_t *gen)
{
	bson_iter_t it;
	if (!doc || !bson_iter_init_find(&it, doc, "value") || !BSON_ITER_HOLDS_NUMBER(&it))
		return false;
	*gen = bson_iter_as_int64(&it);
	return true;
}

static enum prism_err
mongo_generation(struct store *s, int64_t *gen, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(COLL_SYSTEMCONFIGS);
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	bson_error_t e;
	const bson_t *doc;
	struct conn k;
	*gen = 0;
	enum prism_err rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	BSON_APPEND_UTF8(&filter, "key", GENERATION_KEY);
	BSON_APPEND_INT64(&opts, "limit", 1);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(k.coll, &filter, &opts, NULL);
	if (mongoc_cursor_next(cur, &doc))
		generation_of(doc, gen);
	else if (mongoc_cursor_error_document(cur, &e, &doc))
		rc = map_error(ms, &e, doc, "generation", err, errlen);
	mongoc_cursor_destroy(cur);
	conn_close(ms, &k);
out:
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

static enum prism_err
mongo_bump_generation(struct store *s, int64_t *gen, char *err, size_t errlen)
{
	struct mongo_store *ms = ms_of(s);
	const struct store_coll_desc *d = store_coll_desc(COLL_SYSTEMCONFIGS);
	bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, sub;
	mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
	struct conn k = { 0 };
	struct rmw guard = { 0 };
	int64_t now = clock_realtime_ms();
	if (gen)
		*gen = 0;
	BSON_APPEND_UTF8(&filter, "key", GENERATION_KEY);
	bson_append_document_begin(&update, "$inc", -1, &sub);
	BSON_APPEND_INT64(&sub, "value", 1);
	bson_append_document_end(&update, &sub);
	bson_append_document_begin(&update, "$set", -1, &sub);
	bson_append_date_time(&sub, "updatedAt", -1, now);
	bson_append_document_end(&update, &sub);
	bson_append_document_begin(&update, "$setOnInsert", -1, &sub);
	bson_append_date_time(&sub, "createdAt", -1, now);
	bson_append_int32(&sub, "__v", -1, 0);
	bson_append_document_end(&update, &sub);
	mongoc_find_and_modify_opts_set_update(fam, &update);
	mongoc_find_and_modify_opts_set_flags(fam, MONGOC_FIND_AND_MODIFY_UPSERT | MONGOC_FIND_AND_MODIFY_RETURN_NEW);
	enum prism_err rc = conn_open(ms, d->name, &k, err, errlen);
	if (rc)
		goto out;
	rc = rmw_begin(ms, &k, d->name, GENERATION_KEY, &guard, err, errlen);
	if (rc)
		goto out;
	for (int attempt = 0; attempt < 2; attempt++) {
		bson_t reply;
		bson_error_t e;
		bson_iter_t it;
		if (!mongoc_collection_find_and_modify_with_opts(k.coll, &filter, fam, &reply, &e)) {
			rc = map_error(ms, &e, &reply, "bump generation", err, errlen);
		} else {
			rc = PRISM_OK;
			if (gen && bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
				uint32_t len;
				const uint8_t *data;
				bson_t value;
				bson_iter_document(&it, &len, &data);
				if (bson_init_static(&value, data, len))
					generation_of(&value, gen);
			}
		}
		bson_destroy(&reply);
		if (rc != PRISM_E_CONFLICT)
			break;
	}
out:
	if (k.client)
		rmw_end(ms, &k, &guard);
	conn_close(ms, &k);
	mongoc_find_and_modify_opts_destroy(fam);
	bson_destroy(&filter);
	bson_destroy(&update);
	return rc;
}

static const struct store_ops mongo_ops = {
	.name = "mongodb",
	.close = mongo_close,
	.ping = mongo_ping,
	.migrate = mongo_migrate,
	.get = mongo_get,
	.find = mongo_find,
	.count = mongo_count,
	.insert = mongo_insert,
	.insert_many = mongo_insert_many,
	.update = mongo_update,
	.remove = mongo_remove,
	.upsert_inc = mongo_upsert_inc,
	.delete_before = mongo_delete_before,
	.generation = mongo_generation,
	.bump_generation = mongo_bump_generation,
};

/* --- open -------------------------------------------------------------------------------------------------- */

static void
uri_default_int(mongoc_uri_t *uri, const char *option, int32_t value)
{
	if (!mongoc_uri_has_option(uri, option))
		mongoc_uri_set_option_as_int32(uri, option, value);
}

static void
uri_default_bool(mongoc_uri_t *uri, const char *option, bool value)
{
	if (!mongoc_uri_has_option(uri, option))
		mongoc_uri_set_option_as_bool(uri, option, value);
}

/* FerretDB 1.x names itself in buildInfo; its updates are not atomic (rmw_begin). */
static void
detect_nonatomic(struct mongo_store *ms)
{
	struct conn k;
	bson_t cmd = BSON_INITIALIZER, reply;
	bson_error_t e;
	bson_iter_t it;
	char err[64];
	if (conn_open(ms, NULL, &k, err, sizeof err) != PRISM_OK)
		return;
	BSON_APPEND_INT32(&cmd, "buildInfo", 1);
	if (mongoc_client_command_simple(k.client, "admin", &cmd, NULL, &reply, &e) &&
	    bson_iter_init_find(&it, &reply, "ferretdbVersion") && BSON_ITER_HOLDS_UTF8(&it)) {
		ms->nonatomic = true;
		log_info("store: the server is FerretDB %s, which does not apply updates atomically: counters and "
			 "versioned updates take a write lock in %s", bson_iter_utf8(&it, NULL), MONGO_LOCK_COLL);
	}
	bson_destroy(&reply);
	bson_destroy(&cmd);
	conn_close(ms, &k);
}

enum prism_err
store_mongo_open(const char *uri_text, long timeout_ms, struct store **out, char *err, size_t errlen)
{
	struct mongo_store *ms = NULL;
	bson_error_t e;
	char safe[512];
	enum prism_err rc = PRISM_OK;
	struct conn k = { 0 };
	*out = NULL;
	pthread_once(&mongo_once, mongo_global_init);
	if (timeout_ms <= 0)
		timeout_ms = 5000;
	if (timeout_ms > INT32_MAX)
		timeout_ms = INT32_MAX;
	redact_uri(uri_text ? uri_text : "", safe, sizeof safe);
	ms = xcalloc(1, sizeof *ms);
	for (int i = 0; i < MONGO_RMW_STRIPES; i++)
		pthread_mutex_init(&ms->stripes[i], NULL);
	ms->base.ops = &mongo_ops;
	ms->timeout_ms = timeout_ms;
	ms->uri = uri_text ? mongoc_uri_new_with_error(uri_text, &e) : NULL;
	if (!ms->uri) {
		char why[sizeof e.message];
		redact_uri(uri_text ? e.message : "none given", why, sizeof why);
		snprintf(err, errlen, "invalid MongoDB URI %s: %s", safe, why);
		rc = PRISM_E_CONFIG;
		goto out;
	}
	if (mongoc_uri_get_password(ms->uri))
		ms->password = xstrdup(mongoc_uri_get_password(ms->uri));
	const char *db = mongoc_uri_get_database(ms->uri);
	if (!db || !*db)
		db = MONGO_DEFAULT_DB;
	if (strlen(db) > MONGO_MAX_DB_NAME || strpbrk(db, "/\\. \"$*<>:|?")) {
		snprintf(err, errlen, "invalid MongoDB database name in %s", safe);
		rc = PRISM_E_CONFIG;
		goto out;
	}
	snprintf(ms->db, sizeof ms->db, "%s", db);
	/* The store timeout bounds every wait of a request thread: finding a server, connecting, a reply,
	 * and a free pooled client. */
	uri_default_int(ms->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, (int32_t)timeout_ms);
	uri_default_int(ms->uri, MONGOC_URI_CONNECTTIMEOUTMS, (int32_t)timeout_ms);
	uri_default_int(ms->uri, MONGOC_URI_SOCKETTIMEOUTMS, (int32_t)timeout_ms);
	uri_default_int(ms->uri, MONGOC_URI_WAITQUEUETIMEOUTMS, (int32_t)timeout_ms);
	uri_default_bool(ms->uri, MONGOC_URI_RETRYREADS, true);
	uri_default_bool(ms->uri, MONGOC_URI_RETRYWRITES, true);
	if (!mongoc_uri_get_appname(ms->uri))
		mongoc_uri_set_appname(ms->uri, MONGO_APPNAME);
	ms->pool = mongoc_client_pool_new(ms->uri);
	if (!ms->pool) {
		snprintf(err, errlen, "cannot create a MongoDB client pool for %s", safe);
		rc = PRISM_E_CONFIG;
		goto out;
	}
	mongoc_client_pool_set_error_api(ms->pool, MONGOC_ERROR_API_VERSION_2);
	/* One ping, bounded by the server-selection timeout: the caller retries with backoff. */
	rc = conn_open(ms, NULL, &k, err, errlen);
	if (rc == PRISM_OK) {
		rc = ping_client(ms, k.client, err, errlen);
		conn_close(ms, &k);
	}
	if (rc) {
		size_t used = strlen(err);
		snprintf(err + used, errlen - used, " (%s)", safe);
		rc = PRISM_E_STORE;
		goto out;
	}
	detect_nonatomic(ms);
	log_info("store: MongoDB %s, database %s", safe, ms->db);
	*out = &ms->base;
	ms = NULL;
out:
	if (ms)
		mongo_close(&ms->base);
	return rc;
}
