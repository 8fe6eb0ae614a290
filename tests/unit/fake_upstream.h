/* fake_upstream.h -- the Check suites' handle on tests/fixtures/fake_upstream.js: a real HTTP server (node)
 * on a free loopback port, started in a suite's setup and stopped in its teardown. */
#ifndef FAKE_UPSTREAM_H
#define FAKE_UPSTREAM_H

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fake_up {
	pid_t pid;
	int port;
	char dir[256];                /* /tmp/<name>.<pid>: the port file and the record */
	char record[300];             /* the JSON-lines record of the requests it received (--record) */
};

/* Starts the fake with --key key --record <dir>/record.jsonl and the NULL-terminated extra arguments;
 * fails the test when it has not written its port within 10 s. */
static inline void
fake_up_start(struct fake_up *u, const char *name, const char *key, const char *const *extra)
{
	snprintf(u->dir, sizeof u->dir, "/tmp/%s.%ld", name, (long)getpid());
	mkdir(u->dir, 0700);
	char portfile[300];
	snprintf(portfile, sizeof portfile, "%s/port", u->dir);
	snprintf(u->record, sizeof u->record, "%s/record.jsonl", u->dir);
	unlink(portfile);
	const char *top = getenv("top_srcdir");
	char script[4096];
	snprintf(script, sizeof script, "%s/tests/fixtures/fake_upstream.js", top ? top : ".");
	const char *argv[32] = { "node", script, portfile, "--key", key, "--record", u->record };
	size_t n = 7;
	for (size_t i = 0; extra && extra[i] && n + 1 < sizeof argv / sizeof argv[0]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	u->port = 0;
	u->pid = fork();
	if (u->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 1);
		execvp("node", (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_gt(u->pid, 0);
	for (int i = 0; i < 200 && u->port <= 0; i++) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			if (fscanf(f, "%d", &u->port) != 1)
				u->port = 0;
			fclose(f);
		}
		if (u->port <= 0)
			usleep(50000);
	}
	ck_assert_msg(u->port > 0, "the fake upstream did not start (node %s)", script);
}

static inline void
fake_up_stop(struct fake_up *u)
{
	if (u->pid > 0) {
		kill(u->pid, SIGTERM);
		waitpid(u->pid, NULL, 0);
		u->pid = 0;
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", u->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", u->dir);
}

#endif
