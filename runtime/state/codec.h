/* statefun-c: Apache License 2.0.
 *
 * The byte layout of the state backend, shared by both implementations (the
 * memory backend stores the same keys and values as RocksDB, which makes its
 * snapshot a plain list of key/value pairs). Layout, all integers big-endian,
 * "lp(x)" = LEB128 length then the bytes:
 *
 *   state  kg:2 0x01 lp(ns) lp(type) lp(id) lp(name)  -> value (below)
 *   timer  kg:2 0x02 fire_at:8 seq:8                  -> timer value (below)
 *   token  kg:2 0x03 lp(ns) lp(type) lp(id) lp(token) -> fire_at:8 seq:8
 *   meta   0xFF 0x00 name                             -> bytes
 *   log    0xFF 0x01 column:1 key                     -> bytes
 *
 * Key groups are below 0x8000, so the 0xFF prefix never meets them, a range
 * of key groups is one key range, and the states of an address are adjacent.
 *
 *   value        ver:1(=1) mode:1 [expire_at:8 lp-int(ttl_ms) when mode != 0]
 *                lp-int(tnlen) typename 0x00 data
 *   timer value  ver:1(=1) flags:1(bit0: token) lp(ns) lp(type) lp(id)
 *                [lp(token)] message
 *
 * Encoders append to an sf__sbuf_t, a buffer with inline storage that spills
 * to the heap (aborting on out-of-memory, as the runtime does). Decoders
 * validate lengths and return SF_ESTATE on corrupt bytes.
 *
 * Threading: pure functions; any thread.
 */
#ifndef SF_STATE_CODEC_H
#define SF_STATE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend.h"

#define SF__KIND_STATE 0x01
#define SF__KIND_TIMER 0x02
#define SF__KIND_TOKEN 0x03
#define SF__PREFIX_GLOBAL 0xFF
#define SF__GLOBAL_META 0x00
#define SF__GLOBAL_LOG 0x01

#define SF__VALUE_VERSION 1
#define SF__TIMER_VERSION 1
#define SF__TIMER_HAS_TOKEN 0x01

/** A byte buffer with 256 inline bytes. Not movable once initialized. */
typedef struct sf__sbuf_s {
    uint8_t *p;
    size_t len;
    size_t cap;
    uint8_t _inl[256];
} sf__sbuf_t;

static inline void sf__sbuf_init(sf__sbuf_t *b)
{
    b->p = b->_inl;
    b->len = 0;
    b->cap = sizeof b->_inl;
}
void sf__sbuf_dispose(sf__sbuf_t *b);
/** sf__sbuf_reserve when the bytes do not fit: grows the buffer. */
uint8_t *sf__sbuf_grow(sf__sbuf_t *b, size_t n);

/* The appends are inline: state keys are built from a few of them for every
 * read and write of a state, one call each was a tenth of an embedded
 * message's instructions (bench/instructions.py, docs/benchmarks.md). */

/** Makes room for |n| more bytes and returns where they go (len unchanged). */
static inline uint8_t *sf__sbuf_reserve(sf__sbuf_t *b, size_t n)
{
    return n <= b->cap - b->len ? b->p + b->len : sf__sbuf_grow(b, n);
}
static inline void sf__sbuf_put(sf__sbuf_t *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    memcpy(sf__sbuf_reserve(b, n), data, n);
    b->len += n;
}
static inline void sf__sbuf_byte(sf__sbuf_t *b, uint8_t c)
{
    *sf__sbuf_reserve(b, 1) = c;
    b->len++;
}
static inline void sf__sbuf_be16(sf__sbuf_t *b, uint16_t v)
{
    uint8_t *p = sf__sbuf_reserve(b, 2);
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    b->len += 2;
}
void sf__sbuf_be64(sf__sbuf_t *b, uint64_t v);
/** Appends |v| as LEB128. */
static inline void sf__sbuf_varint(sf__sbuf_t *b, uint64_t v)
{
    uint8_t *p = sf__sbuf_reserve(b, 10);
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    b->len += n;
}
/** The bytes of lp(x) for an |n|-byte x. */
static inline size_t sf__lp_len(uint64_t n)
{
    size_t v = 1;
    for (uint64_t x = n; x >= 0x80; x >>= 7)
        v++;
    return v + n;
}
/** Appends lp(x): the length as LEB128, then the bytes. */
static inline void sf__sbuf_lp(sf__sbuf_t *b, const void *data, size_t n)
{
    sf__sbuf_varint(b, n);
    sf__sbuf_put(b, data, n);
}

