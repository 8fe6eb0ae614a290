/* system.c -- see system.h. */
#include "config.h"
#include "admin/system.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/auth.h"
#include "admin/tenants.h"
#include "core/response.h"
#include "shm/breaker.h"
#include "shm/segment.h"
#include "store/transfer.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/xalloc.h"

#define REAUTH_MESSAGE "Re-enter your password: POST /api/prism/admin/system/verify-password, then send its " \
		       "reauthToken as X-Reauth-Token"
#define WALK_MAX_DEPTH 32          /* deeper values are left to transfer.c's validation (it refuses them) */
#define PATH_MAX_LEN 256

/* --- which fields hold secrets ------------------------------------------------------------------------- */

enum secret_kind {
	SK_NONE = 0,
	SK_ENC,        /* kept encrypted at rest (enc:) */
	SK_PLAIN,      /* kept in clear at rest (the original's webhook secrets, chat tokens) */
	SK_HASH,       /* a key hash: not reversible, but it identifies a key; left out of exports */
};

struct secret_name {
	const char *name;
	enum secret_kind kind;
};

/* A field of one of these names, at any depth of a document of the section, is a secret; so is every
 * "enc:" string anywhere. */
static const struct secret_section {
	const char *key;                     /* the section of the export file */
	const struct secret_name *names;
} secret_sections[] = {
	{ "providers", (const struct secret_name[]){ { "apiKey", SK_ENC }, { "secretAccessKey", SK_ENC },
						     { "accessKeyId", SK_ENC }, { "sessionToken", SK_ENC },
						     { NULL, SK_NONE } } },
	{ "tenants", (const struct secret_name[]){ { "apiKeyHash", SK_HASH }, { "apiKeyHashes", SK_HASH },
						   { "hash", SK_HASH }, { "apiKeyEncrypted", SK_ENC },
						   { "encrypted", SK_ENC }, { NULL, SK_NONE } } },
	{ "ldapConfig", (const struct secret_name[]){ { "bindPassword", SK_ENC }, { NULL, SK_NONE } } },
	{ "webhooks", (const struct secret_name[]){ { "secret", SK_PLAIN }, { NULL, SK_NONE } } },
	{ "chatConfig", (const struct secret_name[]){ { "token", SK_PLAIN }, { NULL, SK_NONE } } },
	{ "systemConfig", (const struct secret_name[]){ { "apiKey", SK_ENC }, { NULL, SK_NONE } } },
	{ "users", (const struct secret_name[]){ { "passwordHash", SK_HASH }, { NULL, SK_NONE } } },
	{ "routingCategories", NULL },
	{ "routingRuleSets", NULL },
	{ "quotas", NULL },
	{ "experiments", NULL },
	{ "logConfig", NULL },
};
#define NSECRET_SECTIONS (sizeof secret_sections / sizeof secret_sections[0])

static enum secret_kind
secret_kind_of(const struct secret_section *sec, const char *name, const json_t *v)
{
	for (const struct secret_name *n = sec->names; n && n->name; n++)
		if (strcmp(n->name, name) == 0)
			return n->kind;
	if (json_is_string(v) && crypto_is_encrypted(json_string_value(v)))
		return SK_ENC;
	return SK_NONE;
}

/* --- export ---------------------------------------------------------------------------------------------- */

struct export_ctx {
	const char *key;                     /* encryption_key */
	bool include;                        /* ?includeSecrets=true */
	long omitted;
	enum prism_err err;
};

static void
export_walk(struct export_ctx *x, const struct secret_section *sec, json_t *v, int depth)
{
	if (depth > WALK_MAX_DEPTH)
		return;
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
			export_walk(x, sec, e, depth + 1);
		return;
	}
	if (!json_is_object(v))
		return;
	const char *name;
	json_t *m;
	void *tmp;
	json_object_foreach_safe(v, tmp, name, m) {
		enum secret_kind k = secret_kind_of(sec, name, m);
		if (k == SK_NONE) {
			export_walk(x, sec, m, depth + 1);
			continue;
		}
		if (!x->include) {
			json_object_del(v, name);
			x->omitted++;
			continue;
		}
		/* With secrets: every one in its encrypted form, whatever the store keeps. */
		const char *s = json_string_value(m);
		if ((k == SK_ENC || k == SK_PLAIN) && s && *s && !crypto_is_encrypted(s)) {
			char *enc = NULL;
			enum prism_err e = crypto_encrypt(x->key, s, &enc);
			if (e) {
				x->err = e;
				json_object_del(v, name);
				continue;
			}
			json_object_set_new(v, name, json_string(enc));
			free(enc);
		}
	}
}

/* ?name=true|false (also 1|0; empty = true); absent = false.  400 for anything else. */
static enum prism_err
query_bool(struct request *req, const char *name, bool *out)
{
	char v[PRISM_MAX_URI + 1];          /* a value cannot be longer than the URI: absent means absent */
	*out = false;
	if (!request_query(req, name, v, sizeof v))
		return PRISM_OK;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || v[0] == '\0')
		*out = true;
	else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be true or false", name);
	return PRISM_OK;
}

