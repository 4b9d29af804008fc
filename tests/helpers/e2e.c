/* statefun-c: Apache License 2.0.
 *
 * The end-to-end test helpers (see e2e.h): runtime processes, servers,
 * blocking HTTP/1.1 requests (responses parsed with http_parser), egress
 * and admin reads, and the load generator (a libuv loop with the transport's client, run to
 * completion on the test's thread).
 */
#include "e2e.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define HTTP_TIMEOUT_MS 10000

/* ------------------------------------------------------------------------ */
/* Paths and time                                                             */

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

const char *sf_e2e_statefun(void)
{
    static char bin[1100];
    const char *s = getenv("STATEFUN");
    char b[1024];
    if (s && *s)
        snprintf(b, sizeof b, "%s", s);
    else
        snprintf(b, sizeof b, "%.1000s/bin/statefun", sf_test_build());
    absolute(b, bin, sizeof bin);
    ck_assert_msg(access(bin, X_OK) == 0, "no statefun binary at %s", bin);
    return bin;
}

void sf_e2e_build_path(char *out, size_t len, const char *rel)
{
    char b[1100];
    snprintf(b, sizeof b, "%.500s/%.500s", sf_test_build(), rel);
    absolute(b, out, len);
}

void sf_e2e_src_path(char *out, size_t len, const char *rel)
{
    char b[1100];
    snprintf(b, sizeof b, "%.500s/%.500s", sf_test_src(), rel);
    absolute(b, out, len);
}

int64_t sf_e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sf_e2e_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sf_e2e_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static sf_e2e_http_outcome request(sf_e2e_conn_t *c, bool close_after, const char *method,
                                   const char *path, const char *content_type, const void *body,
                                   size_t len, int timeout_ms, sf_e2e_resp_t *out);

/* ------------------------------------------------------------------------ */
/* Runtime processes                                                          */

void sf_e2e_rt_init(sf_e2e_rt_t *rt, const char *name)
{
    memset(rt, 0, sizeof *rt);
    rt->pid = -1;
    rt->dir = sf_test_mkdtemp(name);
    ck_assert_ptr_nonnull(rt->dir);
    snprintf(rt->yaml, sizeof rt->yaml, "%s/module.yaml", rt->dir);
    snprintf(rt->log, sizeof rt->log, "%s/run.log", rt->dir);
    snprintf(rt->state_dir, sizeof rt->state_dir, "%s/state", rt->dir);
    /* Three distinct ports (each was free a moment ago). */
    do {
        rt->ingress = sf_test_free_port();
        rt->egress = sf_test_free_port();
        rt->admin = sf_test_free_port();
    } while (rt->ingress == rt->egress || rt->ingress == rt->admin || rt->egress == rt->admin ||
             !rt->ingress || !rt->egress || !rt->admin);
}

void sf_e2e_rt_module(sf_e2e_rt_t *rt, const char *topics, const char *semantic, const char *fmt,
                      ...)
{
    char docs[8192], egress[512] = "", all[10000];
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(docs, sizeof docs, fmt, ap);
    va_end(ap);
    if (topics)
        snprintf(egress, sizeof egress,
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec:\n"
                 "  host: 127.0.0.1\n"
                 "  port: %u\n"
                 "  deliverySemantic: %s\n"
                 "  topics: [%s]\n",
                 rt->egress, semantic, topics);
    else
        rt->egress = 0;
    n = snprintf(all, sizeof all,
                 "%s%s"
                 "kind: io.statefun.playground.v1/ingress\n"
                 "spec:\n"
                 "  host: 127.0.0.1\n"
                 "  port: %u\n"
                 "%s",
                 docs, docs[0] ? "---\n" : "", rt->ingress, egress);
    ck_assert_int_lt(n, (int)sizeof all);
    ck_assert_int_eq(sf_test_write_file(rt->yaml, all, (size_t)n), 0);
}

