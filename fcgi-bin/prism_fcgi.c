/* prism_fcgi.c -- entry point of prism.fcgi, the FastCGI responder.
 *
 * Reads the command line and the configuration, then hands over to server_run, which picks the mode:
 * daemon (--listen), spawned by the web server (socket on fd 0) or CGI.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/rbac.h"
#include "core/router.h"
#include "core/server.h"
#include "util/buf.h"
#include "util/config.h"

#ifndef PRISM_SYSCONFDIR
#define PRISM_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG PRISM_SYSCONFDIR "/model-prism/prism.conf"

static const char *
env_lookup(const char *name)
{
	return getenv(name);
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: prism.fcgi [--config FILE] [--listen unix:PATH|tcp:HOST:PORT] [--processes N]\n"
		"                  [--threads N] [--role full|control|worker]\n"
		"       prism.fcgi --version | --routes\n"
		"\n"
		"Without --listen (or listen in the configuration), prism.fcgi serves the FastCGI socket the web\n"
		"server passes on fd 0, or answers one CGI request when not started by a FastCGI server.\n"
		"Configuration: --config, else $PRISM_CONFIG, else %s.  See prism.fcgi(8), prism.conf(5).\n",
		DEFAULT_CONFIG);
}

/* The route table, one route per line: METHOD PATH NODE-ROLES USER-ROLES FLAGS (for prism-api(7) and the
 * RBAC test, which compare it with the documented matrix). */
static void
print_routes(void)
{
	for (size_t i = 0; i < prism_nroutes; i++) {
		const struct route *r = &prism_routes[i];
		printf("%s %s ", r->method, r->pattern);
		const char *sep = "";
		for (int role = ROLE_FULL; role <= ROLE_WORKER; role++) {
			if (r->roles & (1u << role)) {
				printf("%s%s", sep, config_role_name(role));
				sep = ",";
			}
		}
		printf(" ");
		if (!r->perm)
			printf("public");
		sep = "";
		for (int ur = 0; ur < UR_COUNT; ur++) {
			if (r->perm & PERM(ur)) {
				printf("%s%s", sep, rbac_role_name(ur));
				sep = ",";
			}
		}
		char flags[64];
		snprintf(flags, sizeof flags, "%s%s%s%s", r->flags & RF_DIAG ? "diag," : "", r->flags & RF_LOGIN ? "login," : "",
			 r->flags & RF_PRESETUP ? "presetup," : "", r->flags & RF_NO_LOG ? "nolog," : "");
		size_t n = strlen(flags);
		if (n)
			flags[n - 1] = '\0';
		printf(" %s\n", n ? flags : "-");
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "processes", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "role", required_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },
		{ "routes", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_opts opts;
	memset(&opts, 0, sizeof opts);
	opts.env = env_lookup;
	opts.argv = argv;
	const char *config_path = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:l:p:t:r:Vh", longopts, NULL)) != -1) {
		const char *key = NULL;
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'l': key = "listen"; break;
		case 'p': key = "processes"; break;
		case 't': key = "threads"; break;
		case 'r': key = "role"; break;
		case 'V': printf("prism.fcgi %s\n", PACKAGE_VERSION); return 0;
		case 'R': print_routes(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (key) {
			opts.cli_keys[opts.ncli] = key;
			opts.cli_values[opts.ncli] = optarg;
			opts.ncli++;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "prism.fcgi: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!config_path && getenv("PRISM_CONFIG") && *getenv("PRISM_CONFIG"))
		config_path = getenv("PRISM_CONFIG");
	if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0)
		config_path = DEFAULT_CONFIG;
	opts.config_path = config_path;

	struct buf errors;
	buf_init(&errors, 64 * 1024);
	struct config *cfg = server_load_config(&opts, &errors);
	if (!cfg) {
		fprintf(stderr, "prism.fcgi: configuration errors, not starting:\n%s", buf_cstr(&errors));
		buf_free(&errors);
		return 1;
	}
	buf_free(&errors);
	config_install(cfg);
	return server_run(&opts);
}
