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
 * wait is bounded in time.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Bounds; generous because the sanitizer build runs several times slower. */
#define START_MS 30000
#define WAIT_MS 20000
#define STOP_MS 10000

static char bin[1024];
static char *tmp;
static pid_t child = -1;
static pid_t remote = -1; /* the remote greeter, when a test starts one */
static uint16_t admin_port, ingress_port, egress_port;

/* |path| made absolute against the current directory, into |out|. */
static void absolute(const char *path, char *out, size_t len)
{
    char cwd[512];
    if (path[0] == '/') {
        snprintf(out, len, "%s", path);
        return;
    }
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(out, len, "%.500s/%.500s", cwd, path);
}

static void setup(void)
{
    const char *s = getenv("STATEFUN");
    char b[1024];
    if (s && *s) {
        absolute(s, bin, sizeof bin);
    } else {
        snprintf(b, sizeof b, "%s/bin/statefun", sf_test_build());
        absolute(b, bin, sizeof bin);
    }
    ck_assert_msg(access(bin, X_OK) == 0, "no statefun binary at %s", bin);
    tmp = sf_test_mkdtemp("admin-e2e");
    ck_assert_ptr_nonnull(tmp);
    child = -1;
    remote = -1;
    admin_port = sf_test_free_port();
    ingress_port = sf_test_free_port();
    egress_port = sf_test_free_port();
    ck_assert(admin_port && ingress_port && egress_port);
    ck_assert(admin_port != ingress_port && admin_port != egress_port &&
              ingress_port != egress_port);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The runtime's log, for failure messages (static; last 1500 bytes). */
static const char *log_tail(void)
{
    static char tail[1600];
    char path[1100];
    size_t len = 0;
    char *all;
    snprintf(path, sizeof path, "%s/statefun.log", tmp);
    all = sf_test_read_file(path, &len);
    snprintf(tail, sizeof tail, "%s", all ? (len > 1500 ? all + len - 1500 : all) : "(no log)");
    free(all);
    return tail;
}

/*
 * Sends SIGTERM, waits up to STOP_MS for the exit, then SIGKILL. Returns
 * the wait status (-1 when it had to be killed).
 */
static int stop_child(void)
{
    int status = 0;
    int64_t deadline = now_ms() + STOP_MS;
    if (child <= 0)
        return 0;
    kill(child, SIGTERM);
    while (now_ms() < deadline) {
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child) {
            child = -1;
            return status;
        }
        sleep_ms(50);
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    child = -1;
    return -1;
}

static void teardown(void)
{
    if (child > 0)
        stop_child();
    if (remote > 0)
        sf_test_kill(remote);
    remote = -1;
    sf_test_rmtree(tmp);
    tmp = NULL;
}

/*
 * GETs (or |method|s with |data|) http://127.0.0.1:|port||path| with curl;
 * returns the body (caller frees) and sets |*status| (0 when nothing
 * answered).
 */
static char *http(int *status, const char *method, uint16_t port, const char *path,
                  const char *data, const char *extra)
{
    char cmd[2048], out[1100], code[16] = "";
    FILE *p;
    char *body;

    snprintf(out, sizeof out, "%s/curl.out", tmp);
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 5 -X %s %s%s%s %s -o '%s' -w '%%{http_code}' "
             "'http://127.0.0.1:%u%s'",
             method, data ? "--data-binary '" : "", data ? data : "", data ? "'" : "",
             extra ? extra : "", out, (unsigned)port, path);
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

/* Writes |yaml| to tmp/module.yaml and starts `statefun run` on it. */
static void start_runtime(const char *yaml, const char *backend)
{
    char path[1100], state[1100], logp[1100], admin[64];
    pid_t pid;
    int64_t deadline;

    snprintf(path, sizeof path, "%s/module.yaml", tmp);
    snprintf(state, sizeof state, "%s/state", tmp);
    snprintf(logp, sizeof logp, "%s/statefun.log", tmp);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", (unsigned)admin_port);
    ck_assert_int_eq(sf_test_write_file(path, yaml, strlen(yaml)), 0);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        static const char *const vars[] = {
            "STATEFUN_STATE_DIR",       "STATEFUN_STATE_BACKEND",       "STATEFUN_WORKERS",
            "STATEFUN_MAX_PARALLELISM", "STATEFUN_CHECKPOINT_INTERVAL", "STATEFUN_ADMIN",
            "STATEFUN_LOG_LEVEL"};
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_RDWR);
        size_t i;
        for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
            unsetenv(vars[i]);
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        execl(bin, bin, "run", "--state-dir", state, "--state-backend", backend, "--workers", "2",
              "--admin", admin, path, (char *)NULL);
        _exit(127);
    }
    child = pid;

    /* Ready once /healthz answers. */
    deadline = now_ms() + START_MS;
    for (;;) {
        int status, ws;
        char *body = http(&status, "GET", admin_port, "/healthz", NULL, NULL);
        free(body);
        if (status == 200)
            return;
        if (waitpid(child, &ws, WNOHANG) == child) {
            child = -1;
            ck_abort_msg("statefun exited early (status %d):\n%s", ws, log_tail());
        }
        if (now_ms() > deadline)
            ck_abort_msg("the admin listener did not answer within %d ms:\n%s", START_MS,
                         log_tail());
        sleep_ms(100);
    }
}

