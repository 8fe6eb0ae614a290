/* limits.h -- every hard limit on outside data, in one place.
 *
 * Each buffer that holds data from a client, an upstream or a file has a maximum named here; code never
 * uses a bare number for such a bound.  Values that an operator may tune are only the defaults of config
 * keys (see config.c); the hard ceilings below are not configurable.
 */
#ifndef PRISM_LIMITS_H
#define PRISM_LIMITS_H

/* Request line and headers (FastCGI params). */
#define PRISM_MAX_URI            8192      /* REQUEST_URI, including the query */
#define PRISM_MAX_HEADERS        100       /* distinct HTTP_* params kept per request */
#define PRISM_MAX_HEADER_VALUE   16384     /* longer header values are dropped */
#define PRISM_MAX_PATH_SEGMENTS  32        /* route patterns and request paths */
#define PRISM_MAX_ROUTE_PARAMS   8
#define PRISM_MAX_PARAM_LEN      256       /* one decoded :param */

/* Request body: the configurable max_body_size is clamped to this. */
#define PRISM_BODY_HARD_MAX      (256L * 1024 * 1024)
#define PRISM_BODY_DEFAULT       (4L * 1024 * 1024)
/* Beyond max_body_size, how much of an unread body is read and dropped before the connection is cut. */
#define PRISM_DRAIN_EXTRA        (16L * 1024 * 1024)

/* Response headers the handler may set. */
#define PRISM_MAX_RESP_HEADERS   32
#define PRISM_MAX_RESP_HEADER_LEN 4096

/* Request ids: incoming X-Request-Id longer than this, or with other characters than [A-Za-z0-9._:-],
 * is replaced by a generated one. */
#define PRISM_MAX_REQUEST_ID     64

/* Configuration files. */
#define PRISM_MAX_CONFIG_LINE    4096
#define PRISM_MAX_CONFIG_FILE    (1024 * 1024)
#define PRISM_MAX_SECRET_FILE    4096
#define PRISM_MAX_LIST_ITEMS     64        /* cors_origins, trusted_proxies */

/* Human-readable error detail kept per request (never sent verbatim to clients). */
#define PRISM_MAX_ERRDETAIL      512

/* One log line. */
#define PRISM_MAX_LOG_LINE       2048

/* Admin accounts and tokens. */
#define PRISM_MAX_USERNAME       128
#define PRISM_MAX_USER_TENANTS   64        /* tenants one user can be assigned */
#define PRISM_MAX_TOKEN          4096      /* an Authorization bearer token */

/* Pool sizes. */
#define PRISM_MAX_PROCESSES      256
#define PRISM_MAX_THREADS        1024

#endif
