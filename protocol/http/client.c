/* statefun-c: Apache License 2.0.
 *
 * The HTTP client of sf_http.h: origins, connections, protocol selection,
 * timeouts and the dispatch of results. The wire protocols live in
 * h1_client.c (HTTP/1.1, http-parser) and h2_client.c (HTTP/2, nghttp2); the
 * sockets and TLS in conn.c.
 *
 * Origins. Requests are grouped by url->origin_key. Each origin has a queue
 * of requests waiting for a connection and a list of connections. The
 * protocol of an origin is fixed by the config (HTTP1: 1; H2C, H2: 2) or, in
 * AUTO mode, found out by the first connection: over TLS ALPN decides; over
 * plaintext the connection sends the HTTP/2 preface and SETTINGS and waits
 * for the first 9 bytes of the answer. A SETTINGS frame header means HTTP/2;
 * anything else (an HTTP/1.1 error response, bytes that are no HTTP at all,
 * the connection closed) means "HTTP/1.1 only". The requests that were
 * waiting are then sent over HTTP/1.1 connections; none is lost, since a
 * probing connection never carries a request. The decision is kept for the
 * life of the client (sf_http_client_origin_version).
 *
 * HTTP/2: one connection per origin carries all requests as streams, up to
 * the peer's SETTINGS_MAX_CONCURRENT_STREAMS (and the config's cap); the rest
 * wait in the origin queue and move in as streams close. After a GOAWAY the
 * connection drains and a new one is opened for the queue.
 *
 * HTTP/1.1: a pool of up to pool_size keep-alive connections per origin, one
 * request at a time on each. An idle connection is reused (most recently
 * used first); when none is idle and the pool is not full a new one is
 * opened. A reused connection that the peer closed before answering gets
 * its request re-sent on a fresh connection.
 *
 * Timeouts. Each connection has one timer (conn.h) that serves, by state,
 * the connect timeout, the write timeout (output not handed to the kernel
 * for that long), the read timeout (no byte received for that long while
 * requests are outstanding) and the pool TTL (an idle connection is closed).
 * The timer is re-armed lazily: when it fires early it recomputes and
 * re-arms. Call timeouts use one client timer: the call timeout is the same
 * for every request, so the creation-ordered deadline list is also deadline
 * ordered, and the timer only ever needs the head.
 *
 * Results. The cores and timers move finished requests to the done list
 * (sf__hreq_finish). The list is dispatched at the end of every libuv
 * callback that may have produced results, outside nghttp2 and http-parser
 * callbacks; results found inside sf_http_client_request are dispatched from
 * an idle handle, so the callback never runs inside that call. Request
 * objects are recycled, so steady traffic does not allocate per request.
 *
 * Threading: loop thread only.
 */
#include "client.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "h1_client.h"
#include "h2_client.h"

/* Recycled request objects kept for reuse, and the largest buffer a recycled
 * request keeps (bigger ones are released so one huge body does not pin
 * memory for the life of the client). */
#define REQ_CACHE_MAX 1024
#define REQ_KEEP_BYTES (64 * 1024)
/* How often one request may be re-sent after "not processed" failures. */
#define REQ_MAX_RETRIES 2

static void client_after(sf_http_client_t *client);
static void on_defer(uv_idle_t *idle);
static void origin_pump(sf__origin_t *o);
static void conn_arm(sf__hconn_t *c);
static void conn_teardown(sf__hconn_t *c, int err);
static void client_maybe_free(sf_http_client_t *client);

static uint64_t now_ms(const sf_http_client_t *client) { return uv_now(client->loop); }

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static sf__hreq_t *req_get(sf_http_client_t *client)
{
    sf__hlist_t *n = sf__hlist_first(&client->free_reqs);
    sf__hreq_t *r;

    if (n) {
        sf__hlist_remove(n);
        client->nfree--;
        return sf_container_of(n, sf__hreq_t, link);
    }
    r = sf_mem_calloc(client->mem, 1, sizeof *r);
    if (!r)
        return NULL;
    sf__hlist_init(&r->link);
    sf__hlist_init(&r->dlink);
    r->client = client;
    sf_buf_init(&r->data, client->mem);
    sf_buf_init(&r->hdrs, client->mem);
    sf_buf_init(&r->rhdata, client->mem);
    sf_buf_init(&r->rhdrs, client->mem);
    sf_buf_init(&r->rbody, client->mem);
    return r;
}

static void req_free(sf_http_client_t *client, sf__hreq_t *r)
{
    sf_buf_dispose(&r->data);
    sf_buf_dispose(&r->hdrs);
    sf_buf_dispose(&r->rhdata);
    sf_buf_dispose(&r->rhdrs);
    sf_buf_dispose(&r->rbody);
    sf_mem_free(client->mem, r);
}

static void buf_recycle(sf_buf_t *b)
{
    if (b->cap > REQ_KEEP_BYTES)
        sf_buf_dispose(b);
    sf_buf_reset(b);
}

static void req_put(sf_http_client_t *client, sf__hreq_t *r)
{
    if (client->nfree >= REQ_CACHE_MAX || client->closing) {
        req_free(client, r);
        return;
    }
    buf_recycle(&r->data);
    buf_recycle(&r->hdrs);
    buf_recycle(&r->rhdata);
    buf_recycle(&r->rhdrs);
    buf_recycle(&r->rbody);
    r->origin = NULL;
    r->conn = NULL;
    r->state = SF__REQ_FREE;
    r->cb = NULL;
    r->user_data = NULL;
    sf__hlist_push(&client->free_reqs, &r->link);
    client->nfree++;
}

void sf__hreq_reset_response(sf__hreq_t *r)
{
    r->status = 0;
    r->complete = false;
    sf_buf_reset(&r->rhdata);
    sf_buf_reset(&r->rhdrs);
    r->nrhdrs = 0;
    sf_buf_reset(&r->rbody);
}

