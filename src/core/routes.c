/* routes.c -- the program's route table.
 *
 * Order matters only where two patterns match one path: the first wins.  Every route names the node roles
 * that serve it (DESIGN.md §2: full serves everything, control the admin API, worker the gateway).
 */
#include "config.h"
#include "core/router.h"

#include "analytics/prometheus.h"
#include "core/diag.h"
#include "core/health.h"

const struct route prism_routes[] = {
	{ "GET", "/health", health_get, RK_CORE, ROLES_ALL, RF_NO_LOG },
	{ "GET", "/metrics", prometheus_get, RK_CORE, ROLES_ALL, RF_NO_LOG },

	/* diagnostics (diag_endpoints = true) */
	{ "GET", "/_diag/sse", diag_sse, RK_CORE, ROLES_ALL, RF_DIAG },
	{ "GET", "/_diag/sleep", diag_sleep, RK_CORE, ROLES_ALL, RF_DIAG },
	{ "POST", "/_diag/echo", diag_echo, RK_CORE, ROLES_ALL, RF_DIAG },
	{ "POST", "/api/prism/_diag/echo", diag_echo, RK_ADMIN, ROLES_ADMIN, RF_DIAG },
	{ "POST", "/v1/_diag/echo", diag_echo, RK_GATEWAY, ROLES_GATEWAY, RF_DIAG },
};

const size_t prism_nroutes = sizeof prism_routes / sizeof prism_routes[0];
