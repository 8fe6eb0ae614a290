/* providers.c -- see providers.h. */
#include "config.h"
#include "admin/providers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "admin/httpc.h"
#include "admin/models.h"
#include "data/registry.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/rand.h"

static const char *const provider_types[] = {
	"openai", "ollama", "vllm", "bedrock", "bedrock-proxy", "azure", "azure-proxy", "openrouter", "custom", NULL,
};
static const char *const auth_types[] = { "api_key", "bearer", "aws_credentials", "none", NULL };
static const char *const model_tiers[] = {
	"critical", "ultra", "high", "advanced", "medium", "low", "minimal", "micro", NULL,
};
static const char *const secret_fields[] = { "apiKey", "accessKeyId", "secretAccessKey", NULL };
static const char *const api_paths[] = { "", "/v1", "/api/v1", NULL };

#define PROVIDER_CASCADE_MAX_TENANTS 100000L
#define MAX_CTX_TOKENS 100000000L            /* contextWindow / maxOutputTokens */
#define MAX_PRICE 1000000.0                  /* USD per 1M tokens */

/* --- small helpers -------------------------------------------------------------------------------------- */

/* Prefixes the field named in a 400's detail ("apiKey: ..." -> "config.auth.apiKey: ..."). */
static enum prism_err
under(struct request *req, enum prism_err e, const char *prefix)
{
	size_t pl = strlen(prefix), dl = strlen(req->errdetail);
	if (e != PRISM_E_BAD_REQUEST || pl >= sizeof req->errdetail)
		return e;
	if (pl + dl >= sizeof req->errdetail)
		dl = sizeof req->errdetail - pl - 1;
	memmove(req->errdetail + pl, req->errdetail, dl);
	memcpy(req->errdetail, prefix, pl);
	req->errdetail[pl + dl] = '\0';
	return e;
}

static bool
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool
in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; s && list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* An object member, created empty when absent or not an object (borrowed). */
static json_t *
sub_object(json_t *obj, const char *key)
{
	json_t *o = json_object_get(obj, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(obj, key, o);
	}
	return o;
}

static json_t *
number_json(double d)
{
	if (d == (double)(long long)d && d > -9e15 && d < 9e15)
		return json_integer((json_int_t)d);
	return json_real(d);
}

/* JS `a ?? b ?? c`: the first that is present and not null (new reference), or null. */
static json_t *
coalesce(json_t *a, json_t *b, json_t *c)
{
	json_t *v[3] = { a, b, c };
	for (int i = 0; i < 3; i++)
		if (v[i] && !json_is_null(v[i]))
			return json_incref(v[i]);
	return json_null();
}

/* JS truthiness for the values discovery deals with. */
static bool
truthy(const json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_number(v))
		return json_number_value(v) != 0;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	return true;
}

static const char *
type_of(const json_t *doc)
{
	return admin_str(doc, "type");
}

/* The native adapters whose connection handling is not built yet. */
static const char *
unsupported_type(const json_t *doc)
{
	const char *t = type_of(doc);
	if (strcmp(t, "azure") == 0)
		return "azure";
	if (strcmp(t, "bedrock") == 0)
		return "bedrock";
	return NULL;
}

static void
unsupported_message(const char *type, char *out, size_t outlen)
{
	snprintf(out, outlen,
		 "Connection tests and model discovery are not supported yet for type %s (the native %s adapter is not "
		 "built yet); an OpenAI-compatible endpoint can be configured with type %s-proxy",
		 type, strcmp(type, "azure") == 0 ? "Azure OpenAI" : "AWS Bedrock", type);
}

/* --- views, slugs, secrets ------------------------------------------------------------------------------ */

json_t *
providers_view(const json_t *doc)
{
	json_t *v = json_deep_copy(doc);
	json_t *cfg = sub_object(v, "config");
	json_t *auth = sub_object(cfg, "auth");
	bool has = false;
	for (size_t i = 0; secret_fields[i]; i++) {
		json_t *s = json_object_get(auth, secret_fields[i]);
		if (!s || json_is_null(s) || (json_is_string(s) && json_string_length(s) == 0))
			continue;
		json_object_set_new(auth, secret_fields[i], json_string("***"));
		has = true;
	}
	/* Anything else under auth that holds a secret (an imported sessionToken, say) or any encrypted value
	 * is masked too: a view never carries key material. */
	const char *k;
	json_t *e;
	json_object_foreach(auth, k, e) {
		if (json_is_string(e) && (crypto_is_encrypted(json_string_value(e)) || audit_is_secret_field(k)) &&
		    strcmp(json_string_value(e), "***") != 0) {
			json_object_set_new(auth, k, json_string("***"));
			has = true;
		}
	}
	json_object_set_new(auth, "hasCredentials", json_boolean(has));
	return v;
}

void
providers_slugify(const char *name, char out[PROVIDER_MAX_SLUG + 1])
{
	size_t n = 0;
	bool dash = false;
	for (const char *p = name ? name : ""; *p && n < PROVIDER_MAX_SLUG; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (dash && n > 0 && n + 1 < PROVIDER_MAX_SLUG)
				out[n++] = '-';
			else if (dash && n > 0)
				break;
			out[n++] = c;
			dash = false;
		} else {
			dash = true;
		}
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, PROVIDER_MAX_SLUG + 1, "provider");
}

bool
providers_slug_valid(const char *slug)
{
	size_t n = slug ? strlen(slug) : 0;
	if (n == 0 || n > PROVIDER_MAX_SLUG)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = slug[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || c != '-'))
			return false;
	}
	return true;
}

/* Candidate k of a derived slug: base, base-2, base-3, ... cut so that the whole stays within the limit. */
static void
slug_candidate(const char *base, long k, char out[PROVIDER_MAX_SLUG + 1])
{
	if (k <= 1) {
		snprintf(out, PROVIDER_MAX_SLUG + 1, "%s", base);
		return;
	}
	char suffix[24];
	int sl = snprintf(suffix, sizeof suffix, "-%ld", k);
	int keep = PROVIDER_MAX_SLUG - sl;
	int bl = (int)strlen(base);
	if (bl > keep)
		bl = keep;
	while (bl > 1 && base[bl - 1] == '-')
		bl--;
	snprintf(out, PROVIDER_MAX_SLUG + 1, "%.*s%s", bl, base, suffix);
}

enum prism_err
providers_secret(const struct config *cfg, const json_t *doc, const char *field, char **out)
{
	*out = NULL;
	const char *v = json_string_value(json_object_get(json_object_get(json_object_get(doc, "config"), "auth"), field));
	if (!v || !*v)
		return PRISM_OK;
	return crypto_decrypt(cfg->encryption_key, cfg->encryption_key_previous, v, out, NULL);
}

/* --- input validation ----------------------------------------------------------------------------------- */

/* An http(s)://host:port proxy URL (nothing after the port but an optional '/'). */
static bool
proxy_url_ok(const char *s)
{
	if (!httpc_url_ok(s))
		return false;
	const char *p = strstr(s, "://") + 3;
	size_t host = strcspn(p, "/?#");
	if (p[host] && strcmp(p + host, "/") != 0)
		return false;
	const char *colon = NULL, *bracket = NULL;
	for (size_t i = 0; i < host; i++) {
		if (p[i] == ':')
			colon = p + i;
		else if (p[i] == ']')
			bracket = p + i;
	}
	if (!colon || colon == p || (bracket && bracket > colon))
		return false;
	long port;
	return parse_long_n(colon + 1, (size_t)(p + host - colon - 1), 1, 65535, &port) == PRISM_OK;
}

/* Headers the HTTP layer owns, and names that would carry a credential in a field every reader sees. */
static bool
header_reserved(const char *name)
{
	static const char *const reserved[] = {
		"authorization", "proxy-authorization", "host", "content-length", "transfer-encoding", "connection",
		"cookie", "expect", "upgrade", "te", "keep-alive", "user-agent", NULL,
	};
	for (size_t i = 0; reserved[i]; i++)
		if (strcasecmp(reserved[i], name) == 0)
			return true;
	/* ...-Key (x-api-key, Ocp-Apim-Subscription-Key) and ...Auth... names carry credentials too. */
	size_t n = strlen(name);
	if (n >= 3 && strcasecmp(name + n - 3, "key") == 0)
		return true;
	if (strcasestr(name, "auth"))
		return true;
	return audit_is_secret_field(name);
}

static enum prism_err
valid_headers(struct request *req, const json_t *v)
{
	if (!json_is_object(v))
		return admin_fail(req, PRISM_E_BAD_REQUEST, "extraHeaders: must be an object of header names to strings");
	if (json_object_size(v) > HTTPC_MAX_HEADERS)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "extraHeaders: at most %d headers", HTTPC_MAX_HEADERS);
	const char *k;
	json_t *hv;
	json_object_foreach((json_t *)v, k, hv) {
		if (strlen(k) > 128 || !json_is_string(hv) || !httpc_header_ok(k, json_string_value(hv)))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "extraHeaders.%.64s: needs a header name (letters, digits, -) and a string value "
					  "without CR or LF",
					  k);
		if (strlen(json_string_value(hv)) != json_string_length(hv) || json_string_length(hv) > PROVIDER_MAX_OPTION)
			return admin_fail(req, PRISM_E_BAD_REQUEST, "extraHeaders.%.64s: must be at most %d bytes without NUL",
					  k, PROVIDER_MAX_OPTION);
		if (header_reserved(k))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "extraHeaders.%.64s: this header cannot be set here (credentials belong in "
					  "config.auth.apiKey, which is stored encrypted)",
					  k);
	}
	return PRISM_OK;
}

enum opt_kind { OPT_PROXY, OPT_BOOL, OPT_FILE, OPT_INT, OPT_APIPATH, OPT_HEADERS, OPT_STRING, OPT_URL };

