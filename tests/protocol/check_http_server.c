/* statefun-c: Apache License 2.0.
 *
 * Tests of the connection layer (protocol/http/conn.c, tls.c) and of the
 * HTTP server (protocol/http/server.c, h1_server.c, h2_server.c).
 *
 * The connection tests run both ends on one loop. Certificates are made at
 * test time with the openssl command into a temporary directory.
 */
#include <check.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "sf_http.h"
#include "testutil.h"
#include "tls.h"

/* ------------------------------------------------------------------------ */
/* Temporary directory and certificate                                        */

static char *tmpdir;
static char cert_path[300], key_path[300], sock_path[300];

static void make_tmpdir(void)
{
    tmpdir = sf_test_mkdtemp("http");
    ck_assert_ptr_nonnull(tmpdir);
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir);
    snprintf(sock_path, sizeof sock_path, "%s/s.sock", tmpdir);
}

static void make_cert(void)
{
    ck_assert_int_eq(sf_test_sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s "
                                "-days 1 -subj /CN=localhost "
                                "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
                                ">/dev/null 2>&1",
                                key_path, cert_path),
                     0);
}

static void remove_tmpdir(void)
{
    sf_test_rmtree(tmpdir);
    tmpdir = NULL;
}

/* ------------------------------------------------------------------------ */
/* Connection layer: an echo over one loop                                    */

typedef struct {
    uv_loop_t loop;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
    } listener;
    sf_tls_ctx_t *server_tls;
    sf_tls_ctx_t *client_tls;
    int opens_server, opens_client, closes_server, closes_client;
    int open_status;
    char got[64];
    size_t got_len;
    char server_alpn[16], client_alpn[16];
    const char *message;
} echo_t;

static void srv_on_open(sf_conn_t *conn, int status)
{
    echo_t *e = conn->data;
    e->opens_server++;
    ck_assert_int_eq(status, 0);
    if (sf_conn_alpn(conn))
        snprintf(e->server_alpn, sizeof e->server_alpn, "%s", sf_conn_alpn(conn));
}

static void srv_on_read(sf_conn_t *conn, const uint8_t *data, size_t len)
{
    /* Two writes in one turn leave as one gathered write. */
    size_t half = len / 2;
    ck_assert_int_eq(sf_conn_write1(conn, data, half), 0);
    ck_assert_int_eq(sf_conn_write1(conn, data + half, len - half), 0);
}

static void srv_on_close(sf_conn_t *conn, int reason)
{
    echo_t *e = conn->data;
    e->closes_server++;
    uv_close((uv_handle_t *)&e->listener, NULL);
}

static const sf_conn_callbacks_t srv_cb = {
    .on_open = srv_on_open, .on_read = srv_on_read, .on_close = srv_on_close};

static void on_connection(uv_stream_t *server, int status)
{
    echo_t *e = server->data;
    sf_conn_t *conn;
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(sf_conn_accept(server, e->server_tls, &srv_cb, e, NULL, &conn), 0);
}

static void cli_on_open(sf_conn_t *conn, int status)
{
    echo_t *e = conn->data;
    e->opens_client++;
    e->open_status = status;
    if (status != 0)
        return;
    if (sf_conn_alpn(conn))
        snprintf(e->client_alpn, sizeof e->client_alpn, "%s", sf_conn_alpn(conn));
    ck_assert_int_eq(sf_conn_write1(conn, e->message, strlen(e->message)), 0);
}

static void cli_on_read(sf_conn_t *conn, const uint8_t *data, size_t len)
{
    echo_t *e = conn->data;
    ck_assert_uint_le(e->got_len + len, sizeof e->got);
    memcpy(e->got + e->got_len, data, len);
    e->got_len += len;
    if (e->got_len == strlen(e->message))
        sf_conn_close(conn, 0);
}

static void cli_on_close(sf_conn_t *conn, int reason)
{
    echo_t *e = conn->data;
    e->closes_client++;
    if (e->opens_client && e->open_status != 0 && uv_is_active((uv_handle_t *)&e->listener))
        uv_close((uv_handle_t *)&e->listener, NULL);
}

