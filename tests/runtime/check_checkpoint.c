/* statefun-c: Apache License 2.0.
 *
 * Checkpoints and recovery through the real binary: state survives kill -9
 * (restored from the last complete checkpoint, with both backends), a
 * corrupt newest checkpoint is detected and skipped, and every checkpoint
 * directory is complete (MANIFEST present) or collected.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "testutil.h"

static void rt_setup(sf_e2e_rt_t *r)
{
    char lib[1100];
    sf_e2e_rt_init(r, "chk");
    sf_e2e_build_path(lib, sizeof lib, "examples/libgreeter.so");
    sf_e2e_rt_module(r, "greetings", "at-least-once",
                     "kind: statefun.c.v1/embedded\n"
                     "spec:\n"
                     "  library: %s\n"
                     "  functions: greeter.fns/*\n",
                     lib);
}

/* Starts statefun with |workers| workers, restored from |restore| if set. */
static void rt_start2(sf_e2e_rt_t *r, const char *backend, const char *workers, const char *restore)
{
    if (restore)
        sf_e2e_rt_start(r, "--state-backend", backend, "--checkpoint-interval", "200ms",
                        "--workers", workers, "--restore", restore, NULL);
    else
        sf_e2e_rt_start(r, "--state-backend", backend, "--checkpoint-interval", "200ms",
                        "--workers", workers, NULL);
}

static void rt_start(sf_e2e_rt_t *r, const char *backend)
{
    rt_start2(r, backend, "2", NULL);
}

static void visit(sf_e2e_rt_t *r, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/greeter.fns/person/%s", name);
    ck_assert_int_eq(sf_e2e_put(r->ingress, path, name), 200);
}

/* The visits state of |name| through the admin API, or -1. */
static int visits(sf_e2e_rt_t *r, const char *name)
{
    char addr[256];
    snprintf(addr, sizeof addr, "greeter.fns/person/%s", name);
    return (int)sf_e2e_state_int(r->admin, addr, "visits", -1);
}

static void wait_visits(sf_e2e_rt_t *r, const char *name, int want)
{
    char addr[256];
    snprintf(addr, sizeof addr, "greeter.fns/person/%s", name);
    ck_assert_int_eq(sf_e2e_wait_state_int(r->admin, addr, "visits", want, 20000), want);
}

static void kill9_recovers(const char *backend)
{
    sf_e2e_rt_t r;
    rt_setup(&r);
    rt_start(&r, backend);
    visit(&r, "Eve");
    visit(&r, "Eve");
    wait_visits(&r, "Eve", 2);
    usleep(700000); /* at least two checkpoints after the visits */
    sf_e2e_rt_kill(&r);
    rt_start(&r, backend);
    ck_assert_int_eq(visits(&r, "Eve"), 2);
    visit(&r, "Eve");
    wait_visits(&r, "Eve", 3);
    sf_e2e_rt_stop(&r);
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "restored checkpoint"), 0);
    sf_e2e_rt_dispose(&r);
}

START_TEST(test_kill9_recovers_rocksdb)
{
    kill9_recovers("rocksdb");
}
END_TEST

START_TEST(test_kill9_recovers_memory)
{
    kill9_recovers("memory");
}
END_TEST

START_TEST(test_corrupt_latest_checkpoint_is_skipped)
{
    sf_e2e_rt_t r;
    rt_setup(&r);
    rt_start(&r, "rocksdb");
    visit(&r, "Fay");
    wait_visits(&r, "Fay", 1);
    usleep(700000);
    sf_e2e_rt_stop(&r); /* graceful: a final checkpoint */
    /* Damage one file of the newest checkpoint (same size, other bytes). */
    ck_assert_int_eq(sf_test_sh("cd %s/state/checkpoints && d=$(ls | sort | tail -1) && "
                                "f=$d/state/CURRENT && "
                                "printf 'XXXX' | dd of=$f bs=1 seek=2 conv=notrunc 2>/dev/null",
                                r.dir),
                     0);
    rt_start(&r, "rocksdb");
    ck_assert_int_eq(visits(&r, "Fay"), 1);
    sf_e2e_rt_stop(&r);
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "corrupt: skipped"), 0);
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "restored checkpoint"), 0);
    /* Old checkpoints are collected: at most the retained ones (3) are left. */
    ck_assert_int_eq(sf_test_sh("test $(ls %s/state/checkpoints | wc -l) -le 4", r.dir), 0);
    sf_e2e_rt_dispose(&r);
}
END_TEST