static const struct opt_def {
	const char *name;
	enum opt_kind kind;
	long min, max;
} option_defs[] = {
	{ "httpProxy", OPT_PROXY, 0, 0 },
	{ "tlsVerify", OPT_BOOL, 0, 0 },
	{ "caFile", OPT_FILE, 0, 0 },
	{ "connectTimeoutMs", OPT_INT, PROVIDER_CONNECT_TIMEOUT_MIN, PROVIDER_CONNECT_TIMEOUT_MAX },
	{ "timeoutMs", OPT_INT, PROVIDER_TIMEOUT_MIN, PROVIDER_TIMEOUT_MAX },
	{ "apiPath", OPT_APIPATH, 0, 0 },
	{ "extraHeaders", OPT_HEADERS, 0, 0 },
	{ "apiVersion", OPT_STRING, 0, 0 },
	{ "deployments", OPT_STRING, 0, 0 },
	{ "responsesModels", OPT_STRING, 0, 0 },
	{ "vpcEndpointRuntime", OPT_URL, 0, 0 },
	{ "vpcEndpointControl", OPT_URL, 0, 0 },
};

static enum prism_err
valid_option(struct request *req, const json_t *in, const char *k, const json_t *v)
{
	const struct opt_def *d = NULL;
	for (size_t i = 0; i < sizeof option_defs / sizeof option_defs[0]; i++)
		if (strcmp(option_defs[i].name, k) == 0)
			d = &option_defs[i];
	const char *s = NULL;
	enum prism_err e;
	if (!d) {
		/* Adapter-specific options the original kept as they came: scalars only. */
		if (json_is_string(v))
			return valid_string(req, in, k, 0, PROVIDER_MAX_OPTION, &s);
		if (json_is_number(v) || json_is_boolean(v))
			return PRISM_OK;
		return admin_fail(req, PRISM_E_BAD_REQUEST, "%.64s: must be a string, number or boolean", k);
	}
	switch (d->kind) {
	case OPT_BOOL: {
		bool b;
		return valid_bool(req, in, k, 0, &b);
	}
	case OPT_INT: {
		long n;
		return valid_int(req, in, k, 0, d->min, d->max, &n);
	}
	case OPT_APIPATH:
		return valid_enum(req, in, k, 0, api_paths, &s);
	case OPT_HEADERS:
		return valid_headers(req, v);
	case OPT_PROXY:
		if ((e = valid_string(req, in, k, 0, PROVIDER_MAX_URL, &s)))
			return e;
		if (*s && !proxy_url_ok(s))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "%s: must be an http:// or https:// URL with host and port (no credentials), or \"\"", k);
		return PRISM_OK;
	case OPT_URL:
		if ((e = valid_string(req, in, k, 0, PROVIDER_MAX_URL, &s)))
			return e;
		if (*s && !httpc_url_ok(s))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be an http:// or https:// URL, or \"\"", k);
		return PRISM_OK;
	case OPT_FILE:
		if ((e = valid_string(req, in, k, 0, PROVIDER_MAX_OPTION, &s)))
			return e;
		if (*s && (s[0] != '/' || has_ctl(s)))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be an absolute path, or \"\"", k);
		return PRISM_OK;
	case OPT_STRING:
		if ((e = valid_string(req, in, k, 0, PROVIDER_MAX_OPTION, &s)))
			return e;
		if (has_ctl(s))
			return admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must not contain control characters", k);
		return PRISM_OK;
	}
	return PRISM_OK;
}

/* config.options: merged key by key into old (null removes a key).  *out new reference. */
static enum prism_err
build_options(struct request *req, const json_t *in, const json_t *old, json_t **out)
{
	json_t *o = json_is_object(old) ? json_deep_copy(old) : json_object();
	const char *k;
	json_t *v;
	enum prism_err e = PRISM_OK;
	json_object_foreach((json_t *)in, k, v) {
		if (!*k || strlen(k) > 64) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "option names must be 1 to 64 bytes long");
			goto fail;
		}
		if (json_is_null(v)) {
			json_object_del(o, k);
			continue;
		}
		if ((e = valid_option(req, in, k, v)))
			goto fail;
		json_object_set(o, k, v);
	}
	if (json_object_size(o) > PROVIDER_MAX_OPTIONS) {
		e = admin_fail(req, PRISM_E_BAD_REQUEST, "at most %d options", PROVIDER_MAX_OPTIONS);
		goto fail;
	}
	*out = o;
	return PRISM_OK;
fail:
	json_decref(o);
	return e;
}

/* config.auth: absent fields keep their stored values, null clears; a secret is replaced only by a
 * non-empty value other than "***", which is encrypted. */
static enum prism_err
build_auth(struct request *req, const json_t *in, const json_t *old, json_t **out)
{
	json_t *a = json_is_object(old) ? json_deep_copy(old) : json_object();
	enum prism_err e;
	const char *type = NULL, *region = NULL;
	json_object_del(a, "hasCredentials");
	if ((e = valid_enum(req, in, "type", 0, auth_types, &type)))
		goto fail;
	if (type)
		json_object_set_new(a, "type", json_string(type));
	else if (!json_is_string(json_object_get(a, "type")))
		json_object_set_new(a, "type", json_string("api_key"));
	if (json_is_null(json_object_get(in, "region"))) {
		json_object_del(a, "region");
	} else {
		if ((e = valid_string(req, in, "region", 0, PROVIDER_MAX_REGION, &region)))
			goto fail;
		if (region && has_ctl(region)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "region: must not contain control characters");
			goto fail;
		}
		if (region)
			json_object_set_new(a, "region", json_string(region));
	}
	for (size_t i = 0; secret_fields[i]; i++) {
		const char *f = secret_fields[i], *s = NULL;
		json_t *v = json_object_get(in, f);
		if (!v)
			continue;
		if (json_is_null(v)) {
			json_object_del(a, f);
			continue;
		}
		if ((e = valid_string(req, in, f, 0, PROVIDER_MAX_SECRET, &s)))
			goto fail;
		if (!*s || strcmp(s, "***") == 0)
			continue;
		if (has_ctl(s)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must not contain control characters or line breaks", f);
			goto fail;
		}
		if (crypto_is_encrypted(s)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "%s: must be the secret itself, not an encrypted enc: value", f);
			goto fail;
		}
		char *enc = NULL;
		if ((e = crypto_encrypt(req->cfg->encryption_key, s, &enc))) {
			e = admin_fail(req, PRISM_E_INTERNAL, "%s: cannot be encrypted (%s)", f, prism_strerror(e));
			goto fail;
		}
		json_object_set_new(a, f, json_string(enc));
		free(enc);
	}
	*out = a;
	return PRISM_OK;
fail:
	json_decref(a);
	return e;
}

static bool
same_string(const json_t *a, const json_t *b)
{
	const char *x = json_string_value(a), *y = json_string_value(b);
	return strcmp(x ? x : "", y ? y : "") == 0;
}

/* Two base URLs that name the same place (trailing slashes aside). */
static bool
same_url(const json_t *a, const json_t *b)
{
	const char *x = json_string_value(a), *y = json_string_value(b);
	x = x ? x : "";
	y = y ? y : "";
	size_t nx = strlen(x), ny = strlen(y);
	while (nx && x[nx - 1] == '/')
		nx--;
	while (ny && y[ny - 1] == '/')
		ny--;
	return nx == ny && strncmp(x, y, nx) == 0;
}

/* A stored secret goes only where it went when it was entered: moving a provider that keeps its stored
 * credentials to another URL, through another proxy, or to unverified TLS would let whoever may edit
 * providers (not read their keys) receive them.  Such a change must enter the credentials again. */
static enum prism_err
check_destination(struct request *req, const json_t *c, const json_t *old)
{
	const json_t *na = json_object_get(c, "auth"), *oa = json_object_get(old, "auth");
	const json_t *no = json_object_get(c, "options"), *oo = json_object_get(old, "options");
	bool kept = false;
	for (size_t i = 0; secret_fields[i]; i++) {
		const json_t *nv = json_object_get(na, secret_fields[i]);
		if (json_is_string(nv) && json_equal(nv, json_object_get(oa, secret_fields[i])))
			kept = true;
	}
	if (!kept)
		return PRISM_OK;
	bool was_verified = !json_is_false(json_object_get(oo, "tlsVerify"));
	bool is_verified = !json_is_false(json_object_get(no, "tlsVerify"));
	if (!same_url(json_object_get(c, "baseUrl"), json_object_get(old, "baseUrl")) ||
	    !same_string(json_object_get(no, "httpProxy"), json_object_get(oo, "httpProxy")) ||
	    !same_string(json_object_get(no, "caFile"), json_object_get(oo, "caFile")) ||
	    (was_verified && !is_verified))
		return admin_fail(req, PRISM_E_BAD_REQUEST,
				  "auth.apiKey: enter the credentials again when changing where they are sent "
				  "(baseUrl, options.httpProxy, options.caFile, options.tlsVerify)");
	return PRISM_OK;
}

/* The whole config object: in (may be NULL) applied over old (NULL on create).  *out new reference; field
 * names in errors are relative to config ("auth.apiKey: ..."). */