enum prism_err
system_export(struct request *req)
{
	if (!auth_reauthenticated(req))
		return admin_fail(req, PRISM_E_FORBIDDEN, "%s", REAUTH_MESSAGE);
	bool include = false;
	enum prism_err err = query_bool(req, "includeSecrets", &include);
	if (err)
		return err;
	struct store *s;
	if ((err = admin_store(req, &s)))
		return err;
	json_t *doc = NULL;
	char serr[512] = "";
	if ((err = transfer_export(s, &doc, serr, sizeof serr)))
		return admin_store_fail(req, err, "export failed", serr);
	struct export_ctx x = { req->cfg->encryption_key, include, 0, PRISM_OK };
	for (size_t i = 0; i < NSECRET_SECTIONS; i++)
		export_walk(&x, &secret_sections[i], json_object_get(doc, secret_sections[i].key), 0);
	if (x.err) {
		json_decref(doc);
		return admin_fail(req, PRISM_E_INTERNAL, "cannot encrypt a secret for the export: %s", prism_strerror(x.err));
	}
	size_t i;
	json_t *u;
	json_array_foreach(json_object_get(doc, "users"), i, u)
		json_object_del(u, "tokenVersion");    /* internal, as in every users response */
	json_t *meta = json_object_get(doc, "_meta");
	json_object_set_new(meta, "exportedBy", json_string(req->user.username));
	json_object_set_new(meta, "secrets", json_string(include ? "encrypted" : "omitted"));
	if (include)
		json_object_set_new(meta, "note", json_string(
			"Secrets are encrypted with this installation's encryption_key: they are readable only where the same "
			"key is configured as encryption_key (or encryption_key_previous). Keep this file private."));
	else
		json_object_set_new(meta, "note", json_string(
			"Secrets (provider credentials, the LDAP bind password, key hashes, webhook secrets, chat tokens) are "
			"left out. Importing this file keeps the secrets stored for the documents it replaces; documents "
			"new to the target need their secrets entered again."));
	json_object_set_new(meta, "secretsOmitted", json_integer(x.omitted));

	char day[16], disp[96];
	clock_utc_day(clock_realtime_ms(), day, sizeof day);
	snprintf(disp, sizeof disp, "attachment; filename=\"model-prism-settings-%s.json\"", day);
	resp_header(req, "Content-Disposition", disp);
	audit_record(req, "export", "system", NULL, include ? "settings export with encrypted secrets" : "settings export",
		     NULL, NULL);
	return admin_reply(req, 200, doc);
}

/* --- import ---------------------------------------------------------------------------------------------- */

struct import_ctx {
	struct request *req;
	struct store *s;
	const char *key, *previous;
	struct buf problems;
	int nproblems;
	long encrypted;                      /* plaintext credentials encrypted on the way in */
	long kept;                           /* secrets taken over from the stored documents */
	enum prism_err err;                  /* store or crypto failure (not a problem of the file) */
	char errdetail[PATH_MAX_LEN + 128];
};

static void
import_problem(struct import_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
import_problem(struct import_ctx *c, const char *fmt, ...)
{
	if (c->nproblems++ >= 20)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&c->problems, fmt, ap);
	va_end(ap);
	buf_puts(&c->problems, "\n");
}

/* Encrypts plaintext credentials, decrypts what the store keeps in clear, and checks that every enc:
 * value opens here. */
static void
import_convert(struct import_ctx *c, const struct secret_section *sec, json_t *v, const char *path, int depth)
{
	if (depth > WALK_MAX_DEPTH)
		return;
	char sub[PATH_MAX_LEN];
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			if (json_is_string(e) && crypto_is_encrypted(json_string_value(e))) {
				char *plain = NULL;
				enum prism_err e2 = crypto_decrypt(c->key, c->previous, json_string_value(e), &plain, NULL);
				crypto_free_secret(plain);
				if (e2)
					import_problem(c, "%s: %s", sub, e2 == PRISM_E_CONFIG ?
						       "encrypted with another encryption_key (not readable here)" :
						       "malformed encrypted value");
			} else {
				import_convert(c, sec, e, sub, depth + 1);
			}
		}
		return;
	}
	if (!json_is_object(v))
		return;
	const char *name;
	json_t *m;
	void *tmp;
	json_object_foreach_safe(v, tmp, name, m) {
		snprintf(sub, sizeof sub, "%s.%s", path, name);
		enum secret_kind k = secret_kind_of(sec, name, m);
		const char *s = json_string_value(m);
		if (k == SK_NONE || !s) {
			if (k == SK_NONE)
				import_convert(c, sec, m, sub, depth + 1);
			continue;
		}
		if (!*s || k == SK_HASH)
			continue;
		char *out = NULL;
		enum prism_err e;
		if (!crypto_is_encrypted(s)) {
			if (k != SK_ENC)
				continue;
			if ((e = crypto_encrypt(c->key, s, &out))) {
				c->err = e;
				snprintf(c->errdetail, sizeof c->errdetail, "%.*s: cannot encrypt: %s", PATH_MAX_LEN, sub,
					 prism_strerror(e));
				continue;
			}
			json_object_set_new(v, name, json_string(out));
			free(out);
			c->encrypted++;
			continue;
		}
		e = crypto_decrypt(c->key, c->previous, s, &out, NULL);
		if (e) {
			import_problem(c, "%s: %s", sub, e == PRISM_E_CONFIG ?
				       "encrypted with another encryption_key (not readable here)" : "malformed encrypted value");
		} else if (k == SK_PLAIN) {
			json_object_set_new(v, name, json_string(out));
		}
		crypto_free_secret(out);
	}
}

static void import_merge(struct import_ctx *c, const struct secret_section *sec, json_t *in, const json_t *stored,
			 int depth);