/* A crash while a checkpoint is being completed (after its files, before its
 * MANIFEST) leaves a torn checkpoint: recovery skips it, restores the
 * previous one and replays the ingress log, so every accepted visit counts
 * exactly once. */
START_TEST(test_crash_during_checkpoint)
{
    sf_e2e_rt_t r;
    int st, i;
    rt_setup(&r);
    rt_start(&r, "rocksdb");
    visit(&r, "Gil");
    visit(&r, "Gil");
    wait_visits(&r, "Gil", 2);
    usleep(500000);
    /* Crash at the third checkpoint from now: the visits below go in first. */
    ck_assert_int_eq(sf_test_sh("echo 3 > %s/state/.crash-before-manifest", r.dir), 0);
    for (i = 0; i < 3; i++)
        visit(&r, "Gil");
    /* The next checkpoint kills the process. */
    for (i = 0; i < 300 && waitpid(r.pid, &st, WNOHANG) != r.pid; i++)
        usleep(10000);
    ck_assert_msg(i < 300, "the crash hook did not fire");
    r.pid = -1;
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* The newest checkpoint directory has no MANIFEST. */
    ck_assert_int_eq(
        sf_test_sh("cd %s/state/checkpoints && test ! -e $(ls | sort | tail -1)/MANIFEST", r.dir),
        0);
    rt_start(&r, "rocksdb");
    wait_visits(&r, "Gil", 5);
    usleep(300000);
    ck_assert_int_eq(visits(&r, "Gil"), 5); /* and not more */
    sf_e2e_rt_stop(&r);
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "incomplete (no MANIFEST)"), 0);
    sf_e2e_rt_dispose(&r);
}
END_TEST

/* A savepoint taken through `statefun savepoint` restores into a fresh state
 * dir with another worker count (key groups move between workers). */
START_TEST(test_savepoint_restores_with_other_workers)
{
    sf_e2e_rt_t r;
    char name[32], sp[512];
    int i;
    rt_setup(&r);
    rt_start2(&r, "rocksdb", "1", NULL);
    for (i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "p%d", i);
        visit(&r, name);
        if (i % 3 == 0)
            visit(&r, name);
    }
    wait_visits(&r, "p29", 1);
    wait_visits(&r, "p27", 2);
    snprintf(sp, sizeof sp, "%s/savepoint-1", r.dir);
    ck_assert_int_eq(sf_test_sh("%s savepoint --admin 127.0.0.1:%u %s > %s/sp.out 2>&1",
                                sf_e2e_statefun(), r.admin, sp, r.dir),
                     0);
    ck_assert_int_eq(sf_test_sh("test -f %s/MANIFEST", sp), 0);
    /* Taking it again into the same directory is refused. */
    ck_assert_int_ne(sf_test_sh("%s savepoint --admin 127.0.0.1:%u %s > /dev/null 2>&1",
                                sf_e2e_statefun(), r.admin, sp),
                     0);
    sf_e2e_rt_stop(&r);
    snprintf(r.state_dir, sizeof r.state_dir, "%s/state-4", r.dir);
    rt_start2(&r, "rocksdb", "4", sp);
    for (i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "p%d", i);
        ck_assert_int_eq(visits(&r, name), i % 3 == 0 ? 2 : 1);
    }
    visit(&r, "p1");
    wait_visits(&r, "p1", 2);
    sf_e2e_rt_stop(&r);
    ck_assert_int_gt(sf_e2e_rt_log_count(&r, "restored checkpoint"), 0);
    sf_e2e_rt_dispose(&r);
}
END_TEST

Suite *sf_runtime_checkpoint_suite(void)
{
    Suite *s = suite_create("runtime_checkpoint");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_kill9_recovers_rocksdb);
    tcase_add_test(tc, test_kill9_recovers_memory);
    tcase_add_test(tc, test_corrupt_latest_checkpoint_is_skipped);
    tcase_add_test(tc, test_crash_during_checkpoint);
    tcase_add_test(tc, test_savepoint_restores_with_other_workers);
    suite_add_tcase(s, tc);
    return s;
}
