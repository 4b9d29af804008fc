/* statefun-c: Apache License 2.0.
 *
 * Internals of the HTTP client (sf_http_client_t of sf_http.h), shared by
 * client.c (origins, connections, timeouts, protocol selection), h1_client.c
 * (the HTTP/1.1 exchange over one pooled connection, http-parser) and
 * h2_client.c (the HTTP/2 session over one multiplexed connection, nghttp2).
 *
 * Objects:
 * - sf__hreq_t: one request from sf_http_client_request to its callback. It
 *   sits in exactly one of: its origin's queue (waiting for a connection), a
 *   connection's active list (sent or being sent), or the client's done list
 *   (result known, callback not yet called). While pending it is also in the
 *   client's deadline list, ordered by creation time, which with one call
 *   timeout per client is also deadline order. Request objects and their
 *   buffers are recycled through a free list, so a steady stream of requests
 *   does not call malloc.
 * - sf__hconn_t: one connection (conn.h does the socket and TLS) speaking
 *   HTTP/1.1 or HTTP/2, or still probing which (auto mode on plaintext).
 * - sf__origin_t: everything the client knows about one "scheme://host:port"
 *   (or unix socket): the protocol it settled on, the queue, the connections.
 *
 * Threading: loop thread only, like the client itself. The protocol cores
 * never call user callbacks: they move finished requests to the done list,
 * and client.c dispatches it after the core returned (never from inside an
 * nghttp2 or http-parser callback, never from inside sf_http_client_request).
 */
#ifndef SF_HTTP_CLIENT_H
#define SF_HTTP_CLIENT_H

#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "sf_http.h"
#include "tls.h"

/* ------------------------------------------------------------------------ */
/* Intrusive doubly linked list (a circular list with a sentinel head).      */

typedef struct sf__hlist_s {
    struct sf__hlist_s *prev, *next;
} sf__hlist_t;

static inline void sf__hlist_init(sf__hlist_t *l) { l->prev = l->next = l; }
static inline bool sf__hlist_empty(const sf__hlist_t *l) { return l->next == l; }
/** True when |n| is linked into some list (nodes are self-linked when not). */
static inline bool sf__hlist_linked(const sf__hlist_t *n) { return n->next != n; }

