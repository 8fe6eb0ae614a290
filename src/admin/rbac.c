/* rbac.c -- see rbac.h. */
#include "config.h"
#include "admin/rbac.h"

#include <stdio.h>
#include <string.h>

static const char *const role_names[UR_COUNT] = {
	"admin", "maintainer", "finops", "auditor", "tenant-maintainer", "tenant-admin", "tenant-viewer", "chat-user",
};

const char *
rbac_role_name(int role)
{
	return role >= 0 && role < UR_COUNT ? role_names[role] : NULL;
}

int
rbac_role_parse(const char *name)
{
	for (int i = 0; name && i < UR_COUNT; i++)
		if (strcmp(role_names[i], name) == 0)
			return i;
	return -1;
}

void
rbac_describe(unsigned perm, char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	int n = 0, total = __builtin_popcount(perm);
	for (int i = 0; i < UR_COUNT && used < outlen; i++) {
		if (!(perm & PERM(i)))
			continue;
		n++;
		const char *sep = n == 1 ? "" : n == total ? " or " : ", ";
		int w = snprintf(out + used, outlen - used, "%s%s", sep, role_names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

bool
rbac_is_tenant_role(int role)
{
	return role == UR_TENANT_MAINTAINER || role == UR_TENANT_ADMIN || role == UR_TENANT_VIEWER ||
	       role == UR_CHAT_USER;
}

bool
rbac_tenant_allowed(const struct principal *p, const char *tenant_id)
{
	if (!p->authenticated)
		return false;
	if (!rbac_is_tenant_role(p->role))
		return true;
	for (size_t i = 0; tenant_id && i < p->ntenants; i++)
		if (strcmp(p->tenants[i], tenant_id) == 0)
			return true;
	return false;
}

json_t *
rbac_tenant_filter(const struct principal *p)
{
	if (p->authenticated && !rbac_is_tenant_role(p->role))
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; p->authenticated && i < p->ntenants; i++)
		json_array_append_new(a, json_string(p->tenants[i]));
	return a;
}
