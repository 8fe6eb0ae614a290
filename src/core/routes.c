/* routes.c -- the program's route table.
 *
 * Order matters only where two patterns match one path: the first wins (so fixed segments such as
 * /providers/models/all come before /providers/:id).  Every route names the node roles that serve it
 * (DESIGN.md §2: full serves everything, control the admin API, worker the gateway) and, for the admin
 * API, the user roles allowed to call it (admin/rbac.h; 0 = no authentication).  The permission matrix in
 * prism-api(7) is this table; tests/integration/rbac.sh walks it route by route.
 */
#include "config.h"
#include "core/router.h"

#include "admin/audit.h"
#include "admin/auth.h"
#include "admin/rbac.h"
#include "admin/setup.h"
#include "analytics/prometheus.h"
#include "core/diag.h"
#include "core/health.h"
#include "admin/users.h"
#include "admin/categories.h"
#include "admin/models.h"
#include "admin/ldapadmin.h"
#include "admin/system.h"
#include "admin/providers.h"
#include "admin/tenants.h"
#include "admin/portal.h"
#include "gateway/gwinfo.h"
#include "gateway/pipeline.h"
#include "admin/routing.h"
#include "admin/routetest.h"
/* @@includes@@ */

#define ADM RK_ADMIN, ROLES_ADMIN