static const sf_conn_callbacks_t cli_cb = {
    .on_open = cli_on_open, .on_read = cli_on_read, .on_close = cli_on_close};

static void run_echo(bool use_unix, bool tls, const char *alpn)
{
    echo_t e;
    sf_conn_t *conn;
    struct sockaddr_in addr;
    int namelen = sizeof addr;

    memset(&e, 0, sizeof e);
    e.message = "hello, connection layer";
    make_tmpdir();
    if (tls) {
        make_cert();
        ck_assert_int_eq(sf_tls_server_ctx_new(cert_path, key_path, NULL, &e.server_tls), 0);
        ck_assert_int_eq(sf_tls_client_ctx_new(cert_path, NULL, NULL, NULL, false, &e.client_tls),
                         0);
    }
    ck_assert_int_eq(uv_loop_init(&e.loop), 0);
    if (use_unix) {
        ck_assert_int_eq(uv_pipe_init(&e.loop, &e.listener.pipe, 0), 0);
        ck_assert_int_eq(uv_pipe_bind(&e.listener.pipe, sock_path), 0);
    } else {
        ck_assert_int_eq(uv_tcp_init(&e.loop, &e.listener.tcp), 0);
        uv_ip4_addr("127.0.0.1", 0, &addr);
        ck_assert_int_eq(uv_tcp_bind(&e.listener.tcp, (struct sockaddr *)&addr, 0), 0);
        uv_tcp_getsockname(&e.listener.tcp, (struct sockaddr *)&addr, &namelen);
    }
    e.listener.stream.data = &e;
    ck_assert_int_eq(uv_listen(&e.listener.stream, 16, on_connection), 0);
    if (use_unix)
        ck_assert_int_eq(sf_conn_connect_unix(&e.loop, sock_path, e.client_tls, "localhost", alpn,
                                              &cli_cb, &e, NULL, &conn),
                         0);
    else
        ck_assert_int_eq(sf_conn_connect_tcp(&e.loop, tls ? "localhost" : "127.0.0.1",
                                             ntohs(addr.sin_port), e.client_tls, NULL, alpn,
                                             &cli_cb, &e, NULL, &conn),
                         0);
    sf_conn_set_timeout(conn, 10000);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
    ck_assert_int_eq(e.opens_client, 1);
    ck_assert_int_eq(e.open_status, 0);
    ck_assert_int_eq(e.opens_server, 1);
    ck_assert_int_eq(e.closes_client, 1);
    ck_assert_int_eq(e.closes_server, 1);
    ck_assert_uint_eq(e.got_len, strlen(e.message));
    ck_assert(memcmp(e.got, e.message, e.got_len) == 0);
    if (tls && alpn) {
        ck_assert_str_eq(e.client_alpn, "h2");
        ck_assert_str_eq(e.server_alpn, "h2");
    }
    sf_tls_ctx_free(e.server_tls);
    sf_tls_ctx_free(e.client_tls);
    remove_tmpdir();
}

START_TEST(test_conn_tcp_echo)
{
    run_echo(false, false, NULL);
}
END_TEST

START_TEST(test_conn_unix_echo)
{
    run_echo(true, false, NULL);
}
END_TEST

START_TEST(test_conn_tls_echo)
{
    run_echo(false, true, "h2,http/1.1");
}
END_TEST

START_TEST(test_conn_tls_unix_echo)
{
    run_echo(true, true, "http/1.1,h2");
}
END_TEST

START_TEST(test_conn_refused)
{
    echo_t e;
    sf_conn_t *conn;
    struct sockaddr_in addr;
    int namelen = sizeof addr;
    uint16_t port;

    memset(&e, 0, sizeof e);
    e.message = "x";
    ck_assert_int_eq(uv_loop_init(&e.loop), 0);
    /* Find a free port, then release it: nothing listens there. */
    ck_assert_int_eq(uv_tcp_init(&e.loop, &e.listener.tcp), 0);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    ck_assert_int_eq(uv_tcp_bind(&e.listener.tcp, (struct sockaddr *)&addr, 0), 0);
    uv_tcp_getsockname(&e.listener.tcp, (struct sockaddr *)&addr, &namelen);
    port = ntohs(addr.sin_port);
    uv_close((uv_handle_t *)&e.listener, NULL);
    ck_assert_int_eq(
        sf_conn_connect_tcp(&e.loop, "127.0.0.1", port, NULL, NULL, NULL, &cli_cb, &e, NULL, &conn),
        0);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
    ck_assert_int_eq(e.opens_client, 1);
    ck_assert_int_eq(e.open_status, SF_ECONNREFUSED);
    ck_assert_int_eq(e.closes_client, 1);
}
END_TEST

