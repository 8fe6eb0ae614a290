/* health.c -- see health.h. */
#include "config.h"
#include "core/health.h"

#include "core/response.h"
#include "util/clock.h"
#include "util/config.h"

enum prism_err
health_get(struct request *req)
{
	char ts[40];
	clock_iso8601(clock_realtime_ms(), ts, sizeof ts);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "status", "ok", "role", config_role_name(req->cfg->role),
				 "version", PACKAGE_VERSION, "timestamp", ts);
	resp_json(req, 200, body);
	return PRISM_OK;
}
