/* check_router.c -- pattern matching, params, roles, 404/405/OPTIONS/HEAD, error shapes per path. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "core/router.h"
#include "util/config.h"

static enum prism_err h_dummy(struct request *r) { (void)r; return PRISM_OK; }
static enum prism_err h_other(struct request *r) { (void)r; return PRISM_OK; }

static const struct route table[] = {
	{ "GET", "/health", h_dummy, RK_CORE, ROLES_ALL, 0, 0 },
	{ "GET", "/api/prism/admin/tenants", h_dummy, RK_ADMIN, ROLES_ADMIN, 0, 0 },
	{ "POST", "/api/prism/admin/tenants", h_other, RK_ADMIN, ROLES_ADMIN, 0, 0 },
	{ "PUT", "/api/prism/admin/tenants/:id", h_dummy, RK_ADMIN, ROLES_ADMIN, 0, 0 },
	{ "POST", "/api/:tenant/v1/chat/completions", h_dummy, RK_GATEWAY, ROLES_GATEWAY, 0, 0 },
	{ "GET", "/api/:tenant/v1/models/:model", h_other, RK_GATEWAY, ROLES_GATEWAY, 0, 0 },
	{ "GET", "/_diag/sse", h_dummy, RK_CORE, ROLES_ALL, RF_DIAG, 0 },
};
#define NT (sizeof table / sizeof table[0])

static struct config *cfg;
static struct request req;

static void
setup(void)
{
	struct buf err;
	buf_init(&err, 1024);
	cfg = config_load(NULL, NULL, &err);
	buf_free(&err);
	memset(&req, 0, sizeof req);
	req.cfg = cfg;
}

static void
teardown(void)
{
	config_release(cfg);
}

static enum prism_err
match(const char *method, const char *path, struct route_match *m)
{
	snprintf(req.method, sizeof req.method, "%s", method);
	req.path = path;
	req.nparams = 0;
	req.route = NULL;
	return router_match(table, NT, &req, m);
}

static const struct {
	const char *method, *path;
	int role;
	enum prism_err want;
	int route;            /* index into table when PRISM_OK, -1 for OPTIONS */
	const char *allow;
	enum route_kind kind;
} cases[] = {
	{ "GET", "/health", ROLE_FULL, PRISM_OK, 0, NULL, RK_CORE },
	{ "HEAD", "/health", ROLE_WORKER, PRISM_OK, 0, NULL, RK_CORE },
	{ "POST", "/health", ROLE_FULL, PRISM_E_METHOD, 0, "GET, HEAD, OPTIONS", RK_CORE },
	{ "GET", "/health/", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_ADMIN },
	{ "GET", "/healthz", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_ADMIN },
	{ "POST", "/api/prism/admin/tenants", ROLE_CONTROL, PRISM_OK, 2, NULL, RK_ADMIN },
	{ "DELETE", "/api/prism/admin/tenants", ROLE_FULL, PRISM_E_METHOD, 0, "GET, HEAD, POST, OPTIONS", RK_ADMIN },
	{ "GET", "/api/prism/admin/tenants", ROLE_WORKER, PRISM_E_NOT_FOUND, 0, NULL, RK_ADMIN },
	{ "POST", "/api/team-a/v1/chat/completions", ROLE_WORKER, PRISM_OK, 4, NULL, RK_GATEWAY },
	{ "POST", "/api/team-a/v1/chat/completions", ROLE_CONTROL, PRISM_E_NOT_FOUND, 0, NULL, RK_GATEWAY },
	{ "GET", "/api/team-a/v1/chat/completions", ROLE_FULL, PRISM_E_METHOD, 0, "POST, OPTIONS", RK_GATEWAY },
	{ "GET", "/api/team-a/v1/nothing", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_GATEWAY },
	{ "GET", "/v1/nothing", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_GATEWAY },
	{ "GET", "/api/v1/models", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_GATEWAY },
	{ "GET", "/api//v1/chat/completions", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_GATEWAY },
	{ "OPTIONS", "/api/prism/admin/tenants", ROLE_FULL, PRISM_OK, -1, "GET, HEAD, POST, OPTIONS", RK_ADMIN },
	{ "OPTIONS", "/nowhere", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_ADMIN },
	{ "GET", "/_diag/sse", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_ADMIN },     /* diag off */
	{ "GET", "/api/prism/other", ROLE_FULL, PRISM_E_NOT_FOUND, 0, NULL, RK_ADMIN },
};

