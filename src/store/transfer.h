/* transfer.h -- configuration export and import (prismctl export/import, the admin API's system routes).
 *
 * The file format is the original program's settings export:
 *   {"_meta":{"type":"model-prism-settings-export","version","exportedAt"}, "providers":[...], "tenants":[...],
 *    "routingCategories":[...], "routingRuleSets":[...], "webhooks":[...], "quotas":[...], "experiments":[...],
 *    "logConfig":{}|null, "chatConfig":{}|null, "ldapConfig":{}|null, "systemConfig":[{key,value}...]|null,
 *    "users":[...] (without password hashes; informational, never imported)}
 * Stored credentials stay as they are stored (encrypted `enc:` strings): an export is only useful with the
 * same encryption key, and never contains a plaintext provider secret it did not already hold.
 *
 * Import validates the whole file first (shape, types, required fields, ids, unique keys within the file
 * and against the store) and changes nothing when anything is wrong.  Then it writes every document,
 * upserting by _id; if a write fails midway, the documents already written are put back as they were
 * (the store has no transactions on MongoDB), so an import is all or nothing.
 */
#ifndef PRISM_TRANSFER_H
#define PRISM_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "store/store.h"

#define TRANSFER_TYPE "model-prism-settings-export"

/* *out: the export document (new reference). */
enum prism_err transfer_export(struct store *s, json_t **out, char *err, size_t errlen);
/* Validates and (unless dry_run) applies `in`.  *summary: {"imported":{...counts...}} (new reference).
 * PRISM_E_BAD_REQUEST with every problem found in err (one per line) when the file is invalid. */
enum prism_err transfer_import(struct store *s, json_t *in, bool dry_run, json_t **summary, char *err,
			       size_t errlen);

#endif
