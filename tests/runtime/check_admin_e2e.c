/* statefun-c: Apache License 2.0.
 *
 * End-to-end tests of the admin listener through a real `statefun run`
 * ($STATEFUN, or $SF_BUILD/bin/statefun) on free loopback ports, with its
 * own state directory in a temporary folder:
 *   - the embedded greeter (libgreeter.so): two greetings of Alice through
 *     the playground ingress, then /healthz is ok, /metrics counts two
 *     messages in for greeter.fns/person and greeter.fns/greeter, and
 *     /v1/state/greeter.fns/person/Alice shows visits = 2;
 *   - a remote endpoint where nothing listens, with a 1 s call timeout: after
 *     one message /healthz answers 503 degraded naming the endpoint, and the
 *     endpoint's health gauge is 0;
 *   - the greeter served remotely (examples/greeter): the remote latency
 *     histogram counts the calls and the endpoint's health gauge is 1.
 * Each runtime is stopped by PID: SIGTERM, then SIGKILL after a bound. Every
 * wait is bounded in time (tests/helpers/e2e.h).
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

#define WAIT_MS 20000 /* generous: the sanitizer build runs several times slower */

static sf_e2e_rt_t rt;
static pid_t remote = -1; /* the remote greeter, when a test starts one */

static void setup(void)
{
    sf_e2e_rt_init(&rt, "admin-e2e");
    remote = -1;
}

static void teardown(void)
{
    sf_e2e_rt_stop(&rt);
    sf_test_kill(remote);
    remote = -1;
    sf_e2e_rt_dispose(&rt);
}

/*
 * Sends |method| |path| to 127.0.0.1:|port| with |data| (NULL: none) of
 * |ctype|; returns the body (caller frees) and sets |*status| (0 when
 * nothing answered).
 */
static char *http(int *status, const char *method, uint16_t port, const char *path,
                  const char *data, const char *ctype)
{
    sf_e2e_resp_t r;
    sf_e2e_http(port, method, path, ctype, data, data ? strlen(data) : 0, &r);
    *status = r.status;
    return r.body ? r.body : strdup("");
}

/*
 * GET |path| on the admin port over h2c with curl (an HTTP/2 client of
 * another make than ours): returns the body (caller frees) and sets
 * |*status| (0 when nothing answered).
 */
static char *h2c_get(int *status, const char *path)
{
    char cmd[2048], out[1100], code[16] = "";
    FILE *p;
    char *body;

    snprintf(out, sizeof out, "%s/curl.out", rt.dir);
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 5 --http2-prior-knowledge -o '%s' -w '%%{http_code}' "
             "'http://127.0.0.1:%u%s'",
             out, (unsigned)rt.admin, path);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (!fgets(code, sizeof code, p))
        code[0] = '\0';
    pclose(p);
    *status = atoi(code);
    body = sf_test_read_file(out, NULL);
    remove(out);
    return body ? body : strdup("");
}

/* Writes module.yaml (|docs|, the ingress, and the greetings egress unless
 * |no_egress|) and starts `statefun run` on it. */
static void start_runtime(const char *docs, bool no_egress, const char *backend)
{
    sf_e2e_rt_module(&rt, no_egress ? NULL : "greetings", "exactly-once", "%s", docs);
    sf_e2e_rt_start(&rt, "--state-backend", backend, "--workers", "2", NULL);
}

/* Polls /metrics until sample |name|{|labels|} is at least |want|; returns the text. */
static char *wait_metric(const char *name, const char *labels, double want)
{
    int64_t deadline = sf_e2e_now_ms() + WAIT_MS;
    for (;;) {
        char *body = sf_e2e_metrics(rt.admin);
        ck_assert_msg(body != NULL, "GET /metrics did not answer 200");
        if (sf_e2e_sample(body, name, labels) >= want)
            return body;
        if (sf_e2e_now_ms() > deadline)
            ck_abort_msg("%s{%s} did not reach %g within %d ms:\n%s", name, labels, want, WAIT_MS,
                         body);
        free(body);
        sf_e2e_sleep_ms(100);
    }
}

