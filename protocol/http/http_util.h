/* statefun-c: Apache License 2.0.
 *
 * Small helpers shared by the server and client cores of the HTTP transport
 * (server.c, h1_server.c, h2_server.c, h1_client.c, h2_client.c): writing
 * bytes, decimal numbers and lower-cased names into space reserved
 * beforehand (no printf on the per-request paths), nghttp2 header entries,
 * the nghttp2_mem view of an sf_mem, and moving nghttp2's pending output into
 * a connection's gathered output buffer.
 *
 * Threading: no state of their own; loop thread of the objects passed.
 */
#ifndef SF_HTTP_UTIL_H
#define SF_HTTP_UTIL_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "sf_common.h"

/** Copies |n| bytes of |s| to |p|; returns the end. */
static inline char *sf__put_mem(char *p, const void *s, size_t n)
{
    if (n)
        memcpy(p, s, n);
    return p + n;
}

/** Copies |n| bytes of |s| to |p| with A-Z lowered; returns the end. */
static inline char *sf__put_lower(char *p, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    return p + n;
}

/** Writes |v| in decimal (at most 20 bytes) at |p|; returns the end. */
static inline char *sf__put_uint(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/** Fills one nghttp2 header entry; the bytes are borrowed (nghttp2 copies them). */
static inline void sf__nv_set(nghttp2_nv *nv, const void *name, size_t namelen,
                              const void *value, size_t valuelen)
{
    nv->name = (uint8_t *)name;
    nv->namelen = namelen;
    nv->value = (uint8_t *)value;
    nv->valuelen = valuelen;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/** Points |out| at |mem|'s functions (sf_mem is shaped like nghttp2_mem). */
static inline void sf__h2_mem_init(nghttp2_mem *out, const sf_mem *mem)
{
    out->mem_user_data = mem->mem_user_data;
    out->malloc = mem->malloc;
    out->free = mem->free;
    out->calloc = mem->calloc;
    out->realloc = mem->realloc;
}

/**
 * Appends everything |session| wants to send now (nghttp2_session_mem_send
 * until it returns 0) to |out|, the connection's output buffer; with |out|
 * NULL (the connection is closing) the bytes are dropped. Returns the bytes
 * appended, or SF_ENOMEM, or SF_EPROTO for any other nghttp2 failure.
 */
static inline ssize_t sf__h2_send_into(nghttp2_session *session, sf_buf_t *out)
{
    const uint8_t *data;
    ssize_t n, total = 0;

    while ((n = nghttp2_session_mem_send(session, &data)) > 0) {
        if (!out)
            continue;
        if (sf_buf_append(out, data, (size_t)n) != 0)
            return SF_ENOMEM;
        total += n;
    }
    if (n < 0)
        return n == NGHTTP2_ERR_NOMEM ? SF_ENOMEM : SF_EPROTO;
    return total;
}

#endif /* SF_HTTP_UTIL_H */
