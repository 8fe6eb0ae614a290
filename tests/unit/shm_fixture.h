/* shm_fixture.h -- segments for the shared-memory suites: a unique name per test (runner pid, test pid,
 * counter, under the suite's SHM_FIXTURE_PREFIX), removed by the test's teardown and, for a test that
 * failed half-way (Check ends its process at the failed assertion), by the runner at the end. */
#ifndef SHM_FIXTURE_H
#define SHM_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm/segment.h"

#ifndef SHM_FIXTURE_PREFIX
#error "define SHM_FIXTURE_PREFIX (e.g. \"prism-test-\") before including shm_fixture.h"
#endif

static char segname[SHM_NAME_MAX];
static char err[512];
static pid_t runner;

static struct shm_segment *
seg_new(size_t size_hint)
{
	static int n;
	snprintf(segname, sizeof segname, "/" SHM_FIXTURE_PREFIX "%d-%d-%d", (int)runner, (int)getpid(), n++);
	shm_segment_unlink(segname, NULL, 0);
	struct shm_segment *seg = NULL;
	ck_assert_msg(shm_segment_open(segname, size_hint, &seg, err, sizeof err) == PRISM_OK, "open: %s", err);
	return seg;
}

/* In the runner process, before the first test. */
static void
runner_setup(void)
{
	runner = getpid();
}

/* In the runner process, after the last test: remove every segment of this run. */
static void
runner_teardown(void)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, SHM_FIXTURE_PREFIX "%d-", (int)runner);
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			char name[sizeof e->d_name + 1];
			snprintf(name, sizeof name, "/%s", e->d_name);
			shm_unlink(name);
		}
	}
	closedir(d);
}

static void
teardown(void)
{
	if (segname[0])
		shm_segment_unlink(segname, NULL, 0);
	segname[0] = '\0';
}

#endif
