/* statefun-c: Apache License 2.0.
 *
 * Endpoint URL parsing (sf_http_url_parse). The TCP forms (http://, https://)
 * are split by http-parser's http_parser_parse_url; the UNIX socket forms
 * (http+unix://, https+unix://) follow StateFun's UnixDomainHttpEndpoint: the
 * URL path is cut into segments, the socket path runs up to and including the
 * first segment ending in ".sock", and the segments after it are the request
 * path ("/" when there are none). Empty segments ("//") are dropped, as Java's
 * Paths.get does. Unlike StateFun we keep the query string on the request
 * path, and we reject a non-empty authority ("http+unix://host/x.sock") that
 * StateFun would silently ignore.
 *
 * Pure functions, no I/O: callable from any thread.
 */
#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sf_http.h"

/* The longest path a sockaddr_un can carry (sun_path is 108 bytes with NUL). */
#define UNIX_PATH_MAX_LEN 107

static bool has_prefix_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

/*
 * Appends |len| bytes of |s| to |b|, decoding %XX escapes (the socket path is
 * a file name, so "%20" must become a space, as Java's URI.getPath does).
 * Returns 0, SF_EINVAL for a broken escape or an embedded NUL, or SF_ENOMEM.
 */
static int append_decoded(sf_buf_t *b, const char *s, size_t len)
{
    ssize_t n;
    int rv;
    if ((rv = sf_buf_reserve(b, len)) != 0)
        return rv;
    n = sf_pct_decode(s, len, (char *)b->base + b->len);
    if (n < 0 || memchr(b->base + b->len, '\0', (size_t)n))
        return SF_EINVAL;
    b->len += (size_t)n;
    return 0;
}

void sf_http_url_dispose(sf_http_url_t *url, const sf_mem *mem)
{
    if (!url)
        return;
    sf_mem_free(mem, url->host);
    sf_mem_free(mem, url->unix_path);
    sf_mem_free(mem, url->path);
    sf_mem_free(mem, url->authority);
    sf_mem_free(mem, url->origin_key);
    memset(url, 0, sizeof *url);
}

/* Copies the NUL-terminated contents of |b| into a fresh string in |*out|. */
static int buf_to_str(sf_buf_t *b, const sf_mem *mem, char **out)
{
    *out = sf_mem_strndup(mem, b->len ? (const char *)b->base : "", b->len);
    return *out ? 0 : SF_ENOMEM;
}

static int parse_unix(const char *url, size_t len, size_t skip, const sf_mem *mem,
                      sf_http_url_t *out)
{
    const char *p = url + skip, *end = url + len, *q, *hash;
    const char *seg, *seg_end, *path_end;
    sf_buf_t sock, path;
    bool found = false;
    int rv = SF_EINVAL;

    sf_buf_init(&sock, mem);
    sf_buf_init(&path, mem);

    /* The fragment never reaches the server; the query stays with the path. */
    hash = memchr(p, '#', (size_t)(end - p));
    if (hash)
        end = hash;
    q = memchr(p, '?', (size_t)(end - p));
    path_end = q ? q : end;
    /* An authority (anything before the first '/') is not supported. */
    if (p == path_end || *p != '/')
        goto out;

    for (seg = p; seg < path_end; seg = seg_end) {
        while (seg < path_end && *seg == '/')
            seg++;
        if (seg == path_end)
            break;
        seg_end = memchr(seg, '/', (size_t)(path_end - seg));
        if (!seg_end)
            seg_end = path_end;
        if (!found) {
            if ((rv = sf_buf_append(&sock, "/", 1)) != 0 ||
                (rv = append_decoded(&sock, seg, (size_t)(seg_end - seg))) != 0)
                goto out;
            rv = SF_EINVAL;
            if (seg_end - seg >= 5 && memcmp(seg_end - 5, ".sock", 5) == 0)
                found = true;
        } else {
            if ((rv = sf_buf_append(&path, "/", 1)) != 0 ||
                (rv = sf_buf_append(&path, seg, (size_t)(seg_end - seg))) != 0)
                goto out;
        }
    }
    rv = SF_EINVAL;
    if (!found || sock.len > UNIX_PATH_MAX_LEN)
        goto out;
    /* A trailing slash after the socket keeps its meaning ("/fn/" != "/fn"). */
    if (path.len > 0 && path_end[-1] == '/' && (rv = sf_buf_append(&path, "/", 1)) != 0)
        goto out;
    if (path.len == 0 && (rv = sf_buf_append(&path, "/", 1)) != 0)
        goto out;
    if (q && (rv = sf_buf_append(&path, q, (size_t)(end - q))) != 0)
        goto out;

    if ((rv = buf_to_str(&sock, mem, &out->unix_path)) != 0 ||
        (rv = buf_to_str(&path, mem, &out->path)) != 0)
        goto out;
    out->authority = sf_mem_strndup(mem, "localhost", 9);
    sf_buf_reset(&sock);
    if (!out->authority ||
        (rv = sf_buf_appendf(&sock, "%s://%s", out->tls ? "https+unix" : "http+unix",
                             out->unix_path)) != 0 ||
        (rv = buf_to_str(&sock, mem, &out->origin_key)) != 0) {
        rv = SF_ENOMEM;
        goto out;
    }
    rv = 0;
out:
    sf_buf_dispose(&sock);
    sf_buf_dispose(&path);
    return rv;
}