/* True when something accepts TCP connections on 127.0.0.1:|port|. */
static bool port_open(uint16_t port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;
    if (fd < 0)
        return false;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

void sf_e2e_rt_dump_log(const sf_e2e_rt_t *rt, int lines)
{
    fprintf(stderr, "---- last %d lines of %s ----\n", lines, rt->log);
    fflush(stderr);
    sf_test_sh("tail -n %d '%s' >&2", lines, rt->log);
}

int sf_e2e_rt_log_count(const sf_e2e_rt_t *rt, const char *needle)
{
    char *text = sf_test_read_file(rt->log, NULL);
    const char *p;
    int n = 0;
    if (!text)
        return 0;
    for (p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

void sf_e2e_rt_check_log_clean(const sf_e2e_rt_t *rt)
{
    char *all = sf_test_read_file(rt->log, NULL);
    ck_assert_ptr_nonnull(all);
    ck_assert_msg(!strstr(all, "AddressSanitizer") && !strstr(all, "runtime error:") &&
                      !strstr(all, "LeakSanitizer"),
                  "sanitizer report in the runtime's log:\n%s", all);
    free(all);
}

/* The environment without STATEFUN_* (the options' variables), so that the
 * command line alone configures the run. Built before fork (malloc). */
static char **run_environ(void)
{
    extern char **environ;
    size_t n = 0, k = 0;
    char **env;
    while (environ[n])
        n++;
    env = calloc(n + 1, sizeof *env);
    ck_assert_ptr_nonnull(env);
    for (n = 0; environ[n]; n++)
        if (strncmp(environ[n], "STATEFUN_", 9) != 0)
            env[k++] = environ[n];
    return env;
}

static void rt_spawn(sf_e2e_rt_t *rt, va_list ap)
{
    char admin[64];
    const char *argv[64];
    const char *a;
    char **env;
    int argc = 0, fd;
    pid_t pid, parent;

    ck_assert_int_eq(rt->pid, -1);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", rt->admin);
    argv[argc++] = sf_e2e_statefun();
    argv[argc++] = "run";
    argv[argc++] = "--state-dir";
    argv[argc++] = rt->state_dir;
    argv[argc++] = "--admin";
    argv[argc++] = admin;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 60)
        argv[argc++] = a;
    argv[argc++] = rt->yaml;
    argv[argc] = NULL;

    env = run_environ();
    fd = open(rt->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    parent = getpid();
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Async-signal-safe calls only: the test may run other threads. */
        int null = open("/dev/null", O_RDONLY);
        sf_test_die_with_parent(parent);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    close(fd);
    free(env);
    rt->pid = pid;
}

void sf_e2e_rt_spawn(sf_e2e_rt_t *rt, ...)
{
    va_list ap;
    va_start(ap, rt);
    rt_spawn(rt, ap);
    va_end(ap);
}

/* True when the admin answers GET /healthz (any status) within |timeout_ms|:
 * the listeners accept from the start, but answer only once the runtime
 * has recovered and runs. */
static bool admin_answers(uint16_t admin, int timeout_ms)
{
    sf_e2e_conn_t c;
    sf_e2e_resp_t r;
    bool ok;
    sf_e2e_conn_init(&c, admin);
    ok = request(&c, true, "GET", "/healthz", NULL, NULL, 0, timeout_ms, &r) == SF_E2E_HTTP_DONE;
    sf_e2e_resp_dispose(&r);
    sf_e2e_conn_dispose(&c);
    return ok;
}

int sf_e2e_rt_wait(sf_e2e_rt_t *rt, int timeout_ms)
{
    int64_t deadline = sf_e2e_now_ms() + timeout_ms;
    int st;
    for (;;) {
        int64_t left;
        if (waitpid(rt->pid, &st, WNOHANG) == rt->pid) {
            fprintf(stderr, "statefun run (pid %d) exited early (status 0x%x)\n", (int)rt->pid, st);
            rt->pid = -1;
            return -1;
        }
        left = deadline - sf_e2e_now_ms();
        if (left <= 0)
            return -2;
        if (port_open(rt->ingress) && (!rt->egress || port_open(rt->egress)) &&
            admin_answers(rt->admin, left < 1000 ? (int)left : 1000))
            return 0;
        sf_e2e_sleep_ms(10);
    }
}

void sf_e2e_rt_start(sf_e2e_rt_t *rt, ...)
{
    va_list ap;
    int rv;
    va_start(ap, rt);
    rt_spawn(rt, ap);
    va_end(ap);
    if ((rv = sf_e2e_rt_wait(rt, SF_E2E_START_MS)) != 0) {
        sf_e2e_rt_dump_log(rt, 40);
        ck_abort_msg("statefun run %s within %d ms (see the log above)",
                     rv == -1 ? "exited" : "did not answer", SF_E2E_START_MS);
    }
}

int sf_e2e_rt_stop(sf_e2e_rt_t *rt)
{
    int64_t deadline;
    int st;
    if (rt->pid <= 0)
        return -1;
    kill(rt->pid, SIGTERM);
    deadline = sf_e2e_now_ms() + SF_E2E_STOP_MS;
    for (;;) {
        if (waitpid(rt->pid, &st, WNOHANG) == rt->pid)
            break;
        if (sf_e2e_now_ms() > deadline) {
            fprintf(stderr, "statefun (pid %d) did not stop within %d ms: SIGKILL\n", (int)rt->pid,
                    SF_E2E_STOP_MS);
            kill(rt->pid, SIGKILL);
            waitpid(rt->pid, &st, 0);
            rt->pid = -1;
            return -1;
        }
        sf_e2e_sleep_ms(10);
    }
    rt->pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void sf_e2e_rt_kill(sf_e2e_rt_t *rt)
{
    if (rt->pid > 0) {
        kill(rt->pid, SIGKILL);
        waitpid(rt->pid, NULL, 0);
        rt->pid = -1;
    }
}

void sf_e2e_rt_dispose(sf_e2e_rt_t *rt)
{
    sf_e2e_rt_kill(rt);
    sf_test_rmtree(rt->dir);
    rt->dir = NULL;
}

/* ------------------------------------------------------------------------ */
/* Other processes                                                            */

pid_t sf_e2e_spawn_server(char *const argv[], uint16_t *port)
{
    char line[512];
    const char *p;
    pid_t pid = sf_test_spawn_line(argv, line, sizeof line, SF_E2E_START_MS);
    ck_assert_msg(pid > 0, "%s did not print its port", argv[0]);
    p = strrchr(line, ':');
    p = p ? p + 1 : strrchr(line, ' ');
    ck_assert_msg(p != NULL, "no port in \"%s\"", line);
    if (*p == ' ')
        p++;
    *port = (uint16_t)atoi(p);
    ck_assert_msg(*port > 0, "no port in \"%s\"", line);
    return pid;
}

/* ------------------------------------------------------------------------ */
/* Blocking HTTP/1.1                                                          */

/* Waits for |fd| to be ready for |events| until |deadline|; the revents, or 0 on timeout. */
static short wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int64_t left = deadline - sf_e2e_now_ms();
        int rv;
        if (left <= 0)
            return 0;
        rv = poll(&p, 1, (int)left);
        if (rv > 0)
            return p.revents;
        if (rv == 0 || errno != EINTR)
            return 0;
    }
}

/* What the parser callbacks collect. */
typedef struct {
    sf_e2e_resp_t *resp;
    size_t cap;
    char *header;      /* the buffer of the header being read, or NULL: not one we keep */
    size_t header_cap; /* its size */
    size_t header_len;
    char offset[32]; /* X-Statefun-Offset */
    bool complete;
    bool keep_alive;
    bool failed; /* out of memory */
} parse_t;

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    parse_t *st = p->data;
    st->header = NULL;
    st->header_len = 0;
    if (len == 17 && strncasecmp(at, "x-statefun-offset", len) == 0) {
        st->header = st->offset;
        st->header_cap = sizeof st->offset;
    } else if (len == 11 && strncasecmp(at, "retry-after", len) == 0) {
        st->header = st->resp->retry_after;
        st->header_cap = sizeof st->resp->retry_after;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    parse_t *st = p->data;
    if (st->header && st->header_len + len < st->header_cap) {
        memcpy(st->header + st->header_len, at, len);
        st->header_len += len;
        st->header[st->header_len] = '\0';
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    parse_t *st = p->data;
    sf_e2e_resp_t *r = st->resp;
    if (r->len + len + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        char *b;
        while (cap < r->len + len + 1)
            cap *= 2;
        if (!(b = realloc(r->body, cap))) {
            st->failed = true;
            return 1;
        }
        r->body = b;
        st->cap = cap;
    }
    memcpy(r->body + r->len, at, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    parse_t *st = p->data;
    st->complete = true;
    st->resp->status = (int)p->status_code;
    st->keep_alive = http_should_keep_alive(p) != 0;
    return 1; /* stop: one response per request */
}

static void disconnect(sf_e2e_conn_t *c)
{
    if (c->_fd >= 0)
        close(c->_fd);
    c->_fd = -1;
}

/* A kept-alive connection is usable when it has nothing to read: readable
 * means the server closed it (EOF or reset) or sent something unasked. */
static bool still_open(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

/* A non-blocking socket connected to 127.0.0.1:|port| before |deadline|, or -1. */
static int connect_to(uint16_t port, int64_t deadline)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = 0;
        socklen_t elen = sizeof err;
        if (errno != EINPROGRESS || !wait_fd(fd, POLLOUT, deadline) ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/*
 * Writes |head| and then |body| before |deadline|. True when all of it went
 * out; false when it stopped early: an error (EPIPE, ECONNRESET), the
 * deadline, or an answer that came first (a server that answers early, as
 * with 413, may stop reading: the answer is read all the same).
 */
static bool send_all(int fd, const char *head, size_t hlen, const char *body, size_t len,
                     int64_t deadline)
{
    size_t off = 0;
    while (off < hlen + len) {
        const char *p = off < hlen ? head + off : body + (off - hlen);
        size_t n = off < hlen ? hlen - off : len - (off - hlen);
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            short ev = wait_fd(fd, POLLOUT | POLLIN, deadline);
            if (!ev || (ev & POLLIN))
                return false;
            continue;
        }
        return false;
    }
    return true;
}

/* One request on |c|; with |close_after|, asks the server to close (`Connection: close`). */
static sf_e2e_http_outcome request(sf_e2e_conn_t *c, bool close_after, const char *method,
                                   const char *path, const char *content_type, const void *body,
                                   size_t len, int timeout_ms, sf_e2e_resp_t *out)
{
    int64_t deadline = sf_e2e_now_ms() + timeout_ms;
    http_parser_settings settings;
    http_parser parser;
    parse_t st;
    char head[2048];
    bool whole;
    int hlen;

    memset(out, 0, sizeof *out);
    out->offset = -1;
    if (c->_fd >= 0 && !still_open(c->_fd))
        disconnect(c);
    if (c->_fd < 0 && (c->_fd = connect_to(c->port, deadline)) < 0)
        return SF_E2E_HTTP_NOT_SENT;
    hlen = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%sContent-Length: %zu\r\n%s%s%s\r\n",
                    method, path, c->port, close_after ? "Connection: close\r\n" : "", len,
                    content_type ? "Content-Type: " : "", content_type ? content_type : "",
                    content_type ? "\r\n" : "");
    if (hlen < 0 || (size_t)hlen >= sizeof head) {
        disconnect(c);
        return SF_E2E_HTTP_NOT_SENT;
    }
    whole = send_all(c->_fd, head, (size_t)hlen, body, len, deadline);

    memset(&settings, 0, sizeof settings);
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    memset(&st, 0, sizeof st);
    st.resp = out;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &st;
    while (!st.complete) {
        char buf[16384];
        ssize_t n = recv(c->_fd, buf, sizeof buf, 0);
        size_t used;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_fd(c->_fd, POLLIN, deadline))
                break;
            continue;
        }
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            /* The end ends a response that has neither a length nor chunks. */
            http_parser_execute(&parser, &settings, NULL, 0);
            st.keep_alive = false;
            break;
        }
        if (n < 0)
            break;
        used = http_parser_execute(&parser, &settings, buf, (size_t)n);
        if (st.failed ||
            (!st.complete && (used != (size_t)n || HTTP_PARSER_ERRNO(&parser) != HPE_OK)))
            break;
        /* Bytes after the response would be unasked for: drop the connection. */
        if (st.complete && used != (size_t)n)
            st.keep_alive = false;
    }
    if (!st.complete || st.failed) {
        sf_e2e_resp_dispose(out);
        out->status = 0;
        out->offset = -1;
        out->retry_after[0] = '\0';
        disconnect(c);
        /* Not written whole: the server cannot have taken it as a request. */
        return whole ? SF_E2E_HTTP_UNKNOWN : SF_E2E_HTTP_NOT_SENT;
    }
    if (!out->body && !(out->body = calloc(1, 1))) {
        disconnect(c);
        return SF_E2E_HTTP_UNKNOWN;
    }
    if (st.offset[0])
        out->offset = strtoll(st.offset, NULL, 10);
    if (!st.keep_alive || close_after)
        disconnect(c);
    return SF_E2E_HTTP_DONE;
}

void sf_e2e_conn_init(sf_e2e_conn_t *c, uint16_t port)
{
    c->port = port;
    c->_fd = -1;
}

void sf_e2e_conn_dispose(sf_e2e_conn_t *c)
{
    disconnect(c);
}

sf_e2e_http_outcome sf_e2e_conn_request(sf_e2e_conn_t *c, const char *method, const char *path,
                                        const char *content_type, const void *body, size_t len,
                                        int timeout_ms, sf_e2e_resp_t *out)
{
    return request(c, false, method, path, content_type, body, len, timeout_ms, out);
}

int sf_e2e_http(uint16_t port, const char *method, const char *path, const char *content_type,
                const void *body, size_t len, sf_e2e_resp_t *out)
{
    sf_e2e_conn_t c;
    sf_e2e_http_outcome o;
    sf_e2e_conn_init(&c, port);
    o = request(&c, true, method, path, content_type, body, len, HTTP_TIMEOUT_MS, out);
    sf_e2e_conn_dispose(&c);
    return o == SF_E2E_HTTP_DONE ? 0 : -1;
}

void sf_e2e_resp_dispose(sf_e2e_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

int sf_e2e_put(uint16_t port, const char *path, const char *text)
{
    sf_e2e_resp_t r;
    int status;
    sf_e2e_http(port, "PUT", path, "text/plain", text, strlen(text), &r);
    status = r.status;
    sf_e2e_resp_dispose(&r);
    return status;
}

int sf_e2e_put_retry(uint16_t port, const char *path, const char *text)
{
    int64_t deadline = sf_e2e_now_ms() + HTTP_TIMEOUT_MS;
    int status;
    while ((status = sf_e2e_put(port, path, text)) == 503 && sf_e2e_now_ms() < deadline)
        sf_e2e_sleep_ms(20);
    return status;
}

char *sf_e2e_egress_pop(uint16_t port, const char *topic, int wait_ms)
{
    char path[512];
    sf_e2e_resp_t r;
    char *payload = NULL;
    snprintf(path, sizeof path, "/%s?wait=%dms", topic, wait_ms);
    if (sf_e2e_http(port, "GET", path, NULL, NULL, 0, &r) == 0 && r.status == 200) {
        payload = r.body;
        r.body = NULL;
    }
    sf_e2e_resp_dispose(&r);
    return payload;
}

size_t sf_e2e_egress_take(uint16_t port, const char *topic, char **out, size_t n, int timeout_ms)
{
    int64_t deadline = sf_e2e_now_ms() + timeout_ms;
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline - sf_e2e_now_ms();
        char *p;
        if (left <= 0)
            break;
        p = sf_e2e_egress_pop(port, topic, left > 1000 ? 1000 : (int)left);
        if (p)
            out[got++] = p;
    }
    return got;
}

json_t *sf_e2e_state(uint16_t admin, const char *addr)
{
    char path[1024];
    sf_e2e_resp_t r;
    json_t *root = NULL, *states = NULL;
    snprintf(path, sizeof path, "/v1/state/%s", addr);
    if (sf_e2e_http(admin, "GET", path, NULL, NULL, 0, &r) == 0 && r.status == 200) {
        root = json_loadb(r.body, r.len, 0, NULL);
        ck_assert_msg(root != NULL, "the admin's state answer is not JSON: %s", r.body);
        states = json_object_get(root, "states");
        if (states)
            json_incref(states);
        json_decref(root);
    } else {
        ck_assert_msg(r.status == 404, "GET %s on the admin port: status %d (%s)", path, r.status,
                      r.body ? r.body : "");
    }
    sf_e2e_resp_dispose(&r);
    return states;
}

long long sf_e2e_state_int(uint16_t admin, const char *addr, const char *name, long long dflt)
{
    json_t *s = sf_e2e_state(admin, addr), *v;
    long long out = dflt;
    if (s && (v = json_object_get(json_object_get(s, name), "value")) != NULL && json_is_integer(v))
        out = (long long)json_integer_value(v);
    json_decref(s);
    return out;
}

char *sf_e2e_state_str(uint16_t admin, const char *addr, const char *name)
{
    json_t *s = sf_e2e_state(admin, addr), *v;
    char *out = NULL;
    if (s && (v = json_object_get(json_object_get(s, name), "value")) != NULL && json_is_string(v))
        out = strdup(json_string_value(v));
    json_decref(s);
    return out;
}

long long sf_e2e_wait_state_int(uint16_t admin, const char *addr, const char *name, long long want,
                                int timeout_ms)
{
    int64_t deadline = sf_e2e_now_ms() + timeout_ms;
    long long v;
    while ((v = sf_e2e_state_int(admin, addr, name, -1)) != want && sf_e2e_now_ms() < deadline)
        sf_e2e_sleep_ms(20);
    return v;
}

int sf_e2e_health(uint16_t admin, char **body)
{
    sf_e2e_resp_t r;
    int status;
    sf_e2e_http(admin, "GET", "/healthz", NULL, NULL, 0, &r);
    status = r.status;
    if (body) {
        *body = r.body;
        r.body = NULL;
    }
    sf_e2e_resp_dispose(&r);
    return status;
}

char *sf_e2e_metrics(uint16_t admin)
{
    sf_e2e_resp_t r;
    char *text = NULL;
    if (sf_e2e_http(admin, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200) {
        text = r.body;
        r.body = NULL;
    }
    sf_e2e_resp_dispose(&r);
    return text;
}

double sf_e2e_sample(const char *text, const char *name, const char *labels)
{
    char prefix[512];
    const char *p = text;
    size_t n;
    if (labels)
        snprintf(prefix, sizeof prefix, "%s{%s} ", name, labels);
    else
        snprintf(prefix, sizeof prefix, "%s ", name);
    n = strlen(prefix);
    while ((p = strstr(p, prefix)) != NULL) {
        if (p == text || p[-1] == '\n')
            return strtod(p + n, NULL);
        p++;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Load generator                                                             */

typedef struct load_ctx_s load_ctx_t;

typedef struct lane_s {
    load_ctx_t *lc;
    unsigned id;
    unsigned next; /* next seq to send (1-based) */
    unsigned inflight;
    unsigned done;      /* accepted */
    unsigned retry_seq; /* a seq waiting for its retry timer, or 0 */
    uv_timer_t timer;
} lane_t;

typedef struct req_s {
    lane_t *lane;
    unsigned seq;
    sf_http_url_t url;
} req_t;

struct load_ctx_s {
    sf_e2e_load_t *load;
    uv_loop_t loop;
    sf_http_client_t *client;
    lane_t *lanes;
    uv_timer_t deadline;
    unsigned finished_lanes;
    bool stopping;
};

static void lane_pump(lane_t *ln);

static void load_stop(load_ctx_t *lc)
{
    unsigned i;
    if (lc->stopping)
        return;
    lc->stopping = true;
    uv_timer_stop(&lc->deadline);
    for (i = 0; i < lc->load->nlanes; i++)
        uv_timer_stop(&lc->lanes[i].timer);
    sf_http_client_close(lc->client, NULL, NULL);
}

static void on_deadline(uv_timer_t *t)
{
    load_ctx_t *lc = t->data;
    lc->load->timed_out = true;
    load_stop(lc);
}

static void on_retry(uv_timer_t *t)
{
    lane_pump(t->data);
}

static void on_load_response(int err, const sf_http_response_t *res, void *ud)
{
    req_t *rq = ud;
    lane_t *ln = rq->lane;
    load_ctx_t *lc = ln->lc;
    sf_e2e_load_t *l = lc->load;
    unsigned seq = rq->seq;

    sf_http_url_dispose(&rq->url, NULL);
    free(rq);
    ln->inflight--;
    if (lc->stopping)
        return;
    if (err != 0) {
        if (l->errors++ == 0)
            l->first_error = err;
    } else if (res->status == 200) {
        l->accepted++;
        ln->done++;
    } else if (res->status == 503) {
        l->rejected_503++;
        if (l->retry_503) {
            ln->retry_seq = seq;
            uv_timer_start(&ln->timer, on_retry, 5 + (uint64_t)(rand() % 16), 0);
            return;
        }
    } else {
        if (l->other++ == 0)
            l->other_status = res->status;
    }
    if (err != 0 || (res->status != 200 && !(res->status == 503 && l->retry_503))) {
        /* A lost message: the lane cannot keep its order guarantee; stop. */
        load_stop(lc);
        return;
    }
    lane_pump(ln);
}

static void send_one(lane_t *ln, unsigned seq)
{
    load_ctx_t *lc = ln->lc;
    sf_e2e_load_t *l = lc->load;
    char path[512], body[512], url[700];
    static const sf_http_header_t ct = {"content-type", 12, "text/plain", 10};
    req_t *rq = calloc(1, sizeof *rq);
    int rv;

    ck_assert_ptr_nonnull(rq);
    path[0] = body[0] = '\0';
    l->make(ln->id, seq, path, sizeof path, body, sizeof body, l->user_data);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", l->port, path);
    ck_assert_int_eq(sf_http_url_parse(url, NULL, &rq->url), 0);
    rq->lane = ln;
    rq->seq = seq;
    ln->inflight++;
    rv = sf_http_client_request(lc->client, "PUT", &rq->url, &ct, 1, body, strlen(body),
                                on_load_response, rq);
    ck_assert_int_eq(rv, 0);
}

static void lane_pump(lane_t *ln)
{
    load_ctx_t *lc = ln->lc;
    sf_e2e_load_t *l = lc->load;
    if (lc->stopping)
        return;
    if (ln->retry_seq) {
        unsigned s = ln->retry_seq;
        ln->retry_seq = 0;
        send_one(ln, s);
        return;
    }
    while (ln->next <= l->per_lane && ln->inflight < l->window) {
        send_one(ln, ln->next++);
    }
    if (ln->done == l->per_lane) {
        if (++lc->finished_lanes == l->nlanes)
            load_stop(lc);
    }
}

int sf_e2e_load_run(sf_e2e_load_t *l)
{
    load_ctx_t lc;
    sf_http_client_config_t cfg;
    int64_t t0 = sf_e2e_now_ms();
    unsigned i;

    ck_assert(l->window >= 1 && l->nlanes >= 1 && l->per_lane >= 1);
    ck_assert(!l->retry_503 || l->window == 1);
    l->accepted = l->rejected_503 = l->other = l->errors = 0;
    l->timed_out = false;
    memset(&lc, 0, sizeof lc);
    lc.load = l;
    ck_assert_int_eq(uv_loop_init(&lc.loop), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.protocol = l->protocol;
    cfg.pool_size = 64;
    cfg.call_timeout_ms = 30000;
    cfg.read_timeout_ms = 30000;
    ck_assert_int_eq(sf_http_client_new(&lc.loop, &cfg, &lc.client), 0);
    uv_timer_init(&lc.loop, &lc.deadline);
    lc.deadline.data = &lc;
    uv_timer_start(&lc.deadline, on_deadline, (uint64_t)(l->timeout_ms > 0 ? l->timeout_ms : 60000),
                   0);
    lc.lanes = calloc(l->nlanes, sizeof *lc.lanes);
    ck_assert_ptr_nonnull(lc.lanes);
    for (i = 0; i < l->nlanes; i++) {
        lc.lanes[i].lc = &lc;
        lc.lanes[i].id = i;
        lc.lanes[i].next = 1;
        uv_timer_init(&lc.loop, &lc.lanes[i].timer);
        lc.lanes[i].timer.data = &lc.lanes[i];
    }
    for (i = 0; i < l->nlanes; i++)
        lane_pump(&lc.lanes[i]);
    uv_run(&lc.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&lc.deadline, NULL);
    for (i = 0; i < l->nlanes; i++)
        uv_close((uv_handle_t *)&lc.lanes[i].timer, NULL);
    uv_run(&lc.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&lc.loop), 0);
    free(lc.lanes);
    l->elapsed_ms = sf_e2e_now_ms() - t0;
    return l->accepted == l->nlanes * l->per_lane ? 0 : -1;
}