START_TEST(test_tls_ctx_errors)
{
    sf_tls_ctx_t *ctx = NULL;
    uint8_t wire[32];

    ck_assert_int_eq(
        sf_tls_server_ctx_new("/nonexistent/cert.pem", "/nonexistent/key.pem", NULL, &ctx),
        SF_ETLS);
    ck_assert_int_eq(sf_tls_client_ctx_new("/nonexistent/ca.pem", NULL, NULL, NULL, false, &ctx),
                     SF_ETLS);
    ck_assert_int_eq(sf_tls_alpn_wire("h2,http/1.1", wire, sizeof wire), 12);
    ck_assert_int_eq(wire[0], 2);
    ck_assert_int_eq(wire[3], 8);
    ck_assert_int_eq(sf_tls_alpn_wire("h2,,x", wire, sizeof wire), SF_EINVAL);
    ck_assert_int_eq(sf_tls_alpn_wire("h2,", wire, sizeof wire), SF_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* HTTP server on its own loop thread, driven by independent clients          */

typedef struct tsrv_s {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t stop;
    sf_http_server_t *server;
    uint16_t port;
    atomic_int requests;
    atomic_int respond_reset; /* delayed answers whose connection was gone */
    atomic_int closed;
} tsrv_t;

typedef struct {
    uv_timer_t timer;
    sf_http_request_t *req;
    tsrv_t *t;
} tdelay_t;

static int tsrv_answer(sf_http_request_t *req)
{
    sf_http_header_t h[2] = {{"Content-Type", 12, "text/plain", 10}, {"X-Version", 9, "", 1}};
    size_t len;
    const uint8_t *body = sf_http_request_body(req, &len);
    char line[256];
    int n;

    h[1].value = sf_http_request_version(req) == 2 ? "2" : "1";
    if (len > 0)
        return sf_http_respond(req, 200, h, 2, body, len);
    n = snprintf(line, sizeof line, "%s %s\n", sf_http_request_method(req),
                 sf_http_request_path(req));
    return sf_http_respond(req, 200, h, 2, line, (size_t)n);
}

static void tdelay_closed(uv_handle_t *h)
{
    free(h->data);
}

static void tdelay_fire(uv_timer_t *timer)
{
    tdelay_t *d = timer->data;
    if (tsrv_answer(d->req) == SF_ECONNRESET)
        atomic_fetch_add(&d->t->respond_reset, 1);
    uv_close((uv_handle_t *)timer, tdelay_closed);
}

static void tsrv_on_request(sf_http_request_t *req, void *user_data)
{
    tsrv_t *t = user_data;

    ck_assert_ptr_eq(sf_http_request_user_data(req), t);
    atomic_fetch_add(&t->requests, 1);
    if (strncmp(sf_http_request_path(req), "/delay", 6) == 0) {
        /* Answer later, from a timer, as the runtime does after a write. */
        tdelay_t *d = malloc(sizeof *d);
        ck_assert_ptr_nonnull(d);
        d->req = req;
        d->t = t;
        uv_timer_init(&t->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, tdelay_fire, 50, 0);
        return;
    }
    tsrv_answer(req);
}

static void tsrv_on_closed(sf_http_server_t *server, void *user_data)
{
    tsrv_t *t = user_data;
    (void)server;
    atomic_fetch_add(&t->closed, 1);
}

static void tsrv_on_stop(uv_async_t *a)
{
    tsrv_t *t = a->data;
    sf_http_server_close(t->server, tsrv_on_closed, t);
    uv_close((uv_handle_t *)a, NULL);
}

static void tsrv_run(void *arg)
{
    tsrv_t *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

static void tsrv_start(tsrv_t *t, sf_http_server_config_t *cfg)
{
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(uv_loop_init(&t->loop), 0);
    ck_assert_int_eq(sf_http_server_new(&t->loop, cfg, tsrv_on_request, t, &t->server), 0);
    t->port = sf_http_server_port(t->server);
    if (!cfg->unix_path)
        ck_assert_uint_ne(t->port, 0);
    ck_assert_int_eq(uv_async_init(&t->loop, &t->stop, tsrv_on_stop), 0);
    t->stop.data = t;
    ck_assert_int_eq(uv_thread_create(&t->thread, tsrv_run, t), 0);
}

static void tsrv_stop(tsrv_t *t)
{
    atomic_thread_fence(memory_order_seq_cst);
    uv_async_send(&t->stop);
    uv_thread_join(&t->thread);
    ck_assert_int_eq(atomic_load(&t->closed), 1);
    ck_assert_int_eq(uv_loop_close(&t->loop), 0);
}

static void base_config(sf_http_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
}

/* Runs a shell command and captures its stdout (NUL-terminated). Returns
 * the exit status. */
static int capture(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int capture(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[32768];
    va_list ap;
    FILE *f;
    size_t n = 0, r;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, f)) > 0)
        n += r;
    out[n] = '\0';
    st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* curl with a bounded time; -w appends "\n<status> <version>". */
#define CURL "curl -s -S --max-time 10 -w '\\n%%{http_code} %%{http_version}' "

/* A blocking TCP socket to the server with a 5 s receive timeout. */
static int raw_connect(uint16_t port)
{
    struct sockaddr_in a;
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    uv_ip4_addr("127.0.0.1", port, &a);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void raw_send(int fd, const void *data, size_t len)
{
    ck_assert_int_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads until the server closes (or the receive timeout); returns bytes. */
static size_t raw_read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n + 1 < cap && (r = recv(fd, buf + n, cap - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

START_TEST(test_server_curl_h1_h2_nghttp)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char out[4096];

    base_config(&cfg);
    tsrv_start(&t, &cfg);
    ck_assert_int_eq(
        capture(out, sizeof out, CURL "--http1.1 -d hello-h1 http://127.0.0.1:%u/echo", t.port), 0);
    ck_assert_str_eq(out, "hello-h1\n200 1.1");
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http2-prior-knowledge -d hello-h2 http://127.0.0.1:%u/echo",
                             t.port),
                     0);
    ck_assert_str_eq(out, "hello-h2\n200 2");
    /* Several requests on one connection each way (keep-alive, streams). */
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http1.1 http://127.0.0.1:%u/a http://127.0.0.1:%u/b", t.port,
                             t.port),
                     0);
    ck_assert_str_eq(out, "GET /a\n\n200 1.1GET /b\n\n200 1.1");
    /* nghttp: an independent HTTP/2 client, prior knowledge. */
    ck_assert_int_eq(
        capture(out, sizeof out, "nghttp -t 10 http://127.0.0.1:%u/from-nghttp 2>&1", t.port), 0);
    ck_assert_str_eq(out, "GET /from-nghttp\n");
    /* Many multiplexed streams from h2load, and HTTP/1.1 pipelining. */
    ck_assert_int_eq(capture(out, sizeof out,
                             "h2load -n 2000 -c 4 -m 20 http://127.0.0.1:%u/load 2>&1 | "
                             "grep -c '2000 succeeded'",
                             t.port),
                     0);
    ck_assert_int_eq(capture(out, sizeof out,
                             "h2load --h1 -n 2000 -c 4 -m 20 http://127.0.0.1:%u/load 2>&1 | "
                             "grep -c '2000 succeeded'",
                             t.port),
                     0);
    tsrv_stop(&t);
    ck_assert_int_eq(atomic_load(&t.requests), 4005);
}
END_TEST

START_TEST(test_server_pipelining_in_order)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char buf[8192];
    const char *a, *b, *c;
    int fd;
    /* Three requests in one send; the second is answered 50 ms after the
     * third, yet its response must come second. */
    static const char reqs[] = "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                               "GET /delay HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    base_config(&cfg);
    tsrv_start(&t, &cfg);
    fd = raw_connect(t.port);
    raw_send(fd, reqs, sizeof reqs - 1);
    raw_read_all(fd, buf, sizeof buf);
    close(fd);
    a = strstr(buf, "\r\n\r\nfirst");
    b = strstr(buf, "\r\n\r\nGET /delay\n");
    c = strstr(buf, "\r\n\r\nGET /third\n");
    ck_assert_msg(a && b && c, "responses: %s", buf);
    ck_assert(a < b);
    ck_assert(b < c);
    ck_assert_ptr_nonnull(strstr(buf, "connection: close"));
    tsrv_stop(&t);
}
END_TEST

