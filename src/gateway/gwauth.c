/* gwauth.c -- the gateway's API-key authentication, per-tenant limits and error answers; see gw.h.
 *
 * Lookup order for a key hash H (hex SHA-256 of the key):
 *   1. the shared-memory tenant cache (exact, invalidated at once by admin writes on this host and by the
 *      store generation for the others);
 *   2. tenants whose apiKeyHashes contains H (the index every write of ours maintains);
 *   3. on MongoDB only: tenants whose apiKeys[].hash is H (an original database not yet written by us;
 *      SQLite cannot match inside arrays by a dotted path and holds only documents we wrote);
 *   4. the legacy single key apiKeyHash == H.
 * The document found must really hold H (compared in constant time): in apiKeys[] (that entry's enabled
 * and expiresAt) or as the legacy key (keyEnabled and keyExpiresAt; key id "legacy" is recorded as the
 * tenant's id, the slot holds 24-hex ids only).  Unknown keys are never cached: every guess costs a store
 * lookup, and the per-IP limiter bounds the guesses.
 *
 * The checks run on every request, cache hit or not, in an order that gives no oracle: the URL's tenant
 * first (a key of another tenant is "invalid", exactly like an unknown key), then tenant active (403), key
 * enabled (401), key expiry against the wall clock (401).
 */
#include "config.h"
#include "gateway/gw.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin/tenants.h"
#include "core/response.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"

#define GW_LIMIT_WINDOW_S 60
#define GW_LAST_USED_EVERY_S 60      /* apiKeys[].lastUsedAt is written at most this often per key */
#define GW_MAX_KEY 4096              /* longer credentials cannot be keys (custom keys end at 256) */

#define MSG_MISSING "API key required"
#define MSG_INVALID "Invalid API key or tenant"

/* --- errors ---------------------------------------------------------------------------------------------- */

static __thread int last_status;
static __thread char last_type[48];
static __thread char last_code[64];

static enum prism_err
status_err(int status)
{
	switch (status) {
	case 400: return PRISM_E_BAD_REQUEST;
	case 401: return PRISM_E_UNAUTHORIZED;
	case 403: return PRISM_E_FORBIDDEN;
	case 404: return PRISM_E_NOT_FOUND;
	case 405: return PRISM_E_METHOD;
	case 409: return PRISM_E_CONFLICT;
	case 413: return PRISM_E_TOO_LARGE;
	case 414: return PRISM_E_URI_TOO_LONG;
	case 415: return PRISM_E_MEDIA_TYPE;
	case 429: return PRISM_E_RATE_LIMITED;
	case 499: return PRISM_E_CLIENT_GONE;
	case 502: return PRISM_E_UPSTREAM;
	case 503: return PRISM_E_UNAVAILABLE;
	case 504: return PRISM_E_TIMEOUT;
	default: return status >= 400 && status < 500 ? PRISM_E_BAD_REQUEST : PRISM_E_INTERNAL;
	}
}

enum prism_err
gw_error(struct request *req, int status, const char *type, const char *code, const char *fmt, ...)
{
	char msg[PRISM_MAX_ERRDETAIL];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	last_status = status;
	snprintf(last_type, sizeof last_type, "%s", type ? type : "");
	snprintf(last_code, sizeof last_code, "%s", code ? code : "");
	snprintf(req->errdetail, sizeof req->errdetail, "%s", msg);
	resp_error_full(req, status, code ? code : "", type ? type : "", msg);
	return status_err(status);
}

void
gw_error_last(int *status, const char **type, const char **code)
{
	if (status)
		*status = last_status;
	if (type)
		*type = last_type;
	if (code)
		*code = last_code;
}

void
gw_error_reset(void)
{
	last_status = 0;
	last_type[0] = last_code[0] = '\0';
}

static enum prism_err
fail_invalid(struct request *req)
{
	return gw_error(req, 401, "authentication_error", "invalid_api_key", MSG_INVALID);
}

static enum prism_err
fail_store(struct request *req, const char *detail)
{
	enum prism_err err = gw_error(req, 503, "server_error", "store_unavailable",
				      "The gateway cannot reach its data store; try again shortly");
	log_error("rid=%s gateway auth: store: %s", req->request_id, detail);
	return err;
}

/* --- the key ------------------------------------------------------------------------------------------- */

static void
trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

