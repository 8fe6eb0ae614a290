/* rbac.h -- the eight user roles, the role groups routes are declared with, and tenant scoping.
 *
 * Every admin route names the set of roles that may call it (struct route.perm, a bit mask over enum
 * user_role); the front checks it on the server before the handler runs, and the handler scopes every
 * tenant-bound query with rbac_tenant_allowed / rbac_tenant_filter for the tenant roles.  The matrix is
 * documented in prism-api(7) and tested route by route.  Pure functions; thread-safe.
 */
#ifndef PRISM_ADMIN_RBAC_H
#define PRISM_ADMIN_RBAC_H

#include <stdbool.h>

#include <jansson.h>

#include "core/request.h"

enum user_role {
	UR_ADMIN = 0, UR_MAINTAINER, UR_FINOPS, UR_AUDITOR, UR_TENANT_MAINTAINER, UR_TENANT_ADMIN,
	UR_TENANT_VIEWER, UR_CHAT_USER, UR_COUNT
};

#define PERM(r) (1u << (r))
#define PERM_PUBLIC       0u
#define PERM_ADMIN        PERM(UR_ADMIN)
#define PERM_ADMIN_MAINT  (PERM_ADMIN | PERM(UR_MAINTAINER))
#define PERM_READ_CONFIG  (PERM_ADMIN_MAINT | PERM(UR_AUDITOR))
#define PERM_VIEW_COSTS   (PERM_READ_CONFIG | PERM(UR_FINOPS))
#define PERM_TENANT_ROLES (PERM(UR_TENANT_MAINTAINER) | PERM(UR_TENANT_ADMIN) | PERM(UR_TENANT_VIEWER))
#define PERM_ANY_PANEL    (PERM_VIEW_COSTS | PERM_TENANT_ROLES)
#define PERM_ANY_JWT      (PERM_ANY_PANEL | PERM(UR_CHAT_USER))
/* The tenant portal: global configuration roles see every tenant, tenant roles their own. */
#define PERM_PORTAL       (PERM_ADMIN_MAINT | PERM_TENANT_ROLES)
/* Portal writes (model policy): not tenant-viewer. */
#define PERM_PORTAL_WRITE (PERM_ADMIN_MAINT | PERM(UR_TENANT_MAINTAINER) | PERM(UR_TENANT_ADMIN))

/* "admin", "tenant-viewer", ...; NULL for an out-of-range role. */
const char *rbac_role_name(int role);
/* -1 when name is not one of the eight. */
int rbac_role_parse(const char *name);
/* "admin, maintainer or auditor" for a 403 message. */
void rbac_describe(unsigned perm, char *out, size_t outlen);

/* True for the tenant-bound roles whose data access is limited to their assigned tenants. */
bool rbac_is_tenant_role(int role);
/* May the principal see/act on tenant `tenant_id`?  Global roles: always; tenant roles: only assigned. */
bool rbac_tenant_allowed(const struct principal *p, const char *tenant_id);
/* For queries: NULL when the principal is unrestricted, else a new array of its tenant ids (possibly
 * empty, which must match nothing). */
json_t *rbac_tenant_filter(const struct principal *p);

#endif