static enum prism_err
build_config(struct request *req, const json_t *in, const json_t *old, json_t **out)
{
	json_t *c = json_is_object(old) ? json_deep_copy(old) : json_object();
	json_t *auth_in = NULL, *opt_in = NULL, *v = NULL;
	const char *base = NULL;
	enum prism_err e = PRISM_OK;
	if (in) {
		if (json_is_null(json_object_get(in, "baseUrl"))) {
			json_object_del(c, "baseUrl");
		} else {
			if ((e = valid_string(req, in, "baseUrl", 0, PROVIDER_MAX_URL, &base)))
				goto fail;
			if (base && *base && !httpc_url_ok(base)) {
				e = admin_fail(req, PRISM_E_BAD_REQUEST,
					       "baseUrl: must be an http:// or https:// URL with a host (and no user:password@)");
				goto fail;
			}
			if (base)
				json_object_set_new(c, "baseUrl", json_string(base));
		}
		if ((e = valid_object(req, in, "auth", 0, &auth_in)))
			goto fail;
		if ((e = valid_object(req, in, "options", 0, &opt_in)))
			goto fail;
	}
	if (auth_in || !json_is_object(json_object_get(c, "auth"))) {
		json_t *empty = json_object();
		e = build_auth(req, auth_in ? auth_in : empty, json_object_get(c, "auth"), &v);
		json_decref(empty);
		if (e) {
			under(req, e, "auth.");
			goto fail;
		}
		json_object_set_new(c, "auth", v);
	}
	if (opt_in || !json_is_object(json_object_get(c, "options"))) {
		json_t *empty = json_object();
		e = build_options(req, opt_in ? opt_in : empty, json_object_get(c, "options"), &v);
		json_decref(empty);
		if (e) {
			under(req, e, "options.");
			goto fail;
		}
		json_object_set_new(c, "options", v);
	}
	if (old && (e = check_destination(req, c, old)))
		goto fail;
	*out = c;
	return PRISM_OK;
fail:
	json_decref(c);
	return e;
}

/* --- store access --------------------------------------------------------------------------------------- */

static enum prism_err
load(struct request *req, struct store *s, enum store_coll coll, const char *id, const char *what, json_t **doc)
{
	char serr[256] = "";
	enum prism_err e = s->ops->get(s, coll, id, doc, serr, sizeof serr);
	if (e == PRISM_E_NOT_FOUND)
		return admin_fail(req, e, "%s not found", what);
	if (e)
		return admin_store_fail(req, e, "read failed", serr);
	return PRISM_OK;
}

typedef enum prism_err (*mutate_fn)(struct request *req, json_t *doc, void *ud);

/* Read-modify-write of one document under its __v: fn edits doc; a concurrent writer makes the write fail
 * with CONFLICT and the whole step is repeated on the fresh document.  A CONFLICT that is not a version
 * change is a duplicate unique key (slug): PRISM_E_CONFLICT with detail "duplicate".  *before and *after
 * (new references) get the document before and after. */
static enum prism_err
mutate(struct request *req, struct store *s, enum store_coll coll, const char *id, const char *what, mutate_fn fn,
       void *ud, json_t **before, json_t **after)
{
	char serr[256] = "";
	*before = *after = NULL;
	for (int attempt = 0; attempt < PROVIDER_WRITE_ATTEMPTS; attempt++) {
		json_t *doc = NULL;
		enum prism_err e = load(req, s, coll, id, what, &doc);
		if (e)
			return e;
		json_t *v = json_object_get(doc, "__v");
		long version = json_is_integer(v) ? (long)json_integer_value(v) : -1;
		json_t *b = json_deep_copy(doc);
		if ((e = fn(req, doc, ud))) {
			json_decref(b);
			json_decref(doc);
			return e;
		}
		long nv = 0;
		e = s->ops->update(s, coll, id, doc, version, &nv, serr, sizeof serr);
		if (e == PRISM_OK) {
			json_object_set_new(doc, "__v", json_integer(nv));
			*before = b;
			*after = doc;
			return PRISM_OK;
		}
		json_decref(b);
		json_decref(doc);
		if (e == PRISM_E_NOT_FOUND)
			return admin_fail(req, e, "%s not found", what);
		if (e != PRISM_E_CONFLICT)
			return admin_store_fail(req, e, "update failed", serr);
		/* Version conflict, or a duplicate key?  Only the first is worth another round. */
		json_t *now = NULL;
		if ((e = load(req, s, coll, id, what, &now)))
			return e;
		json_t *nvv = json_object_get(now, "__v");
		bool moved = version >= 0 && json_is_integer(nvv) && json_integer_value(nvv) != version;
		json_decref(now);
		if (!moved)
			return admin_fail(req, PRISM_E_CONFLICT, "duplicate");
	}
	return admin_fail(req, PRISM_E_CONFLICT, "%s was changed by other writers all the time; try again", what);
}

static int
cmp_order(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const json_t *ox = json_object_get(x, "order"), *oy = json_object_get(y, "order");
	bool hx = json_is_number(ox), hy = json_is_number(oy);
	if (hx != hy)
		return hx ? -1 : 1;
	if (hx) {
		double dx = json_number_value(ox), dy = json_number_value(oy);
		if (dx != dy)
			return dx < dy ? -1 : 1;
	}
	int c = strcmp(admin_str(x, "createdAt"), admin_str(y, "createdAt"));
	return c ? c : strcmp(admin_str(x, "_id"), admin_str(y, "_id"));
}

/* Every provider, in list order (order, then creation).  *out new array. */
static enum prism_err
load_all(struct request *req, struct store *s, json_t **out)
{
	json_t *all = NULL;
	enum prism_err e = admin_find_all(req, s, COLL_PROVIDERS, NULL, 0, NULL, false, PROVIDER_MAX_COUNT, &all);
	if (e)
		return e;
	size_t n = json_array_size(all);
	json_t **v = calloc(n ? n : 1, sizeof *v);
	if (!v) {
		json_decref(all);
		return admin_fail(req, PRISM_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(all, i);
	qsort(v, n, sizeof *v, cmp_order);
	json_t *sorted = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	json_decref(all);
	*out = sorted;
	return PRISM_OK;
}

/* --- list, get, create, update -------------------------------------------------------------------------- */

enum prism_err
providers_list(struct request *req)
{
	struct store *s;
	json_t *all = NULL;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = load_all(req, s, &all)))
		return e;
	json_t *out = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(all, i, p)
		json_array_append_new(out, providers_view(p));
	json_decref(all);
	return admin_reply(req, 200, out);
}

enum prism_err
providers_get(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = load(req, s, COLL_PROVIDERS, id, "Provider", &doc)))
		return e;
	json_t *v = providers_view(doc);
	json_decref(doc);
	return admin_reply(req, 200, v);
}

static enum prism_err patch_fields(struct request *req, const json_t *body, json_t **out);

static bool
usable_id(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= PROVIDER_MAX_MODEL_ID &&
	       strlen(json_string_value(v)) == json_string_length(v) && !has_ctl(json_string_value(v));
}

/* discoveredModels given on create (imports, seeded configurations): validated like a PATCH of each model.
 * *out new array. */
static enum prism_err
build_models(struct request *req, const json_t *in, json_t **out)
{
	json_t *arr = json_array(), *seen = json_object();
	enum prism_err e = PRISM_OK;
	char prefix[48];
	if (!json_is_array(in) || json_array_size(in) > PROVIDER_MAX_MODELS) {
		e = admin_fail(req, PRISM_E_BAD_REQUEST, "discoveredModels: must be an array of at most %d models",
			       PROVIDER_MAX_MODELS);
		goto out;
	}
	size_t i;
	json_t *m;
	json_array_foreach(in, i, m) {
		json_t *f = NULL, *caps = NULL;
		const char *name = NULL, *owner = NULL;
		snprintf(prefix, sizeof prefix, "discoveredModels[%zu].", i);
		if (!json_is_object(m)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "discoveredModels[%zu]: must be an object", i);
			goto out;
		}
		json_t *idv = json_object_get(m, "id");
		if (!usable_id(idv)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "%sid: is required (1 to %d bytes, no control characters)",
				       prefix, PROVIDER_MAX_MODEL_ID);
			goto out;
		}
		const char *id = json_string_value(idv);
		if (json_object_get(seen, id)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "%sid: %s is listed twice", prefix, id);
			goto out;
		}
		json_object_set_new(seen, id, json_true());
		if ((e = valid_string(req, m, "name", 0, PROVIDER_MAX_MODEL_ID, &name)) ||
		    (e = valid_string(req, m, "ownedBy", 0, 256, &owner)) ||
		    (e = valid_string_array(req, m, "capabilities", 0, 16, 64, &caps)) || (e = patch_fields(req, m, &f))) {
			under(req, e, prefix);
			goto out;
		}
		json_t *model = json_pack("{s:s, s:s, s:o, s:n, s:[], s:i, s:s, s:n, s:n, s:b, s:b, s:b, s:n}", "id", id,
					  "name", name && *name ? name : id, "capabilities",
					  caps ? json_incref(caps) : json_pack("[s]", "chat"), "tier", "categories", "priority", 50, "notes",
					  "", "inputPer1M", "outputPer1M", "manualPricing",
					  json_object_get(f, "inputPer1M") || json_object_get(f, "outputPer1M"), "manualContext",
					  json_object_get(f, "contextWindow") || json_object_get(f, "maxOutputTokens"),
					  "visible", 1, "maxOutputTokens");
		if (owner && *owner)
			json_object_set_new(model, "ownedBy", json_string(owner));
		json_object_update(model, f);
		json_decref(f);
		static const char *const ctxf[] = { "contextWindow", "maxOutputTokens", NULL };
		for (size_t k = 0; ctxf[k]; k++)
			if (!truthy(json_object_get(model, ctxf[k])))
				json_object_set_new(model, ctxf[k], json_null());
		json_array_append_new(arr, model);
	}
out:
	json_decref(seen);
	if (e) {
		json_decref(arr);
		return e;
	}
	*out = arr;
	return PRISM_OK;
}

static enum prism_err
valid_slug_field(struct request *req, const json_t *body, const char **slug)
{
	enum prism_err e = valid_string(req, body, "slug", 0, 256, slug);
	if (e)
		return e;
	if (*slug && **slug && !providers_slug_valid(*slug))
		return admin_fail(req, PRISM_E_BAD_REQUEST,
				  "slug: must match ^[a-z0-9][a-z0-9-]*$ and be at most %d characters long", PROVIDER_MAX_SLUG);
	return PRISM_OK;
}

