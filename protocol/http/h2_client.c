/* statefun-c: Apache License 2.0.
 *
 * The HTTP/2 client core: an nghttp2 client session per connection, driven
 * with nghttp2_session_mem_recv / nghttp2_session_mem_send (no I/O here; the
 * output goes into the connection's gathered buffer). One callbacks object is
 * built per client and every session gets its connection as user_data.
 *
 * A request is a stream whose stream user data is the sf__hreq_t. The link is
 * cut (stream user data set to NULL) as soon as the request is finished or
 * timed out, so a late nghttp2 callback for that stream finds nothing and the
 * request object can be recycled at once.
 *
 * Results: a stream closed after END_STREAM from the peer is a response; a
 * stream closed with REFUSED_STREAM before any answer (including the streams
 * nghttp2 closes beyond a GOAWAY's last stream id, and requests whose HEADERS
 * could not be sent) was not processed and is retried on another connection;
 * any other reset fails the request (SF_EPROTO for PROTOCOL_ERROR, otherwise
 * SF_ECONNRESET). A response over the size limit resets the stream (CANCEL)
 * and fails with SF_ETOOBIG.
 *
 * No user callback runs from here: results go to the client's done list
 * (sf__hreq_finish) and client.c dispatches them after mem_recv returned.
 *
 * Threading: loop thread only.
 */
#include "h2_client.h"
#include "http_util.h"

#include <string.h>
#include <strings.h>

/* Streams allowed before the peer's first SETTINGS arrives (RFC 9113 6.5.2
 * recommends assuming at least 100). */
#define H2_DEFAULT_STREAMS 100
/* Our receive windows: large, so that many concurrent responses never wait
 * for a WINDOW_UPDATE round trip. */
#define H2_STREAM_WINDOW (1 << 20)
#define H2_CONN_WINDOW (32 << 20)

static sf__hreq_t *stream_req(nghttp2_session *ng, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(ng, stream_id);
}

/* Fails |r| with |err| and resets its stream; the stream keeps no link to it. */
static void reset_stream(sf__hconn_t *c, sf__hreq_t *r, int err)
{
    if (r->err == 0)
        r->err = err;
    nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    sf__hconn_t *c = user_data;
    sf__hreq_t *r;
    int rv;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    r = stream_req(ng, frame->hd.stream_id);
    if (!r || r->err)
        return 0;
    r->got_response = true;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int status = 0;
        size_t i;
        /* nghttp2 has validated it: three digits. A new status after an
         * interim (1xx) response starts the final response afresh. */
        for (i = 0; i < valuelen && i < 3; i++)
            status = status * 10 + (value[i] - '0');
        if (r->status != 0)
            sf__hreq_reset_response(r);
        r->status = status;
        r->version = 2;
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return 0;
    if ((rv = sf__hreq_add_header(r, name, namelen, value, valuelen)) != 0)
        reset_stream(c, r, rv);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    sf__hconn_t *c = user_data;
    sf__hreq_t *r = stream_req(ng, stream_id);
    int rv;

    if (!r || r->err)
        return 0;
    r->got_response = true;
    if ((rv = sf__hreq_add_body(r, data, len)) != 0)
        reset_stream(c, r, rv);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    sf__hconn_t *c = user_data;
    sf__hreq_t *r;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            c->h2_settings_seen = true;
        break;
    case NGHTTP2_GOAWAY:
        /* nghttp2 closes the streams beyond last_stream_id with
         * REFUSED_STREAM itself; we only stop opening new ones. */
        c->h2_goaway = true;
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            (r = stream_req(ng, frame->hd.stream_id)) != NULL) {
            /* Trailers (a second HEADERS) end the stream too; an interim
             * response never carries END_STREAM. */
            if (r->status >= 200 || (r->status >= 100 && frame->hd.type == NGHTTP2_DATA))
                r->complete = true;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    sf__hreq_t *r = stream_req(ng, stream_id);

    (void)user_data;
    if (!r)
        return 0;
    nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
    r->stream_id = 0;
    if (r->err)
        sf__hreq_finish(r, r->err);
    else if (r->complete && r->status >= 200)
        sf__hreq_finish(r, 0);
    else if (error_code == NGHTTP2_REFUSED_STREAM && !r->got_response)
        /* Not processed. Streams sent before the peer's SETTINGS may simply
         * have exceeded a limit we did not know yet: that costs no retry. */
        sf__hreq_retry(r, SF_ECONNRESET, !r->h2_early);
    else if (error_code == NGHTTP2_PROTOCOL_ERROR || error_code == NGHTTP2_FRAME_SIZE_ERROR ||
             error_code == NGHTTP2_COMPRESSION_ERROR || error_code == NGHTTP2_NO_ERROR)
        /* NO_ERROR without a complete response means the peer ended the
         * stream with no answer: a protocol violation as far as we care. */
        sf__hreq_finish(r, SF_EPROTO);
    else
        sf__hreq_finish(r, SF_ECONNRESET);
    return 0;
}

