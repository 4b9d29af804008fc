/* statefun-c: Apache License 2.0.
 *
 * The crash test's blocking HTTP/1.1 client (see crash_http.h). Runs on the
 * thread that owns the connection.
 */
#include "crash_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What the parser callbacks collect. */
typedef struct {
    sf_crash_http_resp_t *resp;
    size_t cap;
    bool in_offset_header; /* the last header field was X-Statefun-Offset */
    char offset_text[32];
    size_t offset_len;
    bool complete;
    bool keep_alive;
    bool failed; /* out of memory */
} parse_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void disconnect(sf_crash_http_t *c)
{
    if (c->_fd >= 0)
        close(c->_fd);
    c->_fd = -1;
}

void sf_crash_http_init(sf_crash_http_t *c, uint16_t port)
{
    c->port = port;
    c->_fd = -1;
}

void sf_crash_http_dispose(sf_crash_http_t *c)
{
    disconnect(c);
}

void sf_crash_http_resp_dispose(sf_crash_http_resp_t *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

/* A kept-alive connection is usable when it has nothing to read: readable
 * means the server closed it (EOF or reset) or sent something unasked. */
static bool still_open(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

static int connect_to(uint16_t port, int timeout_ms)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Bounds a blocking connect (and nothing else: reads and writes poll). */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    parse_t *st = p->data;
    static const char name[] = "x-statefun-offset";
    st->in_offset_header = len == sizeof name - 1 && strncasecmp(at, name, len) == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    parse_t *st = p->data;
    if (st->in_offset_header && st->offset_len + len < sizeof st->offset_text) {
        memcpy(st->offset_text + st->offset_len, at, len);
        st->offset_len += len;
        st->offset_text[st->offset_len] = '\0';
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    parse_t *st = p->data;
    sf_crash_http_resp_t *r = st->resp;
    if (r->body_len + len + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        char *b;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        if (!(b = realloc(r->body, cap))) {
            st->failed = true;
            return 1;
        }
        r->body = b;
        st->cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    parse_t *st = p->data;
    st->complete = true;
    st->resp->status = (int)p->status_code;
    st->keep_alive = http_should_keep_alive(p) != 0;
    return 1; /* stop: one response per request */
}

/* Writes all of |len| bytes before |deadline|. 0, or -1 when not all went out. */
static int write_all(int fd, const char *data, size_t len, int64_t deadline)
{
    while (len > 0) {
        struct pollfd p = {fd, POLLOUT, 0};
        int64_t left = deadline - now_ms();
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

sf_crash_http_outcome sf_crash_http_request(sf_crash_http_t *c, const char *method,
                                            const char *path, const char *content_type,
                                            const void *body, size_t len, int timeout_ms,
                                            sf_crash_http_resp_t *resp)
{
    int64_t deadline = now_ms() + timeout_ms;
    http_parser_settings settings;
    http_parser parser;
    parse_t st;
    char head[1024];
    int hlen;

    memset(resp, 0, sizeof *resp);
    resp->offset = -1;
    if (c->_fd >= 0 && !still_open(c->_fd))
        disconnect(c);
    if (c->_fd < 0 && (c->_fd = connect_to(c->port, timeout_ms)) < 0)
        return SF_CRASH_HTTP_NOT_SENT;
    if (body && content_type)
        hlen = snprintf(head, sizeof head,
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Type: %s\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        method, path, c->port, content_type, len);
    else
        hlen = snprintf(head, sizeof head,
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: %zu\r\n\r\n",
                        method, path, c->port, body ? len : (size_t)0);
    if (hlen < 0 || (size_t)hlen >= sizeof head ||
        write_all(c->_fd, head, (size_t)hlen, deadline) ||
        (body && len && write_all(c->_fd, body, len, deadline))) {
        /* Not written whole: the server cannot have taken it as a request. */
        disconnect(c);
        return SF_CRASH_HTTP_NOT_SENT;
    }

    memset(&settings, 0, sizeof settings);
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    memset(&st, 0, sizeof st);
    st.resp = resp;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &st;
    while (!st.complete) {
        char buf[16384];
        struct pollfd p = {c->_fd, POLLIN, 0};
        int64_t left = deadline - now_ms();
        ssize_t n;
        size_t used;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = recv(c->_fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            /* EOF ends a response that has neither a length nor chunks. */
            http_parser_execute(&parser, &settings, NULL, 0);
            st.keep_alive = false;
            break;
        }
        if (n < 0)
            break;
        used = http_parser_execute(&parser, &settings, buf, (size_t)n);
        if (st.failed || (!st.complete && used != (size_t)n) ||
            HTTP_PARSER_ERRNO(&parser) != HPE_OK)
            break;
        /* Bytes after the response would be unasked for: drop the connection. */
        if (st.complete && used != (size_t)n)
            st.keep_alive = false;
    }
    if (!st.complete) {
        sf_crash_http_resp_dispose(resp);
        disconnect(c);
        return SF_CRASH_HTTP_UNKNOWN;
    }
    if (!resp->body) {
        /* Always a string, even for an empty body. */
        resp->body = calloc(1, 1);
    }
    if (st.offset_len)
        resp->offset = strtoll(st.offset_text, NULL, 10);
    if (!st.keep_alive)
        disconnect(c);
    return SF_CRASH_HTTP_DONE;
}
