/* statefun-c: Apache License 2.0.
 *
 * The durable egress through the real binary and kill -9 (the greeter
 * example, one record per visit):
 *   - exactly-once (rocksdb state): records published by a checkpoint are
 *     not published again when the restart restores that checkpoint, a
 *     popped record is not served again and the next one is;
 *   - at-least-once (memory state): records visible before the kill are
 *     still there after it, and the cursor too.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

static void rt_setup(sf_e2e_rt_t *r, bool at_least_once)
{
    char lib[1100];
    sf_e2e_rt_init(r, "egress-e2e");
    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    sf_e2e_rt_module(r, "greetings", at_least_once ? "at-least-once" : "exactly-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
}

static void rt_start(sf_e2e_rt_t *r, const char *backend, const char *interval)
{
    sf_e2e_rt_start(r, "--state-backend", backend, "--checkpoint-interval", interval, "--workers",
                    "2", NULL);
}

static void visit(sf_e2e_rt_t *r, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/greeter.fns/person/%s", name);
    ck_assert_int_eq(sf_e2e_put(r->ingress, path, name), 200);
}

/* GET /greetings|query|: the status; the body in |body|. */
static int get(sf_e2e_rt_t *r, const char *query, char *body, size_t bodysz)
{
    char path[256];
    sf_e2e_resp_t resp;
    int status;
    snprintf(path, sizeof path, "/greetings%s", query);
    ck_assert_msg(sf_e2e_http(r->egress, "GET", path, NULL, NULL, 0, &resp) == 0,
                  "GET %s: no answer", path);
    snprintf(body, bodysz, "%s", resp.body);
    status = resp.status;
    sf_e2e_resp_dispose(&resp);
    return status;
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Waits until |n| records are visible (an offset read from 0). */
static void wait_records(sf_e2e_rt_t *r, size_t n)
{
    char body[4096];
    int i;
    for (i = 0; i < 300; i++) {
        ck_assert_int_eq(get(r, "?from=0", body, sizeof body), 200);
        if (lines(body) >= n)
            break;
        usleep(20000);
    }
    ck_assert_uint_eq(lines(body), n);
}

/* Pops every record left; checks there are |n| and none is |popped|. */
static void pop_rest(sf_e2e_rt_t *r, size_t n, const char *popped)
{
    char body[256];
    size_t i;
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(get(r, "", body, sizeof body), 200);
        ck_assert_str_ne(body, popped);
    }
    ck_assert_int_eq(get(r, "", body, sizeof body), 404);
}

START_TEST(test_exactly_once_kill9)
{
    char first[256], body[64];
    sf_e2e_rt_t r;
    rt_setup(&r, false);
    /* Long enough that the kill comes before the checkpoint after the one
     * that published: the restart restores a checkpoint that still holds
     * the published records and publishes it again. */
    rt_start(&r, "rocksdb", "2s");
    visit(&r, "Ann");
    visit(&r, "Bob");
    visit(&r, "Cyd");
    wait_records(&r, 3);
    ck_assert_int_eq(get(&r, "", first, sizeof first), 200);
    sf_e2e_rt_kill(&r);
    rt_start(&r, "rocksdb", "2s");
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "restored checkpoint"), 0);
    /* (All three, or fewer when the visits straddled two checkpoints.) */
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "egress records were published before"), 0);
    wait_records(&r, 3);
    pop_rest(&r, 2, first);
    /* The final checkpoint of a graceful stop publishes nothing more. */
    sf_e2e_rt_stop(&r);
    rt_start(&r, "rocksdb", "2s");
    wait_records(&r, 3);
    ck_assert_int_eq(get(&r, "", body, sizeof body), 404);
    sf_e2e_rt_stop(&r);
    sf_e2e_rt_dispose(&r);
}
END_TEST

START_TEST(test_at_least_once_kill9)
{
    char first[256];
    sf_e2e_rt_t r;
    rt_setup(&r, true);
    rt_start(&r, "memory", "200ms");
    visit(&r, "Dee");
    visit(&r, "Eli");
    wait_records(&r, 2);
    ck_assert_int_eq(get(&r, "", first, sizeof first), 200);
    usleep(500000); /* a checkpoint after the visits: the restart replays nothing */
    sf_e2e_rt_kill(&r);
    rt_start(&r, "memory", "200ms");
    wait_records(&r, 2);
    pop_rest(&r, 1, first);
    sf_e2e_rt_stop(&r);
    sf_e2e_rt_dispose(&r);
}
END_TEST

Suite *sf_runtime_egress_store_e2e_suite(void)
{
    Suite *s = suite_create("runtime_egress_store_e2e");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_exactly_once_kill9);
    tcase_add_test(tc, test_at_least_once_kill9);
    suite_add_tcase(s, tc);
    return s;
}
