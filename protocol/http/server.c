/* statefun-c: Apache License 2.0.
 *
 * The HTTP server of sf_http.h: one listener (TCP or UNIX socket), optional
 * TLS, and per connection the choice between HTTP/1.1 (h1_server.c) and
 * HTTP/2 (h2_server.c): by ALPN under TLS, otherwise by the first bytes
 * (the HTTP/2 client preface means prior-knowledge h2c). Also the request
 * objects (free list, accessors) and sf_http_respond.
 *
 * The listening socket is created with plain socket/bind/listen calls before
 * any libuv handle exists, so a failed sf_http_server_new leaves nothing
 * behind on the loop.
 *
 * Threading: loop thread only.
 */
#include "server.h"
#include "http_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define DEFAULT_MAX_BODY_BYTES (4 * 1024 * 1024)
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_READ_TIMEOUT_MS 10000
#define DEFAULT_H2_MAX_STREAMS 256
/* Recycled requests kept per server, and the buffer size beyond which a
 * request's buffers are released instead of kept. */
#define FREE_REQS_MAX 1024
#define REQ_BUF_KEEP_MAX (64 * 1024)

static const uint8_t h2_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* ------------------------------------------------------------------------ */
/* Requests                                                                   */

sf_http_request_t *sf__sreq_get(sf__sconn_t *hc)
{
    sf_http_server_t *s = hc->server;
    sf_http_request_t *req = s->free_reqs;

    if (req) {
        s->free_reqs = req->next_free;
        s->nfree_reqs--;
    } else {
        req = sf_mem_calloc(s->mem, 1, sizeof *req);
        if (!req)
            return NULL;
        req->mem = s->mem;
        sf_buf_init(&req->meta, s->mem);
        sf_buf_init(&req->body, s->mem);
        sf_buf_init(&req->resp, s->mem);
    }
    req->hc = hc;
    req->user_data = s->user_data;
    req->prev = req->next = req->next_free = NULL;
    req->state = SF__SREQ_RECEIVING;
    req->version = 1;
    req->stream_id = 0;
    req->method_off = req->path_off = 0;
    req->has_method = req->has_path = false;
    req->nhdrs = 0;
    req->header_bytes = 0;
    req->keep_alive = req->close_after = req->head = req->discard = req->http10 = false;
    req->resp_done = req->reset_sent = false;
    req->discarded = 0;
    req->err_status = 0;
    req->err_text = NULL;
    req->resp_body_off = req->resp_sent = 0;
    sf_buf_reset(&req->meta);
    sf_buf_reset(&req->body);
    sf_buf_reset(&req->resp);
    return req;
}

static void req_free(sf_http_request_t *req)
{
    sf_buf_dispose(&req->meta);
    sf_buf_dispose(&req->body);
    sf_buf_dispose(&req->resp);
    sf_mem_free(req->mem, req->hdrs);
    sf_mem_free(req->mem, req->nva);
    sf_mem_free(req->mem, req);
}

static void trim_buf(sf_buf_t *b)
{
    if (b->cap > REQ_BUF_KEEP_MAX)
        sf_buf_dispose(b);
}

void sf__sreq_put(sf_http_request_t *req)
{
    sf_http_server_t *s = req->hc ? req->hc->server : NULL;

    if (!s || s->closing || s->nfree_reqs >= FREE_REQS_MAX) {
        req_free(req);
        return;
    }
    trim_buf(&req->meta);
    trim_buf(&req->body);
    trim_buf(&req->resp);
    req->hc = NULL;
    req->next_free = s->free_reqs;
    s->free_reqs = req;
    s->nfree_reqs++;
}

void sf__sreq_link(sf__sconn_t *hc, sf_http_request_t *req)
{
    req->prev = hc->req_tail;
    req->next = NULL;
    if (hc->req_tail)
        hc->req_tail->next = req;
    else
        hc->req_head = req;
    hc->req_tail = req;
    hc->nreqs++;
}

