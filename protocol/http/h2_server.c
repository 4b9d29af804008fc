/* statefun-c: Apache License 2.0.
 *
 * HTTP/2 server connections (see h2_server.h). Bytes go to
 * nghttp2_session_mem_recv; whatever nghttp2 wants to send is gathered with
 * nghttp2_session_mem_send into the connection's output, which leaves in one
 * write per loop turn. Each stream's request object is the stream user
 * data; the response body is served by a data provider from the request's
 * own buffer.
 *
 * Limits: more header bytes than max_header_bytes -> 431; a content-length
 * or DATA beyond max_body_bytes -> 413. An error answer may go out before
 * the client finished its upload. The rest of the upload is then read and
 * dropped up to another max_body_bytes, and only beyond that is the stream
 * reset with NO_ERROR (RFC 9113 section 8.1): some clients (curl 7.88) drop
 * a complete response when that reset overtakes their upload, so the
 * common case of a modest overshoot ends without one.
 *
 * Threading: loop thread only.
 */
#include "h2_server.h"
#include "http_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
/* Output bytes waiting in the connection before reading pauses. */
#define OUT_PAUSE_BYTES (8 * 1024 * 1024)

static void send_pending(sf__sconn_t *hc);

static sf_http_request_t *stream_req(nghttp2_session *session, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                  */

static ssize_t body_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    sf_http_request_t *req = source->ptr;
    size_t total = req->resp.len - req->resp_body_off;
    size_t n = total - req->resp_sent;

    (void)session;
    (void)stream_id;
    (void)user_data;
    if (n > length)
        n = length;
    memcpy(buf, req->resp.base + req->resp_body_off + req->resp_sent, n);
    req->resp_sent += n;
    if (req->resp_sent == total)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Submits the response of |req|; the request must be linked to a live
 * connection. The header strings (lowercased names) and the body go into
 * req->resp, reserved at once so the pointers in req->nva stay valid; the
 * data provider reads the body from there. On failure the request is
 * recycled. */
static int submit(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                  size_t nheaders, const void *body, size_t body_len)
{
    sf__sconn_t *hc = req->hc;
    int32_t stream_id = req->stream_id;
    nghttp2_data_provider dp;
    /* HEAD: the length a GET would have, and no body. */
    size_t send_len = req->head ? 0 : body_len;
    size_t i, n = 0, need = 48;
    char *p, *v;
    int rv;

    for (i = 0; i < nheaders; i++)
        need += headers[i].namelen + headers[i].valuelen;
    need += send_len;
    sf_buf_reset(&req->resp);
    if (sf_buf_reserve(&req->resp, need) != 0)
        goto nomem;
    if (req->nva_cap < nheaders + 2) {
        nghttp2_nv *nva = sf_mem_realloc(req->mem, req->nva, (nheaders + 2) * sizeof *nva);
        if (!nva)
            goto nomem;
        req->nva = nva;
        req->nva_cap = nheaders + 2;
    }
    p = (char *)req->resp.base;
    v = p;
    p = sf__put_uint(p, (uint64_t)status);
    sf__nv_set(&req->nva[n++], ":status", 7, v, (size_t)(p - v));
    v = p;
    p = sf__put_uint(p, body_len);
    sf__nv_set(&req->nva[n++], "content-length", 14, v, (size_t)(p - v));
    for (i = 0; i < nheaders; i++) {
        const sf_http_header_t *h = &headers[i];
        if (h->namelen == 0 || sf__srv_hop_header(h->name, h->namelen))
            continue;
        v = p;
        p = sf__put_lower(p, h->name, h->namelen);
        p = sf__put_mem(p, h->value, h->valuelen);
        sf__nv_set(&req->nva[n++], v, h->namelen, v + h->namelen, h->valuelen);
    }
    req->resp_body_off = (size_t)(p - (char *)req->resp.base);
    req->resp_sent = 0;
    if (send_len)
        p = sf__put_mem(p, body, send_len);
    req->resp.len = (size_t)(p - (char *)req->resp.base);
    dp.source.ptr = req;
    dp.read_callback = body_read_cb;
    rv = nghttp2_submit_response(hc->session, stream_id, req->nva, n, send_len ? &dp : NULL);
    if (rv != 0) {
        nghttp2_session_set_stream_user_data(hc->session, stream_id, NULL);
        sf__sreq_unlink(req);
        sf__sreq_put(req);
        return nghttp2_is_fatal(rv) ? SF_ENOMEM : SF_ECONNRESET;
    }
    req->state = SF__SREQ_RESPONDING;
    return SF_OK;

nomem:
    nghttp2_session_set_stream_user_data(hc->session, stream_id, NULL);
    sf__sreq_unlink(req);
    sf__sreq_put(req);
    nghttp2_submit_rst_stream(hc->session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
    return SF_ENOMEM;
}

/* Answers a request still receiving with an error status. */
static void answer_error(sf_http_request_t *req, int status, const char *text)
{
    sf__sconn_t *hc = req->hc;
    char body[128];
    int n;
    static const sf_http_header_t ct = {"content-type", 12, "text/plain", 10};

    hc->h2_receiving--;
    req->discard = true;
    n = snprintf(body, sizeof body, "%s\n", text);
    (void)submit(req, status, &ct, 1, body, (size_t)n);
}

int sf__h2s_respond(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                    size_t nheaders, const void *body, size_t body_len)
{
    sf__sconn_t *hc = req->hc;
    int rv = submit(req, status, headers, nheaders, body, body_len);

    if (!hc->h2_in_recv)
        send_pending(hc);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* nghttp2 callbacks                                                          */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    sf__sconn_t *hc = ud;
    sf_http_request_t *req;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (hc->server->closing)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    req = sf__sreq_get(hc);
    if (!req)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    req->version = 2;
    req->stream_id = frame->hd.stream_id;
    sf__sreq_link(hc, req);
    hc->h2_receiving++;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, req);
    return 0;
}

static int add_header(sf_http_request_t *req, const uint8_t *name, size_t namelen,
                      const uint8_t *value, size_t valuelen)
{
    int64_t noff, voff;

    if (sf__sreq_hdr_reserve(req) != 0 ||
        (noff = sf__sreq_meta_add(req, name, namelen)) < 0 ||
        (voff = sf__sreq_meta_add(req, value, valuelen)) < 0)
        return -1;
    req->hdrs[req->nhdrs].name_off = (uint32_t)noff;
    req->hdrs[req->nhdrs].name_len = (uint32_t)namelen;
    req->hdrs[req->nhdrs].value_off = (uint32_t)voff;
    req->hdrs[req->nhdrs].value_len = (uint32_t)valuelen;
    req->nhdrs++;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    sf__sconn_t *hc = ud;
    sf_http_request_t *req = stream_req(session, frame->hd.stream_id);
    int64_t off;

    (void)flags;
    if (!req || req->state != SF__SREQ_RECEIVING || req->err_status ||
        frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    req->header_bytes += namelen + valuelen + 4;
    if (req->header_bytes > hc->server->max_header_bytes) {
        req->err_status = 431;
        req->err_text = "request header fields too large";
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        if ((off = sf__sreq_meta_add(req, value, valuelen)) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        req->method_off = (uint32_t)off;
        req->has_method = true;
        req->head = valuelen == 4 && memcmp(value, "HEAD", 4) == 0;
        return 0;
    }
    if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        if ((off = sf__sreq_meta_add(req, value, valuelen)) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        req->path_off = (uint32_t)off;
        req->has_path = true;
        return 0;
    }
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        char tmp[24];
        if (valuelen < sizeof tmp) {
            memcpy(tmp, value, valuelen);
            tmp[valuelen] = '\0';
            if (strtoull(tmp, NULL, 10) > hc->server->max_body_bytes) {
                req->err_status = 413;
                req->err_text = "request body too large";
                return 0;
            }
        }
    }
    if (add_header(req, name, namelen, value, valuelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* After an early error answer has been sent in full: once the client has
 * uploaded another max_body_bytes (at least 64 KiB) for nothing, tell it to
 * stop with RST_STREAM(NO_ERROR). */
static void maybe_reset(nghttp2_session *session, sf_http_request_t *req, int32_t stream_id)
{
    size_t limit = req->hc->server->max_body_bytes;

    if (limit < 65536)
        limit = 65536;
    if (!req->resp_done || req->reset_sent || req->discarded <= limit ||
        nghttp2_session_get_stream_remote_close(session, stream_id) != 0)
        return;
    req->reset_sent = true;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *ud)
{
    sf__sconn_t *hc = ud;
    sf_http_request_t *req = stream_req(session, stream_id);

    (void)flags;
    if (req && req->discard) {
        req->discarded += len;
        maybe_reset(session, req, stream_id);
        return 0;
    }
    if (!req || req->state != SF__SREQ_RECEIVING || req->err_status)
        return 0;
    if (req->body.len + len > hc->server->max_body_bytes) {
        answer_error(req, 413, "request body too large");
        return 0;
    }
    if (sf_buf_append(&req->body, data, len) != 0) {
        req->err_status = 503;
        req->err_text = "server out of memory";
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    sf__sconn_t *hc = ud;
    sf_http_request_t *req;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    req = stream_req(session, frame->hd.stream_id);
    if (!req || req->state != SF__SREQ_RECEIVING)
        return 0;
    if (req->err_status) {
        answer_error(req, req->err_status, req->err_text);
        return 0;
    }
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    hc->h2_receiving--;
    if (hc->server->closing || sf_conn_is_closing(hc->conn)) {
        /* Nobody will answer: let the stream go with the connection. */
        req->state = SF__SREQ_RESPONDING;
        return 0;
    }
    sf__sreq_dispatch(req);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    sf_http_request_t *req;

    (void)ud;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    req = stream_req(session, frame->hd.stream_id);
    if (req && req->discard) {
        req->resp_done = true;
        maybe_reset(session, req, frame->hd.stream_id);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    sf__sconn_t *hc = ud;
    sf_http_request_t *req = stream_req(session, stream_id);

    (void)error_code;
    if (!req)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    switch (req->state) {
    case SF__SREQ_RECEIVING:
        hc->h2_receiving--;
        sf__sreq_unlink(req);
        sf__sreq_put(req);
        break;
    case SF__SREQ_DISPATCHED:
        /* The application still holds it: it stays valid, detached. */
        sf__sreq_unlink(req);
        req->hc = NULL;
        break;
    default:
        sf__sreq_unlink(req);
        sf__sreq_put(req);
        break;
    }
    return 0;
}

int sf__h2s_callbacks_new(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cbs;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return SF_ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    *out = cbs;
    return SF_OK;
}

/* ------------------------------------------------------------------------ */
/* Connection                                                                 */

static void update_timer(sf__sconn_t *hc)
{
    if (sf_conn_is_closing(hc->conn))
        return;
    if (hc->h2_receiving > 0)
        sf_conn_set_timeout(hc->conn, hc->server->read_timeout_ms);
    else if (hc->nreqs == 0)
        sf_conn_set_timeout(hc->conn, hc->server->idle_timeout_ms);
    else
        sf_conn_set_timeout(hc->conn, 0);
}

/* Gathers everything nghttp2 wants to send into the connection's output. */
static void send_pending(sf__sconn_t *hc)
{
    sf_conn_t *conn = hc->conn;
    sf_buf_t *out = sf_conn_out_buf(conn);
    ssize_t n;

    if (!out)
        return;
    if ((n = sf__h2_send_into(hc->session, out)) < 0) {
        sf_conn_abort(conn, (int)n);
        return;
    }
    sf_conn_schedule_flush(conn);
    if (!nghttp2_session_want_read(hc->session) && !nghttp2_session_want_write(hc->session)) {
        sf_conn_close(conn, 0);
        return;
    }
    if (!hc->h2_paused && sf_conn_pending_out(conn) > OUT_PAUSE_BYTES) {
        hc->h2_paused = true;
        sf_conn_pause_read(conn);
    }
    update_timer(hc);
}

int sf__h2s_start(sf__sconn_t *hc)
{
    sf_http_server_t *s = hc->server;
    nghttp2_settings_entry iv[2];
    int rv;

    rv = nghttp2_session_server_new3(&hc->session, s->h2cbs, hc, NULL, &s->h2mem);
    if (rv != 0)
        return SF_ENOMEM;
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = s->h2_max_concurrent_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = STREAM_WINDOW;
    if (nghttp2_submit_settings(hc->session, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(hc->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) !=
            0) {
        nghttp2_session_del(hc->session);
        hc->session = NULL;
        return SF_ENOMEM;
    }
    send_pending(hc);
    return SF_OK;
}

void sf__h2s_on_read(sf__sconn_t *hc, const uint8_t *data, size_t len)
{
    ssize_t rv;

    hc->h2_in_recv = true;
    rv = nghttp2_session_mem_recv(hc->session, data, len);
    hc->h2_in_recv = false;
    if (rv < 0) {
        /* A connection error: nghttp2 queued a GOAWAY where it could. */
        send_pending(hc);
        sf_conn_close(hc->conn, SF_EPROTO);
        return;
    }
    send_pending(hc);
}

void sf__h2s_on_timeout(sf__sconn_t *hc)
{
    sf_http_request_t *req, *next;

    if (hc->h2_receiving > 0) {
        for (req = hc->req_head; req; req = next) {
            next = req->next;
            if (req->state == SF__SREQ_RECEIVING)
                answer_error(req, 408, "request timed out");
        }
        send_pending(hc);
        return;
    }
    if (hc->nreqs == 0) {
        nghttp2_session_terminate_session(hc->session, NGHTTP2_NO_ERROR);
        send_pending(hc);
        sf_conn_close(hc->conn, SF_ETIMEDOUT);
    }
}

void sf__h2s_on_drain(sf__sconn_t *hc)
{
    if (hc->h2_paused && sf_conn_pending_out(hc->conn) <= OUT_PAUSE_BYTES / 2) {
        hc->h2_paused = false;
        sf_conn_resume_read(hc->conn);
    }
}

void sf__h2s_dispose(sf__sconn_t *hc)
{
    if (hc->session) {
        nghttp2_session_del(hc->session);
        hc->session = NULL;
    }
}