enum prism_err
providers_create(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *all = NULL, *cfgobj = NULL, *doc = NULL, *stored = NULL, *cfg_in = NULL, *models = NULL;
	const char *name = NULL, *type = NULL, *slug = NULL;
	long order = -1;
	char id[25] = "", serr[256] = "", cand[PROVIDER_MAX_SLUG + 1] = "";
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_body(req, &body)))
		return e;
	if ((e = valid_string(req, body, "name", VF_REQUIRED, PROVIDER_MAX_NAME, &name)) ||
	    (e = valid_enum(req, body, "type", VF_REQUIRED, provider_types, &type)) ||
	    (e = valid_slug_field(req, body, &slug)) || (e = valid_object(req, body, "config", 0, &cfg_in)) ||
	    (e = valid_int(req, body, "order", 0, 0, PROVIDER_MAX_COUNT * 100L, &order)))
		goto out;
	if ((e = build_config(req, cfg_in, NULL, &cfgobj))) {
		under(req, e, "config.");
		goto out;
	}
	if (json_object_get(body, "discoveredModels") && !json_is_null(json_object_get(body, "discoveredModels")) &&
	    (e = build_models(req, json_object_get(body, "discoveredModels"), &models)))
		goto out;
	if ((e = load_all(req, s, &all)))
		goto out;
	if (json_array_size(all) >= PROVIDER_MAX_COUNT) {
		e = admin_fail(req, PRISM_E_BAD_REQUEST, "at most %d providers can be configured", PROVIDER_MAX_COUNT);
		goto out;
	}
	if (order < 0) {
		order = 0;
		size_t i;
		json_t *p;
		json_array_foreach(all, i, p) {
			json_t *o = json_object_get(p, "order");
			if (json_is_integer(o) && json_integer_value(o) >= order)
				order = (long)json_integer_value(o) + 1;
		}
	}
	doc = json_pack("{s:s, s:s, s:s, s:O, s:s, s:o, s:i}", "name", name, "slug", "", "type", type, "config", cfgobj,
			"status", "unchecked", "discoveredModels", models ? json_incref(models) : json_array(), "order",
			(int)order);
	if (slug && *slug) {
		json_object_set_new(doc, "slug", json_string(slug));
		e = s->ops->insert(s, COLL_PROVIDERS, doc, id, serr, sizeof serr);
		if (e == PRISM_E_CONFLICT)
			e = admin_fail(req, e, "A provider with the slug '%s' already exists", slug);
		else if (e)
			e = admin_store_fail(req, e, "insert failed", serr);
		if (e)
			goto out;
	} else {
		char base[PROVIDER_MAX_SLUG + 1];
		providers_slugify(name, base);
		e = PRISM_E_CONFLICT;
		for (long k = 1; k <= PROVIDER_MAX_COUNT + 2 && e == PRISM_E_CONFLICT; k++) {
			slug_candidate(base, k, cand);
			bool taken = false;
			size_t i;
			json_t *p;
			json_array_foreach(all, i, p)
				if (strcmp(admin_str(p, "slug"), cand) == 0)
					taken = true;
			if (taken)
				continue;
			json_object_set_new(doc, "slug", json_string(cand));
			/* A concurrent create may take the candidate first: then the next one. */
			e = s->ops->insert(s, COLL_PROVIDERS, doc, id, serr, sizeof serr);
		}
		if (e == PRISM_E_CONFLICT)
			e = admin_fail(req, e, "no free slug derived from '%s'", base);
		else if (e)
			e = admin_store_fail(req, e, "insert failed", serr);
		if (e)
			goto out;
	}
	audit_record(req, "create", "provider", id, name, NULL, NULL);
	admin_changed(req);
	if ((e = load(req, s, COLL_PROVIDERS, id, "Provider", &stored)))
		goto out;
	e = admin_reply(req, 201, providers_view(stored));
out:
	json_decref(models);
	json_decref(stored);
	json_decref(doc);
	json_decref(cfgobj);
	json_decref(all);
	json_decref(body);
	return e;
}

struct update_ctx {
	const char *name, *type, *slug;
	json_t *config;
	long order;
	bool slug_changed;
};

static enum prism_err
apply_update(struct request *req, json_t *doc, void *ud)
{
	struct update_ctx *u = ud;
	enum prism_err e;
	if (u->name)
		json_object_set_new(doc, "name", json_string(u->name));
	if (u->type)
		json_object_set_new(doc, "type", json_string(u->type));
	u->slug_changed = false;
	if (u->slug && *u->slug && strcmp(u->slug, admin_str(doc, "slug")) != 0) {
		if (!providers_slug_valid(u->slug))
			return admin_fail(req, PRISM_E_BAD_REQUEST,
					  "slug: must match ^[a-z0-9][a-z0-9-]*$ and be at most %d characters long",
					  PROVIDER_MAX_SLUG);
		json_object_set_new(doc, "slug", json_string(u->slug));
		u->slug_changed = true;
	}
	if (u->config) {
		json_t *c = NULL;
		if ((e = build_config(req, u->config, json_object_get(doc, "config"), &c)))
			return under(req, e, "config.");
		json_object_set_new(doc, "config", c);
	}
	if (u->order >= 0)
		json_object_set_new(doc, "order", json_integer(u->order));
	return PRISM_OK;
}

enum prism_err
providers_update(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *body = NULL, *before = NULL, *after = NULL;
	struct update_ctx u = { .order = -1 };
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = admin_body(req, &body)))
		return e;
	if ((e = valid_string(req, body, "name", VF_NONEMPTY, PROVIDER_MAX_NAME, &u.name)) ||
	    (e = valid_enum(req, body, "type", 0, provider_types, &u.type)) ||
	    (e = valid_string(req, body, "slug", 0, 256, &u.slug)) || (e = valid_object(req, body, "config", 0, &u.config)) ||
	    (e = valid_int(req, body, "order", 0, 0, PROVIDER_MAX_COUNT * 100L, &u.order)))
		goto out;
	e = mutate(req, s, COLL_PROVIDERS, id, "Provider", apply_update, &u, &before, &after);
	if (e == PRISM_E_CONFLICT && u.slug_changed && strcmp(req->errdetail, "duplicate") == 0)
		e = admin_fail(req, e, "A provider with the slug '%s' already exists", u.slug);
	if (e)
		goto out;
	audit_record(req, "update", "provider", id, admin_str(after, "name"), before, after);
	admin_changed(req);
	e = admin_reply(req, 200, providers_view(after));
out:
	json_decref(before);
	json_decref(after);
	json_decref(body);
	return e;
}

/* --- reorder -------------------------------------------------------------------------------------------- */

static enum prism_err
set_order(struct request *req, json_t *doc, void *ud)
{
	(void)req;
	json_object_set_new(doc, "order", json_integer(*(long *)ud));
	return PRISM_OK;
}

enum prism_err
providers_reorder(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *ids = NULL, *all = NULL, *order = NULL, *old_order = NULL;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_body(req, &body)))
		return e;
	if ((e = valid_id_array(req, body, "ids", VF_REQUIRED, PROVIDER_MAX_COUNT, &ids)) || (e = load_all(req, s, &all)))
		goto out;
	order = json_array();
	old_order = json_array();
	size_t i, j;
	json_t *v, *p;
	json_array_foreach(all, j, p)
		json_array_append_new(old_order, json_string(admin_str(p, "_id")));
	json_array_foreach(ids, i, v) {
		const char *id = json_string_value(v);
		bool known = false;
		json_array_foreach(all, j, p)
			if (strcmp(admin_str(p, "_id"), id) == 0)
				known = true;
		if (!known) {
			e = admin_fail(req, PRISM_E_NOT_FOUND, "Provider not found: %s", id);
			goto out;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(json_string_value(json_array_get(ids, k)), id) == 0) {
				e = admin_fail(req, PRISM_E_BAD_REQUEST, "ids[%zu]: %s is listed twice", i, id);
				goto out;
			}
		json_array_append(order, v);
	}
	/* Providers the list leaves out keep their relative order after the listed ones. */
	json_array_foreach(all, j, p) {
		bool listed = false;
		json_array_foreach(ids, i, v)
			if (strcmp(admin_str(p, "_id"), json_string_value(v)) == 0)
				listed = true;
		if (!listed)
			json_array_append_new(order, json_string(admin_str(p, "_id")));
	}
	json_array_foreach(order, i, v) {
		long pos = (long)i;
		json_t *b = NULL, *a = NULL;
		e = mutate(req, s, COLL_PROVIDERS, json_string_value(v), "Provider", set_order, &pos, &b, &a);
		json_decref(b);
		json_decref(a);
		if (e == PRISM_E_NOT_FOUND) {   /* deleted meanwhile */
			req->errdetail[0] = '\0';
			continue;
		}
		if (e)
			goto out;
	}
	json_t *ab = json_pack("{s:O}", "order", old_order), *aa = json_pack("{s:O}", "order", order);
	audit_record(req, "reorder", "provider", NULL, "provider list", ab, aa);
	json_decref(ab);
	json_decref(aa);
	admin_changed(req);
	e = admin_reply(req, 200, json_pack("{s:b, s:O}", "success", 1, "order", order));
out:
	json_decref(order);
	json_decref(old_order);
	json_decref(all);
	json_decref(body);
	return e;
}

/* --- delete with cascade -------------------------------------------------------------------------------- */

struct cascade_ctx {
	const char *id;
	bool changed;
};

static bool
pull_string(json_t *arr, const char *id)
{
	bool changed = false;
	for (size_t i = json_array_size(arr); i-- > 0;) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (s && strcmp(s, id) == 0) {
			json_array_remove(arr, i);
			changed = true;
		}
	}
	return changed;
}

