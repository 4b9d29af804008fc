/* statefun-c: Apache License 2.0.
 *
 * Common building blocks shared by every layer: the error codes (one sf_err
 * enum: 0 is success, negative SF_E* is failure), the pluggable allocator
 * (sf_mem, shaped like nghttp2_mem so the SDK never aborts its host), a
 * growable byte buffer, and the assertion macros for broken invariants.
 *
 * Everything here is thread-safe in the sense that it keeps no global mutable
 * state; an sf_buf_t belongs to whoever embeds it.
 */
#ifndef SF_COMMON_H
#define SF_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The error codes (sf_err), sf_strerror, the sf_mem allocator and SF_EXTERN
 * are public: their one definition is the first block of the SDK's header,
 * which this includes (and nothing else of it). */
#define SF_H_BASE_ONLY
#include "statefun/sf.h"
#undef SF_H_BASE_ONLY

/**
 * Converts a libuv status code to an sf_err. Used where libuv errors enter.
 */
int sf_err_from_uv(int uv_status);

/* ------------------------------------------------------------------------ */
/* Allocator                                                                  */

/** Returns the default allocator (the C library's). */
const sf_mem *sf_mem_default(void);

void *sf_mem_malloc(const sf_mem *mem, size_t size);
void *sf_mem_calloc(const sf_mem *mem, size_t nmemb, size_t size);
void *sf_mem_realloc(const sf_mem *mem, void *ptr, size_t size);
void sf_mem_free(const sf_mem *mem, void *ptr);
/** Duplicates |len| bytes of |s| and NUL-terminates; NULL on failure. */
char *sf_mem_strndup(const sf_mem *mem, const char *s, size_t len);

/* ------------------------------------------------------------------------ */
/* Growable byte buffer                                                       */

/**
 * A growable byte buffer. Embed it and call sf_buf_init; sf_buf_dispose
 * releases the storage. |base| may be NULL while |cap| is 0.
 */
typedef struct sf_buf_s {
    uint8_t *base;    /* read-only: the bytes */
    size_t len;       /* read-only: used bytes */
    size_t cap;       /* read-only: allocated bytes */
    const sf_mem *_mem;
} sf_buf_t;

void sf_buf_init(sf_buf_t *buf, const sf_mem *mem);
void sf_buf_dispose(sf_buf_t *buf);
/** Makes room for |extra| more bytes. Returns 0 or SF_ENOMEM. */
int sf_buf_reserve(sf_buf_t *buf, size_t extra);
/** Appends |len| bytes. Returns 0 or SF_ENOMEM. */
int sf_buf_append(sf_buf_t *buf, const void *data, size_t len);
/** Appends a printf-formatted string (not NUL-counted). 0 or SF_ENOMEM. */
int sf_buf_appendf(sf_buf_t *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Drops the first |n| bytes, keeping the rest. */
void sf_buf_consume(sf_buf_t *buf, size_t n);
static inline void sf_buf_reset(sf_buf_t *buf) { buf->len = 0; }

/* ------------------------------------------------------------------------ */
/* Invariants                                                                 */

/** Logs file and line and aborts. For bugs, never for bad input. */
void sf__panic(const char *file, int line, const char *msg) __attribute__((noreturn));

#define SF_ASSERT(cond)                                                          \
    do {                                                                         \
        if (!(cond))                                                             \
            sf__panic(__FILE__, __LINE__, "assertion failed: " #cond);           \
    } while (0)

#define sf_container_of(ptr, type, member)                                       \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#define SF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/**
 * Percent-decodes |len| bytes of |s| (a URL path or query part) into |out|,
 * which has room for at least |len| bytes ('+' stays '+'). Returns the
 * decoded length, or SF_EINVAL for a '%' not followed by two hex digits.
 */
ssize_t sf_pct_decode(const char *s, size_t len, char *out);

/** Monotonic time in milliseconds (uv_hrtime based). */
uint64_t sf_now_ms(void);

#endif /* SF_COMMON_H */
