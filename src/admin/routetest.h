/* routetest.h -- POST /api/prism/admin/routing/test-route (the whole routing decision as a dry run, with
 * its step-by-step trace) and POST .../test-suites/:id/run (every case of a suite through the same
 * decision, stored as a TestRun).  Thread-safe. */
#ifndef PRISM_ADMIN_ROUTETEST_H
#define PRISM_ADMIN_ROUTETEST_H

#include "core/request.h"

enum prism_err routetest_handler(struct request *req);
enum prism_err routetest_suite_run(struct request *req);

#endif