/* Array elements are paired by _id, or by position when neither side has ids and the lengths agree. */
static void
import_merge_array(struct import_ctx *c, const struct secret_section *sec, json_t *in, const json_t *stored, int depth)
{
	size_t i, j;
	json_t *e, *x;
	json_array_foreach(in, i, e) {
		if (!json_is_object(e))
			continue;
		const char *id = json_string_value(json_object_get(e, "_id"));
		const json_t *match = NULL;
		if (id) {
			json_array_foreach(stored, j, x)
				if (strcmp(id, admin_str(x, "_id")) == 0)
					match = x;
		} else if (json_array_size(in) == json_array_size(stored)) {
			match = json_array_get(stored, i);
			if (json_object_get(match, "_id"))
				match = NULL;
		}
		if (json_is_object(match))
			import_merge(c, sec, e, match, depth + 1);
	}
}

/* Secrets the file leaves out are taken over from the stored document it replaces. */
static void
import_merge(struct import_ctx *c, const struct secret_section *sec, json_t *in, const json_t *stored, int depth)
{
	if (depth > WALK_MAX_DEPTH || !json_is_object(in) || !json_is_object(stored))
		return;
	const char *name;
	json_t *sv;
	json_object_foreach((json_t *)stored, name, sv) {
		json_t *iv = json_object_get(in, name);
		if (secret_kind_of(sec, name, sv) != SK_NONE) {
			if (!iv) {
				json_object_set(in, name, sv);
				c->kept++;
			}
		} else if (json_is_object(iv) && json_is_object(sv)) {
			import_merge(c, sec, iv, sv, depth + 1);
		} else if (json_is_array(iv) && json_is_array(sv)) {
			import_merge_array(c, sec, iv, sv, depth + 1);
		}
	}
}

/* The first document of coll where field == value (or the first at all with field NULL); new reference. */
static json_t *
import_stored_one(struct import_ctx *c, enum store_coll coll, const char *field, const char *value)
{
	json_t *v = field ? json_string(value) : NULL;
	struct store_cond cond = { field, SOP_EQ, v };
	struct store_query q = { v ? &cond : NULL, v ? 1 : 0, NULL, false, 1, NULL };
	json_t *page = NULL, *doc = NULL;
	char *next = NULL, serr[256] = "";
	enum prism_err e = c->s->ops->find(c->s, coll, &q, &page, &next, serr, sizeof serr);
	json_decref(v);
	free(next);
	if (e) {
		c->err = e;
		snprintf(c->errdetail, sizeof c->errdetail, "%s", serr);
	} else if (json_array_size(page)) {
		doc = json_incref(json_array_get(page, 0));
	}
	json_decref(page);
	return doc;
}

/* The stored document that `d` of section `key` replaces (new reference), or NULL. */
static json_t *
import_stored(struct import_ctx *c, const char *key, json_t *d)
{
	enum store_coll coll;
	const char *match = NULL;
	if (strcmp(key, "providers") == 0) {
		coll = COLL_PROVIDERS;
		match = "slug";
	} else if (strcmp(key, "tenants") == 0) {
		coll = COLL_TENANTS;
		match = "slug";
	} else if (strcmp(key, "webhooks") == 0) {
		coll = COLL_WEBHOOKS;
	} else {
		return NULL;
	}
	char serr[256] = "";
	json_t *doc = NULL;
	const char *id = json_string_value(json_object_get(d, "_id"));
	if (id && store_id_valid(id)) {
		enum prism_err e = c->s->ops->get(c->s, coll, id, &doc, serr, sizeof serr);
		if (e == PRISM_OK)
			return doc;
		if (e != PRISM_E_NOT_FOUND) {
			c->err = e;
			snprintf(c->errdetail, sizeof c->errdetail, "%s", serr);
		}
		return NULL;
	}
	const char *mv = match ? json_string_value(json_object_get(d, match)) : NULL;
	if (!mv || c->err)
		return NULL;
	return import_stored_one(c, coll, match, mv);
}

static void
import_prepare(struct import_ctx *c, json_t *in)
{
	for (size_t i = 0; i < NSECRET_SECTIONS && !c->err; i++) {
		const struct secret_section *sec = &secret_sections[i];
		if (strcmp(sec->key, "users") == 0)
			continue;                      /* never imported */
		json_t *v = json_object_get(in, sec->key);
		if (json_is_array(v)) {
			size_t k;
			json_t *d;
			json_array_foreach(v, k, d) {
				if (!json_is_object(d))
					continue;      /* transfer.c reports it */
				char path[64];
				snprintf(path, sizeof path, "%s[%zu]", sec->key, k);
				import_convert(c, sec, d, path, 0);
				json_t *stored = NULL;
				if (strcmp(sec->key, "systemConfig") == 0) {
					const char *key = json_string_value(json_object_get(d, "key"));
					if (key)
						stored = import_stored_one(c, COLL_SYSTEMCONFIGS, "key", key);
				} else {
					stored = import_stored(c, sec->key, d);
				}
				import_merge(c, sec, d, stored, 0);
				json_decref(stored);
				if (strcmp(sec->key, "tenants") == 0)
					tenants_sync_hashes(d);
			}
		} else if (json_is_object(v)) {
			import_convert(c, sec, v, sec->key, 0);
			json_t *stored = NULL;
			if (strcmp(sec->key, "ldapConfig") == 0)
				stored = import_stored_one(c, COLL_LDAPCONFIGS, NULL, NULL);
			else if (strcmp(sec->key, "chatConfig") == 0)
				stored = import_stored_one(c, COLL_CHATCONFIGS, "singleton", "default");
			import_merge(c, sec, v, stored, 0);
			json_decref(stored);
		}
	}
}