void sf__sreq_unlink(sf_http_request_t *req)
{
    sf__sconn_t *hc = req->hc;

    if (req->prev)
        req->prev->next = req->next;
    else
        hc->req_head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        hc->req_tail = req->prev;
    req->prev = req->next = NULL;
    hc->nreqs--;
}

int64_t sf__sreq_meta_add(sf_http_request_t *req, const void *s, size_t len)
{
    size_t off = req->meta.len;

    if (off + len + 1 > UINT32_MAX || sf_buf_reserve(&req->meta, len + 1) != 0)
        return -1;
    if (len)
        memcpy(req->meta.base + off, s, len);
    req->meta.base[off + len] = '\0';
    req->meta.len += len + 1;
    return (int64_t)off;
}

int sf__sreq_hdr_reserve(sf_http_request_t *req)
{
    sf__shdr_t *h;
    uint32_t cap;

    if (req->nhdrs < req->hdrs_cap)
        return 0;
    cap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;
    h = sf_mem_realloc(req->mem, req->hdrs, cap * sizeof *h);
    if (!h)
        return -1;
    req->hdrs = h;
    req->hdrs_cap = cap;
    return 0;
}

void sf__sreq_dispatch(sf_http_request_t *req)
{
    sf_http_server_t *s = req->hc->server;

    req->state = SF__SREQ_DISPATCHED;
    s->cb(req, s->user_data);
}

