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
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define ADDRESSES 1000 /* distinct counters */
#define CLIENTS 4      /* h2load connections; each walks every address */
#define ROUNDS 10      /* times each client walks the list */
#define START_MS 30000
#define WAIT_MS 30000

static char *tmp;
static pid_t rt_pid = -1, fn_pid = -1;
static uint16_t admin_port, ingress_port;

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

/* |rel| under the build directory, made absolute, into |out|. */
static void build_path(const char *rel, char *out, size_t len)
{
    const char *b = sf_test_build();
    char cwd[512] = "";
    if (b[0] != '/')
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(out, len, "%s%s%s/%s", cwd, cwd[0] ? "/" : "", b, rel);
}

static void setup(void)
{
    tmp = sf_test_mkdtemp("bench-smoke");
    ck_assert_ptr_nonnull(tmp);
    rt_pid = fn_pid = -1;
    admin_port = sf_test_free_port();
    ingress_port = sf_test_free_port();
    ck_assert(admin_port && ingress_port && admin_port != ingress_port);
}

static void teardown(void)
{
    if (rt_pid > 0)
        sf_test_kill(rt_pid);
    if (fn_pid > 0)
        sf_test_kill(fn_pid);
    rt_pid = fn_pid = -1;
    sf_test_rmtree(tmp);
    tmp = NULL;
}

/* The runtime's log tail, for failure messages (static). */
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

/* GETs http://127.0.0.1:|port||path| with curl; the status (0: no answer). */
static int http_status(uint16_t port, const char *path)
{
    char cmd[512];
    int code = 0;
    FILE *p;
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 5 -o /dev/null -w '%%{http_code}' 'http://127.0.0.1:%u%s'",
             (unsigned)port, path);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (fscanf(p, "%d", &code) != 1)
        code = 0;
    pclose(p);
    return code;
}

/* Writes the module file (|endpoint| first, then the ingress) and starts the runtime. */
static void start_runtime(const char *endpoint)
{
    char yaml[2048], path[1100], state[1100], logp[1100], admin[64], bin[1100];
    const char *s = getenv("STATEFUN");
    int64_t deadline;
    pid_t pid;

    if (s && *s)
        snprintf(bin, sizeof bin, "%s", s);
    else
        build_path("bin/statefun", bin, sizeof bin);
    ck_assert_msg(access(bin, X_OK) == 0, "no statefun binary at %s", bin);
    snprintf(yaml, sizeof yaml,
             "%s---\nkind: io.statefun.playground.v1/ingress\nspec:\n  port: %u\n", endpoint,
             (unsigned)ingress_port);
    snprintf(path, sizeof path, "%s/module.yaml", tmp);
    snprintf(state, sizeof state, "%s/state", tmp);
    snprintf(logp, sizeof logp, "%s/statefun.log", tmp);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", (unsigned)admin_port);
    ck_assert_int_eq(sf_test_write_file(path, yaml, strlen(yaml)), 0);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_RDWR);
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        execl(bin, bin, "run", "--state-dir", state, "--workers", "2", "--admin", admin,
              "--log-level", "warn", path, (char *)NULL);
        _exit(127);
    }
    rt_pid = pid;
    deadline = now_ms() + START_MS;
    while (http_status(admin_port, "/healthz") != 200) {
        int ws;
        if (waitpid(rt_pid, &ws, WNOHANG) == rt_pid) {
            rt_pid = -1;
            ck_abort_msg("statefun exited early (status %d):\n%s", ws, log_tail());
        }
        ck_assert_msg(now_ms() < deadline, "no /healthz within %d ms:\n%s", START_MS,
                      log_tail());
        sleep_ms(100);
    }
}

/* bench/counter's messages_in_total from /metrics, or -1. */
static long long processed(void)
{
    char cmd[512], line[512];
    long long v = -1;
    FILE *p;
    snprintf(cmd, sizeof cmd, "curl -s --max-time 5 'http://127.0.0.1:%u/metrics'",
             (unsigned)admin_port);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    while (fgets(line, sizeof line, p))
        if (strncmp(line,
                    "statefun_function_messages_in_total{function_type=\"bench/counter\"} ",
                    67) == 0)
            v = atoll(line + 67);
    pclose(p);
    return v;
}

/*
 * Sends CLIENTS * ROUNDS messages to each of ADDRESSES counters with h2load
 * (|h1|: over HTTP/1.1), waits until all are processed, then reads every
 * counter through /v1/state in one curl run and checks each holds exactly
 * CLIENTS * ROUNDS.
 */