static long
count_of(const json_t *counts, const char *key)
{
	return (long)json_integer_value(json_object_get(counts, key));
}

enum prism_err
system_import(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *summary = NULL;
	struct import_ctx c = { .req = req };
	buf_init(&c.problems, 16 * 1024);
	char *terr = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		goto out;
	if (!auth_reauthenticated(req)) {
		const char *password = NULL;
		if (!json_object_get(body, "password")) {
			err = admin_fail(req, PRISM_E_FORBIDDEN, "%s", REAUTH_MESSAGE);
			goto out;
		}
		if ((err = valid_string(req, body, "password", VF_REQUIRED, 4096, &password)) ||
		    (err = admin_store(req, &s)) || (err = auth_verify_own_password(req, s, password)))
			goto out;
	}
	json_object_del(body, "password");
	bool dry_run = false;
	if ((err = query_bool(req, "dryRun", &dry_run)) || (err = admin_store(req, &s)))
		goto out;
	json_t *m = json_object_get(body, "_meta");
	if (!json_is_object(m)) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "_meta: missing: not a settings export (_meta.type must be \"%s\")",
				 TRANSFER_TYPE);
		goto out;
	}
	if (strcmp(admin_str(m, "type"), TRANSFER_TYPE) != 0) {
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "_meta.type: must be \"%s\" (not a settings export)", TRANSFER_TYPE);
		goto out;
	}
	json_t *meta = json_deep_copy(json_object_get(body, "_meta"));
	json_t *users = json_object_get(body, "users");
	size_t nusers = json_is_array(users) ? json_array_size(users) : 0;

	c.s = s;
	c.key = req->cfg->encryption_key;
	c.previous = req->cfg->encryption_key_previous;
	import_prepare(&c, body);
	if (c.err) {
		json_decref(meta);
		err = c.err == PRISM_E_STORE ? admin_store_fail(req, c.err, "import failed", c.errdetail)
					     : admin_fail(req, PRISM_E_INTERNAL, "import: %s", c.errdetail);
		goto out;
	}
	if (c.nproblems) {
		json_decref(meta);
		size_t len = strlen(buf_cstr(&c.problems));
		err = admin_fail(req, PRISM_E_BAD_REQUEST, "%d problem(s):\n%.*s%s", c.nproblems, (int)(len ? len - 1 : 0),
				 buf_cstr(&c.problems), c.nproblems > 20 ? "\n..." : "");
		goto out;
	}
	terr = xmalloc(8192);
	terr[0] = '\0';
	if ((err = transfer_import(s, body, dry_run, &summary, terr, 8192))) {
		json_decref(meta);
		size_t len = strlen(terr);
		while (len && terr[len - 1] == '\n')
			terr[--len] = '\0';
		if (err == PRISM_E_BAD_REQUEST)
			err = admin_fail(req, err, "%s", terr);
		else
			err = admin_store_fail(req, err, "import failed", terr);
		goto out;
	}
	const json_t *counts = json_object_get(summary, "imported");
	long other = count_of(counts, "webhooks") + count_of(counts, "quotas") + count_of(counts, "experiments");
	if (dry_run) {
		/* transfer.c counts the singletons only when it writes them */
		static const char *const singles[] = { "logConfig", "chatConfig", "ldapConfig", NULL };
		for (size_t i = 0; singles[i]; i++)
			other += json_is_object(json_object_get(body, singles[i])) ? 1 : 0;
		json_t *sys = json_object_get(body, "systemConfig");
		other += json_is_array(sys) ? (long)json_array_size(sys) : 0;
	} else {
		other += count_of(counts, "other");
	}
	json_t *imported = json_pack("{s:I, s:I, s:I, s:I, s:I}", "providers", (json_int_t)count_of(counts, "providers"),
				     "tenants", (json_int_t)count_of(counts, "tenants"), "categories",
				     (json_int_t)count_of(counts, "routingCategories"), "ruleSets",
				     (json_int_t)count_of(counts, "routingRuleSets"), "other", (json_int_t)other);
	json_t *resp = json_pack("{s:b, s:b, s:O, s:O, s:o, s:I, s:I, s:I}", "success", 1, "dryRun", dry_run, "imported",
				 imported, "sections", (json_t *)counts, "from", meta, "usersIgnored", (json_int_t)nusers,
				 "secretsEncrypted", (json_int_t)c.encrypted, "secretsKept", (json_int_t)c.kept);
	if (!dry_run) {
		audit_record(req, "import", "system", NULL, "settings import", NULL, imported);
		admin_changed(req);
		log_info("rid=%s settings import by %s: %ld providers, %ld tenants, %ld other", req->request_id,
			 req->user.username, count_of(counts, "providers"), count_of(counts, "tenants"), other);
	}
	json_decref(imported);
	err = admin_reply(req, 200, resp);
out:
	free(terr);
	buf_free(&c.problems);
	json_decref(summary);
	json_decref(body);
	return err;
}

/* --- log configuration ---------------------------------------------------------------------------------- */

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };   /* enum log_level order */
static const char *const prompt_levels[] = { "last_user", "full", NULL };

