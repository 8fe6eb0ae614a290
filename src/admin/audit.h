/* audit.h -- the configuration audit trail (collection configchanges).
 *
 * Every configuration write records who, when, what and a field-by-field diff of before and after.
 * Secrets never reach the trail: any field whose name marks a secret (apiKey, password, secret, token,
 * hash, encrypted, ...) is recorded as "(changed)"/"(set)"/"(unset)" instead of its value.  Recording never
 * fails the write it describes: a store error is logged.  Records older than audit_retention are deleted
 * by audit_expire, which the server runs periodically.
 *
 * Targets: tenant, api-key, provider, model, category, user, ldap, setup, log-config, system, rule-set.
 */
#ifndef PRISM_ADMIN_AUDIT_H
#define PRISM_ADMIN_AUDIT_H

#include <stdbool.h>

#include <jansson.h>

#include "core/request.h"
#include "store/store.h"

#define AUDIT_MAX_CHANGES 200          /* fields recorded per entry; more are summarised */

/* action: "create", "update", "delete" (or a verb like "rotate", "login"); before/after borrowed, may be NULL. */
void audit_record(struct request *req, const char *action, const char *target, const char *target_id,
		  const char *target_name, const json_t *before, const json_t *after);
/* The diff alone (for tests): a new array of {field, before, after}. */
json_t *audit_diff(const json_t *before, const json_t *after);
/* True when a field of this name holds a secret. */
bool audit_is_secret_field(const char *name);
/* Deletes entries older than retention_ms; the count goes to *deleted. */
enum prism_err audit_expire(struct store *s, long retention_ms, long *deleted, char *err, size_t errlen);

/* GET /api/prism/admin/audit (and the original's /dashboard/config-changes). */
enum prism_err audit_list(struct request *req);

#endif