static inline void sf__hlist_push(sf__hlist_t *head, sf__hlist_t *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void sf__hlist_unshift(sf__hlist_t *head, sf__hlist_t *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static inline void sf__hlist_remove(sf__hlist_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline sf__hlist_t *sf__hlist_first(const sf__hlist_t *head)
{
    return head->next == head ? NULL : head->next;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

typedef struct sf__origin_s sf__origin_t;
typedef struct sf__hconn_s sf__hconn_t;

/** A header stored as offsets into a byte buffer (stable across growth). */
typedef struct sf__hoff_s {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} sf__hoff_t;

typedef enum {
    SF__REQ_FREE = 0,
    SF__REQ_QUEUED,  /* in origin->queue */
    SF__REQ_ACTIVE,  /* in conn->active */
    SF__REQ_DONE,    /* in client->done */
} sf__req_state;

typedef struct sf__hreq_s {
    sf__hlist_t link;      /* origin queue, connection active list, done or free list */
    sf__hlist_t dlink;     /* client deadline list while pending */
    sf_http_client_t *client;
    sf__origin_t *origin;
    sf__hconn_t *conn;     /* while active */
    uint64_t deadline;     /* loop time (ms) at which the call times out */
    sf__req_state state;
    int err;               /* result for the done list */
    int32_t stream_id;     /* HTTP/2: the stream, while active */
    uint8_t retries;       /* times re-sent after a "not processed" failure */
    bool head;             /* a HEAD request: the response has no body */
    bool got_response;     /* some response byte arrived: never re-send */
    bool complete;         /* HTTP/2: the response ended (END_STREAM) */
    bool h2_early;         /* HTTP/2: sent before the peer's first SETTINGS */
    sf_http_response_cb cb;
    void *user_data;

    /* The request: borrowed URL strings, then method, header and body bytes. */
    const char *path;
    const char *authority;
    sf_buf_t data;         /* method, header names and values, then the body */
    size_t method_len;
    sf_buf_t hdrs;         /* sf__hoff_t[] into |data| */
    size_t nhdrs;
    size_t body_off, body_len;
    size_t body_sent;      /* HTTP/2 data provider progress */

    /* The response. */
    int status;
    int version;
    sf_buf_t rhdata;       /* header name and value bytes */
    sf_buf_t rhdrs;        /* sf__hoff_t[] into |rhdata| */
    size_t nrhdrs;
    sf_buf_t rbody;
} sf__hreq_t;

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

typedef enum {
    SF__CONN_CONNECTING = 0, /* TCP/UNIX connect and TLS handshake */
    SF__CONN_PROBING,        /* auto on plaintext: sent the h2 preface, awaiting SETTINGS */
    SF__CONN_READY,          /* takes requests */
    SF__CONN_DRAINING,       /* no new requests (GOAWAY, Connection: close, error) */
    SF__CONN_CLOSED,         /* sf_conn_close/abort called, waiting for on_close */
} sf__conn_state;

struct sf__hconn_s {
    sf__hlist_t link;        /* in origin->conns */
    sf__hlist_t dirty_link;  /* in client->dirty while HTTP/2 output is pending */
    sf_http_client_t *client;
    sf__origin_t *origin;
    sf_conn_t *conn;         /* NULL after on_close */
    sf__conn_state state;
    int version;             /* 0 while probing (or before ALPN), then 1 or 2 */
    bool is_probe;           /* auto on plaintext: this connection asks "h2?" */
    bool opened;             /* on_open(0) arrived */
    int open_err;            /* why opening failed, or 0 */
    uint64_t created_ms;     /* loop time of the connect (connect timeout) */
    uint64_t timer_due;      /* loop time the connection timer is armed for, 0: not armed */
    sf__hlist_t active;      /* requests sent (or being sent) on this connection */
    uint32_t nactive;
    uint32_t nserved;        /* responses completed (an h1 connection reused if > 0) */
    uint64_t last_read_ms;   /* loop time of the last input (read timeout) */
    uint64_t write_since_ms; /* loop time output started waiting (write timeout), 0: none */
    uint64_t idle_since_ms;  /* loop time the connection became idle (pool TTL) */

    /* Auto probe: the first bytes of the answer to the HTTP/2 preface. */
    uint8_t probe[9];
    size_t probe_len;

    /* HTTP/2. */
    nghttp2_session *ng;
    bool h2_settings_seen;   /* the peer's first SETTINGS arrived */
    bool h2_goaway;          /* GOAWAY received or sent: no new streams */

    /* HTTP/1.1. */
    http_parser parser;
    bool h1_in_value;        /* parser: the last header callback was a value */
    bool h1_done;            /* parser: message complete */
    bool h1_close;           /* the response said the connection closes */
};

/* ------------------------------------------------------------------------ */
/* Origins and the client                                                    */

struct sf__origin_s {
    sf__origin_t *hnext;     /* hash chain */
    sf_http_client_t *client;
    char *key;               /* url->origin_key */
    uint32_t hash;
    char *host;              /* TCP host, or NULL */
    uint16_t port;
    char *unix_path;         /* socket path, or NULL */
    bool tls;
    int version;             /* 0 unknown (auto), 1 or 2 */
    sf__hlist_t queue;       /* requests waiting for a connection */
    size_t nqueued;
    sf__hlist_t conns;       /* every connection, whatever its state */
    uint32_t nconns;
    sf__hlist_t pump_link;   /* in client->pump while its queue must be looked at */
};

struct sf_http_client_s {
    uv_loop_t *loop;
    const sf_mem *mem;
    sf_http_client_config_t cfg; /* copied, defaults applied; strings owned */
    uint64_t connect_to, read_to, write_to, call_to, pool_ttl;
    uint32_t pool_size;
    size_t max_response;

    sf__origin_t **buckets;  /* origins by key */
    size_t nbuckets, norigins;

    sf__hlist_t deadlines;   /* pending requests in creation (= deadline) order */
    sf__hlist_t done;        /* finished requests, callback not yet called */
    sf__hlist_t dirty;       /* HTTP/2 connections with output to generate */
    sf__hlist_t pump;        /* origins whose queue may move (a slot was freed) */
    sf__hlist_t free_reqs;   /* recycled request objects */
    size_t nfree;
    size_t npending;         /* requests given to the user and not yet called back */

    uv_timer_t call_timer;   /* fires at the first deadline */
    uv_idle_t defer;         /* dispatches results found inside sf_http_client_request */
    bool call_timer_armed;
    uint64_t call_timer_at;

    nghttp2_session_callbacks *h2_cbs;
    nghttp2_option *h2_opt;
    nghttp2_mem h2_mem;
    sf_tls_ctx_t *tls;       /* built on the first TLS origin */
    int tls_err;             /* the error building it failed with, or 0 */

    int in_request;          /* inside sf_http_client_request: defer callbacks */
    bool dispatching;        /* inside the done-list dispatch */
    bool closing;
    int handles;             /* open uv handles and connections */
    sf_http_client_close_cb close_cb;
    void *close_data;

    nghttp2_nv *nv;          /* scratch for building HTTP/2 header blocks */
    size_t nv_cap;
    sf_buf_t scratch;        /* scratch bytes (lower-cased header names) */
};

/* ------------------------------------------------------------------------ */
/* Services of client.c used by the protocol cores                           */

/**
 * The result of |r| is known: takes it off its connection and the deadline
 * list and moves it to the done list with |err| (0: the response is in |r|).
 */
void sf__hreq_finish(sf__hreq_t *r, int err);

/**
 * |r| was not processed by the peer (refused stream, GOAWAY beyond the last
 * stream id, a reused keep-alive connection closed before any answer): puts
 * it back at the head of its origin's queue to be sent again, or finishes it
 * with |err| when it was retried too often already. With |counts| false the
 * retry is not counted (a stream refused because it was sent before the
 * peer's SETTINGS told its concurrency limit).
 */
void sf__hreq_retry(sf__hreq_t *r, int err, bool counts);

/** Appends one response header to |r|. Returns 0 or SF_ENOMEM / SF_ETOOBIG. */
int sf__hreq_add_header(sf__hreq_t *r, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen);
/** Appends response body bytes to |r|. Returns 0, SF_ENOMEM or SF_ETOOBIG. */
int sf__hreq_add_body(sf__hreq_t *r, const uint8_t *data, size_t len);
/** Drops the response gathered so far (an interim 1xx response). */
void sf__hreq_reset_response(sf__hreq_t *r);

/** The method, as a pointer into r->data (not NUL-terminated). */
static inline const char *sf__hreq_method(const sf__hreq_t *r)
{
    return (const char *)r->data.base;
}
static inline const sf__hoff_t *sf__hreq_hdrs(const sf__hreq_t *r)
{
    return (const sf__hoff_t *)r->hdrs.base;
}

/** Marks an HTTP/2 connection as having output to generate this turn. */
void sf__hconn_mark_dirty(sf__hconn_t *c);

#endif /* SF_HTTP_CLIENT_H */