bool
gw_request_key(const struct request *req, const char **key, size_t *len)
{
	const char *v = request_header(req, "authorization");
	if (v) {
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t')) {
			const char *k = v + 7;
			size_t n = strlen(k);
			trim(&k, &n);
			if (n) {
				*key = k;
				*len = n;
				return true;
			}
		}
	}
	static const char *const alt[] = { "x-api-key", "api-key" };
	for (size_t i = 0; i < sizeof alt / sizeof alt[0]; i++) {
		const char *k = request_header(req, alt[i]);
		if (!k)
			continue;
		size_t n = strlen(k);
		trim(&k, &n);
		if (n) {
			*key = k;
			*len = n;
			return true;
		}
	}
	return false;
}

/* --- the snapshot from the store ------------------------------------------------------------------------- */

static int64_t
limit_value(const json_t *doc, const char *field)
{
	json_t *v = json_object_get(json_object_get(doc, "rateLimit"), field);
	if (!json_is_number(v))
		return 0;
	double d = json_number_value(v);
	if (!(d > 0))
		return 0;
	return d >= 1e15 ? (int64_t)1e15 : (int64_t)d;
}

/* An expiry value: null/absent 0 (never); an ISO-8601 date or epoch ms; anything unreadable counts as
 * expired (fail closed) and is logged. */
static int64_t
expiry_ms(const json_t *v, const char *rid)
{
	if (!v || json_is_null(v))
		return 0;
	int64_t ms;
	if (json_is_string(v) && clock_parse_iso8601(json_string_value(v), &ms) == 0)
		return ms > 0 ? ms : 1;
	if (json_is_integer(v) && json_integer_value(v) > 0)
		return json_integer_value(v);
	log_warn("rid=%s gateway auth: unreadable key expiry; treating the key as expired", rid);
	return 1;
}

static int
policy_mode(const json_t *doc)
{
	const char *m = json_string_value(json_object_get(json_object_get(doc, "modelConfig"), "mode"));
	if (m && strcmp(m, "whitelist") == 0)
		return GW_POLICY_WHITELIST;
	if (m && strcmp(m, "blacklist") == 0)
		return GW_POLICY_BLACKLIST;
	return GW_POLICY_ALL;
}

static int
force_mode(const json_t *doc)
{
	const json_t *r = json_object_get(doc, "routing");
	const char *m = json_string_value(json_object_get(r, "forceAutoRouteMode"));
	if (!m)
		return json_is_true(json_object_get(r, "forceAutoRoute")) ? GW_FORCE_ALL : GW_FORCE_OFF;
	if (strcmp(m, "fim_only") == 0)
		return GW_FORCE_FIM_ONLY;
	if (strcmp(m, "smart") == 0)
		return GW_FORCE_SMART;
	if (strcmp(m, "all") == 0)
		return GW_FORCE_ALL;
	return GW_FORCE_OFF;
}

/* Fills the snapshot (all but epoch) from a tenant document for the key hash; false when the document does
 * not hold that hash after all (a stale apiKeyHashes) or its ids do not fit. */
static bool
snapshot_from_doc(const json_t *doc, const char *hex, struct tenant_snapshot *snap, const char *rid)
{
	const char *id = json_string_value(json_object_get(doc, "_id"));
	const char *slug = json_string_value(json_object_get(doc, "slug"));
	if (!id || !slug || strlen(id) >= sizeof snap->tenant_id || strlen(slug) >= sizeof snap->slug)
		return false;
	const json_t *entry = NULL, *k;
	size_t i;
	json_array_foreach(json_object_get(doc, "apiKeys"), i, k) {
		const char *h = json_string_value(json_object_get(k, "hash"));
		if (h && crypto_str_eq(h, hex)) {
			entry = k;
			break;
		}
	}
	const char *kid;
	if (entry) {
		kid = json_string_value(json_object_get(entry, "_id"));
		if (!kid || strlen(kid) >= sizeof snap->key_id)
			return false;
		snap->key_enabled = !json_is_false(json_object_get(entry, "enabled"));
		snap->key_expires_at_ms = expiry_ms(json_object_get(entry, "expiresAt"), rid);
	} else {
		const char *legacy = json_string_value(json_object_get(doc, "apiKeyHash"));
		if (!legacy || !crypto_str_eq(legacy, hex))
			return false;
		kid = id;       /* the synthetic key "legacy" */
		snap->key_enabled = !json_is_false(json_object_get(doc, "keyEnabled"));
		snap->key_expires_at_ms = expiry_ms(json_object_get(doc, "keyExpiresAt"), rid);
	}
	snprintf(snap->tenant_id, sizeof snap->tenant_id, "%s", id);
	snprintf(snap->slug, sizeof snap->slug, "%s", slug);
	snprintf(snap->key_id, sizeof snap->key_id, "%s", kid);
	snap->tenant_enabled = !json_is_false(json_object_get(doc, "active"));
	snap->rpm_limit = limit_value(doc, "requestsPerMinute");
	snap->tpm_limit = limit_value(doc, "tokensPerMinute");
	snap->model_policy_mode = policy_mode(doc);
	snap->routing_enabled = json_is_true(json_object_get(json_object_get(doc, "routing"), "enabled"));
	snap->routing_force_mode = force_mode(doc);
	return true;
}

