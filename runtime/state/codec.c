/* statefun-c: Apache License 2.0.
 *
 * Encoders and decoders of the state backend's keys and values (see
 * codec.h for the layout). Pure functions; any thread.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void sf__sbuf_dispose(sf__sbuf_t *b)
{
    if (b->p != b->_inl)
        free(b->p);
    sf__sbuf_init(b);
}

uint8_t *sf__sbuf_grow(sf__sbuf_t *b, size_t n)
{
    size_t need = b->len + n, cap = b->cap * 2;
    while (cap < need)
        cap *= 2;
    if (b->p == b->_inl) {
        uint8_t *p = sf_xmalloc(cap);
        memcpy(p, b->_inl, b->len);
        b->p = p;
    } else {
        b->p = sf_xrealloc(b->p, cap);
    }
    b->cap = cap;
    return b->p + b->len;
}

void sf__sbuf_be64(sf__sbuf_t *b, uint64_t v)
{
    sf__put_be64(sf__sbuf_reserve(b, 8), v);
    b->len += 8;
}

void sf__buf_put(sf_buf_t *b, const void *data, size_t n)
{
    if (sf_buf_append(b, data, n) != 0)
        sf__panic(__FILE__, __LINE__, "out of memory");
}

int sf__read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        if (p >= end || shift > 63)
            return -1;
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
        shift += 7;
    }
    *pp = p;
    *out = v;
    return 0;
}

int sf__read_lp(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *n)
{
    const uint8_t *p = *pp;
    uint64_t len;
    if (sf__read_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p))
        return -1;
    *s = p;
    *n = (size_t)len;
    *pp = p + len;
    return 0;
}

/* Keys ------------------------------------------------------------------- */

void sf__enc_addr(sf__sbuf_t *k, const sf_addr_t *a)
{
    sf__sbuf_lp(k, a->ns, a->ns_len);
    sf__sbuf_lp(k, a->type, a->type_len);
    sf__sbuf_lp(k, a->id, a->id_len);
}

void sf__key_kind(sf__sbuf_t *k, uint16_t kg, uint8_t kind)
{
    sf__sbuf_be16(k, kg);
    sf__sbuf_byte(k, kind);
}

void sf__key_addr_prefix(sf__sbuf_t *k, uint16_t kg, const sf_addr_t *a)
{
    sf__key_kind(k, kg, SF__KIND_STATE);
    sf__enc_addr(k, a);
}

void sf__key_timer(sf__sbuf_t *k, uint16_t kg, int64_t fire_at, uint64_t seq)
{
    sf__key_kind(k, kg, SF__KIND_TIMER);
    sf__sbuf_be64(k, (uint64_t)fire_at);
    sf__sbuf_be64(k, seq);
}

void sf__key_token(sf__sbuf_t *k, uint16_t kg, const sf_addr_t *a, const char *token,
                   size_t token_len)
{
    sf__key_kind(k, kg, SF__KIND_TOKEN);
    sf__enc_addr(k, a);
    sf__sbuf_lp(k, token, token_len);
}

void sf__key_meta(sf__sbuf_t *k, const char *name)
{
    sf__sbuf_byte(k, SF__PREFIX_GLOBAL);
    sf__sbuf_byte(k, SF__GLOBAL_META);
    sf__sbuf_put(k, name, strlen(name));
}

void sf__key_log(sf__sbuf_t *k, uint8_t column, const void *key, size_t klen)
{
    sf__sbuf_byte(k, SF__PREFIX_GLOBAL);
    sf__sbuf_byte(k, SF__GLOBAL_LOG);
    sf__sbuf_byte(k, column);
    sf__sbuf_put(k, key, klen);
}

bool sf__key_prefix_end(sf__sbuf_t *k)
{
    while (k->len > 0) {
        if (k->p[k->len - 1] != 0xFF) {
            k->p[k->len - 1]++;
            return true;
        }
        k->len--;
    }
    return false;
}

ssize_t sf__parse_addr(const uint8_t *p0, size_t n, sf_addr_t *a)
{
    const uint8_t *p = p0, *end = p0 + n, *s;
    size_t len;
    if (sf__read_lp(&p, end, &s, &len) != 0)
        return -1;
    a->ns = (const char *)s;
    a->ns_len = len;
    if (sf__read_lp(&p, end, &s, &len) != 0)
        return -1;
    a->type = (const char *)s;
    a->type_len = len;
    if (sf__read_lp(&p, end, &s, &len) != 0)
        return -1;
    a->id = (const char *)s;
    a->id_len = len;
    return p - p0;
}

