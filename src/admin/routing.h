/* routing.h -- the routing admin API (/api/prism/admin/routing/...): rule sets (CRUD, set-default,
 * seed-defaults), the routing benchmark over past requests, and test suites (CRUD).
 *
 * Every write is audited (target "rule-set" / "test-suite") and followed by admin_changed(), which makes
 * every process of every host drop its routing data.  Thread-safe (per-request state only).
 */
#ifndef PRISM_ADMIN_ROUTING_H
#define PRISM_ADMIN_ROUTING_H

#include "core/request.h"
#include "store/store.h"

#define ROUTING_MAX_RULESETS 10000      /* rule sets read by one listing */
#define ROUTING_BENCH_MAX_DAYS 365
#define ROUTING_BENCH_MAX_LIMIT 2000    /* request logs one benchmark simulates */
#define ROUTING_BENCH_MAX_CHANGES 100   /* changed decisions it lists */
#define SUITE_MAX_COUNT 10000           /* test suites read by one listing */
#define SUITE_MAX_NAME 200
#define SUITE_MAX_DESCRIPTION 4096
#define SUITE_MAX_CATEGORY 4096         /* the comma-separated category scope */
#define SUITE_MAX_CASES 500
#define SUITE_MAX_PROMPT 100000         /* bytes of a case's prompt or system prompt */
#define SUITE_MAX_EXPECTED_CATEGORY 64
#define SUITE_MAX_TAGS 20
#define SUITE_MAX_TAG 64
#define SUITE_RUNS_LISTED 20

/* Stores the default rule set (ruleset_default_doc) when no rule set is the global default; *created
 * tells whether it did.  The copy is protected (isDefault) only when no rule set is.  Used by setup
 * completion and POST rule-sets/seed-defaults. */
enum prism_err routing_seed_default(struct request *req, struct store *s, bool *created);

enum prism_err routing_rulesets_list(struct request *req);
enum prism_err routing_ruleset_get(struct request *req);
enum prism_err routing_ruleset_create(struct request *req);
enum prism_err routing_ruleset_update(struct request *req);
enum prism_err routing_ruleset_delete(struct request *req);
enum prism_err routing_ruleset_set_default(struct request *req);
enum prism_err routing_ruleset_seed_defaults(struct request *req);

enum prism_err routing_benchmark(struct request *req);

enum prism_err routing_suites_list(struct request *req);
enum prism_err routing_suite_get(struct request *req);
enum prism_err routing_suite_create(struct request *req);
enum prism_err routing_suite_update(struct request *req);
enum prism_err routing_suite_delete(struct request *req);
enum prism_err routing_suite_runs(struct request *req);

#endif
