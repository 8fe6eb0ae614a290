/* auth.h -- admin authentication: login (local bcrypt, then LDAP), bearer-token checks, logout.
 *
 * auth_require runs in the front for every route that declares a permission: it verifies the token
 * (authtoken.h), re-reads the user (so deactivation, role changes and revocation act at once), checks the
 * role against the route's permission and fills req->user.  Errors: 401 {"error":"No token provided" |
 * "Invalid token" | "Token revoked" | "Account deactivated"}, 403 "Access denied. Required role: ...",
 * 503 when the store is down.
 */
#ifndef PRISM_ADMIN_AUTH_H
#define PRISM_ADMIN_AUTH_H

#include <jansson.h>

#include "core/request.h"
#include "store/store.h"

enum prism_err auth_require(struct request *req, unsigned perm);

/* Usernames are stored lower-cased and trimmed; PRISM_E_BAD_REQUEST (detail in req) when not acceptable:
 * 1..128 bytes of letters, digits and . _ @ + -. */
enum prism_err auth_username_normalise(struct request *req, const char *in, char *out, size_t outlen);
/* Password policy: 8..72 bytes (bcrypt reads no more; longer ones are refused, never truncated). */
enum prism_err auth_password_check(struct request *req, const char *field, const char *password);
/* Increments the user's token version (revoking its tokens); the new version goes to *tv (may be NULL). */
enum prism_err auth_revoke(struct request *req, struct store *s, const char *user_id, long *tv);
/* Issues a session token for the user document; *out malloc'd. */
enum prism_err auth_issue(struct request *req, const json_t *user, char **out, char expires[32]);
/* Re-checks the caller's own password (local users); 401 "Invalid password" when wrong. */
enum prism_err auth_verify_own_password(struct request *req, struct store *s, const char *password);
/* True when the request carries a valid re-authentication token for its user (X-Reauth-Token). */
bool auth_reauthenticated(struct request *req);

/* Handlers. */
enum prism_err auth_login(struct request *req);
enum prism_err auth_me(struct request *req);
enum prism_err auth_logout(struct request *req);
enum prism_err auth_change_password(struct request *req);
/* POST /api/prism/admin/system/verify-password: {password} -> {verified, reauthToken, expiresAt}. */
enum prism_err auth_verify_password(struct request *req);

#endif