bool sf__srv_hop_header(const char *name, size_t len)
{
    static const char *const names[] = {"content-length", "connection", "transfer-encoding",
                                        "keep-alive",     "upgrade",    "proxy-connection",
                                        "http2-settings"};
    size_t i;

    for (i = 0; i < SF_ARRAY_SIZE(names); i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return true;
    return false;
}

const char *sf_http_request_method(const sf_http_request_t *req)
{
    return req->has_method ? (const char *)req->meta.base + req->method_off : "";
}

const char *sf_http_request_path(const sf_http_request_t *req)
{
    return req->has_path ? (const char *)req->meta.base + req->path_off : "";
}

int sf_http_request_version(const sf_http_request_t *req)
{
    return req->version;
}

static const char *find_header(const sf_http_request_t *req, const char *name, size_t nlen,
                               size_t *len)
{
    uint32_t i;

    for (i = 0; i < req->nhdrs; i++) {
        const sf__shdr_t *h = &req->hdrs[i];
        if (h->name_len == nlen &&
            strncasecmp((const char *)req->meta.base + h->name_off, name, nlen) == 0) {
            if (len)
                *len = h->value_len;
            return (const char *)req->meta.base + h->value_off;
        }
    }
    return NULL;
}

const char *sf_http_request_header(const sf_http_request_t *req, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    const char *v = find_header(req, name, nlen, len);

    /* HTTP/2 carries the host in the :authority pseudo-header. */
    if (!v && req->version == 2 && nlen == 4 && strcasecmp(name, "host") == 0)
        v = find_header(req, ":authority", 10, len);
    if (!v && len)
        *len = 0;
    return v;
}

const uint8_t *sf_http_request_body(const sf_http_request_t *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.base ? req->body.base : (const uint8_t *)"";
}

void *sf_http_request_user_data(const sf_http_request_t *req)
{
    return req->user_data;
}

int sf_http_respond(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                    size_t nheaders, const void *body, size_t body_len)
{
    SF_ASSERT(req->state == SF__SREQ_DISPATCHED);
    if (status < 100 || status > 999)
        status = 500;
    if (!req->hc || sf_conn_is_closing(req->hc->conn) || req->hc->server->closing) {
        if (req->hc) {
            if (req->version == 2 && req->hc->session)
                nghttp2_session_set_stream_user_data(req->hc->session, req->stream_id, NULL);
            sf__sreq_unlink(req);
        }
        sf__sreq_put(req);
        return SF_ECONNRESET;
    }
    if (req->version == 2)
        return sf__h2s_respond(req, status, headers, nheaders, body, body_len);
    return sf__h1s_respond(req, status, headers, nheaders, body, body_len);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                                */

static void server_maybe_free(sf_http_server_t *s);

static void hc_on_open(sf_conn_t *conn, int status)
{
    sf__sconn_t *hc = conn->data;
    const char *alpn;

    hc->conn = conn;
    if (status != 0)
        return; /* on_close follows */
    alpn = sf_conn_alpn(conn);
    if (alpn && strcmp(alpn, "h2") == 0) {
        hc->proto = SF__SPROTO_H2;
        if (sf__h2s_start(hc) != 0)
            sf_conn_abort(conn, SF_ENOMEM);
        return;
    }
    if (alpn && strcmp(alpn, "http/1.1") == 0) {
        hc->proto = SF__SPROTO_H1;
        sf__h1s_start(hc);
        return;
    }
    /* Plaintext or no ALPN: the first bytes decide. */
    sf_conn_set_timeout(conn, hc->server->idle_timeout_ms);
}

static void feed(sf__sconn_t *hc, const uint8_t *data, size_t len)
{
    if (len == 0)
        return;
    if (hc->proto == SF__SPROTO_H2)
        sf__h2s_on_read(hc, data, len);
    else
        sf__h1s_on_read(hc, data, len);
}

static void hc_on_read(sf_conn_t *conn, const uint8_t *data, size_t len)
{
    sf__sconn_t *hc = conn->data;
    size_t take, i;

    if (hc->proto != SF__SPROTO_SNIFF) {
        feed(hc, data, len);
        return;
    }
    take = sizeof h2_preface - hc->sniff_len;
    if (take > len)
        take = len;
    for (i = 0; i < take; i++)
        if (data[i] != h2_preface[hc->sniff_len + i])
            break;
    if (i == take && hc->sniff_len + take < sizeof h2_preface) {
        /* A prefix of the preface so far: wait for more. */
        memcpy(hc->sniff + hc->sniff_len, data, take);
        hc->sniff_len += take;
        sf_conn_set_timeout(conn, hc->server->read_timeout_ms);
        return;
    }
    if (i == take) {
        hc->proto = SF__SPROTO_H2;
        if (sf__h2s_start(hc) != 0) {
            sf_conn_abort(conn, SF_ENOMEM);
            return;
        }
    } else {
        hc->proto = SF__SPROTO_H1;
        sf__h1s_start(hc);
    }
    feed(hc, hc->sniff, hc->sniff_len);
    hc->sniff_len = 0;
    if (!sf_conn_is_closing(conn))
        feed(hc, data, len);
}

static void hc_on_timeout(sf_conn_t *conn)
{
    sf__sconn_t *hc = conn->data;

    switch (hc->proto) {
    case SF__SPROTO_H1:
        sf__h1s_on_timeout(hc);
        break;
    case SF__SPROTO_H2:
        sf__h2s_on_timeout(hc);
        break;
    default:
        sf_conn_close(conn, SF_ETIMEDOUT);
        break;
    }
}

static void hc_on_drain(sf_conn_t *conn)
{
    sf__sconn_t *hc = conn->data;

    if (hc->proto == SF__SPROTO_H1)
        sf__h1s_on_drain(hc);
    else if (hc->proto == SF__SPROTO_H2)
        sf__h2s_on_drain(hc);
}

static void hc_on_close(sf_conn_t *conn, int reason)
{
    sf__sconn_t *hc = conn->data;
    sf_http_server_t *s = hc->server;
    sf_http_request_t *req, *next;

    (void)reason;
    if (hc->cur) {
        sf__sreq_put(hc->cur);
        hc->cur = NULL;
    }
    /* Requests the application holds are detached; the others go. */
    for (req = hc->req_head; req; req = next) {
        next = req->next;
        req->prev = req->next = NULL;
        if (req->state == SF__SREQ_DISPATCHED) {
            req->hc = NULL;
        } else {
            sf__sreq_put(req);
        }
    }
    hc->req_head = hc->req_tail = NULL;
    hc->nreqs = 0;
    if (hc->proto == SF__SPROTO_H2)
        sf__h2s_dispose(hc);
    else if (hc->proto == SF__SPROTO_H1)
        sf__h1s_dispose(hc);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        s->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    s->nconns--;
    sf_mem_free(s->mem, hc);
    if (s->closing) {
        s->pending_closes--;
        server_maybe_free(s);
    }
}

static const sf_conn_callbacks_t hc_callbacks = {
    .on_open = hc_on_open,
    .on_read = hc_on_read,
    .on_timeout = hc_on_timeout,
    .on_drain = hc_on_drain,
    .on_close = hc_on_close,
};

static void on_connection(uv_stream_t *listener, int status)
{
    sf_http_server_t *s = listener->data;
    sf__sconn_t *hc;
    sf_conn_t *conn;

    if (status < 0 || s->closing)
        return;
    hc = sf_mem_calloc(s->mem, 1, sizeof *hc);
    if (!hc) {
        /* Out of memory: the connection stays in the backlog, and libuv
         * stops polling the listener until the next accept succeeds. */
        return;
    }
    hc->server = s;
    hc->next = s->conns;
    if (s->conns)
        s->conns->prev = hc;
    s->conns = hc;
    s->nconns++;
    if (sf_conn_accept(listener, s->tls, &hc_callbacks, hc, s->mem, &conn) != 0) {
        s->conns = hc->next;
        if (s->conns)
            s->conns->prev = NULL;
        s->nconns--;
        sf_mem_free(s->mem, hc);
        return;
    }
    hc->conn = conn;
    /* The TLS handshake must complete within the read timeout. */
    if (s->tls)
        sf_conn_set_timeout(conn, s->read_timeout_ms);
}

/* ------------------------------------------------------------------------ */
/* Server                                                                     */

static int errno_to_sf(int e)
{
    switch (e) {
    case EADDRINUSE:
        return SF_EEXIST;
    case ENOMEM:
    case ENOBUFS:
        return SF_ENOMEM;
    case EADDRNOTAVAIL:
    case EINVAL:
    case ENAMETOOLONG:
        return SF_EINVAL;
    default:
        return SF_EIO;
    }
}

/* Creates, binds and listens on a socket; returns the fd or a negative SF_E*. */
static int open_listener(const sf_http_server_config_t *c, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd, one = 1, e;

    memset(&ss, 0, sizeof ss);
    if (c->unix_path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        size_t n = strlen(c->unix_path);
        if (n == 0 || n >= sizeof un->sun_path)
            return SF_EINVAL;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, c->unix_path, n + 1);
        sslen = sizeof *un;
    } else {
        const char *host = c->host ? c->host : "0.0.0.0";
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (strcmp(host, "localhost") == 0)
            host = "127.0.0.1";
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons(c->port);
            sslen = sizeof *in4;
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(c->port);
            sslen = sizeof *in6;
        } else {
            return SF_EINVAL;
        }
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_to_sf(errno);
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 511) != 0) {
        e = errno;
        close(fd);
        return errno_to_sf(e);
    }
    *port = 0;
    if (ss.ss_family != AF_UNIX) {
        sslen = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
            *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

int sf_http_server_new(uv_loop_t *loop, const sf_http_server_config_t *config,
                       sf_http_request_cb cb, void *user_data, sf_http_server_t **out)
{
    const sf_mem *mem;
    sf_http_server_t *s;
    int rv, fd = -1;

    if (!loop || !config || !cb || !out)
        return SF_EINVAL;
    if ((config->tls_cert_file == NULL) != (config->tls_key_file == NULL))
        return SF_EINVAL;
    mem = config->mem ? config->mem : sf_mem_default();
    s = sf_mem_calloc(mem, 1, sizeof *s);
    if (!s)
        return SF_ENOMEM;
    s->loop = loop;
    s->mem = mem;
    sf__h2_mem_init(&s->h2mem, mem);
    s->cb = cb;
    s->user_data = user_data;
    s->max_header_bytes =
        config->max_header_bytes ? config->max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    s->max_body_bytes = config->max_body_bytes ? config->max_body_bytes : DEFAULT_MAX_BODY_BYTES;
    s->idle_timeout_ms =
        config->idle_timeout_ms ? config->idle_timeout_ms : DEFAULT_IDLE_TIMEOUT_MS;
    s->read_timeout_ms =
        config->read_timeout_ms ? config->read_timeout_ms : DEFAULT_READ_TIMEOUT_MS;
    s->h2_max_concurrent_streams = config->h2_max_concurrent_streams
                                       ? config->h2_max_concurrent_streams
                                       : DEFAULT_H2_MAX_STREAMS;
    sf__h1s_settings_init(&s->h1settings);
    if ((rv = sf__h2s_callbacks_new(&s->h2cbs)) != 0)
        goto fail_server;
    if (config->tls_cert_file) {
        rv = sf_tls_server_ctx_new(config->tls_cert_file, config->tls_key_file, NULL, &s->tls);
        if (rv != 0)
            goto fail_callbacks;
    }
    if (config->unix_path) {
        s->is_unix = true;
        s->unix_path = sf_mem_strndup(mem, config->unix_path, strlen(config->unix_path));
        if (!s->unix_path) {
            rv = SF_ENOMEM;
            goto fail_tls;
        }
    }
    fd = open_listener(config, &s->port);
    if (fd < 0) {
        rv = fd;
        goto fail_path;
    }
    /* From here on nothing can fail: the handle exists only on success. */
    if (s->is_unix) {
        SF_ASSERT(uv_pipe_init(loop, &s->listener.pipe, 0) == 0);
        SF_ASSERT(uv_pipe_open(&s->listener.pipe, fd) == 0);
    } else {
        SF_ASSERT(uv_tcp_init(loop, &s->listener.tcp) == 0);
        SF_ASSERT(uv_tcp_open(&s->listener.tcp, fd) == 0);
    }
    s->listener.handle.data = s;
    rv = uv_listen(&s->listener.stream, 511, on_connection);
    SF_ASSERT(rv == 0);
    *out = s;
    return SF_OK;

fail_path:
    sf_mem_free(mem, s->unix_path);
fail_tls:
    sf_tls_ctx_free(s->tls);
fail_callbacks:
    nghttp2_session_callbacks_del(s->h2cbs);
fail_server:
    sf_mem_free(mem, s);
    return rv;
}

uint16_t sf_http_server_port(const sf_http_server_t *server)
{
    return server->port;
}

static void server_maybe_free(sf_http_server_t *s)
{
    sf_http_request_t *req;
    sf_http_server_close_cb cb;
    void *ud;

    if (s->pending_closes > 0)
        return;
    while ((req = s->free_reqs) != NULL) {
        s->free_reqs = req->next_free;
        req_free(req);
    }
    if (s->unix_path) {
        unlink(s->unix_path);
        sf_mem_free(s->mem, s->unix_path);
    }
    sf_tls_ctx_free(s->tls);
    nghttp2_session_callbacks_del(s->h2cbs);
    cb = s->close_cb;
    ud = s->close_ud;
    /* Everything is released; the callback sees |s| only as an identity. */
    if (cb)
        cb(s, ud);
    sf_mem_free(s->mem, s);
}

static void on_listener_closed(uv_handle_t *h)
{
    sf_http_server_t *s = h->data;
    s->pending_closes--;
    server_maybe_free(s);
}

void sf_http_server_close(sf_http_server_t *server, sf_http_server_close_cb cb, void *user_data)
{
    sf__sconn_t *hc;

    if (server->closing)
        return;
    server->closing = true;
    server->close_cb = cb;
    server->close_ud = user_data;
    server->pending_closes = 1 + (int)server->nconns;
    uv_close(&server->listener.handle, on_listener_closed);
    for (hc = server->conns; hc; hc = hc->next)
        sf_conn_abort(hc->conn, SF_ECANCELED);
}