/*
 * Stops the runtime and checks what /healthz says meanwhile: 503 "the
 * runtime is stopping" while it shuts down, or nothing once it has exited.
 */
static void stop_and_check_health(void)
{
    int64_t deadline;
    int status = 200;
    char *body = NULL;

    kill(rt.pid, SIGTERM);
    deadline = sf_e2e_now_ms() + 5000;
    while (sf_e2e_now_ms() < deadline) {
        free(body);
        body = http(&status, "GET", rt.admin, "/healthz", NULL, NULL);
        /* A runtime already degraded (an unhealthy endpoint) answers 503
         * before it has seen the signal: wait for the stopping reason. */
        if (status != 200 && (status != 503 || strstr(body, "stopping") != NULL))
            break;
        sf_e2e_sleep_ms(20);
    }
    ck_assert_msg(status == 503 || status == 0, "after SIGTERM /healthz answered %d", status);
    if (status == 503)
        ck_assert_msg(strstr(body, "degraded\n") == body &&
                          strstr(body, "\nthe runtime is stopping\n") != NULL,
                      "%s", body);
    free(body);
    sf_e2e_rt_stop(&rt);
    sf_e2e_rt_check_log_clean(&rt);
}

START_TEST(test_greeter)
{
    char yaml[2048], lib[1100], path[256];
    char *body;
    int status, i;
    int64_t deadline;
    json_t *root, *visits;
    json_error_t jerr;

    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    ck_assert_msg(access(lib, R_OK) == 0, "no %s", lib);
    snprintf(yaml, sizeof yaml,
             "kind: statefun.c.v1/embedded\n"
             "spec:\n"
             "  library: %s\n"
             "  functions: greeter.fns/*\n",
             lib);
    start_runtime(yaml, false, "rocksdb");

    body = h2c_get(&status, "/healthz");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "ok\n");
    free(body);
    body = http(&status, "GET", rt.admin, "/v1/state/greeter.fns/person/Alice", NULL, NULL);
    ck_assert_int_eq(status, 404);
    free(body);

    for (i = 0; i < 2; i++) {
        body = http(&status, "PUT", rt.ingress, "/greeter.fns/person/Alice", "Alice", "text/plain");
        ck_assert_msg(status == 200, "ingress answered %d: %s", status, body);
        free(body);
    }

    /* The state: visits = 2 once both messages are processed. */
    snprintf(path, sizeof path, "/v1/state/greeter.fns/person/Alice");
    deadline = sf_e2e_now_ms() + WAIT_MS;
    for (;;) {
        body = http(&status, "GET", rt.admin, path, NULL, NULL);
        if (status == 200) {
            root = json_loads(body, 0, &jerr);
            ck_assert_msg(root != NULL, "not JSON: %s", body);
            visits = json_object_get(json_object_get(root, "states"), "visits");
            ck_assert_msg(visits != NULL, "no visits: %s", body);
            if (json_integer_value(json_object_get(visits, "value")) == 2)
                break;
            json_decref(root);
        } else {
            ck_assert_msg(status == 404, "state read answered %d: %s", status, body);
        }
        if (sf_e2e_now_ms() >= deadline)
            sf_e2e_rt_dump_log(&rt, 40);
        ck_assert_msg(sf_e2e_now_ms() < deadline, "visits did not reach 2: %s", body);
        free(body);
        sf_e2e_sleep_ms(100);
    }
    ck_assert_str_eq(json_string_value(json_object_get(root, "address")),
                     "greeter.fns/person/Alice");
    ck_assert_str_eq(json_string_value(json_object_get(visits, "typename")),
                     "io.statefun.types/int");
    ck_assert_uint_eq(json_object_size(json_object_get(root, "states")), 1);
    json_decref(root);
    free(body);

    /* The metrics: the greeter runs after the person, so wait for it. */
    body = wait_metric("statefun_function_messages_in_total",
                       "function_type=\"greeter.fns/greeter\"", 2);
    ck_assert(sf_e2e_sample(body, "statefun_function_messages_in_total",
                            "function_type=\"greeter.fns/person\"") == 2);
    ck_assert(sf_e2e_sample(body, "statefun_function_messages_in_total",
                            "function_type=\"greeter.fns/greeter\"") == 2);
    ck_assert(sf_e2e_sample(body, "statefun_function_messages_out_local_total",
                            "function_type=\"greeter.fns/person\"") == 2);
    ck_assert(sf_e2e_sample(body, "statefun_function_invocations_total",
                            "function_type=\"greeter.fns/person\"") == 2);
    ck_assert(sf_e2e_sample(body, "statefun_function_invocation_failures_total",
                            "function_type=\"greeter.fns/person\"") == 0);
    ck_assert(sf_e2e_sample(body, "statefun_function_backlog_messages",
                            "function_type=\"greeter.fns/person\"") == 0);
    ck_assert(strstr(body, "\nstatefun_ingress_accepted_total 2\n") != NULL);
    ck_assert(strstr(body, "# TYPE statefun_function_messages_in_total counter\n") != NULL);
    /* Embedded functions only: no remote latency histogram, no endpoints. */
    ck_assert_ptr_null(strstr(body, "remote_latency"));
    ck_assert_ptr_null(strstr(body, "statefun_endpoint_healthy"));
    free(body);
    body = wait_metric("statefun_function_egress_records_total",
                       "function_type=\"greeter.fns/greeter\"", 2);
    free(body);

    body = http(&status, "GET", rt.admin, "/healthz", NULL, NULL);
    ck_assert_int_eq(status, 200);
    free(body);

    stop_and_check_health();
}
END_TEST

