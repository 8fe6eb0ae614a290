/* routing.c -- the names and tier helpers the router's parts share (routing.h). */
#include "config.h"
#include "routing/routing.h"

#include "data/catalog.h"

const char *const route_domain_names[ROUTE_NDOMAINS] = { "security", "legal", "medical", "finance" };

const char *const route_lang_names[ROUTE_NLANGS] = {
	"python", "javascript", "typescript", "sql", "go", "rust", "solidity", "bash", "docker", "yaml", "terraform",
};

const char *
route_cost_mode_name(enum route_cost_mode m)
{
	switch (m) {
	case ROUTE_COST_ECONOMY:
		return "economy";
	case ROUTE_COST_QUALITY:
		return "quality";
	case ROUTE_COST_BALANCED:
	default:
		return "balanced";
	}
}

int
route_tier_index(const char *name)
{
	return catalog_tier_index(name);
}

const char *
route_tier_name(int idx)
{
	return idx >= 0 && idx < ROUTE_NTIERS ? catalog_tiers[idx] : NULL;
}

int
route_tier_clamp(int idx)
{
	return idx < 0 ? 0 : idx >= ROUTE_NTIERS ? ROUTE_NTIERS - 1 : idx;
}