static json_t *
logconfig_defaults(void)
{
	return json_pack("{s:s, s:s, s:b, s:s, s:b, s:b, s:{s:b}, s:b, s:i, s:{s:b, s:s, s:i, s:i, s:b}}", "singleton",
			 "default", "logLevel", "info", "promptLogging", 0, "promptLogLevel", "last_user",
			 "routingDecisionLogging", 1, "trackUsersByIp", 1, "pathCapture", "enabled", 0,
			 "promptRetentionEnabled", 1, "promptRetentionHours", 48, "fileLogging", "enabled", 0, "directory",
			 "/var/log/open-model-prism", "maxSizeMb", 100, "maxFiles", 7, "includePrompts", 0);
}

/* Fills absent fields (and sub-fields of fileLogging, pathCapture) with the schema defaults. */
static void
logconfig_fill(json_t *doc)
{
	json_t *d = logconfig_defaults();
	const char *k;
	json_t *v;
	json_object_foreach(d, k, v) {
		json_t *cur = json_object_get(doc, k);
		if (!cur || json_is_null(cur) || (json_is_object(v) && !json_is_object(cur))) {
			json_object_set(doc, k, v);
		} else if (json_is_object(v)) {
			const char *sk;
			json_t *sv;
			json_object_foreach(v, sk, sv)
				if (!json_object_get(cur, sk) || json_is_null(json_object_get(cur, sk)))
					json_object_set(cur, sk, sv);
		}
	}
	json_decref(d);
}

/* The singleton, created with the defaults when absent (as the original's GET did); new reference. */
static enum prism_err
logconfig_load(struct request *req, struct store *s, json_t **out)
{
	*out = NULL;
	for (int attempt = 0; attempt < 3; attempt++) {
		json_t *doc = NULL;
		enum prism_err err = admin_find_one(req, s, COLL_LOGCONFIGS, "singleton", "default", &doc);
		if (err)
			return err;
		if (doc) {
			*out = doc;
			return PRISM_OK;
		}
		char now[32], serr[256] = "", id[25];
		admin_now(now);
		doc = logconfig_defaults();
		json_object_set_new(doc, "updatedAt", json_string(now));
		err = s->ops->insert(s, COLL_LOGCONFIGS, doc, id, serr, sizeof serr);
		if (err == PRISM_OK) {
			json_object_set_new(doc, "_id", json_string(id));
			json_object_set_new(doc, "__v", json_integer(0));
			*out = doc;
			return PRISM_OK;
		}
		json_decref(doc);
		if (err != PRISM_E_CONFLICT)     /* CONFLICT: another request created it meanwhile */
			return admin_store_fail(req, err, "log configuration not writable", serr);
	}
	return admin_fail(req, PRISM_E_CONFLICT, "the log configuration was changed concurrently; try again");
}

enum prism_err
system_log_config_get(struct request *req)
{
	struct store *s;
	json_t *doc = NULL;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = logconfig_load(req, s, &doc)))
		return err;
	logconfig_fill(doc);
	return admin_reply(req, 200, doc);
}

/* A validator's "field: why" becomes "<prefix>.field: why". */
static enum prism_err
nested(struct request *req, enum prism_err err, const char *prefix)
{
	if (err) {
		char d[PRISM_MAX_ERRDETAIL];
		snprintf(d, sizeof d, "%s", req->errdetail);
		admin_fail(req, err, "%s.%s", prefix, d);
	}
	return err;
}

static bool
absolute_path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const char *q = p; (q = strstr(q, "/..")) != NULL; q += 3)
		if (q[3] == '/' || q[3] == '\0')
			return false;
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return false;
	return true;
}

/* Validates the body of PUT /log-config. */
static enum prism_err
logconfig_validate(struct request *req, const json_t *body, const char **level)
{
	static const char *const bools[] = { "promptLogging", "routingDecisionLogging", "trackUsersByIp",
					     "promptRetentionEnabled", NULL };
	const char *pl = NULL, *dir = NULL;
	bool b;
	long n;
	json_t *fl = NULL, *pc = NULL;
	enum prism_err err;
	if ((err = valid_enum(req, body, "logLevel", 0, log_levels, level)) ||
	    (err = valid_enum(req, body, "promptLogLevel", 0, prompt_levels, &pl)) ||
	    (err = valid_int(req, body, "promptRetentionHours", 0, 1, 8760, &n)) ||
	    (err = valid_object(req, body, "fileLogging", 0, &fl)) || (err = valid_object(req, body, "pathCapture", 0, &pc)))
		return err;
	for (size_t i = 0; bools[i]; i++)
		if ((err = valid_bool(req, body, bools[i], 0, &b)))
			return err;
	if (fl) {
		if ((err = nested(req, valid_bool(req, fl, "enabled", 0, &b), "fileLogging")) ||
		    (err = nested(req, valid_string(req, fl, "directory", VF_NONEMPTY, 4096, &dir), "fileLogging")) ||
		    (err = nested(req, valid_int(req, fl, "maxSizeMb", 0, 1, 10240, &n), "fileLogging")) ||
		    (err = nested(req, valid_int(req, fl, "maxFiles", 0, 1, 1000, &n), "fileLogging")) ||
		    (err = nested(req, valid_bool(req, fl, "includePrompts", 0, &b), "fileLogging")))
			return err;
		if (dir && !absolute_path_ok(dir))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "fileLogging.directory: must be an absolute path without '..' or control characters");
	}
	if (pc && (err = nested(req, valid_bool(req, pc, "enabled", 0, &b), "pathCapture")))
		return err;
	return PRISM_OK;
}