static int parse_tcp(const char *url, size_t len, const sf_mem *mem, sf_http_url_t *out)
{
    struct http_parser_url u;
    const char *host;
    size_t hostlen;
    bool ipv6, default_port;
    sf_buf_t b;
    int rv = SF_EINVAL;

    sf_buf_init(&b, mem);
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0)
        goto out;
    if (!(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)))
        goto out;
    host = url + u.field_data[UF_HOST].off;
    hostlen = u.field_data[UF_HOST].len;
    if (hostlen == 0)
        goto out;
    /* http-parser strips the brackets of an IPv6 literal. */
    ipv6 = memchr(host, ':', hostlen) != NULL;
    if (u.field_set & (1 << UF_PORT)) {
        if (u.port == 0)
            goto out;
        out->port = u.port;
    } else {
        out->port = out->tls ? 443 : 80;
    }
    default_port = out->port == (out->tls ? 443 : 80);

    rv = SF_ENOMEM;
    if (!(out->host = sf_mem_strndup(mem, host, hostlen)))
        goto out;

    if (u.field_set & (1 << UF_PATH)) {
        if ((rv = sf_buf_append(&b, url + u.field_data[UF_PATH].off,
                                u.field_data[UF_PATH].len)) != 0)
            goto out;
    } else if ((rv = sf_buf_append(&b, "/", 1)) != 0) {
        goto out;
    }
    if ((u.field_set & (1 << UF_QUERY)) &&
        ((rv = sf_buf_append(&b, "?", 1)) != 0 ||
         (rv = sf_buf_append(&b, url + u.field_data[UF_QUERY].off,
                             u.field_data[UF_QUERY].len)) != 0))
        goto out;
    if ((rv = buf_to_str(&b, mem, &out->path)) != 0)
        goto out;

    sf_buf_reset(&b);
    if ((rv = sf_buf_appendf(&b, ipv6 ? "[%.*s]" : "%.*s", (int)hostlen, host)) != 0 ||
        (!default_port && (rv = sf_buf_appendf(&b, ":%u", (unsigned)out->port)) != 0) ||
        (rv = buf_to_str(&b, mem, &out->authority)) != 0)
        goto out;

    sf_buf_reset(&b);
    if ((rv = sf_buf_appendf(&b, ipv6 ? "%s://[%.*s]:%u" : "%s://%.*s:%u",
                             out->tls ? "https" : "http", (int)hostlen, host,
                             (unsigned)out->port)) != 0 ||
        (rv = buf_to_str(&b, mem, &out->origin_key)) != 0)
        goto out;
    /* Host names are case-insensitive: key the pools on the lower-case form. */
    for (char *c = out->origin_key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    rv = 0;
out:
    sf_buf_dispose(&b);
    return rv;
}

int sf_http_url_parse(const char *url, const sf_mem *mem, sf_http_url_t *out)
{
    size_t len;
    int rv;

    if (!out)
        return SF_EINVAL;
    memset(out, 0, sizeof *out);
    if (!url)
        return SF_EINVAL;
    len = strlen(url);
    for (size_t i = 0; i < len; i++) {
        /* No control characters or spaces anywhere in a URL. */
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return SF_EINVAL;
    }

    if (has_prefix_ci(url, len, "http+unix://")) {
        out->scheme = SF_HTTP_SCHEME_HTTP;
        out->tls = false;
        rv = parse_unix(url, len, strlen("http+unix://"), mem, out);
    } else if (has_prefix_ci(url, len, "https+unix://")) {
        out->scheme = SF_HTTP_SCHEME_HTTPS;
        out->tls = true;
        rv = parse_unix(url, len, strlen("https+unix://"), mem, out);
    } else if (has_prefix_ci(url, len, "http://")) {
        out->scheme = SF_HTTP_SCHEME_HTTP;
        out->tls = false;
        rv = parse_tcp(url, len, mem, out);
    } else if (has_prefix_ci(url, len, "https://")) {
        out->scheme = SF_HTTP_SCHEME_HTTPS;
        out->tls = true;
        rv = parse_tcp(url, len, mem, out);
    } else {
        return SF_EINVAL;
    }
    if (rv != 0)
        sf_http_url_dispose(out, mem);
    return rv;
}