/* Finds the tenant holding the key hash.  *doc (new reference) and the snapshot; PRISM_E_NOT_FOUND for an
 * unknown key; PRISM_E_STORE (detail in err) when the store failed. */
static enum prism_err
lookup(struct store *s, const char *hex, const char *slug, struct tenant_snapshot *snap, json_t **doc,
       const char *rid, char *err, size_t errlen)
{
	json_t *h = json_string(hex);
	struct store_cond conds[3] = {
		{ "apiKeyHashes", SOP_CONTAINS, h },
		{ "apiKeys.hash", SOP_EQ, h },
		{ "apiKeyHash", SOP_EQ, h },
	};
	bool mongo = strcmp(s->ops->name, "mongodb") == 0;
	enum prism_err rc = PRISM_E_NOT_FOUND;
	*doc = NULL;
	for (size_t c = 0; c < 3 && rc == PRISM_E_NOT_FOUND; c++) {
		if (c == 1 && !mongo)
			continue;
		struct store_query q = { .conds = &conds[c], .nconds = 1, .limit = 2 };
		json_t *docs = NULL;
		char *next = NULL;
		enum prism_err e = s->ops->find(s, COLL_TENANTS, &q, &docs, &next, err, errlen);
		free(next);
		if (e) {
			rc = PRISM_E_STORE;
			break;
		}
		size_t n = json_array_size(docs), pick = 0;
		if (n > 1) {
			/* Keys are unique across tenants when we write them; prefer the URL's tenant if not. */
			log_warn("rid=%s gateway auth: one API key belongs to several tenants; fix it in the admin API",
				 rid);
			for (size_t i = 0; slug && i < n; i++) {
				const char *ds = json_string_value(json_object_get(json_array_get(docs, i), "slug"));
				if (ds && strcmp(ds, slug) == 0)
					pick = i;
			}
		}
		if (n && snapshot_from_doc(json_array_get(docs, pick), hex, snap, rid)) {
			*doc = json_incref(json_array_get(docs, pick));
			rc = PRISM_OK;
		}
		json_decref(docs);
	}
	json_decref(h);
	return rc;
}

/* apiKeys[].lastUsedAt = now, at most once per GW_LAST_USED_EVERY_S per key and host: best effort, never
 * fails the request, and never loses another writer's change (the write names the version it read and is
 * skipped on a conflict).  doc: the tenant document when the caller has one (borrowed), else read here. */
static void
touch_last_used(struct request *req, struct store *s, const struct tenant_snapshot *snap, const json_t *doc)
{
	if (!s || strcmp(snap->key_id, snap->tenant_id) == 0)
		return;           /* the legacy key has no lastUsedAt (the original never kept one) */
	struct shm_segment *seg = shm_segment_current();
	if (seg) {
		char key[SHM_RL_KEY_MAX];
		struct ratelimit_result r;
		snprintf(key, sizeof key, "keyuse:%s", snap->key_id);
		if (ratelimit_hit(seg, key, 1, GW_LAST_USED_EVERY_S, 1, clock_monotonic_ms(), &r) || !r.allowed)
			return;
	}
	char err[256];
	json_t *own = NULL;
	if (!doc) {
		if (s->ops->get(s, COLL_TENANTS, snap->tenant_id, &own, err, sizeof err))
			return;
		doc = own;
	}
	json_t *copy = json_deep_copy(doc);
	json_t *k, *entry = NULL;
	size_t i;
	json_array_foreach(json_object_get(copy, "apiKeys"), i, k) {
		const char *kid = json_string_value(json_object_get(k, "_id"));
		if (kid && strcmp(kid, snap->key_id) == 0) {
			entry = k;
			break;
		}
	}
	json_t *v = json_object_get(copy, "__v");
	if (entry && json_is_integer(v)) {
		int64_t now = clock_realtime_ms();
		int64_t last;
		const char *prev = json_string_value(json_object_get(entry, "lastUsedAt"));
		if (!prev || clock_parse_iso8601(prev, &last) || now - last >= GW_LAST_USED_EVERY_S * 1000L) {
			char iso[32];
			clock_iso8601(now, iso, sizeof iso);
			json_object_set_new(entry, "lastUsedAt", json_string(iso));
			enum prism_err e = s->ops->update(s, COLL_TENANTS, snap->tenant_id, copy,
							  (long)json_integer_value(v), NULL, err, sizeof err);
			if (e && e != PRISM_E_CONFLICT)
				log_debug("rid=%s lastUsedAt not recorded: %s", req->request_id, err);
		}
	}
	json_decref(copy);
	json_decref(own);
}

