/* statefun-c: Apache License 2.0.
 *
 * The HTTP/1.1 client core: one request at a time per connection (no
 * pipelining), written straight into the connection's gathered output buffer,
 * and the response parsed with http-parser (HTTP_RESPONSE mode). Header
 * fields and values may arrive split across reads; the pieces are appended
 * to the request's response buffers. Interim 1xx responses are skipped, a
 * HEAD response has no body, and a response delimited by the end of the
 * connection is completed by sf__h1_eof.
 *
 * After a complete response the parser is paused: bytes following a response
 * with no request outstanding are a protocol error (the connection is
 * closed), and c->h1_close tells client.c whether the peer allowed reuse
 * (http_should_keep_alive: "Connection: close", HTTP/1.0 without keep-alive).
 *
 * Threading: loop thread only.
 */
#include "h1_client.h"
#include "http_util.h"

#include <string.h>
#include <strings.h>

static sf__hreq_t *current(sf__hconn_t *c)
{
    sf__hlist_t *n = sf__hlist_first(&c->active);
    return n ? sf_container_of(n, sf__hreq_t, link) : NULL;
}

static int room(sf__hreq_t *r, size_t more)
{
    size_t used = r->rhdata.len + r->rbody.len;
    return used + more > r->client->max_response ? SF_ETOOBIG : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    sf__hconn_t *c = p->data;
    sf__hreq_t *r = current(c);
    sf__hoff_t *h;
    int rv;

    if (!r)
        return 1;
    if ((rv = room(r, len)) != 0 || (rv = sf_buf_append(&r->rhdata, at, len)) != 0)
        goto fail;
    if (r->nrhdrs > 0 && !c->h1_in_value) {
        /* The rest of a name split across reads. */
        h = (sf__hoff_t *)r->rhdrs.base + r->nrhdrs - 1;
        h->name_len += (uint32_t)len;
        h->value_off = (uint32_t)r->rhdata.len;
        return 0;
    }
    if ((rv = sf_buf_reserve(&r->rhdrs, sizeof *h)) != 0)
        goto fail;
    h = (sf__hoff_t *)r->rhdrs.base + r->nrhdrs;
    h->name_off = (uint32_t)(r->rhdata.len - len);
    h->name_len = (uint32_t)len;
    h->value_off = (uint32_t)r->rhdata.len;
    h->value_len = 0;
    r->nrhdrs++;
    r->rhdrs.len += sizeof *h;
    c->h1_in_value = false;
    return 0;
fail:
    r->err = rv;
    return 1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    sf__hconn_t *c = p->data;
    sf__hreq_t *r = current(c);
    sf__hoff_t *h;
    int rv;

    if (!r || r->nrhdrs == 0)
        return 1;
    h = (sf__hoff_t *)r->rhdrs.base + r->nrhdrs - 1;
    if (!c->h1_in_value)
        h->value_off = (uint32_t)r->rhdata.len;
    if ((rv = room(r, len)) != 0 || (rv = sf_buf_append(&r->rhdata, at, len)) != 0) {
        r->err = rv;
        return 1;
    }
    h->value_len += (uint32_t)len;
    c->h1_in_value = true;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    sf__hconn_t *c = p->data;
    sf__hreq_t *r = current(c);

    if (!r)
        return -1;
    r->status = p->status_code;
    r->version = 1;
    /* A HEAD response announces a body it does not carry. */
    return r->head ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    sf__hconn_t *c = p->data;
    sf__hreq_t *r = current(c);
    int rv;

    if (!r)
        return 1;
    if ((rv = sf__hreq_add_body(r, (const uint8_t *)at, len)) != 0) {
        r->err = rv;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    sf__hconn_t *c = p->data;
    sf__hreq_t *r = current(c);

    if (!r)
        return 1;
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
        /* An interim response: the real one follows. */
        sf__hreq_reset_response(r);
        c->h1_in_value = false;
        return 0;
    }
    c->h1_done = true;
    c->h1_close = !http_should_keep_alive(p) || p->status_code == 101;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void sf__h1_init(sf__hconn_t *c)
{
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->h1_in_value = false;
    c->h1_done = false;
    c->h1_close = false;
}

/* Header fields we write ourselves, or that must not be sent by hand. */
static bool skip_header(const char *name, size_t len)
{
    return (len == 4 && strncasecmp(name, "host", 4) == 0) ||
           (len == 14 && strncasecmp(name, "content-length", 14) == 0) ||
           (len == 17 && strncasecmp(name, "transfer-encoding", 17) == 0);
}

int sf__h1_send(sf__hconn_t *c, sf__hreq_t *r)
{
    const sf__hoff_t *h = sf__hreq_hdrs(r);
    const char *base = (const char *)r->data.base;
    size_t pathlen = strlen(r->path), authlen = strlen(r->authority), i, need;
    sf_buf_t *out;
    char *p;
    int rv;

    if (!c->conn || !(out = sf_conn_out_buf(c->conn)))
        return SF_ECONNRESET;
    sf__h1_init(c);
    /* 64 covers the fixed text: " HTTP/1.1\r\nHost: ", "Content-Length: "
     * with 20 digits, and the line ends. */
    need = r->method_len + pathlen + authlen + r->body_len + 64;
    for (i = 0; i < r->nhdrs; i++)
        need += h[i].name_len + h[i].value_len + 4;
    if ((rv = sf_buf_reserve(out, need)) != 0)
        return rv;
    p = (char *)out->base + out->len;
    p = sf__put_mem(p, base, r->method_len);
    p = sf__put_mem(p, " ", 1);
    p = sf__put_mem(p, r->path, pathlen);
    p = sf__put_mem(p, " HTTP/1.1\r\nHost: ", 17);
    p = sf__put_mem(p, r->authority, authlen);
    p = sf__put_mem(p, "\r\n", 2);
    for (i = 0; i < r->nhdrs; i++) {
        if (skip_header(base + h[i].name_off, h[i].name_len))
            continue;
        p = sf__put_mem(p, base + h[i].name_off, h[i].name_len);
        p = sf__put_mem(p, ": ", 2);
        p = sf__put_mem(p, base + h[i].value_off, h[i].value_len);
        p = sf__put_mem(p, "\r\n", 2);
    }
    if (r->body_len > 0 || !(r->head || (r->method_len == 3 && memcmp(base, "GET", 3) == 0))) {
        p = sf__put_mem(p, "Content-Length: ", 16);
        p = sf__put_uint(p, r->body_len);
        p = sf__put_mem(p, "\r\n", 2);
    }
    p = sf__put_mem(p, "\r\n", 2);
    p = sf__put_mem(p, r->data.base + r->body_off, r->body_len);
    out->len = (size_t)((uint8_t *)p - out->base);
    r->version = 1;
    sf_conn_schedule_flush(c->conn);
    return 0;
}

int sf__h1_recv(sf__hconn_t *c, const uint8_t *data, size_t len)
{
    sf__hreq_t *r = current(c);
    size_t n;
    enum http_errno e;

    if (!r)
        return SF_EPROTO; /* bytes nobody asked for */
    r->got_response = true;
    n = http_parser_execute(&c->parser, &settings, (const char *)data, len);
    e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->h1_done) {
        http_parser_pause(&c->parser, 0);
        c->nserved++;
        sf__hreq_finish(r, 0);
        /* http-parser stops on the byte after the message; anything left is
         * a second response nobody asked for. */
        if (n < len)
            return SF_EPROTO;
        return 0;
    }
    if (e != HPE_OK)
        return r->err ? r->err : SF_EPROTO;
    return 0;
}

int sf__h1_eof(sf__hconn_t *c)
{
    sf__hreq_t *r = current(c);

    if (!r || !r->got_response)
        return SF_ECONNRESET;
    /* A response without a length ends with the connection. */
    http_parser_execute(&c->parser, &settings, NULL, 0);
    if (c->h1_done) {
        http_parser_pause(&c->parser, 0);
        c->nserved++;
        c->h1_close = true;
        sf__hreq_finish(r, 0);
        return 0;
    }
    return HTTP_PARSER_ERRNO(&c->parser) != HPE_OK ? SF_EPROTO : SF_ECONNRESET;
}