/* Copies the fields of the body that PUT may change into doc; sub-objects are merged field by field. */
static void
logconfig_apply(json_t *doc, const json_t *body)
{
	static const char *const scalars[] = { "logLevel", "promptLogging", "promptLogLevel", "routingDecisionLogging",
					       "trackUsersByIp", "promptRetentionEnabled", "promptRetentionHours", NULL };
	static const char *const fl_fields[] = { "enabled", "directory", "maxSizeMb", "maxFiles", "includePrompts", NULL };
	for (size_t i = 0; scalars[i]; i++) {
		json_t *v = json_object_get(body, scalars[i]);
		if (v && !json_is_null(v))
			json_object_set_new(doc, scalars[i], json_is_real(v) ? json_integer((json_int_t)json_real_value(v))
									      : json_copy(v));
	}
	json_t *fl = json_object_get(body, "fileLogging"), *cur = json_object_get(doc, "fileLogging");
	for (size_t i = 0; json_is_object(fl) && fl_fields[i]; i++) {
		json_t *v = json_object_get(fl, fl_fields[i]);
		if (v && !json_is_null(v))
			json_object_set_new(cur, fl_fields[i], json_is_real(v) ? json_integer((json_int_t)json_real_value(v))
									      : json_copy(v));
	}
	json_t *pc = json_object_get(body, "pathCapture");
	json_t *en = json_object_get(pc, "enabled");
	if (json_is_boolean(en))
		json_object_set(json_object_get(doc, "pathCapture"), "enabled", en);
}

enum prism_err
system_log_config_put(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *doc = NULL, *before = NULL;
	enum prism_err err = admin_body(req, &body);
	if (err)
		return err;
	const char *level = NULL;
	if ((err = logconfig_validate(req, body, &level)) || (err = admin_store(req, &s)))
		goto out;
	err = PRISM_E_CONFLICT;
	for (int attempt = 0; attempt < 5 && err == PRISM_E_CONFLICT; attempt++) {
		json_decref(doc);
		json_decref(before);
		doc = before = NULL;
		if ((err = logconfig_load(req, s, &doc)))
			goto out;
		logconfig_fill(doc);
		before = json_deep_copy(doc);
		logconfig_apply(doc, body);
		char now[32], id[25], serr[256] = "";
		admin_now(now);
		json_object_set_new(doc, "updatedAt", json_string(now));
		json_object_set_new(doc, "updatedBy", json_string(req->user.username));
		snprintf(id, sizeof id, "%s", admin_str(doc, "_id"));
		long ver = (long)json_integer_value(json_object_get(doc, "__v")), nv = 0;
		err = s->ops->update(s, COLL_LOGCONFIGS, id, doc, ver, &nv, serr, sizeof serr);
		if (err && err != PRISM_E_CONFLICT) {
			err = admin_store_fail(req, err, "log configuration not writable", serr);
			goto out;
		}
		if (!err)
			json_object_set_new(doc, "__v", json_integer(nv));
	}
	if (err) {
		err = admin_fail(req, PRISM_E_CONFLICT, "the log configuration was changed concurrently; try again");
		goto out;
	}
	if (level) {
		/* This process only: prism.conf's log_level stays authoritative at start and on SIGHUP. */
		for (int i = 0; log_levels[i]; i++)
			if (strcmp(log_levels[i], level) == 0)
				log_set_level((enum log_level)i);
	}
	audit_record(req, "update", "log-config", admin_str(doc, "_id"), "log-config", before, doc);
	admin_changed(req);
	err = admin_reply(req, 200, json_incref(doc));
out:
	json_decref(before);
	json_decref(doc);
	json_decref(body);
	return err;
}

/* --- circuit breakers ------------------------------------------------------------------------------------ */

static json_t *
breaker_entry(const char *id, const json_t *provider, const struct breaker_info *b, int64_t mono, int64_t real)
{
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:b}", "providerId", id, "providerName",
			      provider ? admin_str(provider, "name") : id, "providerSlug", provider ? admin_str(provider, "slug") : "",
			      "providerType", provider ? admin_str(provider, "type") : "", "state",
			      breaker_state_name(b ? b->state : BREAKER_CLOSED), "failures", b ? b->failures : 0,
			      "halfOpenAttempts", b ? b->probes : 0, "trips", (json_int_t)(b ? b->trips : 0), "tracked", b != NULL);
	if (!provider)
		json_object_set_new(e, "providerDeleted", json_true());
	json_t *opened = json_null(), *retry = json_null();
	if (b && b->state != BREAKER_CLOSED) {
		/* opened_at is on the monotonic clock (shared by the processes of the host) */
		char iso[40];
		int64_t at = real - (mono - b->opened_at_ms);
		clock_iso8601(at, iso, sizeof iso);
		opened = json_string(iso);
		if (b->state == BREAKER_OPEN) {
			struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
			clock_iso8601(at + cfg.cooldown_ms, iso, sizeof iso);
			retry = json_string(iso);
		}
	}
	json_object_set_new(e, "openedAt", opened);
	json_object_set_new(e, "retryAt", retry);
	return e;
}

