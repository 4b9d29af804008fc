/* statefun-c: Apache License 2.0.
 *
 * One connection (see conn.h): TCP or UNIX socket, accepted or connected,
 * plaintext or TLS over memory BIOs, with gathered output (one write per
 * loop turn), a per-connection timer, backpressure and a graceful close
 * that flushes, shuts down the write side and drains input before the
 * socket goes away.
 *
 * Life cycle: every handle (stream, timer, idle, check) and every request
 * in flight (getaddrinfo, connect, write, shutdown) counts in _pending. Once
 * the handles are closing and _pending is zero, on_close runs and the
 * connection is freed. Nothing is freed from inside a libuv callback of the
 * same connection except in the final close callback.
 *
 * Threading: loop thread only.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* How long a graceful close may take (flush, shutdown, drain) before the
 * socket is closed regardless. */
#define CLOSE_DEADLINE_MS 3000
/* Size of the read buffers; reads are consumed synchronously, so one buffer
 * per thread serves every connection of its loop. */
#define READ_BUF_SIZE 65536
/* A write buffer that grew beyond this is released when it drains. */
#define BUF_KEEP_MAX (256 * 1024)

static _Thread_local uint8_t net_buf[READ_BUF_SIZE];
static _Thread_local uint8_t tls_buf[READ_BUF_SIZE];

/* A uv_buf_t over |len| bytes. Not uv_buf_init: its length is an unsigned
 * int, while uv_buf_t's own (on Unix) is a size_t. */
static uv_buf_t buf_of(const void *base, size_t len)
{
    uv_buf_t b;

    b.base = (char *)base;
    b.len = len;
    return b;
}

static void flush(sf_conn_t *conn);
static void close_handles(sf_conn_t *conn);
static void tls_pump(sf_conn_t *conn);
static void start_reading(sf_conn_t *conn);
static void on_timer(uv_timer_t *t);
static int tls_encrypt(sf_conn_t *conn);

/* ------------------------------------------------------------------------ */
/* Teardown                                                                   */

static void conn_destroy(sf_conn_t *conn)
{
    if (conn->_ssl)
        SSL_free(conn->_ssl); /* frees both BIOs */
    sf_tls_ctx_free(conn->_tls);
    if (conn->_ai_head)
        uv_freeaddrinfo(conn->_ai_head);
    sf_buf_dispose(&conn->_out);
    sf_buf_dispose(&conn->_tls_pt);
    sf_buf_dispose(&conn->_inflight);
    sf_mem_free(conn->mem, conn);
}

/* Runs on_close and frees the connection once nothing is outstanding. */
static void check_done(sf_conn_t *conn)
{
    if (!conn->_handles_closing || conn->_pending > 0)
        return;
    conn->_cb.on_close(conn, conn->_reason);
    conn_destroy(conn);
}

static void on_handle_closed(uv_handle_t *h)
{
    sf_conn_t *conn = h->data;
    conn->_pending--;
    check_done(conn);
}

static void close_handles(sf_conn_t *conn)
{
    if (conn->_handles_closing)
        return;
    conn->_handles_closing = true;
    conn->_closing = true;
    if (conn->_reconnecting) {
        /* The stream is already closing; its callback accounts for it. */
    } else {
        uv_close(&conn->_h.handle, on_handle_closed);
    }
    uv_close((uv_handle_t *)&conn->_timer, on_handle_closed);
    uv_close((uv_handle_t *)&conn->_idle, on_handle_closed);
    uv_close((uv_handle_t *)&conn->_check, on_handle_closed);
    /* A name lookup in flight reports back with UV_ECANCELED or its result;
     * its callback decrements _pending either way. */
    if (conn->_resolving)
        uv_cancel((uv_req_t *)&conn->_gai_req);
}

/* A failure: reports it through on_open when the connection never opened,
 * then closes at once. */
static void conn_fail(sf_conn_t *conn, int err)
{
    if (conn->_handles_closing)
        return;
    if (!conn->_opened && !conn->_closing) {
        conn->_opened = true; /* on_open is reported at most once */
        conn->_closing = true;
        conn->_reason = err;
        if (conn->_cb.on_open)
            conn->_cb.on_open(conn, err);
    }
    sf_conn_abort(conn, err);
}