int sf__hreq_add_header(sf__hreq_t *r, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen)
{
    sf__hoff_t h;
    int rv;

    if (r->rhdata.len + r->rbody.len + namelen + valuelen > r->client->max_response)
        return SF_ETOOBIG;
    h.name_off = (uint32_t)r->rhdata.len;
    h.name_len = (uint32_t)namelen;
    h.value_off = (uint32_t)(r->rhdata.len + namelen);
    h.value_len = (uint32_t)valuelen;
    if ((rv = sf_buf_append(&r->rhdata, name, namelen)) != 0 ||
        (rv = sf_buf_append(&r->rhdata, value, valuelen)) != 0 ||
        (rv = sf_buf_append(&r->rhdrs, &h, sizeof h)) != 0)
        return rv;
    r->nrhdrs++;
    return 0;
}

int sf__hreq_add_body(sf__hreq_t *r, const uint8_t *data, size_t len)
{
    if (r->rhdata.len + r->rbody.len + len > r->client->max_response)
        return SF_ETOOBIG;
    return sf_buf_append(&r->rbody, data, len);
}

static void origin_mark_pump(sf__origin_t *o)
{
    if (!sf__hlist_linked(&o->pump_link))
        sf__hlist_push(&o->client->pump, &o->pump_link);
}

/* Takes |r| off the origin queue or its connection. */
static void req_detach(sf__hreq_t *r)
{
    sf__hconn_t *c = r->conn;

    if (r->state == SF__REQ_QUEUED) {
        sf__hlist_remove(&r->link);
        r->origin->nqueued--;
    } else if (r->state == SF__REQ_ACTIVE) {
        sf__hlist_remove(&r->link);
        c->nactive--;
        if (c->ng && r->stream_id > 0)
            nghttp2_session_set_stream_user_data(c->ng, r->stream_id, NULL);
        r->stream_id = 0;
        r->conn = NULL;
        if (c->nactive == 0) {
            c->idle_since_ms = now_ms(c->client);
            conn_arm(c);
        }
        /* A slot is free: queued requests may move in. */
        origin_mark_pump(r->origin);
    }
}

void sf__hreq_finish(sf__hreq_t *r, int err)
{
    sf_http_client_t *client = r->client;

    SF_ASSERT(r->state == SF__REQ_QUEUED || r->state == SF__REQ_ACTIVE);
    req_detach(r);
    sf__hlist_remove(&r->dlink);
    if (sf__hlist_empty(&client->deadlines) && client->call_timer_armed) {
        uv_timer_stop(&client->call_timer);
        client->call_timer_armed = false;
    }
    r->err = err;
    r->state = SF__REQ_DONE;
    sf__hlist_push(&client->done, &r->link);
}

void sf__hreq_retry(sf__hreq_t *r, int err, bool counts)
{
    sf_http_client_t *client = r->client;

    if ((counts && r->retries >= REQ_MAX_RETRIES) || client->closing) {
        sf__hreq_finish(r, err);
        return;
    }
    req_detach(r);
    if (counts)
        r->retries++;
    r->got_response = false;
    r->err = 0;
    sf__hreq_reset_response(r);
    r->state = SF__REQ_QUEUED;
    sf__hlist_unshift(&r->origin->queue, &r->link);
    r->origin->nqueued++;
    origin_mark_pump(r->origin);
}

/* Calls the callbacks of every finished request, then recycles them. */
static void client_dispatch(sf_http_client_t *client)
{
    static const uint8_t empty[1];
    sf__hlist_t *n;

    if (client->dispatching)
        return;
    client->dispatching = true;
    while ((n = sf__hlist_first(&client->done)) != NULL) {
        sf__hreq_t *r = sf_container_of(n, sf__hreq_t, link);
        sf__hlist_remove(n);
        client->npending--;
        if (r->err == 0) {
            sf_http_response_t res;
            const sf__hoff_t *h = (const sf__hoff_t *)r->rhdrs.base;
            sf_http_header_t *out;
            size_t i;
            /* The request's header table is no longer needed: it becomes
             * the response's. */
            sf_buf_reset(&r->hdrs);
            if (sf_buf_reserve(&r->hdrs, r->nrhdrs * sizeof *out + 1) != 0) {
                r->cb(SF_ENOMEM, NULL, r->user_data);
                req_put(client, r);
                continue;
            }
            out = (sf_http_header_t *)r->hdrs.base;
            for (i = 0; i < r->nrhdrs; i++) {
                out[i].name = (const char *)r->rhdata.base + h[i].name_off;
                out[i].namelen = h[i].name_len;
                out[i].value = (const char *)r->rhdata.base + h[i].value_off;
                out[i].valuelen = h[i].value_len;
            }
            res.status = r->status;
            res.version = r->version;
            res.headers = out;
            res.nheaders = r->nrhdrs;
            res.body = r->rbody.len ? r->rbody.base : empty;
            res.body_len = r->rbody.len;
            r->cb(0, &res, r->user_data);
        } else {
            r->cb(r->err, NULL, r->user_data);
        }
        req_put(client, r);
    }
    client->dispatching = false;
}

/* ------------------------------------------------------------------------ */
/* The call timer                                                            */

static void on_call_timer(uv_timer_t *t);

static void call_timer_start(sf_http_client_t *client, uint64_t due)
{
    uint64_t now = now_ms(client);
    uv_timer_start(&client->call_timer, on_call_timer, due > now ? due - now : 0, 0);
    client->call_timer_armed = true;
    client->call_timer_at = due;
}

