/* health.c -- see health.h. */
#include "config.h"
#include "core/health.h"

#include "core/response.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/log.h"

/* 200 {"status":"ok",...} when the store answers; 503 {"status":"db_not_ready",...} while it does not (the
 * reason goes to the log, not to an unauthenticated client). */
enum prism_err
health_get(struct request *req)
{
	char ts[40], err[512] = "";
	clock_iso8601(clock_realtime_ms(), ts, sizeof ts);
	struct store *s = store_current();
	bool ready = s && s->ops->ping(s, err, sizeof err) == PRISM_OK;
	if (!ready && err[0])
		log_warn("health: store not ready: %s", err);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "status", ready ? "ok" : "db_not_ready", "role",
				 config_role_name(req->cfg->role), "version", PACKAGE_VERSION, "timestamp", ts, "store",
				 *req->cfg->mongo_uri ? "mongodb" : "sqlite");
	resp_json(req, ready ? 200 : 503, body);
	return PRISM_OK;
}