START_TEST(match_table)
{
	cfg->role = cases[_i].role;
	struct route_match m;
	enum prism_err r = match(cases[_i].method, cases[_i].path, &m);
	ck_assert_msg(r == cases[_i].want, "%s %s: got %d", cases[_i].method, cases[_i].path, r);
	if (r == PRISM_OK && cases[_i].route >= 0)
		ck_assert_ptr_eq(m.route, &table[cases[_i].route]);
	if (cases[_i].route < 0)
		ck_assert_ptr_null(m.route);
	if (cases[_i].allow)
		ck_assert_str_eq(m.allow, cases[_i].allow);
	ck_assert_int_eq(req.kind, cases[_i].kind);
}
END_TEST

START_TEST(params_decoded)
{
	struct route_match m;
	ck_assert_int_eq(match("GET", "/api/team-a/v1/models/gpt-4o%3Amini", &m), PRISM_OK);
	ck_assert_str_eq(request_param(&req, "tenant"), "team-a");
	ck_assert_str_eq(request_param(&req, "model"), "gpt-4o:mini");
	ck_assert_ptr_null(request_param(&req, "nope"));
	ck_assert_int_eq(match("PUT", "/api/prism/admin/tenants/65a1b2c3d4e5f60718293a4b", &m), PRISM_OK);
	ck_assert_str_eq(request_param(&req, "id"), "65a1b2c3d4e5f60718293a4b");
	/* encoded slash, NUL or broken escapes never become a param */
	ck_assert_int_eq(match("GET", "/api/team-a/v1/models/a%2Fb", &m), PRISM_E_NOT_FOUND);
	ck_assert_int_eq(match("GET", "/api/team-a/v1/models/a%00b", &m), PRISM_E_NOT_FOUND);
	ck_assert_int_eq(match("GET", "/api/team-a/v1/models/a%zz", &m), PRISM_E_NOT_FOUND);
	ck_assert_int_eq(match("GET", "/api/team-a/v1/models/abc%4", &m), PRISM_E_NOT_FOUND);
	/* an over-long segment is refused rather than truncated */
	char path[600];
	snprintf(path, sizeof path, "/api/team-a/v1/models/");
	memset(path + strlen(path), 'm', 300);
	path[22 + 300] = '\0';
	ck_assert_int_eq(match("GET", path, &m), PRISM_E_NOT_FOUND);
}
END_TEST

START_TEST(diag_switch)
{
	struct route_match m;
	cfg->diag_endpoints = true;
	ck_assert_int_eq(match("GET", "/_diag/sse", &m), PRISM_OK);
	cfg->diag_endpoints = false;
	ck_assert_int_eq(match("GET", "/_diag/sse", &m), PRISM_E_NOT_FOUND);
}
END_TEST

START_TEST(program_table_sane)
{
	/* The real table: every route has a handler, a known method, a pattern starting with '/', a role. */
	for (size_t i = 0; i < prism_nroutes; i++) {
		const struct route *r = &prism_routes[i];
		ck_assert_ptr_nonnull(r->handler);
		ck_assert_msg(r->pattern[0] == '/', "%s", r->pattern);
		ck_assert_msg(strcmp(r->method, "GET") == 0 || strcmp(r->method, "POST") == 0 ||
				      strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0 ||
				      strcmp(r->method, "DELETE") == 0,
			      "%s", r->method);
		ck_assert_uint_ne(r->roles, 0);
		/* gateway routes only for roles that serve the gateway, admin routes only for admin roles */
		if (r->kind == RK_GATEWAY)
			ck_assert_uint_eq(r->roles & ~ROLES_GATEWAY, 0);
		if (r->kind == RK_ADMIN)
			ck_assert_uint_eq(r->roles & ~ROLES_ADMIN, 0);
		ck_assert_int_eq(router_path_kind(r->pattern) == RK_GATEWAY, r->kind == RK_GATEWAY);
		/* no two routes with the same method and pattern */
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(r->method, prism_routes[j].method) || strcmp(r->pattern, prism_routes[j].pattern),
				      "duplicate route %s %s", r->method, r->pattern);
	}
}
END_TEST

static Suite *
router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("router");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, match_table, 0, sizeof cases / sizeof cases[0]);
	tcase_add_test(tc, params_decoded);
	tcase_add_test(tc, diag_switch);
	tcase_add_test(tc, program_table_sane);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(router_suite)
