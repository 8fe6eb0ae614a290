/* catalog.h -- the built-in cost tiers, routing categories and preset profiles.
 *
 * These are the facts the original program seeds: the 8 tiers in ascending order, the built-in routing
 * categories (key, name, tier, examples fed to the classifier, the target system prompt) and the preset
 * profiles of the setup wizard.  Everything here is immutable static data: safe to read from any thread,
 * never freed.  The *_json functions return new references the caller must json_decref.
 */
#ifndef PRISM_CATALOG_H
#define PRISM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CATALOG_NTIERS 8

/* micro, minimal, low, medium, advanced, high, ultra, critical: the index is the tier's rank. */
extern const char *const catalog_tiers[CATALOG_NTIERS];
/* Index 0..7 of a tier name (exact, case-sensitive), -1 when unknown or NULL. */
int catalog_tier_index(const char *tier);

struct catalog_category {
	int order;                           /* display and seeding order, strictly increasing in the table */
	const char *key, *name, *tier;
	bool requires_vision;
	const char *description;             /* NULL when the seed has none */
	const char *const *examples;         /* NULL-terminated */
	const char *system_prompt;           /* the seeded targetSystemPrompt; "" when none */
};

/* In seeding order (ascending `order`). */
extern const struct catalog_category catalog_categories[];
extern const size_t catalog_ncategories;

/* The built-in category with this key, or NULL. */
const struct catalog_category *catalog_category_find(const char *key);

/* A new RoutingCategory document as the seeding creates it:
 * {key, name, description ("" when none), costTier, examples, requiresVision, targetSystemPrompt,
 *  isBuiltIn: true, order}. */
json_t *catalog_category_json(const struct catalog_category *c);

struct catalog_preset {
	const char *id, *name, *description, *color, *icon;
	const char *const *categories;       /* NULL-terminated category keys; empty = all categories */
};

extern const struct catalog_preset catalog_presets[];
extern const size_t catalog_npresets;

/* A new array of {id, name, description, color, icon, categories: [...]}, as
 * GET /api/prism/admin/categories/presets returns it. */
json_t *catalog_presets_json(void);

#endif
