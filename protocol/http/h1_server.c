/* statefun-c: Apache License 2.0.
 *
 * HTTP/1.1 server connections (see h1_server.h). http-parser turns bytes
 * into requests; each complete request joins the connection's queue and is
 * dispatched. Responses leave in request order: an answer for the queue's
 * head is serialized straight into the connection's output, an answer that
 * comes early waits in its request until the ones before it are written.
 *
 * Errors (400 malformed, 408 timeout, 413 body, 431 headers) are queued as
 * synthetic answered requests behind the real ones, with "connection:
 * close"; parsing stops and the connection closes once they are written.
 *
 * Threading: loop thread only.
 */
#include "h1_server.h"
#include "http_util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Pipelined requests in flight before reading pauses, and output bytes
 * waiting in the connection before reading pauses. */
#define PIPELINE_MAX 64
#define OUT_PAUSE_BYTES (4 * 1024 * 1024)

static sf__sconn_t *hc_of(http_parser *p)
{
    return p->data;
}

/* Stops parsing with |status| answered to the client. Returns -1: any
 * non-zero stops http-parser, but on_headers_complete must not return 1 or
 * 2, which mean "skip the body" and "upgrade". */
static int cb_fail(sf__sconn_t *hc, int status, const char *text)
{
    if (!hc->h1_err_status) {
        hc->h1_err_status = status;
        hc->h1_err_text = text;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Serialization                                                              */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

static bool header_ok(const sf_http_header_t *h)
{
    return h->namelen > 0 && !memchr(h->name, '\r', h->namelen) &&
           !memchr(h->name, '\n', h->namelen) && !memchr(h->name, ':', h->namelen) &&
           !memchr(h->value, '\r', h->valuelen) && !memchr(h->value, '\n', h->valuelen);
}

/* Appends a whole response to |out|. */
static int build(sf_buf_t *out, int status, const sf_http_header_t *headers, size_t nheaders,
                 const void *body, size_t body_len, bool head, bool close, bool keep_alive_hdr)
{
    const char *reason = reason_phrase(status);
    size_t need, i;
    char *p;

    need = 64 + strlen(reason) + (head ? 0 : body_len);
    for (i = 0; i < nheaders; i++)
        need += headers[i].namelen + headers[i].valuelen + 4;
    if (sf_buf_reserve(out, need) != 0)
        return SF_ENOMEM;
    p = (char *)out->base + out->len;
    p = sf__put_mem(p, "HTTP/1.1 ", 9);
    p = sf__put_uint(p, (uint64_t)status);
    *p++ = ' ';
    p = sf__put_mem(p, reason, strlen(reason));
    p = sf__put_mem(p, "\r\ncontent-length: ", 18);
    p = sf__put_uint(p, body_len);
    p = sf__put_mem(p, "\r\n", 2);
    for (i = 0; i < nheaders; i++) {
        const sf_http_header_t *h = &headers[i];
        if (!header_ok(h) || sf__srv_hop_header(h->name, h->namelen))
            continue;
        p = sf__put_mem(p, h->name, h->namelen);
        p = sf__put_mem(p, ": ", 2);
        p = sf__put_mem(p, h->value, h->valuelen);
        p = sf__put_mem(p, "\r\n", 2);
    }
    if (close)
        p = sf__put_mem(p, "connection: close\r\n", 19);
    else if (keep_alive_hdr)
        p = sf__put_mem(p, "connection: keep-alive\r\n", 24);
    p = sf__put_mem(p, "\r\n", 2);
    if (!head && body_len)
        p = sf__put_mem(p, body, body_len);
    out->len = (size_t)((uint8_t *)p - out->base);
    return SF_OK;
}

/* ------------------------------------------------------------------------ */
/* Queue progress                                                             */

static void after_progress(sf__sconn_t *hc)
{
    sf_conn_t *conn = hc->conn;
    bool pause;

    if (sf_conn_is_closing(conn))
        return;
    if (!hc->cur && hc->nreqs == 0 && !hc->h1_dead)
        sf_conn_set_timeout(conn, hc->server->idle_timeout_ms);
    pause = hc->nreqs >= PIPELINE_MAX || sf_conn_pending_out(conn) > OUT_PAUSE_BYTES;
    if (pause && !hc->h1_paused) {
        hc->h1_paused = true;
        sf_conn_pause_read(conn);
    } else if (!pause && hc->h1_paused) {
        hc->h1_paused = false;
        sf_conn_resume_read(conn);
    }
}

/* Writes every answered response at the head of the queue. */
static void pump(sf__sconn_t *hc)
{
    sf_http_request_t *req;
    bool close;

    while ((req = hc->req_head) != NULL && req->state == SF__SREQ_ANSWERED) {
        close = req->close_after;
        if (sf_conn_write1(hc->conn, req->resp.base, req->resp.len) != 0)
            close = true;
        sf__sreq_unlink(req);
        sf__sreq_put(req);
        if (close) {
            sf_conn_close(hc->conn, 0);
            return;
        }
    }
    after_progress(hc);
}

/* Answers |status| after the requests already queued, then closes. */
static void fail(sf__sconn_t *hc, int status, const char *text)
{
    sf_http_request_t *req;
    char body[160];
    int n;

    if (hc->cur) {
        sf__sreq_put(hc->cur);
        hc->cur = NULL;
    }
    hc->h1_dead = true;
    if (sf_conn_is_closing(hc->conn))
        return;
    sf_conn_set_timeout(hc->conn, 0);
    req = sf__sreq_get(hc);
    if (!req) {
        sf_conn_close(hc->conn, SF_ENOMEM);
        return;
    }
    n = snprintf(body, sizeof body, "%s\n", text);
    if (build(&req->resp, status, NULL, 0, body, (size_t)n, false, true, false) != 0) {
        sf__sreq_put(req);
        sf_conn_close(hc->conn, SF_ENOMEM);
        return;
    }
    req->state = SF__SREQ_ANSWERED;
    req->close_after = true;
    sf__sreq_link(hc, req);
    pump(hc);
}

int sf__h1s_respond(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                    size_t nheaders, const void *body, size_t body_len)
{
    sf__sconn_t *hc = req->hc;
    /* An HTTP/1.0 client asked for keep-alive: say it is granted. */
    bool ka_hdr = req->keep_alive && !req->close_after && req->http10;
    bool close = req->close_after;
    int rv;

    if (req == hc->req_head) {
        /* Its turn already: serialize straight into the connection. */
        rv = build(sf_conn_out_buf(hc->conn), status, headers, nheaders, body, body_len, req->head,
                   close, ka_hdr);
        sf__sreq_unlink(req);
        sf__sreq_put(req);
        if (rv != 0) {
            sf_conn_close(hc->conn, SF_ENOMEM);
            return rv;
        }
        sf_conn_schedule_flush(hc->conn);
        if (close) {
            sf_conn_close(hc->conn, 0);
            return SF_OK;
        }
        pump(hc);
        return SF_OK;
    }
    rv = build(&req->resp, status, headers, nheaders, body, body_len, req->head, req->close_after,
               ka_hdr);
    if (rv != 0) {
        /* The pipeline cannot skip an answer: give up the connection. */
        sf__sreq_unlink(req);
        sf__sreq_put(req);
        sf_conn_close(hc->conn, SF_ENOMEM);
        return rv;
    }
    req->state = SF__SREQ_ANSWERED;
    return SF_OK;
}

/* ------------------------------------------------------------------------ */
/* Parser callbacks                                                           */

/* Extends the last string in meta (the one being received in pieces). */
static int meta_extend(sf_http_request_t *req, const char *at, size_t len)
{
    if (req->meta.len + len > UINT32_MAX || sf_buf_reserve(&req->meta, len) != 0)
        return -1;
    memcpy(req->meta.base + req->meta.len - 1, at, len);
    req->meta.len += len;
    req->meta.base[req->meta.len - 1] = '\0';
    return 0;
}

static int count_bytes(sf__sconn_t *hc, size_t len)
{
    sf_http_request_t *req = hc->cur;

    req->header_bytes += len;
    if (req->header_bytes > hc->server->max_header_bytes)
        return cb_fail(hc, 431, "request header fields too large");
    return 0;
}

static int on_message_begin(http_parser *p)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req;

    if (hc->h1_dead || hc->server->closing || sf_conn_is_closing(hc->conn))
        return -1;
    req = sf__sreq_get(hc);
    if (!req)
        return cb_fail(hc, 503, "server out of memory");
    req->version = 1;
    hc->cur = req;
    hc->h1_hstate = 0;
    sf_conn_set_timeout(hc->conn, hc->server->read_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req = hc->cur;
    int64_t off;

    if (count_bytes(hc, len))
        return -1;
    if (!req->has_path) {
        if ((off = sf__sreq_meta_add(req, at, len)) < 0)
            return cb_fail(hc, 503, "server out of memory");
        req->path_off = (uint32_t)off;
        req->has_path = true;
    } else if (meta_extend(req, at, len) != 0) {
        return cb_fail(hc, 503, "server out of memory");
    }
    return 0;
}

/* A header name ended without any value callback: its value is empty. */
static int end_name(sf__sconn_t *hc)
{
    sf_http_request_t *req = hc->cur;
    int64_t off;

    if (hc->h1_hstate != 1)
        return 0;
    if ((off = sf__sreq_meta_add(req, "", 0)) < 0)
        return -1;
    req->hdrs[req->nhdrs - 1].value_off = (uint32_t)off;
    req->hdrs[req->nhdrs - 1].value_len = 0;
    hc->h1_hstate = 2;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req = hc->cur;
    int64_t off;

    if (count_bytes(hc, len))
        return -1;
    if (hc->h1_hstate == 1) {
        if (meta_extend(req, at, len) != 0)
            return cb_fail(hc, 503, "server out of memory");
        req->hdrs[req->nhdrs - 1].name_len += (uint32_t)len;
        return 0;
    }
    if (count_bytes(hc, 4))
        return -1;
    if (sf__sreq_hdr_reserve(req) != 0 || (off = sf__sreq_meta_add(req, at, len)) < 0)
        return cb_fail(hc, 503, "server out of memory");
    req->hdrs[req->nhdrs].name_off = (uint32_t)off;
    req->hdrs[req->nhdrs].name_len = (uint32_t)len;
    req->hdrs[req->nhdrs].value_off = 0;
    req->hdrs[req->nhdrs].value_len = 0;
    req->nhdrs++;
    hc->h1_hstate = 1;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req = hc->cur;
    int64_t off;

    if (count_bytes(hc, len))
        return -1;
    if (hc->h1_hstate == 2) {
        if (meta_extend(req, at, len) != 0)
            return cb_fail(hc, 503, "server out of memory");
        req->hdrs[req->nhdrs - 1].value_len += (uint32_t)len;
        return 0;
    }
    if (req->nhdrs == 0)
        return cb_fail(hc, 400, "bad request: header value without a name");
    if ((off = sf__sreq_meta_add(req, at, len)) < 0)
        return cb_fail(hc, 503, "server out of memory");
    req->hdrs[req->nhdrs - 1].value_off = (uint32_t)off;
    req->hdrs[req->nhdrs - 1].value_len = (uint32_t)len;
    hc->h1_hstate = 2;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req = hc->cur;
    const char *m = http_method_str((enum http_method)p->method);
    const char *expect;
    size_t elen;
    int64_t off;

    if (end_name(hc) != 0 || (off = sf__sreq_meta_add(req, m, strlen(m))) < 0)
        return cb_fail(hc, 503, "server out of memory");
    req->method_off = (uint32_t)off;
    req->has_method = true;
    if (!req->has_path) {
        if ((off = sf__sreq_meta_add(req, "/", 1)) < 0)
            return cb_fail(hc, 503, "server out of memory");
        req->path_off = (uint32_t)off;
        req->has_path = true;
    }
    req->head = p->method == HTTP_HEAD;
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    if (p->content_length != ULLONG_MAX && p->content_length > hc->server->max_body_bytes)
        return cb_fail(hc, 413, "request body too large");
    expect = sf_http_request_header(req, "expect", &elen);
    if (expect && elen == 12 && strncasecmp(expect, "100-continue", 12) == 0 &&
        p->http_minor >= 1 && hc->nreqs == 0) {
        /* Nothing else is owed to the client, so the interim answer cannot
         * overtake a response. */
        sf_conn_write1(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req = hc->cur;

    if (req->body.len + len > hc->server->max_body_bytes)
        return cb_fail(hc, 413, "request body too large");
    if (sf_buf_append(&req->body, at, len) != 0)
        return cb_fail(hc, 503, "server out of memory");
    return 0;
}

static int on_message_complete(http_parser *p)
{
    sf__sconn_t *hc = hc_of(p);
    sf_http_request_t *req = hc->cur;

    hc->cur = NULL;
    req->keep_alive = http_should_keep_alive(p) != 0;
    if (!req->keep_alive || p->upgrade) {
        /* The client closes after this one (or wants another protocol we
         * do not offer): answer it, then close. */
        req->close_after = true;
        hc->h1_dead = true;
    }
    sf__sreq_link(hc, req);
    sf__sreq_dispatch(req);
    /* Answered at once: the respond path has set the idle timer. Otherwise
     * the application holds it: no timer while it works. */
    if (hc->nreqs > 0 && !sf_conn_is_closing(hc->conn)) {
        sf_conn_set_timeout(hc->conn, 0);
        after_progress(hc);
    }
    return 0;
}

void sf__h1s_settings_init(http_parser_settings *s)
{
    memset(s, 0, sizeof *s);
    s->on_message_begin = on_message_begin;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}

/* ------------------------------------------------------------------------ */
/* Connection events                                                          */

void sf__h1s_start(sf__sconn_t *hc)
{
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    sf_conn_set_timeout(hc->conn, hc->server->idle_timeout_ms);
}

void sf__h1s_on_read(sf__sconn_t *hc, const uint8_t *data, size_t len)
{
    size_t off = 0, n;
    enum http_errno err;
    char text[128];

    while (off < len && !hc->h1_dead && !sf_conn_is_closing(hc->conn)) {
        n = http_parser_execute(&hc->parser, &hc->server->h1settings, (const char *)data + off,
                                len - off);
        off += n;
        err = HTTP_PARSER_ERRNO(&hc->parser);
        if (hc->h1_err_status) {
            fail(hc, hc->h1_err_status, hc->h1_err_text);
            return;
        }
        if (hc->h1_dead || sf_conn_is_closing(hc->conn))
            return;
        if (err == HPE_HEADER_OVERFLOW) {
            fail(hc, 431, "request header fields too large");
            return;
        }
        if (err != HPE_OK) {
            snprintf(text, sizeof text, "bad request: %s", http_errno_description(err));
            fail(hc, 400, text);
            return;
        }
        if (n == 0)
            break;
    }
}

void sf__h1s_on_timeout(sf__sconn_t *hc)
{
    if (hc->cur) {
        fail(hc, 408, "request timed out");
        return;
    }
    if (hc->nreqs == 0)
        sf_conn_close(hc->conn, SF_ETIMEDOUT);
}

void sf__h1s_on_drain(sf__sconn_t *hc)
{
    if (hc->h1_paused)
        after_progress(hc);
}

void sf__h1s_dispose(sf__sconn_t *hc)
{
    (void)hc;
}