enum prism_err
system_breakers(struct request *req)
{
	struct store *s;
	json_t *providers = NULL;
	enum prism_err err = admin_store(req, &s);
	if (err || (err = admin_find_all(req, s, COLL_PROVIDERS, NULL, 0, NULL, false, STORE_MAX_LIMIT, &providers)))
		return err;
	struct shm_segment *seg = shm_segment_current();
	struct breaker_info *info = xcalloc(SHM_BREAKERS, sizeof *info);
	int64_t mono = clock_monotonic_ms(), real = clock_realtime_ms();
	size_t n = seg ? breaker_snapshot(seg, mono, info, SHM_BREAKERS) : 0;
	bool *seen = xcalloc(n + 1, sizeof *seen);
	json_t *out = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(providers, i, p) {
		const char *id = admin_str(p, "_id");
		const struct breaker_info *b = NULL;
		for (size_t k = 0; k < n && !b; k++) {
			if (strcmp(info[k].id, id) == 0) {
				b = &info[k];
				seen[k] = true;
			}
		}
		json_array_append_new(out, breaker_entry(id, p, b, mono, real));
	}
	/* Breakers of providers deleted since (the original listed them by id). */
	for (size_t k = 0; k < n; k++)
		if (!seen[k])
			json_array_append_new(out, breaker_entry(info[k].id, NULL, &info[k], mono, real));
	free(seen);
	free(info);
	json_decref(providers);
	return admin_reply(req, 200, out);
}

/* Through the breaker's own state machine: a forced half-open probe that succeeds.  The probe is let through
 * whatever the cool-down (the time given is far in the future and the probe quota does not limit it), and
 * its success closes the breaker and clears the failure count under the breaker's lock, exactly as a real
 * successful probe would.  A failure that real traffic reports in between wins. */
bool
system_breaker_close(struct shm_segment *seg, const char *id)
{
	struct breaker_info *info = xcalloc(SHM_BREAKERS, sizeof *info);
	int64_t now = clock_monotonic_ms();
	size_t n = breaker_snapshot(seg, now, info, SHM_BREAKERS);
	bool tracked = false;
	for (size_t k = 0; k < n && !tracked; k++)
		tracked = strcmp(info[k].id, id) == 0;
	free(info);
	if (!tracked)
		return false;            /* breaker_allow would take a slot for it */
	struct breaker_cfg cfg = BREAKER_CFG_DEFAULT;
	cfg.probes = 1 << 20;
	enum breaker_verdict v = breaker_allow(seg, id, now + ((int64_t)1 << 40), &cfg);
	breaker_report(seg, id, false, v == BREAKER_ALLOW_PROBE, now, &cfg);
	return true;
}

enum prism_err
system_breakers_reset(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *provider = NULL;
	const char *pid = NULL;
	enum prism_err err = request_read_body(req);
	if (err)
		return err;
	if (req->body.len > 0) {
		if ((err = admin_body(req, &body)) || (err = valid_id(req, body, "providerId", 0, &pid)))
			goto out;
	}
	if ((err = admin_store(req, &s)))
		goto out;
	struct shm_segment *seg = shm_segment_current();
	struct breaker_info *info = xcalloc(SHM_BREAKERS, sizeof *info);
	size_t n = seg ? breaker_snapshot(seg, clock_monotonic_ms(), info, SHM_BREAKERS) : 0;
	long reset = 0;
	if (pid) {
		char serr[256] = "";
		err = s->ops->get(s, COLL_PROVIDERS, pid, &provider, serr, sizeof serr);
		bool tracked = false;
		for (size_t k = 0; k < n; k++)
			tracked |= strcmp(info[k].id, pid) == 0;
		if (err == PRISM_E_NOT_FOUND && tracked)
			err = PRISM_OK;          /* a deleted provider's breaker can still be closed */
		if (err) {
			free(info);
			err = admin_store_fail(req, err, "Provider not found", serr);
			goto out;
		}
		if (tracked && system_breaker_close(seg, pid))
			reset = 1;
	} else if (seg) {
		breaker_reset_all(seg);
		reset = (long)n;
	}
	free(info);
	audit_record(req, "reset", "system", pid, pid ? (provider ? admin_str(provider, "name") : pid) : "circuit breakers",
		     NULL, NULL);
	err = admin_reply(req, 200, json_pack("{s:b, s:I, s:b}", "success", 1, "reset", (json_int_t)reset, "sharedMemory",
					      seg != NULL));
out:
	json_decref(provider);
	json_decref(body);
	return err;
}

/* --- key rotation ---------------------------------------------------------------------------------------- */

static const enum store_coll rotate_colls[SYSTEM_ROTATE_COLLECTIONS] = {
	COLL_PROVIDERS, COLL_LDAPCONFIGS, COLL_SYSTEMCONFIGS, COLL_TENANTS, COLL_WEBHOOKS, COLL_CHATCONFIGS,
	COLL_REQUESTLOGS,
};

struct rotate_ctx {
	const char *key, *previous;
	long rotated, current, unreadable;
	json_t *problems;                    /* [[path, why]] of this document */
	enum prism_err err;                  /* a failure to encrypt (not the data's fault) */
};

/* The re-encrypted form of s, or NULL when it stays as it is. */
static json_t *
rotate_value(struct rotate_ctx *r, const char *s, const char *path)
{
	char *plain = NULL, *enc = NULL;
	bool prev = false;
	enum prism_err e = crypto_decrypt(r->key, r->previous, s, &plain, &prev);
	json_t *out = NULL;
	if (e) {
		r->unreadable++;
		json_array_append_new(r->problems, json_pack("[s, s]", path, e == PRISM_E_CONFIG ?
							     "readable with neither encryption_key nor encryption_key_previous" :
							     "not a well-formed encrypted value"));
	} else if (!prev) {
		r->current++;
	} else if ((e = crypto_encrypt(r->key, plain, &enc)) != PRISM_OK) {
		r->unreadable++;
		r->err = e == PRISM_E_BAD_REQUEST ? PRISM_OK : e;
		json_array_append_new(r->problems, json_pack("[s, s]", path, "cannot be encrypted again"));
	} else {
		r->rotated++;
		out = json_string(enc);
		free(enc);
	}
	crypto_free_secret(plain);
	return out;
}