const struct route prism_routes[] = {
	{ "GET", "/health", health_get, RK_CORE, ROLES_ALL, RF_NO_LOG, PERM_PUBLIC },
	{ "GET", "/metrics", prometheus_get, RK_CORE, ROLES_ALL, RF_NO_LOG, PERM_PUBLIC },

	/* setup and sessions: answer before the setup is complete */
	{ "GET", "/api/prism/setup/status", setup_status, ADM, RF_PRESETUP, PERM_PUBLIC },
	{ "POST", "/api/prism/setup/admin", setup_admin, ADM, RF_PRESETUP | RF_LOGIN, PERM_PUBLIC },
	{ "POST", "/api/prism/setup/complete", setup_complete, ADM, RF_PRESETUP, PERM_ADMIN },
	{ "POST", "/api/prism/auth/login", auth_login, ADM, RF_PRESETUP | RF_LOGIN, PERM_PUBLIC },
	{ "GET", "/api/prism/auth/me", auth_me, ADM, RF_PRESETUP, PERM_ANY_JWT },
	{ "POST", "/api/prism/auth/logout", auth_logout, ADM, RF_PRESETUP, PERM_ANY_JWT },
	{ "POST", "/api/prism/auth/change-password", auth_change_password, ADM, RF_PRESETUP | RF_LOGIN, PERM_ANY_JWT },

	/* audit trail */
	{ "GET", "/api/prism/admin/audit", audit_list, ADM, 0, PERM_ANY_PANEL },
	{ "GET", "/api/prism/admin/dashboard/config-changes", audit_list, ADM, 0, PERM_ANY_PANEL },

	{ "GET", "/api/prism/admin/users", users_list, ADM, 0, PERM_READ_CONFIG },
	{ "POST", "/api/prism/admin/users", users_create, ADM, 0, PERM_ADMIN },
	{ "GET", "/api/prism/admin/users/:id", users_get, ADM, 0, PERM_READ_CONFIG },
	{ "PUT", "/api/prism/admin/users/:id", users_update, ADM, 0, PERM_ADMIN },
	{ "DELETE", "/api/prism/admin/users/:id", users_delete, ADM, 0, PERM_ADMIN },
	{ "POST", "/api/prism/admin/users/:id/revoke-sessions", users_revoke, ADM, 0, PERM_ADMIN },
	/* @@users@@ */
	{ "GET", "/api/prism/admin/ldap", ldapadmin_get, ADM, 0, PERM_ADMIN },
	{ "PUT", "/api/prism/admin/ldap", ldapadmin_put, ADM, 0, PERM_ADMIN },
	{ "POST", "/api/prism/admin/ldap/test", ldapadmin_test, ADM, 0, PERM_ADMIN },
	/* @@ldap@@ */
	{ "GET", "/api/prism/admin/providers", providers_list, ADM, 0, PERM_READ_CONFIG },
	{ "POST", "/api/prism/admin/providers", providers_create, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/providers/models/all", providers_models_all, ADM, 0, PERM_READ_CONFIG },
	{ "GET", "/api/prism/admin/providers/models/suggest", providers_models_suggest, ADM, 0, PERM_READ_CONFIG },
	{ "POST", "/api/prism/admin/providers/models/reorder-tier", providers_reorder_tier, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/providers/reorder", providers_reorder, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/providers/:id", providers_get, ADM, 0, PERM_READ_CONFIG },
	{ "PUT", "/api/prism/admin/providers/:id", providers_update, ADM, 0, PERM_ADMIN_MAINT },
	{ "DELETE", "/api/prism/admin/providers/:id", providers_delete, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/providers/:id/test", providers_test, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/providers/:id/check", providers_check, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/providers/:id/discover", providers_discover, ADM, 0, PERM_ADMIN_MAINT },
	{ "PATCH", "/api/prism/admin/providers/:id/models/:modelId", providers_patch_model, ADM, 0, PERM_ADMIN_MAINT },
	/* @@providers@@ */
	{ "GET", "/api/prism/admin/tenants", tenants_list, ADM, 0, PERM_READ_CONFIG },
	{ "POST", "/api/prism/admin/tenants", tenants_create, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/tenants/default/add-provider", tenants_default_add_provider, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/tenants/:id", tenants_get, ADM, 0, PERM_READ_CONFIG },
	{ "PUT", "/api/prism/admin/tenants/:id", tenants_update, ADM, 0, PERM_ADMIN_MAINT },
	{ "DELETE", "/api/prism/admin/tenants/:id", tenants_delete, ADM, 0, PERM_ADMIN },
	{ "POST", "/api/prism/admin/tenants/:id/rotate-key", tenants_rotate_key, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/tenants/:id/set-key", tenants_set_key, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/tenants/:id/keys", tenants_keys_list, ADM, 0, PERM_READ_CONFIG },
	{ "POST", "/api/prism/admin/tenants/:id/keys", tenants_keys_create, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/tenants/:id/keys/custom", tenants_keys_custom, ADM, 0, PERM_ADMIN_MAINT },
	{ "PATCH", "/api/prism/admin/tenants/:id/keys/:keyId", tenants_keys_patch, ADM, 0, PERM_ADMIN_MAINT },
	{ "DELETE", "/api/prism/admin/tenants/:id/keys/:keyId", tenants_keys_delete, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/tenants/:id/keys/:keyId/rotate", tenants_keys_rotate, ADM, 0, PERM_ADMIN_MAINT },
	/* @@tenants@@ */
	{ "GET", "/api/prism/tenant-portal/mine", portal_mine, ADM, 0, PERM_PORTAL },
	{ "GET", "/api/prism/tenant-portal/:id", portal_get, ADM, 0, PERM_PORTAL },
	{ "PUT", "/api/prism/tenant-portal/:id/model-config", portal_model_config, ADM, 0, PERM_PORTAL_WRITE },
	{ "GET", "/api/prism/tenant-portal/:id/models", portal_models, ADM, 0, PERM_PORTAL },
	/* @@portal@@ */
	{ "GET", "/api/prism/admin/categories", categories_list, ADM, 0, PERM_VIEW_COSTS },
	{ "POST", "/api/prism/admin/categories", categories_create, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/categories/seed", categories_seed_handler, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/categories/reset-defaults", categories_reset, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/categories/presets", categories_presets, ADM, 0, PERM_VIEW_COSTS },
	{ "POST", "/api/prism/admin/categories/apply-preset", categories_apply_preset, ADM, 0, PERM_ADMIN_MAINT },
	{ "PUT", "/api/prism/admin/categories/:id", categories_update, ADM, 0, PERM_ADMIN_MAINT },
	{ "DELETE", "/api/prism/admin/categories/:id", categories_delete, ADM, 0, PERM_ADMIN_MAINT },
	/* @@categories@@ */
	{ "GET", "/api/prism/admin/models/registry", models_registry, ADM, 0, PERM_READ_CONFIG },
	{ "GET", "/api/prism/admin/models/prices", models_prices, ADM, 0, PERM_VIEW_COSTS },
	{ "GET", "/api/prism/admin/models/lookup", models_lookup, ADM, 0, PERM_READ_CONFIG },
	{ "GET", "/api/prism/admin/models/enrichment", models_enrichment, ADM, 0, PERM_READ_CONFIG },
	{ "POST", "/api/prism/admin/models/enrichment/refresh", models_enrichment_refresh, ADM, 0, PERM_ADMIN_MAINT },
	/* @@models@@ */
	{ "POST", "/api/prism/admin/system/verify-password", auth_verify_password, ADM, RF_LOGIN, PERM_ADMIN },
	{ "GET", "/api/prism/admin/system/export-settings", system_export, ADM, 0, PERM_ADMIN },
	{ "POST", "/api/prism/admin/system/import-settings", system_import, ADM, RF_LOGIN, PERM_ADMIN },
	{ "GET", "/api/prism/admin/system/log-config", system_log_config_get, ADM, 0, PERM_VIEW_COSTS },
	{ "PUT", "/api/prism/admin/system/log-config", system_log_config_put, ADM, 0, PERM_ADMIN },
	{ "GET", "/api/prism/admin/system/circuit-breaker", system_breakers, ADM, 0, PERM_VIEW_COSTS },
	{ "POST", "/api/prism/admin/system/circuit-breaker/reset", system_breakers_reset, ADM, 0, PERM_ADMIN_MAINT },
	/* @@system@@ */
	{ "GET", "/api/prism/admin/routing/rule-sets", routing_rulesets_list, ADM, 0, PERM_VIEW_COSTS },
	{ "POST", "/api/prism/admin/routing/rule-sets", routing_ruleset_create, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/routing/rule-sets/seed-defaults", routing_ruleset_seed_defaults, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/routing/rule-sets/:id", routing_ruleset_get, ADM, 0, PERM_VIEW_COSTS },
	{ "PUT", "/api/prism/admin/routing/rule-sets/:id", routing_ruleset_update, ADM, 0, PERM_ADMIN_MAINT },
	{ "DELETE", "/api/prism/admin/routing/rule-sets/:id", routing_ruleset_delete, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/routing/rule-sets/:id/set-default", routing_ruleset_set_default, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/routing/test-route", routetest_handler, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/routing/benchmark", routing_benchmark, ADM, 0, PERM_VIEW_COSTS },
	{ "GET", "/api/prism/admin/routing/test-suites", routing_suites_list, ADM, 0, PERM_VIEW_COSTS },
	{ "POST", "/api/prism/admin/routing/test-suites", routing_suite_create, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/routing/test-suites/:id", routing_suite_get, ADM, 0, PERM_VIEW_COSTS },
	{ "PUT", "/api/prism/admin/routing/test-suites/:id", routing_suite_update, ADM, 0, PERM_ADMIN_MAINT },
	{ "DELETE", "/api/prism/admin/routing/test-suites/:id", routing_suite_delete, ADM, 0, PERM_ADMIN_MAINT },
	{ "POST", "/api/prism/admin/routing/test-suites/:id/run", routetest_suite_run, ADM, 0, PERM_ADMIN_MAINT },
	{ "GET", "/api/prism/admin/routing/test-suites/:id/runs", routing_suite_runs, ADM, 0, PERM_VIEW_COSTS },
	/* @@routing@@ */

	/* the gateway: /api/<tenant>/v1/..., and /v1/... and /api/v1/... for the default tenant */
	/* gwinfo.h: model lists, health, IDE configs (fixed segments before :params) */
	{ "GET", "/api/:tenant/v1/models/public", gwinfo_models_public, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/models/public", gwinfo_models_public, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/models/public", gwinfo_models_public, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/models", gwinfo_models, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/models", gwinfo_models, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/models", gwinfo_models, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/models/:model", gwinfo_model, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/models/:model", gwinfo_model, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/models/:model", gwinfo_model, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/models/:provider/:model", gwinfo_model, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/models/:provider/:model", gwinfo_model, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/models/:provider/:model", gwinfo_model, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/health", gwinfo_health, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/health", gwinfo_health, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/health", gwinfo_health, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/config/models", gwinfo_config_models, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/config/models", gwinfo_config_models, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/config/models", gwinfo_config_models, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/config/continue", gwinfo_config_continue, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/config/continue", gwinfo_config_continue, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/config/continue", gwinfo_config_continue, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/:tenant/v1/config/opencode", gwinfo_config_opencode, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/v1/config/opencode", gwinfo_config_opencode, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "GET", "/api/v1/config/opencode", gwinfo_config_opencode, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	/* pipeline.h: the OpenAI-compatible POST endpoints */
	{ "POST", "/api/:tenant/v1/chat/completions", gw_chat, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/v1/chat/completions", gw_chat, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/api/v1/chat/completions", gw_chat, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/api/:tenant/v1/completions", gw_completions, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/v1/completions", gw_completions, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/api/v1/completions", gw_completions, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/api/:tenant/v1/embeddings", gw_embeddings, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/v1/embeddings", gw_embeddings, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	{ "POST", "/api/v1/embeddings", gw_embeddings, RK_GATEWAY, ROLES_GATEWAY, 0, PERM_PUBLIC },
	/* @@gateway@@ */

	/* diagnostics (diag_endpoints = true) */
	{ "GET", "/_diag/sse", diag_sse, RK_CORE, ROLES_ALL, RF_DIAG, PERM_PUBLIC },
	{ "GET", "/_diag/sleep", diag_sleep, RK_CORE, ROLES_ALL, RF_DIAG, PERM_PUBLIC },
	{ "POST", "/_diag/echo", diag_echo, RK_CORE, ROLES_ALL, RF_DIAG, PERM_PUBLIC },
	{ "POST", "/_diag/analytics", diag_analytics, RK_CORE, ROLES_ALL, RF_DIAG, PERM_PUBLIC },
	{ "POST", "/api/prism/_diag/echo", diag_echo, ADM, RF_DIAG | RF_PRESETUP, PERM_PUBLIC },
	{ "POST", "/v1/_diag/echo", diag_echo, RK_GATEWAY, ROLES_GATEWAY, RF_DIAG, PERM_PUBLIC },
};

const size_t prism_nroutes = sizeof prism_routes / sizeof prism_routes[0];