/*
 * The value of the sample line starting "|name|{|labels|} " in |text|, or -1
 * when there is none.
 */
static double sample(const char *text, const char *name, const char *labels)
{
    char prefix[512];
    const char *p = text;
    size_t n;
    snprintf(prefix, sizeof prefix, "%s{%s} ", name, labels);
    n = strlen(prefix);
    while ((p = strstr(p, prefix)) != NULL) {
        if (p == text || p[-1] == '\n')
            return strtod(p + n, NULL);
        p++;
    }
    return -1;
}

/* Polls /metrics until sample |name|{|labels|} is at least |want|; returns the text. */
static char *wait_metric(const char *name, const char *labels, double want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        int status;
        char *body = http(&status, "GET", admin_port, "/metrics", NULL, NULL);
        ck_assert_int_eq(status, 200);
        if (sample(body, name, labels) >= want)
            return body;
        if (now_ms() > deadline)
            ck_abort_msg("%s{%s} did not reach %g within %d ms:\n%s", name, labels, want, WAIT_MS,
                         body);
        free(body);
        sleep_ms(100);
    }
}

/* The sanitizers found nothing in the runtime (their reports go to stderr). */
static void check_log_clean(void)
{
    char path[1100];
    char *all;
    snprintf(path, sizeof path, "%s/statefun.log", tmp);
    all = sf_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(all);
    ck_assert_msg(!strstr(all, "AddressSanitizer") && !strstr(all, "runtime error:") &&
                      !strstr(all, "LeakSanitizer"),
                  "sanitizer report in the runtime's log:\n%s", all);
    free(all);
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

    kill(child, SIGTERM);
    deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        free(body);
        body = http(&status, "GET", admin_port, "/healthz", NULL, NULL);
        if (status != 200)
            break;
        sleep_ms(20);
    }
    ck_assert_msg(status == 503 || status == 0, "after SIGTERM /healthz answered %d", status);
    if (status == 503)
        ck_assert_msg(strstr(body, "degraded\n") == body &&
                          strstr(body, "\nthe runtime is stopping\n") != NULL,
                      "%s", body);
    free(body);
    stop_child();
    check_log_clean();
}

