/* statefun-c: Apache License 2.0.
 *
 * One byte-stream connection of the HTTP transport: a uv_tcp_t or a
 * uv_pipe_t (UNIX domain socket), accepted or connected, with optional TLS
 * run over OpenSSL memory BIOs so that the layers above (HTTP/1.1, HTTP/2,
 * server and client) only ever see plaintext.
 *
 * Key behaviours:
 * - Output is gathered: sf_conn_write copies bytes into the connection's
 *   pending buffer and everything written during one loop turn leaves in one
 *   write (uv_try_write, then one uv_write for the rest), flushed from the
 *   connection's idle/check handles: writes made in I/O callbacks go out in
 *   the check phase of the same turn, writes made in timer callbacks before
 *   the poll. TLS encrypts the whole batch at flush time. TCP_NODELAY is on.
 * - on_close is called exactly once for every connection handed out with 0,
 *   after all its handles are closed and its requests are done; the
 *   connection is freed right after on_close returns.
 * - Closing is graceful by default (sf_conn_close): pending output is
 *   flushed, TLS close_notify sent, the write side shut down, and the input
 *   drained for a short while before the socket is closed, so a peer that
 *   still sends does not get a reset that destroys our last response.
 *   sf_conn_abort drops pending output and closes at once.
 * - One timer per connection (sf_conn_set_timeout) serves the idle, read and
 *   connect timeouts of the layers above.
 *
 * Threading: loop thread only; a connection belongs to the loop it was
 * created on.
 */
#ifndef SF_CONN_H
#define SF_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sf_common.h"
#include "tls.h"

typedef struct sf_conn_s sf_conn_t;

/** Event callbacks. Copied by the constructors; only on_close is mandatory. */
typedef struct sf_conn_callbacks_s {
    /**
     * The connection is usable (status 0) or failed to open (negative
     * SF_E*: SF_ECONNREFUSED, SF_ENOTFOUND, SF_ETLS, SF_ETIMEDOUT...).
     * Client: after the TCP/UNIX connect and, with TLS, the handshake.
     * Server: after the TLS handshake; for plaintext, synchronously inside
     * sf_conn_accept. After a failure, on_close follows (later).
     */
    void (*on_open)(sf_conn_t *conn, int status);
    /**
     * Plaintext bytes arrived. |data| is borrowed for the call only. Not
     * called while reading is paused or once the connection is closing.
     */
    void (*on_read)(sf_conn_t *conn, const uint8_t *data, size_t len);
    /**
     * The timer armed by sf_conn_set_timeout fired. When NULL, the
     * connection is closed with SF_ETIMEDOUT instead.
     */
    void (*on_timeout)(sf_conn_t *conn);
    /**
     * Optional: output that had to wait for the socket (a uv_write was
     * needed) has now all been handed to the kernel. Not called when a
     * turn's output is taken by the kernel at once; check
     * sf_conn_pending_out() for that.
     */
    void (*on_drain)(sf_conn_t *conn);
    /**
     * The connection is closed and all its handles too. |reason| is the
     * first reason given to sf_conn_close/sf_conn_abort, or SF_ECONNRESET
     * (peer closed or reset), SF_ETLS, SF_ETIMEDOUT, SF_EIO. The connection
     * is freed right after this returns; free what conn->data points to here.
     */
    void (*on_close)(sf_conn_t *conn, int reason);
} sf_conn_callbacks_t;

/**
 * A connection. Allocated and freed by this module; the fields without an
 * underscore are public, the others private.
 */
struct sf_conn_s {
    void *data;        /* public: the user's pointer */
    uv_loop_t *loop;   /* read-only */
    const sf_mem *mem; /* read-only */
    bool is_tls;       /* read-only */
    bool is_unix;      /* read-only */
    bool is_client;    /* read-only */

    /* Private state follows. */
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } _h;
    uv_timer_t _timer;
    uv_idle_t _idle;
    uv_check_t _check;
    sf_conn_callbacks_t _cb;

    SSL *_ssl;
    BIO *_rbio; /* network -> SSL */
    BIO *_wbio; /* SSL -> network */
    sf_tls_ctx_t *_tls;
    bool _handshaken;

    sf_buf_t _out;      /* wire bytes waiting for the next flush */
    sf_buf_t _tls_pt;   /* TLS only: plaintext waiting to be encrypted */
    sf_buf_t _inflight; /* bytes owned by the uv_write in flight */
    uv_write_t _write_req;
    uv_shutdown_t _shutdown_req;
    uv_connect_t _connect_req;
    uv_getaddrinfo_t _gai_req;
    struct addrinfo *_ai; /* remaining addresses to try (client, TCP) */
    struct addrinfo *_ai_head;
    struct sockaddr_storage _addr; /* a numeric address to connect to */
    uint16_t _port;
    bool _resolving; /* the getaddrinfo request is in flight */

    bool _writing;     /* a uv_write is in flight */
    bool _flush_armed; /* the idle/check handles are started */
    bool _paused;      /* reading paused by the user */
    bool _reading;     /* uv_read_start active */
    bool _opened;      /* on_open(0) delivered */
    bool _closing;     /* sf_conn_close/abort called */
    bool _eof;         /* the peer's side is closed */
    bool _shut;        /* shutdown requested */
    bool _handles_closing;
    bool _connected;    /* the socket is connected (accepted, or connect done) */
    bool _drain_wanted; /* a uv_write was needed: report on_drain when done */
    bool _pump_wanted;  /* TLS: decrypt buffered input at the next flush */
    bool _reconnecting; /* client: closing the socket to try the next address */
    char _alpn[32];     /* the negotiated ALPN protocol, NUL-terminated */
    int _reason;
    int _pending; /* handles + requests still to complete */
};

