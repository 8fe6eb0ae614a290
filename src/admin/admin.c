/* admin.c -- see admin.h. */
#include "config.h"
#include "admin/admin.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/response.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

enum prism_err
admin_store(struct request *req, struct store **out)
{
	*out = store_current();
	if (*out)
		return PRISM_OK;
	return admin_fail(req, PRISM_E_STORE, "the data store is not connected yet");
}

enum prism_err
admin_fail(struct request *req, enum prism_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(req->errdetail, sizeof req->errdetail, fmt, ap);
	va_end(ap);
	return err;
}

enum prism_err
admin_store_fail(struct request *req, enum prism_err err, const char *what, const char *detail)
{
	switch (err) {
	case PRISM_E_CONFLICT:
	case PRISM_E_NOT_FOUND:
		return admin_fail(req, err, "%s", what);
	case PRISM_E_STORE:
		return admin_fail(req, err, "store: %s", detail ? detail : "unavailable");
	default:
		return admin_fail(req, PRISM_E_INTERNAL, "store: %s", detail ? detail : prism_strerror(err));
	}
}

enum prism_err
admin_body(struct request *req, json_t **out)
{
	return request_json_body(req, out);
}

enum prism_err
admin_reply(struct request *req, int status, json_t *body)
{
	resp_header(req, "Cache-Control", "no-store");
	resp_json(req, status, body);
	return PRISM_OK;
}

static enum prism_err
bad(struct request *req, const char *field, const char *why)
{
	return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: %s", field, why);
}

/* NULL when absent or null; sets *err for a missing required field. */
static json_t *
field_get(struct request *req, const json_t *body, const char *field, unsigned flags, enum prism_err *err)
{
	*err = PRISM_OK;
	json_t *v = json_object_get(body, field);
	if (v && !json_is_null(v))
		return v;
	if (flags & VF_REQUIRED)
		*err = bad(req, field, "is required");
	return NULL;
}

enum prism_err
valid_string(struct request *req, const json_t *body, const char *field, unsigned flags, size_t maxlen,
	     const char **out)
{
	enum prism_err err;
	json_t *v = field_get(req, body, field, flags, &err);
	if (!v)
		return err;
	if (!json_is_string(v))
		return bad(req, field, "must be a string");
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (strlen(s) != len)
		return bad(req, field, "must not contain NUL characters");
	if (len > maxlen) {
		char why[64];
		snprintf(why, sizeof why, "must be at most %zu bytes long", maxlen);
		return bad(req, field, why);
	}
	if (flags & (VF_NONEMPTY | VF_REQUIRED)) {
		bool blank = true;
		for (const char *p = s; *p && blank; p++)
			blank = isspace((unsigned char)*p) != 0;
		if (blank)
			return bad(req, field, "must not be empty");
	}
	*out = s;
	return PRISM_OK;
}

enum prism_err
valid_bool(struct request *req, const json_t *body, const char *field, unsigned flags, bool *out)
{
	enum prism_err err;
	json_t *v = field_get(req, body, field, flags, &err);
	if (!v)
		return err;
	if (!json_is_boolean(v))
		return bad(req, field, "must be true or false");
	*out = json_is_true(v);
	return PRISM_OK;
}

enum prism_err
valid_int(struct request *req, const json_t *body, const char *field, unsigned flags, long min, long max, long *out)
{
	enum prism_err err;
	json_t *v = field_get(req, body, field, flags, &err);
	if (!v)
		return err;
	double d;
	if (json_is_integer(v))
		d = (double)json_integer_value(v);
	else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v))
		d = json_real_value(v);
	else
		return bad(req, field, "must be an integer");
	if (d < (double)min || d > (double)max) {
		char why[96];
		snprintf(why, sizeof why, "must be between %ld and %ld", min, max);
		return bad(req, field, why);
	}
	*out = (long)d;
	return PRISM_OK;
}

enum prism_err
valid_number(struct request *req, const json_t *body, const char *field, unsigned flags, double min, double max,
	     double *out)
{
	enum prism_err err;
	json_t *v = field_get(req, body, field, flags, &err);
	if (!v)
		return err;
	if (!json_is_number(v))
		return bad(req, field, "must be a number");
	double d = json_number_value(v);
	if (!isfinite(d) || d < min || d > max) {
		char why[96];
		snprintf(why, sizeof why, "must be between %g and %g", min, max);
		return bad(req, field, why);
	}
	*out = d;
	return PRISM_OK;
}

enum prism_err
valid_enum(struct request *req, const json_t *body, const char *field, unsigned flags, const char *const *choices,
	   const char **out)
{
	const char *s = NULL;
	enum prism_err err = valid_string(req, body, field, flags, 256, &s);
	if (err || !s)
		return err;
	for (size_t i = 0; choices[i]; i++) {
		if (strcmp(choices[i], s) == 0) {
			*out = choices[i];
			return PRISM_OK;
		}
	}
	char why[PRISM_MAX_ERRDETAIL - 64];
	size_t used = (size_t)snprintf(why, sizeof why, "must be one of ");
	for (size_t i = 0; choices[i] && used < sizeof why; i++)
		used += (size_t)snprintf(why + used, sizeof why - used, "%s%s", i ? ", " : "", choices[i]);
	return bad(req, field, why);
}

