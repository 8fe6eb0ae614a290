/* ldapadmin.h -- the LDAP settings of the admin API (/api/prism/admin/ldap, admin only).
 *
 * One `ldapconfigs` document (the first by _id; a new one gets the fixed id LDAPADMIN_CONFIG_ID so two
 * concurrent first saves cannot create two).  bindPassword is stored encrypted (util/crypto.h "enc:") and
 * answered as "***" when set.  PUT merges the known fields of the body into the stored document and
 * validates the result with ldapauth_validate_json; in the body an empty string or "***" keeps the stored
 * password and null clears it.  POST /test binds with the service account using the body's settings over
 * the stored ones; the stored password is used only when url and bindDn are the stored ones, so it is never
 * sent to another server.  Writes are audited (target "ldap", secrets masked).  Thread-safe.
 */
#ifndef PRISM_ADMIN_LDAPADMIN_H
#define PRISM_ADMIN_LDAPADMIN_H

#include "core/request.h"

#define LDAPADMIN_CONFIG_ID "00000000000000000000000b"

enum prism_err ldapadmin_get(struct request *req);
enum prism_err ldapadmin_put(struct request *req);
enum prism_err ldapadmin_test(struct request *req);

#endif
