/* authtoken.h -- the admin API's bearer tokens: HS256 JWTs signed with jwt_secret.
 *
 * Claims follow the original program (id, username, role, tenants, iat, exp) so its web UI keeps
 * working, plus "tv", the user's token version: a password change, role change, deactivation or logout
 * bumps the version stored on the user, which revokes every token issued before.  "purpose" separates
 * session tokens from the short-lived re-authentication tokens that guard settings export and import.
 *
 * libjwt checks neither the algorithm nor the expiry (reference/platform-notes.md §2): authtoken_verify
 * requires alg HS256, a well-formed signature under a non-empty key, iat and exp present, exp in the future
 * and iat not in the future beyond a small skew.  Thread-safe.
 */
#ifndef PRISM_ADMIN_AUTHTOKEN_H
#define PRISM_ADMIN_AUTHTOKEN_H

#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

#define AUTHTOKEN_SKEW_S 60            /* tolerated clock difference for iat */
#define AUTHTOKEN_REAUTH_S 300         /* lifetime of a re-authentication token */

struct authtoken_claims {
	char id[25];
	char username[129];
	char role[32];
	long token_version;
	char purpose[16];                  /* "" for a session token, "reauth" */
	int64_t iat, exp;                  /* seconds since the epoch */
};

/* Signs a token for the claims (iat = now, exp = now + lifetime_s); tenants is borrowed (array of ids,
 * may be NULL).  *out malloc'd. */
enum prism_err authtoken_issue(const char *secret, const struct authtoken_claims *c, const json_t *tenants,
			       long lifetime_s, char **out);
/* Verifies token and fills *c.  PRISM_E_UNAUTHORIZED for anything wrong (detail in err for the log). */
enum prism_err authtoken_verify(const char *secret, const char *token, int64_t now_s, struct authtoken_claims *c,
				char *err, size_t errlen);

#endif
