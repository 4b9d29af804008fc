/* statefun-c: Apache License 2.0.
 *
 * The one test runner. Every tests/<area>/check_<module>.c exports
 * `Suite *sf_<area>_<module>_suite(void)` whose suite_create() name is
 * "<area>_<module>"; the build collects them into suites.h, so adding a file
 * is enough to add its suite.
 *
 *   check_all            run every suite (fork mode: each test isolated)
 *   check_all --list     print the suite names
 *   CK_RUN_SUITE=name    run one suite (Check's own variable)
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

#define SUITE_FN(fn) fn,
#define SUITE_NAME(fn) #fn,

static Suite *(*const suite_fns[])(void) = {SF_TEST_SUITES(SUITE_FN) NULL};
static const char *const suite_names[] = {SF_TEST_SUITES(SUITE_NAME) NULL};

static void print_name(const char *fn)
{
    /* "sf_protocol_proto_suite" -> "protocol_proto" */
    size_t len = strlen(fn);
    printf("%.*s\n", (int)(len - 3 - 6), fn + 3);
}

int main(int argc, char **argv)
{
    SRunner *sr;
    int failed;
    size_t i;

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; suite_names[i]; i++)
            print_name(suite_names[i]);
        return 0;
    }
    sr = srunner_create(NULL);
    for (i = 0; suite_fns[i]; i++)
        srunner_add_suite(sr, suite_fns[i]());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