START_TEST(test_server_tls_alpn)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char out[4096];

    make_tmpdir();
    make_cert();
    base_config(&cfg);
    cfg.tls_cert_file = cert_path;
    cfg.tls_key_file = key_path;
    cfg.read_timeout_ms = 300;
    tsrv_start(&t, &cfg);
    /* A client that never starts its handshake is dropped. */
    {
        char buf[64];
        int fd = raw_connect(t.port);
        ck_assert_uint_eq(raw_read_all(fd, buf, sizeof buf), 0);
        close(fd);
    }
    tsrv_stop(&t);
    /* The default timeouts from here on: handshakes are slow under valgrind. */
    cfg.read_timeout_ms = 0;
    tsrv_start(&t, &cfg);
    ck_assert_int_eq(
        capture(out, sizeof out, CURL "-k --http2 -d tls-h2 https://127.0.0.1:%u/x", t.port), 0);
    ck_assert_str_eq(out, "tls-h2\n200 2");
    ck_assert_int_eq(
        capture(out, sizeof out, CURL "-k --http1.1 -d tls-h1 https://127.0.0.1:%u/x", t.port), 0);
    ck_assert_str_eq(out, "tls-h1\n200 1.1");
    /* Verified against the generated certificate, by name. */
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--cacert %s --resolve localhost:%u:127.0.0.1 "
                                  "https://localhost:%u/verified",
                             cert_path, t.port, t.port),
                     0);
    ck_assert_str_eq(out, "GET /verified\n\n200 2");
    /* nghttp over TLS (ALPN h2). */
    ck_assert_int_eq(
        capture(out, sizeof out, "nghttp -t 10 https://127.0.0.1:%u/n 2>/dev/null", t.port), 0);
    ck_assert_str_eq(out, "GET /n\n");
    tsrv_stop(&t);
    remove_tmpdir();
}
END_TEST

