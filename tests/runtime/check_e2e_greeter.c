/* statefun-c: Apache License 2.0.
 *
 * End-to-end: the playground greeter through a real `statefun run`, its
 * ingress (PUT text/plain) and its egress (GET /greetings):
 *   - the C example served remotely over HTTP/2 (h2c) and over HTTP/1.1, and
 *     embedded (libgreeter.so); also on a UNIX socket (http+unix) and over
 *     HTTPS (h2 through ALPN, a certificate made at test time);
 *   - the same functions written with the official StateFun JavaScript SDK
 *     (tests/js/statefun_functions.js) served by node, reached in `auto`
 *     mode (which falls back to HTTP/1.1 for node's server);
 *   - 200 names x 3 visits with --workers 4 and --workers 1 give the same
 *     egress records.
 * Processes run on free loopback ports and are stopped by PID; every wait
 * is bounded (tests/helpers/e2e.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

static const char *const greetings[] = {"Welcome %s", "Nice to see you again %s",
                                        "Third time is a charm %s",
                                        "Nice to see you at the 4-nth time %s!"};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_all(char **v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(v[i]);
}

/*
 * Four visits each of Alice and Bob, interleaved, one request at a time;
 * then the eight greetings, each name's in order, and nothing more.
 */
static void four_visits(sf_e2e_rt_t *rt)
{
    static const char *const names[] = {"Alice", "Bob"};
    char *got[9], want[128], path[128];
    size_t n, i, k[2] = {0, 0};
    int v, j;

    for (v = 0; v < 4; v++) {
        for (j = 0; j < 2; j++) {
            snprintf(path, sizeof path, "/greeter.fns/person/%s", names[j]);
            ck_assert_int_eq(sf_e2e_put(rt->ingress, path, names[j]), 200);
        }
    }
    n = sf_e2e_egress_take(rt->egress, "greetings", got, 8, 20000);
    if (n != 8)
        sf_e2e_rt_dump_log(rt, 30);
    ck_assert_uint_eq(n, 8);
    for (i = 0; i < n; i++) {
        j = strstr(got[i], "Alice") ? 0 : 1;
        ck_assert_msg(k[j] < 4, "too many greetings for %s", names[j]);
        snprintf(want, sizeof want, greetings[k[j]], names[j]);
        ck_assert_str_eq(got[i], want);
        k[j]++;
    }
    free_all(got, n);
    /* Nothing else: each visit greeted once. */
    got[0] = sf_e2e_egress_pop(rt->egress, "greetings", 300);
    ck_assert_msg(got[0] == NULL, "unexpected extra greeting \"%s\"", got[0]);
}

static void remote_greeter(const char *protocol)
{
    char prog[1100];
    char *argv[] = {prog, "--listen", "127.0.0.1:0", NULL};
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;

    sf_e2e_build_path(prog, sizeof prog, "examples/greeter");
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-greeter");
    sf_e2e_rt_module(&rt, "greetings", "exactly-once",
                     "kind: io.statefun.endpoints.v2/http\n"
                     "spec:\n"
                     "  functions: greeter.fns/*\n"
                     "  urlPathTemplate: http://127.0.0.1:%u/\n"
                     "  transport:\n"
                     "    protocol: %s\n",
                     port, protocol);
    sf_e2e_rt_start(&rt, "--checkpoint-interval", "200ms", NULL);
    four_visits(&rt);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}

START_TEST(test_greeter_remote_h2c)
{
    remote_greeter("h2c");
}
END_TEST

START_TEST(test_greeter_remote_http1)
{
    remote_greeter("http1");
}
END_TEST

