/* statefun-c: Apache License 2.0.
 *
 * Internal structures of the HTTP server (server.c, h1_server.c,
 * h2_server.c): the server, one server-side connection (sf__sconn_t, which
 * speaks HTTP/1.1 or HTTP/2 after the preface or ALPN decided), and the
 * request object handed to the application.
 *
 * Request life cycle: RECEIVING (being parsed, owned by the connection) ->
 * DISPATCHED (owned by the application until sf_http_respond) -> ANSWERED
 * (HTTP/1.1: the serialized response waits for its turn in the pipeline) or
 * RESPONDING (HTTP/2: nghttp2 is sending it from the request's buffer) ->
 * recycled. When a connection or stream dies, DISPATCHED requests are
 * detached (hc = NULL) and stay valid until answered; all others are
 * recycled. Requests are recycled through a per-server free list with their
 * buffers kept, so the steady state allocates nothing per request.
 *
 * Threading: loop thread only.
 */
#ifndef SF_HTTP_SERVER_H
#define SF_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "conn.h"
#include "sf_common.h"
#include "sf_http.h"
#include "tls.h"

typedef struct sf__sconn_s sf__sconn_t;

typedef enum {
    SF__SREQ_RECEIVING = 0,
    SF__SREQ_DISPATCHED = 1,
    SF__SREQ_ANSWERED = 2,   /* HTTP/1.1: response serialized, waiting for its turn */
    SF__SREQ_RESPONDING = 3, /* HTTP/2: response submitted to nghttp2 */
} sf__sreq_state;

/* Where one header lives in the request's |meta| buffer. */
typedef struct {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} sf__shdr_t;

struct sf_http_request_s {
    sf__sconn_t *hc; /* the connection, NULL once detached */
    const sf_mem *mem;
    void *user_data;                /* the server's user data */
    sf_http_request_t *prev, *next; /* in hc's request list */
    sf_http_request_t *next_free;   /* in the server's free list */
    sf__sreq_state state;
    int version;       /* 1 or 2 */
    int32_t stream_id; /* HTTP/2 */

    /* Strings: method\0path\0name\0value\0... */
    sf_buf_t meta;
    uint32_t method_off, path_off;
    bool has_method, has_path;
    sf__shdr_t *hdrs;
    uint32_t nhdrs, hdrs_cap;
    size_t header_bytes; /* counted against max_header_bytes */
    sf_buf_t body;

    /* Flags. */
    bool keep_alive;  /* HTTP/1.1: the connection may carry more requests */
    bool close_after; /* HTTP/1.1: close once this response is written */
    bool head;        /* HEAD: no response body */
    bool http10;      /* HTTP/1.0 request */
    bool discard;     /* HTTP/2: already answered with an error; drop DATA */
    bool resp_done;   /* HTTP/2: our END_STREAM went out */
    bool reset_sent;  /* HTTP/2: RST_STREAM(NO_ERROR) submitted */
    size_t discarded; /* HTTP/2: upload bytes dropped after an early answer */
    int err_status;   /* a limit was hit: answer this status */
    const char *err_text;

    /* The response: HTTP/1.1 wire bytes, or for HTTP/2 the header strings
     * followed by the body (from resp_body_off), sent by the data provider. */
    sf_buf_t resp;
    size_t resp_body_off, resp_sent;
    nghttp2_nv *nva;
    size_t nva_cap;
};

struct sf_http_server_s {
    uv_loop_t *loop;
    const sf_mem *mem;
    nghttp2_mem h2mem;
    sf_http_request_cb cb;
    void *user_data;

    size_t max_header_bytes;
    size_t max_body_bytes;
    uint64_t idle_timeout_ms;
    uint64_t read_timeout_ms;
    uint32_t h2_max_concurrent_streams;

    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } listener;
    bool is_unix;
    char *unix_path; /* unlinked on close */
    uint16_t port;
    sf_tls_ctx_t *tls;

    nghttp2_session_callbacks *h2cbs;
    http_parser_settings h1settings;

    sf__sconn_t *conns; /* doubly linked through hc->prev/next */
    size_t nconns;
    sf_http_request_t *free_reqs;
    size_t nfree_reqs;

    bool closing;
    int pending_closes; /* listener + connections still closing */
    sf_http_server_close_cb close_cb;
    void *close_ud;
};

typedef enum { SF__SPROTO_SNIFF = 0, SF__SPROTO_H1 = 1, SF__SPROTO_H2 = 2 } sf__sproto;

struct sf__sconn_s {
    sf_http_server_t *server;
    sf_conn_t *conn;
    sf__sconn_t *prev, *next;
    sf__sproto proto;
    uint8_t sniff[24];
    size_t sniff_len;
    /* Requests of this connection, oldest first (HTTP/1.1: response order). */
    sf_http_request_t *req_head, *req_tail;
    size_t nreqs;

    /* HTTP/1.1. */
    http_parser parser;
    sf_http_request_t *cur; /* the request being parsed */
    int h1_hstate;          /* 0: URL, 1: in a header name, 2: in a header value */
    int h1_err_status;      /* set by a parser callback that hit a limit */
    const char *h1_err_text;
    bool h1_dead;   /* no more parsing: closing after the queue */
    bool h1_paused; /* reading paused: too many requests in flight */

    /* HTTP/2. */
    nghttp2_session *session;
    bool h2_in_recv;       /* inside nghttp2_session_mem_recv */
    uint32_t h2_receiving; /* streams still receiving their request */
    bool h2_paused;        /* reading paused: output backlog */
};

/* server.c */
sf_http_request_t *sf__sreq_get(sf__sconn_t *hc);
void sf__sreq_put(sf_http_request_t *req);
void sf__sreq_link(sf__sconn_t *hc, sf_http_request_t *req);
void sf__sreq_unlink(sf_http_request_t *req);
/** Appends |len| bytes and a NUL to req->meta; returns the offset or -1. */
int64_t sf__sreq_meta_add(sf_http_request_t *req, const void *s, size_t len);
/** Makes room for one more entry in req->hdrs; returns 0 or -1 (no memory). */
int sf__sreq_hdr_reserve(sf_http_request_t *req);
/** Hands a complete request to the application. */
void sf__sreq_dispatch(sf_http_request_t *req);
/** Header names the transport sets itself; user copies are skipped. */
bool sf__srv_hop_header(const char *name, size_t len);

#include "h1_server.h"
#include "h2_server.h"

#endif /* SF_HTTP_SERVER_H */