START_TEST(test_server_bad_config)
{
    sf_http_server_config_t cfg;
    sf_http_server_t *s = NULL;
    uv_loop_t loop;

    base_config(&cfg);
    cfg.tls_cert_file = "/nonexistent/cert.pem";
    cfg.tls_key_file = "/nonexistent/key.pem";
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(sf_http_server_new(&loop, &cfg, tsrv_on_request, NULL, &s), SF_ETLS);
    base_config(&cfg);
    cfg.host = "not-an-address";
    ck_assert_int_eq(sf_http_server_new(&loop, &cfg, tsrv_on_request, NULL, &s), SF_EINVAL);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_server_address_in_use)
{
    sf_http_server_config_t cfg;
    sf_http_server_t *s = NULL;
    tsrv_t t;
    uv_loop_t loop;

    base_config(&cfg);
    tsrv_start(&t, &cfg);
    cfg.port = t.port;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(sf_http_server_new(&loop, &cfg, tsrv_on_request, NULL, &s), SF_EEXIST);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    tsrv_stop(&t);
}
END_TEST

START_TEST(test_server_unix_socket)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char out[4096];

    make_tmpdir();
    memset(&cfg, 0, sizeof cfg);
    cfg.unix_path = sock_path;
    tsrv_start(&t, &cfg);
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http1.1 --unix-socket %s -d over-unix http://localhost/u",
                             sock_path),
                     0);
    ck_assert_str_eq(out, "over-unix\n200 1.1");
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http2-prior-knowledge --unix-socket %s http://localhost/u2",
                             sock_path),
                     0);
    ck_assert_str_eq(out, "GET /u2\n\n200 2");
    tsrv_stop(&t);
    /* The server removes its socket file. */
    ck_assert_int_ne(access(sock_path, F_OK), 0);
    remove_tmpdir();
}
END_TEST

