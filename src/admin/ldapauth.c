/* ldapauth.c -- LDAP login: service bind, search, user bind, group-to-role mapping. */
#include "config.h"

#include "admin/ldapauth.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <ldap.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Most of a server's diagnostic message that goes into err. */
#define LDAPAUTH_MAX_DIAG 200

static const char *const all_roles[] = {
	"admin", "maintainer", "finops", "auditor", "tenant-maintainer", "tenant-admin", "tenant-viewer",
	"chat-user",
};
#define NROLES (sizeof all_roles / sizeof all_roles[0])

static const char roles_text[] =
	"admin, maintainer, finops, auditor, tenant-maintainer, tenant-admin, tenant-viewer, chat-user";
static const char default_roles_text[] =
	"maintainer, finops, auditor, tenant-maintainer, tenant-admin, tenant-viewer, chat-user";

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
role_valid(const char *role, bool allow_admin)
{
	for (size_t i = allow_admin ? 0 : 1; i < NROLES; i++)
		if (strcmp(role, all_roles[i]) == 0)
			return true;
	return false;
}

/* --- the document ------------------------------------------------------------------------------------ */

/* A string field into out[outsize] (out NULL: only checked).  Missing or null leaves out untouched. */
static enum prism_err
get_string(const json_t *doc, const char *name, const char *key, char *out, size_t outsize, char *err,
	   size_t errlen)
{
	const json_t *v = json_object_get(doc, key);
	if (!v || json_is_null(v))
		return PRISM_OK;
	if (!json_is_string(v)) {
		set_err(err, errlen, "%s: must be a string", name);
		return PRISM_E_BAD_REQUEST;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n >= outsize) {
		set_err(err, errlen, "%s: longer than %zu bytes", name, outsize - 1);
		return PRISM_E_BAD_REQUEST;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			set_err(err, errlen, "%s: must not contain control characters", name);
			return PRISM_E_BAD_REQUEST;
		}
	}
	if (out)
		memcpy(out, s, n + 1);
	return PRISM_OK;
}

static enum prism_err
get_bool(const json_t *doc, const char *key, bool *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(doc, key);
	if (!v || json_is_null(v))
		return PRISM_OK;
	if (!json_is_boolean(v)) {
		set_err(err, errlen, "%s: must be true or false", key);
		return PRISM_E_BAD_REQUEST;
	}
	*out = json_is_true(v);
	return PRISM_OK;
}

/* Integers may arrive as doubles (the MongoDB store keeps JavaScript numbers as doubles). */
static enum prism_err
get_timeout(const json_t *doc, const char *key, long *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(doc, key);
	if (!v || json_is_null(v))
		return PRISM_OK;
	double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : -1;
	if (!(d >= LDAPAUTH_MIN_TIMEOUT_MS && d <= LDAPAUTH_MAX_TIMEOUT_MS) || d != (double)(long)d) {
		set_err(err, errlen, "%s: must be an integer between %d and %d (milliseconds)", key,
			LDAPAUTH_MIN_TIMEOUT_MS, LDAPAUTH_MAX_TIMEOUT_MS);
		return PRISM_E_BAD_REQUEST;
	}
	*out = (long)d;
	return PRISM_OK;
}

static enum prism_err
check_dn(const char *name, const char *dn, char *err, size_t errlen)
{
	LDAPDN parsed = NULL;
	if (!dn[0])
		return PRISM_OK;
	if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
		set_err(err, errlen, "%s: not a valid DN", name);
		return PRISM_E_BAD_REQUEST;
	}
	ldap_dnfree(parsed);
	return PRISM_OK;
}

static bool
is_ldaps(const char *url)
{
	return strncasecmp(url, "ldaps://", 8) == 0;
}