/* Times out |r|: it leaves its queue or connection with SF_ETIMEDOUT. */
static void req_expire(sf__hreq_t *r)
{
    sf__hconn_t *c = r->conn;

    if (r->state == SF__REQ_ACTIVE && c->version == 2) {
        /* Only this stream goes; the connection carries on. */
        sf__h2_cancel(c, r);
        sf__hreq_finish(r, SF_ETIMEDOUT);
    } else if (r->state == SF__REQ_ACTIVE) {
        /* An HTTP/1.1 exchange cannot be abandoned halfway: the connection
         * goes with it. */
        sf__hreq_finish(r, SF_ETIMEDOUT);
        conn_teardown(c, SF_ETIMEDOUT);
    } else {
        sf__hreq_finish(r, SF_ETIMEDOUT);
    }
}

static void on_call_timer(uv_timer_t *t)
{
    sf_http_client_t *client = t->data;
    uint64_t now = now_ms(client);
    sf__hlist_t *n;

    client->call_timer_armed = false;
    while ((n = sf__hlist_first(&client->deadlines)) != NULL) {
        sf__hreq_t *r = sf_container_of(n, sf__hreq_t, dlink);
        if (r->deadline > now)
            break;
        req_expire(r);
    }
    if ((n = sf__hlist_first(&client->deadlines)) != NULL && !client->call_timer_armed)
        call_timer_start(client, sf_container_of(n, sf__hreq_t, dlink)->deadline);
    client_after(client);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

static void on_open(sf_conn_t *conn, int status);
static void on_read(sf_conn_t *conn, const uint8_t *data, size_t len);
static void on_timeout(sf_conn_t *conn);
static void on_drain(sf_conn_t *conn);
static void on_close(sf_conn_t *conn, int reason);

static const sf_conn_callbacks_t conn_cbs = {
    .on_open = on_open,
    .on_read = on_read,
    .on_timeout = on_timeout,
    .on_drain = on_drain,
    .on_close = on_close,
};

void sf__hconn_mark_dirty(sf__hconn_t *c)
{
    if (!sf__hlist_linked(&c->dirty_link) && c->state != SF__CONN_CLOSED)
        sf__hlist_push(&c->client->dirty, &c->dirty_link);
}

static bool conn_busy(const sf__hconn_t *c)
{
    return c->nactive > 0 || c->state == SF__CONN_PROBING;
}

/*
 * Arms the connection timer for the earliest deadline of its state. Lazy: a
 * timer already armed for an earlier time stays; it recomputes when it fires.
 */
static void conn_arm(sf__hconn_t *c)
{
    sf_http_client_t *client = c->client;
    uint64_t now = now_ms(client), due;

    if (!c->conn || c->state == SF__CONN_CLOSED)
        return;
    if (c->state == SF__CONN_CONNECTING) {
        due = c->created_ms + client->connect_to;
    } else if (conn_busy(c)) {
        due = c->last_read_ms + client->read_to;
        if (c->write_since_ms && c->write_since_ms + client->write_to < due)
            due = c->write_since_ms + client->write_to;
    } else {
        due = c->idle_since_ms + client->pool_ttl;
    }
    if (c->timer_due != 0 && c->timer_due > now && c->timer_due <= due)
        return;
    c->timer_due = due;
    sf_conn_set_timeout(c->conn, due > now ? due - now : 1);
}

/* Output is about to be queued: when nothing was waiting, a write stall, if
 * any, starts now. */
static void conn_note_write(sf__hconn_t *c)
{
    if (c->conn && sf_conn_pending_out(c->conn) == 0) {
        c->write_since_ms = now_ms(c->client);
        conn_arm(c);
    }
}

/* Fails or re-queues every request on |c|. */
static void conn_fail_active(sf__hconn_t *c, int err)
{
    sf__hlist_t *n;

    while ((n = sf__hlist_first(&c->active)) != NULL) {
        sf__hreq_t *r = sf_container_of(n, sf__hreq_t, link);
        /* A reused keep-alive connection closed under a request it never
         * answered: the peer closed it while idle, the request is safe to
         * send again. */
        if (c->version == 1 && c->nserved > 0 && !r->got_response && err == SF_ECONNRESET)
            sf__hreq_retry(r, err, true);
        else
            sf__hreq_finish(r, err);
    }
}

/* Closes |c| at once, failing what it carries with |err|. */
static void conn_teardown(sf__hconn_t *c, int err)
{
    if (c->state == SF__CONN_CLOSED)
        return;
    c->state = SF__CONN_CLOSED;
    conn_fail_active(c, err);
    if (sf__hlist_linked(&c->dirty_link))
        sf__hlist_remove(&c->dirty_link);
    if (c->conn)
        sf_conn_abort(c->conn, err);
    origin_mark_pump(c->origin);
}

/* Closes an idle |c| politely (GOAWAY for HTTP/2, then a graceful close). */
static void conn_retire(sf__hconn_t *c)
{
    if (c->state == SF__CONN_CLOSED)
        return;
    SF_ASSERT(c->nactive == 0);
    if (c->version == 2 && c->ng) {
        sf__h2_goaway(c);
        sf__h2_flush(c);
    }
    c->state = SF__CONN_CLOSED;
    if (sf__hlist_linked(&c->dirty_link))
        sf__hlist_remove(&c->dirty_link);
    if (c->conn)
        sf_conn_close(c->conn, 0);
    origin_mark_pump(c->origin);
}

/* Fails every queued request of |o| with |err|. */
static void origin_fail_queue(sf__origin_t *o, int err)
{
    sf__hlist_t *n;
    while ((n = sf__hlist_first(&o->queue)) != NULL)
        sf__hreq_finish(sf_container_of(n, sf__hreq_t, link), err);
}

static bool origin_has_live_conn(const sf__origin_t *o);

/*
 * |c| could not be opened (refused, timed out, TLS handshake failed): it
 * goes, and when no other connection of the origin is alive the queue fails
 * with the same reason, rather than trying again and again until the call
 * timeout.
 */
static void conn_open_failed(sf__hconn_t *c, int err)
{
    sf__origin_t *o = c->origin;

    c->open_err = err;
    conn_teardown(c, err);
    if (!origin_has_live_conn(o)) {
        origin_fail_queue(o, err);
    } else if (c->version == 1 && o->nqueued > 0) {
        /* HTTP/1.1 opens one connection per waiting request: the one this
         * connection was opened for fails; the others wait for theirs. */
        sf__hreq_finish(sf_container_of(sf__hlist_first(&o->queue), sf__hreq_t, link), err);
    }
}

static int client_tls(sf_http_client_t *client)
{
    const sf_http_client_config_t *cfg = &client->cfg;

    if (client->tls)
        return 0;
    if (client->tls_err)
        return client->tls_err;
    client->tls_err = sf_tls_client_ctx_new(cfg->tls_ca_file, cfg->tls_cert_file,
                                            cfg->tls_key_file, cfg->tls_key_password,
                                            cfg->tls_insecure, &client->tls);
    if (client->tls_err == 0 && !client->tls)
        client->tls_err = SF_ETLS;
    return client->tls_err;
}

static void conn_free(sf__hconn_t *c)
{
    sf__h2_session_dispose(c);
    sf_mem_free(c->client->mem, c);
}

/* Opens a new connection for |o|. Returns 0 or SF_E* (nothing opened). */
static int conn_open(sf__origin_t *o)
{
    sf_http_client_t *client = o->client;
    sf_tls_ctx_t *tls = NULL;
    const char *alpn = NULL;
    sf__hconn_t *c;
    int rv;

    if (o->tls) {
        if ((rv = client_tls(client)) != 0)
            return rv;
        tls = client->tls;
        switch (client->cfg.protocol) {
        case SF_HTTP_PROTO_HTTP1: alpn = "http/1.1"; break;
        case SF_HTTP_PROTO_H2:
        case SF_HTTP_PROTO_H2C: alpn = "h2"; break;
        default: alpn = "h2,http/1.1"; break;
        }
    }
    if (!(c = sf_mem_calloc(client->mem, 1, sizeof *c)))
        return SF_ENOMEM;
    sf__hlist_init(&c->link);
    sf__hlist_init(&c->dirty_link);
    sf__hlist_init(&c->active);
    c->client = client;
    c->origin = o;
    c->state = SF__CONN_CONNECTING;
    c->created_ms = now_ms(client);
    /* Over TLS in auto mode, ALPN says which protocol this connection
     * speaks; otherwise the origin knows, or this is the probe. */
    c->version = (o->tls && client->cfg.protocol == SF_HTTP_PROTO_AUTO) ? 0 : o->version;
    c->is_probe = c->version == 0 && !o->tls;
    if (c->version == 2 || c->is_probe) {
        /* The preface and SETTINGS are queued at once (conn sends them
         * after the connect), so requests can follow without a turn. */
        if ((rv = sf__h2_session_init(c)) != 0) {
            conn_free(c);
            return rv;
        }
    } else if (c->version == 1) {
        sf__h1_init(c);
    }
    if (o->unix_path)
        rv = sf_conn_connect_unix(client->loop, o->unix_path, tls, NULL, alpn, &conn_cbs, c,
                                  client->mem, &c->conn);
    else
        rv = sf_conn_connect_tcp(client->loop, o->host, o->port, tls, o->host, alpn, &conn_cbs,
                                 c, client->mem, &c->conn);
    if (rv != 0) {
        conn_free(c);
        return rv;
    }
    client->handles++;
    sf__hlist_push(&o->conns, &c->link);
    o->nconns++;
    conn_arm(c);
    if (c->ng)
        sf__hconn_mark_dirty(c);
    return 0;
}

/* Puts the head of |o|'s queue on |c| and sends it. */
static void conn_assign(sf__hconn_t *c)
{
    sf__origin_t *o = c->origin;
    sf__hreq_t *r = sf_container_of(sf__hlist_first(&o->queue), sf__hreq_t, link);
    int rv;

    sf__hlist_remove(&r->link);
    o->nqueued--;
    r->state = SF__REQ_ACTIVE;
    r->conn = c;
    sf__hlist_push(&c->active, &r->link);
    if (++c->nactive == 1)
        c->last_read_ms = now_ms(c->client);
    conn_note_write(c);
    rv = c->version == 2 ? sf__h2_submit(c, r) : sf__h1_send(c, r);
    if (rv == SF_ECONNRESET && c->version == 2) {
        /* This session ran out of stream ids: drain it, use another. */
        c->h2_goaway = true;
        c->state = SF__CONN_DRAINING;
        sf__hreq_retry(r, rv, true);
    } else if (rv != 0) {
        sf__hreq_finish(r, rv);
        if (c->version == 1)
            conn_teardown(c, rv);
    }
    conn_arm(c);
}

static bool conn_live(const sf__hconn_t *c)
{
    return c->state == SF__CONN_CONNECTING || c->state == SF__CONN_PROBING ||
           c->state == SF__CONN_READY;
}

static bool origin_has_live_conn(const sf__origin_t *o)
{
    const sf__hlist_t *n;
    for (n = o->conns.next; n != &o->conns; n = n->next)
        if (conn_live(sf_container_of(n, sf__hconn_t, link)))
            return true;
    return false;
}

/* Moves queued requests of |o| onto connections, opening them as needed. */
static void origin_pump(sf__origin_t *o)
{
    sf_http_client_t *client = o->client;
    sf__hlist_t *n;
    int rv;

    while (o->nqueued > 0 && !client->closing) {
        sf__hconn_t *use = NULL;
        uint32_t live = 0, connecting = 0;

        for (n = o->conns.next; n != &o->conns; n = n->next) {
            sf__hconn_t *c = sf_container_of(n, sf__hconn_t, link);
            if (!conn_live(c))
                continue;
            live++;
            if (c->state == SF__CONN_CONNECTING)
                connecting++;
            if (use || c->version != o->version || o->version == 0)
                continue;
            if (o->version == 2 && (c->state == SF__CONN_READY || c->ng) &&
                c->state != SF__CONN_PROBING && sf__h2_can_submit(c))
                use = c;
            else if (o->version == 1 && c->state == SF__CONN_READY && c->nactive == 0)
                use = c;
        }
        if (use) {
            conn_assign(use);
            continue;
        }
        if (o->version == 1) {
            if (connecting >= o->nqueued || live >= client->pool_size)
                break;
        } else if (live > 0) {
            /* HTTP/2 (full, or still connecting) or the probe in flight. */
            break;
        }
        if ((rv = conn_open(o)) != 0) {
            if (live == 0)
                origin_fail_queue(o, rv);
            break;
        }
        /* A new HTTP/1.1 connection takes a request once open; an HTTP/2
         * one takes them at once (they wait in nghttp2 for the connect). */
        if (o->version != 2)
            continue;
    }
}

/* Flushes HTTP/2 output, pumps queues and dispatches results until quiet. */
static void client_after(sf_http_client_t *client)
{
    sf__hlist_t *n;

    for (;;) {
        while ((n = sf__hlist_first(&client->pump)) != NULL) {
            sf__hlist_remove(n);
            origin_pump(sf_container_of(n, sf__origin_t, pump_link));
        }
        while ((n = sf__hlist_first(&client->dirty)) != NULL) {
            sf__hconn_t *c = sf_container_of(n, sf__hconn_t, dirty_link);
            int rv;
            sf__hlist_remove(n);
            if (c->nactive > 0)
                conn_note_write(c);
            if ((rv = sf__h2_flush(c)) != 0)
                conn_teardown(c, rv);
        }
        if (!sf__hlist_empty(&client->pump))
            continue;
        if (client->in_request > 0 || client->dispatching || sf__hlist_empty(&client->done))
            break;
        client_dispatch(client);
    }
    if (!sf__hlist_empty(&client->done) && !client->dispatching && !client->closing)
        uv_idle_start(&client->defer, on_defer);
}

/* After HTTP/2 input or output: drain or close what is finished. */
static void conn_check_h2(sf__hconn_t *c)
{
    if (c->version != 2 || c->state == SF__CONN_CLOSED || c->state == SF__CONN_CONNECTING)
        return;
    if (c->h2_goaway && c->state == SF__CONN_READY) {
        c->state = SF__CONN_DRAINING;
        origin_mark_pump(c->origin);
    }
    if (c->state == SF__CONN_DRAINING && c->nactive == 0)
        conn_retire(c);
    else if (sf__h2_finished(c))
        conn_teardown(c, SF_ECONNRESET);
}

static void on_open(sf_conn_t *conn, int status)
{
    sf__hconn_t *c = conn->data;
    sf_http_client_t *client = c->client;
    sf__origin_t *o = c->origin;
    int rv = 0;

    if (c->state == SF__CONN_CLOSED)
        return;
    if (status < 0) {
        conn_open_failed(c, status);
        client_after(client);
        return;
    }
    c->opened = true;
    c->last_read_ms = c->idle_since_ms = now_ms(client);
    if (o->tls) {
        const char *alpn = sf_conn_alpn(conn);
        bool h2 = alpn && strcmp(alpn, "h2") == 0;
        if (c->version == 2 && !h2) {
            /* HTTP/2 was required; the peer does not do it. */
            conn_teardown(c, SF_EUNSUPPORTED);
            origin_fail_queue(o, SF_EUNSUPPORTED);
            goto out;
        }
        if (c->version == 0) {
            c->version = h2 ? 2 : 1;
            o->version = c->version;
            if (c->version == 2)
                rv = sf__h2_session_init(c);
            else
                sf__h1_init(c);
            if (rv != 0) {
                conn_teardown(c, rv);
                goto out;
            }
        }
    }
    c->state = c->is_probe ? SF__CONN_PROBING : SF__CONN_READY;
    c->timer_due = 0;
    conn_arm(c);
    origin_mark_pump(o);
out:
    client_after(client);
}

/*
 * Auto mode on plaintext: decides from the first 9 bytes of the answer to
 * the HTTP/2 preface whether the peer speaks HTTP/2. A SETTINGS frame header
 * (length below 64 KiB, type 4, no ACK flag, stream 0) means yes.
 */
static int probe_read(sf__hconn_t *c, const uint8_t *data, size_t len)
{
    sf__origin_t *o = c->origin;
    size_t i = 0;
    int rv;

    while (c->probe_len < sizeof c->probe && i < len) {
        uint8_t b = data[i];
        size_t k = c->probe_len;
        bool ok = k == 0 ? b == 0
                : k == 3 ? b == NGHTTP2_SETTINGS
                : k == 4 ? (b & NGHTTP2_FLAG_ACK) == 0
                : k >= 5 ? b == 0
                : true;
        if (!ok) {
            /* Not HTTP/2 (an HTTP/1.1 answer such as a 400, or garbage):
             * this origin speaks HTTP/1.1. The probe carried no request. */
            o->version = 1;
            conn_teardown(c, SF_EUNSUPPORTED);
            return 0;
        }
        c->probe[c->probe_len++] = b;
        i++;
    }
    if (c->probe_len < sizeof c->probe)
        return 0;
    c->version = 2;
    o->version = 2;
    c->state = SF__CONN_READY;
    origin_mark_pump(o);
    if ((rv = sf__h2_recv(c, c->probe, sizeof c->probe)) != 0)
        return rv;
    return i < len ? sf__h2_recv(c, data + i, len - i) : 0;
}

static void on_read(sf_conn_t *conn, const uint8_t *data, size_t len)
{
    sf__hconn_t *c = conn->data;
    sf_http_client_t *client = c->client;
    int rv;

    if (c->state == SF__CONN_CLOSED)
        return;
    c->last_read_ms = now_ms(client);
    if (c->state == SF__CONN_PROBING) {
        rv = probe_read(c, data, len);
    } else if (c->version == 2) {
        rv = sf__h2_recv(c, data, len);
    } else if (c->version == 1) {
        rv = sf__h1_recv(c, data, len);
        if (rv == 0 && c->nactive == 0 && c->state != SF__CONN_CLOSED) {
            if (c->h1_close)
                conn_retire(c);
            else
                origin_mark_pump(c->origin);
        }
    } else {
        rv = SF_EPROTO;
    }
    if (rv != 0)
        conn_teardown(c, rv);
    else
        conn_check_h2(c);
    client_after(client);
}

static void on_timeout(sf_conn_t *conn)
{
    sf__hconn_t *c = conn->data;
    sf_http_client_t *client = c->client;
    uint64_t now = now_ms(client);

    c->timer_due = 0;
    if (c->state == SF__CONN_CLOSED)
        return;
    if (c->state == SF__CONN_CONNECTING) {
        if (now - c->created_ms >= client->connect_to)
            conn_open_failed(c, SF_ETIMEDOUT);
    } else if (conn_busy(c)) {
        size_t pending = sf_conn_pending_out(conn);
        bool timed_out = false;
        if (pending == 0)
            c->write_since_ms = 0;
        if (pending > 0 && c->write_since_ms && now - c->write_since_ms >= client->write_to)
            timed_out = true;
        else if (pending == 0 && now - c->last_read_ms >= client->read_to)
            timed_out = true;
        if (timed_out) {
            /* A probe that never hears back: the requests waiting for it
             * time out too, rather than probing again and again. */
            if (c->state == SF__CONN_PROBING)
                origin_fail_queue(c->origin, SF_ETIMEDOUT);
            conn_teardown(c, SF_ETIMEDOUT);
        }
    } else if (now - c->idle_since_ms >= client->pool_ttl) {
        conn_retire(c);
    }
    conn_arm(c);
    client_after(client);
}

static void on_drain(sf_conn_t *conn)
{
    sf__hconn_t *c = conn->data;

    /* The output reached the kernel: the write is done, and the read
     * timeout counts from here. */
    c->write_since_ms = 0;
    c->last_read_ms = now_ms(c->client);
}

static void on_close(sf_conn_t *conn, int reason)
{
    sf__hconn_t *c = conn->data;
    sf_http_client_t *client = c->client;
    sf__origin_t *o = c->origin;
    c->conn = NULL;
    if (c->state != SF__CONN_CLOSED && !c->opened) {
        /* Failed to open without telling on_open. */
        conn_open_failed(c, reason ? reason : SF_ECONNREFUSED);
    } else if (c->state != SF__CONN_CLOSED) {
        /* Closed by the peer or by an error below us. */
        int err = reason ? reason : SF_ECONNRESET;
        if (c->state == SF__CONN_PROBING && err == SF_ECONNRESET) {
            /* The peer hung up on the HTTP/2 preface: HTTP/1.1 only. */
            o->version = 1;
        }
        /* A response delimited by the end of the connection is complete. */
        if (c->version == 1 && c->nactive > 0 && reason == SF_ECONNRESET)
            sf__h1_eof(c);
        c->state = SF__CONN_CLOSED;
        conn_fail_active(c, err);
    }
    if (sf__hlist_linked(&c->dirty_link))
        sf__hlist_remove(&c->dirty_link);
    sf__hlist_remove(&c->link);
    o->nconns--;
    conn_free(c);
    client->handles--;
    origin_mark_pump(o);
    if (!client->closing)
        client_after(client);
    else
        client_dispatch(client);
    client_maybe_free(client);
}

/* ------------------------------------------------------------------------ */
/* Origins                                                                   */

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static sf__origin_t *origin_find(sf_http_client_t *client, const char *key, uint32_t hash)
{
    sf__origin_t *o;
    for (o = client->buckets[hash & (client->nbuckets - 1)]; o; o = o->hnext)
        if (o->hash == hash && strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

static void origin_free(sf_http_client_t *client, sf__origin_t *o)
{
    sf_mem_free(client->mem, o->key);
    sf_mem_free(client->mem, o->host);
    sf_mem_free(client->mem, o->unix_path);
    sf_mem_free(client->mem, o);
}

static int origin_get(sf_http_client_t *client, const sf_http_url_t *url, sf__origin_t **out)
{
    uint32_t hash = hash_key(url->origin_key);
    sf__origin_t *o = origin_find(client, url->origin_key, hash);
    size_t i;

    if (o) {
        *out = o;
        return 0;
    }
    if (client->norigins + 1 > client->nbuckets) {
        /* Grow: rehash every origin into twice the buckets. */
        size_t nb = client->nbuckets * 2;
        sf__origin_t **b = sf_mem_calloc(client->mem, nb, sizeof *b);
        if (!b)
            return SF_ENOMEM;
        for (i = 0; i < client->nbuckets; i++) {
            while ((o = client->buckets[i]) != NULL) {
                client->buckets[i] = o->hnext;
                o->hnext = b[o->hash & (nb - 1)];
                b[o->hash & (nb - 1)] = o;
            }
        }
        sf_mem_free(client->mem, client->buckets);
        client->buckets = b;
        client->nbuckets = nb;
    }
    if (!(o = sf_mem_calloc(client->mem, 1, sizeof *o)))
        return SF_ENOMEM;
    o->client = client;
    o->hash = hash;
    o->port = url->port;
    o->tls = url->tls;
    o->key = sf_mem_strndup(client->mem, url->origin_key, strlen(url->origin_key));
    if (url->host)
        o->host = sf_mem_strndup(client->mem, url->host, strlen(url->host));
    if (url->unix_path)
        o->unix_path = sf_mem_strndup(client->mem, url->unix_path, strlen(url->unix_path));
    if (!o->key || (url->host && !o->host) || (url->unix_path && !o->unix_path)) {
        origin_free(client, o);
        return SF_ENOMEM;
    }
    switch (client->cfg.protocol) {
    case SF_HTTP_PROTO_HTTP1: o->version = 1; break;
    case SF_HTTP_PROTO_H2:
    case SF_HTTP_PROTO_H2C: o->version = 2; break;
    default: o->version = 0; break;
    }
    sf__hlist_init(&o->queue);
    sf__hlist_init(&o->conns);
    sf__hlist_init(&o->pump_link);
    o->hnext = client->buckets[hash & (client->nbuckets - 1)];
    client->buckets[hash & (client->nbuckets - 1)] = o;
    client->norigins++;
    *out = o;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

static void on_defer(uv_idle_t *idle)
{
    sf_http_client_t *client = idle->data;
    uv_idle_stop(idle);
    client_after(client);
}

static char *dup_opt(const sf_mem *mem, const char *s, bool *failed)
{
    char *p;
    if (!s)
        return NULL;
    if (!(p = sf_mem_strndup(mem, s, strlen(s))))
        *failed = true;
    return p;
}

static void client_free_config(sf_http_client_t *client)
{
    sf_mem_free(client->mem, (char *)client->cfg.tls_ca_file);
    sf_mem_free(client->mem, (char *)client->cfg.tls_cert_file);
    sf_mem_free(client->mem, (char *)client->cfg.tls_key_file);
    sf_mem_free(client->mem, (char *)client->cfg.tls_key_password);
}

int sf_http_client_new(uv_loop_t *loop, const sf_http_client_config_t *config,
                       sf_http_client_t **out)
{
    const sf_mem *mem = config && config->mem ? config->mem : sf_mem_default();
    sf_http_client_t *client;
    bool failed = false;
    int rv;

    if (!loop || !out)
        return SF_EINVAL;
    *out = NULL;
    if (config && (config->protocol < SF_HTTP_PROTO_AUTO || config->protocol > SF_HTTP_PROTO_H2))
        return SF_EINVAL;
    if (config && (!config->tls_cert_file) != (!config->tls_key_file))
        return SF_EINVAL;
    if (!(client = sf_mem_calloc(mem, 1, sizeof *client)))
        return SF_ENOMEM;
    client->loop = loop;
    client->mem = mem;
    if (config)
        client->cfg = *config;
    client->cfg.mem = mem;
    client->cfg.tls_ca_file = dup_opt(mem, client->cfg.tls_ca_file, &failed);
    client->cfg.tls_cert_file = dup_opt(mem, client->cfg.tls_cert_file, &failed);
    client->cfg.tls_key_file = dup_opt(mem, client->cfg.tls_key_file, &failed);
    client->cfg.tls_key_password = dup_opt(mem, client->cfg.tls_key_password, &failed);
    rv = SF_ENOMEM;
    if (failed)
        goto fail_config;
    client->connect_to = client->cfg.connect_timeout_ms ? client->cfg.connect_timeout_ms : 10000;
    client->read_to = client->cfg.read_timeout_ms ? client->cfg.read_timeout_ms : 10000;
    client->write_to = client->cfg.write_timeout_ms ? client->cfg.write_timeout_ms : 10000;
    client->call_to = client->cfg.call_timeout_ms ? client->cfg.call_timeout_ms : 60000;
    client->pool_size = client->cfg.pool_size ? client->cfg.pool_size : 16;
    client->pool_ttl = client->cfg.pool_ttl_ms ? client->cfg.pool_ttl_ms : 60000;
    client->max_response =
        client->cfg.max_response_bytes ? client->cfg.max_response_bytes : 16u << 20;

    sf__hlist_init(&client->deadlines);
    sf__hlist_init(&client->done);
    sf__hlist_init(&client->dirty);
    sf__hlist_init(&client->pump);
    sf__hlist_init(&client->free_reqs);
    sf_buf_init(&client->scratch, mem);
    client->nbuckets = 8;
    if (!(client->buckets = sf_mem_calloc(mem, client->nbuckets, sizeof *client->buckets)))
        goto fail_config;
    if ((rv = sf__h2_callbacks_new(client)) != 0)
        goto fail_buckets;
    uv_timer_init(loop, &client->call_timer);
    client->call_timer.data = client;
    uv_idle_init(loop, &client->defer);
    client->defer.data = client;
    client->handles = 2;
    *out = client;
    return 0;

fail_buckets:
    sf_mem_free(mem, client->buckets);
fail_config:
    client_free_config(client);
    sf_mem_free(mem, client);
    return rv;
}

/* A token (RFC 9110 5.6.2): the method and header names. */
static bool is_token(const char *s, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    size_t i;
    if (len == 0)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch && strchr(extra, ch))))
            return false;
    }
    return true;
}

