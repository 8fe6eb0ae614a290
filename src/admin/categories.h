/* categories.h -- routing categories (/api/prism/admin/categories/...): CRUD, the built-in seed, the preset
 * profiles and their application.
 *
 * Every write is audited (target "category") and followed by admin_changed().  Thread-safe (per-request
 * state only).
 */
#ifndef PRISM_ADMIN_CATEGORIES_H
#define PRISM_ADMIN_CATEGORIES_H

#include "core/request.h"
#include "store/store.h"

/* Field limits of a category. */
#define CATEGORY_MAX_KEY 64
#define CATEGORY_MAX_NAME 200
#define CATEGORY_MAX_DESCRIPTION 4096
#define CATEGORY_MAX_EXAMPLES 50
#define CATEGORY_MAX_EXAMPLE 2000
#define CATEGORY_MAX_MODEL 256
#define CATEGORY_MAX_PROMPT 16384
#define CATEGORY_MAX_ORDER 1000000
/* Collection bound for listing and seeding (the built-ins are 54). */
#define CATEGORY_MAX_COUNT 5000

/* Inserts every missing built-in category and brings existing built-ins' name, tier, order and (when
 * the seed has one) description back to the seed; a stored targetSystemPrompt is replaced only when
 * empty; examples and models are never touched.  Counts go to *created and *updated. */
enum prism_err categories_seed(struct request *req, struct store *s, long *created, long *updated);

/* Like categories_seed, but every existing built-in also gets the seed's examples, description,
 * targetSystemPrompt and requiresVision back (defaultModel and fallbackModel are kept). */
enum prism_err categories_reset_builtins(struct request *req, struct store *s, long *created, long *updated);

/* The route handlers. */
enum prism_err categories_list(struct request *req);
enum prism_err categories_create(struct request *req);
enum prism_err categories_update(struct request *req);
enum prism_err categories_delete(struct request *req);
enum prism_err categories_seed_handler(struct request *req);
enum prism_err categories_reset(struct request *req);
enum prism_err categories_presets(struct request *req);
enum prism_err categories_apply_preset(struct request *req);

#endif