static enum prism_err
check_url(const char *url, char *err, size_t errlen)
{
	LDAPURLDesc *lud = NULL;
	if (strncasecmp(url, "ldap://", 7) != 0 && !is_ldaps(url)) {
		set_err(err, errlen, "url: must start with ldap:// or ldaps://");
		return PRISM_E_BAD_REQUEST;
	}
	/* libldap would take a space-separated list of URLs; we take one. */
	if (strpbrk(url, " \t")) {
		set_err(err, errlen, "url: must be a single URL without spaces");
		return PRISM_E_BAD_REQUEST;
	}
	if (ldap_url_parse(url, &lud) != LDAP_URL_SUCCESS) {
		set_err(err, errlen, "url: not a valid LDAP URL");
		return PRISM_E_BAD_REQUEST;
	}
	bool host = lud->lud_host && lud->lud_host[0];
	bool port_ok = lud->lud_port >= 0 && lud->lud_port <= 65535;
	ldap_free_urldesc(lud);
	if (!host) {
		set_err(err, errlen, "url: names no host");
		return PRISM_E_BAD_REQUEST;
	}
	if (!port_ok) {
		set_err(err, errlen, "url: not a valid LDAP URL (port)");
		return PRISM_E_BAD_REQUEST;
	}
	return PRISM_OK;
}

/* One parenthesised filter: "(" ... ")" with balanced parentheses, the outer pair enclosing everything.
 * Escaped parentheses in values are written \28 / \29, so every literal parenthesis is structure. */
static enum prism_err
check_filter(const char *f, char *err, size_t errlen)
{
	size_t n = strlen(f);
	if (!strstr(f, LDAPAUTH_PLACEHOLDER)) {
		set_err(err, errlen, "searchFilter: must contain %s", LDAPAUTH_PLACEHOLDER);
		return PRISM_E_BAD_REQUEST;
	}
	bool ok = n >= 2 && f[0] == '(' && f[n - 1] == ')';
	long depth = 0;
	for (size_t i = 0; ok && i < n; i++) {
		if (f[i] == '(')
			depth++;
		else if (f[i] == ')' && --depth == 0 && i != n - 1)
			ok = false;
		if (depth < 0)
			ok = false;
	}
	if (!ok || depth != 0) {
		set_err(err, errlen, "searchFilter: must be one parenthesised filter with balanced parentheses, "
			"e.g. (uid={{username}})");
		return PRISM_E_BAD_REQUEST;
	}
	return PRISM_OK;
}

static enum prism_err
parse_mappings(const json_t *doc, struct ldapauth_settings *out, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(doc, "groupMapping");
	enum prism_err e;
	if (!arr || json_is_null(arr))
		return PRISM_OK;
	if (!json_is_array(arr)) {
		set_err(err, errlen, "groupMapping: must be an array");
		return PRISM_E_BAD_REQUEST;
	}
	if (json_array_size(arr) > LDAPAUTH_MAX_MAPPINGS) {
		set_err(err, errlen, "groupMapping: at most %d entries", LDAPAUTH_MAX_MAPPINGS);
		return PRISM_E_BAD_REQUEST;
	}
	size_t i;
	const json_t *m;
	json_array_foreach(arr, i, m) {
		struct ldapauth_mapping *dst = &out->mapping[i];
		char name[64];
		dst->group_dn[0] = dst->role[0] = '\0';
		if (!json_is_object(m)) {
			set_err(err, errlen, "groupMapping[%zu]: must be an object {groupDn, role}", i);
			return PRISM_E_BAD_REQUEST;
		}
		snprintf(name, sizeof name, "groupMapping[%zu].groupDn", i);
		if ((e = get_string(m, name, "groupDn", dst->group_dn, sizeof dst->group_dn, err, errlen)) != PRISM_OK)
			return e;
		if (!dst->group_dn[0]) {
			set_err(err, errlen, "%s: required", name);
			return PRISM_E_BAD_REQUEST;
		}
		if ((e = check_dn(name, dst->group_dn, err, errlen)) != PRISM_OK)
			return e;
		snprintf(name, sizeof name, "groupMapping[%zu].role", i);
		const json_t *r = json_object_get(m, "role");
		if (!json_is_string(r) || !role_valid(json_string_value(r), true) ||
		    json_string_length(r) >= sizeof dst->role) {
			set_err(err, errlen, "%s: must be one of %s", name, roles_text);
			return PRISM_E_BAD_REQUEST;
		}
		snprintf(dst->role, sizeof dst->role, "%s", json_string_value(r));
		out->nmappings = i + 1;
	}
	return PRISM_OK;
}

