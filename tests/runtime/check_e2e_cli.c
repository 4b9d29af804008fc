/* statefun-c: Apache License 2.0.
 *
 * End-to-end: what the real binary refuses, and how.
 *   - `statefun validate` on the classes of module errors that the unit
 *     tests (check_module.c, check_cli.c) do not run through the binary:
 *     functions served twice, a directory given as a module file, two
 *     ingresses, ingress and egress on one port;
 *   - `statefun run` failing at start (exit 2 with a logged reason): the
 *     ingress port in use, an embedded library without SF_MODULE;
 *   - malformed ingress requests answered with their status codes and a
 *     one-line reason by a running runtime (400 path, 404 unknown function
 *     type, 405 method, 413 body too big, 415 media type, 400 typename and
 *     text body), %-decoded ids, and the egress's 404 and 405.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

/* Runs `statefun ARGS` in |dir| with a time bound; returns the exit status and
 * stderr (owned) in |*err|. */
static int statefun(const char *dir, char **err, const char *args)
{
    char errf[700];
    int st;
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    st = sf_test_sh("cd '%s' && timeout 30 '%s' %s >/dev/null 2>'%s'", dir, sf_e2e_statefun(), args,
                    errf);
    *err = sf_test_read_file(errf, NULL);
    ck_assert_ptr_nonnull(*err);
    return st;
}

#define EXPECT_IN(text, needle)                                                                    \
    ck_assert_msg(strstr((text), (needle)) != NULL, "\"%s\" not in:\n%s", (needle), (text))

START_TEST(test_validate_more_errors)
{
    char *dir = sf_test_mkdtemp("e2e-validate"), path[700], *err;
    const char *yaml = "kind: io.statefun.endpoints.v2/http\n"
                       "spec:\n"
                       "  functions: shop/*\n"
                       "  urlPathTemplate: http://127.0.0.1:8000/\n"
                       "---\n"
                       "kind: io.statefun.endpoints.v2/http\n"
                       "spec:\n"
                       "  functions: shop/*\n"
                       "  urlPathTemplate: http://127.0.0.1:8001/\n"
                       "---\n"
                       "kind: io.statefun.playground.v1/ingress\n"
                       "spec:\n"
                       "  port: 9000\n"
                       "---\n"
                       "kind: io.statefun.playground.v1/ingress\n"
                       "spec:\n"
                       "  port: 9001\n"
                       "---\n"
                       "kind: io.statefun.playground.v1/egress\n"
                       "spec:\n"
                       "  port: 9000\n"
                       "  topics: [a]\n";

    ck_assert_ptr_nonnull(dir);
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    ck_assert_int_eq(sf_test_write_file(path, yaml, strlen(yaml)), 0);
    snprintf(path, sizeof path, "%s/sub.yaml", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);

    ck_assert_int_eq(statefun(dir, &err, "validate m.yaml sub.yaml"), 1);
    EXPECT_IN(err, "m.yaml:8: functions 'shop/*' are already served by an endpoint at m.yaml:3");
    EXPECT_IN(err, "m.yaml:15: only one io.statefun.playground.v1/ingress is allowed (first at "
                   "m.yaml:11)");
    EXPECT_IN(err, "egress port 9000 is already used by the ingress at m.yaml:11");
    EXPECT_IN(err, "sub.yaml: is a directory, not a module YAML file");
    EXPECT_IN(err, "statefun validate: 4 errors");
    free(err);
    sf_test_rmtree(dir);
}
END_TEST

