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

#include "testutil.h"

typedef struct {
    char *dir;
    char yaml[512];
    uint16_t ingress, egress, admin;
    pid_t pid;
} rt_t;

static void rt_setup(rt_t *r)
{
    FILE *f;
    memset(r, 0, sizeof *r);
    r->dir = sf_test_mkdtemp("chk");
    ck_assert_ptr_nonnull(r->dir);
    r->ingress = sf_test_free_port();
    r->egress = sf_test_free_port();
    r->admin = sf_test_free_port();
    snprintf(r->yaml, sizeof r->yaml, "%s/module.yaml", r->dir);
    f = fopen(r->yaml, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "kind: statefun.c.v1/embedded\n"
            "spec:\n"
            "  library: %s/examples/libgreeter.so\n"
            "  functions: greeter.fns/*\n"
            "---\n"
            "kind: io.statefun.playground.v1/ingress\n"
            "spec:\n"
            "  port: %u\n"
            "---\n"
            "kind: io.statefun.playground.v1/egress\n"
            "spec:\n"
            "  port: %u\n"
            "  topics: [greetings]\n"
            "  deliverySemantic: at-least-once\n",
            sf_test_build(), r->ingress, r->egress);
    fclose(f);
}

/* Starts statefun (log appended to DIR/run.log) and waits for the ingress:
 * state in DIR/|state|, |workers| workers, restored from |restore| if set. */