int sf__h2_callbacks_new(sf_http_client_t *client)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return SF_ENOMEM;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return SF_ENOMEM;
    }
    /* We never accept pushes (SETTINGS_ENABLE_PUSH is 0 below). */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    client->h2_cbs = cbs;
    client->h2_opt = opt;
    sf__h2_mem_init(&client->h2_mem, client->mem);
    return 0;
}

void sf__h2_callbacks_free(sf_http_client_t *client)
{
    if (client->h2_cbs)
        nghttp2_session_callbacks_del(client->h2_cbs);
    if (client->h2_opt)
        nghttp2_option_del(client->h2_opt);
    client->h2_cbs = NULL;
    client->h2_opt = NULL;
}

int sf__h2_session_init(sf__hconn_t *c)
{
    sf_http_client_t *client = c->client;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
    };

    SF_ASSERT(c->ng == NULL);
    if (nghttp2_session_client_new3(&c->ng, client->h2_cbs, c, client->h2_opt,
                                    &client->h2_mem) != 0)
        return SF_ENOMEM;
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, SF_ARRAY_SIZE(iv)) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(c->ng);
        c->ng = NULL;
        return SF_ENOMEM;
    }
    c->h2_settings_seen = false;
    c->h2_goaway = false;
    sf__hconn_mark_dirty(c);
    return 0;
}

void sf__h2_session_dispose(sf__hconn_t *c)
{
    sf__hlist_t *n;

    if (!c->ng)
        return;
    /* Cut the links of requests still on streams: nghttp2_session_del calls
     * no callbacks, but the requests must never be reached through it. */
    for (n = c->active.next; n != &c->active; n = n->next) {
        sf__hreq_t *r = sf_container_of(n, sf__hreq_t, link);
        r->stream_id = 0;
    }
    nghttp2_session_del(c->ng);
    c->ng = NULL;
}

static int from_ng(int rv)
{
    return rv == NGHTTP2_ERR_NOMEM ? SF_ENOMEM : SF_EPROTO;
}

int sf__h2_recv(sf__hconn_t *c, const uint8_t *data, size_t len)
{
    ssize_t n;

    if (!c->ng)
        return SF_EPROTO;
    n = nghttp2_session_mem_recv(c->ng, data, len);
    if (n < 0)
        return from_ng((int)n);
    /* SETTINGS acknowledgements, WINDOW_UPDATEs and resets to send. */
    sf__hconn_mark_dirty(c);
    return 0;
}

int sf__h2_flush(sf__hconn_t *c)
{
    ssize_t n;

    if (!c->ng || !c->conn)
        return 0;
    /* While the connection closes the bytes have nowhere to go. */
    n = sf__h2_send_into(c->ng, sf_conn_out_buf(c->conn));
    if (n < 0)
        return (int)n;
    if (n > 0)
        sf_conn_schedule_flush(c->conn);
    return 0;
}