static bool is_field_value(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    return true;
}

int sf_http_client_request(sf_http_client_t *client, const char *method, const sf_http_url_t *url,
                           const sf_http_header_t *headers, size_t nheaders, const void *body,
                           size_t body_len, sf_http_response_cb cb, void *user_data)
{
    size_t method_len, total, i;
    sf__origin_t *o;
    sf__hreq_t *r;
    sf__hoff_t *h;
    int rv;

    if (!client || client->closing || !url || !url->origin_key || !url->path ||
        !url->authority || !cb || (nheaders && !headers) || (body_len && !body))
        return SF_EINVAL;
    if (!url->unix_path && !url->host)
        return SF_EINVAL;
    if (!method)
        method = "POST";
    method_len = strlen(method);
    if (!is_token(method, method_len) || !is_field_value(url->path, strlen(url->path)) ||
        !is_field_value(url->authority, strlen(url->authority)))
        return SF_EINVAL;
    total = method_len + body_len;
    for (i = 0; i < nheaders; i++) {
        if (!headers[i].name || !is_token(headers[i].name, headers[i].namelen) ||
            (headers[i].valuelen && !headers[i].value) ||
            !is_field_value(headers[i].value, headers[i].valuelen))
            return SF_EINVAL;
        total += headers[i].namelen + headers[i].valuelen;
    }
    if (total > UINT32_MAX)
        return SF_EINVAL;
    if ((rv = origin_get(client, url, &o)) != 0)
        return rv;
    if (!(r = req_get(client)))
        return SF_ENOMEM;
    if ((rv = sf_buf_reserve(&r->data, total)) != 0 ||
        (rv = sf_buf_reserve(&r->hdrs, nheaders * sizeof *h)) != 0) {
        req_put(client, r);
        return rv;
    }
    sf_buf_append(&r->data, method, method_len);
    r->method_len = method_len;
    h = (sf__hoff_t *)r->hdrs.base;
    for (i = 0; i < nheaders; i++) {
        h[i].name_off = (uint32_t)r->data.len;
        h[i].name_len = (uint32_t)headers[i].namelen;
        sf_buf_append(&r->data, headers[i].name, headers[i].namelen);
        h[i].value_off = (uint32_t)r->data.len;
        h[i].value_len = (uint32_t)headers[i].valuelen;
        sf_buf_append(&r->data, headers[i].value, headers[i].valuelen);
    }
    r->hdrs.len = nheaders * sizeof *h;
    r->nhdrs = nheaders;
    r->body_off = r->data.len;
    r->body_len = body_len;
    sf_buf_append(&r->data, body, body_len);

    r->origin = o;
    r->conn = NULL;
    r->path = url->path;
    r->authority = url->authority;
    r->cb = cb;
    r->user_data = user_data;
    r->head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    r->err = 0;
    r->stream_id = 0;
    r->retries = 0;
    r->got_response = false;
    sf__hreq_reset_response(r);
    r->version = 0;
    r->deadline = now_ms(client) + client->call_to;

    sf__hlist_push(&client->deadlines, &r->dlink);
    if (!client->call_timer_armed)
        call_timer_start(client, r->deadline);
    client->npending++;
    r->state = SF__REQ_QUEUED;
    sf__hlist_push(&o->queue, &r->link);
    o->nqueued++;

    /* Inside a response callback, the dispatch loop flushes once for all the
     * requests its callbacks make; otherwise this request goes out now
     * (conn.c still gathers everything of this loop turn into one write). */
    client->in_request++;
    origin_pump(o);
    if (!client->dispatching)
        client_after(client);
    client->in_request--;
    return 0;
}

