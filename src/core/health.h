/* health.h -- GET /health: liveness and readiness of this node. */
#ifndef PRISM_HEALTH_H
#define PRISM_HEALTH_H

#include "core/request.h"

enum prism_err health_get(struct request *req);

#endif