/* --- authentication -------------------------------------------------------------------------------------- */

enum prism_err
gw_authenticate(struct request *req, const char *slug, struct gw_tenant *t)
{
	const char *key;
	size_t len;
	memset(t, 0, sizeof *t);
	if (slug)
		snprintf(req->tenant, sizeof req->tenant, "%s", slug);
	if (!gw_request_key(req, &key, &len))
		return gw_error(req, 401, "authentication_error", "missing_api_key", MSG_MISSING);
	return gw_authenticate_key(req, slug, key, len, t);
}

enum prism_err
gw_authenticate_key(struct request *req, const char *slug, const char *key, size_t len, struct gw_tenant *t)
{
	memset(t, 0, sizeof *t);
	if (slug)
		snprintf(req->tenant, sizeof req->tenant, "%s", slug);
	if (!key || !len)
		return gw_error(req, 401, "authentication_error", "missing_api_key", MSG_MISSING);
	if (len > GW_MAX_KEY)
		return fail_invalid(req);
	unsigned char raw[SHM_TC_HASH_LEN];
	crypto_sha256(key, len, raw);
	static const char hexd[] = "0123456789abcdef";
	for (size_t i = 0; i < SHM_TC_HASH_LEN; i++) {
		t->key_hash[2 * i] = hexd[raw[i] >> 4];
		t->key_hash[2 * i + 1] = hexd[raw[i] & 15];
	}
	t->key_hash[64] = '\0';

	struct shm_segment *seg = shm_segment_current();
	struct store *s = store_current();
	struct tenant_snapshot *snap = &t->snap;
	json_t *doc = NULL;
	enum prism_err rc;
	int64_t now = clock_monotonic_ms();
	enum tenantcache_result cr = seg ? tenantcache_get(seg, raw, now, TENANTCACHE_TTL_DEFAULT_MS, snap)
					 : TENANTCACHE_MISS;
	if (cr != TENANTCACHE_HIT) {
		int64_t epoch = snap->epoch;
		memset(snap, 0, sizeof *snap);
		snap->epoch = epoch;
		if (!s)
			return fail_store(req, "not connected");
		char err[256] = "";
		rc = lookup(s, t->key_hash, slug, snap, &doc, req->request_id, err, sizeof err);
		if (rc == PRISM_E_NOT_FOUND) {
			snprintf(req->errdetail, sizeof req->errdetail, "unknown API key");
			rc = fail_invalid(req);
			goto out;
		}
		if (rc) {
			rc = fail_store(req, err);
			goto out;
		}
		if (seg)
			tenantcache_put(seg, raw, snap, now);
	}
	if (slug && strcmp(snap->slug, slug) != 0) {
		rc = fail_invalid(req);
		goto out;
	}
	snprintf(req->tenant, sizeof req->tenant, "%s", snap->slug);
	if (!snap->tenant_enabled) {
		rc = gw_error(req, 403, "permission_error", "tenant_disabled", "Tenant '%s' is disabled", snap->slug);
		goto out;
	}
	if (!snap->key_enabled) {
		rc = gw_error(req, 401, "authentication_error", "key_disabled", "API key is disabled");
		goto out;
	}
	if (snap->key_expires_at_ms && clock_realtime_ms() >= snap->key_expires_at_ms) {
		rc = gw_error(req, 401, "authentication_error", "key_expired", "API key has expired");
		goto out;
	}
	touch_last_used(req, s, snap, doc);
	rc = PRISM_OK;
out:
	json_decref(doc);
	if (rc)
		memset(snap, 0, sizeof *snap);
	return rc;
}

/* The tenant documents of this process, shared read-only by its threads: a request reads no store at all
 * on the hot path, and keeps being served from the last copy while the store is down.  A copy is dropped
 * with every invalidation the shared tenant cache sees (an admin write on this host, a new store generation
 * from another) and after GW_TENANT_DOC_TTL_MS, like the provider documents. */