START_TEST(test_server_limits)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char out[4096], path[320], big[20001];

    make_tmpdir();
    snprintf(path, sizeof path, "%s/body", tmpdir);
    memset(big, 'b', 2000);
    ck_assert_int_eq(sf_test_write_file(path, big, 2000), 0);
    base_config(&cfg);
    cfg.max_body_bytes = 1000;
    tsrv_start(&t, &cfg);
    /* 413, with a one-line reason, on both protocols. */
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http1.1 --data-binary @%s http://127.0.0.1:%u/big", path,
                             t.port),
                     0);
    ck_assert_str_eq(out, "request body too large\n\n413 1.1");
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http2-prior-knowledge --data-binary @%s "
                                  "http://127.0.0.1:%u/big",
                             path, t.port),
                     0);
    ck_assert_str_eq(out, "request body too large\n\n413 2");
    /* Chunked upload without a length: the limit hits while receiving. */
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http1.1 -H 'Transfer-Encoding: chunked' --data-binary @%s "
                                  "http://127.0.0.1:%u/big",
                             path, t.port),
                     0);
    ck_assert_str_eq(out, "request body too large\n\n413 1.1");
    /* 431 for 20 kB of headers (the default limit is 16 KiB). */
    memset(big, 'h', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http1.1 -H 'x-big: %s' http://127.0.0.1:%u/hdr", big, t.port),
                     0);
    ck_assert_str_eq(out, "request header fields too large\n\n431 1.1");
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http2-prior-knowledge -H 'x-big: %s' http://127.0.0.1:%u/hdr",
                             big, t.port),
                     0);
    ck_assert_str_eq(out, "request header fields too large\n\n431 2");
    /* Still serving. */
    ck_assert_int_eq(capture(out, sizeof out, CURL "--http1.1 -d ok http://127.0.0.1:%u/", t.port),
                     0);
    ck_assert_str_eq(out, "ok\n200 1.1");
    tsrv_stop(&t);
    remove_tmpdir();
}
END_TEST

START_TEST(test_server_malformed_then_serves)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char buf[4096];
    int fd;

    base_config(&cfg);
    tsrv_start(&t, &cfg);
    fd = raw_connect(t.port);
    raw_send(fd, "GET / HTTP/1.1\r\nHost x\r\n\r\n", 26);
    raw_read_all(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nbad request"));
    ck_assert_ptr_nonnull(strstr(buf, "connection: close"));
    /* Binary junk that is no HTTP at all. */
    fd = raw_connect(t.port);
    raw_send(fd, "\x16\x03\x01\x00\xff\x01\x00\x00", 8);
    raw_read_all(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "got: %s", buf);
    ck_assert_int_eq(capture(buf, sizeof buf, CURL "--http1.1 http://127.0.0.1:%u/after", t.port),
                     0);
    ck_assert_str_eq(buf, "GET /after\n\n200 1.1");
    tsrv_stop(&t);
}
END_TEST