int sf_http_client_origin_version(sf_http_client_t *client, const sf_http_url_t *url)
{
    sf__origin_t *o;

    if (!client || !url || !url->origin_key)
        return 0;
    switch (client->cfg.protocol) {
    case SF_HTTP_PROTO_HTTP1: return 1;
    case SF_HTTP_PROTO_H2:
    case SF_HTTP_PROTO_H2C: return 2;
    default: break;
    }
    o = origin_find(client, url->origin_key, hash_key(url->origin_key));
    return o ? o->version : 0;
}

static void on_handle_close(uv_handle_t *h)
{
    sf_http_client_t *client = h->data;
    client->handles--;
    client_maybe_free(client);
}

static void client_maybe_free(sf_http_client_t *client)
{
    sf_http_client_close_cb cb;
    void *data;
    sf__hlist_t *n;
    size_t i;

    if (!client->closing || client->handles > 0 || client->dispatching)
        return;
    SF_ASSERT(sf__hlist_empty(&client->done));
    for (i = 0; i < client->nbuckets; i++) {
        sf__origin_t *o;
        while ((o = client->buckets[i]) != NULL) {
            client->buckets[i] = o->hnext;
            origin_free(client, o);
        }
    }
    while ((n = sf__hlist_first(&client->free_reqs)) != NULL) {
        sf__hlist_remove(n);
        req_free(client, sf_container_of(n, sf__hreq_t, link));
    }
    sf_mem_free(client->mem, client->buckets);
    sf__h2_callbacks_free(client);
    sf_tls_ctx_free(client->tls);
    sf_mem_free(client->mem, client->nv);
    sf_buf_dispose(&client->scratch);
    client_free_config(client);
    cb = client->close_cb;
    data = client->close_data;
    sf_mem_free(client->mem, client);
    if (cb)
        cb(client, data);
}

void sf_http_client_close(sf_http_client_t *client, sf_http_client_close_cb cb, void *user_data)
{
    size_t i;

    if (!client || client->closing)
        return;
    client->closing = true;
    client->close_cb = cb;
    client->close_data = user_data;
    for (i = 0; i < client->nbuckets; i++) {
        sf__origin_t *o;
        for (o = client->buckets[i]; o; o = o->hnext) {
            sf__hlist_t *n;
            origin_fail_queue(o, SF_ECANCELED);
            for (n = o->conns.next; n != &o->conns; n = n->next)
                conn_teardown(sf_container_of(n, sf__hconn_t, link), SF_ECANCELED);
            if (sf__hlist_linked(&o->pump_link))
                sf__hlist_remove(&o->pump_link);
        }
    }
    SF_ASSERT(sf__hlist_empty(&client->deadlines));
    uv_timer_stop(&client->call_timer);
    client->call_timer_armed = false;
    uv_idle_stop(&client->defer);
    uv_close((uv_handle_t *)&client->call_timer, on_handle_close);
    uv_close((uv_handle_t *)&client->defer, on_handle_close);
    client_dispatch(client);
}
