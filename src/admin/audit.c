/* audit.c -- see audit.h. */
#include "config.h"
#include "admin/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin.h"
#include "admin/rbac.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/parse.h"

static const char *const secret_words[] = {
	"apikey", "password", "secret", "token", "hash", "encrypted", "accesskeyid", "credential", "privatekey", NULL,
};

bool
audit_is_secret_field(const char *name)
{
	char low[128];
	size_t n = 0;
	for (const char *p = name; *p && n + 1 < sizeof low; p++)
		if (*p != '_' && *p != '-')
			low[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	low[n] = '\0';
	for (size_t i = 0; secret_words[i]; i++)
		if (strstr(low, secret_words[i]))
			return true;
	return false;
}

static bool
skipped(const char *key)
{
	return key[0] == '_' || strcmp(key, "createdAt") == 0 || strcmp(key, "updatedAt") == 0 ||
	       strcmp(key, "apiKeyHashes") == 0 || strcmp(key, "lastUsedAt") == 0 || strcmp(key, "lastLogin") == 0;
}

/* A copy of v with every secret field (at any depth) masked. */
static json_t *
masked(const json_t *v)
{
	if (json_is_object(v)) {
		json_t *o = json_object();
		const char *k;
		json_t *e;
		json_object_foreach((json_t *)v, k, e) {
			if (audit_is_secret_field(k))
				json_object_set_new(o, k, json_string(json_is_null(e) ? "(unset)" : "(set)"));
			else
				json_object_set_new(o, k, masked(e));
		}
		return o;
	}
	if (json_is_array(v)) {
		json_t *a = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
			json_array_append_new(a, masked(e));
		return a;
	}
	return json_deep_copy(v);
}

static void
add_change(json_t *changes, const char *field, json_t *before, json_t *after)
{
	if (json_array_size(changes) >= AUDIT_MAX_CHANGES) {
		json_decref(before);
		json_decref(after);
		return;
	}
	json_array_append_new(changes, json_pack("{s:s, s:o, s:o}", "field", field, "before", before ? before : json_null(),
						 "after", after ? after : json_null()));
}

static void
diff_into(json_t *changes, const char *prefix, const json_t *b, const json_t *a)
{
	/* Union of the keys, in before's order then after's new ones. */
	const json_t *sides[2] = { b, a };
	for (int side = 0; side < 2; side++) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)sides[side], k, v) {
			if (skipped(k))
				continue;
			if (side == 1 && json_object_get(b, k))
				continue;
			char path[512];
			snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
			json_t *bv = json_object_get(b, k), *av = json_object_get(a, k);
			bool bnull = !bv || json_is_null(bv), anull = !av || json_is_null(av);
			if (bnull && anull)
				continue;
			if (audit_is_secret_field(k)) {
				if (!json_equal(bv, av))
					add_change(changes, path, json_string(bnull ? "(unset)" : "(set)"),
						   json_string(anull ? "(unset)" : "(changed)"));
				continue;
			}
			if (json_is_object(bv) && json_is_object(av)) {
				diff_into(changes, path, bv, av);
				continue;
			}
			if (json_equal(bv, av))
				continue;
			json_t *mb = bnull ? NULL : masked(bv), *ma = anull ? NULL : masked(av);
			if ((json_is_array(bv) || json_is_array(av)) &&
			    json_array_size(bv) + json_array_size(av) > 10) {
				char s1[32], s2[32];
				snprintf(s1, sizeof s1, "[%zu items]", json_array_size(bv));
				snprintf(s2, sizeof s2, "[%zu items]", json_array_size(av));
				json_decref(mb);
				json_decref(ma);
				mb = bnull ? NULL : json_string(s1);
				ma = anull ? NULL : json_string(s2);
			}
			add_change(changes, path, mb, ma);
		}
	}
}

json_t *
audit_diff(const json_t *before, const json_t *after)
{
	json_t *changes = json_array();
	json_t *e = json_object();
	diff_into(changes, "", json_is_object(before) ? before : e, json_is_object(after) ? after : e);
	json_decref(e);
	return changes;
}