START_TEST(test_server_async_respond)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char out[4096];
    int fd, i;

    base_config(&cfg);
    tsrv_start(&t, &cfg);
    ck_assert_int_eq(
        capture(out, sizeof out, CURL "--http1.1 -d later-1 http://127.0.0.1:%u/delay", t.port), 0);
    ck_assert_str_eq(out, "later-1\n200 1.1");
    ck_assert_int_eq(capture(out, sizeof out,
                             CURL "--http2-prior-knowledge -d later-2 http://127.0.0.1:%u/delay",
                             t.port),
                     0);
    ck_assert_str_eq(out, "later-2\n200 2");
    /* The client goes away before the answer: the request stays valid and
     * sf_http_respond reports SF_ECONNRESET. */
    fd = raw_connect(t.port);
    raw_send(fd, "GET /delay HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    for (i = 0; i < 500 && atomic_load(&t.requests) < 3; i++)
        usleep(10000);
    close(fd);
    for (i = 0; i < 500 && atomic_load(&t.respond_reset) == 0; i++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&t.respond_reset), 1);
    /* The same over HTTP/2: preface, SETTINGS and one HEADERS frame for
     * GET /delay (HPACK: indexed :method GET and :scheme http, literal
     * :path and :authority), then the client quits before the answer. */
    {
        static const char h2_get[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                     "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                     "\x00\x00\x0d\x01\x05\x00\x00\x00\x01"
                                     "\x82\x86\x44\x06/delay\x41\x01x";
        fd = raw_connect(t.port);
        raw_send(fd, h2_get, sizeof h2_get - 1);
        for (i = 0; i < 500 && atomic_load(&t.requests) < 4; i++)
            usleep(10000);
        ck_assert_int_eq(atomic_load(&t.requests), 4);
        close(fd);
    }
    for (i = 0; i < 500 && atomic_load(&t.respond_reset) == 1; i++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&t.respond_reset), 2);
    /* And a request still pending when the server closes. */
    fd = raw_connect(t.port);
    raw_send(fd, "GET /delay HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    for (i = 0; i < 500 && atomic_load(&t.requests) < 5; i++)
        usleep(10000);
    tsrv_stop(&t);
    close(fd);
    ck_assert_int_eq(atomic_load(&t.respond_reset), 3);
}
END_TEST

START_TEST(test_server_timeouts)
{
    sf_http_server_config_t cfg;
    tsrv_t t;
    char buf[4096];
    uint64_t start;
    size_t n;
    int fd;
    static const char h2_hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                   "\x00\x00\x00\x04\x00\x00\x00\x00\x00";

    base_config(&cfg);
    cfg.idle_timeout_ms = 200;
    cfg.read_timeout_ms = 300;
    tsrv_start(&t, &cfg);
    /* Idle: a connection that never sends is closed. */
    start = uv_hrtime();
    fd = raw_connect(t.port);
    ck_assert_uint_eq(raw_read_all(fd, buf, sizeof buf), 0);
    close(fd);
    ck_assert_uint_ge((uv_hrtime() - start) / 1000000, 150);
    /* Idle after a keep-alive request. */
    fd = raw_connect(t.port);
    raw_send(fd, "GET /ka HTTP/1.1\r\nHost: x\r\n\r\n", 29);
    raw_read_all(fd, buf, sizeof buf);
    close(fd);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nGET /ka\n"));
    /* Read timeout: a started request that never completes gets 408. */
    fd = raw_connect(t.port);
    raw_send(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 52);
    raw_read_all(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "request timed out"));
    /* HTTP/2 idle: the server's SETTINGS, then GOAWAY and the close. */
    fd = raw_connect(t.port);
    raw_send(fd, h2_hello, sizeof h2_hello - 1);
    n = raw_read_all(fd, buf, sizeof buf);
    close(fd);
    ck_assert_uint_ge(n, 9 + 8 + 9);
    ck_assert_int_eq(buf[3], 0x04);
    tsrv_stop(&t);
}
END_TEST

Suite *sf_protocol_http_server_suite(void)
{
    Suite *s = suite_create("protocol_http_server");
    TCase *tc = tcase_create("conn");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conn_tcp_echo);
    tcase_add_test(tc, test_conn_unix_echo);
    tcase_add_test(tc, test_conn_tls_echo);
    tcase_add_test(tc, test_conn_tls_unix_echo);
    tcase_add_test(tc, test_conn_refused);
    tcase_add_test(tc, test_tls_ctx_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("server");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_server_curl_h1_h2_nghttp);
    tcase_add_test(tc, test_server_pipelining_in_order);
    tcase_add_test(tc, test_server_tls_alpn);
    tcase_add_test(tc, test_server_bad_config);
    tcase_add_test(tc, test_server_address_in_use);
    tcase_add_test(tc, test_server_unix_socket);
    tcase_add_test(tc, test_server_limits);
    tcase_add_test(tc, test_server_malformed_then_serves);
    tcase_add_test(tc, test_server_async_respond);
    tcase_add_test(tc, test_server_timeouts);
    suite_add_tcase(s, tc);
    return s;
}