#define GW_TENANT_DOC_SLOTS 256
#define GW_TENANT_DOC_TTL_MS 30000L

struct tenant_doc_slot {
	char id[25];
	json_t *doc;                 /* defaults filled in; never changed once here */
	int64_t epoch, generation, at;
};

static pthread_mutex_t tdoc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tenant_doc_slot tdoc[GW_TENANT_DOC_SLOTS];

static struct tenant_doc_slot *
tdoc_slot(const char *id)
{
	uint32_t h = 2166136261u;    /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &tdoc[h % GW_TENANT_DOC_SLOTS];
}

/* The cached document of a tenant (a new reference), or NULL; stale = also one past its validity. */
static json_t *
tdoc_get(const char *id, const struct tenantcache_stats *st, int64_t now, bool stale)
{
	json_t *doc = NULL;
	pthread_mutex_lock(&tdoc_lock);
	struct tenant_doc_slot *sl = tdoc_slot(id);
	if (sl->doc && strcmp(sl->id, id) == 0 &&
	    (stale || (st->epoch == sl->epoch && st->generation == sl->generation && now - sl->at < GW_TENANT_DOC_TTL_MS)))
		doc = json_incref(sl->doc);
	pthread_mutex_unlock(&tdoc_lock);
	return doc;
}

static void
tdoc_put(const char *id, json_t *doc, const struct tenantcache_stats *st, int64_t now)
{
	pthread_mutex_lock(&tdoc_lock);
	struct tenant_doc_slot *sl = tdoc_slot(id);
	json_t *old = sl->doc;
	snprintf(sl->id, sizeof sl->id, "%s", id);
	sl->doc = json_incref(doc);
	sl->epoch = st->epoch;
	sl->generation = st->generation;
	sl->at = now;
	pthread_mutex_unlock(&tdoc_lock);
	json_decref(old);
}

enum prism_err
gw_tenant_load(struct request *req, struct gw_tenant *t)
{
	json_decref(t->doc);
	t->doc = NULL;
	struct shm_segment *seg = shm_segment_current();
	struct tenantcache_stats st = { 0 };
	if (seg)
		tenantcache_stats(seg, &st);
	int64_t now = clock_monotonic_ms();
	/* without the shared segment nothing tells this process about changes: read the store every time */
	json_t *doc = seg ? tdoc_get(t->snap.tenant_id, &st, now, false) : NULL;
	if (!doc) {
		struct store *s = store_current();
		char err[256] = "";
		enum prism_err e = s ? s->ops->get(s, COLL_TENANTS, t->snap.tenant_id, &doc, err, sizeof err) : PRISM_E_STORE;
		if (e == PRISM_E_NOT_FOUND)
			return fail_invalid(req);
		if (e) {
			/* the store is down: the last copy is better than refusing every request */
			if (!(doc = seg ? tdoc_get(t->snap.tenant_id, &st, now, true) : NULL))
				return fail_store(req, s ? err : "not connected");
			log_warn("rid=%s tenant %s: the store is unavailable (%s); using the cached document",
				 req->request_id, t->snap.slug, s ? err : "not connected");
		} else {
			tenants_fill_defaults(doc);
			if (seg)
				tdoc_put(t->snap.tenant_id, doc, &st, now);
		}
	}
	if (json_is_false(json_object_get(doc, "active"))) {
		json_decref(doc);
		return gw_error(req, 403, "permission_error", "tenant_disabled", "Tenant '%s' is disabled", t->snap.slug);
	}
	t->doc = doc;
	return PRISM_OK;
}

void
gw_tenant_free(struct gw_tenant *t)
{
	if (!t)
		return;
	json_decref(t->doc);
	t->doc = NULL;
}

/* --- limits -------------------------------------------------------------------------------------------- */

static void
count_refusal(void)
{
	struct shm_segment *seg = shm_segment_current();
	char labels[64];
	if (seg && metrics_labels(labels, sizeof labels, (const char *const[]){ "scope", "tenant", NULL }) == PRISM_OK)
		metrics_inc(seg, METRIC_RATE_LIMITED, metrics_label_id(seg, labels), 1);
}