/**
 * Accepts a pending connection on |server| (a listening uv_tcp_t or
 * uv_pipe_t) with TLS when |tls| (a server context; a reference is taken)
 * is not NULL. |data| is stored in conn->data before any callback. Without
 * TLS, on_open(conn, 0) is called before this returns.
 *
 * Returns 0 and sets |*out|, or SF_ENOMEM, SF_EIO (accept failed; nothing to
 * close; the pending socket is dropped).
 */
int sf_conn_accept(uv_stream_t *server, sf_tls_ctx_t *tls, const sf_conn_callbacks_t *cb,
                   void *data, const sf_mem *mem, sf_conn_t **out);

/**
 * Connects to |host| (numeric IPv4/IPv6 or a name, resolved with
 * uv_getaddrinfo; every address is tried in turn) and |port|. With |tls| (a
 * client context; a reference is taken), |sni_host| is sent as SNI (unless
 * it is an IP literal) and, when the context verifies, checked against the
 * certificate (DNS name or IP); NULL means |host|. |alpn| is a
 * comma-separated list to offer ("h2,http/1.1"), or NULL for none.
 * on_open reports the outcome (never from inside this call).
 *
 * Returns 0 and sets |*out| (on_close will be called), or SF_EINVAL,
 * SF_ENOMEM (nothing to close).
 */
int sf_conn_connect_tcp(uv_loop_t *loop, const char *host, uint16_t port, sf_tls_ctx_t *tls,
                        const char *sni_host, const char *alpn, const sf_conn_callbacks_t *cb,
                        void *data, const sf_mem *mem, sf_conn_t **out);

/**
 * Connects to the UNIX domain socket at |path|; otherwise as
 * sf_conn_connect_tcp (|sni_host| may be NULL: no SNI, and with a verifying
 * context no name check is done).
 */
int sf_conn_connect_unix(uv_loop_t *loop, const char *path, sf_tls_ctx_t *tls, const char *sni_host,
                         const char *alpn, const sf_conn_callbacks_t *cb, void *data,
                         const sf_mem *mem, sf_conn_t **out);

/**
 * Queues the plaintext in |bufs| (copied) for sending; it leaves with
 * everything else written this loop turn. May be called before on_open for
 * a client (sent after the handshake). Returns 0, SF_ENOMEM, or
 * SF_ECONNRESET when the connection is closing.
 */
int sf_conn_write(sf_conn_t *conn, const uv_buf_t *bufs, unsigned nbufs);

/** Like sf_conn_write for one buffer. */
int sf_conn_write1(sf_conn_t *conn, const void *data, size_t len);

/**
 * Gives the pending plaintext output buffer, to append to it in place
 * (e.g. nghttp2_session_mem_send output) without an extra copy; the caller
 * must then call sf_conn_schedule_flush. NULL when the connection is
 * closing.
 */
sf_buf_t *sf_conn_out_buf(sf_conn_t *conn);

/** Makes sure the pending output is flushed this loop turn. */
void sf_conn_schedule_flush(sf_conn_t *conn);

/** Bytes written but not yet handed to the kernel. */
size_t sf_conn_pending_out(const sf_conn_t *conn);

/** The ALPN protocol negotiated ("h2", "http/1.1"), or NULL (plaintext or none). */
const char *sf_conn_alpn(const sf_conn_t *conn);

/**
 * (Re)arms the connection timer to fire after |ms| milliseconds (0 stops
 * it). Firing calls on_timeout, or closes with SF_ETIMEDOUT when it is NULL.
 * Ignored once the connection is closing.
 */
void sf_conn_set_timeout(sf_conn_t *conn, uint64_t ms);

/** Stops / resumes delivering on_read (backpressure). Idempotent. */
void sf_conn_pause_read(sf_conn_t *conn);
void sf_conn_resume_read(sf_conn_t *conn);

/**
 * Closes gracefully: no more on_read; pending output (and TLS close_notify)
 * is flushed, the write side shut down and input drained briefly; then
 * on_close(conn, reason) (|reason| 0 for a normal close). Idempotent (the
 * first reason wins); asynchronous; safe from inside any callback.
 */
void sf_conn_close(sf_conn_t *conn, int reason);

/** Closes at once, dropping pending output. Otherwise as sf_conn_close. */
void sf_conn_abort(sf_conn_t *conn, int reason);

/** True once sf_conn_close/abort was called or the connection failed. */
static inline bool sf_conn_is_closing(const sf_conn_t *conn)
{
    return conn->_closing;
}

#endif /* SF_CONN_H */