/* The one parser behind validate and from_json: every check, every default. */
static enum prism_err
parse_doc(const json_t *doc, struct ldapauth_settings *out, char *err, size_t errlen)
{
	enum prism_err e;

	memset(out, 0, sizeof *out);
	snprintf(out->search_filter, sizeof out->search_filter, "%s", LDAPAUTH_DEFAULT_FILTER);
	snprintf(out->default_role, sizeof out->default_role, "%s", LDAPAUTH_DEFAULT_ROLE);
	out->connect_timeout_ms = LDAPAUTH_DEFAULT_TIMEOUT_MS;
	out->op_timeout_ms = LDAPAUTH_DEFAULT_TIMEOUT_MS;

	if (!json_is_object(doc)) {
		set_err(err, errlen, "LDAP configuration: must be a JSON object");
		return PRISM_E_BAD_REQUEST;
	}
	if ((e = get_bool(doc, "enabled", &out->enabled, err, errlen)) != PRISM_OK ||
	    (e = get_bool(doc, "tlsInsecure", &out->tls_insecure, err, errlen)) != PRISM_OK ||
	    (e = get_bool(doc, "startTls", &out->starttls, err, errlen)) != PRISM_OK)
		return e;
	if ((e = get_string(doc, "url", "url", out->url, sizeof out->url, err, errlen)) != PRISM_OK ||
	    (e = get_string(doc, "bindDn", "bindDn", out->bind_dn, sizeof out->bind_dn, err, errlen)) != PRISM_OK ||
	    (e = get_string(doc, "searchBase", "searchBase", out->search_base, sizeof out->search_base, err,
			    errlen)) != PRISM_OK ||
	    (e = get_string(doc, "searchFilter", "searchFilter", out->search_filter, sizeof out->search_filter,
			    err, errlen)) != PRISM_OK ||
	    (e = get_string(doc, "caFile", "caFile", out->ca_file, sizeof out->ca_file, err, errlen)) != PRISM_OK)
		return e;
	/* Stored encrypted, hence longer than the plaintext the caller checks against the same limit. */
	if ((e = get_string(doc, "bindPassword", "bindPassword", NULL, LDAPAUTH_MAX_STORED_PASSWORD, err,
			    errlen)) != PRISM_OK)
		return e;

	if (out->url[0] && (e = check_url(out->url, err, errlen)) != PRISM_OK)
		return e;
	if (out->enabled && !out->url[0]) {
		set_err(err, errlen, "url: required when enabled is true");
		return PRISM_E_BAD_REQUEST;
	}
	if (out->starttls && is_ldaps(out->url)) {
		set_err(err, errlen, "startTls: cannot be combined with an ldaps:// url (TLS is already on)");
		return PRISM_E_BAD_REQUEST;
	}
	if ((e = check_dn("bindDn", out->bind_dn, err, errlen)) != PRISM_OK ||
	    (e = check_dn("searchBase", out->search_base, err, errlen)) != PRISM_OK ||
	    (e = check_filter(out->search_filter, err, errlen)) != PRISM_OK)
		return e;
	if (out->ca_file[0] && out->ca_file[0] != '/') {
		set_err(err, errlen, "caFile: must be an absolute path");
		return PRISM_E_BAD_REQUEST;
	}

	const json_t *dr = json_object_get(doc, "defaultRole");
	if (dr && !json_is_null(dr)) {
		if (!json_is_string(dr) || json_string_length(dr) >= sizeof out->default_role ||
		    !role_valid(json_string_value(dr), false)) {
			set_err(err, errlen, "defaultRole: must be one of %s", default_roles_text);
			return PRISM_E_BAD_REQUEST;
		}
		snprintf(out->default_role, sizeof out->default_role, "%s", json_string_value(dr));
	}
	if ((e = parse_mappings(doc, out, err, errlen)) != PRISM_OK)
		return e;
	if ((e = get_timeout(doc, "connectTimeoutMs", &out->connect_timeout_ms, err, errlen)) != PRISM_OK ||
	    (e = get_timeout(doc, "timeoutMs", &out->op_timeout_ms, err, errlen)) != PRISM_OK)
		return e;
	return PRISM_OK;
}

enum prism_err
ldapauth_validate_json(const json_t *doc, char *err, size_t errlen)
{
	struct ldapauth_settings *scratch = xmalloc(sizeof *scratch);
	enum prism_err e = parse_doc(doc, scratch, err, errlen);
	free(scratch);
	return e;
}