static void
limit_headers(struct request *req, const struct ratelimit_result *r, long limit, bool retry)
{
	char rl[128], policy[64];
	if (ratelimit_headers(r, limit, GW_LIMIT_WINDOW_S, rl, sizeof rl, policy, sizeof policy) == PRISM_OK) {
		resp_header(req, "RateLimit", rl);
		resp_header(req, "RateLimit-Policy", policy);
	}
	if (retry) {
		char ra[24];
		snprintf(ra, sizeof ra, "%ld", r->retry_after_s > 0 ? r->retry_after_s : 1);
		resp_header(req, "Retry-After", ra);
	}
}

enum prism_err
gw_limits_check(struct request *req, const struct gw_tenant *t, long estimated_tokens)
{
	struct shm_segment *seg = shm_segment_current();
	if (!seg)
		return PRISM_OK;
	const struct tenant_snapshot *snap = &t->snap;
	char key[SHM_RL_KEY_MAX];
	struct ratelimit_result r;
	int64_t now = clock_monotonic_ms();
	if (snap->rpm_limit > 0) {
		long limit = (long)snap->rpm_limit;
		snprintf(key, sizeof key, "tenant:%s:rpm", snap->tenant_id);
		if (ratelimit_hit(seg, key, limit, GW_LIMIT_WINDOW_S, 1, now, &r)) {
			log_warn("rid=%s tenant rate limit: cannot count %s", req->request_id, key);
		} else {
			limit_headers(req, &r, limit, !r.allowed);
			if (!r.allowed) {
				count_refusal();
				return gw_error(req, 429, "rate_limit_error", "tenant_rate_limit_exceeded",
						"Rate limit exceeded for tenant '%s'. Limit: %ld req/min.", snap->slug, limit);
			}
		}
	}
	if (snap->tpm_limit > 0 && estimated_tokens > 0) {
		long limit = (long)snap->tpm_limit;
		snprintf(key, sizeof key, "tenant:%s:tpm", snap->tenant_id);
		if (ratelimit_hit(seg, key, limit, GW_LIMIT_WINDOW_S, estimated_tokens, now, &r)) {
			log_warn("rid=%s tenant token limit: cannot count %s", req->request_id, key);
		} else if (!r.allowed) {
			/* Beyond the whole limit waiting does not help: a permanent refusal, not a 429 that SDKs
			 * retry. */
			limit_headers(req, &r, limit, estimated_tokens <= limit);
			count_refusal();
			if (estimated_tokens > limit) {
				return gw_error(req, 400, "invalid_request_error", "tenant_token_limit_exceeded",
						"This request needs about %ld tokens, more than tenant '%s' may use in a "
						"minute (%ld tokens/min); lower max_tokens or shorten the input.",
						estimated_tokens, snap->slug, limit);
			}
			return gw_error(req, 429, "rate_limit_error", "tenant_token_limit_exceeded",
					"Token limit exceeded for tenant '%s'. Limit: %ld tokens/min.", snap->slug, limit);
		}
	}
	return PRISM_OK;
}

void
gw_limits_settle(const struct gw_tenant *t, long estimated_tokens, long real_tokens)
{
	struct shm_segment *seg = shm_segment_current();
	if (!seg || t->snap.tpm_limit <= 0 || real_tokens <= estimated_tokens)
		return;
	char key[SHM_RL_KEY_MAX];
	snprintf(key, sizeof key, "tenant:%s:tpm", t->snap.tenant_id);
	ratelimit_charge(seg, key, GW_LIMIT_WINDOW_S, real_tokens - (estimated_tokens > 0 ? estimated_tokens : 0),
			 clock_monotonic_ms(), NULL);
}

/* --- model policy ---------------------------------------------------------------------------------------- */

static bool
listed(const json_t *list, const char *provider_slug, const char *model)
{
	size_t i, n = provider_slug ? strlen(provider_slug) : 0;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *s = json_string_value(e);
		if (!s)
			continue;
		if (strcmp(s, model) == 0)
			return true;
		if (n && strncmp(s, provider_slug, n) == 0 && s[n] == '/' && strcmp(s + n + 1, model) == 0)
			return true;
	}
	return false;
}

bool
gw_model_allowed(const json_t *tenant_doc, const char *provider_slug, const char *model_id)
{
	const json_t *mc = json_object_get(tenant_doc, "modelConfig");
	const char *mode = json_string_value(json_object_get(mc, "mode"));
	const json_t *list = json_object_get(mc, "list");
	if (!mode || !model_id || json_array_size(list) == 0)
		return true;
	if (strcmp(mode, "whitelist") == 0)
		return listed(list, provider_slug, model_id);
	if (strcmp(mode, "blacklist") == 0)
		return !listed(list, provider_slug, model_id);
	return true;
}