static void
summarise(const json_t *changes, char *out, size_t outlen)
{
	size_t used = 0, n = json_array_size(changes);
	out[0] = '\0';
	for (size_t i = 0; i < n && i < 3; i++) {
		const json_t *c = json_array_get(changes, i);
		const char *field = json_string_value(json_object_get(c, "field"));
		const char *last = strrchr(field, '.');
		char *b = json_dumps(json_object_get(c, "before"), JSON_ENCODE_ANY | JSON_COMPACT);
		char *a = json_dumps(json_object_get(c, "after"), JSON_ENCODE_ANY | JSON_COMPACT);
		int w = snprintf(out + used, outlen - used, "%s%s: %.60s -> %.60s", i ? ", " : "", last ? last + 1 : field,
				 b && strcmp(b, "null") ? b : "(none)", a && strcmp(a, "null") ? a : "(none)");
		free(b);
		free(a);
		if (w < 0 || (size_t)w >= outlen - used)
			return;
		used += (size_t)w;
	}
	if (n > 3)
		snprintf(out + used, outlen - used, " +%zu more", n - 3);
	else if (n == 0)
		snprintf(out, outlen, "No changes detected");
}

void
audit_record(struct request *req, const char *action, const char *target, const char *target_id,
	     const char *target_name, const json_t *before, const json_t *after)
{
	struct store *s = store_current();
	json_t *changes;
	char summary[512];
	if (strcmp(action, "create") == 0) {
		changes = json_pack("[{s:s, s:n, s:s}]", "field", "(created)", "before", "after", target_name);
		snprintf(summary, sizeof summary, "Created %s: %.200s", target, target_name);
	} else if (strcmp(action, "delete") == 0) {
		changes = json_pack("[{s:s, s:s, s:n}]", "field", "(deleted)", "before", target_name, "after");
		snprintf(summary, sizeof summary, "Deleted %s: %.200s", target, target_name);
	} else {
		changes = audit_diff(before, after);
		summarise(changes, summary, sizeof summary);
		if (strcmp(action, "update") != 0) {
			char verb[512];
			snprintf(verb, sizeof verb, "%s %s: %.200s%s%s", action, target, target_name,
				 json_array_size(changes) ? "; " : "", json_array_size(changes) ? summary : "");
			snprintf(summary, sizeof summary, "%s", verb);
		} else if (json_array_size(changes) == 0) {
			json_decref(changes);
			return;   /* an update that changed nothing is not recorded */
		}
	}
	char now[32];
	admin_now(now);
	const char *who = req && req->user.authenticated ? req->user.username : "system";
	json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "timestamp", now, "user", who, "action", action,
				"target", target, "targetName", target_name ? target_name : "", "summary", summary,
				"changes", changes);
	if (target_id && store_id_valid(target_id))
		json_object_set_new(doc, "targetId", json_string(target_id));
	if (req && req->client_ip[0])
		json_object_set_new(doc, "clientIp", json_string(req->client_ip));
	char err[256] = "";
	log_info("audit user=%s action=%s target=%s name=%.100s: %.300s", who, action, target,
		 target_name ? target_name : "", summary);
	if (!s || s->ops->insert(s, COLL_CONFIGCHANGES, doc, NULL, err, sizeof err) != PRISM_OK)
		log_error("audit: cannot store the record of %s %s %.100s: %s", action, target,
			  target_name ? target_name : "", s ? err : "store not connected");
	json_decref(doc);
}

enum prism_err
audit_expire(struct store *s, long retention_ms, long *deleted, char *err, size_t errlen)
{
	char before[32];
	clock_iso8601(clock_realtime_ms() - retention_ms, before, sizeof before);
	return s->ops->delete_before(s, COLL_CONFIGCHANGES, "timestamp", before, deleted, err, errlen);
}