int sf__parse_state_key(const uint8_t *key, size_t klen, sf__state_key_t *out)
{
    const uint8_t *p, *end = key + klen, *s;
    ssize_t used;
    size_t len;
    if (klen < 3 || key[2] != SF__KIND_STATE)
        return SF_ESTATE;
    out->kg = sf__get_be16(key);
    used = sf__parse_addr(key + 3, klen - 3, &out->addr);
    if (used < 0)
        return SF_ESTATE;
    out->addr_key = key + 3;
    out->addr_key_len = (size_t)used;
    p = key + 3 + used;
    if (sf__read_lp(&p, end, &s, &len) != 0 || p != end)
        return SF_ESTATE;
    out->name = (const char *)s;
    out->name_len = len;
    return 0;
}

int sf__parse_timer_key(const uint8_t *key, size_t klen, uint16_t *kg, int64_t *fire_at,
                        uint64_t *seq)
{
    if (klen != 19 || key[2] != SF__KIND_TIMER)
        return SF_ESTATE;
    *kg = sf__get_be16(key);
    *fire_at = (int64_t)sf__get_be64(key + 3);
    *seq = sf__get_be64(key + 11);
    return 0;
}

/* Values ----------------------------------------------------------------- */

void sf__enc_value(sf__sbuf_t *v, sf_state_ttl_mode mode, int64_t ttl_ms, int64_t expire_at,
                   const char *type_name, size_t tn_len, const uint8_t *data, size_t len)
{
    sf__sbuf_byte(v, SF__VALUE_VERSION);
    sf__sbuf_byte(v, (uint8_t)mode);
    if (mode != SF_STATE_TTL_NONE) {
        sf__sbuf_be64(v, (uint64_t)expire_at);
        sf__sbuf_varint(v, (uint64_t)ttl_ms);
    }
    sf__sbuf_varint(v, tn_len);
    sf__sbuf_put(v, type_name, tn_len);
    sf__sbuf_byte(v, 0);
    sf__sbuf_put(v, data, len);
}

int sf__dec_value(const uint8_t *v, size_t vlen, sf_state_value_t *out)
{
    const uint8_t *p = v + 2, *end = v + vlen;
    uint64_t x;
    if (vlen < 2 || v[0] != SF__VALUE_VERSION || v[1] > SF_STATE_TTL_AFTER_INVOKE)
        return SF_ESTATE;
    out->ttl_mode = (sf_state_ttl_mode)v[1];
    out->ttl_ms = 0;
    out->expire_at_ms = 0;
    if (out->ttl_mode != SF_STATE_TTL_NONE) {
        if (end - p < 8)
            return SF_ESTATE;
        out->expire_at_ms = (int64_t)sf__get_be64(p);
        p += 8;
        if (sf__read_varint(&p, end, &x) != 0 || x > INT64_MAX)
            return SF_ESTATE;
        out->ttl_ms = (int64_t)x;
    }
    if (sf__read_varint(&p, end, &x) != 0 || x >= (uint64_t)(end - p) || p[x] != 0)
        return SF_ESTATE;
    out->type_name = (const char *)p;
    p += x + 1;
    out->data = p;
    out->len = (size_t)(end - p);
    return 0;
}

bool sf__value_expired(const uint8_t *v, size_t vlen, int64_t now)
{
    if (vlen < 10 || v[0] != SF__VALUE_VERSION || v[1] == SF_STATE_TTL_NONE)
        return false;
    return (int64_t)sf__get_be64(v + 2) <= now;
}

void sf__value_set_expire(uint8_t *v, size_t vlen, int64_t expire_at)
{
    SF_ASSERT(vlen >= 10 && v[1] != SF_STATE_TTL_NONE);
    sf__put_be64(v + 2, (uint64_t)expire_at);
}

void sf__enc_timer(sf__sbuf_t *v, const sf_addr_t *sender, const char *token, size_t token_len,
                   const uint8_t *msg, size_t len)
{
    sf__sbuf_byte(v, SF__TIMER_VERSION);
    sf__sbuf_byte(v, token ? SF__TIMER_HAS_TOKEN : 0);
    sf__enc_addr(v, sender);
    if (token)
        sf__sbuf_lp(v, token, token_len);
    sf__sbuf_put(v, msg, len);
}

int sf__dec_timer(const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                  sf_state_timer_t *t)
{
    const uint8_t *p, *end = v + vlen, *s;
    ssize_t used;
    size_t n;
    if (sf__parse_timer_key(key, klen, &t->key_group, &t->fire_at_ms, &t->seq) != 0)
        return SF_ESTATE;
    if (vlen < 2 || v[0] != SF__TIMER_VERSION)
        return SF_ESTATE;
    used = sf__parse_addr(v + 2, vlen - 2, &t->sender);
    if (used < 0)
        return SF_ESTATE;
    p = v + 2 + used;
    t->token = NULL;
    t->token_len = 0;
    if (v[1] & SF__TIMER_HAS_TOKEN) {
        if (sf__read_lp(&p, end, &s, &n) != 0)
            return SF_ESTATE;
        t->token = (const char *)s;
        t->token_len = n;
    }
    t->msg = p;
    t->msg_len = (size_t)(end - p);
    return 0;
}
