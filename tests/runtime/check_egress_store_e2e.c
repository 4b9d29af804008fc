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
#include <signal.h>
#include <stdbool.h>
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

static void rt_setup(rt_t *r, bool at_least_once)
{
    FILE *f;
    memset(r, 0, sizeof *r);
    r->dir = sf_test_mkdtemp("egress-e2e");
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
            "%s",
            sf_test_build(), r->ingress, r->egress,
            at_least_once ? "  deliverySemantic: at-least-once\n" : "");
    fclose(f);
}

/* Starts statefun (log appended to DIR/run.log) and waits for the egress. */
static void rt_start(rt_t *r, const char *backend, const char *interval)
{
    char statedir[512], admin[64], logp[512];
    const char *bin = getenv("STATEFUN");
    int i;
    snprintf(statedir, sizeof statedir, "%s/state", r->dir);
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
        execl(bin, bin, "run", "--state-dir", statedir, "--state-backend", backend,
              "--checkpoint-interval", interval, "--workers", "2", "--admin", admin, r->yaml,
              (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 400; i++) {
        if (sf_test_sh("curl -s -o /dev/null -m 1 'http://127.0.0.1:%u/greetings?from=0' "
                       "2>/dev/null",
                       r->egress) == 0)
            return;
        usleep(25000);
    }
    ck_abort_msg("statefun did not start (see %s)", logp);
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

/* GET /greetings|query|: the status; the body in |body|. */
static int get(rt_t *r, const char *query, char *body, size_t bodysz)
{
    char cmd[1024], out[16] = "", file[512];
    FILE *p;
    char *b;
    size_t n;
    snprintf(file, sizeof file, "%s/body", r->dir);
    unlink(file);
    snprintf(cmd, sizeof cmd,
             "curl -sS -m 10 -o %s -w '%%{http_code}' 'http://127.0.0.1:%u/greetings%s'", file,
             r->egress, query);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    b = sf_test_read_file(file, NULL);
    snprintf(body, bodysz, "%s", b ? b : "");
    free(b);
    return atoi(out);
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Waits until |n| records are visible (an offset read from 0). */
static void wait_records(rt_t *r, size_t n)
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
static void pop_rest(rt_t *r, size_t n, const char *popped)
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
    rt_t r;
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
    rt_kill(&r, SIGKILL);
    rt_start(&r, "rocksdb", "2s");
    ck_assert_int_eq(sf_test_sh("grep -q 'restored checkpoint' %s/run.log", r.dir), 0);
    /* (All three, or fewer when the visits straddled two checkpoints.) */
    ck_assert_int_eq(
        sf_test_sh("grep -q 'egress records were published before' %s/run.log", r.dir), 0);
    wait_records(&r, 3);
    pop_rest(&r, 2, first);
    /* The final checkpoint of a graceful stop publishes nothing more. */
    rt_kill(&r, SIGTERM);
    rt_start(&r, "rocksdb", "2s");
    wait_records(&r, 3);
    ck_assert_int_eq(get(&r, "", body, sizeof body), 404);
    rt_kill(&r, SIGTERM);
    rt_teardown(&r);
}
END_TEST

START_TEST(test_at_least_once_kill9)
{
    char first[256];
    rt_t r;
    rt_setup(&r, true);
    rt_start(&r, "memory", "200ms");
    visit(&r, "Dee");
    visit(&r, "Eli");
    wait_records(&r, 2);
    ck_assert_int_eq(get(&r, "", first, sizeof first), 200);
    usleep(500000); /* a checkpoint after the visits: the restart replays nothing */
    rt_kill(&r, SIGKILL);
    rt_start(&r, "memory", "200ms");
    wait_records(&r, 2);
    pop_rest(&r, 1, first);
    rt_kill(&r, SIGTERM);
    rt_teardown(&r);
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