static void drive_and_verify(int h1)
{
    char uris[1100], body[1100], urls[1100], out[1100], line[4096];
    long long total = (long long)ADDRESSES * CLIENTS * ROUNDS, sum = 0;
    long long got = -1;
    int64_t deadline;
    FILE *f;
    int i, rv, n = 0;

    snprintf(uris, sizeof uris, "%s/uris", tmp);
    snprintf(body, sizeof body, "%s/body", tmp);
    snprintf(urls, sizeof urls, "%s/curl.cfg", tmp);
    snprintf(out, sizeof out, "%s/h2load.out", tmp);
    f = fopen(uris, "w");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < ADDRESSES; i++)
        fprintf(f, "http://127.0.0.1:%u/bench/counter/k%d\n", (unsigned)ingress_port, i);
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

    deadline = now_ms() + WAIT_MS;
    while ((got = processed()) < total) {
        ck_assert_msg(now_ms() < deadline, "%lld of %lld messages processed within %d ms:\n%s",
                      got, total, WAIT_MS, log_tail());
        sleep_ms(50);
    }
    ck_assert_int_eq(got, total);

    /* Every counter, read back in one keep-alive curl run. */
    f = fopen(urls, "w");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < ADDRESSES; i++)
        fprintf(f, "url = \"http://127.0.0.1:%u/v1/state/bench/counter/k%d\"\n",
                (unsigned)admin_port, i);
    fclose(f);
    snprintf(line, sizeof line, "curl -s --max-time 20 -w '\\n' -K '%s'", urls);
    f = popen(line, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *root = json_loads(line, 0, &jerr);
        json_t *v;
        if (line[0] == '\n') {
            json_decref(root);
            continue; /* the body's own newline before curl's */
        }
        ck_assert_msg(root != NULL, "state %d is not JSON: %s", n, line);
        v = json_object_get(json_object_get(json_object_get(root, "states"), "n"), "value");
        ck_assert_msg(json_integer_value(v) >= 0 && json_integer_value(v) <= CLIENTS * ROUNDS,
                      "bench/counter/k%d holds %lld, at most %d were sent: %s", n,
                      (long long)json_integer_value(v), CLIENTS * ROUNDS, line);
        sum += json_integer_value(v);
        json_decref(root);
        n++;
    }
    pclose(f);
    ck_assert_int_eq(n, ADDRESSES);
    /* No message lost or counted twice: the counters add up to the 200s. */
    ck_assert_int_eq(sum, total);

    /* Stopped cleanly, and no sanitizer report in the runtime's log. */
    sf_test_kill(rt_pid);
    rt_pid = -1;
    {
        char path[1100], *all;
        snprintf(path, sizeof path, "%s/statefun.log", tmp);
        all = sf_test_read_file(path, NULL);
        ck_assert_ptr_nonnull(all);
        ck_assert_msg(!strstr(all, "AddressSanitizer") && !strstr(all, "runtime error:") &&
                          !strstr(all, "LeakSanitizer"),
                      "sanitizer report in the runtime's log:\n%s", all);
        free(all);
    }
}

START_TEST(test_embedded)
{
    char lib[1100], endpoint[1400];
    build_path("bench/libcounter.so", lib, sizeof lib);
    ck_assert_msg(access(lib, R_OK) == 0, "no %s", lib);
    snprintf(endpoint, sizeof endpoint,
             "kind: statefun.c.v1/embedded\nspec:\n  library: %s\n  functions: bench/*\n", lib);
    start_runtime(endpoint);
    drive_and_verify(0);
}
END_TEST

START_TEST(test_remote)
{
    char bin[1100], line[256], endpoint[1024];
    const char *port;
    char *argv[4];
    build_path("bench/counter", bin, sizeof bin);
    ck_assert_msg(access(bin, X_OK) == 0, "no %s", bin);
    argv[0] = bin;
    argv[1] = "--listen";
    argv[2] = "127.0.0.1:0";
    argv[3] = NULL;
    fn_pid = sf_test_spawn_line(argv, line, sizeof line, START_MS);
    ck_assert_msg(fn_pid > 0, "the counter server did not start");
    port = strrchr(line, ':');
    ck_assert_msg(port != NULL, "no port in '%s'", line);
    snprintf(endpoint, sizeof endpoint,
             "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
             "  urlPathTemplate: http://127.0.0.1:%d/\n",
             atoi(port + 1));
    start_runtime(endpoint);
    drive_and_verify(0);
}
END_TEST

/* HTTP/1.1 on both sides: the ingress driven over HTTP/1.1, the function
 * called over HTTP/1.1. */
START_TEST(test_remote_h1)
{
    char bin[1100], line[256], endpoint[1024];
    const char *port;
    char *argv[4];
    build_path("bench/counter", bin, sizeof bin);
    argv[0] = bin;
    argv[1] = "--listen";
    argv[2] = "127.0.0.1:0";
    argv[3] = NULL;
    fn_pid = sf_test_spawn_line(argv, line, sizeof line, START_MS);
    ck_assert_msg(fn_pid > 0, "the counter server did not start");
    port = strrchr(line, ':');
    ck_assert_msg(port != NULL, "no port in '%s'", line);
    snprintf(endpoint, sizeof endpoint,
             "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
             "  urlPathTemplate: http://127.0.0.1:%d/\n"
             "  transport:\n    type: io.statefun.transports.v1/async\n    protocol: http1\n",
             atoi(port + 1));
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
