/* router.c -- see router.h. */
#include "config.h"
#include "core/router.h"

#include <stdio.h>
#include <string.h>

#include "util/parse.h"

/* Percent-decodes one segment; rejects NUL, '/' and invalid escapes so a param is always one clean word. */
static bool
decode_segment(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return false;
			int hi = parse_hexval(s[i + 1]), lo = parse_hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
			if (c == 0 || c == '/')
				return false;
		}
		if (o + 1 >= outlen)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return o > 0;
}

/* Matches `path` against `pattern`; on success fills req params (when req is not NULL). */
static bool
pattern_match(const char *pattern, const char *path, struct request *req)
{
	const char *p = pattern, *s = path;
	size_t nparams = 0;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
		if (*p == ':') {
			if (slen == 0 || nparams >= PRISM_MAX_ROUTE_PARAMS)
				return false;
			/* Decode even when only testing, so that a path with a bad param matches no route. */
			char scratch[PRISM_MAX_PARAM_LEN + 1];
			char *dst = req ? req->params[nparams] : scratch;
			if (!decode_segment(s, slen, dst, PRISM_MAX_PARAM_LEN + 1))
				return false;
			nparams++;
		} else if (plen != slen || strncmp(p, s, plen) != 0) {
			return false;
		}
		p += plen;
		s += slen;
	}
	if (*p || *s)
		return false;
	if (req) {
		/* Second pass for the names, which live in the static pattern. */
		size_t k = 0;
		for (const char *q = pattern; (q = strstr(q, "/:")) != NULL && k < nparams; k++) {
			q += 2;
			static __thread char names[PRISM_MAX_ROUTE_PARAMS][32];
			size_t len = strcspn(q, "/");
			snprintf(names[k], sizeof names[k], "%.*s", (int)len, q);
			req->param_names[k] = names[k];
		}
		req->nparams = nparams;
	}
	return true;
}

static bool
route_enabled(const struct route *r, const struct request *req)
{
	if (!(r->roles & (1u << req->cfg->role)))
		return false;
	if ((r->flags & RF_DIAG) && !req->cfg->diag_endpoints)
		return false;
	return true;
}

static void
allow_add(char *allow, size_t len, const char *method)
{
	if (strstr(allow, method))
		return;
	size_t used = strlen(allow);
	snprintf(allow + used, len - used, "%s%s", used ? ", " : "", method);
}

enum prism_err
router_match(const struct route *table, size_t n, struct request *req, struct route_match *m)
{
	m->route = NULL;
	m->allow[0] = '\0';
	bool head = strcmp(req->method, "HEAD") == 0;
	bool options = strcmp(req->method, "OPTIONS") == 0;
	/* The first route of the method whose pattern matches; only without one do the others matter. */
	for (size_t i = 0; i < n && !options; i++) {
		const struct route *r = &table[i];
		bool same = strcmp(r->method, req->method) == 0 || (head && strcmp(r->method, "GET") == 0);
		if (!same || !route_enabled(r, req) || !pattern_match(r->pattern, req->path, NULL))
			continue;
		pattern_match(r->pattern, req->path, req);
		m->route = r;
		req->route = r;
		req->kind = r->kind;
		return PRISM_OK;
	}
	bool path_exists = false;
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &table[i];
		if (!route_enabled(r, req) || !pattern_match(r->pattern, req->path, NULL))
			continue;
		path_exists = true;
		allow_add(m->allow, sizeof m->allow, r->method);
		if (strcmp(r->method, "GET") == 0)
			allow_add(m->allow, sizeof m->allow, "HEAD");
	}
	if (!path_exists) {
		req->kind = router_path_kind(req->path);
		return PRISM_E_NOT_FOUND;
	}
	allow_add(m->allow, sizeof m->allow, "OPTIONS");
	/* Any route on the path gives the shape; the first enabled one is representative. */
	for (size_t i = 0; i < n; i++) {
		if (route_enabled(&table[i], req) && pattern_match(table[i].pattern, req->path, NULL)) {
			req->kind = table[i].kind;
			break;
		}
	}
	return options ? PRISM_OK : PRISM_E_METHOD;
}

enum route_kind
router_path_kind(const char *path)
{
	if (strncmp(path, "/api/prism/", 11) == 0 || strcmp(path, "/api/prism") == 0)
		return RK_ADMIN;
	if (strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0)
		return RK_GATEWAY;
	if (strncmp(path, "/api/", 5) == 0) {
		/* /api/<slug>/v1[/...] and /api/v1[/...] */
		const char *rest = path + 5;
		if (strncmp(rest, "v1/", 3) == 0 || strcmp(rest, "v1") == 0)
			return RK_GATEWAY;
		const char *slash = strchr(rest, '/');
		if (slash && (strncmp(slash, "/v1/", 4) == 0 || strcmp(slash, "/v1") == 0))
			return RK_GATEWAY;
	}
	return RK_ADMIN;
}