START_TEST(test_run_fails_at_start)
{
    sf_e2e_rt_t rt;
    struct sockaddr_in a;
    char lib[1100], args[2000], *err;
    int fd, one = 1;

    /* The ingress port is taken. */
    sf_e2e_rt_init(&rt, "e2e-runfail");
    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    sf_e2e_rt_module(&rt, "greetings", "at-least-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(rt.ingress);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    snprintf(args, sizeof args, "run --state-dir '%s' --admin 127.0.0.1:%u '%s'", rt.state_dir,
             rt.admin, rt.yaml);
    ck_assert_int_eq(statefun(rt.dir, &err, args), 2);
    EXPECT_IN(err, "ingress");
    free(err);
    close(fd);

    /* A library that is not a function module (the SDK itself). */
    sf_e2e_build_path(lib, sizeof lib, "lib/libstatefun-c.so");
    sf_e2e_rt_module(&rt, "greetings", "at-least-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
    ck_assert_int_eq(statefun(rt.dir, &err, args), 2);
    EXPECT_IN(err, "SF_MODULE");
    free(err);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sends a request to |port| and checks its status (and a one-line reason). */
static void expect_status(uint16_t port, const char *method, const char *path, const char *ctype,
                          const void *body, size_t len, int want)
{
    sf_e2e_resp_t r;
    ck_assert_msg(sf_e2e_http(port, method, path, ctype, body, len, &r) == 0, "%s %s: no response",
                  method, path);
    ck_assert_msg(r.status == want, "%s %s: status %d, expected %d (%s)", method, path, r.status,
                  want, r.body);
    if (want != 200 && want != 413) {
        ck_assert_msg(r.len > 1 && r.body[r.len - 1] == '\n' && !memchr(r.body, '\n', r.len - 1),
                      "%s %s: the reason is not one line: \"%s\"", method, path, r.body);
    }
    sf_e2e_resp_dispose(&r);
}

START_TEST(test_ingress_errors)
{
    sf_e2e_rt_t rt;
    char lib[1100], *big;
    const size_t big_len = 5u * 1024 * 1024;
    sf_e2e_resp_t r;
    char *got[4];
    size_t n, i;

    sf_e2e_rt_init(&rt, "e2e-ingress");
    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    sf_e2e_rt_module(&rt, "greetings", "at-least-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
    sf_e2e_rt_start(&rt, NULL);

    expect_status(rt.ingress, "PUT", "/greeter.fns/person/Al", "text/plain", "Al", 2, 200);
    /* 400: malformed paths. */
    expect_status(rt.ingress, "PUT", "/greeter.fns/person", "text/plain", "x", 1, 400);
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/", "text/plain", "x", 1, 400);
    expect_status(rt.ingress, "PUT", "//person/x", "text/plain", "x", 1, 400);
    expect_status(rt.ingress, "PUT", "/greeter.fns/per%zzson/x", "text/plain", "x", 1, 400);
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/a%00b", "text/plain", "x", 1, 400);
    /* 404: no endpoint or module serves the type (a namespace pattern serves
     * every type of its namespace, as a StateFun endpoint does). */
    expect_status(rt.ingress, "PUT", "/greeter/person/x", "text/plain", "x", 1, 404);
    expect_status(rt.ingress, "POST", "/other.ns/person/x", "text/plain", "x", 1, 404);
    /* 405, with Allow. */
    expect_status(rt.ingress, "GET", "/greeter.fns/person/x", NULL, NULL, 0, 405);
    expect_status(rt.ingress, "DELETE", "/greeter.fns/person/x", NULL, NULL, 0, 405);
    /* 415 and 400: media types and bodies. */
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/x", "application/json", "{}", 2, 415);
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/x", "application/vnd.noslash", "x", 1,
                  400);
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/x", "text/plain", "\xff\xfe", 2, 400);
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/x", "text/plain", "a\0b", 3, 400);
    /* 413: over the 4 MiB default. */
    big = malloc(big_len);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', big_len);
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/x", "text/plain", big, big_len, 413);
    free(big);
    /* The ingress still works after all that. */
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/Al", "text/plain", "Al", 2, 200);

    /* The egress: 405 for an unknown topic, 404 when nothing is unread. */
    ck_assert_int_eq(sf_e2e_http(rt.egress, "GET", "/nosuchtopic", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 405);
    sf_e2e_resp_dispose(&r);
    /* Ids are %-decoded and may hold '/' and any UTF-8. */
    expect_status(rt.ingress, "PUT", "/greeter.fns/person/a%2Fb/c%20d", "text/plain", "x", 1, 200);
    expect_status(rt.ingress, "POST", "/greeter.fns/person/J%C3%BCrgen", NULL, "x", 1, 200);
    n = sf_e2e_egress_take(rt.egress, "greetings", got, 4, 10000);
    ck_assert_uint_eq(n, 4);
    qsort(got, n, sizeof *got, cmp_str);
    ck_assert_str_eq(got[0], "Nice to see you again Al");
    ck_assert_str_eq(got[1], "Welcome Al");
    ck_assert_str_eq(got[2], "Welcome J\xc3\xbcrgen");
    ck_assert_str_eq(got[3], "Welcome a/b/c d");
    for (i = 0; i < n; i++)
        free(got[i]);
    ck_assert_int_eq(sf_e2e_http(rt.egress, "GET", "/greetings", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    sf_e2e_resp_dispose(&r);

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

Suite *sf_runtime_e2e_cli_suite(void)
{
    Suite *s = suite_create("runtime_e2e_cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_validate_more_errors);
    tcase_add_test(tc, test_run_fails_at_start);
    tcase_add_test(tc, test_ingress_errors);
    suite_add_tcase(s, tc);
    return s;
}
