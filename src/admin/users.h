/* users.h -- user accounts of the admin API (/api/prism/admin/users/...).
 *
 * A user document (collection users): username (lower-cased, trimmed, unique), passwordHash (bcrypt; absent
 * for directory users), role (one of the eight), tenants [tenant ids], source local|ldap, active, lastLogin,
 * tokenVersion (tokens carrying another version are refused, admin/auth.c).  No response carries
 * passwordHash or tokenVersion.
 *
 * Rules enforced here, after the route's role check (admin or maintainer for writes):
 *   - only an admin may create, modify, delete or revoke an admin account, or grant the admin role;
 *   - nobody changes their own role, deactivates or deletes themselves;
 *   - the last active admin can be neither deleted, demoted nor deactivated: checked before the write and
 *     re-checked after it (the change is rolled back when a concurrent change left no active admin);
 *   - a password, role or tenant-assignment change, a deactivation and revoke-sessions bump tokenVersion in
 *     the same update, so the user's existing tokens stop working at once;
 *   - directory (LDAP) users have no local password; their role is re-derived from the group mapping at
 *     every LDAP login.
 * Every write is audited (target "user") and followed by admin_changed().  Thread-safe.
 */
#ifndef PRISM_ADMIN_USERS_H
#define PRISM_ADMIN_USERS_H

#include "core/request.h"

#define USERS_MAX_LIST 100000     /* documents a list reads; more is reported as an internal error */

enum prism_err users_list(struct request *req);
enum prism_err users_create(struct request *req);
enum prism_err users_get(struct request *req);
enum prism_err users_update(struct request *req);
enum prism_err users_delete(struct request *req);
enum prism_err users_revoke(struct request *req);

#endif
