/* statefun-c: Apache License 2.0.
 *
 * The benchmarks' regression guard (bench/README.md): a short run of the
 * remote-counter and embedded workloads through a real `statefun run`
 * ($STATEFUN, or $SF_BUILD/bin/statefun) on free loopback ports, driven by
 * h2load like the benchmarks. It checks that every request is accepted, that
 * the runtime processes every message, and, through the admin state API,
 * that every counter holds exactly its share: no message lost, none applied
 * twice. It asserts nothing about time.
 *
 *   embedded: bench/libcounter.so loaded in-process;
 *   remote:   BUILD/bench/counter serving the same functions over h2c.
 *
 * Each process is stopped by PID (SIGTERM, then SIGKILL after a bound) and
 * every wait is bounded. Runs on the test's own thread.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "e2e.h"
#include "testutil.h"

/* Distinct counters: more than the two workers keep idle activations for
 * (SF_DISPATCH_IDLE_ACTS each), so activations are dropped and made again. */
#define ADDRESSES 10000
#define CLIENTS 4 /* h2load connections; each walks every address */
#define ROUNDS 1  /* times each client walks the list */
_Static_assert(ADDRESSES > 2 * SF_DISPATCH_IDLE_ACTS, "the smoke run must drop idle activations");
#define WAIT_MS 30000

static sf_e2e_rt_t rt;
static pid_t fn_pid = -1;

static void setup(void)
{
    sf_e2e_rt_init(&rt, "bench-smoke");
    fn_pid = -1;
}

static void teardown(void)
{
    sf_test_kill(fn_pid);
    fn_pid = -1;
    sf_e2e_rt_dispose(&rt);
}

/* Writes the module file (|endpoint|, then the ingress) and starts the runtime. */
static void start_runtime(const char *endpoint)
{
    sf_e2e_rt_module(&rt, NULL, NULL, "%s", endpoint);
    sf_e2e_rt_start(&rt, "--workers", "2", "--log-level", "warn", NULL);
}

/* bench/counter's messages_in_total from /metrics, or -1. */
static long long processed(void)
{
    char *text = sf_e2e_metrics(rt.admin);
    long long v = -1;
    if (text) {
        v = (long long)sf_e2e_sample(text, "statefun_function_messages_in_total",
                                     "function_type=\"bench/counter\"");
        free(text);
    }
    return v;
}

/* Starts BUILD/bench/counter on a free port; returns the port. */
static uint16_t start_counter(void)
{
    char bin[1100];
    char *argv[] = {bin, "--listen", "127.0.0.1:0", NULL};
    uint16_t port;
    sf_e2e_build_path(bin, sizeof bin, "bench/counter");
    ck_assert_msg(access(bin, X_OK) == 0, "no %s", bin);
    fn_pid = sf_e2e_spawn_server(argv, &port);
    return port;
}

/*
 * Sends CLIENTS * ROUNDS messages to each of ADDRESSES counters with h2load
 * (|h1|: over HTTP/1.1), waits until all are processed, then reads every
 * counter through /v1/state and checks that none holds more than
 * CLIENTS * ROUNDS and that together they hold every accepted message.
 */