bool sf__h2_can_submit(const sf__hconn_t *c)
{
    uint32_t limit, cap = c->client->cfg.h2_max_concurrent_streams;

    if (!c->ng || c->h2_goaway)
        return false;
    if (c->h2_settings_seen)
        limit = nghttp2_session_get_remote_settings(c->ng,
                                                    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    else
        limit = H2_DEFAULT_STREAMS;
    if (cap != 0 && cap < limit)
        limit = cap;
    /* Stream ids are 31 bits; a session that used them up takes no more. */
    if (nghttp2_session_get_next_stream_id(c->ng) > INT32_MAX - 2)
        return false;
    return c->nactive < limit;
}

static ssize_t read_body(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    sf__hreq_t *r = stream_req(ng, stream_id);
    size_t n;

    (void)source;
    (void)user_data;
    if (!r) {
        /* The request is gone (timed out); its reset is on the way. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    n = r->body_len - r->body_sent;
    if (n > length)
        n = length;
    memcpy(buf, r->data.base + r->body_off + r->body_sent, n);
    r->body_sent += n;
    if (r->body_sent == r->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Header fields HTTP/2 forbids (RFC 9113 8.2.2) or that we set ourselves. */
static bool skip_header(const char *name, size_t len)
{
    static const char *const skip[] = {"connection", "keep-alive",     "proxy-connection",
                                       "transfer-encoding", "upgrade", "host",
                                       "content-length", "te"};
    size_t i;
    for (i = 0; i < SF_ARRAY_SIZE(skip); i++)
        if (strlen(skip[i]) == len && strncasecmp(skip[i], name, len) == 0)
            return true;
    return false;
}

int sf__h2_submit(sf__hconn_t *c, sf__hreq_t *r)
{
    sf_http_client_t *client = c->client;
    const sf__hoff_t *h = sf__hreq_hdrs(r);
    size_t need = r->nhdrs + 5, i, n = 0, names = 0;
    char clen[24];
    nghttp2_data_provider prd;
    int32_t id;
    char *lower;
    int rv;

    if (need > client->nv_cap) {
        nghttp2_nv *nv = sf_mem_realloc(client->mem, client->nv, need * sizeof *nv);
        if (!nv)
            return SF_ENOMEM;
        client->nv = nv;
        client->nv_cap = need;
    }
    /* HTTP/2 header names are lower case: copy them lowered into scratch,
     * sized once so the pointers stay put. nghttp2 copies the block. */
    for (i = 0; i < r->nhdrs; i++)
        names += h[i].name_len;
    sf_buf_reset(&client->scratch);
    if ((rv = sf_buf_reserve(&client->scratch, names + 1)) != 0)
        return rv;
    lower = (char *)client->scratch.base;

    sf__nv_set(&client->nv[n++], ":method", 7, sf__hreq_method(r), r->method_len);
    sf__nv_set(&client->nv[n++], ":scheme", 7, c->origin->tls ? "https" : "http",
               c->origin->tls ? 5 : 4);
    sf__nv_set(&client->nv[n++], ":authority", 10, r->authority, strlen(r->authority));
    sf__nv_set(&client->nv[n++], ":path", 5, r->path, strlen(r->path));
    for (i = 0; i < r->nhdrs; i++) {
        const char *name = (const char *)r->data.base + h[i].name_off;
        if (skip_header(name, h[i].name_len))
            continue;
        sf__nv_set(&client->nv[n++], lower, h[i].name_len,
                   (const char *)r->data.base + h[i].value_off, h[i].value_len);
        lower = sf__put_lower(lower, name, h[i].name_len);
    }
    /* A body-less GET or HEAD carries no content-length; anything else does. */
    if (r->body_len > 0 || !(r->head || (r->method_len == 3 &&
                                         memcmp(sf__hreq_method(r), "GET", 3) == 0))) {
        sf__nv_set(&client->nv[n++], "content-length", 14, clen,
                   (size_t)(sf__put_uint(clen, r->body_len) - clen));
    }

    r->body_sent = 0;
    prd.source.ptr = r;
    prd.read_callback = read_body;
    id = nghttp2_submit_request(c->ng, NULL, client->nv, n, r->body_len ? &prd : NULL, r);
    if (id < 0)
        return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? SF_ECONNRESET : from_ng(id);
    r->stream_id = id;
    r->version = 2;
    r->h2_early = !c->h2_settings_seen;
    sf__hconn_mark_dirty(c);
    return 0;
}

void sf__h2_cancel(sf__hconn_t *c, sf__hreq_t *r)
{
    if (!c->ng || r->stream_id <= 0)
        return;
    nghttp2_session_set_stream_user_data(c->ng, r->stream_id, NULL);
    nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
    r->stream_id = 0;
    sf__hconn_mark_dirty(c);
}

bool sf__h2_finished(const sf__hconn_t *c)
{
    return !c->ng || (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng));
}

void sf__h2_goaway(sf__hconn_t *c)
{
    if (!c->ng || c->h2_goaway)
        return;
    c->h2_goaway = true;
    nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
    sf__hconn_mark_dirty(c);
}
