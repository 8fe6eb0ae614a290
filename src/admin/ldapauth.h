/* ldapauth.h -- LDAP login for the admin API: search the user with a service account, bind as the user,
 * map the user's groups (memberOf) to a role.
 *
 * Settings come from the `ldapconfigs` document (ldapauth_settings_from_json); PUT /api/prism/admin/ldap
 * validates a document with ldapauth_validate_json first.  Differences from the original: the login name is
 * escaped per RFC 4515 and replaces EVERY {{username}} of the filter; a filter matching more than one entry
 * refuses the login; StartTLS, a CA file and both timeouts are configurable; group mappings may name any
 * of the eight roles (defaultRole still never "admin").
 *
 * Errors: PRISM_E_BAD_REQUEST for invalid documents (err names the field, e.g. "groupMapping[2].role: ...");
 * PRISM_E_UNAUTHORIZED when the directory does not know the user, the search is ambiguous or the password is
 * wrong (empty passwords are refused without asking the server); PRISM_E_UPSTREAM when the server cannot be
 * reached, the service bind or the search fails (err carries libldap's message, never a password);
 * PRISM_E_TIMEOUT when the connect or an operation timed out; PRISM_E_CONFIG when no URL is configured.
 *
 * Thread-safety: every call uses its own LDAP handles and keeps no state; safe from any thread.  Passwords
 * are never logged nor copied into err.  libldap writes to sockets with write(2): a server that closes the
 * connection mid-operation raises SIGPIPE, which the process must ignore (server.c does).
 */
#ifndef PRISM_LDAPAUTH_H
#define PRISM_LDAPAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "util/err.h"

#define LDAPAUTH_MAX_MAPPINGS       32
#define LDAPAUTH_MAX_URL            512       /* sizes include the terminating NUL */
#define LDAPAUTH_MAX_DN             512
#define LDAPAUTH_MAX_BIND_PASSWORD  256       /* plaintext */
#define LDAPAUTH_MAX_STORED_PASSWORD 1024     /* the document's bindPassword (encrypted or plaintext) */
#define LDAPAUTH_MAX_FILTER         512       /* the configured template */
#define LDAPAUTH_MAX_ROLE           32
#define LDAPAUTH_MAX_PATH           512
#define LDAPAUTH_MAX_USERNAME       256       /* longer login names are refused (UNAUTHORIZED) */
#define LDAPAUTH_MAX_PASSWORD       1024      /* the same for the user's password */
#define LDAPAUTH_DEFAULT_TIMEOUT_MS 5000
#define LDAPAUTH_MIN_TIMEOUT_MS     100
#define LDAPAUTH_MAX_TIMEOUT_MS     60000
#define LDAPAUTH_DEFAULT_FILTER     "(uid={{username}})"
#define LDAPAUTH_DEFAULT_ROLE       "chat-user"
#define LDAPAUTH_PLACEHOLDER        "{{username}}"

struct ldapauth_mapping {
	char group_dn[LDAPAUTH_MAX_DN];
	char role[LDAPAUTH_MAX_ROLE];
};

struct ldapauth_settings {
	bool enabled;
	char url[LDAPAUTH_MAX_URL];                     /* ldap://host[:port] or ldaps://host[:port] */
	char bind_dn[LDAPAUTH_MAX_DN];
	char bind_password[LDAPAUTH_MAX_BIND_PASSWORD]; /* plaintext; the caller decrypts */
	char search_base[LDAPAUTH_MAX_DN];
	char search_filter[LDAPAUTH_MAX_FILTER];        /* default "(uid={{username}})" */
	char default_role[LDAPAUTH_MAX_ROLE];
	struct ldapauth_mapping mapping[LDAPAUTH_MAX_MAPPINGS]; /* in order; the first match wins */
	size_t nmappings;
	bool tls_insecure;                              /* do not verify the server certificate */
	bool starttls;                                  /* only with ldap:// */
	char ca_file[LDAPAUTH_MAX_PATH];                /* PEM CA bundle; empty: the system default */
	long connect_timeout_ms;
	long op_timeout_ms;
};