static void
rotate_walk(struct rotate_ctx *r, json_t *v, const char *path, int depth)
{
	if (depth > WALK_MAX_DEPTH)
		return;
	char sub[PATH_MAX_LEN];
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			if (json_is_string(e) && crypto_is_encrypted(json_string_value(e))) {
				json_t *n = rotate_value(r, json_string_value(e), sub);
				if (n)
					json_array_set_new(v, i, n);
			} else {
				rotate_walk(r, e, sub, depth + 1);
			}
		}
		return;
	}
	if (!json_is_object(v))
		return;
	const char *name;
	json_t *m;
	void *tmp;
	json_object_foreach_safe(v, tmp, name, m) {
		snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
		if (json_is_string(m) && crypto_is_encrypted(json_string_value(m))) {
			json_t *n = rotate_value(r, json_string_value(m), sub);
			if (n)
				json_object_set_new(v, name, n);
		} else {
			rotate_walk(r, m, sub, depth + 1);
		}
	}
}

/* One document: re-encrypts, writes with a version check, and re-reads after a concurrent change. */
static enum prism_err
rotate_doc(struct store *s, enum store_coll coll, const json_t *doc, const char *key, const char *previous, bool dry_run,
	   struct system_rotate_count *cnt, system_rotate_report report, void *arg, char *err, size_t errlen)
{
	char id[25];
	snprintf(id, sizeof id, "%s", admin_str(doc, "_id"));
	json_t *cur = json_incref((json_t *)doc);
	enum prism_err e = PRISM_OK;
	struct rotate_ctx r;
	for (int attempt = 0; attempt < 5; attempt++) {
		memset(&r, 0, sizeof r);
		r.key = key;
		r.previous = previous;
		r.problems = json_array();
		json_t *work = json_deep_copy(cur);
		rotate_walk(&r, work, "", 0);
		if (r.err) {
			json_decref(work);
			json_decref(r.problems);
			json_decref(cur);
			snprintf(err, errlen, "%s %s: cannot encrypt: %s", store_coll_desc(coll)->name, id, prism_strerror(r.err));
			return r.err;
		}
		e = PRISM_OK;
		if (r.rotated && !dry_run) {
			long ver = (long)json_integer_value(json_object_get(cur, "__v"));
			e = s->ops->update(s, coll, id, work, ver, NULL, err, errlen);
		}
		json_decref(work);
		if (e != PRISM_E_CONFLICT)
			break;
		/* Someone wrote the document meanwhile: start over from what is stored now. */
		json_decref(r.problems);
		r.problems = NULL;
		json_decref(cur);
		cur = NULL;
		e = s->ops->get(s, coll, id, &cur, err, errlen);
		if (e == PRISM_E_NOT_FOUND) {
			e = PRISM_OK;        /* deleted meanwhile: nothing left to rotate */
			memset(&r, 0, sizeof r);
			break;
		}
		if (e)
			break;
		e = PRISM_E_CONFLICT;
	}
	json_decref(cur);
	if (e == PRISM_E_CONFLICT)
		snprintf(err, errlen, "%s %s: changed concurrently five times; run the command again",
			 store_coll_desc(coll)->name, id);
	if (!e) {
		cnt->rotated += r.rotated;
		cnt->current += r.current;
		cnt->unreadable += r.unreadable;
		cnt->changed += r.rotated ? 1 : 0;
		size_t i;
		json_t *p;
		json_array_foreach(r.problems, i, p)
			if (report)
				report(arg, cnt->collection, id, json_string_value(json_array_get(p, 0)),
				       json_string_value(json_array_get(p, 1)));
	}
	json_decref(r.problems);
	return e;
}

enum prism_err
system_rotate_secrets(struct store *s, const char *key, const char *previous, bool dry_run,
		      struct system_rotate_count counts[SYSTEM_ROTATE_COLLECTIONS], system_rotate_report report, void *arg,
		      char *err, size_t errlen)
{
	memset(counts, 0, SYSTEM_ROTATE_COLLECTIONS * sizeof counts[0]);
	if (!key || !*key) {
		snprintf(err, errlen, "encryption_key is not set");
		return PRISM_E_CONFIG;
	}
	enum prism_err e = PRISM_OK;
	for (size_t c = 0; c < SYSTEM_ROTATE_COLLECTIONS && !e; c++) {
		struct system_rotate_count *cnt = &counts[c];
		cnt->collection = store_coll_desc(rotate_colls[c])->name;
		char *cursor = NULL;
		do {
			/* Pages by _id: a rewritten document keeps its place, so none is skipped or seen twice. */
			struct store_query q = { NULL, 0, NULL, false, 200, cursor };
			json_t *page = NULL;
			char *next = NULL;
			e = s->ops->find(s, rotate_colls[c], &q, &page, &next, err, errlen);
			free(cursor);
			cursor = next;
			size_t i;
			json_t *d;
			json_array_foreach(e ? NULL : page, i, d) {
				cnt->documents++;
				if ((e = rotate_doc(s, rotate_colls[c], d, key, previous, dry_run, cnt, report, arg, err,
						    errlen)))
					break;
			}
			json_decref(page);
		} while (cursor && !e);
		free(cursor);
	}
	return e;
}