enum prism_err
ldapauth_settings_from_json(const json_t *doc, const char *bind_password_plain, struct ldapauth_settings *out,
			    char *err, size_t errlen)
{
	enum prism_err e = parse_doc(doc, out, err, errlen);
	if (e != PRISM_OK)
		return e;
	if (bind_password_plain) {
		if (strlen(bind_password_plain) >= sizeof out->bind_password) {
			set_err(err, errlen, "bindPassword: longer than %zu bytes", sizeof out->bind_password - 1);
			return PRISM_E_BAD_REQUEST;
		}
		snprintf(out->bind_password, sizeof out->bind_password, "%s", bind_password_plain);
	}
	return PRISM_OK;
}

/* --- filters ------------------------------------------------------------------------------------------ */

size_t
ldapauth_escape_filter(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		char esc[4];
		size_t k = 1;
		switch (*p) {
		case '*': memcpy(esc, "\\2a", 3); k = 3; break;
		case '(': memcpy(esc, "\\28", 3); k = 3; break;
		case ')': memcpy(esc, "\\29", 3); k = 3; break;
		case '\\': memcpy(esc, "\\5c", 3); k = 3; break;
		default: esc[0] = *p; break;
		}
		for (size_t j = 0; j < k; j++, n++)
			if (outlen > 0 && n < outlen - 1)
				out[n] = esc[j];
	}
	if (outlen > 0)
		out[n < outlen - 1 ? n : outlen - 1] = '\0';
	return n;
}

size_t
ldapauth_build_filter(const char *tmpl, const char *username, char *out, size_t outlen)
{
	size_t esclen = ldapauth_escape_filter(username, NULL, 0);
	size_t phlen = strlen(LDAPAUTH_PLACEHOLDER);
	size_t n = 0;
	const char *p = tmpl;
	while (*p) {
		if (strncmp(p, LDAPAUTH_PLACEHOLDER, phlen) == 0) {
			if (outlen > 0 && n < outlen - 1)
				ldapauth_escape_filter(username, out + n, outlen - n);
			n += esclen;
			p += phlen;
		} else {
			if (outlen > 0 && n < outlen - 1)
				out[n] = *p;
			n++;
			p++;
		}
	}
	if (outlen > 0)
		out[n < outlen - 1 ? n : outlen - 1] = '\0';
	return n;
}

/* --- the connection ---------------------------------------------------------------------------------- */

/* Server text is outside text: printable ASCII only, bounded. */
static void
copy_diag(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	for (; in && *in && n + 1 < outlen; in++)
		out[n++] = ((unsigned char)*in >= 0x20 && (unsigned char)*in < 0x7f) ? *in : '?';
	out[n] = '\0';
}

/* "what: libldap message (code): server diagnostic hint". */
static void
set_ldap_err_hint(char *err, size_t errlen, LDAP *ld, const char *what, int rc, const char *hint)
{
	char *diag = NULL;
	char clean[LDAPAUTH_MAX_DIAG];
	clean[0] = '\0';
	if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
		/* libldap's GnuTLS layer leaves this placeholder for every handshake failure */
		if (strcmp(diag, "(unknown error code)") != 0)
			copy_diag(diag, clean, sizeof clean);
		ldap_memfree(diag);
	}
	set_err(err, errlen, "%s: %s (%d)%s%s%s", what, ldap_err2string(rc), rc, clean[0] ? ": " : "", clean,
		hint ? hint : "");
}

static void
set_ldap_err(char *err, size_t errlen, LDAP *ld, const char *what, int rc)
{
	set_ldap_err_hint(err, errlen, ld, what, rc, NULL);
}

/* Connect errors do not say whether the network timeout fired; the clock does. */
static enum prism_err
map_failure(int rc, int64_t started_ms, long timeout_ms)
{
	if (rc == LDAP_TIMEOUT || rc == LDAP_TIMELIMIT_EXCEEDED)
		return PRISM_E_TIMEOUT;
	if ((rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) && clock_monotonic_ms() - started_ms >= timeout_ms)
		return PRISM_E_TIMEOUT;
	return PRISM_E_UPSTREAM;
}

static struct timeval
ms_to_tv(long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	return tv;
}