static enum prism_err
cascade_tenant(struct request *req, json_t *t, void *ud)
{
	(void)req;
	struct cascade_ctx *c = ud;
	size_t i;
	json_t *e;
	c->changed = false;
	c->changed |= pull_string(json_object_get(t, "providerIds"), c->id);
	json_t *r = json_object_get(t, "routing");
	if (strcmp(admin_str(r, "classifierProvider"), c->id) == 0) {
		json_object_del(r, "classifierProvider");
		json_object_del(r, "classifierModel");
		c->changed = true;
	}
	json_t *fb = json_object_get(r, "classifierFallbacks");
	for (i = json_array_size(fb); i-- > 0;) {
		if (strcmp(admin_str(json_array_get(fb, i), "provider"), c->id) == 0) {
			json_array_remove(fb, i);
			c->changed = true;
		}
	}
	json_array_foreach(json_object_get(t, "fallbackChains"), i, e)
		c->changed |= pull_string(json_object_get(e, "providers"), c->id);
	/* The original forgot these: a pinned provider that is gone falls back to "any provider serving the model". */
	json_array_foreach(json_object_get(t, "modelFallbacks"), i, e) {
		size_t k;
		json_t *f;
		json_array_foreach(json_object_get(e, "fallbacks"), k, f) {
			if (strcmp(admin_str(f, "providerId"), c->id) == 0) {
				json_object_set_new(f, "providerId", json_null());
				c->changed = true;
			}
		}
	}
	return PRISM_OK;
}

enum prism_err
providers_delete(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL, *tenants = NULL;
	char serr[256] = "", name[PROVIDER_MAX_NAME + 1];
	long updated = 0;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = load(req, s, COLL_PROVIDERS, id, "Provider", &doc)))
		return e;
	snprintf(name, sizeof name, "%s", *admin_str(doc, "name") ? admin_str(doc, "name") : admin_str(doc, "slug"));
	/* References first: a failure leaves the provider in place and the delete can simply be repeated. */
	if ((e = admin_find_all(req, s, COLL_TENANTS, NULL, 0, NULL, false, PROVIDER_CASCADE_MAX_TENANTS, &tenants)))
		goto out;
	size_t i;
	json_t *t;
	json_array_foreach(tenants, i, t) {
		struct cascade_ctx c = { id, false };
		json_t *probe = json_deep_copy(t);
		cascade_tenant(req, probe, &c);
		json_decref(probe);
		if (!c.changed)
			continue;
		json_t *b = NULL, *a = NULL;
		char tid[25];
		snprintf(tid, sizeof tid, "%s", admin_str(t, "_id"));
		e = mutate(req, s, COLL_TENANTS, tid, "Tenant", cascade_tenant, &c, &b, &a);
		if (e == PRISM_E_NOT_FOUND) {
			req->errdetail[0] = '\0';
			e = PRISM_OK;
			continue;
		}
		if (e)
			goto out;
		if (c.changed) {
			updated++;
			audit_record(req, "update", "tenant", tid, admin_str(a, "slug"), b, a);
		}
		json_decref(b);
		json_decref(a);
	}
	e = s->ops->remove(s, COLL_PROVIDERS, id, serr, sizeof serr);
	if (e) {
		e = admin_store_fail(req, e, "Provider not found", serr);
		goto out;
	}
	audit_record(req, "delete", "provider", id, name, NULL, NULL);
	admin_changed(req);
	e = admin_reply(req, 200, json_pack("{s:b, s:{s:I}}", "success", 1, "cascade", "tenantsUpdated", (json_int_t)updated));
out:
	if (updated && e)
		admin_changed(req);
	json_decref(tenants);
	json_decref(doc);
	return e;
}

/* --- talking to the provider ---------------------------------------------------------------------------- */

struct conn {
	char base[PROVIDER_MAX_URL + 1];     /* without a trailing '/' */
	char api_path[16];                   /* configured apiPath, "" = probe */
	char *key;                           /* decrypted API key or NULL; wiped */
	const char *name;                    /* borrowed from the document */
	bool ollama;
	struct httpc_opts http;
	struct httpc_header headers[HTTPC_MAX_HEADERS];
};

static void
conn_close(struct conn *c)
{
	crypto_free_secret(c->key);
	c->key = NULL;
}

static void
strip_slash(char *s)
{
	size_t n = strlen(s);
	if (n && s[n - 1] == '/')
		s[n - 1] = '\0';
}

/* Fills c from the provider document (which must outlive c).  An error message for the client in err. */
static enum prism_err
conn_open(struct request *req, const json_t *doc, struct conn *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	const json_t *cfg = json_object_get(doc, "config");
	const json_t *auth = json_object_get(cfg, "auth");
	const json_t *opt = json_object_get(cfg, "options");
	c->name = admin_str(doc, "name");
	c->ollama = strcmp(type_of(doc), "ollama") == 0;
	const char *base = admin_str(cfg, "baseUrl");
	if (!*base)
		base = c->ollama ? "http://localhost:11434" : "https://api.openai.com";
	snprintf(c->base, sizeof c->base, "%s", base);
	strip_slash(c->base);
	const char *ap = admin_str(opt, "apiPath");
	if (in_list(api_paths, ap))
		snprintf(c->api_path, sizeof c->api_path, "%s", ap);

	const char *atype = admin_str(auth, "type");
	bool bearer = !*atype || strcmp(atype, "api_key") == 0 || strcmp(atype, "bearer") == 0;
	if (bearer && !c->ollama) {
		enum prism_err e = providers_secret(req->cfg, doc, "apiKey", &c->key);
		if (e == PRISM_E_CONFIG) {
			snprintf(err, errlen, "the stored API key cannot be decrypted with the configured encryption_key "
					      "(was the key changed?); enter the API key again");
			return e;
		}
		if (e) {
			snprintf(err, errlen, "the stored API key is not readable (%s); enter it again", prism_strerror(e));
			return e;
		}
	}
	c->http.bearer = c->key;
	c->http.proxy = admin_str(opt, "httpProxy");
	c->http.tls_insecure = json_is_false(json_object_get(opt, "tlsVerify"));
	c->http.ca_file = admin_str(opt, "caFile");
	json_t *v = json_object_get(opt, "connectTimeoutMs");
	if (json_is_integer(v) && json_integer_value(v) >= PROVIDER_CONNECT_TIMEOUT_MIN &&
	    json_integer_value(v) <= PROVIDER_CONNECT_TIMEOUT_MAX)
		c->http.connect_timeout_ms = (long)json_integer_value(v);
	v = json_object_get(opt, "timeoutMs");
	if (json_is_integer(v) && json_integer_value(v) >= PROVIDER_TIMEOUT_MIN && json_integer_value(v) <= PROVIDER_TIMEOUT_MAX)
		c->http.timeout_ms = (long)json_integer_value(v);
	const char *k;
	json_object_foreach(json_object_get(opt, "extraHeaders"), k, v) {
		if (c->http.nheaders >= HTTPC_MAX_HEADERS || !json_is_string(v) || header_reserved(k) ||
		    !httpc_header_ok(k, json_string_value(v)))
			continue;
		c->headers[c->http.nheaders].name = k;
		c->headers[c->http.nheaders].value = json_string_value(v);
		c->http.nheaders++;
	}
	c->http.headers = c->headers;
	return PRISM_OK;
}

static json_t *
model_entry(const char *id, const char *owned_by, json_int_t ctx)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:[s]}", "id", id, "name", id, "ownedBy", owned_by, "capabilities", "chat");
	if (ctx > 0)
		json_object_set_new(m, "contextWindow", json_integer(ctx));
	return m;
}


/* OpenAI {data:[{id, owned_by}]} or Ollama {models:[{name|model, details}]} -> [{id, name, ownedBy,
 * capabilities, contextWindow?}], without duplicates; NULL when the shape is wrong. */
static json_t *
parse_models(const struct buf *body, const struct conn *c, bool ollama)
{
	json_t *root = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
	json_t *list = json_object_get(root, ollama ? "models" : "data");
	if (!json_is_array(list)) {
		json_decref(root);
		return NULL;
	}
	json_t *out = json_array(), *seen = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(list, i, m) {
		json_t *idv = json_object_get(m, ollama ? "name" : "id");
		if (ollama && !usable_id(idv))
			idv = json_object_get(m, "model");
		if (!usable_id(idv) || json_object_get(seen, json_string_value(idv)))
			continue;
		if (json_array_size(out) >= PROVIDER_MAX_MODELS) {
			log_warn("provider %.100s lists more than %d models; the rest are ignored", c->name,
				 PROVIDER_MAX_MODELS);
			break;
		}
		const char *id = json_string_value(idv);
		json_object_set_new(seen, id, json_true());
		json_int_t ctx = 0;
		json_t *cv = ollama ? json_object_get(json_object_get(m, "details"), "context_length")
				    : json_object_get(m, "context_length");
		if (!ollama && !json_is_integer(cv))
			cv = json_object_get(m, "max_model_len");      /* vLLM */
		if (json_is_integer(cv) && json_integer_value(cv) > 0 && json_integer_value(cv) <= MAX_CTX_TOKENS)
			ctx = json_integer_value(cv);
		const char *owner = ollama ? "ollama" : json_string_value(json_object_get(m, "owned_by"));
		if (!owner || !*owner || strlen(owner) > 256 || has_ctl(owner))
			owner = c->name;
		json_array_append_new(out, model_entry(id, owner, ctx));
	}
	json_decref(seen);
	json_decref(root);
	return out;
}

/* Lists the provider's models at base: Ollama's /api/tags first for type ollama, then the OpenAI-compatible
 * GET <base><path>/models for the configured apiPath or /v1 and /api/v1.  path_out gets the path that
 * answered ("" for /api/tags).  On failure err says what was tried and the most telling error. */
