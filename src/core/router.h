/* router.h -- the static route table and path matching.
 *
 * A route is (method, pattern, handler, kind, roles, flags).  Patterns are '/'-separated segments where
 * ":name" captures one non-empty segment (percent-decoded into the request).  The first route whose method
 * and pattern match wins; a path that matches only under other methods gives 405 with the Allow list.
 * Routes that the node role does not serve, or that are switched off (diagnostics), do not exist: 404.
 * The table is immutable; matching is thread-safe.
 */
#ifndef PRISM_ROUTER_H
#define PRISM_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/request.h"
#include "util/err.h"

typedef enum prism_err (*route_handler)(struct request *req);

#define ROLES_ALL      0x7u
#define ROLES_ADMIN    ((1u << ROLE_FULL) | (1u << ROLE_CONTROL))
#define ROLES_GATEWAY  ((1u << ROLE_FULL) | (1u << ROLE_WORKER))

#define RF_DIAG      0x1u    /* only with diag_endpoints = true */
#define RF_NO_LOG    0x2u    /* not in the access log (health probes) */
#define RF_LOGIN     0x4u    /* counted against ratelimit_login instead of the admin limit */
#define RF_PRESETUP  0x8u    /* an admin route that answers before the initial setup is complete */

struct route {
	const char *method;
	const char *pattern;
	route_handler handler;
	enum route_kind kind;
	unsigned roles;           /* bit (1 << ROLE_x) for each node role that serves it */
	unsigned flags;
	unsigned perm;            /* user roles allowed (admin/rbac.h PERM_*); 0 = no authentication */
};

/* The program's table (routes.c). */
extern const struct route prism_routes[];
extern const size_t prism_nroutes;

struct route_match {
	const struct route *route;     /* NULL when none matched the method */
	char allow[96];                /* "GET, HEAD, POST" for a 405 */
};

/* Matches req->method and req->path against table; fills req's params.  PRISM_OK with m->route set,
 * PRISM_E_NOT_FOUND, or PRISM_E_METHOD with m->allow.  OPTIONS matches any path that exists (CORS
 * preflight) and reports the allowed methods in m->allow; HEAD matches GET routes. */
enum prism_err router_match(const struct route *table, size_t n, struct request *req, struct route_match *m);
/* The error shape for a path no route matched: gateway prefixes → RK_GATEWAY, else RK_ADMIN. */
enum route_kind router_path_kind(const char *path);

#endif