/* Waits up to the connect timeout for the TCP connect libldap started without blocking.  Checking here,
 * before any operation, also keeps libldap from writing to a refused socket (SIGPIPE). */
static enum prism_err
conn_wait(LDAP *ld, const struct ldapauth_settings *s, int64_t t0, char *err, size_t errlen)
{
	int fd = -1;
	if (ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) {
		set_err(err, errlen, "LDAP connect to %s: no socket", s->url);
		return PRISM_E_UPSTREAM;
	}
	for (;;) {
		int64_t left = s->connect_timeout_ms - (clock_monotonic_ms() - t0);
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n = poll(&p, 1, left > 0 ? (int)left : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			set_err(err, errlen, "LDAP connect to %s: timed out after %ld ms", s->url, s->connect_timeout_ms);
			return PRISM_E_TIMEOUT;
		}
		int soerr = 0;
		socklen_t len = sizeof soerr;
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			soerr = errno;
		if (soerr != 0) {
			set_err(err, errlen, "LDAP connect to %s: %s: %s", s->url, ldap_err2string(LDAP_SERVER_DOWN),
				strerror(soerr));
			return PRISM_E_UPSTREAM;
		}
		return PRISM_OK;
	}
}

/* A fresh, connected handle with protocol, timeouts and TLS settings; StartTLS done when configured.
 *
 * The connect is asynchronous (LDAP_OPT_CONNECT_ASYNC) for two reasons: libldap 2.5 bounds a TLS handshake
 * by the network timeout only in that mode (otherwise a server that accepts TCP but never speaks TLS makes
 * it spin on EAGAIN forever), and in that mode it would wait for the TCP connect with the operation
 * timeout, so conn_wait applies the connect timeout itself.  With a host name of several addresses only the
 * first is tried. */
static enum prism_err
conn_open(const struct ldapauth_settings *s, LDAP **out, char *err, size_t errlen)
{
	LDAP *ld = NULL;
	enum prism_err e = PRISM_E_UPSTREAM;
	int rc;
	int64_t t0;
	char what[LDAPAUTH_MAX_URL + 32];
	const char *tls_hint = " (TCP connect, TLS handshake or certificate check failed)";

	*out = NULL;
	if (!s->url[0]) {
		set_err(err, errlen, "LDAP: no url configured");
		return PRISM_E_CONFIG;
	}
	if ((rc = ldap_initialize(&ld, s->url)) != LDAP_SUCCESS) {
		set_err(err, errlen, "LDAP url %s: %s (%d)", s->url, ldap_err2string(rc), rc);
		return PRISM_E_UPSTREAM;
	}
	int version = LDAP_VERSION3;
	struct timeval net = ms_to_tv(s->connect_timeout_ms);
	struct timeval op = ms_to_tv(s->op_timeout_ms);
	if ((rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_CONNECT_ASYNC, LDAP_OPT_ON)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op)) != LDAP_OPT_SUCCESS) {
		set_err(err, errlen, "LDAP: setting the connection options failed (%d)", rc);
		goto fail;
	}
	if (is_ldaps(s->url) || s->starttls) {
		/* Per-handle TLS options take effect only with a new context built after them. */
		int require = s->tls_insecure ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
		int is_server = 0;
		if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS ||
		    (s->ca_file[0] && ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, s->ca_file) != LDAP_OPT_SUCCESS) ||
		    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server) != LDAP_OPT_SUCCESS) {
			if (s->ca_file[0])
				set_err(err, errlen, "LDAP TLS setup failed: is caFile %s a readable PEM file?", s->ca_file);
			else
				set_err(err, errlen, "LDAP TLS setup failed");
			goto fail;
		}
	}
	/* ldaps:// may do its handshake here already, bounded by the network timeout. */
	t0 = clock_monotonic_ms();
	if ((rc = ldap_connect(ld)) != LDAP_SUCCESS) {
		e = map_failure(rc, t0, s->connect_timeout_ms);
		snprintf(what, sizeof what, "LDAP connect to %s", s->url);
		set_ldap_err_hint(err, errlen, ld, what, rc, is_ldaps(s->url) ? tls_hint : NULL);
		goto fail;
	}
	if ((e = conn_wait(ld, s, t0, err, errlen)) != PRISM_OK)
		goto fail;
	if (s->starttls) {
		t0 = clock_monotonic_ms();
		if ((rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
			e = map_failure(rc, t0, s->connect_timeout_ms);
			snprintf(what, sizeof what, "StartTLS with %s", s->url);
			set_ldap_err_hint(err, errlen, ld, what, rc,
					  rc == LDAP_CONNECT_ERROR ? " (TLS handshake or certificate check failed)" : NULL);
			goto fail;
		}
	}
	*out = ld;
	return PRISM_OK;
fail:
	ldap_unbind_ext_s(ld, NULL, NULL);
	return e;
}