void sf_conn_abort(sf_conn_t *conn, int reason)
{
    if (conn->_handles_closing)
        return;
    if (!conn->_closing || conn->_reason == 0)
        conn->_reason = reason;
    conn->_closing = true;
    close_handles(conn);
}

/* Called when the output is drained during a graceful close: shut down the
 * write side, then wait for the peer's EOF (or the deadline). */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    sf_conn_t *conn = req->data;
    conn->_pending--;
    if (conn->_handles_closing) {
        check_done(conn);
        return;
    }
    if (status < 0 || conn->_eof)
        close_handles(conn);
}

static void finish_close(sf_conn_t *conn)
{
    int rv;

    if (conn->_shut || conn->_handles_closing)
        return;
    conn->_shut = true;
    if (conn->_eof) {
        close_handles(conn);
        return;
    }
    conn->_shutdown_req.data = conn;
    rv = uv_shutdown(&conn->_shutdown_req, &conn->_h.stream, on_shutdown);
    if (rv < 0) {
        close_handles(conn);
        return;
    }
    conn->_pending++;
}

void sf_conn_close(sf_conn_t *conn, int reason)
{
    if (conn->_closing)
        return;
    conn->_closing = true;
    conn->_reason = reason;
    if (!conn->_connected || (conn->is_tls && !conn->_handshaken)) {
        close_handles(conn);
        return;
    }
    uv_timer_start(&conn->_timer, on_timer, CLOSE_DEADLINE_MS, 0);
    if (conn->is_tls) {
        /* Encrypt what is pending, then queue close_notify after it. */
        if (tls_encrypt(conn) != 0) {
            close_handles(conn);
            return;
        }
        (void)SSL_shutdown(conn->_ssl);
        ERR_clear_error();
    }
    /* Keep reading (and discarding) so the peer's late bytes do not turn
     * our close into a reset. */
    conn->_paused = false;
    if (!conn->_eof)
        start_reading(conn);
    sf_conn_schedule_flush(conn);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                     */

static void on_flush_idle(uv_idle_t *h);
static void on_flush_check(uv_check_t *h);

void sf_conn_schedule_flush(sf_conn_t *conn)
{
    if (conn->_flush_armed || conn->_handles_closing)
        return;
    conn->_flush_armed = true;
    uv_idle_start(&conn->_idle, on_flush_idle);
    uv_check_start(&conn->_check, on_flush_check);
}

static void run_flush(sf_conn_t *conn)
{
    conn->_flush_armed = false;
    uv_idle_stop(&conn->_idle);
    uv_check_stop(&conn->_check);
    if (conn->_pump_wanted && !conn->_closing && !conn->_paused) {
        conn->_pump_wanted = false;
        tls_pump(conn);
        if (conn->_handles_closing)
            return;
    }
    flush(conn);
}

static void on_flush_idle(uv_idle_t *h)
{
    run_flush(h->data);
}
static void on_flush_check(uv_check_t *h)
{
    run_flush(h->data);
}

static void after_drained(sf_conn_t *conn)
{
    if (conn->_closing) {
        finish_close(conn);
        return;
    }
    if (conn->_drain_wanted) {
        conn->_drain_wanted = false;
        if (conn->_cb.on_drain)
            conn->_cb.on_drain(conn);
    }
}

static void on_write(uv_write_t *req, int status)
{
    sf_conn_t *conn = req->data;

    conn->_pending--;
    conn->_writing = false;
    conn->_inflight.len = 0;
    if (conn->_inflight.cap > BUF_KEEP_MAX)
        sf_buf_dispose(&conn->_inflight);
    if (conn->_handles_closing) {
        check_done(conn);
        return;
    }
    if (status < 0) {
        sf_conn_abort(conn, SF_ECONNRESET);
        return;
    }
    flush(conn);
}

/* Moves the ciphertext produced by OpenSSL into the wire buffer. */
static int tls_collect(sf_conn_t *conn)
{
    size_t n;
    int got;

    while ((n = BIO_ctrl_pending(conn->_wbio)) > 0) {
        if (sf_buf_reserve(&conn->_out, n) != 0)
            return SF_ENOMEM;
        got = BIO_read(conn->_wbio, conn->_out.base + conn->_out.len, (int)n);
        if (got <= 0)
            break;
        conn->_out.len += (size_t)got;
    }
    return SF_OK;
}

/* Encrypts the pending plaintext (after the handshake) into the wire buffer. */
static int tls_encrypt(sf_conn_t *conn)
{
    size_t off = 0;
    int n;

    if (!conn->_handshaken || conn->_tls_pt.len == 0 || conn->_shut)
        return SF_OK;
    while (off < conn->_tls_pt.len) {
        size_t chunk = conn->_tls_pt.len - off;
        if (chunk > INT32_MAX)
            chunk = INT32_MAX;
        n = SSL_write(conn->_ssl, conn->_tls_pt.base + off, (int)chunk);
        if (n <= 0) {
            sf__tls_log_errors("write failed");
            return SF_ETLS;
        }
        off += (size_t)n;
    }
    conn->_tls_pt.len = 0;
    if (conn->_tls_pt.cap > BUF_KEEP_MAX)
        sf_buf_dispose(&conn->_tls_pt);
    return SF_OK;
}

static void flush(sf_conn_t *conn)
{
    uv_buf_t b;
    int n, rv;
    sf_buf_t tmp;

    if (conn->_handles_closing || !conn->_connected)
        return;
    if (conn->is_tls) {
        if ((rv = tls_encrypt(conn)) != 0 || (rv = tls_collect(conn)) != 0) {
            conn_fail(conn, rv);
            return;
        }
    }
    if (conn->_writing)
        return; /* on_write flushes again */
    if (conn->_out.len == 0) {
        after_drained(conn);
        return;
    }
    b = buf_of(conn->_out.base, conn->_out.len);
    n = uv_try_write(&conn->_h.stream, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) {
        n = 0;
    } else if (n < 0) {
        sf_conn_abort(conn, SF_ECONNRESET);
        return;
    }
    if ((size_t)n == conn->_out.len) {
        conn->_out.len = 0;
        if (conn->_out.cap > BUF_KEEP_MAX)
            sf_buf_dispose(&conn->_out);
        after_drained(conn);
        return;
    }
    /* The kernel took part of it: hand the rest to uv_write and keep
     * gathering into the other buffer meanwhile. */
    tmp = conn->_inflight;
    conn->_inflight = conn->_out;
    conn->_out = tmp;
    conn->_out.len = 0;
    b = buf_of(conn->_inflight.base + n, conn->_inflight.len - (size_t)n);
    conn->_write_req.data = conn;
    rv = uv_write(&conn->_write_req, &conn->_h.stream, &b, 1, on_write);
    if (rv < 0) {
        conn->_inflight.len = 0;
        sf_conn_abort(conn, SF_ECONNRESET);
        return;
    }
    conn->_pending++;
    conn->_writing = true;
    conn->_drain_wanted = true;
}

sf_buf_t *sf_conn_out_buf(sf_conn_t *conn)
{
    if (conn->_closing)
        return NULL;
    return conn->is_tls ? &conn->_tls_pt : &conn->_out;
}

int sf_conn_write(sf_conn_t *conn, const uv_buf_t *bufs, unsigned nbufs)
{
    sf_buf_t *out = sf_conn_out_buf(conn);
    size_t total = 0;
    unsigned i;

    if (!out)
        return SF_ECONNRESET;
    for (i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (sf_buf_reserve(out, total) != 0)
        return SF_ENOMEM;
    for (i = 0; i < nbufs; i++) {
        if (bufs[i].len) {
            memcpy(out->base + out->len, bufs[i].base, bufs[i].len);
            out->len += bufs[i].len;
        }
    }
    sf_conn_schedule_flush(conn);
    return SF_OK;
}

int sf_conn_write1(sf_conn_t *conn, const void *data, size_t len)
{
    uv_buf_t b = buf_of(data, len);
    return sf_conn_write(conn, &b, 1);
}

size_t sf_conn_pending_out(const sf_conn_t *conn)
{
    size_t n = conn->_out.len + conn->_tls_pt.len;
    if (conn->_writing)
        n += conn->_inflight.len;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                      */

static void deliver(sf_conn_t *conn, const uint8_t *data, size_t len)
{
    if (conn->_cb.on_read)
        conn->_cb.on_read(conn, data, len);
}

static void tls_handshake_done(sf_conn_t *conn)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;

    conn->_handshaken = true;
    SSL_get0_alpn_selected(conn->_ssl, &p, &len);
    if (p && len > 0 && len < sizeof conn->_alpn) {
        memcpy(conn->_alpn, p, len);
        conn->_alpn[len] = '\0';
    }
}

/* Advances the handshake and decrypts buffered input for delivery. */
static void tls_pump(sf_conn_t *conn)
{
    int r, e;

    if (!conn->_handshaken) {
        r = SSL_do_handshake(conn->_ssl);
        if (r != 1) {
            e = SSL_get_error(conn->_ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (BIO_ctrl_pending(conn->_wbio) > 0)
                    sf_conn_schedule_flush(conn);
                return;
            }
            sf__tls_log_errors(conn->is_client ? "handshake with server failed"
                                               : "handshake with client failed");
            /* Send the alert OpenSSL produced, if any, on a best effort. */
            if (tls_collect(conn) == 0 && conn->_out.len > 0) {
                uv_buf_t b = buf_of(conn->_out.base, conn->_out.len);
                (void)uv_try_write(&conn->_h.stream, &b, 1);
                conn->_out.len = 0;
            }
            conn_fail(conn, SF_ETLS);
            return;
        }
        tls_handshake_done(conn);
        sf_conn_schedule_flush(conn);
        if (!conn->_opened) {
            conn->_opened = true;
            if (conn->_cb.on_open)
                conn->_cb.on_open(conn, 0);
        }
    }
    while (!conn->_paused && !conn->_closing) {
        r = SSL_read(conn->_ssl, tls_buf, sizeof tls_buf);
        if (r > 0) {
            deliver(conn, tls_buf, (size_t)r);
            continue;
        }
        e = SSL_get_error(conn->_ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: the peer is done sending. */
            conn->_eof = true;
            sf_conn_close(conn, SF_ECONNRESET);
            break;
        }
        sf__tls_log_errors("read failed");
        sf_conn_abort(conn, SF_ETLS);
        return;
    }
    if (!conn->_handles_closing && BIO_ctrl_pending(conn->_wbio) > 0)
        sf_conn_schedule_flush(conn);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)net_buf, sizeof net_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sf_conn_t *conn = s->data;

    if (nread == 0 || conn->_handles_closing)
        return;
    if (nread < 0) {
        conn->_eof = true;
        uv_read_stop(s);
        conn->_reading = false;
        if (conn->_closing) {
            /* Draining after our shutdown, or the flush is still going:
             * the flush path closes once the output is out. */
            if (conn->_shut && !conn->_writing)
                close_handles(conn);
            return;
        }
        if (!conn->_opened) {
            conn_fail(conn, conn->is_tls ? SF_ETLS : SF_ECONNRESET);
            return;
        }
        if (nread != UV_EOF) {
            sf_conn_abort(conn, SF_ECONNRESET);
            return;
        }
        sf_conn_close(conn, SF_ECONNRESET);
        return;
    }
    if (conn->_closing)
        return; /* draining */
    if (!conn->is_tls) {
        deliver(conn, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (BIO_write(conn->_rbio, buf->base, (int)nread) != (int)nread) {
        conn_fail(conn, SF_ENOMEM);
        return;
    }
    tls_pump(conn);
}

static void start_reading(sf_conn_t *conn)
{
    if (conn->_reading || conn->_eof || conn->_handles_closing || !conn->_connected)
        return;
    if (uv_read_start(&conn->_h.stream, on_alloc, on_read) == 0)
        conn->_reading = true;
}

void sf_conn_pause_read(sf_conn_t *conn)
{
    conn->_paused = true;
    if (conn->_reading && !conn->_closing) {
        uv_read_stop(&conn->_h.stream);
        conn->_reading = false;
    }
}

void sf_conn_resume_read(sf_conn_t *conn)
{
    if (!conn->_paused || conn->_closing)
        return;
    conn->_paused = false;
    start_reading(conn);
    if (conn->is_tls && conn->_handshaken) {
        /* Records may be buffered in OpenSSL from before the pause. */
        conn->_pump_wanted = true;
        sf_conn_schedule_flush(conn);
    }
}

/* ------------------------------------------------------------------------ */
/* Timer                                                                      */

static void on_timer(uv_timer_t *t)
{
    sf_conn_t *conn = t->data;

    if (conn->_closing) {
        /* The graceful close took too long. */
        close_handles(conn);
        return;
    }
    if (conn->_cb.on_timeout)
        conn->_cb.on_timeout(conn);
    else
        conn_fail(conn, SF_ETIMEDOUT);
}

void sf_conn_set_timeout(sf_conn_t *conn, uint64_t ms)
{
    if (conn->_closing)
        return;
    if (ms == 0)
        uv_timer_stop(&conn->_timer);
    else
        uv_timer_start(&conn->_timer, on_timer, ms, 0);
}

const char *sf_conn_alpn(const sf_conn_t *conn)
{
    return conn->_alpn[0] ? conn->_alpn : NULL;
}

/* ------------------------------------------------------------------------ */
/* Construction                                                               */

static sf_conn_t *conn_alloc(uv_loop_t *loop, sf_tls_ctx_t *tls, const sf_conn_callbacks_t *cb,
                             void *data, const sf_mem *mem, bool is_unix, bool is_client)
{
    sf_conn_t *conn = sf_mem_calloc(mem, 1, sizeof *conn);
    int rv;

    if (!conn)
        return NULL;
    conn->data = data;
    conn->loop = loop;
    conn->mem = mem;
    conn->is_tls = tls != NULL;
    conn->is_unix = is_unix;
    conn->is_client = is_client;
    conn->_cb = *cb;
    sf_buf_init(&conn->_out, mem);
    sf_buf_init(&conn->_tls_pt, mem);
    sf_buf_init(&conn->_inflight, mem);
    if (tls) {
        conn->_ssl = SSL_new(sf_tls_ctx_ssl_ctx(tls));
        conn->_rbio = BIO_new(BIO_s_mem());
        conn->_wbio = BIO_new(BIO_s_mem());
        if (!conn->_ssl || !conn->_rbio || !conn->_wbio) {
            if (conn->_ssl)
                SSL_free(conn->_ssl);
            BIO_free(conn->_rbio);
            BIO_free(conn->_wbio);
            ERR_clear_error();
            sf_mem_free(mem, conn);
            return NULL;
        }
        /* An empty memory BIO reports "retry", not EOF. */
        BIO_set_mem_eof_return(conn->_rbio, -1);
        BIO_set_mem_eof_return(conn->_wbio, -1);
        SSL_set_bio(conn->_ssl, conn->_rbio, conn->_wbio);
        conn->_tls = sf_tls_ctx_ref(tls);
    }
    rv = is_unix ? uv_pipe_init(loop, &conn->_h.pipe, 0) : uv_tcp_init(loop, &conn->_h.tcp);
    SF_ASSERT(rv == 0);
    uv_timer_init(loop, &conn->_timer);
    uv_idle_init(loop, &conn->_idle);
    uv_check_init(loop, &conn->_check);
    conn->_h.handle.data = conn;
    conn->_timer.data = conn;
    conn->_idle.data = conn;
    conn->_check.data = conn;
    conn->_pending = 4;
    return conn;
}

/* Frees a connection whose handles were initialized but never used, from
 * the constructor's error path: the handles must still be closed, so the
 * memory goes in on_close with a no-op user callback. */
static void silent_close(sf_conn_t *conn, int reason);

static void noop_on_close(sf_conn_t *conn, int reason)
{
    (void)conn;
    (void)reason;
}

static void silent_close(sf_conn_t *conn, int reason)
{
    conn->_cb.on_open = NULL;
    conn->_cb.on_close = noop_on_close;
    conn->_opened = true;
    sf_conn_abort(conn, reason);
}

int sf_conn_accept(uv_stream_t *server, sf_tls_ctx_t *tls, const sf_conn_callbacks_t *cb,
                   void *data, const sf_mem *mem, sf_conn_t **out)
{
    bool is_unix = server->type == UV_NAMED_PIPE;
    sf_conn_t *conn;

    if (!cb || !cb->on_close || !out)
        return SF_EINVAL;
    conn = conn_alloc(server->loop, tls, cb, data, mem, is_unix, false);
    if (!conn)
        return SF_ENOMEM;
    if (uv_accept(server, &conn->_h.stream) != 0) {
        silent_close(conn, SF_EIO);
        return SF_EIO;
    }
    if (!is_unix)
        uv_tcp_nodelay(&conn->_h.tcp, 1);
    conn->_connected = true;
    if (tls)
        SSL_set_accept_state(conn->_ssl);
    start_reading(conn);
    *out = conn;
    if (!tls) {
        conn->_opened = true;
        if (conn->_cb.on_open)
            conn->_cb.on_open(conn, 0);
    }
    return SF_OK;
}

/* Connect completion: start the handshake (TLS) or report the open. */
static void on_connected(sf_conn_t *conn)
{
    conn->_connected = true;
    if (!conn->is_unix)
        uv_tcp_nodelay(&conn->_h.tcp, 1);
    start_reading(conn);
    if (conn->is_tls) {
        tls_pump(conn); /* produces the ClientHello */
        sf_conn_schedule_flush(conn);
        return;
    }
    conn->_opened = true;
    if (conn->_cb.on_open)
        conn->_cb.on_open(conn, 0);
    if (!conn->_handles_closing)
        sf_conn_schedule_flush(conn);
}

static void try_connect(sf_conn_t *conn);

static void on_reconnect_closed(uv_handle_t *h)
{
    sf_conn_t *conn = h->data;

    conn->_reconnecting = false;
    if (conn->_handles_closing) {
        conn->_pending--;
        check_done(conn);
        return;
    }
    SF_ASSERT(uv_tcp_init(conn->loop, &conn->_h.tcp) == 0);
    conn->_h.handle.data = conn;
    try_connect(conn);
}

static void on_connect(uv_connect_t *req, int status)
{
    sf_conn_t *conn = req->data;

    conn->_pending--;
    if (conn->_handles_closing) {
        check_done(conn);
        return;
    }
    if (status < 0) {
        if (conn->_ai && conn->_ai->ai_next) {
            /* A failed socket cannot connect again: make a fresh one. */
            conn->_ai = conn->_ai->ai_next;
            conn->_reconnecting = true;
            uv_close(&conn->_h.handle, on_reconnect_closed);
            return;
        }
        conn_fail(conn, sf_err_from_uv(status));
        return;
    }
    on_connected(conn);
}

static void try_connect(sf_conn_t *conn)
{
    int rv;

    conn->_connect_req.data = conn;
    while (conn->_ai) {
        rv = uv_tcp_connect(&conn->_connect_req, &conn->_h.tcp, conn->_ai->ai_addr, on_connect);
        if (rv == 0) {
            conn->_pending++;
            return;
        }
        if (!conn->_ai->ai_next) {
            conn_fail(conn, sf_err_from_uv(rv));
            return;
        }
        conn->_ai = conn->_ai->ai_next;
    }
    conn_fail(conn, SF_ENOTFOUND);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sf_conn_t *conn = req->data;

    conn->_pending--;
    conn->_resolving = false;
    if (conn->_handles_closing) {
        if (res)
            uv_freeaddrinfo(res);
        check_done(conn);
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        conn_fail(conn, status == UV_EAI_NONAME || status == UV_EAI_NODATA || !res
                            ? SF_ENOTFOUND
                            : sf_err_from_uv(status));
        return;
    }
    conn->_ai_head = res;
    conn->_ai = res;
    try_connect(conn);
}

/* Sets up SNI, name verification and ALPN on a client's SSL object. */
static int client_tls_setup(sf_conn_t *conn, sf_tls_ctx_t *tls, const char *sni_host,
                            const char *alpn)
{
    unsigned char in6[16];
    uint8_t wire[256];
    ssize_t n;
    bool is_ip;

    SSL_set_connect_state(conn->_ssl);
    if (sni_host && *sni_host) {
        is_ip = inet_pton(AF_INET, sni_host, in6) == 1 || inet_pton(AF_INET6, sni_host, in6) == 1;
        if (!is_ip && SSL_set_tlsext_host_name(conn->_ssl, sni_host) != 1)
            return sf__tls_log_errors("cannot set SNI");
        if (sf_tls_ctx_verifies_peer(tls)) {
            X509_VERIFY_PARAM *param = SSL_get0_param(conn->_ssl);
            if (is_ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(param, sni_host) != 1)
                    return sf__tls_log_errors("cannot set the expected IP address");
            } else {
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (X509_VERIFY_PARAM_set1_host(param, sni_host, 0) != 1)
                    return sf__tls_log_errors("cannot set the expected host name");
            }
        }
    }
    if (alpn) {
        n = sf_tls_alpn_wire(alpn, wire, sizeof wire);
        if (n < 0)
            return SF_EINVAL;
        /* SSL_set_alpn_protos returns 0 on success. */
        if (SSL_set_alpn_protos(conn->_ssl, wire, (unsigned)n) != 0)
            return sf__tls_log_errors("cannot set ALPN");
    }
    return SF_OK;
}

static int connect_common(uv_loop_t *loop, bool is_unix, sf_tls_ctx_t *tls, const char *sni_host,
                          const char *alpn, const sf_conn_callbacks_t *cb, void *data,
                          const sf_mem *mem, sf_conn_t **connp)
{
    sf_conn_t *conn;
    int rv;

    if (!loop || !cb || !cb->on_close || !connp)
        return SF_EINVAL;
    if (tls && sf_tls_ctx_is_server(tls))
        return SF_EINVAL;
    conn = conn_alloc(loop, tls, cb, data, mem, is_unix, true);
    if (!conn)
        return SF_ENOMEM;
    if (tls && (rv = client_tls_setup(conn, tls, sni_host, alpn)) != 0) {
        silent_close(conn, rv);
        return rv;
    }
    *connp = conn;
    return SF_OK;
}

int sf_conn_connect_tcp(uv_loop_t *loop, const char *host, uint16_t port, sf_tls_ctx_t *tls,
                        const char *sni_host, const char *alpn, const sf_conn_callbacks_t *cb,
                        void *data, const sf_mem *mem, sf_conn_t **out)
{
    struct addrinfo hints;
    char portstr[8];
    sf_conn_t *conn;
    int rv;

    if (!host || !*host || !out)
        return SF_EINVAL;
    rv = connect_common(loop, false, tls, sni_host ? sni_host : host, alpn, cb, data, mem, &conn);
    if (rv != 0)
        return rv;
    conn->_port = port;
    /* A numeric address needs no lookup: connect at once. */
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&conn->_addr) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&conn->_addr) == 0) {
        conn->_connect_req.data = conn;
        rv = uv_tcp_connect(&conn->_connect_req, &conn->_h.tcp,
                            (const struct sockaddr *)&conn->_addr, on_connect);
        if (rv < 0) {
            silent_close(conn, sf_err_from_uv(rv));
            return rv == UV_ENOMEM ? SF_ENOMEM : SF_EINVAL;
        }
        conn->_pending++;
        *out = conn;
        return SF_OK;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    conn->_gai_req.data = conn;
    rv = uv_getaddrinfo(loop, &conn->_gai_req, on_resolved, host, portstr, &hints);
    if (rv < 0) {
        silent_close(conn, sf_err_from_uv(rv));
        return rv == UV_ENOMEM ? SF_ENOMEM : SF_EINVAL;
    }
    conn->_pending++;
    conn->_resolving = true;
    *out = conn;
    return SF_OK;
}

int sf_conn_connect_unix(uv_loop_t *loop, const char *path, sf_tls_ctx_t *tls, const char *sni_host,
                         const char *alpn, const sf_conn_callbacks_t *cb, void *data,
                         const sf_mem *mem, sf_conn_t **out)
{
    sf_conn_t *conn;
    int rv;

    if (!path || !*path || !out)
        return SF_EINVAL;
    rv = connect_common(loop, true, tls, sni_host, alpn, cb, data, mem, &conn);
    if (rv != 0)
        return rv;
    conn->_connect_req.data = conn;
    uv_pipe_connect(&conn->_connect_req, &conn->_h.pipe, path, on_connect);
    conn->_pending++;
    *out = conn;
    return SF_OK;
}
