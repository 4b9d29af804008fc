/* statefun-c: Apache License 2.0.
 *
 * End-to-end: state, TTL and delayed messages through a real `statefun
 * run`, with the test function server tests/progs/e2e_fn.c or the embedded
 * greeter:
 *   - TTL: AFTER_WRITE expires a value a TTL after its last write even when
 *     the function is invoked meanwhile; AFTER_INVOKE only a TTL after the
 *     last invocation (seen by the function and through the admin API's
 *     expires_at_ms);
 *   - delayed messages fire no earlier than their delay and once; cancelled
 *     in the same reply or in a later one they never fire; cancelling an
 *     unknown token is a no-op;
 *   - a delayed message pending at a graceful stop fires once after the
 *     restart on the same state dir (with another worker count);
 *   - a 3 MiB message stored as state and sent back with the next call;
 *   - state survives a graceful restart with rocksdb, and with the memory
 *     backend through the final checkpoint; with the memory backend and
 *     checkpoints off it starts fresh (each restart with another worker
 *     count).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

#define TTL_MS 1200

static void fn_prog(char *out, size_t len)
{
    sf_e2e_build_path(out, len, "tests/e2e_fn");
}

static void fns_module(sf_e2e_rt_t *rt, uint16_t port)
{
    sf_e2e_rt_module(rt, "out, ttl", "at-least-once",
                     "kind: io.statefun.endpoints.v2/http\n"
                     "spec:\n"
                     "  functions: e2e.fns/*\n"
                     "  urlPathTemplate: http://127.0.0.1:%u/\n"
                     "  transport:\n"
                     "    protocol: h2c\n",
                     port);
}

/* expires_at_ms of state |name| of |addr|, or -1 when it has none. */
static long long expires_at(uint16_t admin, const char *addr, const char *name)
{
    json_t *s = sf_e2e_state(admin, addr), *v;
    long long out = -1;
    if (s && (v = json_object_get(json_object_get(s, name), "expires_at_ms")) != NULL &&
        json_is_integer(v))
        out = (long long)json_integer_value(v);
    json_decref(s);
    return out;
}

static void sleep_until_wall(int64_t wall_ms)
{
    int64_t now = sf_e2e_wall_ms();
    if (wall_ms > now)
        sf_e2e_sleep_ms((int)(wall_ms - now));
}

/* PUTs "peek" to the ttl function and returns what it saw. */
static char *peek(sf_e2e_rt_t *rt)
{
    char *got;
    ck_assert_int_eq(sf_e2e_put(rt->ingress, "/e2e.fns/ttl/a", "peek"), 200);
    got = sf_e2e_egress_pop(rt->egress, "ttl", 10000);
    ck_assert_msg(got != NULL, "no answer to peek");
    return got;
}

