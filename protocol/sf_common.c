/* statefun-c: Apache License 2.0.
 *
 * Error texts, the default allocator, the byte buffer and panics.
 */
#include "sf_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

const char *sf_strerror(int err)
{
    switch (err) {
    case SF_OK: return "success";
    case SF_EINVAL: return "invalid argument";
    case SF_ENOMEM: return "out of memory";
    case SF_EPROTO: return "protocol error";
    case SF_ETIMEDOUT: return "timed out";
    case SF_ECONNREFUSED: return "connection refused";
    case SF_ECONNRESET: return "connection reset by peer";
    case SF_ETLS: return "TLS error";
    case SF_ETOOBIG: return "size limit exceeded";
    case SF_ENOTFOUND: return "not found";
    case SF_EIO: return "I/O error";
    case SF_ECANCELED: return "canceled";
    case SF_ESTATE: return "state backend error";
    case SF_EEXIST: return "already exists";
    case SF_EUNSUPPORTED: return "not supported";
    case SF_EFUNCTION: return "function failed";
    default: return err <= SF_EFATAL ? "fatal error" : "unknown error";
    }
}

int sf_err_from_uv(int st)
{
    if (st >= 0)
        return SF_OK;
    switch (st) {
    case UV_ENOMEM: return SF_ENOMEM;
    case UV_ETIMEDOUT: return SF_ETIMEDOUT;
    case UV_ECONNREFUSED: case UV_ENOENT: return SF_ECONNREFUSED;
    case UV_ECONNRESET: case UV_EOF: case UV_EPIPE: case UV_ECONNABORTED: return SF_ECONNRESET;
    case UV_ECANCELED: return SF_ECANCELED;
    case UV_EINVAL: return SF_EINVAL;
    case UV_EADDRINUSE: return SF_EEXIST;
    case UV_EAI_NONAME: return SF_ENOTFOUND;
    default: return SF_EIO;
    }
}

static void *def_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void def_free(void *p, void *ud) { (void)ud; free(p); }
static void *def_calloc(size_t m, size_t n, void *ud) { (void)ud; return calloc(m, n); }
static void *def_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }

static const sf_mem default_mem = {NULL, def_malloc, def_free, def_calloc, def_realloc};

const sf_mem *sf_mem_default(void) { return &default_mem; }

void *sf_mem_malloc(const sf_mem *mem, size_t size)
{
    if (!mem)
        mem = &default_mem;
    return mem->malloc(size ? size : 1, mem->mem_user_data);
}

void *sf_mem_calloc(const sf_mem *mem, size_t nmemb, size_t size)
{
    if (!mem)
        mem = &default_mem;
    return mem->calloc(nmemb ? nmemb : 1, size ? size : 1, mem->mem_user_data);
}

void *sf_mem_realloc(const sf_mem *mem, void *ptr, size_t size)
{
    if (!mem)
        mem = &default_mem;
    return mem->realloc(ptr, size ? size : 1, mem->mem_user_data);
}

void sf_mem_free(const sf_mem *mem, void *ptr)
{
    if (!ptr)
        return;
    if (!mem)
        mem = &default_mem;
    mem->free(ptr, mem->mem_user_data);
}

char *sf_mem_strndup(const sf_mem *mem, const char *s, size_t len)
{
    char *p = sf_mem_malloc(mem, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void sf_buf_init(sf_buf_t *buf, const sf_mem *mem)
{
    buf->base = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->_mem = mem;
}

void sf_buf_dispose(sf_buf_t *buf)
{
    sf_mem_free(buf->_mem, buf->base);
    buf->base = NULL;
    buf->len = buf->cap = 0;
}

int sf_buf_reserve(sf_buf_t *buf, size_t extra)
{
    size_t need = buf->len + extra, cap;
    uint8_t *p;
    if (need < buf->len)
        return SF_ENOMEM;
    if (need <= buf->cap)
        return SF_OK;
    cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap *= 2;
    p = sf_mem_realloc(buf->_mem, buf->base, cap);
    if (!p)
        return SF_ENOMEM;
    buf->base = p;
    buf->cap = cap;
    return SF_OK;
}

int sf_buf_append(sf_buf_t *buf, const void *data, size_t len)
{
    int rv;
    if (len == 0)
        return SF_OK;
    if ((rv = sf_buf_reserve(buf, len)) != 0)
        return rv;
    memcpy(buf->base + buf->len, data, len);
    buf->len += len;
    return SF_OK;
}

int sf_buf_appendf(sf_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    int n, rv;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SF_EINVAL;
    if ((rv = sf_buf_reserve(buf, (size_t)n + 1)) != 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf((char *)buf->base + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return SF_OK;
}

void sf_buf_consume(sf_buf_t *buf, size_t n)
{
    if (n >= buf->len) {
        buf->len = 0;
        return;
    }
    memmove(buf->base, buf->base + n, buf->len - n);
    buf->len -= n;
}

void sf__panic(const char *file, int line, const char *msg)
{
    fprintf(stderr, "statefun: panic at %s:%d: %s\n", file, line, msg);
    abort();
}

uint64_t sf_now_ms(void) { return uv_hrtime() / 1000000u; }

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t sf_pct_decode(const char *s, size_t len, char *out)
{
    size_t i, n = 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (len - i < 3)
                return SF_EINVAL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return SF_EINVAL;
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    return (ssize_t)n;
}