static enum prism_err
list_models(struct conn *c, const char *base, json_t **models, char path_out[16], char *err, size_t errlen)
{
	struct buf body;
	char url[PROVIDER_MAX_URL + 64], perr[512], chosen[512] = "", tried[64] = "";
	bool telling = false;
	enum prism_err rc = PRISM_E_UPSTREAM, last = PRISM_E_UPSTREAM;
	long status = 0;
	*models = NULL;
	path_out[0] = '\0';
	buf_init(&body, (size_t)HTTPC_MAX_BODY);
	if (c->ollama) {
		struct httpc_opts o = c->http;
		o.bearer = NULL;
		snprintf(url, sizeof url, "%s/api/tags", base);
		if (httpc_get(&o, url, &status, &body, perr, sizeof perr) == PRISM_OK &&
		    (*models = parse_models(&body, c, true))) {
			rc = PRISM_OK;
			goto out;
		}
	}
	const char *paths[2] = { "/v1", "/api/v1" };
	size_t npaths = 2;
	if (c->api_path[0]) {
		paths[0] = c->api_path;
		npaths = 1;
	}
	for (size_t i = 0; i < npaths; i++) {
		snprintf(url, sizeof url, "%s%s/models", base, paths[i]);
		size_t tl = strlen(tried);
		snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? ", " : "", paths[i]);
		last = httpc_get(&c->http, url, &status, &body, perr, sizeof perr);
		if (last == PRISM_OK) {
			if ((*models = parse_models(&body, c, false))) {
				snprintf(path_out, 16, "%s", paths[i]);
				rc = PRISM_OK;
				goto out;
			}
			last = PRISM_E_UPSTREAM;
			snprintf(perr, sizeof perr, "HTTP %ld but not a model list (no \"data\" array)", status);
		}
		/* The first error that is not a plain 404 says the most; a 404 only says "not this path". */
		if (!telling) {
			snprintf(chosen, sizeof chosen, "%s", perr);
			telling = status != 404;
		}
		/* Nothing answered, or the key was refused: another path on the same host will not help. */
		if (status == 0 || status == 401 || status == 403)
			break;
	}
	snprintf(err, errlen, "Failed to list models (tried: %s): %s", tried, chosen);
	rc = last == PRISM_E_TIMEOUT ? PRISM_E_TIMEOUT : PRISM_E_UPSTREAM;
out:
	buf_free(&body);
	return rc;
}

struct status_ctx {
	const char *status;
	const char *message;                 /* NULL = statusMessage null */
	const char *api_path;                /* persisted when non-empty */
	/* discovery */
	json_t *raw, *suggestions;           /* borrowed */
	json_t *merged;                      /* out: new reference */
};

static void
put_status(json_t *doc, const struct status_ctx *st)
{
	char now[32];
	admin_now(now);
	json_object_set_new(doc, "status", json_string(st->status));
	json_object_set_new(doc, "statusMessage", st->message ? json_string(st->message) : json_null());
	json_object_set_new(doc, "lastChecked", json_string(now));
	if (st->api_path && *st->api_path) {
		json_t *opt = sub_object(sub_object(doc, "config"), "options");
		if (strcmp(admin_str(opt, "apiPath"), st->api_path) != 0)
			json_object_set_new(opt, "apiPath", json_string(st->api_path));
	}
}

static enum prism_err
apply_status(struct request *req, json_t *doc, void *ud)
{
	(void)req;
	put_status(doc, ud);
	return PRISM_OK;
}

/* Saves the outcome of a connection check and audits the call (the URL it went to). */
static enum prism_err
record_check(struct request *req, struct store *s, const char *id, const char *verb, const char *url,
	     struct status_ctx *st, mutate_fn fn)
{
	json_t *b = NULL, *a = NULL;
	enum prism_err e = mutate(req, s, COLL_PROVIDERS, id, "Provider", fn, st, &b, &a);
	if (e)
		return e;
	json_t *ab = json_pack("{s:s}", "status", admin_str(b, "status"));
	json_t *aa = json_pack("{s:s, s:s}", "status", st->status, "url", url);
	if (st->merged)
		json_object_set_new(aa, "models", json_integer((json_int_t)json_array_size(st->merged)));
	if (st->api_path && *st->api_path)
		json_object_set_new(aa, "apiPath", json_string(st->api_path));
	audit_record(req, verb, "provider", id, admin_str(a, "name"), ab, aa);
	json_decref(ab);
	json_decref(aa);
	json_decref(b);
	json_decref(a);
	admin_changed(req);
	return PRISM_OK;
}

enum prism_err
providers_test(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL, *models = NULL;
	struct conn c = { 0 };
	char err[1024] = "", path[16] = "";
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = load(req, s, COLL_PROVIDERS, id, "Provider", &doc)))
		return e;
	const char *unsup = unsupported_type(doc);
	if (unsup) {
		unsupported_message(unsup, err, sizeof err);
		e = admin_reply(req, 400, json_pack("{s:b, s:s}", "success", 0, "error", err));
		goto out;
	}
	bool ok = conn_open(req, doc, &c, err, sizeof err) == PRISM_OK &&
		  list_models(&c, c.base, &models, path, err, sizeof err) == PRISM_OK;
	struct status_ctx st = { ok ? "connected" : "error", ok ? NULL : err, NULL, NULL, NULL, NULL };
	if ((e = record_check(req, s, id, "test", c.base, &st, apply_status)))
		goto out;
	if (ok)
		e = admin_reply(req, 200, json_pack("{s:b, s:s}", "success", 1, "message", "Connection successful"));
	else
		e = admin_reply(req, 400, json_pack("{s:b, s:s}", "success", 0, "error", err));
out:
	conn_close(&c);
	json_decref(models);
	json_decref(doc);
	return e;
}

static void
logf_line(json_t *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
logf_line(json_t *log, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	json_array_append_new(log, json_string(line));
}

/* One attempt of check: the log lines of the original. */
static enum prism_err
check_try(struct conn *c, const char *base, json_t *log, size_t *count, char path[16], char *err, size_t errlen)
{
	json_t *models = NULL;
	logf_line(log, "\u2192 Trying base: %s  (will probe: %s)", base, c->api_path[0] ? c->api_path : "/v1, /api/v1");
	enum prism_err e = list_models(c, base, &models, path, err, errlen);
	if (e == PRISM_OK) {
		if (path[0])
			logf_line(log, "   \u2713 Responded on path: %s/models", path);
		*count = json_array_size(models);
	}
	json_decref(models);
	return e;
}

enum prism_err
providers_check(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL, *log = json_array();
	struct conn c = { 0 };
	char err[1024] = "", err2[1024] = "", path[16] = "", https[PROVIDER_MAX_URL + 8] = "";
	size_t count = 0;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = load(req, s, COLL_PROVIDERS, id, "Provider", &doc)))
		goto out;
	const char *unsup = unsupported_type(doc);
	if (unsup) {
		unsupported_message(unsup, err, sizeof err);
		logf_line(log, "\u2717 %s", err);
		e = admin_reply(req, 400, json_pack("{s:b, s:s, s:O}", "success", 0, "error", err, "log", log));
		goto out;
	}
	char base[PROVIDER_MAX_URL + 1];
	snprintf(base, sizeof base, "%s", admin_str(json_object_get(doc, "config"), "baseUrl"));
	strip_slash(base);
	if (!base[0]) {
		logf_line(log, "\u2717 No base URL configured");
		e = admin_reply(req, 400, json_pack("{s:b, s:s, s:O}", "success", 0, "error", "No base URL configured", "log", log));
		goto out;
	}
	if (conn_open(req, doc, &c, err, sizeof err) != PRISM_OK) {
		logf_line(log, "\u2717 Failed: %s", err);
		struct status_ctx st = { "error", err, NULL, NULL, NULL, NULL };
		if ((e = record_check(req, s, id, "check", base, &st, apply_status)))
			goto out;
		e = admin_reply(req, 400, json_pack("{s:b, s:s, s:O}", "success", 0, "error", err, "log", log));
		goto out;
	}
	bool ok = check_try(&c, base, log, &count, path, err, sizeof err) == PRISM_OK, used_https = false;
	if (ok) {
		logf_line(log, "\u2713 Connection successful (%zu models)", count);
	} else {
		logf_line(log, "\u2717 Failed: %s", err);
		if (strncasecmp(base, "http://", 7) == 0) {
			snprintf(https, sizeof https, "https://%s", base + 7);
			logf_line(log, "\u2192 Retrying with HTTPS...");
			if (check_try(&c, https, log, &count, path, err2, sizeof err2) == PRISM_OK) {
				ok = used_https = true;
				logf_line(log, "\u2713 HTTPS connection successful (%zu models) \u2014 consider updating Base URL "
					       "to https://", count);
			} else {
				logf_line(log, "\u2717 HTTPS also failed: %s", err2);
			}
		}
	}
	struct status_ctx st = { ok ? "connected" : "error", ok ? NULL : err, path, NULL, NULL, NULL };
	if ((e = record_check(req, s, id, "check", used_https ? https : base, &st, apply_status)))
		goto out;
	if (ok)
		e = admin_reply(req, 200, json_pack("{s:b, s:O, s:o}", "success", 1, "log", log, "suggestUrl",
						    used_https ? json_string(https) : json_null()));
	else
		e = admin_reply(req, 400, json_pack("{s:b, s:s, s:O}", "success", 0, "error", err, "log", log));
out:
	conn_close(&c);
	json_decref(log);
	json_decref(doc);
	return e;
}

/* --- discovery ------------------------------------------------------------------------------------------ */

static json_t *
tier_of(const json_t *sugg)
{
	const char *t = json_string_value(json_object_get(sugg, "tier"));
	return in_list(model_tiers, t) ? json_string(t) : NULL;
}

static json_t *
provider_price(const json_t *doc, const char *model_id, bool input)
{
	double in, out;
	if (!registry_provider_type_price(type_of(doc), admin_str(doc, "name"), model_id, &in, &out))
		return NULL;
	return number_json(input ? in : out);
}

