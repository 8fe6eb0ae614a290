/* rdata.h -- the routing data of a process: the routing categories and the rule sets, read from the store,
 * compiled once and shared read-only by the process's threads.
 *
 * A snapshot (struct rdata) is immutable and reference-counted: a request takes one (rdata_get) and uses
 * it to the end even when a newer one replaces it meanwhile.  It is rebuilt after any invalidation of the
 * shared tenant cache (an admin write on this host, a new store generation from another host) or after
 * RDATA_TTL_MS, like the provider documents (gateway/pipeline.h), by one thread while the others go on with the
 * previous snapshot.  The rule set of a tenant is resolved
 * per tenant inside the snapshot (rdata_ruleset_for) -- never a single slot shared by all tenants, which was
 * the original's defect (reference/original-gateway.md §17, routing 1).
 *
 * With no categories stored (setup not completed) the built-in catalog is used; with no rule set for the
 * tenant and no global default, the built-in default rule set (ruleset_builtin).  A stored rule set that
 * does not compile (it was written by another program) is left out and logged once per snapshot.
 */
#ifndef PRISM_ROUTING_RDATA_H
#define PRISM_ROUTING_RDATA_H

#include <stdatomic.h>
#include <stddef.h>

#include <jansson.h>

#include "routing/routing.h"
#include "routing/ruleset.h"
#include "util/err.h"

#define RDATA_TTL_MS 30000L
#define RDATA_MAX_CATEGORIES 5000
#define RDATA_MAX_RULESETS 10000      /* = ROUTING_MAX_RULESETS of the admin API */

struct rdata {
	struct route_category *cats;       /* in `order`, then key */
	size_t ncats;
	struct ruleset **sets;             /* compiled stored rule sets */
	size_t nsets;
	const struct ruleset *global;      /* the stored global default, or NULL */
	json_t *cat_docs;                  /* owns the strings of cats */
	const char **examples;             /* owns the example arrays of cats */
	atomic_int refs;
};

/* A snapshot built from category and rule-set documents (either may be NULL or empty: see above).  Never
 * fails; release with rdata_put. */
struct rdata *rdata_build(const json_t *cat_docs, const json_t *ruleset_docs);

/* The current snapshot of this process, loading it from the store when needed.  PRISM_E_STORE (detail in
 * err) when the store cannot be read and no snapshot exists yet; a stale snapshot is used while the store
 * is down. */
enum prism_err rdata_get(struct rdata **out, char *err, size_t errlen);
void rdata_put(struct rdata *rd);

/* The tenant's own rule set, else the global default, else the built-in one; never NULL. */
const struct ruleset *rdata_ruleset_for(const struct rdata *rd, const char *tenant_id);

/* The category with this key, or NULL. */
const struct route_category *rdata_category(const struct rdata *rd, const char *key);

#endif