/* Fills *out from an `ldapconfigs` document (borrowed): enabled, url, bindDn, searchBase, searchFilter,
 * defaultRole, groupMapping[{groupDn, role}], tlsInsecure, startTls, caFile, connectTimeoutMs, timeoutMs.
 * Missing or null fields take their defaults.  The document's bindPassword is the encrypted form and is
 * ignored; bind_password_plain (NULL: none) is used instead.  PRISM_E_BAD_REQUEST when the document fails
 * ldapauth_validate_json or the plaintext password is LDAPAUTH_MAX_BIND_PASSWORD bytes or longer; *out is
 * written either way (defaults and what was read), but use it only on PRISM_OK. */
enum prism_err ldapauth_settings_from_json(const json_t *doc, const char *bind_password_plain,
					   struct ldapauth_settings *out, char *err, size_t errlen);

/* Checks a complete `ldapconfigs` document as it is about to be stored (PUT merges the request into the
 * stored document first and passes the result): types and lengths of every known field, url scheme
 * (ldap:// or ldaps://, with a host), startTls not with ldaps://, searchFilter parenthesised, balanced and
 * containing {{username}}, defaultRole one of the seven non-admin roles, groupMapping at most
 * LDAPAUTH_MAX_MAPPINGS entries of {groupDn, role} with role one of all eight roles, timeouts integers in
 * [LDAPAUTH_MIN_TIMEOUT_MS, LDAPAUTH_MAX_TIMEOUT_MS], bindDn/searchBase/groupDn valid DNs, caFile an
 * absolute path, bindPassword a string (its plaintext limit is the caller's check before encrypting), and a
 * url when enabled is true.  Unknown fields (_id, timestamps) are ignored.  PRISM_OK or PRISM_E_BAD_REQUEST with the field named in err. */
enum prism_err ldapauth_validate_json(const json_t *doc, char *err, size_t errlen);

/* RFC 4515 escaping of an assertion value: * ( ) \ become \2a \28 \29 \5c; every other byte (UTF-8
 * included) passes through (RFC 4515's NUL -> \00 cannot arise: NUL ends a C string, and jansson refuses
 * \u0000 unless asked to allow it).  Writes at most outlen bytes, always NUL-terminated when outlen > 0 (out may be
 * NULL when outlen is 0); returns the length the whole result needs, without the NUL, like snprintf. */
size_t ldapauth_escape_filter(const char *in, char *out, size_t outlen);

/* The search filter: tmpl with every {{username}} replaced by the escaped username.  Same output contract
 * as ldapauth_escape_filter. */
size_t ldapauth_build_filter(const char *tmpl, const char *username, char *out, size_t outlen);

/* Authenticates username/password against the directory: the service bind (anonymous when bind_dn and
 * bind_password are both empty; one without the other is refused as UPSTREAM), a subtree search under
 * search_base with the built filter (size limit 2, only memberOf requested), then a simple bind as the
 * entry's DN on a fresh connection.  An empty password or login name, or one of LDAPAUTH_MAX_PASSWORD /
 * LDAPAUTH_MAX_USERNAME bytes or more, is UNAUTHORIZED without any connection; so are no entry and more
 * than one entry (logged as a warning), and a user bind refused with 49, 50, 53, 19 or 48.  On PRISM_OK
 * role_out holds the role (the first mapping whose groupDn equals, ignoring case, one of the entry's
 * memberOf values; else default_role) and dn_out the entry's DN (PRISM_E_UPSTREAM when it does not fit
 * dnlen).  role_out and dn_out are empty strings on failure. */
enum prism_err ldapauth_login(const struct ldapauth_settings *s, const char *username, const char *password,
			      char *role_out, size_t rolelen, char *dn_out, size_t dnlen, char *err,
			      size_t errlen);

/* Connects (StartTLS when configured) and binds with the service account only; for
 * POST /api/prism/admin/ldap/test. */
enum prism_err ldapauth_test_bind(const struct ldapauth_settings *s, char *err, size_t errlen);

#endif
