/* diag.h -- deployment diagnostics, served only with diag_endpoints = true.
 *
 * They let an operator (and the integration tests) verify what the web server in front does:
 *   GET  /_diag/sse?events=N&interval_ms=M  N events, one every M ms: do they arrive one by one?
 *   GET  /_diag/sleep?ms=M                  a slow request: does a reload or stop let it finish?
 *   POST /_diag/echo (also under /api/prism/ and /v1/)
 *                                           what arrived: parsed body, client address, request id and
 *                                           headers (credentials removed), in that namespace's error shape.
 *   POST /_diag/analytics                   queues one synthetic RequestLog with the analytics writer
 *                                           (202): a store outage and the spool can be tested without
 *                                           a provider.
 */
#ifndef PRISM_DIAG_H
#define PRISM_DIAG_H

#include "core/request.h"

enum prism_err diag_sse(struct request *req);
enum prism_err diag_sleep(struct request *req);
enum prism_err diag_echo(struct request *req);
enum prism_err diag_analytics(struct request *req);

#endif