START_TEST(test_ttl_modes)
{
    char prog[1100], ttl[16];
    char *argv[] = {prog, "--ttl", ttl, NULL};
    sf_e2e_rt_t rt;
    long long ew0, ei0, ei1, ei;
    int64_t t_before, t_after, deadline;
    uint16_t port;
    pid_t fn;
    char *got;

    fn_prog(prog, sizeof prog);
    snprintf(ttl, sizeof ttl, "%d", TTL_MS);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-ttl");
    fns_module(&rt, port);
    sf_e2e_rt_start(&rt, NULL);

    /* Both written: both expire a TTL after the write. */
    t_before = sf_e2e_wall_ms();
    ck_assert_int_eq(sf_e2e_put(rt.ingress, "/e2e.fns/ttl/a", "set"), 200);
    deadline = sf_e2e_now_ms() + 10000;
    while (((ew0 = expires_at(rt.admin, "e2e.fns/ttl/a", "w")) < 0 ||
            (ei0 = expires_at(rt.admin, "e2e.fns/ttl/a", "i")) < 0) &&
           sf_e2e_now_ms() < deadline)
        sf_e2e_sleep_ms(10);
    t_after = sf_e2e_wall_ms();
    ck_assert_int_ge(ew0, t_before + TTL_MS);
    ck_assert_int_le(ew0, t_after + TTL_MS);
    ck_assert_int_ge(ei0, t_before + TTL_MS);
    ck_assert_int_le(ei0, t_after + TTL_MS);

    /* An invocation that only reads: AFTER_INVOKE moves, AFTER_WRITE does not. */
    sf_e2e_sleep_ms(TTL_MS / 2);
    ck_assert_int_eq(sf_e2e_put(rt.ingress, "/e2e.fns/ttl/a", "noop"), 200);
    deadline = sf_e2e_now_ms() + 10000;
    while ((ei1 = expires_at(rt.admin, "e2e.fns/ttl/a", "i")) == ei0 && sf_e2e_now_ms() < deadline)
        sf_e2e_sleep_ms(10);
    ck_assert_int_ge(ei1, ei0 + TTL_MS / 2 - 50);
    ck_assert_int_eq(expires_at(rt.admin, "e2e.fns/ttl/a", "w"), ew0);

    /* Past the write's TTL, within the invocation's: the function sees i only. */
    sleep_until_wall(ew0 + 50);
    ck_assert_int_lt(sf_e2e_wall_ms(), ei1 - 100);
    got = peek(&rt);
    ck_assert_str_eq(got, "w=- i=x");
    free(got);

    /* Past the last invocation's TTL: nothing. */
    ei = expires_at(rt.admin, "e2e.fns/ttl/a", "i");
    ck_assert_int_ge(ei, ei1);
    sleep_until_wall(ei + 50);
    got = peek(&rt);
    ck_assert_str_eq(got, "w=- i=-");
    free(got);
    /* And the admin API shows none of them. */
    ck_assert_int_eq(expires_at(rt.admin, "e2e.fns/ttl/a", "w"), -1);
    ck_assert_int_eq(expires_at(rt.admin, "e2e.fns/ttl/a", "i"), -1);

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* PUTs |cmd| to delay/|id| and waits until the function has processed |n| commands. */
static void delay_cmd(sf_e2e_rt_t *rt, const char *id, const char *cmd, int n)
{
    char path[128], addr[128];
    snprintf(path, sizeof path, "/e2e.fns/delay/%s", id);
    snprintf(addr, sizeof addr, "e2e.fns/delay/%s", id);
    ck_assert_int_eq(sf_e2e_put(rt->ingress, path, cmd), 200);
    ck_assert_int_eq(sf_e2e_wait_state_int(rt->admin, addr, "n", n, 10000), n);
}

START_TEST(test_delayed_and_cancelled)
{
    char prog[1100];
    char *argv[] = {prog, NULL};
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;
    int64_t t0, t_a = -1, t_end = -1, deadline;
    char *got[8];
    size_t n = 0, i;

    fn_prog(prog, sizeof prog);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-delay");
    fns_module(&rt, port);
    sf_e2e_rt_start(&rt, NULL);

    t0 = sf_e2e_now_ms();
    delay_cmd(&rt, "d1", "after 300 - A", 1);
    delay_cmd(&rt, "d1", "aftercancel 300 t1 B", 2); /* cancelled in the same reply */
    delay_cmd(&rt, "d1", "after 600 t2 C", 3);
    delay_cmd(&rt, "d1", "cancel t2", 4);     /* cancelled by a later reply */
    delay_cmd(&rt, "d1", "cancel nosuch", 5); /* an unknown token: a no-op */
    delay_cmd(&rt, "d1", "after 900 - END", 6);

    deadline = sf_e2e_now_ms() + 15000;
    while (n < 8 && t_end < 0 && sf_e2e_now_ms() < deadline) {
        char *p = sf_e2e_egress_pop(rt.egress, "out", 1000);
        if (!p)
            continue;
        if (strcmp(p, "d1:A") == 0)
            t_a = sf_e2e_now_ms();
        if (strcmp(p, "d1:END") == 0)
            t_end = sf_e2e_now_ms();
        got[n++] = p;
    }
    ck_assert_msg(t_end >= 0, "END never arrived (%zu records)", n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(got[0], "d1:A");
    ck_assert_str_eq(got[1], "d1:END");
    ck_assert_int_ge(t_a - t0, 300);
    ck_assert_int_ge(t_end - t0, 900);
    for (i = 0; i < n; i++)
        free(got[i]);
    /* Fired once: nothing else comes. */
    got[0] = sf_e2e_egress_pop(rt.egress, "out", 700);
    ck_assert_msg(got[0] == NULL, "unexpected record \"%s\"", got[0]);

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

START_TEST(test_delayed_survives_restart)
{
    char prog[1100];
    char *argv[] = {prog, NULL};
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;
    int64_t t0;
    char *got;

    fn_prog(prog, sizeof prog);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-delay-restart");
    fns_module(&rt, port);
    sf_e2e_rt_start(&rt, "--workers", "1", NULL);
    t0 = sf_e2e_now_ms();
    delay_cmd(&rt, "d2", "after 1500 r1 R", 1);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    ck_assert_int_lt(sf_e2e_now_ms() - t0, 1500); /* stopped before it fired */

    /* Another worker count: the key groups move between workers. */
    sf_e2e_rt_start(&rt, "--workers", "3", NULL);
    got = sf_e2e_egress_pop(rt.egress, "out", 10000);
    ck_assert_msg(got != NULL, "the delayed message did not fire after the restart");
    ck_assert_str_eq(got, "d2:R");
    ck_assert_int_ge(sf_e2e_now_ms() - t0, 1500);
    free(got);
    got = sf_e2e_egress_pop(rt.egress, "out", 1000);
    ck_assert_msg(got == NULL, "unexpected record \"%s\"", got);

    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* A 3 MiB message becomes a 3 MiB state, sent back with the next call
 * (HTTP/2 flow control in both directions). */
START_TEST(test_large_state)
{
    char prog[1100];
    char *argv[] = {prog, NULL};
    const size_t len = 3u * 1024 * 1024;
    sf_e2e_rt_t rt;
    uint16_t port;
    pid_t fn;
    char *big, *got;

    fn_prog(prog, sizeof prog);
    fn = sf_e2e_spawn_server(argv, &port);
    sf_e2e_rt_init(&rt, "e2e-large");
    fns_module(&rt, port);
    sf_e2e_rt_start(&rt, NULL);
    big = malloc(len + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', len);
    big[len] = '\0';
    ck_assert_int_eq(sf_e2e_put(rt.ingress, "/e2e.fns/blob/big", big), 200);
    free(big);
    ck_assert_int_eq(sf_e2e_put(rt.ingress, "/e2e.fns/blob/big", "get"), 200);
    got = sf_e2e_egress_pop(rt.egress, "out", 10000);
    if (!got)
        sf_e2e_rt_dump_log(&rt, 20);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "big:len=3145728");
    free(got);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_test_kill(fn);
    sf_e2e_rt_dispose(&rt);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* State across a graceful restart                                            */

static void visit(sf_e2e_rt_t *rt, const char *want)
{
    char *got;
    ck_assert_int_eq(sf_e2e_put(rt->ingress, "/greeter.fns/person/Alice", "Alice"), 200);
    got = sf_e2e_egress_pop(rt->egress, "greetings", 10000);
    ck_assert_msg(got != NULL, "no greeting (expected \"%s\")", want);
    ck_assert_str_eq(got, want);
    free(got);
}

static void restart(const char *backend, const char *interval, bool survives)
{
    char lib[1100];
    sf_e2e_rt_t rt;

    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    sf_e2e_rt_init(&rt, "e2e-restart");
    sf_e2e_rt_module(&rt, "greetings", "at-least-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
    sf_e2e_rt_start(&rt, "--state-backend", backend, "--checkpoint-interval", interval, "--workers",
                    "1", NULL);
    visit(&rt, "Welcome Alice");
    visit(&rt, "Nice to see you again Alice");
    ck_assert_int_eq(sf_e2e_state_int(rt.admin, "greeter.fns/person/Alice", "visits", -1), 2);
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);

    sf_e2e_rt_start(&rt, "--state-backend", backend, "--checkpoint-interval", interval, "--workers",
                    "3", NULL);
    if (survives) {
        ck_assert_int_eq(sf_e2e_state_int(rt.admin, "greeter.fns/person/Alice", "visits", -1), 2);
        visit(&rt, "Third time is a charm Alice");
    } else {
        ck_assert_int_eq(sf_e2e_state_int(rt.admin, "greeter.fns/person/Alice", "visits", -1), -1);
        visit(&rt, "Welcome Alice");
    }
    ck_assert_int_eq(sf_e2e_rt_stop(&rt), 0);
    sf_e2e_rt_dispose(&rt);
}

START_TEST(test_state_survives_restart_rocksdb)
{
    restart("rocksdb", "1s", true);
}
END_TEST

START_TEST(test_state_survives_restart_memory_checkpointed)
{
    restart("memory", "1s", true);
}
END_TEST

START_TEST(test_state_fresh_memory_without_checkpoints)
{
    restart("memory", "0", false);
}
END_TEST

Suite *sf_runtime_e2e_state_suite(void)
{
    Suite *s = suite_create("runtime_e2e_state");
    TCase *tc = tcase_create("state");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ttl_modes);
    tcase_add_test(tc, test_delayed_and_cancelled);
    tcase_add_test(tc, test_delayed_survives_restart);
    tcase_add_test(tc, test_large_state);
    tcase_add_test(tc, test_state_survives_restart_rocksdb);
    tcase_add_test(tc, test_state_survives_restart_memory_checkpointed);
    tcase_add_test(tc, test_state_fresh_memory_without_checkpoints);
    suite_add_tcase(s, tc);
    return s;
}
