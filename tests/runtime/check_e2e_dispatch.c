/* statefun-c: Apache License 2.0.
 *
 * End-to-end: the dispatcher's guarantees seen from outside, through a real
 * `statefun run` and the test function server tests/progs/e2e_fn.c
 * (function e2e.fns/seq counts messages and out-of-order ones in its state,
 * read back through the admin API):
 *   - ordering and batching: 3000 messages to one address, all in flight at
 *     once over one HTTP/2 connection, arrive in order, exactly once, and
 *     the function sees requests carrying more than one message;
 *   - backpressure: a function answering after 50 ms with
 *     maxNumBatchRequests 5 makes the ingress hold requests until the
 *     address takes messages again (parked), and senders get every message
 *     processed once and in order; one answering after 1.5 s makes a request
 *     that waited the ingress's 1 s answer 503 with Retry-After;
 *   - a failing endpoint: nothing listening, then 500s, then replies that
 *     are no FromFunction, then calls that hang past the call timeout, then
 *     recovery: every message delivered once and in order, /healthz degraded
 *     meanwhile and ok afterwards;
 *   - a graceful stop while a call hangs: prompt exit, and after the restart
 *     every message processed once, in order.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

#define SEQ_ADDR "e2e.fns/seq/one"

/* The e2e_fn program. */
static void fn_prog(char *out, size_t len)
{
    sf_e2e_build_path(out, len, "tests/e2e_fn");
}