static void
set_price(json_t *m, const json_t *doc, const json_t *sugg, const json_t *existing, const char *id)
{
	json_t *pin = provider_price(doc, id, true), *pout = provider_price(doc, id, false);
	json_object_set_new(m, "inputPer1M", coalesce(pin, json_object_get(sugg, "inputPer1M"),
						      json_object_get(existing, "inputPer1M")));
	json_object_set_new(m, "outputPer1M", coalesce(pout, json_object_get(sugg, "outputPer1M"),
						       json_object_get(existing, "outputPer1M")));
	json_decref(pin);
	json_decref(pout);
}

/* One discovered model merged with what was stored (existing may be NULL) and the suggestion (may be NULL). */
static json_t *
merge_model(const json_t *doc, const json_t *raw, const json_t *existing, const json_t *sugg)
{
	const char *id = admin_str(raw, "id");
	json_t *m;
	if (existing) {
		m = json_deep_copy(existing);
		if (truthy(json_object_get(raw, "name")))
			json_object_set(m, "name", json_object_get(raw, "name"));
		if (json_object_get(raw, "capabilities"))
			json_object_set(m, "capabilities", json_object_get(raw, "capabilities"));
		if (!json_is_true(json_object_get(existing, "manualContext"))) {
			json_t *ctx = truthy(json_object_get(sugg, "contextWindow")) ? json_object_get(sugg, "contextWindow")
				      : truthy(json_object_get(raw, "contextWindow")) ? json_object_get(raw, "contextWindow")
										       : json_object_get(existing, "contextWindow");
			if (ctx)
				json_object_set(m, "contextWindow", ctx);
			json_object_set_new(m, "maxOutputTokens", coalesce(json_object_get(sugg, "maxOutputTokens"),
									   json_object_get(existing, "maxOutputTokens"), NULL));
		}
		if (!truthy(json_object_get(existing, "tier")) && sugg) {
			json_t *t = tier_of(sugg);
			json_object_set_new(m, "tier", coalesce(t, json_object_get(existing, "tier"), NULL));
			json_decref(t);
			json_t *cats = json_object_get(sugg, "categories");
			json_t *ecats = json_object_get(existing, "categories");
			json_object_set_new(m, "categories", json_is_array(cats) ? json_incref(cats)
							     : json_is_array(ecats) ? json_incref(ecats) : json_array());
			json_t *p = json_object_get(sugg, "priority");
			json_t *ep = json_object_get(existing, "priority");
			json_object_set_new(m, "priority", json_is_number(p) ? json_incref(p)
							   : json_is_number(ep) ? json_incref(ep) : json_integer(50));
		}
		if (!json_is_true(json_object_get(existing, "manualPricing")))
			set_price(m, doc, sugg, existing, id);
		return m;
	}
	m = json_deep_copy(raw);
	json_t *t = tier_of(sugg);
	json_object_set_new(m, "tier", t ? t : json_null());
	json_t *cats = json_object_get(sugg, "categories");
	json_object_set_new(m, "categories", json_is_array(cats) ? json_incref(cats) : json_array());
	json_t *p = json_object_get(sugg, "priority");
	json_object_set_new(m, "priority", json_is_number(p) ? json_incref(p) : json_integer(50));
	json_object_set_new(m, "maxOutputTokens", coalesce(json_object_get(sugg, "maxOutputTokens"), NULL, NULL));
	if (truthy(json_object_get(sugg, "contextWindow")))
		json_object_set(m, "contextWindow", json_object_get(sugg, "contextWindow"));
	set_price(m, doc, sugg, NULL, id);
	json_object_set_new(m, "notes", json_string(""));
	json_object_set_new(m, "visible", json_true());
	json_object_set_new(m, "manualPricing", json_false());
	json_object_set_new(m, "manualContext", json_false());
	return m;
}

static enum prism_err
apply_discovery(struct request *req, json_t *doc, void *ud)
{
	(void)req;
	struct status_ctx *st = ud;
	json_t *existing = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(doc, "discoveredModels"), i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));
		if (id && !json_object_get(existing, id))
			json_object_set(existing, id, m);
	}
	json_t *merged = json_array();
	json_array_foreach(st->raw, i, m) {
		json_t *sugg = json_array_get(st->suggestions, i);
		json_array_append_new(merged, merge_model(doc, m, json_object_get(existing, admin_str(m, "id")),
							  json_is_object(sugg) ? sugg : NULL));
	}
	json_decref(existing);
	json_object_set(doc, "discoveredModels", merged);
	json_decref(st->merged);
	st->merged = merged;
	put_status(doc, st);
	return PRISM_OK;
}

enum prism_err
providers_discover(struct request *req)
{
	struct store *s;
	const char *id;
	json_t *doc = NULL, *raw = NULL, *sugg = NULL;
	struct conn c = { 0 };
	char err[1024] = "", path[16] = "";
	struct status_ctx st = { "connected", NULL, NULL, NULL, NULL, NULL };
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = load(req, s, COLL_PROVIDERS, id, "Provider", &doc)))
		return e;
	const char *unsup = unsupported_type(doc);
	if (unsup) {
		unsupported_message(unsup, err, sizeof err);
		e = admin_reply(req, 400, json_pack("{s:s}", "error", err));
		goto out;
	}
	if (conn_open(req, doc, &c, err, sizeof err) != PRISM_OK ||
	    list_models(&c, c.base, &raw, path, err, sizeof err) != PRISM_OK) {
		json_t *ab = json_pack("{s:s}", "status", admin_str(doc, "status"));
		json_t *aa = json_pack("{s:s, s:s}", "result", "failed", "url", c.base);
		audit_record(req, "discover", "provider", id, admin_str(doc, "name"), ab, aa);
		json_decref(ab);
		json_decref(aa);
		e = admin_reply(req, 400, json_pack("{s:s}", "error", err));
		goto out;
	}
	/* Suggestions may need models.dev: looked up once, outside the read-modify-write loop. */
	sugg = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(raw, i, m) {
		json_t *sv = models_suggest(req->cfg, admin_str(m, "id"));
		json_array_append_new(sugg, sv ? sv : json_null());
	}
	st.raw = raw;
	st.suggestions = sugg;
	st.api_path = path;
	if ((e = record_check(req, s, id, "discover", c.base, &st, apply_discovery)))
		goto out;
	long enriched = 0;
	json_array_foreach(st.merged, i, m)
		if (truthy(json_object_get(m, "tier")))
			enriched++;
	const char *stored = admin_str(json_object_get(json_object_get(doc, "config"), "options"), "apiPath");
	const char *ap = path[0] ? path : *stored ? stored : "/v1";
	e = admin_reply(req, 200, json_pack("{s:O, s:I, s:I, s:s}", "models", st.merged, "count",
					    (json_int_t)json_array_size(st.merged), "enrichedCount", (json_int_t)enriched,
					    "apiPath", ap));
out:
	conn_close(&c);
	json_decref(st.merged);
	json_decref(sugg);
	json_decref(raw);
	json_decref(doc);
	return e;
}

/* --- the model registry --------------------------------------------------------------------------------- */

enum prism_err
providers_models_all(struct request *req)
{
	struct store *s;
	json_t *all = NULL;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = load_all(req, s, &all)))
		return e;
	json_t *out = json_array();
	size_t i, j;
	json_t *p, *m;
	json_array_foreach(all, i, p) {
		json_array_foreach(json_object_get(p, "discoveredModels"), j, m) {
			const char *mid = admin_str(m, "id");
			char prefixed[PROVIDER_MAX_SLUG + PROVIDER_MAX_MODEL_ID + 64];
			snprintf(prefixed, sizeof prefixed, "%s/%s", admin_str(p, "slug"), mid);
			json_t *pr = json_object_get(m, "priority");
			json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "providerId", admin_str(p, "_id"),
					      "providerName", admin_str(p, "name"), "providerSlug", admin_str(p, "slug"),
					      "providerType", admin_str(p, "type"), "providerStatus", admin_str(p, "status"),
					      "id", mid, "prefixedId", prefixed, "name",
					      *admin_str(m, "name") ? admin_str(m, "name") : mid);
			json_t *caps = json_object_get(m, "capabilities"), *cats = json_object_get(m, "categories");
			json_object_set_new(o, "capabilities", json_is_array(caps) ? json_incref(caps) : json_array());
			json_object_set_new(o, "contextWindow", coalesce(json_object_get(m, "contextWindow"), NULL, NULL));
			json_object_set_new(o, "maxOutputTokens", coalesce(json_object_get(m, "maxOutputTokens"), NULL, NULL));
			json_object_set_new(o, "tier", coalesce(json_object_get(m, "tier"), NULL, NULL));
			json_object_set_new(o, "categories", json_is_array(cats) ? json_incref(cats) : json_array());
			json_object_set_new(o, "priority", json_is_number(pr) ? json_incref(pr) : json_integer(50));
			json_object_set_new(o, "notes", json_string(admin_str(m, "notes")));
			json_object_set_new(o, "inputPer1M", coalesce(json_object_get(m, "inputPer1M"), NULL, NULL));
			json_object_set_new(o, "outputPer1M", coalesce(json_object_get(m, "outputPer1M"), NULL, NULL));
			json_object_set_new(o, "visible", json_boolean(!json_is_false(json_object_get(m, "visible"))));
			json_array_append_new(out, o);
		}
	}
	json_decref(all);
	return admin_reply(req, 200, out);
}

enum prism_err
providers_models_suggest(struct request *req)
{
	char id[PRISM_MAX_URI + 1];
	if (!request_query(req, "modelId", id, sizeof id) || !id[0])
		return admin_fail(req, PRISM_E_BAD_REQUEST, "modelId required");
	if (strlen(id) > PROVIDER_MAX_MODEL_ID)
		return admin_fail(req, PRISM_E_BAD_REQUEST, "modelId: must be at most %d bytes long", PROVIDER_MAX_MODEL_ID);
	json_t *sv = models_suggest(req->cfg, id);
	if (!sv)
		return admin_fail(req, PRISM_E_NOT_FOUND, "No suggestion found for this model ID");
	return admin_reply(req, 200, sv);
}

