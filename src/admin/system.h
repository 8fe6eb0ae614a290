/* system.h -- /api/prism/admin/system/...: settings export and import, the log configuration, the circuit
 * breakers; and the re-encryption of stored secrets behind `prismctl rotate-encryption-key`.
 *
 * Export and import move the whole configuration, so both need more than a session token: the request
 * must carry a re-authentication token (X-Reauth-Token, from POST .../system/verify-password, valid for
 * AUTHTOKEN_REAUTH_S) or, on import, the caller's password in the document.  An export leaves every secret
 * out (provider credentials, the LDAP bind password, tenant key hashes, webhook secrets, chat access
 * tokens, any `enc:` value) unless ?includeSecrets=true; then each secret is in its `enc:` form, readable
 * only with the same encryption_key.  An import puts back, for every document it replaces, the secrets the
 * file leaves out (so export -> import keeps the credentials), encrypts plaintext credentials on the way
 * in, and refuses `enc:` values this installation cannot decrypt.  Users are never imported.
 *
 * Thread-safe (per-request state only).
 */
#ifndef PRISM_ADMIN_SYSTEM_H
#define PRISM_ADMIN_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/request.h"
#include "shm/segment.h"
#include "store/store.h"

/* Handlers. */
enum prism_err system_export(struct request *req);
enum prism_err system_import(struct request *req);
enum prism_err system_log_config_get(struct request *req);
enum prism_err system_log_config_put(struct request *req);
enum prism_err system_breakers(struct request *req);
enum prism_err system_breakers_reset(struct request *req);

/* Closes the breaker of provider `id` (a reset of one breaker); false when the segment does not track it. */
bool system_breaker_close(struct shm_segment *seg, const char *id);

/* --- key rotation ---------------------------------------------------------------------------------------- */

/* Per collection: what a rotation found. */
struct system_rotate_count {
	const char *collection;          /* static */
	long documents;                  /* scanned */
	long changed;                    /* documents written (or that would be, with dry_run) */
	long rotated;                    /* values re-encrypted under the current key */
	long current;                    /* values already readable with the current key: left as they are */
	long unreadable;                 /* values readable with neither key (or malformed): left, reported */
};

/* Called for every value that no key opens: collection, document id, dotted path. */
typedef void (*system_rotate_report)(void *arg, const char *collection, const char *id, const char *path,
				     const char *why);

#define SYSTEM_ROTATE_COLLECTIONS 7

/* Re-encrypts every `enc:` string stored in the collections that hold secrets (providers, ldapconfigs,
 * systemconfigs, tenants, webhooks, chatconfigs, requestlogs) under `key`, reading them with `key` or
 * `previous`.  Each document is written with a version check (a concurrent writer wins; the document is
 * read again).  Idempotent and safe to interrupt: a value already readable with `key` is not touched.
 * counts gets SYSTEM_ROTATE_COLLECTIONS entries.  PRISM_E_STORE (detail in err) when the store fails. */
enum prism_err system_rotate_secrets(struct store *s, const char *key, const char *previous, bool dry_run,
				     struct system_rotate_count counts[SYSTEM_ROTATE_COLLECTIONS],
				     system_rotate_report report, void *arg, char *err, size_t errlen);

#endif