static void rt_start2(rt_t *r, const char *backend, const char *state, const char *workers,
                      const char *restore)
{
    char statedir[512], admin[64], logp[512];
    const char *bin = getenv("STATEFUN");
    int i;
    snprintf(statedir, sizeof statedir, "%s/%s", r->dir, state);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", r->admin);
    snprintf(logp, sizeof logp, "%s/run.log", r->dir);
    if (!bin) {
        static char def[512];
        snprintf(def, sizeof def, "%s/bin/statefun", sf_test_build());
        bin = def;
    }
    r->pid = fork();
    ck_assert_int_ge(r->pid, 0);
    if (r->pid == 0) {
        FILE *lf = freopen(logp, "a", stderr);
        (void)lf;
        if (restore)
            execl(bin, bin, "run", "--state-dir", statedir, "--state-backend", backend,
                  "--checkpoint-interval", "200ms", "--workers", workers, "--admin", admin,
                  "--restore", restore, r->yaml, (char *)NULL);
        else
            execl(bin, bin, "run", "--state-dir", statedir, "--state-backend", backend,
                  "--checkpoint-interval", "200ms", "--workers", workers, "--admin", admin,
                  r->yaml, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 200; i++) {
        if (sf_test_sh("curl -s -o /dev/null -m 1 http://127.0.0.1:%u/ 2>/dev/null", r->ingress) ==
            0)
            return;
        usleep(25000);
    }
    ck_abort_msg("statefun did not start (see %s)", logp);
}

static void rt_start(rt_t *r, const char *backend)
{
    rt_start2(r, backend, "state", "2", NULL);
}

static void rt_kill(rt_t *r, int sig)
{
    int st, i;
    kill(r->pid, sig);
    for (i = 0; i < 500; i++) {
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &st, 0);
    r->pid = 0;
}

static void rt_teardown(rt_t *r)
{
    if (r->pid > 0)
        rt_kill(r, SIGKILL);
    sf_test_rmtree(r->dir);
}

static void visit(rt_t *r, const char *name)
{
    ck_assert_int_eq(sf_test_sh("curl -sf -o /dev/null -m 5 -X PUT -d '%s' "
                                "http://127.0.0.1:%u/greeter.fns/person/%s",
                                name, r->ingress, name),
                     0);
}

/* The visits state of |name| through the admin API, or -1. */
static int visits(rt_t *r, const char *name)
{
    char out[512], *body, *p;
    int v = -1, i;
    snprintf(out, sizeof out, "%s/state.json", r->dir);
    for (i = 0; i < 100; i++) {
        if (sf_test_sh("curl -sf -m 5 http://127.0.0.1:%u/v1/state/greeter.fns/person/%s > %s",
                       r->admin, name, out) == 0)
            break;
        usleep(20000);
    }
    body = sf_test_read_file(out, NULL);
    if (body && (p = strstr(body, "\"value\":")) != NULL)
        v = atoi(p + 8);
    free(body);
    return v;
}

static void wait_visits(rt_t *r, const char *name, int want)
{
    int i;
    for (i = 0; i < 200 && visits(r, name) != want; i++)
        usleep(20000);
    ck_assert_int_eq(visits(r, name), want);
}

static void kill9_recovers(const char *backend)
{
    rt_t r;
    rt_setup(&r);
    rt_start(&r, backend);
    visit(&r, "Eve");
    visit(&r, "Eve");
    wait_visits(&r, "Eve", 2);
    usleep(700000); /* at least two checkpoints after the visits */
    rt_kill(&r, SIGKILL);
    rt_start(&r, backend);
    ck_assert_int_eq(visits(&r, "Eve"), 2);
    visit(&r, "Eve");
    wait_visits(&r, "Eve", 3);
    rt_kill(&r, SIGTERM);
    ck_assert_int_eq(sf_test_sh("grep -q 'restored checkpoint' %s/run.log", r.dir), 0);
    rt_teardown(&r);
}

START_TEST(test_kill9_recovers_rocksdb) { kill9_recovers("rocksdb"); }
END_TEST

START_TEST(test_kill9_recovers_memory) { kill9_recovers("memory"); }
END_TEST

START_TEST(test_corrupt_latest_checkpoint_is_skipped)
{
    rt_t r;
    rt_setup(&r);
    rt_start(&r, "rocksdb");
    visit(&r, "Fay");
    wait_visits(&r, "Fay", 1);
    usleep(700000);
    rt_kill(&r, SIGTERM); /* graceful: a final checkpoint */
    /* Damage one file of the newest checkpoint (same size, other bytes). */
    ck_assert_int_eq(sf_test_sh("cd %s/state/checkpoints && d=$(ls | sort | tail -1) && "
                                "f=$d/state/CURRENT && "
                                "printf 'XXXX' | dd of=$f bs=1 seek=2 conv=notrunc 2>/dev/null",
                                r.dir),
                     0);
    rt_start(&r, "rocksdb");
    ck_assert_int_eq(visits(&r, "Fay"), 1);
    rt_kill(&r, SIGTERM);
    ck_assert_int_eq(sf_test_sh("grep -q 'corrupt: skipped' %s/run.log", r.dir), 0);
    ck_assert_int_eq(sf_test_sh("grep -q 'restored checkpoint' %s/run.log", r.dir), 0);
    /* Old checkpoints are collected: at most the retained ones (3) are left. */
    ck_assert_int_eq(sf_test_sh("test $(ls %s/state/checkpoints | wc -l) -le 4", r.dir), 0);
    rt_teardown(&r);
}
END_TEST

/* A crash while a checkpoint is being completed (after its files, before its
 * MANIFEST) leaves a torn checkpoint: recovery skips it, restores the
 * previous one and replays the ingress log, so every accepted visit counts
 * exactly once. */
START_TEST(test_crash_during_checkpoint)
{
    rt_t r;
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
    r.pid = 0;
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* The newest checkpoint directory has no MANIFEST. */
    ck_assert_int_eq(sf_test_sh("cd %s/state/checkpoints && test ! -e $(ls | sort | tail -1)/MANIFEST",
                                r.dir),
                     0);
    rt_start(&r, "rocksdb");
    wait_visits(&r, "Gil", 5);
    usleep(300000);
    ck_assert_int_eq(visits(&r, "Gil"), 5); /* and not more */
    rt_kill(&r, SIGTERM);
    ck_assert_int_eq(sf_test_sh("grep -q 'incomplete (no MANIFEST)' %s/run.log", r.dir), 0);
    rt_teardown(&r);
}
END_TEST

/* A savepoint taken through `statefun savepoint` restores into a fresh state
 * dir with another worker count (key groups move between workers). */
START_TEST(test_savepoint_restores_with_other_workers)
{
    rt_t r;
    char name[32], sp[512];
    const char *bin = getenv("STATEFUN");
    int i;
    rt_setup(&r);
    rt_start2(&r, "rocksdb", "state", "1", NULL);
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
                                bin ? bin : "statefun", r.admin, sp, r.dir),
                     0);
    ck_assert_int_eq(sf_test_sh("test -f %s/MANIFEST", sp), 0);
    /* Taking it again into the same directory is refused. */
    ck_assert_int_ne(sf_test_sh("%s savepoint --admin 127.0.0.1:%u %s > /dev/null 2>&1",
                                bin ? bin : "statefun", r.admin, sp),
                     0);
    rt_kill(&r, SIGTERM);
    rt_start2(&r, "rocksdb", "state-4", "4", sp);
    for (i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "p%d", i);
        ck_assert_int_eq(visits(&r, name), i % 3 == 0 ? 2 : 1);
    }
    visit(&r, "p1");
    wait_visits(&r, "p1", 2);
    rt_kill(&r, SIGTERM);
    ck_assert_int_eq(sf_test_sh("grep -q 'restored checkpoint' %s/run.log", r.dir), 0);
    rt_teardown(&r);
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