/** Appends |n| bytes to an sf_buf_t, aborting on out-of-memory. */
void sf__buf_put(sf_buf_t *b, const void *data, size_t n);

static inline uint64_t sf__get_be64(const uint8_t *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
           ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}
static inline uint16_t sf__get_be16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}
static inline void sf__put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/**
 * Reads a LEB128 integer at |*p| (not beyond |end|) and advances |*p|.
 * Returns 0 or -1 on truncation/overflow.
 */
int sf__read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);
/** Reads lp(x): sets |*s|/|*n| to the bytes. Returns 0 or -1. */
int sf__read_lp(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *n);

/* Keys ------------------------------------------------------------------- */

/** Appends lp(ns) lp(type) lp(id). */
void sf__enc_addr(sf__sbuf_t *k, const sf_addr_t *a);
/** kg kind (the start of one kind's keys in a key group). */
void sf__key_kind(sf__sbuf_t *k, uint16_t kg, uint8_t kind);
/** kg 0x01 addr: the prefix of every state of |a|. */
void sf__key_addr_prefix(sf__sbuf_t *k, uint16_t kg, const sf_addr_t *a);
/** kg 0x02 fire_at seq */
void sf__key_timer(sf__sbuf_t *k, uint16_t kg, int64_t fire_at, uint64_t seq);
/** kg 0x03 addr lp(token) */
void sf__key_token(sf__sbuf_t *k, uint16_t kg, const sf_addr_t *a, const char *token,
                   size_t token_len);
/** 0xFF 0x00 name */
void sf__key_meta(sf__sbuf_t *k, const char *name);
/** 0xFF 0x01 column key */
void sf__key_log(sf__sbuf_t *k, uint8_t column, const void *key, size_t klen);

/**
 * Turns |k| into the smallest key greater than every key with prefix |k|
 * (increments the last byte that is not 0xFF, dropping the 0xFF tail).
 * Returns false when there is none (all bytes 0xFF).
 */
bool sf__key_prefix_end(sf__sbuf_t *k);

/** A parsed state key: slices into the key bytes. */
typedef struct sf__state_key_s {
    uint16_t kg;
    sf_addr_t addr;
    const uint8_t *addr_key;    /* lp(ns) lp(type) lp(id) */
    size_t addr_key_len;
    const char *name;
    size_t name_len;
} sf__state_key_t;

/** Parses a state key. Returns 0 or SF_ESTATE. */
int sf__parse_state_key(const uint8_t *key, size_t klen, sf__state_key_t *out);
/** Parses lp(ns) lp(type) lp(id) into |a| (slices). Returns bytes used or -1. */
ssize_t sf__parse_addr(const uint8_t *p, size_t n, sf_addr_t *a);
/** Parses a timer key. Returns 0 or SF_ESTATE. */
int sf__parse_timer_key(const uint8_t *key, size_t klen, uint16_t *kg, int64_t *fire_at,
                        uint64_t *seq);

/* Values ----------------------------------------------------------------- */

/** Appends an encoded value. |expire_at| is ignored for mode NONE. */
void sf__enc_value(sf__sbuf_t *v, sf_state_ttl_mode mode, int64_t ttl_ms, int64_t expire_at,
                   const char *type_name, size_t tn_len, const uint8_t *data, size_t len);
/** Decodes a value; pointers go into |v|. Returns 0 or SF_ESTATE. */
int sf__dec_value(const uint8_t *v, size_t vlen, sf_state_value_t *out);
/**
 * True when the encoded value |v| has expired at |now| (expire_at <= now).
 * Corrupt or short values are not expired (the decoder reports them).
 */
bool sf__value_expired(const uint8_t *v, size_t vlen, int64_t now);
/** Rewrites the expiry of an encoded value with a TTL in place. */
void sf__value_set_expire(uint8_t *v, size_t vlen, int64_t expire_at);

/** Appends an encoded timer value. |token| may be NULL (none). */
void sf__enc_timer(sf__sbuf_t *v, const sf_addr_t *sender, const char *token, size_t token_len,
                   const uint8_t *msg, size_t len);
/** Decodes a timer key and value into |t|. Returns 0 or SF_ESTATE. */
int sf__dec_timer(const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                  sf_state_timer_t *t);

#endif /* SF_STATE_CODEC_H */