struct tier_ctx {
	json_t *prios;                       /* {modelId: priority} for one provider (borrowed) */
	json_t *before, *after;              /* out: {modelId: priority} of the models changed */
};

static enum prism_err
apply_priorities(struct request *req, json_t *doc, void *ud)
{
	(void)req;
	struct tier_ctx *t = ud;
	json_object_clear(t->before);
	json_object_clear(t->after);
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(doc, "discoveredModels"), i, m) {
		const char *mid = admin_str(m, "id");
		json_t *p = json_object_get(t->prios, mid);
		if (!p || !json_is_object(m))
			continue;
		json_object_set_new(t->before, mid, coalesce(json_object_get(m, "priority"), NULL, NULL));
		json_object_set(t->after, mid, p);
		json_object_set(m, "priority", p);
	}
	return PRISM_OK;
}

enum prism_err
providers_reorder_tier(struct request *req)
{
	struct store *s;
	json_t *body = NULL, *groups = NULL;
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_body(req, &body)))
		return e;
	json_t *items = json_object_get(body, "items");
	size_t n = json_array_size(items);
	if (!json_is_array(items) || n == 0) {
		e = admin_fail(req, PRISM_E_BAD_REQUEST, "items: a non-empty array of {providerId, modelId} is required");
		goto out;
	}
	if (n > PROVIDER_MAX_REORDER) {
		e = admin_fail(req, PRISM_E_BAD_REQUEST, "items: at most %d items", PROVIDER_MAX_REORDER);
		goto out;
	}
	/* priority = 100 - i*step, step = floor(90/n) but at least 1, never below 1. */
	long step = 90 / (long)n;
	if (step < 1)
		step = 1;
	groups = json_object();
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *pid = NULL, *mid = NULL;
		char prefix[48];
		snprintf(prefix, sizeof prefix, "items[%zu].", i);
		if (!json_is_object(it)) {
			e = admin_fail(req, PRISM_E_BAD_REQUEST, "items[%zu]: must be an object {providerId, modelId}", i);
			goto out;
		}
		if ((e = valid_id(req, it, "providerId", VF_REQUIRED, &pid)) ||
		    (e = valid_string(req, it, "modelId", VF_REQUIRED, PROVIDER_MAX_MODEL_ID, &mid))) {
			under(req, e, prefix);
			goto out;
		}
		long prio = 100 - (long)i * step;
		if (prio < 1)
			prio = 1;
		json_t *g = json_object_get(groups, pid);
		if (!g) {
			g = json_object();
			json_object_set_new(groups, pid, g);
		}
		json_object_set_new(g, mid, json_integer(prio));
	}
	long updated = 0;
	const char *pid;
	json_t *g;
	json_object_foreach(groups, pid, g) {
		struct tier_ctx t = { g, json_object(), json_object() };
		json_t *b = NULL, *a = NULL;
		e = mutate(req, s, COLL_PROVIDERS, pid, "Provider", apply_priorities, &t, &b, &a);
		if (e == PRISM_E_NOT_FOUND) {        /* unknown providers are skipped, as in the original */
			req->errdetail[0] = '\0';
			e = PRISM_OK;
		} else if (e == PRISM_OK) {
			updated += (long)json_object_size(t.after);
			json_t *ab = json_pack("{s:O}", "priority", t.before), *aa = json_pack("{s:O}", "priority", t.after);
			audit_record(req, "reorder", "model", pid, admin_str(a, "name"), ab, aa);
			json_decref(ab);
			json_decref(aa);
		}
		json_decref(t.before);
		json_decref(t.after);
		json_decref(b);
		json_decref(a);
		if (e)
			goto out;
	}
	admin_changed(req);
	e = admin_reply(req, 200, json_pack("{s:b, s:I}", "success", 1, "updated", (json_int_t)updated));
out:
	json_decref(groups);
	json_decref(body);
	return e;
}

struct patch_ctx {
	const char *model_id;
	const json_t *body;                  /* validated */
	json_t *before, *after;              /* out: the model (new references) */
};

static enum prism_err
apply_patch(struct request *req, json_t *doc, void *ud)
{
	struct patch_ctx *pc = ud;
	json_t *model = NULL, *m;
	size_t i;
	json_array_foreach(json_object_get(doc, "discoveredModels"), i, m)
		if (!model && json_is_object(m) && strcmp(admin_str(m, "id"), pc->model_id) == 0)
			model = m;
	if (!model)
		return admin_fail(req, PRISM_E_NOT_FOUND, "Model not found in provider");
	json_decref(pc->before);
	json_decref(pc->after);
	pc->before = json_deep_copy(model);
	static const char *const plain[] = { "tier", "categories", "priority", "notes", "visible", NULL };
	for (i = 0; plain[i]; i++) {
		json_t *v = json_object_get(pc->body, plain[i]);
		if (v)
			json_object_set(model, plain[i], v);
	}
	static const char *const prices[] = { "inputPer1M", "outputPer1M", NULL };
	for (i = 0; prices[i]; i++) {
		json_t *v = json_object_get(pc->body, prices[i]);
		if (v) {
			json_object_set(model, prices[i], v);
			json_object_set_new(model, "manualPricing", json_true());
		}
	}
	static const char *const ctx[] = { "contextWindow", "maxOutputTokens", NULL };
	for (i = 0; ctx[i]; i++) {
		json_t *v = json_object_get(pc->body, ctx[i]);
		if (v) {
			json_object_set_new(model, ctx[i], truthy(v) ? json_incref(v) : json_null());
			json_object_set_new(model, "manualContext", json_true());
		}
	}
	pc->after = json_deep_copy(model);
	return PRISM_OK;
}

/* Validates the PATCH body into a clean object of the fields to set (null where a field is cleared). */
static enum prism_err
patch_fields(struct request *req, const json_t *body, json_t **out)
{
	json_t *f = json_object(), *v, *cats = NULL;
	const char *tier = NULL, *notes = NULL;
	long prio = 0;
	bool vis;
	enum prism_err e;
	if (json_is_null(json_object_get(body, "tier")))
		json_object_set_new(f, "tier", json_null());
	else if ((e = valid_enum(req, body, "tier", 0, model_tiers, &tier)))
		goto fail;
	else if (tier)
		json_object_set_new(f, "tier", json_string(tier));
	if (json_is_null(json_object_get(body, "categories")))
		json_object_set_new(f, "categories", json_array());
	else if ((e = valid_string_array(req, body, "categories", 0, PROVIDER_MAX_CATEGORIES, 64, &cats)))
		goto fail;
	else if (cats)
		json_object_set_new(f, "categories", json_deep_copy(cats));
	if ((v = json_object_get(body, "priority")) && !json_is_null(v)) {
		if ((e = valid_int(req, body, "priority", 0, 1, 100, &prio)))
			goto fail;
		json_object_set_new(f, "priority", json_integer(prio));
	}
	if (json_is_null(json_object_get(body, "notes")))
		json_object_set_new(f, "notes", json_string(""));
	else if ((e = valid_string(req, body, "notes", 0, PROVIDER_MAX_NOTES, &notes)))
		goto fail;
	else if (notes)
		json_object_set_new(f, "notes", json_string(notes));
	if (json_object_get(body, "visible") && !json_is_null(json_object_get(body, "visible"))) {
		if ((e = valid_bool(req, body, "visible", 0, &vis)))
			goto fail;
		json_object_set_new(f, "visible", json_boolean(vis));
	}
	static const char *const prices[] = { "inputPer1M", "outputPer1M", NULL };
	for (size_t i = 0; prices[i]; i++) {
		double d;
		v = json_object_get(body, prices[i]);
		if (!v)
			continue;
		if (json_is_null(v)) {
			json_object_set_new(f, prices[i], json_null());
			continue;
		}
		if ((e = valid_number(req, body, prices[i], 0, 0, MAX_PRICE, &d)))
			goto fail;
		json_object_set_new(f, prices[i], number_json(d));
	}
	static const char *const ctx[] = { "contextWindow", "maxOutputTokens", NULL };
	for (size_t i = 0; ctx[i]; i++) {
		long n;
		v = json_object_get(body, ctx[i]);
		if (!v)
			continue;
		if (json_is_null(v)) {
			json_object_set_new(f, ctx[i], json_null());
			continue;
		}
		if ((e = valid_int(req, body, ctx[i], 0, 0, MAX_CTX_TOKENS, &n)))
			goto fail;
		json_object_set_new(f, ctx[i], json_integer(n));
	}
	*out = f;
	return PRISM_OK;
fail:
	json_decref(f);
	return e;
}

enum prism_err
providers_patch_model(struct request *req)
{
	struct store *s;
	const char *id, *model_id = request_param(req, "modelId");
	json_t *body = NULL, *fields = NULL, *b = NULL, *a = NULL;
	struct patch_ctx pc = { 0 };
	enum prism_err e = admin_store(req, &s);
	if (e || (e = admin_param_id(req, "id", "Provider", &id)) || (e = admin_body(req, &body)))
		return e;
	if (!model_id || !*model_id) {
		e = admin_fail(req, PRISM_E_NOT_FOUND, "Model not found in provider");
		goto out;
	}
	if ((e = patch_fields(req, body, &fields)))
		goto out;
	pc.model_id = model_id;
	pc.body = fields;
	if ((e = mutate(req, s, COLL_PROVIDERS, id, "Provider", apply_patch, &pc, &b, &a)))
		goto out;
	char name[PROVIDER_MAX_MODEL_ID + PROVIDER_MAX_NAME + 8];
	snprintf(name, sizeof name, "%s (%s)", model_id, admin_str(a, "name"));
	audit_record(req, "update", "model", id, name, pc.before, pc.after);
	admin_changed(req);
	e = admin_reply(req, 200, json_incref(pc.after));
out:
	json_decref(pc.before);
	json_decref(pc.after);
	json_decref(fields);
	json_decref(b);
	json_decref(a);
	json_decref(body);
	return e;
}