/* The C greeter on a UNIX socket, reached with an http+unix URL. */
START_TEST(test_greeter_remote_unix)
{
    char prog[1100], listen[700], line[700];
    char *argv[] = {prog, "--listen", listen, NULL};
    sf_e2e_rt_t rt;
    pid_t fn;

    sf_e2e_build_path(prog, sizeof prog, "examples/greeter");
    sf_e2e_rt_init(&rt, "e2e-greeter-unix");
    snprintf(listen, sizeof listen, "unix:%s/fn.sock", rt.dir);
    fn = sf_test_spawn_line(argv, line, sizeof line, SF_E2E_START_MS);
    ck_assert_int_gt(fn, 0);
    sf_e2e_rt_module(&rt, "greetings", "exactly-once",
                     "kind: io.statefun.endpoints.v2/http\n"
                     "spec:\n"
                     "  functions: greeter.fns/*\n"
                     "  urlPathTemplate: http+unix://%s/fn.sock/greeter\n",
                     rt.dir);
    sf_e2e_rt_start(&rt, "--checkpoint-interval", "200ms", NULL);
    four_visits(&rt);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* The C greeter over HTTPS (HTTP/2 through ALPN) with a certificate made
 * now and trusted through trust_cacerts. */
START_TEST(test_greeter_remote_https)
{
    char prog[1100], cert[700], key[700];
    char *argv[] = {prog, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, NULL};
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;

    sf_e2e_build_path(prog, sizeof prog, "examples/greeter");
    sf_e2e_rt_init(&rt, "e2e-greeter-tls");
    snprintf(cert, sizeof cert, "%s/cert.pem", rt.dir);
    snprintf(key, sizeof key, "%s/key.pem", rt.dir);
    ck_assert_int_eq(sf_test_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' "
                                "-out '%s' >/dev/null 2>&1",
                                key, cert),
                     0);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_module(&rt, "greetings", "exactly-once",
                     "kind: io.statefun.endpoints.v2/http\n"
                     "spec:\n"
                     "  functions: greeter.fns/*\n"
                     "  urlPathTemplate: https://127.0.0.1:%u/\n"
                     "  transport:\n"
                     "    type: io.statefun.transports.v1/async\n"
                     "    trust_cacerts: %s\n"
                     "    protocol: h2\n",
                     port, cert);
    sf_e2e_rt_start(&rt, "--checkpoint-interval", "200ms", NULL);
    four_visits(&rt);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

static void embedded_module(sf_e2e_rt_t *rt)
{
    char lib[1100];
    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    sf_e2e_rt_module(rt, "greetings", "exactly-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
}

START_TEST(test_greeter_embedded)
{
    sf_e2e_rt_t rt;
    sf_e2e_rt_init(&rt, "e2e-greeter");
    embedded_module(&rt);
    sf_e2e_rt_start(&rt, "--checkpoint-interval", "200ms", NULL);
    four_visits(&rt);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

START_TEST(test_greeter_js_sdk)
{
    char script[1100];
    char *argv[] = {"node", script, "0", NULL};
    const char *np = getenv("NODE_PATH");
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;

    ck_assert_msg(np && *np, "NODE_PATH is not set (make test sets it after make js-deps)");
    sf_e2e_src_path(script, sizeof script, "tests/js/statefun_functions.js");
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-greeter-js");
    sf_e2e_rt_module(&rt, "greetings", "exactly-once",
                     "kind: io.statefun.endpoints.v2/http\n"
                     "spec:\n"
                     "  functions: greeter.fns/*\n"
                     "  urlPathTemplate: http://127.0.0.1:%u/statefun\n"
                     "  transport:\n"
                     "    protocol: auto\n",
                     port);
    sf_e2e_rt_start(&rt, "--checkpoint-interval", "200ms", NULL);
    four_visits(&rt);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Multi-worker                                                               */

#define NAMES 200
#define VISITS 3

static void make_visit(unsigned lane, unsigned seq, char *path, size_t plen, char *body,
                       size_t blen, void *ud)
{
    (void)seq;
    (void)ud;
    snprintf(path, plen, "/greeter.fns/person/n%u", lane);
    snprintf(body, blen, "n%u", lane);
}

/* Runs the workload with |workers| and returns the sorted egress records. */
static void workload(const char *workers, char **out)
{
    sf_e2e_rt_t rt;
    sf_e2e_load_t load;
    size_t n;
    char *extra;

    sf_e2e_rt_init(&rt, "e2e-workers");
    embedded_module(&rt);
    sf_e2e_rt_start(&rt, "--workers", workers, "--checkpoint-interval", "200ms", NULL);
    memset(&load, 0, sizeof load);
    load.port = rt.ingress;
    load.protocol = SF_HTTP_PROTO_H2C;
    load.nlanes = NAMES;
    load.per_lane = VISITS;
    load.window = 1; /* a name's visits in order */
    load.retry_503 = true;
    load.timeout_ms = 60000;
    load.make = make_visit;
    ck_assert_msg(sf_e2e_load_run(&load) == 0,
                  "accepted %u of %u (other %u: %d, errors %u: %d, timed out %d)", load.accepted,
                  NAMES * VISITS, load.other, load.other_status, load.errors, load.first_error,
                  load.timed_out);
    n = sf_e2e_egress_take(rt.egress, "greetings", out, NAMES * VISITS, 30000);
    if (n != NAMES * VISITS)
        sf_e2e_rt_dump_log(&rt, 30);
    ck_assert_uint_eq(n, NAMES * VISITS);
    extra = sf_e2e_egress_pop(rt.egress, "greetings", 300);
    ck_assert_msg(extra == NULL, "unexpected extra greeting \"%s\"", extra);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_e2e_rt_dispose(&rt);
    qsort(out, n, sizeof *out, cmp_str);
}

START_TEST(test_workers_same_output)
{
    static char *four[NAMES * VISITS], *one[NAMES * VISITS], *want[NAMES * VISITS];
    char name[16], buf[128];
    size_t i;
    int v;

    for (i = 0; i < NAMES; i++) {
        snprintf(name, sizeof name, "n%zu", i);
        for (v = 0; v < VISITS; v++) {
            snprintf(buf, sizeof buf, greetings[v], name);
            want[i * VISITS + (size_t)v] = strdup(buf);
        }
    }
    qsort(want, NAMES * VISITS, sizeof *want, cmp_str);
    workload("4", four);
    workload("1", one);
    for (i = 0; i < NAMES * VISITS; i++) {
        ck_assert_str_eq(four[i], want[i]);
        ck_assert_str_eq(one[i], want[i]);
    }
    free_all(four, NAMES * VISITS);
    free_all(one, NAMES * VISITS);
    free_all(want, NAMES * VISITS);
}
END_TEST

Suite *sf_runtime_e2e_greeter_suite(void)
{
    Suite *s = suite_create("runtime_e2e_greeter");
    TCase *tc = tcase_create("greeter");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_greeter_remote_h2c);
    tcase_add_test(tc, test_greeter_remote_http1);
    tcase_add_test(tc, test_greeter_remote_unix);
    tcase_add_test(tc, test_greeter_remote_https);
    tcase_add_test(tc, test_greeter_embedded);
    tcase_add_test(tc, test_greeter_js_sdk);
    tcase_add_test(tc, test_workers_same_output);
    suite_add_tcase(s, tc);
    return s;
}
