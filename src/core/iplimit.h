/* iplimit.h -- per-client-address request limits (login, admin API, gateway), exact across the pool.
 *
 * Counted in the shared-memory sliding-window limiter under "ip:<scope>:<address>" (IPv6 grouped by
 * ratelimit_ipv6_prefix).  Every limited response carries the IETF RateLimit and RateLimit-Policy fields;
 * a refused one is 429 with Retry-After, in the route's error shape.  Without a segment (CGI mode) nothing
 * is limited.  Thread-safe.
 */
#ifndef PRISM_IPLIMIT_H
#define PRISM_IPLIMIT_H

#include "core/request.h"

/* PRISM_OK, or PRISM_E_RATE_LIMITED with the headers set and the message in req->errdetail. */
enum prism_err iplimit_check(struct request *req);

#endif
