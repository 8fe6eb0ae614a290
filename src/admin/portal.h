/* portal.h -- the tenant portal (/api/prism/tenant-portal/...): the tenants a user looks after.
 *
 * Scoping: admin and maintainer see every tenant; tenant-maintainer, tenant-admin and tenant-viewer only
 * the tenants assigned to their account (read from the account on every request, rbac_tenant_allowed),
 * 403 "Access denied — not your tenant" for the others.  tenant-viewer reads only (the route table keeps it
 * out of the writes).  Answers use the same safe tenant view as the admin API (tenants_view): no key
 * material.  The model policy write is audited and followed by admin_changed().
 *
 * Thread-safe (per-request state only).
 */
#ifndef PRISM_ADMIN_PORTAL_H
#define PRISM_ADMIN_PORTAL_H

#include "core/request.h"

/* GET /mine: the caller's tenants (all for global roles), a bare array of tenant views. */
enum prism_err portal_mine(struct request *req);
/* GET /:id: one tenant view. */
enum prism_err portal_get(struct request *req);
/* PUT /:id/model-config {mode?, list?}: the tenant's model policy; answers the tenant view. */
enum prism_err portal_model_config(struct request *req);
/* GET /:id/models: the visible discovered models of the tenant's providers that its policy allows,
 * each with providerId and providerName. */
enum prism_err portal_models(struct request *req);

#endif