enum bind_kind { BIND_SERVICE, BIND_USER };

/* Simple bind on ld.  dn and pw both empty is an anonymous bind. */
static enum prism_err
conn_bind(LDAP *ld, const struct ldapauth_settings *s, enum bind_kind kind, const char *dn, const char *pw,
	  char *err, size_t errlen)
{
	struct berval cred = { .bv_len = strlen(pw), .bv_val = (char *)pw };
	int64_t t0 = clock_monotonic_ms();
	int rc = ldap_sasl_bind_s(ld, dn[0] ? dn : NULL, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc == LDAP_SUCCESS)
		return PRISM_OK;
	/* libldap may have deferred an ldaps:// handshake to this first operation: a connect failure. */
	enum prism_err e = map_failure(rc, t0, s->connect_timeout_ms);
	/* The directory answered and refused the user: wrong password, locked, expired or disabled account
	 * (49 with password policy, 19 for a lockout, 53 for disabled accounts on some servers).  Anything else
	 * (e.g. 13, TLS required) is the configuration's problem and stays UPSTREAM for the log. */
	if (kind == BIND_USER && (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INSUFFICIENT_ACCESS ||
				  rc == LDAP_UNWILLING_TO_PERFORM || rc == LDAP_CONSTRAINT_VIOLATION ||
				  rc == LDAP_INAPPROPRIATE_AUTH)) {
		set_ldap_err(err, errlen, ld, "LDAP user bind refused", rc);
		return PRISM_E_UNAUTHORIZED;
	}
	set_ldap_err(err, errlen, ld, kind == BIND_SERVICE ? "LDAP service bind failed" : "LDAP user bind failed",
		     rc);
	return e;
}

/* Connection plus the service bind, shared by login and test_bind. */
static enum prism_err
conn_service(const struct ldapauth_settings *s, LDAP **out, char *err, size_t errlen)
{
	enum prism_err e;
	*out = NULL;
	/* Half a credential is a configuration mistake; a DN with an empty password would be an
	 * "unauthenticated bind" that some servers accept as anonymous. */
	if (s->bind_dn[0] && !s->bind_password[0]) {
		set_err(err, errlen, "LDAP service bind: bindDn is set but the bind password is empty");
		return PRISM_E_UPSTREAM;
	}
	if (!s->bind_dn[0] && s->bind_password[0]) {
		set_err(err, errlen, "LDAP service bind: a bind password is set but bindDn is empty");
		return PRISM_E_UPSTREAM;
	}
	if ((e = conn_open(s, out, err, errlen)) != PRISM_OK)
		return e;
	if ((e = conn_bind(*out, s, BIND_SERVICE, s->bind_dn, s->bind_password, err, errlen)) != PRISM_OK) {
		ldap_unbind_ext_s(*out, NULL, NULL);
		*out = NULL;
	}
	return e;
}

enum prism_err
ldapauth_test_bind(const struct ldapauth_settings *s, char *err, size_t errlen)
{
	LDAP *ld = NULL;
	enum prism_err e = conn_service(s, &ld, err, errlen);
	if (ld)
		ldap_unbind_ext_s(ld, NULL, NULL);
	return e;
}

/* The first mapping (in configured order) whose group is among the entry's memberOf values. */
static const char *
pick_role(const struct ldapauth_settings *s, struct berval **member_of)
{
	for (size_t i = 0; i < s->nmappings; i++) {
		size_t n = strlen(s->mapping[i].group_dn);
		for (size_t j = 0; member_of && member_of[j]; j++) {
			const struct berval *v = member_of[j];
			if (v->bv_len == n && strncasecmp(v->bv_val, s->mapping[i].group_dn, n) == 0)
				return s->mapping[i].role;
		}
	}
	return s->default_role;
}