enum prism_err
audit_list(struct request *req)
{
	struct store *s;
	enum prism_err err = admin_store(req, &s);
	if (err)
		return err;
	char target[64] = "", action[32] = "", user[PRISM_MAX_USERNAME + 1] = "", from[40] = "", to[40] = "",
	     limit_s[16] = "", cursor[STORE_MAX_CURSOR + 1] = "", hours[16] = "", days[16] = "";
	request_query(req, "target", target, sizeof target);
	request_query(req, "action", action, sizeof action);
	request_query(req, "user", user, sizeof user);
	request_query(req, "from", from, sizeof from);
	request_query(req, "to", to, sizeof to);
	request_query(req, "hours", hours, sizeof hours);
	request_query(req, "days", days, sizeof days);
	request_query(req, "limit", limit_s, sizeof limit_s);
	request_query(req, "cursor", cursor, sizeof cursor);
	long limit = 100, n;
	if (limit_s[0] && parse_long(limit_s, 1, 1000, &limit))
		return admin_fail(req, PRISM_E_BAD_REQUEST, "limit: must be an integer between 1 and 1000");
	char since[32] = "";
	if (from[0]) {
		int64_t ms;
		if (clock_parse_iso8601(from, &ms))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "from: must be an ISO-8601 date");
		clock_iso8601(ms, since, sizeof since);
	} else if (hours[0] || days[0]) {
		if (parse_long(hours[0] ? hours : days, 1, 24L * 3650, &n))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be a positive integer", hours[0] ? "hours" : "days");
		clock_iso8601(clock_realtime_ms() - n * (hours[0] ? 3600000L : 86400000L), since, sizeof since);
	}
	char until[32] = "";
	if (to[0]) {
		int64_t ms;
		if (clock_parse_iso8601(to, &ms))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "to: must be an ISO-8601 date");
		clock_iso8601(ms, until, sizeof until);
	}
	struct store_cond conds[6];
	size_t nc = 0;
	json_t *vals[6] = { 0 };
	if (target[0]) {
		vals[nc] = json_string(target);
		conds[nc] = (struct store_cond){ "target", SOP_EQ, vals[nc] };
		nc++;
	}
	if (action[0]) {
		vals[nc] = json_string(action);
		conds[nc] = (struct store_cond){ "action", SOP_EQ, vals[nc] };
		nc++;
	}
	/* Who changed what is for the roles that audit; the others may not filter by it either. */
	bool names = req->user.role == UR_ADMIN || req->user.role == UR_AUDITOR;
	if (user[0] && names) {
		vals[nc] = json_string(user);
		conds[nc] = (struct store_cond){ "user", SOP_EQ, vals[nc] };
		nc++;
	}
	if (since[0]) {
		vals[nc] = json_string(since);
		conds[nc] = (struct store_cond){ "timestamp", SOP_GTE, vals[nc] };
		nc++;
	}
	if (until[0]) {
		vals[nc] = json_string(until);
		conds[nc] = (struct store_cond){ "timestamp", SOP_LTE, vals[nc] };
		nc++;
	}
	/* Tenant roles see only the changes to their own tenants. */
	json_t *scope = rbac_tenant_filter(&req->user);
	if (scope) {
		vals[nc] = scope;
		conds[nc] = (struct store_cond){ "targetId", SOP_IN, scope };
		nc++;
	}
	struct store_query q = { conds, nc, "timestamp", true, limit, cursor[0] ? cursor : NULL };
	json_t *page = NULL;
	char *next = NULL, serr[256] = "";
	err = s->ops->find(s, COLL_CONFIGCHANGES, &q, &page, &next, serr, sizeof serr);
	for (size_t i = 0; i < nc; i++)
		json_decref(vals[i]);
	if (err) {
		free(next);
		return err == PRISM_E_BAD_REQUEST ? admin_fail(req, err, "cursor: invalid") :
						    admin_store_fail(req, err, "query failed", serr);
	}
	size_t i;
	json_t *e;
	json_array_foreach(page, i, e) {
		if (!names) {
			json_object_set_new(e, "user", json_string("(hidden)"));
			json_object_del(e, "clientIp");
		}
	}
	/* The original answered a bare array; with a cursor the page is wrapped. */
	if (strstr(req->path, "/dashboard/config-changes")) {
		free(next);
		return admin_reply(req, 200, page);
	}
	json_t *body = json_pack("{s:o, s:o}", "changes", page, "next", next ? json_string(next) : json_null());
	free(next);
	return admin_reply(req, 200, body);
}