enum prism_err
valid_string_array(struct request *req, const json_t *body, const char *field, unsigned flags, size_t max_items,
		   size_t maxlen, json_t **out)
{
	enum prism_err err;
	json_t *v = field_get(req, body, field, flags, &err);
	if (!v)
		return err;
	if (!json_is_array(v))
		return bad(req, field, "must be an array of strings");
	if (json_array_size(v) > max_items) {
		char why[64];
		snprintf(why, sizeof why, "must have at most %zu items", max_items);
		return bad(req, field, why);
	}
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e) ||
		    json_string_length(e) > maxlen) {
			char f[128], why[96];
			snprintf(f, sizeof f, "%s[%zu]", field, i);
			snprintf(why, sizeof why, "must be a string of at most %zu bytes", maxlen);
			return bad(req, f, why);
		}
	}
	*out = v;
	return PRISM_OK;
}

enum prism_err
valid_object(struct request *req, const json_t *body, const char *field, unsigned flags, json_t **out)
{
	enum prism_err err;
	json_t *v = field_get(req, body, field, flags, &err);
	if (!v)
		return err;
	if (!json_is_object(v))
		return bad(req, field, "must be an object");
	*out = v;
	return PRISM_OK;
}

enum prism_err
valid_id(struct request *req, const json_t *body, const char *field, unsigned flags, const char **out)
{
	const char *s = NULL;
	enum prism_err err = valid_string(req, body, field, flags, 64, &s);
	if (err || !s)
		return err;
	if (!store_id_valid(s))
		return bad(req, field, "must be a 24-character hexadecimal id");
	*out = s;
	return PRISM_OK;
}

enum prism_err
valid_id_array(struct request *req, const json_t *body, const char *field, unsigned flags, size_t max_items,
	       json_t **out)
{
	json_t *a = NULL;
	enum prism_err err = valid_string_array(req, body, field, flags, max_items, 64, &a);
	if (err || !a)
		return err;
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e) {
		if (!store_id_valid(json_string_value(e))) {
			char f[128];
			snprintf(f, sizeof f, "%s[%zu]", field, i);
			return bad(req, f, "must be a 24-character hexadecimal id");
		}
	}
	*out = a;
	return PRISM_OK;
}

enum prism_err
admin_param_id(struct request *req, const char *param, const char *what, const char **out)
{
	const char *v = request_param(req, param);
	if (!v || !store_id_valid(v))
		return admin_fail(req, PRISM_E_NOT_FOUND, "%s not found", what);
	*out = v;
	return PRISM_OK;
}

void
admin_changed(struct request *req)
{
	struct shm_segment *seg = shm_segment_current();
	if (seg)
		tenantcache_invalidate_all(seg);
	struct store *s = store_current();
	if (!s)
		return;
	int64_t gen;
	char err[256];
	if (s->ops->bump_generation(s, &gen, err, sizeof err) != PRISM_OK)
		log_warn("rid=%s cannot bump the configuration generation (other hosts follow within the cache TTL): %s",
			 req->request_id, err);
	else if (seg)
		tenantcache_observe_generation(seg, gen);
}

void
admin_now(char out[32])
{
	store_now_iso(out);
}

json_t *
admin_without(const json_t *doc, const char *const *fields)
{
	json_t *c = json_copy((json_t *)doc);
	for (size_t i = 0; fields && fields[i]; i++)
		json_object_del(c, fields[i]);
	return c;
}

const char *
admin_str(const json_t *doc, const char *field)
{
	const char *s = json_string_value(json_object_get(doc, field));
	return s ? s : "";
}

enum prism_err
admin_find_all(struct request *req, struct store *s, enum store_coll c, const struct store_cond *conds, size_t nconds,
	       const char *sort, bool desc, long max, json_t **out)
{
	*out = json_array();
	char *cursor = NULL, err[256] = "";
	enum prism_err rc = PRISM_OK;
	do {
		struct store_query q = { conds, nconds, sort, desc, 0, cursor };
		json_t *page = NULL;
		char *next = NULL;
		rc = s->ops->find(s, c, &q, &page, &next, err, sizeof err);
		free(cursor);
		cursor = next;
		if (rc) {
			json_decref(page);
			break;
		}
		json_array_extend(*out, page);
		json_decref(page);
		if ((long)json_array_size(*out) > max) {
			rc = admin_fail(req, PRISM_E_INTERNAL, "more than %ld %s documents", max, store_coll_desc(c)->name);
			break;
		}
	} while (cursor);
	free(cursor);
	if (rc) {
		json_decref(*out);
		*out = NULL;
		if (!req->errdetail[0])
			return admin_store_fail(req, rc, "query failed", err);
	}
	return rc;
}

enum prism_err
admin_find_one(struct request *req, struct store *s, enum store_coll c, const char *field, const char *value,
	       json_t **out)
{
	*out = NULL;
	json_t *v = json_string(value);
	struct store_cond cond = { field, SOP_EQ, v };
	struct store_query q = { &cond, 1, NULL, false, 1, NULL };
	json_t *page = NULL;
	char *next = NULL, err[256] = "";
	enum prism_err rc = s->ops->find(s, c, &q, &page, &next, err, sizeof err);
	json_decref(v);
	free(next);
	if (rc) {
		json_decref(page);
		return admin_store_fail(req, rc, "query failed", err);
	}
	if (json_array_size(page))
		*out = json_incref(json_array_get(page, 0));
	json_decref(page);
	return PRISM_OK;
}