START_TEST(test_degraded)
{
    char yaml[2048], url[128], expect[256];
    char *body = NULL;
    int status = 0;
    int64_t deadline;
    uint16_t dead_port = sf_test_free_port(); /* nothing listens there */

    ck_assert(dead_port != 0 && dead_port != rt.admin && dead_port != rt.ingress);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/statefun", (unsigned)dead_port);
    snprintf(yaml, sizeof yaml,
             "kind: io.statefun.endpoints.v2/http\n"
             "spec:\n"
             "  functions: fns/*\n"
             "  urlPathTemplate: %s\n"
             "  transport:\n"
             "    timeouts: {call: 1s, connect: 1s, read: 1s, write: 1s}\n",
             url);
    start_runtime(yaml, true, "memory");

    body = http(&status, "GET", rt.admin, "/healthz", NULL, NULL);
    ck_assert_int_eq(status, 200);
    free(body);
    body = http(&status, "PUT", rt.ingress, "/fns/f/x", "hello", NULL);
    ck_assert_msg(status == 200, "ingress answered %d: %s", status, body);
    free(body);
    body = NULL;

    deadline = sf_e2e_now_ms() + WAIT_MS;
    while (sf_e2e_now_ms() < deadline) {
        free(body);
        body = http(&status, "GET", rt.admin, "/healthz", NULL, NULL);
        if (status == 503)
            break;
        sf_e2e_sleep_ms(100);
    }
    if (status != 503)
        sf_e2e_rt_dump_log(&rt, 40);
    ck_assert_msg(status == 503, "/healthz still answers %d", status);
    snprintf(expect, sizeof expect,
             "degraded\nendpoint %s unhealthy: no successful call within the call timeout "
             "(1000 ms) for functions fns/*",
             url);
    ck_assert_msg(strncmp(body, expect, strlen(expect)) == 0, "%s", body);
    free(body);

    /* The same over h2c, and the gauges. */
    body = h2c_get(&status, "/healthz");
    ck_assert_int_eq(status, 503);
    free(body);
    snprintf(expect, sizeof expect, "endpoint=\"%s\",functions=\"fns/*\"", url);
    body = sf_e2e_metrics(rt.admin);
    ck_assert_msg(body != NULL, "GET /metrics did not answer 200");
    ck_assert_msg(sf_e2e_sample(body, "statefun_endpoint_healthy", expect) == 0, "%s", body);
    ck_assert(sf_e2e_sample(body, "statefun_function_invocation_failures_total",
                            "function_type=\"fns/f\"") >= 1);
    ck_assert(
        sf_e2e_sample(body, "statefun_function_messages_in_total", "function_type=\"fns/f\"") == 0);
    ck_assert(sf_e2e_sample(body, "statefun_function_remote_latency_seconds_count",
                            "function_type=\"fns/f\"") == 0);
    free(body);

    stop_and_check_health();
}
END_TEST

