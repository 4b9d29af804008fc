/* statefun-c: Apache License 2.0.
 *
 * Tests of the connection layer (protocol/http/conn.c, tls.c) and of the
 * HTTP server (protocol/http/server.c, h1_server.c, h2_server.c).
 *
 * The connection tests run both ends on one loop. Certificates are made at
 * test time with the openssl command into a temporary directory.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "tls.h"

/* ------------------------------------------------------------------------ */
/* Temporary directory and certificate                                        */

static char tmpdir[64];
static char cert_path[128], key_path[128], sock_path[128];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sf-http-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir);
    snprintf(sock_path, sizeof sock_path, "%s/s.sock", tmpdir);
}

static void make_cert(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             ">/dev/null 2>&1",
             key_path, cert_path);
    ck_assert_int_eq(system(cmd), 0);
}

static void remove_tmpdir(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(sock_path);
    rmdir(tmpdir);
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

START_TEST(test_conn_tcp_echo) { run_echo(false, false, NULL); }
END_TEST

START_TEST(test_conn_unix_echo) { run_echo(true, false, NULL); }
END_TEST

START_TEST(test_conn_tls_echo) { run_echo(false, true, "h2,http/1.1"); }
END_TEST

START_TEST(test_conn_tls_unix_echo) { run_echo(true, true, "http/1.1,h2"); }
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
    ck_assert_int_eq(sf_conn_connect_tcp(&e.loop, "127.0.0.1", port, NULL, NULL, NULL, &cli_cb,
                                         &e, NULL, &conn),
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

    ck_assert_int_eq(sf_tls_server_ctx_new("/nonexistent/cert.pem", "/nonexistent/key.pem", NULL,
                                           &ctx),
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
    return s;
}