START_TEST(test_greeter)
{
    char yaml[2048], lib[1100], b[1100], path[256];
    char *body;
    int status, i;
    int64_t deadline;
    json_t *root, *visits;
    json_error_t jerr;

    snprintf(b, sizeof b, "%s/examples/libgreeter.so", sf_test_build());
    absolute(b, lib, sizeof lib);
    ck_assert_msg(access(lib, R_OK) == 0, "no %s", lib);
    snprintf(yaml, sizeof yaml,
             "kind: statefun.c.v1/embedded\n"
             "spec:\n"
             "  library: %s\n"
             "  functions: greeter.fns/*\n"
             "---\n"
             "kind: io.statefun.playground.v1/ingress\n"
             "spec:\n"
             "  port: %u\n"
             "---\n"
             "kind: io.statefun.playground.v1/egress\n"
             "spec:\n"
             "  port: %u\n"
             "  topics:\n"
             "    - greetings\n",
             lib, (unsigned)ingress_port, (unsigned)egress_port);
    start_runtime(yaml, "rocksdb");

    body = http(&status, "GET", admin_port, "/healthz", NULL, "--http2-prior-knowledge");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "ok\n");
    free(body);
    body = http(&status, "GET", admin_port, "/v1/state/greeter.fns/person/Alice", NULL, NULL);
    ck_assert_int_eq(status, 404);
    free(body);

    for (i = 0; i < 2; i++) {
        body = http(&status, "PUT", ingress_port, "/greeter.fns/person/Alice", "Alice",
                    "-H 'Content-Type: text/plain'");
        ck_assert_msg(status == 200, "ingress answered %d: %s", status, body);
        free(body);
    }

    /* The state: visits = 2 once both messages are processed. */
    snprintf(path, sizeof path, "/v1/state/greeter.fns/person/Alice");
    deadline = now_ms() + WAIT_MS;
    for (;;) {
        body = http(&status, "GET", admin_port, path, NULL, NULL);
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
        ck_assert_msg(now_ms() < deadline, "visits did not reach 2: %s\n%s", body, log_tail());
        free(body);
        sleep_ms(100);
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
    ck_assert(sample(body, "statefun_function_messages_in_total",
                     "function_type=\"greeter.fns/person\"") == 2);
    ck_assert(sample(body, "statefun_function_messages_in_total",
                     "function_type=\"greeter.fns/greeter\"") == 2);
    ck_assert(sample(body, "statefun_function_messages_out_local_total",
                     "function_type=\"greeter.fns/person\"") == 2);
    ck_assert(sample(body, "statefun_function_invocations_total",
                     "function_type=\"greeter.fns/person\"") == 2);
    ck_assert(sample(body, "statefun_function_invocation_failures_total",
                     "function_type=\"greeter.fns/person\"") == 0);
    ck_assert(sample(body, "statefun_function_backlog_messages",
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

    body = http(&status, "GET", admin_port, "/healthz", NULL, NULL);
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

    ck_assert(dead_port != 0 && dead_port != admin_port && dead_port != ingress_port);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/statefun", (unsigned)dead_port);
    snprintf(yaml, sizeof yaml,
             "kind: io.statefun.endpoints.v2/http\n"
             "spec:\n"
             "  functions: fns/*\n"
             "  urlPathTemplate: %s\n"
             "  transport:\n"
             "    timeouts: {call: 1s, connect: 1s, read: 1s, write: 1s}\n"
             "---\n"
             "kind: io.statefun.playground.v1/ingress\n"
             "spec:\n"
             "  port: %u\n",
             url, (unsigned)ingress_port);
    start_runtime(yaml, "memory");

    body = http(&status, "GET", admin_port, "/healthz", NULL, NULL);
    ck_assert_int_eq(status, 200);
    free(body);
    body = http(&status, "PUT", ingress_port, "/fns/f/x", "hello", NULL);
    ck_assert_msg(status == 200, "ingress answered %d: %s", status, body);
    free(body);
    body = NULL;

    deadline = now_ms() + WAIT_MS;
    while (now_ms() < deadline) {
        free(body);
        body = http(&status, "GET", admin_port, "/healthz", NULL, NULL);
        if (status == 503)
            break;
        sleep_ms(100);
    }
    ck_assert_msg(status == 503, "/healthz still answers %d:\n%s", status, log_tail());
    snprintf(expect, sizeof expect,
             "degraded\nendpoint %s unhealthy: no successful call within the call timeout "
             "(1000 ms) for functions fns/*",
             url);
    ck_assert_msg(strncmp(body, expect, strlen(expect)) == 0, "%s", body);
    free(body);

    /* The same over h2c, and the gauges. */
    body = http(&status, "GET", admin_port, "/healthz", NULL, "--http2-prior-knowledge");
    ck_assert_int_eq(status, 503);
    free(body);
    snprintf(expect, sizeof expect, "endpoint=\"%s\",functions=\"fns/*\"", url);
    body = http(&status, "GET", admin_port, "/metrics", NULL, NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(sample(body, "statefun_endpoint_healthy", expect) == 0, "%s", body);
    ck_assert(sample(body, "statefun_function_invocation_failures_total",
                     "function_type=\"fns/f\"") >= 1);
    ck_assert(sample(body, "statefun_function_messages_in_total", "function_type=\"fns/f\"") == 0);
    ck_assert(sample(body, "statefun_function_remote_latency_seconds_count",
                     "function_type=\"fns/f\"") == 0);
    free(body);

    stop_and_check_health();
}
END_TEST

START_TEST(test_remote_greeter)
{
    char yaml[2048], exe[1100], b[1100], line[256], labels[400];
    char *argv[4], *body;
    const char *addr;
    int status;

    snprintf(b, sizeof b, "%s/examples/greeter", sf_test_build());
    absolute(b, exe, sizeof exe);
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
             "  urlPathTemplate: http://%s/\n"
             "---\n"
             "kind: io.statefun.playground.v1/ingress\n"
             "spec:\n"
             "  port: %u\n"
             "---\n"
             "kind: io.statefun.playground.v1/egress\n"
             "spec:\n"
             "  port: %u\n"
             "  topics:\n"
             "    - greetings\n",
             addr, (unsigned)ingress_port, (unsigned)egress_port);
    start_runtime(yaml, "rocksdb");

    body = http(&status, "POST", ingress_port, "/greeter.fns/person/Bob", "Bob", NULL);
    ck_assert_msg(status == 200, "ingress answered %d: %s", status, body);
    free(body);

    /* Both functions called remotely: the latency histogram counts the calls. */
    body = wait_metric("statefun_function_messages_in_total",
                       "function_type=\"greeter.fns/greeter\"", 1);
    ck_assert(sample(body, "statefun_function_remote_latency_seconds_count",
                     "function_type=\"greeter.fns/person\"") >= 1);
    ck_assert(sample(body, "statefun_function_remote_latency_seconds_bucket",
                     "function_type=\"greeter.fns/person\",le=\"+Inf\"") ==
              sample(body, "statefun_function_remote_latency_seconds_count",
                     "function_type=\"greeter.fns/person\""));
    ck_assert(sample(body, "statefun_function_remote_latency_seconds_sum",
                     "function_type=\"greeter.fns/person\"") > 0);
    snprintf(labels, sizeof labels, "endpoint=\"http://%s/\",functions=\"greeter.fns/*\"", addr);
    ck_assert_msg(sample(body, "statefun_endpoint_healthy", labels) == 1, "%s", body);
    free(body);

    body = http(&status, "GET", admin_port, "/v1/state/greeter.fns/person/Bob", NULL, NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "{\"address\":\"greeter.fns/person/Bob\",\"states\":{\"visits\":"
                           "{\"typename\":\"io.statefun.types/int\",\"value\":1}}}\n");
    free(body);
    body = http(&status, "GET", admin_port, "/healthz", NULL, NULL);
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