/* One counter of e2e_fn's /ctl/stats, or -1. */
static long fn_stat(uint16_t port, const char *name)
{
    sf_e2e_resp_t r;
    char key[64];
    const char *p;
    long v = -1;
    snprintf(key, sizeof key, "%s=", name);
    if (sf_e2e_http(port, "GET", "/ctl/stats", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
        (p = strstr(r.body, key)) != NULL)
        v = strtol(p + strlen(key), NULL, 10);
    sf_e2e_resp_dispose(&r);
    return v;
}

static void fn_control(uint16_t port, const char *path)
{
    sf_e2e_resp_t r;
    ck_assert_int_eq(sf_e2e_http(port, "POST", path, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    sf_e2e_resp_dispose(&r);
}

/* Waits until the stat |name| of e2e_fn reaches |min|; returns the value. */
static long wait_stat(uint16_t port, const char *name, long min, int timeout_ms)
{
    int64_t deadline = sf_e2e_now_ms() + timeout_ms;
    long v;
    while ((v = fn_stat(port, name)) < min && sf_e2e_now_ms() < deadline)
        sf_e2e_sleep_ms(20);
    return v;
}

static int wait_health(uint16_t admin, int want, int timeout_ms, char **body)
{
    int64_t deadline = sf_e2e_now_ms() + timeout_ms;
    int st;
    for (;;) {
        *body = NULL;
        st = sf_e2e_health(admin, body);
        if (st == want || sf_e2e_now_ms() >= deadline)
            return st;
        free(*body);
        sf_e2e_sleep_ms(50);
    }
}

/* Writes the module: every e2e.fns function at 127.0.0.1:|port| with |transport_extra|. */
static void seq_module(sf_e2e_rt_t *rt, uint16_t port, unsigned max_batch,
                       const char *transport_extra)
{
    sf_e2e_rt_module(rt, "out", "exactly-once",
                     "kind: io.statefun.endpoints.v2/http\n"
                     "spec:\n"
                     "  functions: e2e.fns/*\n"
                     "  urlPathTemplate: http://127.0.0.1:%u/statefun\n"
                     "  maxNumBatchRequests: %u\n"
                     "  transport:\n"
                     "    protocol: h2c\n"
                     "%s",
                     port, max_batch, transport_extra);
}

/* Asserts the final state of SEQ_ADDR: |count| messages, none out of order,
 * and every lane's last seq is |per_lane|. */
static void check_seq_state(sf_e2e_rt_t *rt, long long count, unsigned nlanes, unsigned per_lane)
{
    char want[1024], *lanes, *o = want;
    long long got = sf_e2e_wait_state_int(rt->admin, SEQ_ADDR, "count", count, 60000);
    unsigned i;

    if (got != count)
        sf_e2e_rt_dump_log(rt, 30);
    ck_assert_int_eq(got, count);
    ck_assert_int_eq(sf_e2e_state_int(rt->admin, SEQ_ADDR, "bad", 0), 0);
    for (i = 0; i < nlanes; i++)
        o += sprintf(o, "%s%u", i ? "," : "", per_lane);
    lanes = sf_e2e_state_str(rt->admin, SEQ_ADDR, "lanes");
    ck_assert_ptr_nonnull(lanes);
    ck_assert_str_eq(lanes, want);
    free(lanes);
    /* Exactly once: nothing more arrives later. */
    sf_e2e_sleep_ms(200);
    ck_assert_int_eq(sf_e2e_state_int(rt->admin, SEQ_ADDR, "count", -1), count);
}

static void make_seq(unsigned lane, unsigned seq, char *path, size_t plen, char *body, size_t blen,
                     void *ud)
{
    (void)ud;
    snprintf(path, plen, "/%s", SEQ_ADDR);
    snprintf(body, blen, "%u %u", lane, seq);
}

/* ------------------------------------------------------------------------ */

#define ORDER_N 3000

START_TEST(test_order_and_batching)
{
    char prog[1100];
    char *argv[] = {prog, NULL};
    sf_e2e_rt_t rt;
    sf_e2e_load_t load;
    uint16_t port;
    pid_t fn;

    fn_prog(prog, sizeof prog);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-order");
    seq_module(&rt, port, 100000, "");
    sf_e2e_rt_start(&rt, NULL);

    memset(&load, 0, sizeof load);
    load.port = rt.ingress;
    load.protocol = SF_HTTP_PROTO_H2C;
    load.nlanes = 1;
    load.per_lane = ORDER_N;
    load.window = ORDER_N; /* all at once, in order on one connection */
    load.timeout_ms = 60000;
    load.make = make_seq;
    ck_assert_msg(sf_e2e_load_run(&load) == 0,
                  "accepted %u of %u (503 %u, other %u: %d, errors %u: %d, timed out %d)",
                  load.accepted, ORDER_N, load.rejected_503, load.other, load.other_status,
                  load.errors, load.first_error, load.timed_out);
    check_seq_state(&rt, ORDER_N, 1, ORDER_N);
    /* The messages queued behind the one in flight went out together. */
    ck_assert_int_ge(fn_stat(port, "invocations"), ORDER_N);
    ck_assert_int_gt(fn_stat(port, "maxbatch"), 1);
    ck_assert_int_gt(fn_stat(port, "multi"), 0);
    ck_assert_int_lt(fn_stat(port, "calls"), ORDER_N);
    fprintf(stderr, "e2e order: %d messages accepted in %lld ms; %ld calls, max batch %ld\n",
            ORDER_N, (long long)load.elapsed_ms, fn_stat(port, "calls"), fn_stat(port, "maxbatch"));

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

#define BP_LANES 8
#define BP_PER_LANE 40

START_TEST(test_backpressure)
{
    char prog[1100];
    char *argv[] = {prog, NULL};
    sf_e2e_rt_t rt;
    sf_e2e_load_t load;
    sf_e2e_resp_t r;
    uint16_t port;
    pid_t fn;
    bool seen_503 = false;
    char *metrics;
    double parked;
    int64_t t0;
    int i;

    fn_prog(prog, sizeof prog);
    fn = sf_e2e_spawn_server(argv, &port);
    fn_control(port, "/ctl/slow/50");
    sf_e2e_rt_init(&rt, "e2e-backpressure");
    seq_module(&rt, port, 5, "");
    sf_e2e_rt_start(&rt, NULL);

    memset(&load, 0, sizeof load);
    load.port = rt.ingress;
    load.protocol = SF_HTTP_PROTO_H2C;
    load.nlanes = BP_LANES;
    load.per_lane = BP_PER_LANE;
    load.window = 1;
    load.retry_503 = true;
    load.timeout_ms = 60000;
    load.make = make_seq;
    ck_assert_msg(sf_e2e_load_run(&load) == 0,
                  "accepted %u of %u (503 %u, other %u: %d, errors %u: %d, timed out %d)",
                  load.accepted, BP_LANES * BP_PER_LANE, load.rejected_503, load.other,
                  load.other_status, load.errors, load.first_error, load.timed_out);
    metrics = sf_e2e_metrics(rt.admin);
    ck_assert_ptr_nonnull(metrics);
    parked = sf_e2e_sample(metrics, "statefun_ingress_parked_total", NULL);
    free(metrics);
    ck_assert_msg(parked > 0, "no request waited while the function was slow");
    fprintf(stderr, "e2e backpressure: %u messages in %lld ms, %.0f waited, %u answers 503\n",
            BP_LANES * BP_PER_LANE, (long long)load.elapsed_ms, parked, load.rejected_503);
    check_seq_state(&rt, BP_LANES * BP_PER_LANE, BP_LANES, BP_PER_LANE);

    /* The 503: a request still blocked after the ingress's wait (1 s) gets
     * Retry-After and a one-line reason. Block the address for longer than
     * that (the function answers after 1.5 s) and look at one answer. */
    fn_control(port, "/ctl/slow/1500");
    for (i = 0; i < 40 && !seen_503; i++) {
        t0 = sf_e2e_now_ms();
        ck_assert_int_eq(sf_e2e_http(rt.ingress, "PUT", "/" SEQ_ADDR, "text/plain", "0 1", 3, &r),
                         0);
        if (r.status == 503) {
            seen_503 = true;
            ck_assert_int_ge(sf_e2e_now_ms() - t0, 900);
            ck_assert_str_ne(r.retry_after, "");
            ck_assert_ptr_nonnull(strstr(r.body, "backpressure"));
        } else {
            ck_assert_int_eq(r.status, 200);
        }
        sf_e2e_resp_dispose(&r);
    }
    ck_assert(seen_503);

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* Sends "0 from".."0 to" one at a time; each must be accepted. */
static void send_range(sf_e2e_rt_t *rt, int from, int to)
{
    char body[32];
    int i;
    for (i = from; i <= to; i++) {
        snprintf(body, sizeof body, "0 %d", i);
        ck_assert_int_eq(sf_e2e_put(rt->ingress, "/" SEQ_ADDR, body), 200);
    }
}

START_TEST(test_failing_endpoint)
{
    char prog[1100], listen[64];
    char *argv[] = {prog, "--listen", listen, "--mode", "fail", NULL};
    sf_e2e_rt_t rt;
    uint16_t port = sf_test_free_port(), got_port;
    char *body;
    pid_t fn;
    long calls;

    fn_prog(prog, sizeof prog);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    sf_e2e_rt_init(&rt, "e2e-failing");
    seq_module(&rt, port, 1000,
               "    timeouts:\n"
               "      call: 1s\n"
               "      connect: 200ms\n"
               "      read: 1s\n"
               "      write: 1s\n");
    sf_e2e_rt_start(&rt, NULL);
    ck_assert_int_eq(sf_e2e_health(rt.admin, NULL), 200);

    /* 1. Nothing listens: accepted all the same, the endpoint turns unhealthy
     * once the call timeout has passed without a successful call. */
    send_range(&rt, 1, 5);
    ck_assert_int_eq(wait_health(rt.admin, 503, 15000, &body), 503);
    ck_assert_ptr_nonnull(body);
    ck_assert_msg(strstr(body, "degraded") != NULL, "healthz: %s", body);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    ck_assert_msg(strstr(body, listen) != NULL, "healthz does not name the endpoint: %s", body);
    free(body);

    /* 2. The endpoint answers 500. */
    fn = sf_e2e_spawn_server(argv, &got_port);
    ck_assert_int_eq(got_port, port);
    send_range(&rt, 6, 10);
    ck_assert_int_ge(wait_stat(port, "failed", 2, 15000), 2);
    ck_assert_int_eq(sf_e2e_health(rt.admin, NULL), 503);

    /* 3. The endpoint answers 200 with bytes that are no FromFunction. */
    fn_control(port, "/ctl/mode/garbage");
    calls = fn_stat(port, "failed");
    ck_assert_int_ge(wait_stat(port, "failed", calls + 2, 15000), calls + 2);
    ck_assert_int_eq(sf_e2e_health(rt.admin, NULL), 503);

    /* 3b. A reply that parses but violates the protocol (its state mutations
     * are good, an outgoing message has no target): what was staged of it is
     * taken back out of the worker's commit batch, so nothing is applied
     * (step 5 would count too much otherwise). */
    fn_control(port, "/ctl/mode/violate");
    calls = fn_stat(port, "failed");
    ck_assert_int_ge(wait_stat(port, "failed", calls + 2, 15000), calls + 2);
    ck_assert_int_eq(sf_e2e_state_int(rt.admin, SEQ_ADDR, "count", -1), -1);

    /* 4. Calls hang past the call timeout. */
    fn_control(port, "/ctl/mode/hang");
    calls = fn_stat(port, "calls");
    send_range(&rt, 11, 15);
    ck_assert_int_ge(wait_stat(port, "hung", 2, 20000), 2);
    ck_assert_int_gt(fn_stat(port, "calls"), calls + 1);
    ck_assert_int_eq(sf_e2e_health(rt.admin, NULL), 503);
    ck_assert_int_eq(fn_stat(port, "ok"), 0);

    /* 5. Recovery: everything once, in order; healthy again. */
    fn_control(port, "/ctl/mode/ok");
    check_seq_state(&rt, 15, 1, 15);
    ck_assert_int_eq(wait_health(rt.admin, 200, 10000, &body), 200);
    free(body);
    ck_assert_int_ge(sf_e2e_rt_log_count(&rt, "is unhealthy"), 1);
    ck_assert_int_ge(sf_e2e_rt_log_count(&rt, "healthy again"), 1);

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* A graceful stop while a call hangs and messages wait behind it: the
 * runtime exits promptly, and after the restart every message is processed
 * once, in order. */
START_TEST(test_stop_while_call_hangs)
{
    char prog[1100];
    char *argv[] = {prog, "--mode", "hang", NULL};
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;
    int64_t t0;

    fn_prog(prog, sizeof prog);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-stop-hang");
    seq_module(&rt, port, 1000, "");
    sf_e2e_rt_start(&rt, NULL);
    send_range(&rt, 1, 20);
    ck_assert_int_ge(wait_stat(port, "hung", 1, 10000), 1);
    t0 = sf_e2e_now_ms();
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    ck_assert_int_lt(sf_e2e_now_ms() - t0, 10000);

    fn_control(port, "/ctl/mode/ok");
    sf_e2e_rt_start(&rt, NULL);
    check_seq_state(&rt, 20, 1, 20);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

Suite *sf_runtime_e2e_dispatch_suite(void)
{
    Suite *s = suite_create("runtime_e2e_dispatch");
    TCase *tc = tcase_create("dispatch");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_order_and_batching);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_failing_endpoint);
    tcase_add_test(tc, test_stop_while_call_hangs);
    suite_add_tcase(s, tc);
    return s;
}
