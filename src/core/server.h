/* server.h -- the process model of prism.fcgi.
 *
 *  - daemon: listen = unix:PATH | tcp:HOST:PORT; a supervisor opens the socket and pre-forks `processes`
 *    workers, respawning any that dies (with back-off when they die young);
 *  - spawned by the web server: the listen socket is fd 0 (lighttpd bin-path, mod_fcgid); one process;
 *  - CGI: not under FastCGI at all; one request from the environment, then exit.
 *
 * Each worker runs `threads` threads around FCGX_Accept_r.  Signals: SIGTERM/SIGINT stop accepting, let
 * in-flight requests finish within shutdown_grace, exit 0; SIGHUP re-reads the configuration (reloadable
 * keys) and reopens the log without dropping requests.  The supervisor forwards both to its workers.
 */
#ifndef PRISM_SERVER_H
#define PRISM_SERVER_H

#include "util/config.h"

struct server_opts {
	const char *config_path;        /* re-read on SIGHUP; may be NULL */
	config_env_fn env;              /* environment lookup for reloads */
	const char *cli_keys[16];       /* keys set on the command line, re-applied on every reload */
	const char *cli_values[16];
	int ncli;
	char **argv;                    /* the command line, to execute the program again at start; may be NULL */
};

/* Runs the configured mode until stopped; returns the process exit status. */
int server_run(const struct server_opts *opts);

/* Loads, applies command-line overrides and validates a configuration (also used at start). */
struct config *server_load_config(const struct server_opts *opts, struct buf *errors);

#endif
