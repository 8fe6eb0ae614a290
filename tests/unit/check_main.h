/* check_main.h -- the common main() of the Check suites: run one suite, exit non-zero on any failure.
 * make check sets CK_TAP_LOG_FILE_NAME=- so each test case is reported (and counted) as TAP. */
#ifndef CHECK_MAIN_H
#define CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int
check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#define CHECK_MAIN(suite_fn) \
	int main(void) { return check_run(suite_fn()); }

#endif