enum prism_err
ldapauth_login(const struct ldapauth_settings *s, const char *username, const char *password, char *role_out,
	       size_t rolelen, char *dn_out, size_t dnlen, char *err, size_t errlen)
{
	LDAP *ld = NULL;
	LDAPMessage *res = NULL;
	char *filter = NULL;
	char *dn = NULL;
	struct berval **member_of = NULL;
	char *attrs[] = { "memberOf", NULL };
	enum prism_err e;
	int rc;

	if (rolelen > 0)
		role_out[0] = '\0';
	if (dnlen > 0)
		dn_out[0] = '\0';
	if (!username || !username[0] || strlen(username) >= LDAPAUTH_MAX_USERNAME) {
		set_err(err, errlen, "LDAP login: empty or over-long login name");
		return PRISM_E_UNAUTHORIZED;
	}
	/* A DN with an empty password is an "unauthenticated bind" that some servers report as success. */
	if (!password || !password[0] || strlen(password) >= LDAPAUTH_MAX_PASSWORD) {
		set_err(err, errlen, "LDAP login: empty or over-long password");
		return PRISM_E_UNAUTHORIZED;
	}

	if ((e = conn_service(s, &ld, err, errlen)) != PRISM_OK)
		goto out;

	size_t flen = ldapauth_build_filter(s->search_filter, username, NULL, 0);
	filter = xmalloc(flen + 1);
	ldapauth_build_filter(s->search_filter, username, filter, flen + 1);
	struct timeval tv = ms_to_tv(s->op_timeout_ms);
	int64_t t0 = clock_monotonic_ms();
	/* Size limit 2: one entry is the user, two mean the filter is ambiguous. */
	rc = ldap_search_ext_s(ld, s->search_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, &tv, 2, &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		e = map_failure(rc, t0, s->op_timeout_ms);
		set_ldap_err(err, errlen, ld, "LDAP search failed", rc);
		goto out;
	}
	int n = ldap_count_entries(ld, res);
	if (n == 0) {
		set_err(err, errlen, "LDAP login: no entry matches the login name");
		e = PRISM_E_UNAUTHORIZED;
		goto out;
	}
	if (n > 1 || rc == LDAP_SIZELIMIT_EXCEEDED) {
		log_warn("LDAP login refused: the search filter matches more than one entry for login name '%s' "
			 "(make searchFilter unique)", username);
		set_err(err, errlen, "LDAP login: the search filter matches more than one entry");
		e = PRISM_E_UNAUTHORIZED;
		goto out;
	}
	LDAPMessage *entry = ldap_first_entry(ld, res);
	dn = entry ? ldap_get_dn(ld, entry) : NULL;
	if (!dn || !dn[0]) {
		set_err(err, errlen, "LDAP login: the entry found has no DN");
		e = PRISM_E_UNAUTHORIZED;
		goto out;
	}
	if (strlen(dn) >= dnlen) {
		set_err(err, errlen, "LDAP login: the user's DN is longer than %zu bytes", dnlen ? dnlen - 1 : 0);
		e = PRISM_E_UPSTREAM;
		goto out;
	}
	member_of = ldap_get_values_len(ld, entry, "memberOf");
	const char *role = pick_role(s, member_of);
	if (strlen(role) >= rolelen) {
		set_err(err, errlen, "LDAP login: role buffer too small");
		e = PRISM_E_INTERNAL;
		goto out;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	ld = NULL;

	/* The user's bind gets a fresh handle: no state of the service session carries over. */
	if ((e = conn_open(s, &ld, err, errlen)) != PRISM_OK)
		goto out;
	if ((e = conn_bind(ld, s, BIND_USER, dn, password, err, errlen)) != PRISM_OK)
		goto out;
	snprintf(role_out, rolelen, "%s", role);
	snprintf(dn_out, dnlen, "%s", dn);
	e = PRISM_OK;
out:
	if (member_of)
		ldap_value_free_len(member_of);
	if (dn)
		ldap_memfree(dn);
	if (res)
		ldap_msgfree(res);
	if (ld)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(filter);
	return e;
}