START_TEST(test_remote_greeter)
{
    char yaml[2048], exe[1100], line[256], labels[400];
    char *argv[4], *body;
    const char *addr;
    int status;

    sf_e2e_build_path(exe, sizeof exe, "examples/greeter");
    argv[0] = exe;
    argv[1] = "--listen";
    argv[2] = "127.0.0.1:0";
    argv[3] = NULL;
    remote = sf_test_spawn_line(argv, line, sizeof line, 10000);
    ck_assert_msg(remote > 0, "the remote greeter did not start");
    ck_assert_msg(strncmp(line, "listening on ", 13) == 0, "%s", line);
    addr = line + 13;
    snprintf(yaml, sizeof yaml,
             "kind: io.statefun.endpoints.v2/http\n"
             "spec:\n"
             "  functions: greeter.fns/*\n"
             "  urlPathTemplate: http://%s/\n",
             addr);
    start_runtime(yaml, false, "rocksdb");

    body = http(&status, "POST", rt.ingress, "/greeter.fns/person/Bob", "Bob", NULL);
    ck_assert_msg(status == 200, "ingress answered %d: %s", status, body);
    free(body);

    /* Both functions called remotely: the latency histogram counts the calls. */
    body = wait_metric("statefun_function_messages_in_total",
                       "function_type=\"greeter.fns/greeter\"", 1);
    ck_assert(sf_e2e_sample(body, "statefun_function_remote_latency_seconds_count",
                            "function_type=\"greeter.fns/person\"") >= 1);
    ck_assert(sf_e2e_sample(body, "statefun_function_remote_latency_seconds_bucket",
                            "function_type=\"greeter.fns/person\",le=\"+Inf\"") ==
              sf_e2e_sample(body, "statefun_function_remote_latency_seconds_count",
                            "function_type=\"greeter.fns/person\""));
    ck_assert(sf_e2e_sample(body, "statefun_function_remote_latency_seconds_sum",
                            "function_type=\"greeter.fns/person\"") > 0);
    snprintf(labels, sizeof labels, "endpoint=\"http://%s/\",functions=\"greeter.fns/*\"", addr);
    ck_assert_msg(sf_e2e_sample(body, "statefun_endpoint_healthy", labels) == 1, "%s", body);
    free(body);

    body = http(&status, "GET", rt.admin, "/v1/state/greeter.fns/person/Bob", NULL, NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "{\"address\":\"greeter.fns/person/Bob\",\"states\":{\"visits\":"
                           "{\"typename\":\"io.statefun.types/int\",\"value\":1}}}\n");
    free(body);
    body = http(&status, "GET", rt.admin, "/healthz", NULL, NULL);
    ck_assert_int_eq(status, 200);
    free(body);

    stop_and_check_health();
}
END_TEST

Suite *sf_runtime_admin_e2e_suite(void)
{
    Suite *s = suite_create("runtime_admin_e2e");
    TCase *tc = tcase_create("statefun");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_greeter);
    tcase_add_test(tc, test_degraded);
    tcase_add_test(tc, test_remote_greeter);
    suite_add_tcase(s, tc);
    return s;
}
