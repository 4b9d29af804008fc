/* statefun-c: Apache License 2.0.
 *
 * What io.c, ingress.c and egress.c share and nobody else sees: the counters
 * behind sf_io_stats and the helper for one-line text answers. Each counter has one writer, the I/O thread, so a
 * relaxed load and store (no read-modify-write) is enough; readers on other
 * threads see each value whole.
 *
 * Threading: counters are written on the I/O thread only, read anywhere.
 */
#ifndef SF_IO_INT_H
#define SF_IO_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sf_http.h"

typedef enum {
    SF__IO_IN_ACCEPTED = 0,
    SF__IO_IN_BAD_REQUEST,
    SF__IO_IN_NOT_FOUND,
    SF__IO_IN_BAD_METHOD,
    SF__IO_IN_UNSUPPORTED_TYPE,
    SF__IO_IN_BACKPRESSURED,
    SF__IO_IN_PARKED,
    SF__IO_IN_SHUTTING_DOWN,
    SF__IO_IN_FAILED,
    SF__IO_EG_IN,
    SF__IO_EG_OUT,
    SF__IO_EG_DROPPED_OVERFLOW,
    SF__IO_EG_DROPPED_UNREAD,
    SF__IO_EG_INVALID,
    SF__IO_EG_UNKNOWN_TOPIC,
    SF__IO_EG_UNKNOWN_EGRESS,
    SF__IO_EG_RETAINED, /* a gauge: set, not added */
    SF__IO_NCOUNTERS
} sf__io_counter;

typedef struct sf__io_counters_s {
    _Atomic uint64_t v[SF__IO_NCOUNTERS];
} sf__io_counters_t;

/** Adds |n| to counter |c|. I/O thread only (the single writer). */
static inline void sf__io_count(sf__io_counters_t *ctr, sf__io_counter c, uint64_t n)
{
    uint64_t cur = atomic_load_explicit(&ctr->v[c], memory_order_relaxed);
    atomic_store_explicit(&ctr->v[c], cur + n, memory_order_relaxed);
}

/** Sets gauge |c|. I/O thread only. */
static inline void sf__io_set(sf__io_counters_t *ctr, sf__io_counter c, uint64_t v)
{
    atomic_store_explicit(&ctr->v[c], v, memory_order_relaxed);
}

static inline uint64_t sf__io_get(const sf__io_counters_t *ctr, sf__io_counter c)
{
    return atomic_load_explicit(&ctr->v[c], memory_order_relaxed);
}

/**
 * Answers |req| with |status|, the |nextra| headers of |extra| and a one-line
 * text body: the printf-formatted reason and a newline. Frees |req| (see
 * sf_http_respond). I/O thread only.
 */
void sf__io_reply(sf_http_request_t *req, int status, const sf_http_header_t *extra,
                  size_t nextra, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/** "Retry-After: 1", sent with every 503. */
extern const sf_http_header_t sf__io_retry_after;

#endif /* SF_IO_INT_H */
