/* setup.h -- the first-run setup: status, the first admin account, completion, and the gate that keeps
 * the rest of the admin API closed (503 setupRequired) until setup is complete.
 *
 * Setup is complete when a `setups` document has completed = true (the original's rule, so its database
 * counts as set up).  The first admin can be created only while no user exists at all, atomically: the
 * claim is a `setups` document with a fixed id, so two concurrent attempts cannot both succeed.
 * Completion needs that admin's token, creates the default tenant with a random key (shown once) and
 * seeds the built-in routing categories.
 */
#ifndef PRISM_ADMIN_SETUP_H
#define PRISM_ADMIN_SETUP_H

#include <stdbool.h>

#include "core/request.h"
#include "store/store.h"

#define SETUP_CLAIM_ID "00000000000000000000000a"

/* 503 setupRequired unless setup is complete; a positive answer is remembered by the process. */
enum prism_err setup_gate(struct request *req);
enum prism_err setup_is_complete(struct store *s, bool *complete, char *err, size_t errlen);
/* For tests: forget the remembered answer. */
void setup_forget(void);

enum prism_err setup_status(struct request *req);
enum prism_err setup_admin(struct request *req);
enum prism_err setup_complete(struct request *req);

#endif