static void drive_and_verify(int h1)
{
    char uris[1100], body[1100], out[1100];
    long long total = (long long)ADDRESSES * CLIENTS * ROUNDS, sum = 0;
    long long got = -1;
    int64_t deadline;
    FILE *f;
    int i, rv, n = 0;

    snprintf(uris, sizeof uris, "%s/uris", rt.dir);
    snprintf(body, sizeof body, "%s/body", rt.dir);
    snprintf(out, sizeof out, "%s/h2load.out", rt.dir);
    f = fopen(uris, "w");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < ADDRESSES; i++)
        fprintf(f, "http://127.0.0.1:%u/bench/counter/k%d\n", (unsigned)rt.ingress, i);
    fclose(f);
    ck_assert_int_eq(sf_test_write_file(body, "1", 1), 0);

    rv = sf_test_sh("h2load -n %lld -c %d -m %d %s -d '%s' -H 'Content-Type: text/plain' "
                    "-T 20 -N 20 -i '%s' > '%s' 2>&1",
                    total, CLIENTS, h1 ? 1 : 32, h1 ? "--h1" : "", body, uris, out);
    {
        /* Every request is answered 200, or 503 when the runtime pushes back
         * (more outstanding work than a worker admits): the 200s are what
         * must be processed, each exactly once. */
        char *o = sf_test_read_file(out, NULL), *sc;
        long long ok = -1, fails = -1;
        ck_assert_msg(rv == 0 && o && (sc = strstr(o, "status codes: ")) &&
                          sscanf(sc, "status codes: %lld 2xx, %*d 3xx, %*d 4xx, %lld 5xx", &ok,
                                 &fails) == 2 &&
                          ok + fails == total && ok > 0,
                      "h2load (exit %d):\n%s", rv, o ? o : "(no output)");
        free(o);
        total = ok;
    }

    deadline = sf_e2e_now_ms() + WAIT_MS;
    while ((got = processed()) < total) {
        if (sf_e2e_now_ms() >= deadline)
            sf_e2e_rt_dump_log(&rt, 40);
        ck_assert_msg(sf_e2e_now_ms() < deadline, "%lld of %lld messages processed within %d ms",
                      got, total, WAIT_MS);
        sf_e2e_sleep_ms(50);
    }
    ck_assert_int_eq(got, total);

    /* Every counter, read back through the admin state API. */
    for (i = 0; i < ADDRESSES; i++) {
        char addr[64];
        json_t *states, *v;
        snprintf(addr, sizeof addr, "bench/counter/k%d", i);
        states = sf_e2e_state(rt.admin, addr); /* fails the test unless 200 (JSON) or 404 */
        v = json_object_get(json_object_get(states, "n"), "value");
        ck_assert_msg(json_integer_value(v) >= 0 && json_integer_value(v) <= CLIENTS * ROUNDS,
                      "%s holds %lld, at most %d were sent", addr, (long long)json_integer_value(v),
                      CLIENTS * ROUNDS);
        sum += json_integer_value(v);
        json_decref(states);
        n++;
    }
    ck_assert_int_eq(n, ADDRESSES);
    /* No message lost or counted twice: the counters add up to the 200s. */
    ck_assert_int_eq(sum, total);

    /* Stopped cleanly, and no sanitizer report in the runtime's log. */
    sf_e2e_rt_stop(&rt);
    sf_e2e_rt_check_log_clean(&rt);
}

START_TEST(test_embedded)
{
    char lib[1100], endpoint[1400];
    sf_e2e_build_path(lib, sizeof lib, "bench/libcounter.so");
    ck_assert_msg(access(lib, R_OK) == 0, "no %s", lib);
    snprintf(endpoint, sizeof endpoint,
             "kind: statefun.c.v1/embedded\nspec:\n  library: %s\n  functions: bench/*\n", lib);
    start_runtime(endpoint);
    drive_and_verify(0);
}
END_TEST

START_TEST(test_remote)
{
    char endpoint[1024];
    snprintf(endpoint, sizeof endpoint,
             "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
             "  urlPathTemplate: http://127.0.0.1:%u/\n",
             (unsigned)start_counter());
    start_runtime(endpoint);
    drive_and_verify(0);
}
END_TEST

/* HTTP/1.1 on both sides: the ingress driven over HTTP/1.1, the function
 * called over HTTP/1.1. */
START_TEST(test_remote_h1)
{
    char endpoint[1024];
    snprintf(endpoint, sizeof endpoint,
             "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
             "  urlPathTemplate: http://127.0.0.1:%u/\n"
             "  transport:\n    type: io.statefun.transports.v1/async\n    protocol: http1\n",
             (unsigned)start_counter());
    start_runtime(endpoint);
    drive_and_verify(1);
}
END_TEST

Suite *sf_runtime_bench_smoke_suite(void)
{
    Suite *s = suite_create("runtime_bench_smoke");
    TCase *tc = tcase_create("smoke");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_embedded);
    tcase_add_test(tc, test_remote);
    tcase_add_test(tc, test_remote_h1);
    suite_add_tcase(s, tc);
    return s;
}
